/**
 * Stage 7, the acting half: every `evictInterval`, one dump, the `ActivityTable`'s decisions,
 * and removal in batches small enough that no single netlink call holds the kernel (and the
 * installs queued behind it) for long: removing a peer costs the kernel a `synchronize_net()`
 * each (wg_peer_remove, drivers/net/wireguard/peer.c), ~0.4 ms per peer in the test VM, so 256
 * peers are ~100 ms there and far less natively.
 *
 * The decisions are made in slices of the event loop (`observeInSlices`), and checked again
 * before each batch goes out (`stillIdle`): a scan of 10^5 peers removes for tens of seconds in
 * the test VM, and a peer installed again, revoked or heard from meanwhile is left alone.
 * The first scan after start-up is handed the reconciliation's dump instead of taking another.
 */
import { errorCode } from './install.js';
import type { ActivityTable, EvictionDecision } from './evict.js';
import type { Dump, KernelPort, SharedDump } from './kernel.js';

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
  now?: () => number;
}

export class EvictionScan {
  private running: Promise<void> | null = null;
  private readonly batchSize: number;
  private readonly now: () => number;

  constructor(private readonly options: EvictionScanOptions) {
    this.batchSize = options.batchSize ?? 256;
    this.now = options.now ?? Date.now;
  }

  /**
   * Runs one scan, or joins the one running. `fresh`: a dump of the interface just taken (the
   * start-up's), used instead of reading one. Never rejects: failures go to `onError`.
   */
  scan(fresh?: Dump): Promise<void> {
    this.running ??= this.scanOnce(fresh).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Resolves when no scan is running. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async scanOnce(fresh: Dump | undefined): Promise<void> {
    const { kernel, dump, interfaceName, table } = this.options;
    let read = fresh;
    if (read === undefined) {
      try {
        read = await dump.read();
      } catch (error) {
        this.options.onError(errorCode(error), error);
        return;
      }
    }
    const candidates = await table.observeInSlices(read.device.peers, this.now(), read.startedAt);
    let stale = 0; // idle peers left in the kernel: their removal failed
    for (let start = 0; start < candidates.length; start += this.batchSize) {
      const batch = candidates.slice(start, start + this.batchSize).filter((candidate) => table.stillIdle(candidate));
      if (batch.length === 0) continue;
      try {
        await kernel.removePeers(interfaceName, batch.map((c) => c.publicKey));
      } catch (error) {
        stale += batch.length;
        this.options.onError(errorCode(error), error);
        continue; // the next scan decides again
      }
      const removedAt = this.now();
      for (const { publicKey, reason, idleSeconds } of batch) {
        table.remove(publicKey, removedAt);
        this.options.onEvicted({ publicKey, reason, idleSeconds });
      }
    }
    this.options.onScanned(table.size, stale);
  }
}
