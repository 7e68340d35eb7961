/**
 * The responder's half of the first WireGuard handshake message: given the gateway's private
 * key and a 148-byte handshake initiation, learn which static public key is knocking and
 * whether the sender really holds its private key.
 *
 * Reference: J. A. Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel" (NDSS 2017),
 * §5.4.2 "First Message: Initiator to Responder" (the handshake computations, mirrored here
 * from the responder's side), §5.4.4 "Cookie MACs" (mac1, mac2), §5.4.7 "Under Load: Cookie
 * Reply Message" (when mac2 matters), §5.1 "Silence is a Virtue" and §5.3 "Denial of Service
 * Mitigation & Cookies" (why cheap checks come first). The Noise pattern is IKpsk2; the
 * preshared key is only mixed in the second message, so the first one needs none.
 *
 * What each step proves:
 * - size/type: nothing; it is the shape of the message.
 * - mac1: only that the sender knows the responder's *public* key (§5.4.4).
 * - replay (optional, see {@link SeenInitiations}): that this ephemeral was not seen lately.
 * - decrypting `msg.static`: nothing about the initiator — anyone can encrypt any public key
 *   under an ephemeral of their own. The decrypted key must be canonically encoded.
 * - decrypting `msg.timestamp`: needs `DH(Spriv_i, Spub_r)`, i.e. the initiator's private
 *   key. Only this authenticates the initiator, so only this yields `ok: true`.
 * Replay protection (the timestamp must be strictly greater than the last one accepted for
 * that key, §5.1/§5.4.2) is the caller's: see {@link compareTai64n}.
 *
 * @module
 */

import type { KeyObject } from 'node:crypto';
import { describe } from '../describe.js';
import { ValidationError } from '../errors.js';
import { importPrivateKey, KEY_LENGTH, publicKeyBytes, type PrivateKeyInput } from '../keys.js';
import { INITIATION_FIELD_LENGTH, INITIATION_LENGTH, INITIATION_OFFSET as OFFSET, isInitiationShape } from '../protocol/initiation.js';
import { aeadOpenCounter0 } from './aead.js';
import { Mac1 } from './blake2s.js';
import { CONSTRUCTION, IDENTIFIER, LABEL_MAC1 } from './constants.js';
import { hashInto, kdf1Into, kdf2Into } from './kdf.js';
import { SeenInitiations } from './seen-initiations.js';
import { decodeTai64n, type Tai64n } from './tai64n.js';
import { dh, isCanonicalPublicKey } from './x25519.js';

/**
 * Why an initiation was rejected, in the order the checks run. `size` and `type` are one
 * shape check, reported apart; `replay` only with {@link ResponderOptions.seenInitiations}.
 */
export type UnwrapRejectReason =
  | 'size'
  | 'type'
  | 'mac1'
  | 'replay'
  | 'ephemeral'
  | 'static'
  | 'static-noncanonical'
  | 'timestamp';

export interface ResponderOptions {
  /**
   * Refuse, before any Diffie-Hellman, an initiation whose ephemeral key this cache has seen
   * (reason `replay`), and remember every initiation that passes mac1. One cache may be shared
   * by several responders (e.g. the old and new key during a rotation).
   */
  readonly seenInitiations?: SeenInitiations;
}

/** The initiator is authenticated: it holds the private key of `publicKey`. */
export interface UnwrapOk {
  readonly ok: true;
  /** The initiator's static public key, base64 (as `wg(8)` prints keys). */
  readonly publicKey: string;
  /** The same key, 32 raw bytes (a fresh copy). */
  readonly publicKeyBytes: Uint8Array;
  /** The decrypted TAI64N timestamp; compare with {@link compareTai64n} for replay protection. */
  readonly timestamp: Tai64n;
  /**
   * `msg.sender`, the initiator's little-endian session index. Covered by mac1 but NOT by the
   * Noise transcript (neither hashed nor AEAD-authenticated, §5.4.2), so anyone on the path who
   * can recompute mac1 (i.e. knows the responder's public key) can change it undetected.
   */
  readonly senderIndex: number;
}

/** The initiation was rejected; `reason` names the first check that failed. */
export interface UnwrapReject {
  readonly ok: false;
  readonly reason: UnwrapRejectReason;
}

export type UnwrapResult = UnwrapOk | UnwrapReject;

const reject = (reason: UnwrapRejectReason): UnwrapReject => Object.freeze({ ok: false as const, reason });
const REJECT_SIZE = reject('size');
const REJECT_TYPE = reject('type');
const REJECT_MAC1 = reject('mac1');
const REJECT_REPLAY = reject('replay');
const REJECT_EPHEMERAL = reject('ephemeral');
const REJECT_STATIC = reject('static');
const REJECT_STATIC_NONCANONICAL = reject('static-noncanonical');
const REJECT_TIMESTAMP = reject('timestamp');

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const MAC_LENGTH = INITIATION_FIELD_LENGTH.mac1;

/** `C_i := HASH(CONSTRUCTION)` — the initial chaining key, the same for every peer (§5.4.2). */
const INITIAL_CHAINING_KEY = hashInto(new Uint8Array(32), utf8(CONSTRUCTION), new Uint8Array(0));
/** `H_i := HASH(C_i ‖ IDENTIFIER)` — before the responder's public key is mixed in (§5.4.2). */
const INITIAL_HASH = hashInto(new Uint8Array(32), INITIAL_CHAINING_KEY, utf8(IDENTIFIER));

/** Why a packet fails the checks that come before any Diffie-Hellman (see {@link Responder.precheck}). */
export type PrecheckRejectReason = 'size' | 'type' | 'mac1';

/**
 * A WireGuard handshake responder for one private key (the gateway interface's).
 *
 * ```ts
 * const responder = new Responder(privateKey, { seenInitiations: new SeenInitiations() });
 * const r = responder.unwrap(udpPayload);
 * if (r.ok) console.log(r.publicKey, r.senderIndex, r.timestamp.seconds);
 * else console.log('rejected:', r.reason);
 * ```
 *
 * `unwrap` never throws for any byte content; it throws `ValidationError` (a `TypeError`) only
 * when its argument is not a `Uint8Array`. The instance keeps scratch buffers, so it is not
 * reentrant — which in JavaScript only matters if you call it from inside itself.
 */
export class Responder {
  readonly #privateKey: KeyObject;
  readonly #publicKey: Uint8Array;
  readonly #publicKeyBase64: string;
  /** `H := HASH(HASH(C_i ‖ IDENTIFIER) ‖ Spub_r)` (§5.4.2). */
  readonly #hash0: Uint8Array;
  /** Keyed BLAKE2s-128 state for mac1, key `HASH(LABEL_MAC1 ‖ Spub_r)` (§5.4.4). */
  readonly #mac1: Mac1;
  readonly #seen: SeenInitiations | undefined;

  // Scratch, wiped at the end of every unwrap.
  readonly #h = new Uint8Array(32);
  readonly #ck = new Uint8Array(32);
  readonly #k = new Uint8Array(32);
  readonly #mac = new Uint8Array(MAC_LENGTH);

  /**
   * @param privateKey the responder's static private key, in any form the rest of jitguard
   *   takes: an X25519 private `KeyObject`, its 32 raw bytes or their base64 (bytes and string
   *   are not retained: imported into a KeyObject, temporary copies wiped).
   * @throws ValidationError (path `privateKey` or `options.…`) naming what was expected and what
   *   was given, never the key's content.
   */
  constructor(privateKey: PrivateKeyInput, options: ResponderOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new ValidationError('options', `expected an options object, got ${describe(options)}`);
    }
    const seen = options.seenInitiations;
    if (seen !== undefined && !(seen instanceof SeenInitiations)) {
      throw new ValidationError('options.seenInitiations', `expected a SeenInitiations, got ${describe(seen)}`);
    }
    this.#seen = seen;
    this.#privateKey = importPrivateKey(privateKey, 'privateKey');
    this.#publicKey = publicKeyBytes(this.#privateKey);
    this.#publicKeyBase64 = Buffer.from(this.#publicKey).toString('base64');
    this.#hash0 = hashInto(new Uint8Array(32), INITIAL_HASH, this.#publicKey);
    const mac1Key = hashInto(new Uint8Array(32), utf8(LABEL_MAC1), this.#publicKey);
    this.#mac1 = new Mac1(mac1Key);
    mac1Key.fill(0);
  }

  /** The responder's static public key, base64. */
  get publicKey(): string {
    return this.#publicKeyBase64;
  }

  /** The responder's static public key, 32 raw bytes (a fresh copy). */
  get publicKeyBytes(): Uint8Array {
    return this.#publicKey.slice();
  }

  /**
   * Only the checks of {@link Responder.unwrap} that come before any Diffie-Hellman: size, type
   * (§5.4.2) and mac1 (§5.4.4), in that order. Returns the reason of the first that fails, or
   * null when all pass. Costs one keyed BLAKE2s (about a microsecond): cheap enough to run where
   * the expensive rest must not (an event loop that hands the rest to a worker thread), so that
   * junk never gets that far.
   * @throws ValidationError (a TypeError) if `packet` is not a Uint8Array (a Buffer is one).
   */
  precheck(packet: Uint8Array): PrecheckRejectReason | null {
    if (!(packet instanceof Uint8Array)) {
      throw new ValidationError('packet', `expected the UDP payload as a Uint8Array of ${INITIATION_LENGTH} bytes, got ${describe(packet)}`);
    }
    // 1, 2. §5.4.2: msg.type := 1 (1 byte), msg.reserved := 0^3.
    if (!isInitiationShape(packet)) return packet.length !== INITIATION_LENGTH ? 'size' : 'type';

    // 3. §5.4.4: msg.mac1 := MAC(HASH(LABEL_MAC1 ‖ Spub_m′), msg_α), msg_α = bytes before mac1.
    const mac = this.#mac1.computeInto(this.#mac, packet, 0, OFFSET.mac1);
    let diff = 0;
    for (let i = 0; i < MAC_LENGTH; i++) diff |= mac[i]! ^ packet[OFFSET.mac1 + i]!;
    mac.fill(0);
    return diff === 0 ? null : 'mac1';
  }

  /**
   * Checks a handshake initiation and, if every check passes, returns the authenticated
   * initiator's static public key, its timestamp and its sender index.
   *
   * Checks, in order, each with its own rejection reason:
   * 1. `size`: exactly 148 bytes (§5.4.2 message layout).
   * 2. `type`: `msg.type = 1` and the three reserved bytes are zero (§5.4.2).
   * 3. `mac1`: `MAC(HASH(LABEL_MAC1 ‖ Spub_r), msg[0..116))` equals bytes 116..131, compared in
   *    constant time (§5.4.4). mac2 is not checked: a responder not under load ignores it
   *    (§5.4.4, §5.4.7), as the kernel does.
   * 4. `replay` (only with `options.seenInitiations`): the cache has seen this ephemeral key;
   *    otherwise it is remembered now, whatever the later checks say.
   * 5. `ephemeral`: `DH(Spriv_r, msg.ephemeral)` is not all zeros (low-order points, §5.4.2 `es`).
   * 6. `static`: `msg.static` decrypts under the key from `es` with `H` as authtext (§5.4.2 `s`);
   *    `static-noncanonical` if the decrypted key is not canonically encoded (bit 255 set, or
   *    u ≥ 2^255 − 19: the same key as a canonical one for X25519, a different one for every
   *    byte comparison); `static` again if it is a low-order point (the `ss` DH is all zeros).
   * 7. `timestamp`: `msg.timestamp` decrypts under the key from `ss = DH(Spriv_r, Spub_i)`
   *    (§5.4.2 `ss`, `{t}`) — the only step that proves the initiator holds `Spriv_i`.
   *
   * Chaining keys, DH outputs, AEAD keys and every KDF output are zeroed before returning.
   * @throws ValidationError (a TypeError) if `packet` is not a Uint8Array (a Buffer is one).
   */
  unwrap(packet: Uint8Array): UnwrapResult {
    const precheck = this.precheck(packet);
    if (precheck !== null) return precheck === 'mac1' ? REJECT_MAC1 : precheck === 'size' ? REJECT_SIZE : REJECT_TYPE;

    // 4. Everything from here costs a DH, and so would a replay of it.
    if (this.#seen !== undefined && !this.#seen.remember(packet)) return REJECT_REPLAY;

    const h = this.#h;
    const ck = this.#ck;
    const k = this.#k;
    let dhOut: Buffer | null = null;
    let plain: Buffer | null = null;
    try {
      // §5.4.2 `e`: C := KDF1(C, msg.ephemeral); H := HASH(H ‖ msg.ephemeral).
      hashInto(h, this.#hash0, packet.subarray(OFFSET.ephemeral, OFFSET.static));
      kdf1Into(INITIAL_CHAINING_KEY, packet, OFFSET.ephemeral, KEY_LENGTH, ck);

      // 4. §5.4.2 `es`: (C, κ) := KDF2(C, DH(Spriv_r, msg.ephemeral)); all-zero DH rejected.
      dhOut = dh(this.#privateKey, packet, OFFSET.ephemeral);
      if (dhOut === null) return REJECT_EPHEMERAL;
      kdf2Into(ck, dhOut, 0, KEY_LENGTH, ck, k);
      dhOut.fill(0);
      dhOut = null;

      // 5. §5.4.2 `s`: Spub_i := AEAD-decrypt(κ, 0, msg.static, H); H := HASH(H ‖ msg.static).
      plain = aeadOpenCounter0(k, packet, OFFSET.static, OFFSET.timestamp - OFFSET.static, h);
      k.fill(0);
      if (plain === null) return REJECT_STATIC;
      const initiatorPublic = new Uint8Array(plain);
      plain.fill(0);
      plain = null;
      // X25519 would ignore bit 255 and reduce mod p, the kernel and allow-lists would not:
      // refuse the alternative spellings before paying for the `ss` DH.
      if (!isCanonicalPublicKey(initiatorPublic)) return REJECT_STATIC_NONCANONICAL;
      hashInto(h, h, packet.subarray(OFFSET.static, OFFSET.timestamp));

      // §5.4.2 `ss`: (C, κ) := KDF2(C, DH(Spriv_r, Spub_i)); all-zero DH (low-order Spub_i)
      // can only come from a bogus static key, so it is reported as `static`.
      dhOut = dh(this.#privateKey, initiatorPublic, 0);
      if (dhOut === null) return REJECT_STATIC;
      kdf2Into(ck, dhOut, 0, KEY_LENGTH, ck, k);
      dhOut.fill(0);
      dhOut = null;
      ck.fill(0); // the responder would continue from here (§5.4.3); we stop.

      // 6. §5.4.2 `{t}`: timestamp := AEAD-decrypt(κ, 0, msg.timestamp, H).
      plain = aeadOpenCounter0(k, packet, OFFSET.timestamp, OFFSET.mac1 - OFFSET.timestamp, h);
      k.fill(0);
      if (plain === null) return REJECT_TIMESTAMP;
      const timestamp = decodeTai64n(plain, 0);
      plain.fill(0);
      plain = null;

      const senderIndex =
        (packet[OFFSET.sender]! | (packet[OFFSET.sender + 1]! << 8) | (packet[OFFSET.sender + 2]! << 16) | (packet[OFFSET.sender + 3]! << 24)) >>> 0;
      return {
        ok: true,
        publicKey: Buffer.from(initiatorPublic.buffer, initiatorPublic.byteOffset, KEY_LENGTH).toString('base64'),
        publicKeyBytes: initiatorPublic,
        timestamp,
        senderIndex,
      };
    } finally {
      if (dhOut !== null) dhOut.fill(0);
      if (plain !== null) plain.fill(0);
      h.fill(0);
      ck.fill(0);
      k.fill(0);
    }
  }
}
