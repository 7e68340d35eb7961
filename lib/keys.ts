/**
 * WireGuard keys at the API: base64 strings (as wg(8) and every config file write them) or
 * raw 32-byte Uint8Arrays; private keys may also be X25519 `crypto.KeyObject`s, which keep
 * the secret out of ordinary JavaScript buffers. Every entry point that takes a key goes
 * through here, so every one accepts the same forms and fails with the same ValidationError.
 */
import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto';
import { describe } from './describe.js';
import { ValidationError } from './errors.js';

// Kept importable from here: the helpers that validate other arguments have always used it.
export { describe };

/** Length of every WireGuard key (X25519 private and public keys, preshared keys). */
export const KEY_LENGTH = 32;

/** A key as callers may give it. */
export type KeyInput = string | Uint8Array;
/** A private key as callers may give it. */
export type PrivateKeyInput = KeyInput | KeyObject;

const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * The DER bytes before the 32 raw key bytes in an X25519 PKCS#8 PrivateKeyInfo (RFC 8410 §7):
 * SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.110 }, OCTET STRING { OCTET STRING (32) } }.
 */
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

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
  throw new ValidationError(path, `expected a base64 string or a ${KEY_LENGTH}-byte Uint8Array, got ${describe(input)}`);
}

export function encodeKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * An X25519 private KeyObject from any accepted form: a KeyObject (checked, returned as is),
 * 32 raw bytes or base64. Raw bytes are not retained; every temporary copy is wiped.
 */
export function importPrivateKey(input: unknown, path: string): KeyObject {
  if (input instanceof KeyObject) {
    checkPrivateKeyObject(input, path);
    return input;
  }
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw new ValidationError(path, `expected an X25519 private key as a KeyObject, a base64 string or a ${KEY_LENGTH}-byte Uint8Array, got ${describe(input)}`);
  }
  const bytes = decodeKey(input, path);
  try {
    return privateKeyObject(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** Wraps 32 private-key bytes in an X25519 KeyObject; the temporary DER copy is wiped. */
export function privateKeyObject(bytes: Uint8Array, path = 'privateKey'): KeyObject {
  if (bytes.length !== KEY_LENGTH) throw new ValidationError(path, `expected ${KEY_LENGTH} bytes, got ${bytes.length}`);
  const der = Buffer.alloc(PKCS8_X25519_PREFIX.length + KEY_LENGTH);
  PKCS8_X25519_PREFIX.copy(der, 0);
  der.set(bytes, PKCS8_X25519_PREFIX.length);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

/**
 * Raw 32 bytes of an X25519 public key KeyObject (or of the public half of a private one).
 * Through JWK: OpenSSL 3's DER encoder lookup costs far more (see lib/noise/x25519.ts).
 */
export function publicKeyBytes(key: KeyObject): Uint8Array {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  const raw = typeof jwk.x === 'string' ? new Uint8Array(Buffer.from(jwk.x, 'base64url')) : new Uint8Array(0);
  // Unreachable for an X25519 key; guards against a future OpenSSL changing the export.
  if (raw.length !== KEY_LENGTH) throw new Error(`X25519 public key export gave ${raw.length} bytes, expected ${KEY_LENGTH}`);
  return raw;
}

/** Raw private-key bytes of an X25519 KeyObject. The caller must wipe them after use. */
export function privateKeyBytes(key: KeyObject, path: string): Uint8Array {
  checkPrivateKeyObject(key, path);
  const der = key.export({ format: 'der', type: 'pkcs8' });
  try {
    // Unreachable for an X25519 key: OpenSSL writes exactly this encoding (no attributes).
    if (der.length !== PKCS8_X25519_PREFIX.length + KEY_LENGTH || !der.subarray(0, PKCS8_X25519_PREFIX.length).equals(PKCS8_X25519_PREFIX)) {
      throw new Error(`unexpected X25519 PKCS#8 encoding (${der.length} bytes)`);
    }
    return new Uint8Array(der.subarray(PKCS8_X25519_PREFIX.length));
  } finally {
    der.fill(0);
  }
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

function checkPrivateKeyObject(key: KeyObject, path: string): void {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'x25519') {
    throw new ValidationError(
      path,
      `expected an X25519 private KeyObject, got a ${key.type} KeyObject` + (key.asymmetricKeyType ? ` of type ${key.asymmetricKeyType}` : ''),
    );
  }
}
