/**
 * Stage 6: once the kernel shows an installed peer's handshake, set its keepalive to what its
 * configuration says (0 by default). The install-time keepalive exists only to make the kernel
 * initiate; left on, it would keep the session, and the gateway's re-initiations to a client
 * that has gone, alive forever, and idle eviction would never see the peer idle.
 *
 * One dump serves every pending settle, and one `setDevice` (update-only, so a peer evicted
 * meanwhile is never re-created) settles every peer that handshaked since the last round.
 * Peers that never handshake are left to the eviction stage (`handshakeGrace`).
 *
 * A dump reads the whole device, and on the one netlink socket every install waits behind it:
 * at 10^5 peers that is seconds in the test VM. So the settler takes its own dump only when it
 * must, and never in the way of installs:
 * - every dump of the device reaches it (`SharedDump.onDump`): the eviction scan's, the
 *   start-up's, one another reader asked for; a handshake seen in any of them settles the peer;
 * - its own dumps wait while installs are queued or in flight (`socketBusy`), up to
 *   `maxDeferMs` or the back-off, and while an eviction runs (`evicting`), so a burst of
 *   installs or a removal of 10^5 peers is not interleaved with dumps;
 * - after a dump that took D ms, the next one it starts waits `backoffFactor` × D (at most
 *   2 minutes): on a small device that is the 200 ms interval, on a large one the kernel and
 *   the event loop are not kept busy with dumps for one settle (the eviction scan's dumps, every
 *   `evictInterval`, serve meanwhile; a keepalive left on a little longer costs a few packets);
 * - a peer it has seen handshaked is set without another dump, also when a set fails.
 */
import type { Dump, KernelPort, SharedDump } from './kernel.js';
import { errorCode } from './install.js';
import { SliceClock } from '../slices.js';

export interface SettlerOptions {
  kernel: KernelPort;
  dump: SharedDump;
  interfaceName: string;
  /** Milliseconds between rounds while peers are pending (default 200). */
  intervalMs?: number;
  /** A dump of D ms is followed by one of the settler's own no sooner than this × D after it (default 4). */
  backoffFactor?: number;
  /**
   * Whether other netlink calls are queued or in flight on the socket (installs, an eviction
   * scan's removals); the settler starts no dump while they are.
   */
  socketBusy?: () => boolean;
  /**
   * How long the settler's own dump may wait for the socket to be free: this (default 5,000 ms)
   * or, when longer, the back-off after the last dump.
   */
  maxDeferMs?: number;
  /**
   * Whether an eviction scan or removal is running: the settler starts no dump until it is
   * done, however long (a removal ends, and leaves a smaller device to dump; a scan's dump
   * reaches the settler anyway).
   */
  evicting?: () => boolean;
  /** A peer is dropped when a dump requested this long after its install still shows no handshake (the evictor owns it then). */
  giveUpMs: number;
  onSettled?: (publicKey: string) => void;
  onError?: (code: string, error: unknown) => void;
  now?: () => number;
}

interface PendingSettle {
  keepalive: number;
  /** Unix ms of the install, for `giveUpMs`. */
  since: number;
  /** `SharedDump.serial` when added: a dump of this serial or below was requested before and says nothing of this peer. */
  afterDump: number;
}

/** The longest wait between two of the settler's own dumps, however long the last one took. */
const MAX_BACKOFF_MS = 120_000;

export class Settler {
  private readonly pending = new Map<string, PendingSettle>();
  /** Peers a dump showed handshaked, to be set (key → keepalive). */
  private readonly handshaked = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<void> | null = null;
  private consuming: Promise<void> = Promise.resolve();
  private applying: Promise<void> | null = null;
  /** Unix ms since when the settler's own dump has waited for installs, or null. */
  private deferringSince: number | null = null;
  private stopped = false;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly backoffFactor: number;
  private readonly maxDeferMs: number;

  constructor(private readonly options: SettlerOptions) {
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? 200;
    this.backoffFactor = options.backoffFactor ?? 4;
    this.maxDeferMs = options.maxDeferMs ?? 5_000;
    options.dump.onDump((dump) => {
      if (this.stopped || this.pending.size === 0) return;
      const consumed = this.consuming.then(() => this.consume(dump));
      this.consuming = consumed.catch((error: unknown) => this.options.onError?.(errorCode(error), error));
    });
  }

  /** Peers waiting for their first handshake (or for the set that settles them). */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Settles `publicKey` to `keepalive` once it has handshaked: the peer is in the kernel now,
   * so any dump requested from now on shows it. `found`: the peer as a dump just showed it
   * (start-up's adoption): if it has handshaked, it is set without waiting for another dump.
   * Adding a pending peer again only changes its keepalive.
   */
  add(publicKey: string, keepalive: number, found?: { lastHandshake: Date | null }): void {
    if (this.stopped) return;
    const known = this.pending.get(publicKey);
    this.pending.set(publicKey, known !== undefined ? { ...known, keepalive } : { keepalive, since: this.now(), afterDump: this.options.dump.serial });
    if (this.handshaked.has(publicKey) || (found !== undefined && found.lastHandshake !== null)) this.handshaked.set(publicKey, keepalive);
    this.arm();
  }

  /** Whether the peer waits for its first handshake (it still has the install-time keepalive). */
  has(publicKey: string): boolean {
    return this.pending.has(publicKey);
  }

  /** The peer left the kernel: nothing to settle. */
  forget(publicKey: string): void {
    this.pending.delete(publicKey);
    this.handshaked.delete(publicKey);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.round;
    await this.consuming;
  }

  private arm(): void {
    if (this.timer || this.round || this.stopped || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.round = this.timedRound().finally(() => {
        this.round = null;
        this.arm();
      });
    }, this.nextDelay());
  }

  /** The interval, or longer after a long dump (see the module comment). */
  private nextDelay(): number {
    const { lastFinishedAt } = this.options.dump;
    if (lastFinishedAt === null || this.handshaked.size > 0) return this.intervalMs;
    const backoff = this.backoffMs();
    return Math.max(this.intervalMs, Math.min(backoff, lastFinishedAt + backoff - this.now()));
  }

  private backoffMs(): number {
    return Math.min(MAX_BACKOFF_MS, this.backoffFactor * this.options.dump.lastDurationMs);
  }

  private async timedRound(): Promise<void> {
    if (this.handshaked.size > 0) await this.apply();
    if (this.pending.size === this.handshaked.size) return;
    if (this.options.dump.busy) return; // its result reaches `consume` anyway
    if (this.options.evicting?.() === true) return;
    const now = this.now();
    if (this.options.socketBusy?.() === true) {
      this.deferringSince ??= now;
      if (now - this.deferringSince < Math.max(this.maxDeferMs, this.backoffMs())) return;
    }
    this.deferringSince = null;
    await this.settleRound();
  }

  /** One dump, then one update-only `setDevice` for every pending peer that has handshaked. */
  async settleRound(): Promise<void> {
    try {
      await this.options.dump.read(); // `consume` has it through `onDump`
    } catch (error) {
      this.options.onError?.(errorCode(error), error);
      return;
    }
    await this.consuming;
  }

  /** What one dump says of the pending peers, read in slices; then the set. */
  private async consume(dump: Dump): Promise<void> {
    const { peers } = dump.device;
    const clock = new SliceClock();
    const seen = new Set<string>();
    for (const peer of peers) {
      const pending = this.pending.get(peer.publicKey);
      if (pending !== undefined && pending.afterDump < dump.serial) {
        seen.add(peer.publicKey);
        if (peer.lastHandshake !== null) this.handshaked.set(peer.publicKey, pending.keepalive);
        else if (dump.startedAt - pending.since > this.options.giveUpMs) this.pending.delete(peer.publicKey);
      }
      if (clock.due()) await clock.pause();
    }
    for (const [key, pending] of this.pending) {
      // Installed before the dump was requested, and not in it: it has left the kernel.
      if (pending.afterDump < dump.serial && !seen.has(key)) this.forget(key);
    }
    if (this.handshaked.size > 0) await this.apply();
  }

  /** Runs `applyOnce`, or waits for the one running and then runs it for what came meanwhile. */
  private async apply(): Promise<void> {
    while (this.applying !== null) await this.applying;
    if (this.handshaked.size === 0) return;
    this.applying = this.applyOnce().finally(() => {
      this.applying = null;
    });
    await this.applying;
  }

  /** One update-only `setDevice` for every peer seen handshaked; kept for the next round if it fails. */
  private async applyOnce(): Promise<void> {
    const due = [...this.handshaked];
    if (due.length === 0) return;
    try {
      await this.options.kernel.setDevice(this.options.interfaceName, {
        peers: due.map(([publicKey, persistentKeepalive]) => ({ publicKey, updateOnly: true, persistentKeepalive })),
      });
    } catch (error) {
      this.options.onError?.(errorCode(error), error);
      this.arm();
      return;
    }
    for (const [key, keepalive] of due) {
      // Changed meanwhile (upsertPeer): left for the next round with the new keepalive.
      if (this.handshaked.get(key) !== keepalive) continue;
      this.handshaked.delete(key);
      if (this.pending.delete(key)) this.options.onSettled?.(key);
    }
  }
}
