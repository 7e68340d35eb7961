/**
 * WireGuard keys at the API: base64 strings (as wg(8) and every config file write them) or
 * raw 32-byte Uint8Arrays; private keys may also be X25519 `crypto.KeyObject`s, which keep
 * the secret out of ordinary JavaScript buffers.
 */
import { KeyObject } from 'node:crypto';
import { importPrivateKey, publicKeyOf } from './noise/x25519.js';
import { ValidationError } from './errors.js';

export const KEY_LENGTH = 32;

/** A key as callers may give it. */
export type KeyInput = string | Uint8Array;
/** A private key as callers may give it. */
export type PrivateKeyInput = KeyInput | KeyObject;

const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * Decodes a key to 32 fresh bytes. `path` names the argument in the error; the value itself
 * is never put in a message, since it may be a secret.
 */
export function decodeKey(input: unknown, path: string): Uint8Array {
  if (typeof input === 'string') {
    if (input.length !== 44) {
      throw new ValidationError(path, `expected a 44-character base64 key, got ${input.length} characters`);
    }
    if (!BASE64_KEY.test(input)) throw new ValidationError(path, 'expected base64 of 32 bytes (A–Z a–z 0–9 + /, ending in one "=")');
    // Decoded into a fresh allocation: Buffer.from(string) would leave a copy of a secret in
    // Node's shared buffer pool, where nothing can wipe it.
    const bytes = new Uint8Array(KEY_LENGTH);
    Buffer.from(bytes.buffer).write(input, 'base64');
    return bytes;
  }
  if (input instanceof Uint8Array) {
    if (input.length !== KEY_LENGTH) throw new ValidationError(path, `expected ${KEY_LENGTH} bytes, got ${input.length}`);
    return Uint8Array.from(input);
  }
  throw new ValidationError(path, `expected a base64 string or a 32-byte Uint8Array, got ${describe(input)}`);
}

export function encodeKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const PKCS8_X25519_PREFIX_LENGTH = 16;

/** Wraps 32 private-key bytes in an X25519 KeyObject; the temporary DER copy is wiped. */
export function privateKeyObject(bytes: Uint8Array): KeyObject {
  return importPrivateKey(bytes);
}

/** Raw 32 bytes of an X25519 public key KeyObject (or of the public half of a private one). */
export function publicKeyBytes(key: KeyObject): Uint8Array {
  return publicKeyOf(key);
}

/** Raw private-key bytes of an X25519 KeyObject. The caller must wipe them after use. */
export function privateKeyBytes(key: KeyObject, path: string): Uint8Array {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'x25519') {
    throw new ValidationError(path, `expected an X25519 private KeyObject, got a ${key.type} ${key.asymmetricKeyType ?? 'secret'} key`);
  }
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const bytes = new Uint8Array(der.subarray(PKCS8_X25519_PREFIX_LENGTH));
  der.fill(0);
  return bytes;
}

/** Decodes a private key given in any accepted form to fresh bytes the caller must wipe. */
export function decodePrivateKey(input: unknown, path: string): Uint8Array {
  if (input instanceof KeyObject) return privateKeyBytes(input, path);
  return decodeKey(input, path);
}

/** The public key for 32 private-key bytes (X25519 with the clamping WireGuard uses). */
export function derivePublicKey(privateKey: Uint8Array): Uint8Array {
  return publicKeyBytes(privateKeyObject(privateKey));
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Uint8Array) return `a ${value.length}-byte ${value.constructor.name}`;
  return typeof value === 'object' ? `a ${(value as object).constructor?.name ?? 'object'}` : `a ${typeof value}`;
}
