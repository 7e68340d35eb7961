/**
 * `Gateway`: a WireGuard interface that starts empty, learns each client from its first
 * handshake initiation, installs it in the initiator role so the kernel handshakes back at once,
 * and keeps the kernel nearly empty while the store holds every peer.
 *
 * This class only wires the stages of this folder together and turns their outcomes into events
 * and metrics; each decision lives in its stage's module:
 *
 *   capture ─▶ rate-limit ─▶ verify ─▶ replay ─▶ lookup ─▶ install ─▶ settle      (pipeline.ts)
 *                                                 store, resolver      evict (scan), push, reconcile
 */
import { EventEmitter } from 'node:events';
import { ValidationError } from '../errors.js';
import { describe } from '../keys.js';
import { HandshakeCapture, type HandshakeCaptureOptions, type HandshakeInitiation } from '../capture/capture.js';
import { handshakeFilter } from '../capture/filter.js';
import { SeenInitiations } from '../noise/seen-initiations.js';
import { loadBinding } from '../native/binding.js';
import { parseAddress } from '../net/ip.js';
import { isInitiationShape } from '../protocol/initiation.js';
import { nextTurn, rampedBatches, runInSlices, SliceClock } from '../slices.js';
import { WireGuard } from '../wireguard/client.js';
import { setPathWarmUp } from '../wireguard/warm-up.js';
import { knockPathWarmUp } from './warm-up.js';
import { ActivityTable, type EvictionDecision } from './evict.js';
import { EvictionScan } from './eviction-scan.js';
import { GatewayError } from './errors.js';
import { errorCode, Installer } from './install.js';
import { SharedDump } from './kernel.js';
import { PeerLookup } from './lookup.js';
import { GatewayMetrics, type GatewayStats } from './metrics.js';
import { integerOption, secondsOption } from './options.js';
import { KeyedFlights } from './in-flight.js';
import { handleKnock, type Knock, type KnockOutcome, type Stages } from './pipeline.js';
import { PushPath } from './push.js';
import { SourceRateLimit, type SourceRateLimitOptions } from './rate-limit.js';
import { Reconciliation, type BulkStore } from './reconcile.js';
import { ReplayGuard } from './replay.js';
import { Settler } from './settle.js';
import { VerifierPool, verifierPoolTuning, type VerifierPoolStats, type VerifierPoolTuning } from './verify-pool.js';
import type { Address, EvictedEvent, InstalledEvent, RejectedEvent, Resolver, ResolvedPeer, StoredPeer, Store } from './types.js';

/** The WireGuard calls a gateway makes; a `WireGuard` has them all. */
export type GatewayKernel = Pick<WireGuard, 'getDevice' | 'setDevice' | 'removePeers'>;

export interface GatewayOptions {
  /** An existing WireGuard interface with a private key and a listen port. */
  interface: string;
  /** Every peer's configuration and every key's last timestamp. The gateway owns it: `stop()` closes it. */
  store: Store;
  /** The control plane, asked for keys the store does not know (or holds stale); see `httpResolver`. */
  resolve?: Resolver;
  /** Seconds without received data or a handshake before a peer leaves the kernel (default 600; see the README on why well above 180). */
  idleTimeout?: number;
  /** Seconds between eviction scans (default 30). */
  evictInterval?: number;
  /** Seconds an installed peer may take to complete its first handshake (default 30). */
  handshakeGrace?: number;
  /** Seconds a resolver answer is used without asking again (default 600). */
  cacheTtl?: number;
  /** Seconds an unknown key is not asked again (default 60). */
  negativeTtl?: number;
  /** Seconds a failed lookup is not retried (default 5). */
  failureTtl?: number;
  /** Resolver requests in flight at once (default 32). */
  maxConcurrentLookups?: number;
  /** Lookups waiting for a resolver slot (default 1024); beyond: rejected `overloaded`. */
  maxQueuedLookups?: number;
  /** Installs of one key per minute (default 6). */
  maxInstallsPerKey?: number;
  /** Per-source limit before any crypto (default 20/s, burst 5, as the kernel). */
  rateLimit?: SourceRateLimitOptions;
  /** Initiations remembered to refuse replays before any DH (default 65,536). */
  seenInitiations?: number;
  /**
   * Where initiations past mac1 are verified (the two X25519 of `Responder.unwrap`), so that a
   * capture wake-up of 64 never stalls the event loop for 64 verifications: `threads` worker
   * threads (default `os.availableParallelism() − 1`, at least 1, at most 4; 0 = on the event
   * loop, in slices of `turnBudgetMs`, default 5 ms), at most `maxOutstanding` initiations
   * waiting (default 4,096; beyond: rejected `verify-overloaded`), and `warmUp` synthetic
   * verifications per thread at start (default 300) so the first real one runs optimised.
   * See `VerifierPool` and the README's "Verification off the event loop".
   */
  verify?: VerifierPoolTuning;
  /**
   * Peers per eviction `removePeers` call (default 64). Validating and encoding a call's keys runs
   * on the event loop: 256 held it for ~100 ms in the TCG test VM (a switchover's background
   * removal, bench/gateway profile, 2026-12-02); the kernel's work is per peer, whatever the batch.
   */
  evictBatch?: number;
  /**
   * Where to sniff initiations: `HandshakeCapture` options (default: every interface, ports =
   * the interface's listen port, `linkDown: 'wait'`), or `false` for none (initiations then come
   * only through `inject`, e.g. from a WebSocket relay).
   */
  capture?: Omit<HandshakeCaptureOptions, 'filter'> | false;
  /** Manage an interface in another network namespace (also where the capture runs). */
  netns?: string;
  /** Use this `WireGuard` (or a fake) instead of opening one; it is not closed by `stop()`. */
  wireguard?: GatewayKernel;
}

export interface GatewayEvents {
  installed: [InstalledEvent];
  rejected: [RejectedEvent];
  evicted: [EvictedEvent];
  /** The gateway survived it unless `fatal` is true (then it has stopped). */
  error: [GatewayError];
  /** Reconciled and listening. */
  ready: [];
}

type GatewayState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** Packets the gateway's capture reads per wake-up, unless `capture.batch` says otherwise. */
export const GATEWAY_CAPTURE_BATCH = 16;

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly interface: string;
  private readonly options: GatewayOptions;
  private readonly store: Store;
  private readonly idleTimeoutMs: number;
  private readonly evictIntervalMs: number;
  private readonly handshakeGraceMs: number;
  private readonly evictBatch: number;
  private readonly ownsKernel: boolean;
  private readonly kernel: GatewayKernel;
  private readonly dump: SharedDump;
  private readonly table: ActivityTable;
  private readonly lookup: PeerLookup;
  private readonly installer: Installer;
  private readonly settler: Settler;
  private readonly scanner: EvictionScan;
  private readonly pushPath: PushPath;
  private readonly rateLimit: SourceRateLimit;
  private readonly seen: SeenInitiations;
  private readonly verifyTuning: Required<VerifierPoolTuning>;
  private verifier: VerifierPool | null = null;
  private readonly replay: ReplayGuard;
  private readonly metricsState: GatewayMetrics;
  private stages: Stages | null = null;
  private capture: HandshakeCapture | null = null;
  private evictTimer: NodeJS.Timeout | null = null;
  private readonly knocks = new Set<Promise<void>>();
  private state: GatewayState = 'new';
  private publicKeyValue: string | null = null;
  private listenPortValue = 0;

  constructor(options: GatewayOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', `expected an object, got ${describe(options)}`);
    if (typeof options.interface !== 'string' || options.interface === '') throw new ValidationError('options.interface', 'expected an interface name');
    if (typeof options.store !== 'object' || options.store === null || typeof options.store.getPeer !== 'function') {
      throw new ValidationError('options.store', 'expected a Store (e.g. new SqliteStore(path))');
    }
    this.options = options;
    this.interface = options.interface;
    this.store = options.store;
    this.idleTimeoutMs = secondsOption(options.idleTimeout, 600, 'options.idleTimeout') * 1000;
    this.evictIntervalMs = Math.max(100, secondsOption(options.evictInterval, 30, 'options.evictInterval') * 1000);
    this.handshakeGraceMs = secondsOption(options.handshakeGrace, 30, 'options.handshakeGrace') * 1000;
    this.evictBatch = integerOption(options.evictBatch, 64, 1, 100_000, 'options.evictBatch');
    this.ownsKernel = options.wireguard === undefined;
    this.kernel = options.wireguard ?? new WireGuard(options.netns !== undefined ? { netns: options.netns } : {});
    // The native addon is loaded here, with the rest of the code, rather than on start()'s first
    // socket: loading it (node-gyp-build's look-up, dlopen) held the event loop for 80–130 ms in
    // the TCG test VM, in the middle of a start that otherwise yields every step.
    if (this.ownsKernel || options.capture !== false) loadBinding();
    this.dump = new SharedDump(this.kernel, this.interface);
    this.table = new ActivityTable({ idleTimeoutMs: this.idleTimeoutMs, handshakeGraceMs: this.handshakeGraceMs });
    this.metricsState = new GatewayMetrics({
      kernelPeers: () => this.table.size + this.scanner.queued,
      storePeers: () => this.store.countPeers(),
      capture: () => this.capture?.stats() ?? null,
    });
    this.rateLimit = new SourceRateLimit(options.rateLimit);
    this.seen = new SeenInitiations({ capacity: integerOption(options.seenInitiations, SeenInitiations.DEFAULT_CAPACITY, 1, SeenInitiations.MAX_CAPACITY, 'options.seenInitiations') });
    this.verifyTuning = verifierPoolTuning(options.verify, 'options.verify');
    this.replay = new ReplayGuard(this.store);
    this.lookup = new PeerLookup({
      store: this.store,
      resolve: options.resolve,
      cacheTtl: options.cacheTtl,
      negativeTtl: options.negativeTtl,
      failureTtl: options.failureTtl,
      maxConcurrentLookups: options.maxConcurrentLookups,
      maxQueuedLookups: options.maxQueuedLookups,
      onResolverCall: (seconds, outcome) => this.metricsState.resolverCall(seconds, outcome),
    });
    this.installer = new Installer({
      kernel: this.kernel, interfaceName: this.interface, maxInstallsPerKey: options.maxInstallsPerKey,
      moreComing: () => (this.verifier?.stats().outstanding ?? 0) > 0 || this.lookup.pending > 0,
    });
    this.settler = new Settler({
      kernel: this.kernel, dump: this.dump, interfaceName: this.interface, giveUpMs: this.handshakeGraceMs,
      // No settle dump while installs are queued or going out, nor while a scan or the start-up
      // removal runs: their netlink calls would queue behind it on the one socket. (Knocks
      // still being verified do not count: a flood of forged ones must not hold settles off.)
      socketBusy: () => this.installer.busy,
      evicting: () => this.scanner.busy,
      onSettled: () => this.metricsState.settled(),
      onError: (code, error) => this.report('settle', code, error),
    });
    this.scanner = new EvictionScan({
      kernel: this.kernel, dump: this.dump, interfaceName: this.interface, table: this.table,
      batchSize: this.evictBatch,
      onEvicted: (decision) => this.evicted(decision),
      onScanned: (_kernelPeers, stale) => this.metricsState.scanned(stale),
      onError: (code, error) => this.report('evict', code, error),
      stopping: () => this.state === 'stopping' || this.state === 'stopped',
    });
    this.pushPath = new PushPath({
      store: this.store, kernel: this.kernel, interfaceName: this.interface,
      inKernel: (key) => this.table.has(key),
      settling: (key) => this.settler.has(key),
      forget: (key) => this.lookup.forget(key),
    });
  }

  /** A prom-client Registry with every `jitguard_` metric (serve it with `registry.metrics()`). */
  get metrics(): GatewayMetrics['registry'] {
    return this.metricsState.registry;
  }

  /** The interface's public key, once started. */
  get publicKey(): string | null {
    return this.publicKeyValue;
  }

  /** The interface's listen port, once started. */
  get listenPort(): number {
    return this.listenPortValue;
  }

  /** Reconciled and listening. */
  get ready(): boolean {
    return this.state === 'running';
  }

  /** Plain-object counters (the same figures as `metrics`). */
  stats(): GatewayStats & { pendingLookups: number; pendingSettles: number; trackedSources: number; seenInitiations: number; verify: VerifierPoolStats | null } {
    return {
      ...this.metricsState.stats(),
      pendingLookups: this.lookup.pending,
      pendingSettles: this.settler.size,
      trackedSources: this.rateLimit.trackedSources,
      seenInitiations: this.seen.size,
      verify: this.verifier?.stats() ?? null,
    };
  }

  /**
   * Reads the interface, reconciles the kernel with the store (unknown and revoked peers removed,
   * the others adopted), opens the capture and starts the eviction timer. Rejects with a
   * `GatewayError` (or the `WireGuardError`/`CaptureError` underneath) and releases what it
   * opened if any of that fails.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new GatewayError(`start: the gateway was already ${this.state === 'starting' ? 'starting' : 'started'}`, { code: 'ERR_JITGUARD_GATEWAY_STATE', stage: 'start' });
    this.state = 'starting';
    try {
      // One dump gives the device, its private key and the peers, reconciled batch by batch
      // as they are decoded (10^5 peers are never all alive at once).
      const reconciliation = this.reconciliation();
      const dumpedAt = Date.now();
      const device = await this.kernel.getDevice(this.interface, { privateKey: true, onPeers: (peers) => reconciliation.add(peers) });
      this.dump.note(dumpedAt, Date.now()); // what a dump costs here, for the settle stage's back-off
      // start() runs code no event has run yet, each step cold (tens of ms under emulation):
      // its steps get a turn each, so timers and I/O wait for one step, never for all of them.
      if (device.publicKey === null) {
        throw new GatewayError(`start: interface ${this.interface} has no private key (set one with wg set ${this.interface} private-key FILE)`, { code: 'ERR_JITGUARD_NO_PRIVATE_KEY', stage: 'start' });
      }
      if (device.listenPort === 0) {
        throw new GatewayError(`start: interface ${this.interface} has no listen port`, { code: 'ERR_JITGUARD_NO_LISTEN_PORT', stage: 'start' });
      }
      const { privateKey } = device;
      if (privateKey === null) throw new GatewayError(`start: interface ${this.interface} has no private key`, { code: 'ERR_JITGUARD_NO_PRIVATE_KEY', stage: 'start' });
      this.publicKeyValue = device.publicKey;
      this.listenPortValue = device.listenPort;
      // Built before the reconciliation's removals, so its threads start and warm up meanwhile.
      await nextTurn();
      this.verifier = new VerifierPool({
        ...this.verifyTuning, privateKey, seen: this.seen,
        onError: (code, error) => this.report('verify', code, error),
      });
      this.stages = {
        rateLimit: this.rateLimit,
        verifier: this.verifier,
        replay: this.replay,
        inKernel: (key) => this.table.has(key),
        flights: new KeyedFlights<KnockOutcome>(),
        lookup: this.lookup,
        onLookup: (result) => { if (result.outcome) this.metricsState.lookup(result.outcome); },
        installer: this.installer,
        now: unixNow,
      };
      await nextTurn();
      await this.reconcile(reconciliation);
      await nextTurn(); // the background removal's first batch has its own turn
      if (this.options.capture !== false) {
        // The capture's filter, built and encoded once in a turn of its own and thrown away:
        // cold, that is half of the capture's first open (~25 of ~50 ms in the TCG VM). Bad
        // options are left for the open to refuse.
        try {
          handshakeFilter({ ports: this.options.capture?.ports ?? [this.listenPortValue] }).encode().fill(0);
        } catch { /* refused again, with its path, by openCapture */ }
        await nextTurn();
        this.openCapture();
      }
      this.evictTimer = setInterval(() => void this.scanner.scan(), this.evictIntervalMs);
      this.state = 'running';
      // The knock path, then the SET path, warm up a step a turn from the next one, so that the
      // first client's knock does not run them cold (warm-up.ts, lib/wireguard/warm-up.ts). They
      // send, count and write nothing.
      setImmediate(() => void runInSlices(gatewayWarmUp(this.store), new SliceClock()));
      this.emit('ready');
    } catch (error) {
      this.state = 'stopping';
      await this.release();
      throw error;
    }
  }

  /**
   * Feeds an initiation that arrived some other way (a WebSocket relay). Returns false, and
   * counts nothing, when `payload` is not shaped like a handshake initiation (148 bytes starting
   * 01 00 00 00); throws a `ValidationError` for a malformed argument. The payload is copied.
   */
  inject(payload: Uint8Array, source: Address): boolean {
    if (!(payload instanceof Uint8Array)) throw new ValidationError('payload', `expected a Uint8Array, got ${describe(payload)}`);
    if (typeof source !== 'object' || source === null || typeof source.address !== 'string' || parseAddress(source.address) === null) {
      throw new ValidationError('source.address', 'expected a numeric IPv4 or IPv6 address');
    }
    if (!Number.isInteger(source.port) || source.port < 1 || source.port > 65535) {
      throw new ValidationError('source.port', `expected an integer from 1 to 65535, got ${String(source.port)}`);
    }
    if (!isInitiationShape(payload)) return false;
    if (this.state !== 'running') return false;
    this.knock({ packet: Uint8Array.from(payload), source: { address: source.address, port: source.port }, receivedAt: unixNow() });
    return true;
  }

  /** Stores a configuration (the push path) and updates the peer in the kernel if it is there. */
  async upsertPeer(peer: ResolvedPeer): Promise<StoredPeer> {
    this.assertRunning('upsertPeer');
    const stored = await this.pushPath.upsert(peer);
    if (this.settler.has(stored.publicKey)) this.settler.add(stored.publicKey, stored.persistentKeepalive);
    return stored;
  }

  /** Revokes the key: out of the store and the kernel at once; refused until upserted again. */
  async revokePeer(publicKey: string): Promise<void> {
    this.assertRunning('revokePeer');
    const wasInKernel = await this.pushPath.revoke(publicKey);
    if (wasInKernel) {
      const last = this.table.get(publicKey);
      this.table.remove(publicKey);
      this.settler.forget(publicKey);
      this.evictedEvent(publicKey, 'revoked', last ? Math.round((Date.now() - last.lastReceiveAt) / 1000) : null);
    }
  }

  /** Runs one eviction scan now (the timer runs them every `evictInterval`). */
  async evictNow(): Promise<void> {
    this.assertRunning('evictNow');
    await this.scanner.scan();
  }

  /**
   * Stops capturing, lets in-flight initiations finish (lookups are aborted, queued installs
   * sent), waits for a running scan, and closes the store and the `WireGuard` it opened.
   * Idempotent; events stop once it resolves.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    if (this.state === 'new') {
      this.state = 'stopped';
      await this.store.close();
      return;
    }
    this.state = 'stopping';
    await this.release();
  }

  private async release(): Promise<void> {
    this.capture?.close();
    this.capture = null;
    // Initiations still being verified settle now as 'stopping' (not after the threads' queue,
    // which a flood can make seconds long in a slow VM); the threads end.
    await this.verifier?.stop();
    if (this.evictTimer) clearInterval(this.evictTimer);
    this.evictTimer = null;
    this.lookup.stop();
    await Promise.allSettled([...this.knocks]);
    await this.installer.stop();
    await this.settler.stop();
    await this.scanner.idle();
    if (this.ownsKernel) await (this.kernel as WireGuard).close();
    await this.store.close();
    this.state = 'stopped';
  }

  /** The start-up reconciliation, fed by the start's dump (see reconcile.ts). */
  private reconciliation(): Reconciliation {
    return new Reconciliation({
      store: this.store as Store & Partial<BulkStore>,
      table: this.table,
      now: Date.now(),
      onAdopted: (peer, stored) => {
        // A crash between install and settle leaves the install-time keepalive on.
        if (peer.persistentKeepalive !== stored.persistentKeepalive) this.settler.add(peer.publicKey, stored.persistentKeepalive, peer);
      },
    });
  }

  /**
   * Unknown and revoked peers leave before the gateway is ready; the adopted ones that are
   * certainly idle (never handshaked: no session to lose) leave in the background, and no scan
   * dumps the device until they have.
   */
  private async reconcile(reconciliation: Reconciliation): Promise<void> {
    const { remove, idle } = reconciliation;
    for (const [start, end] of rampedBatches(remove.length, this.evictBatch)) {
      const chunk = remove.slice(start, end);
      await this.kernel.removePeers(this.interface, chunk.map((r) => r.publicKey));
      for (const { publicKey, reason } of chunk) this.evictedEvent(publicKey, reason, null);
    }
    void this.scanner.removeQueued(idle);
  }

  private openCapture(): void {
    const given = this.options.capture || {};
    this.capture = HandshakeCapture.open({
      linkDown: 'wait',
      // A wake-up's knocks are handled synchronously (rate limit, replay check, queueing); 16 at
      // a time rather than the capture's 64 keeps a burst's wake-ups short while the first ones
      // run cold (64 took 85–265 ms in the TCG test VM). The rest wait in the kernel's buffer.
      batch: GATEWAY_CAPTURE_BATCH,
      ...(this.options.netns !== undefined ? { netns: this.options.netns } : {}),
      ...given,
      ports: given.ports ?? [this.listenPortValue],
    });
    this.capture.on('initiation', (initiation: HandshakeInitiation) => {
      this.knock({ packet: initiation.packet, source: initiation.source, receivedAt: Number(initiation.timestamp) / 1e6 });
    });
    this.capture.on('error', (error) => this.report('capture', error.code, error));
  }

  private knock(knock: Knock): void {
    this.metricsState.initiation();
    const running = handleKnock(knock, this.stages!).then(
      (outcome) => this.settleKnock(knock, outcome),
      (error: unknown) => this.report('knock', errorCode(error), error),
    );
    this.knocks.add(running);
    void running.finally(() => this.knocks.delete(running));
  }

  private settleKnock(knock: Knock, outcome: KnockOutcome): void {
    switch (outcome.kind) {
      case 'installed': {
        this.table.installed(outcome.publicKey, Date.now());
        // Installed with the install-time keepalive only when its own is 0: settle it back.
        if (outcome.peer.persistentKeepalive === 0) {
          this.settler.add(outcome.publicKey, outcome.peer.persistentKeepalive);
        }
        this.metricsState.installed(outcome.via, outcome.knockToInstallMs / 1000);
        this.metricsState.installCalls(this.installer.netlinkCalls);
        this.emit('installed', {
          publicKey: outcome.publicKey, source: knock.source, allowedIps: outcome.peer.allowedIps,
          via: outcome.via, knockToInstallMs: outcome.knockToInstallMs,
        });
        return;
      }
      case 'in-kernel':
      case 'joined':
        // An authenticated initiation the kernel answers itself: the client is there, so its
        // idle clock restarts (a scan decided on an older dump must not cut it).
        this.table.touch(outcome.publicKey, Date.now());
        this.metricsState.inKernel();
        return;
      case 'rejected':
        this.metricsState.rejected(outcome.reason);
        this.metricsState.installCalls(this.installer.netlinkCalls);
        this.emit('rejected', {
          source: knock.source, reason: outcome.reason,
          ...(outcome.publicKey !== undefined ? { publicKey: outcome.publicKey } : {}),
          ...(outcome.detail !== undefined ? { detail: outcome.detail } : {}),
        });
    }
  }

  private evicted(decision: EvictionDecision): void {
    this.settler.forget(decision.publicKey);
    this.evictedEvent(decision.publicKey, decision.reason, decision.idleSeconds);
  }

  private evictedEvent(publicKey: string, reason: EvictedEvent['reason'], idleSeconds: number | null): void {
    this.metricsState.evicted(reason);
    this.emit('evicted', { publicKey, reason, idleSeconds });
  }

  /** Counts an error a stage survived and emits it if anyone listens (an unheard 'error' must not crash the gateway). */
  private report(stage: string, code: string, cause: unknown): void {
    this.metricsState.error(code);
    if (this.listenerCount('error') === 0) return;
    this.emit('error', new GatewayError(`${stage}: ${code}`, { code, stage, cause }));
  }

  private assertRunning(operation: string): void {
    if (this.state !== 'running') {
      throw new GatewayError(`${operation}: the gateway is ${this.state === 'new' ? 'not started' : this.state}`, { code: 'ERR_JITGUARD_GATEWAY_STATE', stage: operation });
    }
  }
}

function* gatewayWarmUp(store: Store): Generator<void, void, void> {
  yield* knockPathWarmUp(store);
  yield* setPathWarmUp();
}

/** Unix milliseconds with sub-millisecond resolution (a capture's kernel timestamps are nanoseconds). */
function unixNow(): number {
  return performance.timeOrigin + performance.now();
}
