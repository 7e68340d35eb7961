/**
 * Handshake capture: the public API of lib/capture.
 */
export { HandshakeCapture, DEFAULT_BATCH, DEFAULT_QUEUE_LIMIT, DEFAULT_RECEIVE_BUFFER, LINK_POLL_INTERVAL_MS } from './capture.js';
export type {
  CaptureStats,
  DetachedCaptureOptions,
  EndpointInput,
  HandshakeCaptureEvents,
  HandshakeCaptureOptions,
  HandshakeInitiation,
  LinkDownPolicy,
  LinkState,
  SocketAddress,
} from './capture.js';
export { CaptureError, isCaptureNotFound } from './errors.js';
export {
  handshakeFilter,
  validatePorts,
  validateDestinations,
  DEFAULT_PORT,
  HANDSHAKE_SNAP_LENGTH,
  INITIATION_LENGTH,
  INITIATION_UDP_LENGTH,
  MAX_PORTS,
  MAX_DESTINATIONS,
} from './filter.js';
export type { HandshakeFilter, HandshakeFilterOptions } from './filter.js';
export { bpfProgram, decodeInstructions, disassemble, encodeInstructions, BpfAssembler, SKF_NET_OFF, SKF_LL_OFF } from './bpf.js';
export type { BpfInstruction, BpfProgram } from './bpf.js';
export { runFilter, checkProgram, BpfProgramError } from './bpf-interpreter.js';
export type { BpfContext } from './bpf-interpreter.js';
export { parseInitiation, isInitiationPayload } from './packet.js';
export { DUPLICATE_WINDOW_MS } from './duplicates.js';
export type { ParsedInitiation } from './packet.js';
