/**
 * Stage 7, the acting half: every `evictInterval`, one dump, the `ActivityTable`'s decisions,
 * and removal in batches small enough that no single netlink call holds the kernel (and the
 * installs queued behind it) for long: removing a peer costs the kernel a `synchronize_net()`
 * each (wg_peer_remove, drivers/net/wireguard/peer.c), ~0.4 ms per peer in the test VM, so the
 * default 64 peers are ~25 ms there and far less natively. The first batches are smaller still
 * (`rampedBatches`): their validation and encoding run cold on the event loop.
 *
 * The decisions are made in slices of the event loop (`observeInSlices`), and checked again
 * before each batch goes out (`stillIdle`): a scan of 10^5 peers removes for tens of seconds in
 * the test VM, and a peer installed again, revoked or heard from meanwhile is left alone.
 *
 * At start-up the reconciliation does the first scan's work on its own dump: adopted peers that
 * would go at once are not tracked but queued (`EvictionQueue`, 32 bytes a peer) and removed
 * in the background (`removeQueued`); scans wait for that removal instead of dumping a device
 * that is still large.
 */
import { errorCode } from './install.js';
import type { ActivityTable, EvictionDecision } from './evict.js';
import type { KernelPort, SharedDump } from './kernel.js';
import { KEY_LENGTH } from '../keys.js';
import { rampedBatches } from '../slices.js';

/**
 * Eviction decisions held compactly: the raw key bytes in one buffer, the rest in typed arrays,
 * the strings made again when a batch is sent. 10^5 decisions as objects and strings are tens of
 * MB for the garbage collector to copy; here they are 4 MB that it does not scan.
 */
export class EvictionQueue {
  private keys = Buffer.alloc(KEY_LENGTH * 1024);
  private idleSeconds = new Float64Array(1024);
  private neverHandshaked = new Uint8Array(1024);
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(decision: EvictionDecision): void {
    if (this.count === this.idleSeconds.length) this.grow();
    const at = this.count++;
    this.keys.write(decision.publicKey, at * KEY_LENGTH, KEY_LENGTH, 'base64');
    this.idleSeconds[at] = decision.idleSeconds ?? Number.NaN;
    this.neverHandshaked[at] = decision.reason === 'never-handshaked' ? 1 : 0;
  }

  /** Decision `i` (0 ≤ i < size), its strings made anew. */
  at(i: number): EvictionDecision {
    const idle = this.idleSeconds[i]!;
    return {
      publicKey: this.keys.toString('base64', i * KEY_LENGTH, (i + 1) * KEY_LENGTH),
      reason: this.neverHandshaked[i] === 1 ? 'never-handshaked' : 'idle',
      idleSeconds: Number.isNaN(idle) ? null : idle,
    };
  }

  private grow(): void {
    const capacity = this.idleSeconds.length * 2;
    const keys = Buffer.alloc(KEY_LENGTH * capacity);
    this.keys.copy(keys);
    this.keys = keys;
    const idle = new Float64Array(capacity);
    idle.set(this.idleSeconds);
    this.idleSeconds = idle;
    const never = new Uint8Array(capacity);
    never.set(this.neverHandshaked);
    this.neverHandshaked = never;
  }
}

export interface EvictionScanOptions {
  kernel: KernelPort;
  dump: SharedDump;
  interfaceName: string;
  table: ActivityTable;
  /** Peers per `removePeers` call (default 256). */
  batchSize?: number;
  /** Called for each peer removed. */
  onEvicted: (decision: EvictionDecision) => void;
  /** Called after each scan with the kernel's peer count and how many idle peers are still in it. */
  onScanned: (kernelPeers: number, stalePeers: number) => void;
  onError: (code: string, error: unknown) => void;
  /** Whether the gateway is stopping: no further batch is sent (a removal of 10^5 peers takes minutes in the test VM). */
  stopping?: () => boolean;
  now?: () => number;
}

export class EvictionScan {
  private running: Promise<void> | null = null;
  private queuedLeft = 0;
  private readonly batchSize: number;
  private readonly now: () => number;

  constructor(private readonly options: EvictionScanOptions) {
    this.batchSize = options.batchSize ?? 256;
    this.now = options.now ?? Date.now;
  }

  /** Runs one scan, or joins the one running (or a `removeQueued`). Never rejects: failures go to `onError`. */
  scan(): Promise<void> {
    this.running ??= this.scanOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Queued peers not removed yet (they are in the kernel, not in the table): for the kernel-peers gauge. */
  get queued(): number {
    return this.queuedLeft;
  }

  /** Whether a scan or a queued removal is running (its netlink calls are queued or in flight). */
  get busy(): boolean {
    return this.running !== null;
  }

  /**
   * Removes the queued peers in batches, after the scan running if any; scans asked for
   * meanwhile join it. A peer installed since it was queued is kept. Never rejects.
   */
  removeQueued(queue: EvictionQueue): Promise<void> {
    const before = this.running;
    this.queuedLeft += queue.size;
    const running: Promise<void> = (async () => {
      await before;
      await this.drain(queue);
    })().finally(() => {
      if (this.running === running) this.running = null;
    });
    this.running = running;
    return running;
  }

  private async drain(queue: EvictionQueue): Promise<void> {
    const { table } = this.options;
    let failed = 0;
    try {
      for (const [start, end] of rampedBatches(queue.size, this.batchSize)) {
        const batch: EvictionDecision[] = [];
        for (let i = start; i < end; i++) {
          const decision = queue.at(i);
          if (!table.has(decision.publicKey)) batch.push(decision); // else installed since: its client is there
        }
        if (this.options.stopping?.() === true) return;
        this.queuedLeft -= end - start - batch.length; // the kept ones are in the table now
        const removed = await this.remove(batch);
        this.queuedLeft -= batch.length; // out of the kernel now, or left there and counted stale
        if (!removed) failed += batch.length;
      }
    } finally {
      this.queuedLeft = 0;
    }
    this.options.onScanned(table.size, failed);
  }

  /**
   * One `removePeers` for `decisions`; then each is out of the table (also one installed again
   * during the call: the kernel does not hold it now, so its client's next initiation installs
   * it) and reported. Returns false when the call failed.
   */
  private async remove(decisions: EvictionDecision[]): Promise<boolean> {
    if (decisions.length === 0) return true;
    try {
      await this.options.kernel.removePeers(this.options.interfaceName, decisions.map((d) => d.publicKey));
    } catch (error) {
      this.options.onError(errorCode(error), error);
      return false; // the next scan decides again
    }
    const removedAt = this.now();
    // Scans run one at a time and observe after their own dump: only a dump in flight now (the
    // settle stage's, which the next scan may join) can predate this removal.
    const remember = this.options.dump.busy;
    for (const { publicKey, reason, idleSeconds } of decisions) {
      this.options.table.remove(publicKey, removedAt, remember);
      this.options.onEvicted({ publicKey, reason, idleSeconds });
    }
    return true;
  }

  /** Resolves when no scan is running. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async scanOnce(): Promise<void> {
    const { dump, table } = this.options;
    let read;
    try {
      read = await dump.read();
    } catch (error) {
      this.options.onError(errorCode(error), error);
      return;
    }
    const candidates = await table.observeInSlices(read.device.peers, this.now(), read.startedAt);
    read = undefined; // 10^5 decoded peers need not live through the removal
    let stale = 0; // idle peers left in the kernel: their removal failed
    for (const [start, end] of rampedBatches(candidates.length, this.batchSize)) {
      if (this.options.stopping?.() === true) return;
      const batch = candidates.slice(start, end).filter((candidate) => table.stillIdle(candidate));
      if (!(await this.remove(batch))) stale += batch.length;
    }
    this.options.onScanned(table.size, stale);
  }
}
