/**
 * Stage 6: once the kernel shows an installed peer's handshake, set its keepalive to what its
 * configuration says (0 by default). The install-time keepalive exists only to make the kernel
 * initiate; left on, it would keep the session, and the gateway's re-initiations to a client
 * that has gone, alive forever, and idle eviction would never see the peer idle.
 *
 * One dump serves every pending settle, and one `setDevice` (update-only, so a peer evicted
 * meanwhile is never re-created) settles every peer that handshaked since the last round.
 * Peers that never handshake are left to the eviction stage (`handshakeGrace`).
 */
import type { KernelPort, SharedDump } from './kernel.js';
import { errorCode } from './install.js';

export interface SettlerOptions {
  kernel: KernelPort;
  dump: SharedDump;
  interfaceName: string;
  /** Milliseconds between rounds while peers are pending (default 200). */
  intervalMs?: number;
  /** Pending peers are dropped after this long (the evictor owns them then). */
  giveUpMs: number;
  onSettled?: (publicKey: string) => void;
  onError?: (code: string, error: unknown) => void;
  now?: () => number;
}

interface PendingSettle {
  keepalive: number;
  since: number;
}

export class Settler {
  private readonly pending = new Map<string, PendingSettle>();
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: SettlerOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Peers waiting for their first handshake. */
  get size(): number {
    return this.pending.size;
  }

  /** Settles `publicKey` to `keepalive` once it has handshaked. */
  add(publicKey: string, keepalive: number): void {
    if (this.stopped) return;
    this.pending.set(publicKey, { keepalive, since: this.now() });
    this.arm();
  }

  /** Whether the peer waits for its first handshake (it still has the install-time keepalive). */
  has(publicKey: string): boolean {
    return this.pending.has(publicKey);
  }

  /** The peer left the kernel: nothing to settle. */
  forget(publicKey: string): void {
    this.pending.delete(publicKey);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.round;
  }

  private arm(): void {
    if (this.timer || this.round || this.stopped || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.round = this.settleRound().finally(() => {
        this.round = null;
        this.arm();
      });
    }, this.options.intervalMs ?? 200);
  }

  /** One dump, then one update-only `setDevice` for every pending peer that has handshaked. */
  async settleRound(): Promise<void> {
    let device;
    try {
      ({ device } = await this.options.dump.read());
    } catch (error) {
      this.options.onError?.(errorCode(error), error);
      return;
    }
    const now = this.now();
    const inKernel = new Map(device.peers.map((p) => [p.publicKey, p]));
    const due: Array<[string, number]> = [];
    for (const [key, pending] of this.pending) {
      const peer = inKernel.get(key);
      if (!peer || now - pending.since > this.options.giveUpMs) this.pending.delete(key);
      else if (peer.lastHandshake !== null) due.push([key, pending.keepalive]);
    }
    if (due.length === 0) return;
    try {
      await this.options.kernel.setDevice(this.options.interfaceName, {
        peers: due.map(([publicKey, persistentKeepalive]) => ({ publicKey, updateOnly: true, persistentKeepalive })),
      });
      for (const [key] of due) {
        this.pending.delete(key);
        this.options.onSettled?.(key);
      }
    } catch (error) {
      this.options.onError?.(errorCode(error), error); // retried next round
    }
  }
}
