/**
 * Start-up (stage 9): make the kernel agree with the store before listening. Kernel peers the
 * store does not know, or that are revoked, are removed; the others are adopted (see
 * `ActivityTable.adopt`: their idle clock runs from their last handshake). Nothing is added:
 * a just-in-time gateway starts with the peers that are live, never with the store's contents,
 * which is what makes it ready in well under a second after a reboot whatever the store holds.
 *
 * Store reads are chunked, with the event loop getting control between chunks: a gateway taking
 * over an interface of 10^5 peers (a push-model gateway's) must not stall for the length of
 * 10^5 lookups. A chunk is 64 keys (a quarter of a streamed dump's batch): in the test VM,
 * with the kernel and a wg(8) sampler busy on the other vCPU, SqliteStore took ~60 ms for 256
 * (natively 0.8 ms), longer than the gateway's 50 ms stall budget.
 *
 * The gateway reconciles while the start-up dump is decoded (`Reconciliation`, fed batch by
 * batch through `getDevice`'s `onPeers`), so the 10^5 decoded peers of such an interface are
 * never alive at once, and adopted peers that the first scan would remove at once (no
 * handshake: no session to lose) are queued compactly instead of tracked (`EvictionQueue`).
 */
import { rampedBatches } from '../slices.js';
import type { Peer } from '../wireguard/types.js';
import type { ActivityTable } from './evict.js';
import { EvictionQueue } from './eviction-scan.js';
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

const CHUNK = 64;
/**
 * The first chunk of each batch, doubling up to CHUNK: the store's first reads run cold (in the
 * switchover bench, SqliteStore's first 64 keys took 42 ms against ~3 ms hot).
 */
const FIRST_CHUNK = 8;

export async function planReconcile(kernelPeers: readonly Peer[], store: Store & Partial<BulkStore>, options: ReconcileOptions = {}): Promise<ReconcilePlan> {
  const plan: ReconcilePlan = { remove: [], adopt: [] };
  for (const [start, end] of rampedBatches(kernelPeers.length, CHUNK, FIRST_CHUNK)) {
    const chunk = kernelPeers.slice(start, end);
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
    if (end < kernelPeers.length) await new Promise(setImmediate);
  }
  return plan;
}

export interface ReconciliationOptions {
  store: Store & Partial<BulkStore>;
  table: ActivityTable;
  /** Unix ms of the adoption. */
  now: number;
  /** Called for each peer adopted into the table (not for the ones queued for removal). */
  onAdopted?: (peer: Peer, stored: StoredPeer) => void;
}

/**
 * The start-up reconciliation, a batch of kernel peers at a time: unknown and revoked peers are
 * collected in `remove` (removed before the gateway is ready); adopted peers that a scan would
 * evict at once go to `idle` (removed in the background after ready); the others are adopted
 * into the table.
 */
export class Reconciliation {
  readonly remove: ReconcilePlan['remove'] = [];
  readonly idle = new EvictionQueue();

  constructor(private readonly options: ReconciliationOptions) {}

  async add(peers: readonly Peer[]): Promise<void> {
    const { store, table, now, onAdopted } = this.options;
    const plan = await planReconcile(peers, store, {
      onAdopt: (peer, stored) => {
        const decision = table.adoptionDecision(peer, now);
        if (decision !== null) {
          this.idle.push(decision);
          return;
        }
        table.adopt(peer, now);
        onAdopted?.(peer, stored);
      },
    });
    for (const removal of plan.remove) this.remove.push(removal);
  }
}
