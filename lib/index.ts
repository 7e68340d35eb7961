/**
 * jitguard: just-in-time kernel WireGuard peers for Node gateway services.
 */
export { WireGuard } from './wireguard/client.js';
export type { WireGuardOptions } from './wireguard/client.js';
export type { Device, DeviceConfig, Peer, PeerConfig } from './wireguard/types.js';
export { WireGuardError, ValidationError, isNotFound } from './errors.js';
export type { Progress } from './errors.js';
export type { KeyInput, PrivateKeyInput } from './keys.js';
export type { NetlinkTransport, ExchangeResult } from './netlink/transport.js';
export { installAsInitiator, endpointOf } from './jit/initiator.js';
export type { InitiatorInstall } from './jit/initiator.js';
export * from './capture/index.js';
export * from './noise/index.js';
