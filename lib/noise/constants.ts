/**
 * Constants of WireGuard's handshake, as given in the WireGuard paper
 * (J. A. Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel", NDSS 2017),
 * §5.4 "Messages" and §5.4.2 "First Message: Initiator to Responder".
 *
 * @module
 */

/** The Noise protocol name; `HASH(CONSTRUCTION)` is the initial chaining key (§5.4, §5.4.2). */
export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s';

/** Mixed into the initial hash after the construction: `H = HASH(C ‖ IDENTIFIER)` (§5.4.2). */
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com';

/** Label of the mac1 key: `HASH(LABEL_MAC1 ‖ Spub_m′)` (§5.4.4 "Cookie MACs"). */
export const LABEL_MAC1 = 'mac1----';

/** Label of the cookie key, used only for mac2 / cookie replies (§5.4.7); listed for completeness. */
export const LABEL_COOKIE = 'cookie--';

/** Message type of a handshake initiation (§5.4.2: `msg.type := 1`). */
export const MESSAGE_TYPE_INITIATION = 1;

/** Size of a handshake initiation on the wire: 4+4+32+48+28+16+16 = 148 bytes (§5.4.2). */
export const INITIATION_SIZE = 148;

/** Byte offsets of the fields of a handshake initiation (§5.4.2). */
export const OFFSET = Object.freeze({
  /** `msg.type` (1 byte) followed by `msg.reserved` (3 zero bytes). */
  type: 0,
  /** `msg.sender` (little-endian uint32 chosen by the initiator). */
  sender: 4,
  /** `msg.ephemeral` (32 bytes, cleartext X25519 public key). */
  ephemeral: 8,
  /** `msg.static` = AEAD(κ, 0, Spub_i, H) (32 + 16 bytes). */
  static: 40,
  /** `msg.timestamp` = AEAD(κ, 0, TAI64N(), H) (12 + 16 bytes). */
  timestamp: 88,
  /** `msg.mac1` (16 bytes) over bytes 0..115. */
  mac1: 116,
  /** `msg.mac2` (16 bytes) over bytes 0..131; zero unless the initiator holds a cookie. */
  mac2: 132,
} as const);

/** X25519 key length, and length of BLAKE2s-256 / HMAC-BLAKE2s outputs. */
export const KEY_SIZE = 32;
/** Poly1305 tag length. */
export const TAG_SIZE = 16;
/** TAI64N timestamp length (8-byte seconds label + 4-byte nanoseconds, big-endian). */
export const TIMESTAMP_SIZE = 12;
/** mac1 / mac2 length (keyed BLAKE2s with 16-byte output). */
export const MAC_SIZE = 16;
