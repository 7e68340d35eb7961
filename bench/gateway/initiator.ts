/**
 * The bench's own WireGuard initiator: builds handshake initiations (WireGuard paper §5.4.2)
 * without anything from lib/noise, so the gateway is measured against packets it did not make.
 * X25519 and ChaCha20-Poly1305 come from node:crypto (native: ~30× faster than a JS curve, which
 * matters when 1,000 packets are built inside the TCG VM), BLAKE2s, HMAC and the keyed mac1 from
 * @noble/hashes (node:crypto has no keyed BLAKE2s-128).
 *
 * Kinds, each a different depth of the gateway's verification:
 * - honest: the initiator holds the static key it claims (the gateway authenticates it);
 * - forged: claims a public key the forger does not hold; mac1 and the static key decrypt, the
 *   timestamp does not (two DH operations for the gateway, then a reject);
 * - garbage with a valid mac1: the static key does not decrypt (one DH, then a reject);
 * - garbage: random bytes after the header, so mac1 is wrong (one BLAKE2s, then a reject).
 */
import { createCipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';

const CONSTRUCTION = Buffer.from('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s');
const IDENTIFIER = Buffer.from('WireGuard v1 zx2c4 Jason@zx2c4.com');
const LABEL_MAC1 = Buffer.from('mac1----');
export const INITIATION_LENGTH = 148;
const MAC1_AT = 116;

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');
const ZERO_NONCE = Buffer.alloc(12);

const hash = (...parts: Uint8Array[]): Uint8Array => blake2s(Buffer.concat(parts));
const mac = (key: Uint8Array, data: Uint8Array): Uint8Array => blake2s(data, { key, dkLen: 16 });
const hmacBlake2s = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => hmac(blake2s, key, Buffer.concat(parts));

/** HKDF over HMAC-BLAKE2s, two outputs (the only width the initiation needs). */
function kdf2(chainingKey: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const prk = hmacBlake2s(chainingKey, input);
  const first = hmacBlake2s(prk, Uint8Array.of(1));
  return [first, hmacBlake2s(prk, first, Uint8Array.of(2))];
}

function kdf1(chainingKey: Uint8Array, input: Uint8Array): Uint8Array {
  return hmacBlake2s(hmacBlake2s(chainingKey, input), Uint8Array.of(1));
}

function seal(key: Uint8Array, plain: Uint8Array, associated: Uint8Array): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: 16 });
  cipher.setAAD(associated, { plaintextLength: plain.length });
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

export interface KeyPair {
  privateKey: KeyObject;
  /** Raw 32 bytes. */
  publicKey: Buffer;
}

export function newKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519.length) };
}

export function keyPairFromPrivate(raw: Uint8Array): KeyPair {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, raw]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519.length);
  return { privateKey, publicKey };
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });
}

/** TAI64N (12 bytes, big-endian: 2^62 + 10 + seconds, then nanoseconds), as the kernel writes it. */
export function tai64n(unixMs: number): Buffer {
  const out = Buffer.alloc(12);
  const seconds = Math.floor(unixMs / 1000);
  out.writeBigUInt64BE(0x400000000000000an + BigInt(seconds), 0);
  out.writeUInt32BE(Math.floor((unixMs - seconds * 1000) * 1e6), 8);
  return out;
}

/** What the initiator precomputes once per responder. */
export class InitiationBuilder {
  private readonly responderPublic: Buffer;
  private readonly responder: KeyObject;
  private readonly chainingKey0: Uint8Array;
  private readonly hash0: Uint8Array;
  private readonly mac1Key: Uint8Array;

  constructor(responderPublicKey: Uint8Array) {
    this.responderPublic = Buffer.from(responderPublicKey);
    this.responder = publicKeyObject(this.responderPublic);
    this.chainingKey0 = hash(CONSTRUCTION);
    this.hash0 = hash(hash(this.chainingKey0, IDENTIFIER), this.responderPublic);
    this.mac1Key = hash(LABEL_MAC1, this.responderPublic);
  }

  /**
   * An initiation claiming `claimedPublic`, with its timestamp sealed under DH(`signer`,
   * responder): the claimed key's own private key for an honest initiation, any other key for a
   * forgery.
   */
  build(claimedPublic: Uint8Array, signer: KeyObject, timestamp: Uint8Array): Buffer {
    const ephemeral = newKeyPair();
    const packet = Buffer.alloc(INITIATION_LENGTH);
    packet.writeUInt32LE(1, 0);
    randomBytes(4).copy(packet, 4);
    ephemeral.publicKey.copy(packet, 8);
    let chainingKey = kdf1(this.chainingKey0, ephemeral.publicKey);
    let h = hash(this.hash0, ephemeral.publicKey);
    let key: Uint8Array;
    [chainingKey, key] = kdf2(chainingKey, diffieHellman({ privateKey: ephemeral.privateKey, publicKey: this.responder }));
    const encryptedStatic = seal(key, claimedPublic, h);
    encryptedStatic.copy(packet, 40);
    h = hash(h, encryptedStatic);
    [chainingKey, key] = kdf2(chainingKey, diffieHellman({ privateKey: signer, publicKey: this.responder }));
    seal(key, timestamp, h).copy(packet, 88);
    return this.withMac1(packet);
  }

  honest(initiator: KeyPair, timestamp: Uint8Array): Buffer {
    return this.build(initiator.publicKey, initiator.privateKey, timestamp);
  }

  /** Claims `victimPublic` without its private key: fails at the timestamp. */
  forged(victimPublic: Uint8Array, timestamp: Uint8Array): Buffer {
    return this.build(victimPublic, newKeyPair().privateKey, timestamp);
  }

  /** Random body, correct header and mac1: fails at the static key (after one DH). */
  garbageWithMac1(): Buffer {
    const packet = randomBytes(INITIATION_LENGTH);
    packet.writeUInt32LE(1, 0);
    packet.fill(0, MAC1_AT + 16);
    return this.withMac1(packet);
  }

  /** Random body and mac1: fails at mac1. */
  static garbage(): Buffer {
    const packet = randomBytes(INITIATION_LENGTH);
    packet.writeUInt32LE(1, 0);
    packet.fill(0, MAC1_AT + 16);
    return packet;
  }

  private withMac1(packet: Buffer): Buffer {
    Buffer.from(mac(this.mac1Key, packet.subarray(0, MAC1_AT))).copy(packet, MAC1_AT);
    return packet;
  }
}
