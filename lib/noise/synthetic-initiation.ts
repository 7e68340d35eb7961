/**
 * Handshake initiations built here, as an initiator would build them (WireGuard paper §5.4.2,
 * mac1 of §5.4.4), for one purpose: giving a `Responder` real work before the first real
 * initiation arrives, so that V8 has optimised its code by then (see lib/noise/warm-up.ts).
 * This is not an initiator for talking to peers: no handshake state is kept, no cookie, no mac2.
 *
 * @module
 */

import { createCipheriv, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { ValidationError } from '../errors.js';
import { KEY_LENGTH, publicKeyBytes } from '../keys.js';
import { INITIATION_LENGTH, INITIATION_OFFSET as OFFSET, MESSAGE_TYPE_INITIATION } from '../protocol/initiation.js';
import { Mac1 } from './blake2s.js';
import { CONSTRUCTION, IDENTIFIER, LABEL_MAC1, TAG_SIZE } from './constants.js';
import { hashInto, kdf1Into, kdf2Into } from './kdf.js';
import { tai64nFromUnixMs } from './tai64n.js';
import { dh } from './x25519.js';

const ZERO_NONCE = new Uint8Array(12);
const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

export interface SyntheticInitiationOptions {
  /** The initiator's static private key (default: a fresh one per call). */
  readonly initiatorPrivateKey?: KeyObject;
  /** Unix milliseconds for the TAI64N timestamp (default: now). */
  readonly unixMs?: number;
  /** `msg.sender` (default 0). */
  readonly senderIndex?: number;
}

/**
 * A 148-byte handshake initiation from a fresh ephemeral key to the responder whose static public
 * key is `responderPublicKey` (32 raw bytes), which its `Responder.unwrap` accepts. Chaining keys,
 * DH outputs and AEAD keys are zeroed before returning.
 * @throws ValidationError when `responderPublicKey` is not 32 bytes, naming the length given.
 */
export function buildSyntheticInitiation(responderPublicKey: Uint8Array, options: SyntheticInitiationOptions = {}): Uint8Array {
  if (!(responderPublicKey instanceof Uint8Array) || responderPublicKey.length !== KEY_LENGTH) {
    const got = responderPublicKey instanceof Uint8Array ? `${responderPublicKey.length} bytes` : typeof responderPublicKey;
    throw new ValidationError('responderPublicKey', `expected ${KEY_LENGTH} raw bytes, got ${got}`);
  }
  const ephemeral = generateKeyPairSync('x25519');
  const initiatorPrivate = options.initiatorPrivateKey ?? generateKeyPairSync('x25519').privateKey;
  const msg = new Uint8Array(INITIATION_LENGTH);
  msg[0] = MESSAGE_TYPE_INITIATION;
  new DataView(msg.buffer).setUint32(OFFSET.sender, (options.senderIndex ?? 0) >>> 0, true);
  msg.set(publicKeyBytes(ephemeral.privateKey), OFFSET.ephemeral);

  const ck = hashInto(new Uint8Array(32), utf8(CONSTRUCTION), new Uint8Array(0));
  const h = hashInto(new Uint8Array(32), ck, utf8(IDENTIFIER));
  const k = new Uint8Array(32);
  let shared: Buffer | null = null;
  try {
    hashInto(h, h, responderPublicKey);
    // §5.4.2 `e`: C := KDF1(C, E_pub_i); H := HASH(H ‖ E_pub_i).
    kdf1Into(ck, msg, OFFSET.ephemeral, KEY_LENGTH, ck);
    hashInto(h, h, msg.subarray(OFFSET.ephemeral, OFFSET.static));
    // `es`: (C, κ) := KDF2(C, DH(E_priv_i, S_pub_r)); msg.static := AEAD(κ, 0, S_pub_i, H).
    shared = dhOrThrow(ephemeral.privateKey, responderPublicKey);
    kdf2Into(ck, shared, 0, KEY_LENGTH, ck, k);
    shared.fill(0);
    seal(k, publicKeyBytes(initiatorPrivate), h, msg, OFFSET.static);
    hashInto(h, h, msg.subarray(OFFSET.static, OFFSET.timestamp));
    // `ss`: (C, κ) := KDF2(C, DH(S_priv_i, S_pub_r)); msg.timestamp := AEAD(κ, 0, TAI64N(), H).
    shared = dhOrThrow(initiatorPrivate, responderPublicKey);
    kdf2Into(ck, shared, 0, KEY_LENGTH, ck, k);
    shared.fill(0);
    seal(k, tai64nFromUnixMs(options.unixMs ?? Date.now()).bytes, h, msg, OFFSET.timestamp);
  } finally {
    shared?.fill(0);
    ck.fill(0);
    k.fill(0);
    h.fill(0);
  }
  // §5.4.4: msg.mac1 := MAC(HASH(LABEL_MAC1 ‖ S_pub_r), msg_α).
  const mac1Key = hashInto(new Uint8Array(32), utf8(LABEL_MAC1), responderPublicKey);
  new Mac1(mac1Key).computeInto(msg.subarray(OFFSET.mac1, OFFSET.mac2), msg, 0, OFFSET.mac1);
  mac1Key.fill(0);
  return msg;
}

function dhOrThrow(privateKey: KeyObject, publicKey: Uint8Array): Buffer {
  const shared = dh(privateKey, publicKey, 0);
  if (shared === null) throw new ValidationError('responderPublicKey', 'expected an X25519 public key of full order, got a low-order point');
  return shared;
}

/** ChaCha20-Poly1305 with counter 0 (§5.4.2): `plain` sealed under `key` with `ad`, written into `out` at `at`. */
function seal(key: Uint8Array, plain: Uint8Array, ad: Uint8Array, out: Uint8Array, at: number): void {
  const cipher = createCipheriv('chacha20-poly1305', key, ZERO_NONCE, { authTagLength: TAG_SIZE });
  cipher.setAAD(ad, { plaintextLength: plain.length });
  const sealed = cipher.update(plain);
  cipher.final();
  out.set(sealed, at);
  out.set(cipher.getAuthTag(), at + plain.length);
}
