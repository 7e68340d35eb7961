/**
 * Noise responder: unwrap and authenticate the initiator of a WireGuard handshake.
 * See ./responder.ts for the protocol references (WireGuard paper §5.4.2, §5.4.4).
 * @module
 */
export { Responder } from './responder.js';
export type { ResponderOptions, UnwrapOk, UnwrapReject, UnwrapRejectReason, UnwrapResult } from './responder.js';
export { SeenInitiations } from './seen-initiations.js';
export type { SeenInitiationsOptions } from './seen-initiations.js';
export type { PrivateKeyInput } from '../keys.js';
export {
  compareTai64n,
  decodeTai64n,
  encodeTai64n,
  tai64nFromUnixMs,
  tai64nToUnixMs,
  TAI64_UNIX_EPOCH_LABEL,
} from './tai64n.js';
export type { Tai64n } from './tai64n.js';
export { CONSTRUCTION, IDENTIFIER, LABEL_MAC1 } from './constants.js';
