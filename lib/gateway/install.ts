/**
 * Stage 5: put a looked-up peer into the kernel in the initiator role (see `installAsInitiator`
 * in lib/jit/initiator.ts for why that makes the kernel handshake back at once).
 *
 * Coalescing: installs that become ready while a netlink call is in flight, or within the same
 * turn of the event loop, go to the kernel together in one `setDevice`. A burst of 1,000 new
 * clients is then a handful of calls, each holding many peers, not 1,000 round trips; a lone
 * client waits for nobody (the first install after a quiet spell is sent on the next
 * `setImmediate`). Within a burst, when the last flush ended less than `BURST_GAP_MS` ago, the
 * next waits `BURST_WAIT_MS` to gather the installs that verification is still releasing one
 * slice at a time: a one-peer `setDevice` now returns in about a millisecond, so without the
 * wait 20 clients knocking together went out in 10 calls in the test VM.
 *
 * Per key, at most `maxInstallsPerKey` installs a minute. An install aims a handshake at the
 * initiation's source address, and an authenticated client (or anyone replaying its fresh
 * initiations from forged sources before the original arrives) must not be able to turn the
 * gateway into a handshake cannon against addresses of its choosing.
 */
import { ValidationError } from '../errors.js';
import { endpointOf } from '../jit/initiator.js';
import type { PeerConfig } from '../wireguard/types.js';
import { integerOption } from './options.js';
import { TokenBuckets } from './token-buckets.js';
import type { KernelPort } from './kernel.js';
import type { Address, StoredPeer } from './types.js';

/** A flush this soon after the last one ended belongs to a burst... */
const BURST_GAP_MS = 50;
/** ...and waits in steps of this long for more installs to join it... */
const BURST_WAIT_MS = 25;
/** ...while `moreComing()` says knocks are still being verified or looked up, up to this long. */
const BURST_MAX_WAIT_MS = 250;

/** Keepalive set at install when the peer's own is 0: any non-zero value makes the kernel initiate. */
export const INSTALL_KEEPALIVE = 25;

export interface InstallRequest {
  peer: StoredPeer;
  /** The initiation's source: becomes the peer's endpoint. */
  source: Address;
}

export type InstallOutcome =
  | { installed: true; netlinkCall: number }
  | { installed: false; reason: 'install-rate' | 'install-failed' | 'stopping'; detail?: string };

export interface InstallerOptions {
  kernel: KernelPort;
  interfaceName: string;
  /** Installs of one key per minute (default 6). */
  maxInstallsPerKey?: number;
  /** Peers per `setDevice` at most (default 1,000): bounds how long one call holds the kernel. */
  maxBatch?: number;
  /**
   * Whether more knocks are on their way (being verified or looked up): a burst's flush waits
   * for them, up to 250 ms, so that it goes out in few calls.
   */
  moreComing?: () => boolean;
  now?: () => number;
}

interface Pending {
  request: InstallRequest;
  settle: Array<(outcome: InstallOutcome) => void>;
}

export class Installer {
  private readonly kernel: KernelPort;
  private readonly interfaceName: string;
  private readonly perKey: TokenBuckets;
  private readonly maxBatch: number;
  private readonly queue = new Map<string, Pending>();
  private flushing: Promise<void> | null = null;
  private scheduled = false;
  private stopped = false;
  /** performance.now() when the last flush ended (-Infinity: none yet). */
  private lastFlushEnded = -Infinity;
  private readonly moreComing: () => boolean;
  /** `setDevice` calls made for installs, for the metric of the same name. */
  netlinkCalls = 0;

  constructor(options: InstallerOptions) {
    this.kernel = options.kernel;
    this.interfaceName = options.interfaceName;
    const perMinute = integerOption(options.maxInstallsPerKey, 6, 1, 600, 'options.maxInstallsPerKey');
    this.perKey = new TokenBuckets({ ratePerSecond: perMinute / 60, burst: perMinute, now: options.now }, 'options.maxInstallsPerKey');
    this.maxBatch = integerOption(options.maxBatch, 1000, 1, 100_000, 'options.maxBatch');
    this.moreComing = options.moreComing ?? (() => false);
  }

  /** Whether installs are queued, waiting for their flush, or in a `setDevice` call now. */
  get busy(): boolean {
    return this.scheduled || this.flushing !== null || this.queue.size > 0;
  }

  /**
   * Queues an install; resolves once the kernel holds the peer or refused it. Two installs of
   * one key before the flush become one, with the later source (its initiation is the newer).
   */
  install(request: InstallRequest): Promise<InstallOutcome> {
    if (this.stopped) return Promise.resolve({ installed: false, reason: 'stopping' });
    const key = request.peer.publicKey;
    const queued = this.queue.get(key);
    if (queued) {
      queued.request = request;
      return new Promise((resolve) => queued.settle.push(resolve));
    }
    if (!this.perKey.take(key)) return Promise.resolve({ installed: false, reason: 'install-rate' });
    return new Promise((resolve) => {
      this.queue.set(key, { request, settle: [resolve] });
      this.schedule();
    });
  }

  /** Waits for queued installs to finish; later installs are refused as `stopping`. */
  async stop(): Promise<void> {
    this.stopped = true;
    while (this.flushing || this.queue.size > 0) {
      if (!this.flushing) this.schedule();
      await this.flushing;
      await new Promise(setImmediate);
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    const since = performance.now();
    const run = () => {
      if (!this.stopped && this.queue.size < this.maxBatch && this.moreComing() && performance.now() - since < BURST_MAX_WAIT_MS) {
        setTimeout(run, BURST_WAIT_MS);
        return;
      }
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = null;
        this.lastFlushEnded = performance.now();
        if (this.queue.size > 0) this.schedule();
      });
    };
    const inBurst = !this.stopped && performance.now() - this.lastFlushEnded < BURST_GAP_MS && this.queue.size < this.maxBatch;
    if (inBurst) setTimeout(run, BURST_WAIT_MS);
    else setImmediate(run);
  }

  private async flush(): Promise<void> {
    const batch: Pending[] = [];
    for (const [key, pending] of this.queue) {
      batch.push(pending);
      this.queue.delete(key);
      if (batch.length >= this.maxBatch) break;
    }
    if (batch.length === 0) return;
    const failed = await this.send(batch);
    // A refused batch is retried one peer at a time, so one bad peer (say, a prefix the kernel
    // refuses) costs only itself. Peers the kernel certainly applied are not sent again.
    for (const pending of failed) await this.send([pending]);
  }

  /**
   * One `setDevice` for `batch`. Settles every member, except when several failed: those are
   * returned unsettled, to be retried one by one.
   */
  private async send(batch: Pending[]): Promise<Pending[]> {
    const call = ++this.netlinkCalls;
    try {
      await this.kernel.setDevice(this.interfaceName, { peers: batch.map((p) => initiatorPeer(p.request)) });
      for (const pending of batch) resolveAll(pending, { installed: true, netlinkCall: call });
      return [];
    } catch (error) {
      const applied = appliedPeers(error);
      for (const pending of batch.slice(0, applied)) resolveAll(pending, { installed: true, netlinkCall: call });
      const rest = batch.slice(applied);
      if (rest.length > 1) return rest; // retried one by one by the caller
      const detail = errorCode(error);
      for (const pending of rest) resolveAll(pending, { installed: false, reason: 'install-failed', detail });
      return [];
    }
  }
}

/** The peer as the kernel gets it: endpoint from the initiation, the keepalive trick, the config's IPs and key. */
export function initiatorPeer(request: InstallRequest): PeerConfig {
  const { peer, source } = request;
  return {
    publicKey: peer.publicKey,
    endpoint: endpointOf(source),
    persistentKeepalive: peer.persistentKeepalive > 0 ? peer.persistentKeepalive : INSTALL_KEEPALIVE,
    replaceAllowedIps: true,
    allowedIps: peer.allowedIps,
    presharedKey: peer.presharedKey,
  };
}

function resolveAll(pending: Pending, outcome: InstallOutcome): void {
  for (const settle of pending.settle.splice(0)) settle(outcome);
}

/** Peers of a failed `setDevice` that the kernel certainly applied (0 when it says nothing). */
function appliedPeers(error: unknown): number {
  const progress = (error as { progress?: { appliedPeers?: unknown } })?.progress;
  return typeof progress?.appliedPeers === 'number' ? progress.appliedPeers : 0;
}

/** A short, secret-free label for a failure: the error's code, never its message. */
export function errorCode(error: unknown): string {
  if (error instanceof ValidationError) return `invalid: ${error.path}`;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'error';
}
