/**
 * Start-up (stage 9): make the kernel agree with the store before listening. Kernel peers the
 * store does not know, or that are revoked, are removed; the others are adopted (see
 * `ActivityTable.adopt`: their idle clock runs from their last handshake). Nothing is added:
 * a just-in-time gateway starts with the peers that are live, never with the store's contents,
 * which is what makes it ready in well under a second after a reboot whatever the store holds.
 *
 * Store reads are chunked, with the event loop getting control between chunks: a gateway taking
 * over an interface of 10^5 peers (a push-model gateway's) must not stall for the length of
 * 10^5 lookups. A chunk is 200 keys: SqliteStore reads 1,000 in ~60 ms in the test VM, longer
 * than the gateway's 50 ms stall budget.
 */
import type { Peer } from '../wireguard/types.js';
import type { StoredPeer, Store } from './types.js';

export interface ReconcilePlan {
  /** Kernel peers to remove, with why. */
  remove: Array<{ publicKey: string; reason: 'revoked' | 'unknown-to-store' }>;
  /** Kernel peers to keep, with their stored configuration (empty when `onAdopt` is given). */
  adopt: Array<{ peer: Peer; stored: StoredPeer }>;
}

export interface ReconcileOptions {
  /**
   * Called for each peer to keep, as its chunk is read, instead of collecting it in
   * `plan.adopt`: 10^5 stored configurations held at once are tens of MB for the garbage
   * collector to copy, which under emulation is a stall of its own.
   */
  onAdopt?: (peer: Peer, stored: StoredPeer) => void;
}

/** A store that can answer many keys at once (SqliteStore can). */
export interface BulkStore {
  getPeers(keys: string[]): Map<string, StoredPeer | 'revoked'> | Promise<Map<string, StoredPeer | 'revoked'>>;
}

const CHUNK = 200;

export async function planReconcile(kernelPeers: readonly Peer[], store: Store & Partial<BulkStore>, options: ReconcileOptions = {}): Promise<ReconcilePlan> {
  const plan: ReconcilePlan = { remove: [], adopt: [] };
  for (let start = 0; start < kernelPeers.length; start += CHUNK) {
    const chunk = kernelPeers.slice(start, start + CHUNK);
    const known = typeof store.getPeers === 'function'
      ? await store.getPeers(chunk.map((p) => p.publicKey))
      : new Map(await Promise.all(chunk.map(async (p) => [p.publicKey, await store.getPeer(p.publicKey)] as const)));
    for (const peer of chunk) {
      const stored = known.get(peer.publicKey) ?? null;
      if (stored === null) plan.remove.push({ publicKey: peer.publicKey, reason: 'unknown-to-store' });
      else if (stored === 'revoked') plan.remove.push({ publicKey: peer.publicKey, reason: 'revoked' });
      else if (options.onAdopt) options.onAdopt(peer, stored);
      else plan.adopt.push({ peer, stored });
    }
    if (start + CHUNK < kernelPeers.length) await new Promise(setImmediate);
  }
  return plan;
}
