/**
 * Stage 7, the acting half: every `evictInterval`, one dump, the `ActivityTable`'s decisions,
 * and removal in batches small enough that no single netlink call holds the kernel (and the
 * installs queued behind it) for long: removing a peer costs the kernel a `synchronize_net()`
 * each, ~0.24 ms per peer in the test VM, so 256 peers are ~60 ms there and far less natively.
 */
import { errorCode } from './install.js';
import type { ActivityTable, EvictionDecision } from './evict.js';
import type { KernelPort, SharedDump } from './kernel.js';

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

  constructor(private readonly options: EvictionScanOptions) {
    this.batchSize = options.batchSize ?? 256;
  }

  /** Runs one scan, or joins the one running. Never rejects: failures go to `onError`. */
  scan(): Promise<void> {
    this.running ??= this.scanOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Resolves when no scan is running. */
  async idle(): Promise<void> {
    await this.running;
  }

  private async scanOnce(): Promise<void> {
    const { kernel, dump, interfaceName, table } = this.options;
    let device, startedAt;
    try {
      ({ device, startedAt } = await dump.read());
    } catch (error) {
      this.options.onError(errorCode(error), error);
      return;
    }
    const decisions = table.observe(device.peers, (this.options.now ?? Date.now)(), startedAt);
    let stale = decisions.length;
    for (let start = 0; start < decisions.length; start += this.batchSize) {
      const batch = decisions.slice(start, start + this.batchSize);
      try {
        await kernel.removePeers(interfaceName, batch.map((d) => d.publicKey));
      } catch (error) {
        this.options.onError(errorCode(error), error);
        continue; // the next scan decides again
      }
      stale -= batch.length;
      for (const decision of batch) {
        table.remove(decision.publicKey);
        this.options.onEvicted(decision);
      }
    }
    this.options.onScanned(table.size, stale);
  }
}
