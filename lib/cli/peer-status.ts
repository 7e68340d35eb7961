/**
 * What `GET /v1/peers/{key}` answers: the key's state in the store, whether the kernel holds
 * it, and its last handshake. Read here from the gateway's `Store` and one `getDevice` dump
 * rather than from the `Gateway` itself, which keeps no public per-peer view; the dump is the
 * kernel's own answer, so it also shows what a scan has not seen yet.
 *
 * Never a preshared key: only whether one is set.
 */
import type { Device } from '../wireguard/types.js';
import type { StoredPeer, Store } from '../gateway/types.js';

export interface PeerStatus {
  publicKey: string;
  inStore: 'configured' | 'revoked' | 'absent';
  inKernel: boolean;
  /** ISO 8601, or null if the kernel does not hold the peer or it never handshaked. */
  lastHandshake: string | null;
  store: { allowedIps: string[]; persistentKeepalive: number; hasPresharedKey: boolean; origin: StoredPeer['origin']; fetchedAt: string } | null;
  kernel: { endpoint: string | null; allowedIps: string[]; persistentKeepalive: number; rxBytes: string; txBytes: string } | null;
}

export interface PeerStatusSources {
  store: Pick<Store, 'getPeer'>;
  kernel: { getDevice(name: string): Promise<Device> };
  interfaceName: string;
}

export async function peerStatus(publicKey: string, sources: PeerStatusSources): Promise<PeerStatus> {
  const [stored, device] = await Promise.all([sources.store.getPeer(publicKey), sources.kernel.getDevice(sources.interfaceName)]);
  const peer = device.peers.find((p) => p.publicKey === publicKey);
  return {
    publicKey,
    inStore: stored === null ? 'absent' : stored === 'revoked' ? 'revoked' : 'configured',
    inKernel: peer !== undefined,
    lastHandshake: peer?.lastHandshake?.toISOString() ?? null,
    store: stored === null || stored === 'revoked' ? null : {
      allowedIps: stored.allowedIps,
      persistentKeepalive: stored.persistentKeepalive,
      hasPresharedKey: stored.presharedKey !== null,
      origin: stored.origin,
      fetchedAt: new Date(stored.fetchedAt).toISOString(),
    },
    kernel: peer === undefined ? null : {
      endpoint: peer.endpoint,
      allowedIps: peer.allowedIps,
      persistentKeepalive: peer.persistentKeepalive,
      // Strings: counters are 64-bit and JSON numbers are not.
      rxBytes: peer.rxBytes.toString(),
      txBytes: peer.txBytes.toString(),
    },
  };
}
