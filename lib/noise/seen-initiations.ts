/**
 * A bounded memory of recently seen handshake initiations, so that a replayed one can be
 * refused before any Diffie-Hellman.
 *
 * Why: `Responder.unwrap` must do two X25519 operations (≈ 80 µs) before it can tell a replay
 * from a fresh initiation — the timestamp that proves freshness is encrypted under the second
 * one. One captured initiation replayed at 10k packets/s would thus fill the event loop. A
 * replay is refused here in well under a microsecond.
 *
 * What identifies an initiation: its ephemeral public key (bytes 8..39). Every honest
 * initiation carries a fresh one (WireGuard paper §5.4.2: `E_priv_i := DH-GENERATE()`), and
 * it is the field an attacker cannot change without redoing the work: it is hashed into the
 * transcript and feeds the `es` DH, so a changed ephemeral makes `msg.static` undecryptable.
 * mac1 would be the wrong key: it covers `msg.sender`, which is outside the transcript, so
 * anyone who knows the responder's public key can change the sender index, recompute mac1 and
 * replay the same handshake as a "new" packet. Consequently a packet whose ephemeral was seen is
 * treated as seen whatever its other bytes: such a packet is a replay, a mutation of one (a
 * changed sender index still verifies, see `UnwrapOk.senderIndex`), or junk that would fail.
 *
 * Only the first 8 bytes of the ephemeral are kept (an honest ephemeral's u-coordinate is
 * uniform, so two honest ones share them with probability 2^-64 per pair); an attacker who
 * wants a fresh initiation refused must learn its ephemeral first, i.e. be on the path, where
 * they could as well drop it.
 *
 * Memory is fixed at construction: a ring of `capacity` 8-byte keys in insertion order and an
 * open-addressing index at most half full (16–24 bytes per entry in all; 1 MiB for the default
 * 65,536). No allocation per operation; `has` and `remember` are O(1) expected. The index's hash
 * is keyed with per-instance random multipliers, so chosen ephemerals cannot be aimed at one
 * probe chain. When full, `remember` forgets the oldest entry; a hit does not refresh an entry
 * (a replay flood of one packet then costs one full unwrap per `capacity` fresh initiations).
 * There is no expiry by age: a repeated ephemeral is never legitimate, so forgetting an entry
 * earlier than capacity requires would only reopen the door.
 *
 * Use (see also `ResponderOptions.seenInitiations`, which does exactly this inside `unwrap`):
 * ```ts
 * if (seen.has(packet)) return;                    // replay: refused before any DH
 * const r = responder.unwrap(packet);
 * if (r.ok || !PRE_DH.has(r.reason)) seen.remember(packet);  // PRE_DH = size, type, mac1
 * ```
 * Remember every packet that passed mac1, whatever the outcome after it: each of them cost a DH,
 * and so would its replay. Packets that failed mac1 are never remembered, so random junk cannot
 * evict anything; only a sender who knows the responder's public key can, at the price of
 * making us do one DH per evicting packet — which such a sender can always make us do.
 *
 * @module
 */

import { randomBytes } from 'node:crypto';
import { describe } from '../describe.js';
import { ValidationError } from '../errors.js';
import { INITIATION_LENGTH, INITIATION_OFFSET, isInitiationShape } from '../protocol/initiation.js';

export interface SeenInitiationsOptions {
  /**
   * How many initiations are remembered before the oldest is forgotten: an integer from 1 to
   * {@link SeenInitiations.MAX_CAPACITY}. Default {@link SeenInitiations.DEFAULT_CAPACITY}.
   * A replay is refused cheaply as long as fewer than `capacity` mac1-valid initiations arrived
   * after it; size it to the initiations a replayer could have captured (every active peer
   * sends one per two minutes: 65,536 covers ~10,000 active peers for ~13 minutes).
   */
  readonly capacity?: number;
}

const EPHEMERAL_LO = INITIATION_OFFSET.ephemeral;
const EPHEMERAL_HI = INITIATION_OFFSET.ephemeral + 4;

const readU32LE = (b: Uint8Array, at: number): number =>
  (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

export class SeenInitiations {
  static readonly DEFAULT_CAPACITY = 65_536;
  /** 2^22 entries: 64 MiB. */
  static readonly MAX_CAPACITY = 1 << 22;

  /** The most entries kept. */
  readonly capacity: number;

  /** Ring of keys in insertion order: slot s holds `[lo, hi]` at `2s`, `2s + 1`. */
  readonly #keys: Uint32Array;
  /** Linear-probing index: 0 = empty, otherwise ring slot + 1. Length a power of two ≥ 2·capacity. */
  readonly #index: Uint32Array;
  readonly #mask: number;
  readonly #shift: number;
  readonly #mulLo: number;
  readonly #mulHi: number;
  readonly #add: number;
  /** The ring slot written next; once full, also the oldest entry. */
  #head = 0;
  #size = 0;

  constructor(options: SeenInitiationsOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError('options', `expected an options object, got ${describe(options)}`);
    }
    const capacity = options.capacity ?? SeenInitiations.DEFAULT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > SeenInitiations.MAX_CAPACITY) {
      throw new ValidationError(
        'options.capacity',
        `expected an integer from 1 to ${SeenInitiations.MAX_CAPACITY}, got ${typeof capacity === 'number' ? capacity : describe(capacity)}`,
      );
    }
    this.capacity = capacity;
    this.#keys = new Uint32Array(2 * capacity);
    const bits = Math.max(1, Math.ceil(Math.log2(2 * capacity)));
    this.#index = new Uint32Array(1 << bits);
    this.#mask = (1 << bits) - 1;
    this.#shift = 32 - bits;
    const seed = randomBytes(12);
    this.#mulLo = (seed.readUInt32LE(0) | 1) >>> 0;
    this.#mulHi = (seed.readUInt32LE(4) | 1) >>> 0;
    this.#add = seed.readUInt32LE(8);
  }

  /** How many initiations are remembered now (at most `capacity`). */
  get size(): number {
    return this.#size;
  }

  /**
   * True if an initiation with the same ephemeral key was remembered and not yet forgotten.
   * False for anything that is not initiation-shaped (148 bytes, `01 00 00 00`): it can never
   * have been remembered. Never throws for byte content.
   * @throws ValidationError if `packet` is not a Uint8Array.
   */
  has(packet: Uint8Array): boolean {
    if (!(packet instanceof Uint8Array)) throw notBytes(packet);
    if (!isInitiationShape(packet)) return false;
    return this.#find(readU32LE(packet, EPHEMERAL_LO), readU32LE(packet, EPHEMERAL_HI)) >= 0;
  }

  /**
   * Remembers the initiation's ephemeral key, forgetting the oldest entry when full. Returns
   * true if it was new, false if it was already remembered (then nothing changes: the entry
   * keeps its age). One probe, so "check, then remember" is a single call.
   * @throws ValidationError if `packet` is not a 148-byte handshake initiation.
   */
  remember(packet: Uint8Array): boolean {
    if (!(packet instanceof Uint8Array)) throw notBytes(packet);
    if (!isInitiationShape(packet)) {
      const what = packet.length === INITIATION_LENGTH ? 'a 148-byte message of another type' : describe(packet);
      throw new ValidationError('packet', `expected a ${INITIATION_LENGTH}-byte handshake initiation (starting 01 00 00 00), got ${what}`);
    }
    const lo = readU32LE(packet, EPHEMERAL_LO);
    const hi = readU32LE(packet, EPHEMERAL_HI);
    if (this.#find(lo, hi) >= 0) return false;
    const keys = this.#keys;
    const slot = this.#head;
    if (this.#size === this.capacity) {
      const oldest = this.#find(keys[2 * slot]!, keys[2 * slot + 1]!);
      if (oldest < 0) throw new Error('SeenInitiations: oldest entry unreachable (internal invariant broken)');
      this.#unlink(oldest);
    } else {
      this.#size++;
    }
    keys[2 * slot] = lo;
    keys[2 * slot + 1] = hi;
    const index = this.#index;
    let i = this.#home(lo, hi);
    // At most half the index is in use, so an empty position is always found; the bound only
    // turns a broken invariant into an exception instead of a hung event loop.
    for (let probes = 0; index[i] !== 0; i = (i + 1) & this.#mask) {
      if (++probes > this.#mask) throw new Error('SeenInitiations: index full (internal invariant broken)');
    }
    index[i] = slot + 1;
    this.#head = slot + 1 === this.capacity ? 0 : slot + 1;
    return true;
  }

  /** Forgets everything. */
  clear(): void {
    this.#index.fill(0);
    this.#keys.fill(0);
    this.#head = 0;
    this.#size = 0;
  }

  /** Multiply-shift over both halves with random multipliers: the top bits mix every input bit. */
  #home(lo: number, hi: number): number {
    return ((Math.imul(lo, this.#mulLo) + Math.imul(hi, this.#mulHi) + this.#add) >>> this.#shift) & this.#mask;
  }

  /** Position in the index of the entry with this key, or −1. */
  #find(lo: number, hi: number): number {
    const index = this.#index;
    const keys = this.#keys;
    for (let i = this.#home(lo, hi), probes = 0; probes <= this.#mask; i = (i + 1) & this.#mask, probes++) {
      const v = index[i]!;
      if (v === 0) return -1;
      const s = 2 * (v - 1);
      if (keys[s] === lo && keys[s + 1] === hi) return i;
    }
    return -1;
  }

  /**
   * Empties index position `hole` and shifts later members of its probe run back into it, so
   * that every remaining entry stays reachable from its home without tombstones.
   */
  #unlink(hole: number): void {
    const index = this.#index;
    const keys = this.#keys;
    const mask = this.#mask;
    for (let j = (hole + 1) & mask; index[j] !== 0; j = (j + 1) & mask) {
      const v = index[j]!;
      const home = this.#home(keys[2 * (v - 1)]!, keys[2 * (v - 1) + 1]!);
      // The entry at j may move to the hole only if its home is not cyclically in (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      index[hole] = v;
      hole = j;
    }
    index[hole] = 0;
  }
}

function notBytes(packet: unknown): ValidationError {
  return new ValidationError('packet', `expected the UDP payload as a Uint8Array of ${INITIATION_LENGTH} bytes, got ${describe(packet)}`);
}
