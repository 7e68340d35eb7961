/**
 * A second, independent implementation of the first handshake message, written only with
 * @noble/curves, @noble/hashes and @noble/ciphers (no node:crypto, nothing from lib/), used
 * by the tests as a cross-check of lib/noise and to BUILD initiations: honest ones, damaged
 * ones with a recomputed mac1, and forgeries (WireGuard paper §5.4.2, §5.4.4).
 */
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';

const te = new TextEncoder();
export const NOBLE_CONSTRUCTION = te.encode('Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s');
export const NOBLE_IDENTIFIER = te.encode('WireGuard v1 zx2c4 Jason@zx2c4.com');
export const NOBLE_LABEL_MAC1 = te.encode('mac1----');

export const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

export const HASH = (...parts: Uint8Array[]): Uint8Array => blake2s(concat(...parts));
export const HMAC = (key: Uint8Array, ...parts: Uint8Array[]): Uint8Array => hmac(blake2s, key, concat(...parts));
export const MAC = (key: Uint8Array, data: Uint8Array): Uint8Array => blake2s(data, { key, dkLen: 16 });

/** KDF_n of §5.4 (HKDF with HMAC-BLAKE2s). */
export function KDF(n: 1 | 2 | 3, key: Uint8Array, input: Uint8Array): Uint8Array[] {
  const t0 = HMAC(key, input);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= n; i++) {
    prev = HMAC(t0, prev, Uint8Array.of(i));
    out.push(prev);
  }
  return out;
}

/** X25519 that returns null (instead of throwing) for an all-zero result. */
export function DH(priv: Uint8Array, pub: Uint8Array): Uint8Array | null {
  try {
    const s = x25519.getSharedSecret(priv, pub);
    return s.every((b) => b === 0) ? null : s;
  } catch {
    return null;
  }
}

const ZERO_NONCE = new Uint8Array(12);
export const AEAD = (key: Uint8Array, plain: Uint8Array, ad: Uint8Array): Uint8Array =>
  chacha20poly1305(key, ZERO_NONCE, ad).encrypt(plain);
export function AEAD_OPEN(key: Uint8Array, sealed: Uint8Array, ad: Uint8Array): Uint8Array | null {
  try {
    return chacha20poly1305(key, ZERO_NONCE, ad).decrypt(sealed);
  } catch {
    return null;
  }
}

export const publicKeyOfRaw = (priv: Uint8Array): Uint8Array => x25519.getPublicKey(priv);
export const randomPrivateKey = (): Uint8Array => x25519.utils.randomSecretKey();

export function mac1Key(responderPublic: Uint8Array): Uint8Array {
  return HASH(NOBLE_LABEL_MAC1, responderPublic);
}

/** Returns a copy of `packet` with mac1 recomputed over its (possibly damaged) bytes 0..115. */
export function withMac1(packet: Uint8Array, responderPublic: Uint8Array): Uint8Array {
  const p = packet.slice();
  p.set(MAC(mac1Key(responderPublic), p.subarray(0, 116)), 116);
  return p;
}

export interface BuildOptions {
  responderPublic: Uint8Array;
  /** The initiator's static private key; if absent, `claimedPublic` must be given (forgery). */
  initiatorPrivate?: Uint8Array;
  /** Public key to put in msg.static; defaults to the public key of `initiatorPrivate`. */
  claimedPublic?: Uint8Array;
  ephemeralPrivate?: Uint8Array;
  /** Raw ephemeral public bytes to send instead of the one derived from ephemeralPrivate. */
  ephemeralPublicOverride?: Uint8Array;
  timestamp: Uint8Array; // 12 bytes
  senderIndex?: number;
  mac2?: Uint8Array;
}

/**
 * Builds a handshake initiation as an initiator would (§5.4.2). Without `initiatorPrivate`, the
 * `ss` key is derived from a random private key instead: what a forger who knows only the
 * victim's public key can do.
 */
export function buildInitiation(o: BuildOptions): Uint8Array {
  const ePriv = o.ephemeralPrivate ?? randomPrivateKey();
  const ePub = o.ephemeralPublicOverride ?? x25519.getPublicKey(ePriv);
  const sPub = o.claimedPublic ?? x25519.getPublicKey(o.initiatorPrivate!);
  const ssPriv = o.initiatorPrivate ?? randomPrivateKey();

  let C = HASH(NOBLE_CONSTRUCTION);
  let H = HASH(C, NOBLE_IDENTIFIER);
  H = HASH(H, o.responderPublic);
  [C] = KDF(1, C, ePub) as [Uint8Array];
  H = HASH(H, ePub);
  const es = x25519.getSharedSecret(ePriv, o.responderPublic);
  let k: Uint8Array;
  [C, k] = KDF(2, C, es) as [Uint8Array, Uint8Array];
  const encStatic = AEAD(k, sPub, H);
  H = HASH(H, encStatic);
  const ss = x25519.getSharedSecret(ssPriv, o.responderPublic);
  [C, k] = KDF(2, C, ss) as [Uint8Array, Uint8Array];
  const encTs = AEAD(k, o.timestamp, H);

  const msg = new Uint8Array(148);
  msg[0] = 1;
  new DataView(msg.buffer).setUint32(4, o.senderIndex ?? 0x01020304, true);
  msg.set(ePub, 8);
  msg.set(encStatic, 40);
  msg.set(encTs, 88);
  msg.set(MAC(mac1Key(o.responderPublic), msg.subarray(0, 116)), 116);
  if (o.mac2) msg.set(o.mac2, 132);
  return msg;
}

export type NobleResult =
  | { ok: true; publicKey: string; timestamp: string; senderIndex: number }
  | { ok: false; reason: 'size' | 'type' | 'mac1' | 'ephemeral' | 'static' | 'static-noncanonical' | 'timestamp' };

/** RFC 7748 §5: a u-coordinate is canonical when its little-endian value (all 256 bits) is below p. */
export function isCanonicalU(u: Uint8Array): boolean {
  const value = u.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
  return value < 2n ** 255n - 19n;
}

/** The responder's checks, in the same order as lib/noise/responder.ts, with noble only. */
export function nobleUnwrap(responderPrivate: Uint8Array, msg: Uint8Array): NobleResult {
  if (msg.length !== 148) return { ok: false, reason: 'size' };
  if (msg[0] !== 1 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return { ok: false, reason: 'type' };
  const rPub = x25519.getPublicKey(responderPrivate);
  const mac1 = MAC(mac1Key(rPub), msg.subarray(0, 116));
  if (!mac1.every((b, i) => b === msg[116 + i])) return { ok: false, reason: 'mac1' };
  let C = HASH(NOBLE_CONSTRUCTION);
  let H = HASH(HASH(C, NOBLE_IDENTIFIER), rPub);
  const ePub = msg.subarray(8, 40);
  [C] = KDF(1, C, ePub) as [Uint8Array];
  H = HASH(H, ePub);
  const es = DH(responderPrivate, ePub);
  if (!es) return { ok: false, reason: 'ephemeral' };
  let k: Uint8Array;
  [C, k] = KDF(2, C, es) as [Uint8Array, Uint8Array];
  const sPub = AEAD_OPEN(k, msg.subarray(40, 88), H);
  if (!sPub) return { ok: false, reason: 'static' };
  if (!isCanonicalU(sPub)) return { ok: false, reason: 'static-noncanonical' };
  H = HASH(H, msg.subarray(40, 88));
  const ss = DH(responderPrivate, sPub);
  if (!ss) return { ok: false, reason: 'static' };
  [C, k] = KDF(2, C, ss) as [Uint8Array, Uint8Array];
  const ts = AEAD_OPEN(k, msg.subarray(88, 116), H);
  if (!ts) return { ok: false, reason: 'timestamp' };
  return {
    ok: true,
    publicKey: Buffer.from(sPub).toString('base64'),
    timestamp: Buffer.from(ts).toString('hex'),
    senderIndex: new DataView(msg.buffer, msg.byteOffset).getUint32(4, true),
  };
}

/**
 * u-coordinates of points of small order on Curve25519 and its twist, as 32-byte little-endian
 * encodings (the list used by libsodium and others): 0, 1, the two order-8 points,
 * p−1, p, p+1, and the same seven with bit 255 set (X25519 ignores that bit, RFC 7748 §5).
 * The tests check with noble that each one really yields an all-zero shared secret.
 */
export function lowOrderPoints(): Uint8Array[] {
  const p = 2n ** 255n - 19n;
  const le = (n: bigint): Uint8Array => {
    const out = new Uint8Array(32);
    for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
    return out;
  };
  const base = [
    0n,
    1n,
    325606250916557431795983626356110631294008115727848805560023387167927233504n,
    39382357235489614581723060781553021112529911719440698176882885853963445705823n,
    p - 1n,
    p,
    p + 1n,
  ];
  const all = base.map(le);
  for (const b of base) all.push(le(b + 2n ** 255n));
  return all;
}

/**
 * RFC 7748 §5 X25519 as a plain bigint Montgomery ladder, with NO zero-output check, so a test
 * can see the all-zero result of a low-order point directly (noble and OpenSSL both refuse to
 * return it). Slow (~ms); tests only.
 */
export function x25519Ladder(scalar: Uint8Array, u: Uint8Array): Uint8Array {
  const P = 2n ** 255n - 19n;
  const A24 = 121665n;
  const mod = (a: bigint): bigint => ((a % P) + P) % P;
  const pow = (b: bigint, e: bigint): bigint => {
    let r = 1n;
    b = mod(b);
    while (e > 0n) {
      if (e & 1n) r = (r * b) % P;
      b = (b * b) % P;
      e >>= 1n;
    }
    return r;
  };
  const fromLE = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
  const s = scalar.slice();
  s[0]! &= 248;
  s[31]! &= 127;
  s[31]! |= 64;
  const k = fromLE(s);
  const uc = u.slice();
  uc[31]! &= 127;
  const x1 = mod(fromLE(uc));
  let x2 = 1n, z2 = 0n, x3 = x1, z3 = 1n, swap = 0n;
  for (let t = 254n; t >= 0n; t--) {
    const kt = (k >> t) & 1n;
    swap ^= kt;
    if (swap) [x2, x3, z2, z3] = [x3, x2, z3, z2];
    swap = kt;
    const A = mod(x2 + z2), AA = (A * A) % P, B = mod(x2 - z2), BB = (B * B) % P, E = mod(AA - BB);
    const C = mod(x3 + z3), D = mod(x3 - z3), DA = (D * A) % P, CB = (C * B) % P;
    x3 = mod((DA + CB) ** 2n);
    z3 = mod(x1 * mod((DA - CB) ** 2n));
    x2 = (AA * BB) % P;
    z2 = mod(E * (AA + A24 * E));
  }
  if (swap) [x2, x3, z2, z3] = [x3, x2, z3, z2];
  const r = (x2 * pow(z2, P - 2n)) % P;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((r >> BigInt(8 * i)) & 0xffn);
  return out;
}
