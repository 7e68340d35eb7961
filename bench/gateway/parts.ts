/**
 * Measuring the parts (JITGUARD_BENCH_PARTS=1): wraps the gateway's stage methods and the
 * kernel and store calls under it, in the gateway process only, and counts calls, total and
 * longest duration of each. Synchronous methods are timed as they run (their time is event-loop
 * time: a long one is a stall); asynchronous ones from call to settlement (waiting included).
 * Nothing in lib/ is changed; the wrappers go on the classes' prototypes at start-up.
 */
import { HandshakeCapture } from '../../lib/capture/capture.js';
import { Gateway } from '../../lib/gateway/gateway.js';
import { ActivityTable } from '../../lib/gateway/evict.js';
import { Installer } from '../../lib/gateway/install.js';
import { PeerLookup } from '../../lib/gateway/lookup.js';
import { ReplayGuard } from '../../lib/gateway/replay.js';
import { Settler } from '../../lib/gateway/settle.js';
import { SqliteStore } from '../../lib/gateway/sqlite-store.js';
import { Verifier } from '../../lib/gateway/verify.js';
import { VerifierPool } from '../../lib/gateway/verify-pool.js';
import { WireGuard } from '../../lib/wireguard/client.js';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import type { Part } from './context.js';

function gcKind(kind: number | undefined): string {
  switch (kind) {
    case constants.NODE_PERFORMANCE_GC_MINOR: return 'scavenge';
    case constants.NODE_PERFORMANCE_GC_MAJOR: return 'mark-compact';
    case constants.NODE_PERFORMANCE_GC_INCREMENTAL: return 'incremental marking';
    case constants.NODE_PERFORMANCE_GC_WEAKCB: return 'weak callbacks';
    default: return String(kind);
  }
}

const parts = new Map<string, Part>();

/** The latest timed calls and garbage collections (performance.now ms), to explain a stall. */
interface TimelineEvent { name: string; start: number; end: number }
const TIMELINE_LENGTH = 1 << 16;
const timeline: TimelineEvent[] = [];
let timelineNext = 0;

function note(name: string, start: number, end: number): void {
  timeline[timelineNext] = { name, start, end };
  timelineNext = (timelineNext + 1) % TIMELINE_LENGTH;
}

/** What ran within [from, to] (performance.now ms), as lines: offset from `from`, duration, name. */
export function timelineBetween(from: number, to: number): string[] {
  return timeline
    .filter((e) => e.end >= from && e.start <= to)
    .sort((a, b) => a.start - b.start)
    .map((e) => `      +${(e.start - from).toFixed(1)} ms  ${(e.end - e.start).toFixed(1)} ms  ${e.name}`);
}

function record(name: string, ms: number): void {
  let p = parts.get(name);
  if (!p) parts.set(name, (p = { calls: 0, totalMs: 0, maxMs: 0, maxCall: 0 }));
  p.calls++;
  p.totalMs += ms;
  if (ms > p.maxMs) {
    p.maxMs = ms;
    p.maxCall = p.calls;
  }
}

function wrap(proto: object, method: string, name: string): void {
  const original = (proto as Record<string, unknown>)[method];
  if (typeof original !== 'function') throw new Error(`parts: ${name} is not a method`);
  (proto as Record<string, unknown>)[method] = function (this: unknown, ...args: unknown[]) {
    const t0 = performance.now();
    const result = (original as (...a: unknown[]) => unknown).apply(this, args);
    if (result instanceof Promise) {
      return result.finally(() => record(name, performance.now() - t0));
    }
    const t1 = performance.now();
    record(name, t1 - t0);
    note(name, t0, t1);
    return result;
  };
}

export function instrument(): void {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) note(`gc ${gcKind((e.detail as { kind?: number } | undefined)?.kind)}`, e.startTime, e.startTime + e.duration);
  }).observe({ entryTypes: ['gc'] });
  wrap(Gateway.prototype, 'openCapture', 'gateway: open the capture (sync)');
  wrap(Gateway.prototype, 'reconciliation', 'gateway: new reconciliation (sync)');
  wrap(Gateway.prototype, 'knock', 'gateway: knock until its first wait (sync)');
  wrap(Gateway.prototype, 'settleKnock', 'gateway: settle a knock (sync)');
  wrap(HandshakeCapture.prototype, 'onPackets', 'capture: one batch, listeners included (sync)');
  wrap(VerifierPool.prototype, 'verify', 'verify: submitted → result (threads or event-loop slices)');
  wrap(Verifier.prototype, 'verify', 'verify: one packet on the event loop (sync)');
  wrap(ReplayGuard.prototype, 'isFresh', 'replay: isFresh');
  wrap(ReplayGuard.prototype, 'accept', 'replay: accept');
  wrap(PeerLookup.prototype, 'lookup', 'lookup');
  wrap(Installer.prototype, 'install', 'install: queued → kernel holds it');
  wrap(Installer.prototype, 'flush', 'install: one flush (setDevice and retries)');
  wrap(Settler.prototype, 'settleRound', 'settle: one round');
  wrap(ActivityTable.prototype, 'observe', 'evict: observe a dump (sync)');
  wrap(WireGuard.prototype, 'getDevice', 'kernel: getDevice');
  wrap(WireGuard.prototype, 'setDevice', 'kernel: setDevice');
  wrap(WireGuard.prototype, 'removePeers', 'kernel: removePeers');
  for (const m of ['getPeer', 'getPeers', 'getLastTimestamp', 'advanceTimestamp', 'putPeer', 'countPeers']) wrap(SqliteStore.prototype, m, `store: ${m} (sync)`);
}

/** The parts so far, and a fresh count from now. */
export function takeParts(): Record<string, Part> {
  const out = Object.fromEntries(parts);
  parts.clear();
  return out;
}
