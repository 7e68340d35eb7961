/**
 * jitguard: just-in-time kernel WireGuard peers for Node gateway services.
 */
export { WireGuard } from './wireguard/client.js';
export type { WireGuardOptions } from './wireguard/client.js';
export type { Device, DeviceConfig, DeviceWithPrivateKey, GetDeviceOptions, Peer, PeerConfig } from './wireguard/types.js';
export { SystemError, WireGuardError, ValidationError, isNotFound } from './errors.js';
export { NetlinkDecodeError } from './netlink/attributes.js';
export type { Progress } from './errors.js';
export type { KeyInput, PrivateKeyInput } from './keys.js';
export type { NetlinkTransport, ExchangeResult } from './netlink/transport.js';
export { installAsInitiator, settleInitiator, endpointOf } from './jit/initiator.js';
export type { InitiatorInstall } from './jit/initiator.js';
export {
  HandshakeCapture, CaptureError, isCaptureNotFound, handshakeFilter, bpfProgram, runFilter, disassemble,
  parseInitiation, isInitiationPayload, DEFAULT_PORT, INITIATION_LENGTH,
} from './capture/index.js';
export type {
  HandshakeCaptureOptions, DetachedCaptureOptions, HandshakeInitiation, CaptureStats, SocketAddress, EndpointInput,
  HandshakeCaptureEvents, HandshakeFilter, HandshakeFilterOptions, BpfProgram, BpfInstruction, BpfContext,
} from './capture/index.js';
export { Responder, compareTai64n, decodeTai64n, encodeTai64n, tai64nFromUnixMs, tai64nToUnixMs } from './noise/index.js';
export type { UnwrapOk, UnwrapReject, UnwrapRejectReason, UnwrapResult, Tai64n } from './noise/index.js';
export { SeenInitiations } from './noise/index.js';
export type { ResponderOptions, SeenInitiationsOptions } from './noise/index.js';
export {
  isInitiationShape, INITIATION_OFFSET, INITIATION_FIELD_LENGTH,
  MESSAGE_TYPE_INITIATION, MESSAGE_TYPE_RESPONSE, MESSAGE_TYPE_COOKIE_REPLY, MESSAGE_TYPE_DATA,
} from './protocol/initiation.js';
export { Gateway } from './gateway/gateway.js';
export type { GatewayOptions, GatewayEvents, GatewayKernel } from './gateway/gateway.js';
export { GatewayError } from './gateway/errors.js';
export type { GatewayStats } from './gateway/metrics.js';
export { validatePeerConfig, keyToUrl, keyFromUrl, MAX_ALLOWED_IPS } from './gateway/peer-config.js';
export type { PeerConfigValue } from './gateway/peer-config.js';
export { REJECT_REASONS } from './gateway/types.js';
export type {
  Store, StoredPeer, PeerOrigin, Resolver, ResolvedPeer, RejectReason, EvictReason, InstalledEvent, RejectedEvent, EvictedEvent,
} from './gateway/types.js';
export { WebSocketRelay, BINARY_SUBPROTOCOL } from './websocket/relay.js';
export type { WebSocketRelayOptions, WebSocketRelayEvents, RelayDisconnectEvent } from './websocket/relay.js';
export type { WebSocketRelayStats, RefuseReason, CloseReason, DropReason } from './websocket/metrics.js';
export { WebSocketBridge, startWebSocketBridge, parsePinSha256, BridgeError } from './websocket/bridge.js';
export type { WebSocketBridgeOptions, WebSocketBridgeEvents, WebSocketBridgeStats, BridgeDisconnectEvent, BridgeDropReason } from './websocket/bridge.js';
export {
  FrameParser, RelayProtocolError, encodeFrame, encodeKeepalive, encodeMagic, WSWG_MAGIC, MAX_DATAGRAM_LENGTH, LENGTH_PREFIX_BYTES,
} from './websocket/stream.js';
export type { FrameParserOptions, RelayProtocolErrorReason } from './websocket/stream.js';
export { SqliteStore, StoreError } from './gateway/sqlite-store.js';
export type { SqliteStoreOptions } from './gateway/sqlite-store.js';
export { httpResolver, ResolverError } from './gateway/http-resolver.js';
export type { HttpResolverOptions } from './gateway/http-resolver.js';
