/**
 * The WireGuard configuration model, with wgctrl-go's semantics:
 *
 * **A field left `undefined` is left unchanged.** Only what a call names is changed.
 *
 * Named booleans, each documented once here:
 * - `DeviceConfig.replacePeers`: remove every peer first, then create the ones listed in this
 *   call, so a listed peer keeps nothing of its previous state (allowed IPs, endpoint,
 *   session). With no `peers`, removes all peers.
 * - `PeerConfig.remove`: remove this peer. Removing a peer that is not there is not an error
 *   (the kernel ignores it; so do we, and say so here).
 * - `PeerConfig.updateOnly`: change this peer only if it already exists; never create it.
 *   A missing peer is silently skipped by the kernel; jitguard does not report it either.
 * - `PeerConfig.replaceAllowedIps`: replace this peer's allowed IPs with `allowedIps`
 *   (an empty list clears them) instead of adding to them.
 *
 * The kernel stores a private key clamped (RFC 7748 §5), as `wg genkey` makes them; an
 * unclamped key is accepted and has the same public key, but reads back clamped.
 *
 * Clearing: `privateKey: null` removes the interface key; `presharedKey: null` removes the
 * peer's preshared key; `fwmark: 0`, `persistentKeepalive: 0` and `listenPort: 0` have the
 * kernel's meaning (off / off / pick a random port).
 */
import type { KeyObject } from 'node:crypto';
import type { KeyInput, PrivateKeyInput } from '../keys.js';

export interface DeviceConfig {
  privateKey?: PrivateKeyInput | null;
  listenPort?: number;
  fwmark?: number;
  replacePeers?: boolean;
  peers?: PeerConfig[];
}

export interface PeerConfig {
  publicKey: KeyInput;
  remove?: boolean;
  updateOnly?: boolean;
  presharedKey?: KeyInput | null;
  /** "ip:port" or "[ipv6]:port"; numeric only (no name resolution). */
  endpoint?: string;
  /** Seconds, 0 to 65535; 0 turns keepalive off. */
  persistentKeepalive?: number;
  replaceAllowedIps?: boolean;
  /** CIDR strings; host bits are cleared, as the kernel stores them. */
  allowedIps?: string[];
}

/** A device as read back from the kernel. The private key is not included (see `DeviceWithPrivateKey`). */
export interface Device {
  name: string;
  ifindex: number;
  /** Base64 public key, or null when the interface has no private key. */
  publicKey: string | null;
  listenPort: number;
  /** 0 when unset. */
  fwmark: number;
  peers: Peer[];
}

/** `getDevice` options. */
export interface GetDeviceOptions {
  /** Also return the interface's private key, read from the same dump (default false). */
  privateKey?: boolean;
  /**
   * Take the peers in batches (up to 256 each, in the kernel's order) as the dump is decoded,
   * instead of in `peers`, which is then empty. The next batch is decoded once what this
   * returns has settled (it may be a promise). For a device of 10^5 peers: they never are all
   * alive at once, which is most of what a large dump costs the garbage collector. A throw
   * (or rejection) ends the call with that error; the reply buffers are wiped either way.
   */
  onPeers?: (peers: Peer[]) => void | Promise<void>;
}

/**
 * What `getDevice(name, { privateKey: true })` returns (wgctrl-go's `Device` has the key too):
 * the device, and its private key as an X25519 `KeyObject`, or null when the interface has none.
 */
export interface DeviceWithPrivateKey extends Device {
  privateKey: KeyObject | null;
}

export interface Peer {
  publicKey: string;
  /** Whether a preshared key is set; the key itself is a secret and never returned. */
  hasPresharedKey: boolean;
  endpoint: string | null;
  /** Seconds; 0 when off. */
  persistentKeepalive: number;
  lastHandshake: Date | null;
  rxBytes: bigint;
  txBytes: bigint;
  allowedIps: string[];
  protocolVersion: number;
}
