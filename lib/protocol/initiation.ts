/**
 * The wire layout of WireGuard's first handshake message, the one the capture looks for and the
 * responder unwraps. One definition, so the filter, the parser and the responder cannot drift.
 *
 * Reference: J. A. Donenfeld, "WireGuard: Next Generation Kernel Network Tunnel" (NDSS 2017),
 * §5.4.2 "First Message: Initiator to Responder" (layout), §5.4 (the four message types);
 * the kernel's `struct message_handshake_initiation` (drivers/net/wireguard/messages.h) agrees.
 *
 * @module
 */

/** `msg.type` of a handshake initiation (§5.4.2). */
export const MESSAGE_TYPE_INITIATION = 1;
/** `msg.type` of a handshake response (§5.4.3). */
export const MESSAGE_TYPE_RESPONSE = 2;
/** `msg.type` of a cookie reply (§5.4.7). */
export const MESSAGE_TYPE_COOKIE_REPLY = 3;
/** `msg.type` of a transport data message (§5.4.6). */
export const MESSAGE_TYPE_DATA = 4;

/**
 * Length of each field of a handshake initiation, in wire order. `type` covers `msg.type`
 * (1 byte) and `msg.reserved` (3 zero bytes); `static` and `timestamp` include their 16-byte
 * Poly1305 tags (32 + 16 and 12 + 16).
 */
export const INITIATION_FIELD_LENGTH = Object.freeze({
  type: 4,
  sender: 4,
  ephemeral: 32,
  static: 48,
  timestamp: 28,
  mac1: 16,
  mac2: 16,
} as const);

/** Byte offset of each field of a handshake initiation (the running sum of the lengths above). */
export const INITIATION_OFFSET = Object.freeze({
  /** `msg.type` then `msg.reserved`. */
  type: 0,
  /** `msg.sender`, the initiator's little-endian uint32 session index. */
  sender: 4,
  /** `msg.ephemeral`, a cleartext X25519 public key. */
  ephemeral: 8,
  /** `msg.static` = AEAD(κ, 0, Spub_i, H). */
  static: 40,
  /** `msg.timestamp` = AEAD(κ, 0, TAI64N(), H). */
  timestamp: 88,
  /** `msg.mac1`, over bytes 0..115. */
  mac1: 116,
  /** `msg.mac2`, over bytes 0..131; zero unless the initiator holds a cookie. */
  mac2: 132,
} as const);

/** Length of a handshake initiation: 4 + 4 + 32 + 48 + 28 + 16 + 16 = 148 bytes (§5.4.2). */
export const INITIATION_LENGTH = 148;

/**
 * True when `bytes` has the shape of a handshake initiation: exactly 148 bytes, starting
 * `01 00 00 00` (type 1, reserved zero). Says nothing about authenticity: that takes mac1 and
 * the Noise handshake (see `Responder`).
 */
export function isInitiationShape(bytes: Uint8Array): boolean {
  return (
    bytes.length === INITIATION_LENGTH &&
    bytes[0] === MESSAGE_TYPE_INITIATION &&
    bytes[1] === 0 &&
    bytes[2] === 0 &&
    bytes[3] === 0
  );
}
