/**
 * Noise responder: unwrap and authenticate the initiator of a WireGuard handshake.
 * See ./responder.ts for the protocol references (WireGuard paper §5.4.2, §5.4.4).
 * @module
 */
export { Responder } from './responder.js';
export type { UnwrapOk, UnwrapReject, UnwrapRejectReason, UnwrapResult } from './responder.js';
export type { PrivateKeyInput } from './x25519.js';
export {
  compareTai64n,
  decodeTai64n,
  encodeTai64n,
  tai64nFromUnixMs,
  tai64nToUnixMs,
  TAI64_UNIX_EPOCH_LABEL,
} from './tai64n.js';
export type { Tai64n } from './tai64n.js';
export {
  CONSTRUCTION,
  IDENTIFIER,
  LABEL_MAC1,
  INITIATION_SIZE,
  MESSAGE_TYPE_INITIATION,
} from './constants.js';
