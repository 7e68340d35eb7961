/**
 * Installing a peer in the initiator role: the step that makes a just-in-time peer come up
 * at once instead of on the client's next retry (~5 s later).
 *
 * A handshake initiation tells us the client's 4-tuple. Setting the peer with that source as
 * its endpoint and a persistent-keepalive interval that goes from 0 to non-zero makes the
 * kernel send a keepalive at once, and since the peer has no session, that becomes a
 * handshake initiation from the gateway to the client (drivers/net/wireguard/netlink.c
 * set_peer → wg_packet_send_keepalive → handshake). The client answers as responder; the
 * protocol does not care which side initiated.
 *
 * The keepalive that triggers the handshake would also keep the session alive for as long as
 * the client is reachable (and make the gateway re-initiate to a client that has gone), which
 * defeats idle eviction. Once the peer's `lastHandshake` is set, call {@link settleInitiator}
 * to turn it back off; from then on the tunnel lives as long as the client keeps it alive.
 */
import type { WireGuard } from '../wireguard/client.js';
import type { KeyInput } from '../keys.js';
import { ValidationError } from '../errors.js';

export interface InitiatorInstall {
  publicKey: KeyInput;
  /** Where the initiation came from: the client's address and (ephemeral) source port. */
  source: { address: string; port: number };
  allowedIps: string[];
  /** Seconds; must be non-zero for the kernel to initiate (default 25). */
  persistentKeepalive?: number;
  presharedKey?: KeyInput;
}

export function endpointOf(source: { address: string; port: number }): string {
  return source.address.includes(':') ? `[${source.address}]:${source.port}` : `${source.address}:${source.port}`;
}

/**
 * Installs (or refreshes) a peer so that the kernel initiates a handshake to `source`.
 * Its allowed IPs are replaced by `allowedIps`: the control plane is the source of truth.
 * The immediate initiation happens only when the peer's keepalive was 0 before, which holds
 * for a peer that was not in the kernel (the just-in-time case).
 */
export async function installAsInitiator(wg: WireGuard, interfaceName: string, peer: InitiatorInstall): Promise<void> {
  const persistentKeepalive = peer.persistentKeepalive ?? 25;
  if (persistentKeepalive === 0) {
    throw new ValidationError('peer.persistentKeepalive', 'must be non-zero: the kernel initiates only when keepalive goes from 0 to non-zero');
  }
  await wg.setDevice(interfaceName, {
    peers: [{
      publicKey: peer.publicKey,
      endpoint: endpointOf(peer.source),
      persistentKeepalive,
      replaceAllowedIps: true,
      allowedIps: peer.allowedIps,
      ...(peer.presharedKey !== undefined ? { presharedKey: peer.presharedKey } : {}),
    }],
  });
}

/**
 * Turns the install-time keepalive back off once the handshake has happened (see above).
 * Never creates the peer: if it was evicted meanwhile, nothing happens.
 */
export async function settleInitiator(wg: WireGuard, interfaceName: string, publicKey: KeyInput): Promise<void> {
  await wg.setDevice(interfaceName, { peers: [{ publicKey, updateOnly: true, persistentKeepalive: 0 }] });
}
