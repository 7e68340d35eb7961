/**
 * The gateway under test, in its own process inside the gateway's network namespace: a
 * `Gateway` on wg0 with a `SqliteStore`, the event-loop stall probe, and what the orchestrator
 * asks of it over IPC (rpc.ts). Its CPU time, stalls and event times are its own: the bench's
 * set-up, clients and samplers run in other processes.
 *
 *   node gateway-process.mjs        (started by the bench runner through `ip netns exec`)
 */
import { diffieHellman, generateKeyPairSync } from 'node:crypto';
import { Gateway, type GatewayOptions } from '../../lib/gateway/gateway.js';
import { SqliteStore } from '../../lib/gateway/sqlite-store.js';
import type { EvictReason, ResolvedPeer } from '../../lib/index.js';
import { instrument, takeParts, timelineBetween } from './parts.js';
import { serve } from './rpc.js';
import { STALL_PERIOD_MS, StallProbe, type StallWindow } from './stall.js';

const unixNow = () => performance.timeOrigin + performance.now();

export interface OpenParams {
  interface: string;
  storePath: string;
  captureInterface: string;
  idleTimeout?: number;
  evictInterval?: number;
  handshakeGrace?: number;
  rateLimit?: GatewayOptions['rateLimit'];
}

export interface StartReport {
  /** `new SqliteStore(path)` + `new Gateway(…)`, ms. */
  openMs: number;
  /** From this process's start (Node's time origin) to ready: process start-up and module loading included, ms. */
  processStartToReadyMs: number;
  /** Unix ms when start() was called and when it resolved. */
  startCalledAt: number;
  readyAt: number;
  startMs: number;
  stall: StallWindow;
}

export interface InstalledRecord {
  at: number;
  publicKey: string;
  knockToInstallMs: number;
  via: 'store' | 'resolver';
}

export interface Measured {
  stall: StallWindow;
  /** CPU time of this process since `mark`, µs. */
  cpuUserMicros: number;
  cpuSystemMicros: number;
  elapsedMs: number;
  stats: ReturnType<Gateway['stats']>;
  /** Median of one X25519 (node:crypto, ready keys) in this process, measured after the window. */
  dhSeconds?: number;
}

export interface EvictionTimeline {
  /** Unix ms of each eviction, in order (the orchestrator buckets them). */
  at: number[];
  reasons: Partial<Record<EvictReason, number>>;
}

if (process.env.JITGUARD_BENCH_PARTS) instrument();
const probe = new StallProbe();
probe.start();
let gateway: Gateway | null = null;
let openMs = 0;
let markCpu = process.cpuUsage();
let markAt = unixNow();
const installed: InstalledRecord[] = [];
const evictedAt: number[] = [];
const evictReasons: Partial<Record<EvictReason, number>> = {};
const installWaiters: Array<{ count: number; resolve: (at: number) => void }> = [];
const errors: string[] = [];

function need(): Gateway {
  if (!gateway) throw new Error('gateway not opened');
  return gateway;
}

serve({
  open(params: OpenParams) {
    const t0 = performance.now();
    const store = new SqliteStore(params.storePath);
    gateway = new Gateway({
      interface: params.interface,
      store,
      capture: { interface: params.captureInterface },
      ...(params.idleTimeout !== undefined ? { idleTimeout: params.idleTimeout } : {}),
      ...(params.evictInterval !== undefined ? { evictInterval: params.evictInterval } : {}),
      ...(params.handshakeGrace !== undefined ? { handshakeGrace: params.handshakeGrace } : {}),
      ...(params.rateLimit !== undefined ? { rateLimit: params.rateLimit } : {}),
      // An experiment knob (not a figure of record): JITGUARD_BENCH_VERIFY_THREADS=N overrides the default thread count.
      ...(process.env.JITGUARD_BENCH_VERIFY_THREADS ? { verify: { threads: Number(process.env.JITGUARD_BENCH_VERIFY_THREADS) } } : {}),
    });
    openMs = performance.now() - t0;
    gateway.on('installed', (e) => {
      installed.push({ at: unixNow(), publicKey: e.publicKey, knockToInstallMs: e.knockToInstallMs, via: e.via });
      for (let i = installWaiters.length - 1; i >= 0; i--) {
        if (installed.length >= installWaiters[i]!.count) installWaiters.splice(i, 1)[0]!.resolve(unixNow());
      }
    });
    gateway.on('evicted', (e) => {
      evictedAt.push(unixNow());
      evictReasons[e.reason] = (evictReasons[e.reason] ?? 0) + 1;
    });
    gateway.on('error', (e) => {
      if (errors.length < 20) errors.push(`${e.stage}: ${e.code}`);
    });
    return { openMs };
  },

  async start(): Promise<StartReport> {
    const gw = need();
    probe.take();
    const startCalledAt = unixNow();
    await gw.start();
    const readyAt = unixNow();
    const stall = probe.take();
    logStallForProfile('start', stall);
    return { openMs, processStartToReadyMs: readyAt - performance.timeOrigin, startCalledAt, readyAt, startMs: readyAt - startCalledAt, stall };
  },

  async upsert(params: { peers: ResolvedPeer[] }) {
    const gw = need();
    for (const peer of params.peers) await gw.upsertPeer(peer);
    return params.peers.length;
  },

  /** Starts a measurement window: stall, CPU and the lists of installs and evictions. */
  mark() {
    probe.take();
    markCpu = process.cpuUsage();
    markAt = unixNow();
    installed.length = 0;
    evictedAt.length = 0;
    for (const k of Object.keys(evictReasons)) delete evictReasons[k as EvictReason];
    takeParts();
    return { at: markAt, stats: need().stats() };
  },

  /** The window since `mark` (the stall window restarts; CPU and lists keep counting). */
  measure(): Measured {
    const cpu = process.cpuUsage(markCpu);
    const stall = probe.take();
    logStallForProfile('measure', stall);
    const window = { stall, cpuUserMicros: cpu.user, cpuSystemMicros: cpu.system, elapsedMs: unixNow() - markAt, stats: need().stats() };
    return { ...window, dhSeconds: x25519Seconds() };
  },

  /** Stops or restarts the stall probe (to measure what it costs). */
  probe(params: { on: boolean }) {
    if (params.on) probe.start();
    else probe.stop();
  },

  /** The stall window so far, not reset. */
  stall: () => probe.peek(),

  stats: () => need().stats(),

  installed: () => installed,

  /** Resolves with the Unix ms at which the `count`-th install since `mark` happened (null on timeout). */
  waitInstalls(params: { count: number; timeoutMs: number }): Promise<number | null> {
    if (installed.length >= params.count) return Promise.resolve(installed[params.count - 1]!.at);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const i = installWaiters.findIndex((w) => w.resolve === done);
        if (i >= 0) installWaiters.splice(i, 1);
        resolve(null);
      }, params.timeoutMs);
      const done = (at: number) => {
        clearTimeout(timer);
        resolve(at);
      };
      installWaiters.push({ count: params.count, resolve: done });
    });
  },

  evictions: (): EvictionTimeline => ({ at: evictedAt, reasons: evictReasons }),

  evictedCount: () => evictedAt.length,

  errors: () => errors,

  /** Per-part call counts and durations since the last call (JITGUARD_BENCH_PARTS=1; else empty). */
  parts: () => takeParts(),

  async evictNow() {
    await need().evictNow();
  },

  /** Stops the gateway; with JITGUARD_BENCH_PARTS, the parts since the last `mark` (or `parts`) come back too. */
  async stop() {
    const parts = takeParts();
    const t0 = performance.now();
    await gateway?.stop();
    return { stopMs: performance.now() - t0, stall: probe.take(), parts };
  },
});

/**
 * Under JITGUARD_BENCH_PROFILE, where a window's longest stall lies on the CPU profile's clock
 * (V8's profile times and process.hrtime are both CLOCK_MONOTONIC), for
 * `profile-summary.ts --from/--to`.
 */
function logStallForProfile(window: string, stall: StallWindow): void {
  if (process.env.JITGUARD_BENCH_PARTS && stall.maxStallMs > 0) {
    // The timed parts and collections inside the longest gap (it began one period before it was late).
    const explain = (what: string, ms: number, at: number) => {
      const to = at - performance.timeOrigin;
      process.stderr.write(`pid ${process.pid} ${window}: ${what} ${ms.toFixed(0)} ms:\n${timelineBetween(to - ms - STALL_PERIOD_MS, to).join('\n')}\n`);
    };
    explain(`longest stall (${stall.maxStallCpuMs.toFixed(0)} ms CPU)`, stall.maxStallMs, stall.maxStallAt);
    if (stall.maxBusyStallAt !== undefined && stall.maxBusyStallAt !== stall.maxStallAt) explain('longest busy stall', stall.maxBusyStallMs, stall.maxBusyStallAt);
  }
  if (!process.env.JITGUARD_BENCH_PROFILE || stall.maxStallMs === 0) return;
  const endMonotonicUs = Number(process.hrtime.bigint() / 1000n) - (performance.timeOrigin + performance.now() - stall.maxStallAt) * 1000;
  process.stderr.write(`pid ${process.pid} ${window}: longest stall ${stall.maxStallMs.toFixed(0)} ms (${stall.maxStallCpuMs.toFixed(0)} ms CPU), ended at monotonic ${(endMonotonicUs / 1e6).toFixed(3)} s\n`);
}

/** One X25519 with ready keys, median of 41 (the verification's floor is two of them). */
function x25519Seconds(): number {
  const a = generateKeyPairSync('x25519');
  const b = generateKeyPairSync('x25519');
  const times: number[] = [];
  for (let i = 0; i < 41; i++) {
    const t = performance.now();
    diffieHellman({ privateKey: a.privateKey, publicKey: b.publicKey }).fill(0);
    times.push((performance.now() - t) / 1000);
  }
  return times.sort((x, y) => x - y)[20]!;
}
