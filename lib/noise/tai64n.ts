/**
 * TAI64N timestamps as WireGuard sends them in the handshake initiation (WireGuard paper
 * §5.4.2: `msg.timestamp := AEAD(κ, 0, TAI64N(), H_i)`). The replay rule is the paper's
 * (§5.1): "The responder keeps track of the greatest timestamp received per peer and discards
 * packets containing timestamps less than or equal to it" — it need only be a per-peer
 * monotonically increasing 96-bit number, compared with `memcmp`.
 *
 * Wire form: 12 bytes, an 8-byte big-endian seconds label followed by a 4-byte big-endian
 * nanoseconds field. Both wireguard-go and the Linux kernel put `2^62 + 10 + unix seconds` in
 * the label (the constant 10 is TAI64's 1972 offset, no leap-second table) and coarsen the
 * nanoseconds (to limit what the timestamp reveals), so only the ordering is meaningful.
 *
 * The kernel compares timestamps with `memcmp` over the 12 bytes; {@link compareTai64n}
 * gives exactly that order.
 *
 * @module
 */

import { describe } from '../describe.js';
import { ValidationError } from '../errors.js';
import { TIMESTAMP_SIZE } from './constants.js';

/** A TAI64N timestamp: its 12 wire bytes plus a comparable decoded form. */
export interface Tai64n {
  /** The 12 bytes as decrypted from the initiation (a copy, owned by this object). */
  readonly bytes: Uint8Array;
  /** The 64-bit seconds label (`2^62 + 10 + unix seconds` for WireGuard senders). */
  readonly seconds: bigint;
  /** The 32-bit nanoseconds field (not range-checked: any uint32 orders as the kernel would). */
  readonly nanoseconds: number;
}

/** `2^62 + 10`: the TAI64 label of the unix epoch as WireGuard implementations compute it. */
export const TAI64_UNIX_EPOCH_LABEL = 0x400000000000000an;

/**
 * Decodes 12 TAI64N bytes (copied) from `src` at `off`.
 * @throws ValidationError (path `src`) if `src` is not a Uint8Array or has no 12 bytes at `off`.
 */
export function decodeTai64n(src: Uint8Array, off = 0): Tai64n {
  if (!(src instanceof Uint8Array)) {
    throw new ValidationError('src', `expected TAI64N bytes in a Uint8Array, got ${describe(src)}`);
  }
  if (!Number.isInteger(off) || off < 0 || src.length - off < TIMESTAMP_SIZE) {
    throw new ValidationError('src', `expected ${TIMESTAMP_SIZE} TAI64N bytes at offset ${off}, got ${Number.isInteger(off) ? Math.max(0, src.length - Math.max(0, off)) : 0}`);
  }
  // a real copy even for a Buffer (whose slice() is a view)
  const bytes = new Uint8Array(src.subarray(off, off + TIMESTAMP_SIZE));
  const hi = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const lo = ((bytes[4]! << 24) | (bytes[5]! << 16) | (bytes[6]! << 8) | bytes[7]!) >>> 0;
  const nanoseconds = ((bytes[8]! << 24) | (bytes[9]! << 16) | (bytes[10]! << 8) | bytes[11]!) >>> 0;
  return { bytes, seconds: (BigInt(hi) << 32n) | BigInt(lo), nanoseconds };
}

/**
 * Encodes a TAI64N timestamp from a seconds label and nanoseconds.
 * @throws ValidationError if `seconds` is not a bigint in 0..2^64−1 or `nanoseconds` not a uint32.
 */
export function encodeTai64n(seconds: bigint, nanoseconds: number): Tai64n {
  if (typeof seconds !== 'bigint' || seconds < 0n || seconds >= 1n << 64n) {
    throw new ValidationError('seconds', `expected a TAI64 label as a bigint from 0 to 2^64 − 1, got ${typeof seconds === 'bigint' ? seconds : describe(seconds)}`);
  }
  if (!Number.isInteger(nanoseconds) || nanoseconds < 0 || nanoseconds > 0xffffffff) {
    throw new ValidationError('nanoseconds', `expected an integer from 0 to 2^32 − 1, got ${typeof nanoseconds === 'number' ? nanoseconds : describe(nanoseconds)}`);
  }
  const bytes = new Uint8Array(TIMESTAMP_SIZE);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, seconds, false);
  view.setUint32(8, nanoseconds, false);
  return { bytes, seconds, nanoseconds };
}

/** The TAI64N label WireGuard would send at unix time `unixMs` (milliseconds). */
export function tai64nFromUnixMs(unixMs: number): Tai64n {
  if (typeof unixMs !== 'number' || !Number.isFinite(unixMs)) {
    throw new ValidationError('unixMs', `expected a finite number of milliseconds, got ${typeof unixMs === 'number' ? unixMs : describe(unixMs)}`);
  }
  const ms = Math.floor(unixMs);
  const secs = Math.floor(ms / 1000);
  const nanos = (ms - secs * 1000) * 1_000_000;
  return encodeTai64n(TAI64_UNIX_EPOCH_LABEL + BigInt(secs), nanos);
}

/** Unix time in milliseconds of a WireGuard TAI64N timestamp (inverse of {@link tai64nFromUnixMs}). */
export function tai64nToUnixMs(t: Tai64n): number {
  return Number(t.seconds - TAI64_UNIX_EPOCH_LABEL) * 1000 + Math.floor(t.nanoseconds / 1_000_000);
}

/**
 * Orders two timestamps as the kernel does (`memcmp` of the 12 bytes): negative if `a` is
 * earlier, 0 if equal, positive if later. A gateway accepts an initiation only if
 * `compareTai64n(new, greatestSeenForThatKey) > 0`.
 */
export function compareTai64n(a: Tai64n, b: Tai64n): -1 | 0 | 1 {
  if (a.seconds !== b.seconds) return a.seconds < b.seconds ? -1 : 1;
  if (a.nanoseconds !== b.nanoseconds) return a.nanoseconds < b.nanoseconds ? -1 : 1;
  return 0;
}
