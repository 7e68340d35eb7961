/**
 * Stage 8: the control plane pushing instead of being asked (as Fly's gateways worked before
 * just-in-time peers). `upsert` stores a configuration, and when the peer is in the kernel
 * updates it there too (update-only: the push never creates a kernel peer; the peer's next
 * knock does). `revoke` marks the key revoked in the store and removes the peer from the kernel
 * at once, cutting a live client; the key is refused until it is upserted again.
 */
import { canonicalKey, validatePeerConfig } from './peer-config.js';
import type { KernelPort } from './kernel.js';
import type { StoredPeer, Store } from './types.js';

export interface PushPathOptions {
  store: Store;
  kernel: KernelPort;
  interfaceName: string;
  /** Whether the peer is in the kernel (the gateway's activity table). */
  inKernel: (publicKey: string) => boolean;
  /** Whether the peer still has its install-time keepalive (not settled yet). */
  settling: (publicKey: string) => boolean;
  /** The negative caches must not outlive a push or revoke. */
  forget: (publicKey: string) => void;
  now?: () => number;
}

export class PushPath {
  constructor(private readonly options: PushPathOptions) {}

  /** Validates (ValidationError naming the field), stores, and updates a kernel peer in place. */
  async upsert(input: unknown): Promise<StoredPeer> {
    const config = validatePeerConfig(input, 'peer');
    const peer: StoredPeer = { ...config, origin: 'push', fetchedAt: (this.options.now ?? Date.now)() };
    await this.options.store.putPeer(peer);
    this.options.forget(peer.publicKey);
    if (this.options.inKernel(peer.publicKey)) {
      await this.options.kernel.setDevice(this.options.interfaceName, {
        peers: [{
          publicKey: peer.publicKey,
          updateOnly: true,
          replaceAllowedIps: true,
          allowedIps: peer.allowedIps,
          presharedKey: peer.presharedKey,
          // A peer still waiting for its first handshake keeps the install-time keepalive; the
          // settle stage applies the new value once it has handshaked.
          ...(this.options.settling(peer.publicKey) ? {} : { persistentKeepalive: peer.persistentKeepalive }),
        }],
      });
    }
    return peer;
  }

  /** Revokes in the store first (so no knock can reinstall it), then removes it from the kernel. Returns whether it was in the kernel. */
  async revoke(publicKeyInput: unknown): Promise<boolean> {
    const publicKey = canonicalKey(publicKeyInput, 'publicKey');
    await this.options.store.revokePeer(publicKey);
    this.options.forget(publicKey);
    const wasInKernel = this.options.inKernel(publicKey);
    // Removed whether or not we think it is there: the kernel ignores an unknown key, and a
    // peer put there behind the gateway's back must go too.
    await this.options.kernel.removePeers(this.options.interfaceName, [publicKey]);
    return wasInKernel;
  }
}
