/**
 * Measuring the parts (JITGUARD_BENCH_PARTS=1): wraps the gateway's stage methods and the
 * kernel and store calls under it, in the gateway process only, and counts calls, total and
 * longest duration of each. Synchronous methods are timed as they run (their time is event-loop
 * time: a long one is a stall); asynchronous ones from call to settlement (waiting included).
 * Nothing in lib/ is changed; the wrappers go on the classes' prototypes at start-up.
 */
import { HandshakeCapture } from '../../lib/capture/capture.js';
import { ActivityTable } from '../../lib/gateway/evict.js';
import { Installer } from '../../lib/gateway/install.js';
import { PeerLookup } from '../../lib/gateway/lookup.js';
import { ReplayGuard } from '../../lib/gateway/replay.js';
import { Settler } from '../../lib/gateway/settle.js';
import { SqliteStore } from '../../lib/gateway/sqlite-store.js';
import { Verifier } from '../../lib/gateway/verify.js';
import { VerifierPool } from '../../lib/gateway/verify-pool.js';
import { WireGuard } from '../../lib/wireguard/client.js';
import type { Part } from './context.js';

const parts = new Map<string, Part>();

function record(name: string, ms: number): void {
  let p = parts.get(name);
  if (!p) parts.set(name, (p = { calls: 0, totalMs: 0, maxMs: 0 }));
  p.calls++;
  p.totalMs += ms;
  if (ms > p.maxMs) p.maxMs = ms;
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
    record(name, performance.now() - t0);
    return result;
  };
}

export function instrument(): void {
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
