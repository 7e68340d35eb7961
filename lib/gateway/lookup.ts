/**
 * Stage 4: from an authenticated public key to the configuration to install. The store first;
 * the control plane only for what the store does not know or holds stale, and then:
 *
 * - single-flight per key: a client retrying every 5 s, or a flood of one key, is one request;
 * - at most `maxConcurrentLookups` requests in flight, `maxQueuedLookups` waiting; beyond that
 *   an initiation is refused as `overloaded` at once, so memory and sockets stay bounded;
 * - negative caches, bounded: an unknown key is not asked again for `negativeTtl`, a failed
 *   lookup not for `failureTtl` (a flood of knocks during an outage costs one request a key);
 * - stale-if-error: a resolver-origin entry older than `cacheTtl` is refreshed, but if the
 *   control plane fails, the stale entry is still installed. A control-plane outage must not
 *   disconnect clients the gateway already knows. An entry the resolver now calls unknown is
 *   deleted from the store.
 *
 * Pushed entries (`origin: 'push'`) never go stale: the control plane that pushed them says
 * when they change (upsert) or go (revoke).
 */
import { ValidationError } from '../errors.js';
import { validatePeerConfig } from './peer-config.js';
import { ExpiringSet } from './expiring-set.js';
import { integerOption, secondsOption } from './options.js';
import type { Resolver, StoredPeer, Store } from './types.js';

/** How a lookup was answered; one metric label each. */
export type LookupOutcome = 'store_hit' | 'resolver_found' | 'unknown' | 'negative_cached' | 'failed' | 'overloaded';

export type LookupResult =
  | { found: true; peer: StoredPeer; via: 'store' | 'resolver'; outcome: LookupOutcome; stale?: boolean }
  | { found: false; reason: 'revoked' | 'unknown' | 'lookup-failed' | 'overloaded' | 'stopping'; outcome: LookupOutcome | null; detail?: string };

export interface LookupOptions {
  store: Store;
  /** The control plane; without one, only the store answers. */
  resolve?: Resolver;
  /** Seconds a resolver answer is used without asking again (default 600). */
  cacheTtl?: number;
  /** Seconds an unknown key is not asked again (default 60). */
  negativeTtl?: number;
  /** Seconds a key whose lookup failed is not asked again (default 5). */
  failureTtl?: number;
  /** Resolver requests in flight at once (default 32). */
  maxConcurrentLookups?: number;
  /** Lookups waiting for a slot (default 1024); beyond: `overloaded`. */
  maxQueuedLookups?: number;
  /** Keys each negative cache holds (default 65,536). */
  negativeCacheCapacity?: number;
  /** Upper bound on one resolver call, whatever the resolver does (default 10 s). */
  resolverTimeoutMs?: number;
  /** Called once per resolver call with its duration and how it ended. */
  onResolverCall?: (seconds: number, outcome: 'found' | 'unknown' | 'failed') => void;
  now?: () => number;
}

interface Waiter {
  run: () => void;
  cancel: () => void;
}

export class PeerLookup {
  private readonly store: Store;
  private readonly resolve: Resolver | undefined;
  private readonly cacheTtlMs: number;
  private readonly unknownKeys: ExpiringSet;
  private readonly failedKeys: ExpiringSet;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly timeoutMs: number;
  private readonly onResolverCall: LookupOptions['onResolverCall'];
  private readonly now: () => number;
  private readonly inFlight = new Map<string, Promise<LookupResult>>();
  private readonly waiting: Waiter[] = [];
  private active = 0;
  private readonly stopping = new AbortController();
  private readonly calls = new Set<AbortController>();

  constructor(options: LookupOptions) {
    this.store = options.store;
    this.resolve = options.resolve;
    if (this.resolve !== undefined && typeof this.resolve !== 'function') {
      throw new ValidationError('options.resolve', 'expected a function (publicKey, signal) => Promise<ResolvedPeer | null>');
    }
    this.now = options.now ?? Date.now;
    this.cacheTtlMs = secondsOption(options.cacheTtl, 600, 'options.cacheTtl') * 1000;
    const capacity = integerOption(options.negativeCacheCapacity, 65_536, 1, 1 << 24, 'options.negativeCacheCapacity');
    this.unknownKeys = new ExpiringSet(secondsOption(options.negativeTtl, 60, 'options.negativeTtl') * 1000, capacity, this.now);
    this.failedKeys = new ExpiringSet(secondsOption(options.failureTtl, 5, 'options.failureTtl') * 1000, capacity, this.now);
    this.maxConcurrent = integerOption(options.maxConcurrentLookups, 32, 1, 4096, 'options.maxConcurrentLookups');
    this.maxQueued = integerOption(options.maxQueuedLookups, 1024, 0, 1 << 20, 'options.maxQueuedLookups');
    this.timeoutMs = integerOption(options.resolverTimeoutMs, 10_000, 1, 600_000, 'options.resolverTimeoutMs');
    this.onResolverCall = options.onResolverCall;
  }

  /** Lookups waiting for or holding a resolver slot (bounded by the two limits). */
  get pending(): number {
    return this.inFlight.size;
  }

  lookup(publicKey: string): Promise<LookupResult> {
    const joined = this.inFlight.get(publicKey);
    if (joined) return joined;
    const running = this.lookupOnce(publicKey).finally(() => this.inFlight.delete(publicKey));
    this.inFlight.set(publicKey, running);
    return running;
  }

  /** Forgets what the negative caches say of a key (it was just upserted or revoked). */
  forget(publicKey: string): void {
    this.unknownKeys.delete(publicKey);
    this.failedKeys.delete(publicKey);
  }

  /** Aborts resolver calls in flight and refuses what waits; later lookups answer `stopping`. */
  stop(): void {
    this.stopping.abort();
    for (const call of this.calls) call.abort(new Error('the gateway is stopping'));
    for (const waiter of this.waiting.splice(0)) waiter.cancel();
  }

  private async lookupOnce(publicKey: string): Promise<LookupResult> {
    if (this.stopping.signal.aborted) return { found: false, reason: 'stopping', outcome: null };
    const stored = await this.store.getPeer(publicKey);
    if (stored === 'revoked') return { found: false, reason: 'revoked', outcome: null };
    const fresh = stored !== null && (stored.origin === 'push' || this.now() - stored.fetchedAt < this.cacheTtlMs);
    if (stored !== null && (fresh || this.resolve === undefined)) {
      return { found: true, peer: stored, via: 'store', outcome: 'store_hit' };
    }
    if (this.resolve === undefined) return { found: false, reason: 'unknown', outcome: 'unknown' };
    if (this.unknownKeys.has(publicKey)) return { found: false, reason: 'unknown', outcome: 'negative_cached' };
    if (this.failedKeys.has(publicKey)) {
      if (stored !== null) return { found: true, peer: stored, via: 'store', outcome: 'store_hit', stale: true };
      return { found: false, reason: 'lookup-failed', outcome: 'negative_cached', detail: 'failed recently' };
    }
    if (!(await this.slot())) {
      if (this.stopping.signal.aborted) return { found: false, reason: 'stopping', outcome: null };
      if (stored !== null) return { found: true, peer: stored, via: 'store', outcome: 'store_hit', stale: true };
      return { found: false, reason: 'overloaded', outcome: 'overloaded' };
    }
    try {
      return await this.ask(publicKey, stored);
    } finally {
      this.release();
    }
  }

  /** Waits for a resolver slot; false when the queue is full or the lookup stage stopped. */
  private slot(): Promise<boolean> {
    if (this.active < this.maxConcurrent) {
      this.active++;
      return Promise.resolve(true);
    }
    if (this.waiting.length >= this.maxQueued) return Promise.resolve(false);
    return new Promise((resolve) => {
      this.waiting.push({ run: () => resolve(true), cancel: () => resolve(false) });
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next.run(); // the slot passes on; `active` is unchanged
    else this.active--;
  }

  private async ask(publicKey: string, stored: StoredPeer | null): Promise<LookupResult> {
    const started = performance.now();
    // One controller per call, aborted by its own timer or by stop(); both are released when
    // the call ends (AbortSignal.timeout's timers and AbortSignal.any's links to a long-lived
    // signal would outlive 10^6 quick lookups).
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new ResolverTimeout()), this.timeoutMs);
    this.calls.add(controller);
    const signal = controller.signal;
    let answer: unknown;
    try {
      answer = await raceAbort(this.resolve!(publicKey, signal), signal);
    } catch (error) {
      clearTimeout(timer);
      this.calls.delete(controller);
      this.onResolverCall?.((performance.now() - started) / 1000, 'failed');
      if (this.stopping.signal.aborted) return { found: false, reason: 'stopping', outcome: null };
      this.failedKeys.add(publicKey);
      const detail = failureDetail(error, signal);
      if (stored !== null) return { found: true, peer: stored, via: 'store', outcome: 'store_hit', stale: true };
      return { found: false, reason: 'lookup-failed', outcome: 'failed', detail };
    }
    clearTimeout(timer);
    this.calls.delete(controller);
    if (answer === null) {
      this.onResolverCall?.((performance.now() - started) / 1000, 'unknown');
      this.unknownKeys.add(publicKey);
      if (stored !== null) await this.store.deletePeer(publicKey);
      return { found: false, reason: 'unknown', outcome: 'unknown' };
    }
    let peer: StoredPeer;
    try {
      const config = validatePeerConfig(answer, 'resolved');
      if (config.publicKey !== publicKey) throw new ValidationError('resolved.publicKey', 'is not the key that was looked up');
      peer = { ...config, origin: 'resolver', fetchedAt: this.now() };
    } catch (error) {
      this.onResolverCall?.((performance.now() - started) / 1000, 'failed');
      this.failedKeys.add(publicKey);
      const detail = error instanceof ValidationError ? `invalid answer: ${error.message}` : 'invalid answer';
      if (stored !== null) return { found: true, peer: stored, via: 'store', outcome: 'store_hit', stale: true };
      return { found: false, reason: 'lookup-failed', outcome: 'failed', detail };
    }
    this.onResolverCall?.((performance.now() - started) / 1000, 'found');
    // A revocation or push that raced this request wins: the resolver's answer was asked
    // before it, and a revoked key must stay refused until upserted again.
    const current = await this.store.getPeer(publicKey);
    if (current === 'revoked') return { found: false, reason: 'revoked', outcome: null };
    if (current !== null && current.origin === 'push') return { found: true, peer: current, via: 'store', outcome: 'store_hit' };
    await this.store.putPeer(peer);
    return { found: true, peer, via: 'resolver', outcome: 'resolver_found' };
  }
}

class ResolverTimeout extends Error {
  override name = 'TimeoutError';
  constructor() {
    super('the resolver did not answer in time');
  }
}

/** Settles with the resolver's answer, or rejects when `signal` aborts first (a resolver that ignores its signal cannot hold a slot forever). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => { signal.removeEventListener('abort', onAbort); resolve(value); },
      (error: unknown) => { signal.removeEventListener('abort', onAbort); reject(error); },
    );
  });
}

/** A short, secret-free description of why a resolver call failed (never the error's message from user code verbatim beyond its class and code). */
function failureDetail(error: unknown, signal: AbortSignal): string {
  if (signal.aborted && signal.reason instanceof ResolverTimeout) return 'timeout';
  const e = error as { reason?: unknown; code?: unknown; name?: unknown };
  if (typeof e?.reason === 'string') return e.reason;
  if (typeof e?.code === 'string') return e.code;
  return typeof e?.name === 'string' ? e.name : 'error';
}
