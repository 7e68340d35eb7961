/**
 * The handshake's HASH and KDF through node:crypto's BLAKE2s-256 (OpenSSL), WireGuard paper §5.4:
 * `HASH(input) = BLAKE2s(input, 32)`, `HMAC(key, input) = HMAC-BLAKE2s(key, input, 32)`, and
 * `KDF_n(key, input)`: τ0 = HMAC(key, input), τ1 = HMAC(τ0, 0x1), τi = HMAC(τ0, τi−1 ‖ i).
 *
 * The alternative the responder does not use, kept for the benches that compare it with
 * lib/noise/kdf.ts (bench/gateway/verify-spaced.ts, verify-cold.ts): same signatures. The
 * responder used it for a while, on the grounds that rarely run JavaScript runs interpreted;
 * measured alone and back to back, on the host and in the VM, the JavaScript one is cheaper.
 *
 * Secrets: OpenSSL copies the key into its HMAC state and clears that state when it is freed;
 * every Buffer node:crypto hands back here (τ0, τ1, τ2, digests) is zeroed before returning.
 *
 * @module
 */

import { createHash, createHmac } from 'node:crypto';

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);

/** `HASH(a ‖ b)` without concatenating; writes 32 bytes into `out` (which may be `a` or `b`). */
export function hashInto(out: Uint8Array, a: Uint8Array, b: Uint8Array): Uint8Array {
  const digest = createHash('blake2s256').update(a).update(b).digest();
  out.set(digest);
  digest.fill(0);
  return out;
}

/**
 * `KDF1(key, input)` (§5.4): writes τ1 into `out1`. `input` is `src[off .. off+len)`.
 * `out1` may be `key`.
 */
export function kdf1Into(key: Uint8Array, src: Uint8Array, off: number, len: number, out1: Uint8Array): void {
  const tau0 = createHmac('blake2s256', key).update(src.subarray(off, off + len)).digest();
  const tau1 = createHmac('blake2s256', tau0).update(ONE).digest();
  tau0.fill(0);
  out1.set(tau1);
  tau1.fill(0);
}

/**
 * `KDF2(key, input)` (§5.4): writes τ1 into `out1` and τ2 into `out2`. `input` is
 * `src[off .. off+len)`. `out1` may be `key`.
 */
export function kdf2Into(key: Uint8Array, src: Uint8Array, off: number, len: number, out1: Uint8Array, out2: Uint8Array): void {
  const tau0 = createHmac('blake2s256', key).update(src.subarray(off, off + len)).digest();
  const tau1 = createHmac('blake2s256', tau0).update(ONE).digest();
  const tau2 = createHmac('blake2s256', tau0).update(tau1).update(TWO).digest();
  tau0.fill(0);
  out1.set(tau1);
  out2.set(tau2);
  tau1.fill(0);
  tau2.fill(0);
}
