/**
 * The handshake's HASH and KDF, WireGuard paper §5.4: `HASH(input) = BLAKE2s(input, 32)`,
 * `HMAC(key, input) = HMAC-BLAKE2s(key, input, 32)`, and `KDF_n(key, input)`: τ0 = HMAC(key,
 * input), τ1 = HMAC(τ0, 0x1), τi = HMAC(τ0, τi−1 ‖ i), over lib/noise/blake2s.ts's JavaScript
 * BLAKE2s.
 *
 * Why JavaScript and not node:crypto's BLAKE2s-256 (OpenSSL): a verification's HASH and KDF
 * cost, per bench/gateway/verify-spaced.ts (bench/results/gateway-verify-spaced-*.json), on this
 * project's host 0.08 ms in JavaScript against 0.19 ms through `createHash`/`createHmac` when
 * the verification runs alone (one every 300 ms, as a gateway's knocks do), and 0.015 against
 * 0.030 ms back to back; in the TCG test VM 1.26 against 4.42 ms alone and 0.20 against 1.03 ms
 * back to back (bench/results/gateway-verify-spaced-2026-12-02.json). Each node:crypto call creates an OpenSSL context; ours reuse two prepared HMAC
 * states. (Interpreted, `node --no-opt --no-sparkplug`, ours is slower: bench/gateway/verify-cold.ts.
 * The verifier warms it up at start, lib/noise/warm-up.ts.)
 *
 * Secrets: the HMAC states and τ0 are module scratch, wiped before every function returns.
 * One module instance per thread, and no function here yields, so calls never interleave.
 *
 * @module
 */

import { hash2Into, HmacBlake2s, kdfInto } from './blake2s.js';

const keyed = new HmacBlake2s();
const tmp = new HmacBlake2s();
const tau0 = new Uint8Array(32);

/** `HASH(a ‖ b)` without concatenating; writes 32 bytes into `out` (which may be `a` or `b`). */
export function hashInto(out: Uint8Array, a: Uint8Array, b: Uint8Array): Uint8Array {
  return hash2Into(out, a, b);
}

/**
 * `KDF1(key, input)` (§5.4): writes τ1 into `out1`. `input` is `src[off .. off+len)`.
 * `out1` may be `key`.
 */
export function kdf1Into(key: Uint8Array, src: Uint8Array, off: number, len: number, out1: Uint8Array): void {
  try {
    keyed.setKey(key);
    kdfInto(keyed, tmp, tau0, src, off, len, out1);
  } finally {
    keyed.wipe();
    tau0.fill(0);
  }
}

/**
 * `KDF2(key, input)` (§5.4): writes τ1 into `out1` and τ2 into `out2`. `input` is
 * `src[off .. off+len)`. `out1` may be `key`.
 */
export function kdf2Into(key: Uint8Array, src: Uint8Array, off: number, len: number, out1: Uint8Array, out2: Uint8Array): void {
  try {
    keyed.setKey(key);
    kdfInto(keyed, tmp, tau0, src, off, len, out1, out2);
  } finally {
    keyed.wipe();
    tau0.fill(0);
  }
}
