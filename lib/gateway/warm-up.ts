/**
 * A warm-up for the knock path: what an initiation goes through around its verification (the
 * per-source rate limit, the replay and lookup stages, the pipeline that sequences them, the
 * metrics it counts in), run on throwaway instances and fakes, plus two reads of keys that do
 * not exist from the gateway's own store, one call per step. It installs nothing, counts
 * nothing in the gateway's metrics and writes nothing to the store.
 *
 * Why: code that has never run costs 10–30× its hot cost the first times (lazy compilation, the
 * interpreter), far more under emulation. In the TCG bench VM a fresh gateway's first knock held
 * the event loop for 22–31 ms before its verification was even queued, and its first settled
 * knock 8–21 ms more, against 0.1–0.2 ms hot (bench/gateway parts, 2026-12-03). The verifier
 * (lib/noise/warm-up.ts), the SET path (lib/wireguard/warm-up.ts) and the capture's frame decoding
 * (lib/capture/frame.ts) have warm-ups of their own; this covers the code between them.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { KeyedFlights } from './in-flight.js';
import { GatewayMetrics } from './metrics.js';
import { PeerLookup } from './lookup.js';
import { handleKnock, type KnockOutcome, type Stages } from './pipeline.js';
import { SourceRateLimit } from './rate-limit.js';
import { ReplayGuard } from './replay.js';
import type { Store, StoredPeer } from './types.js';

/** Rounds of {@link knockPathWarmUp} by default: enough for V8 to have compiled what they run. */
export const KNOCK_PATH_WARM_UP_ROUNDS = 8;

/** Steps in one round of {@link knockPathWarmUp}. */
export const KNOCK_PATH_WARM_UP_STEPS_PER_ROUND = 11;

/**
 * Yields after each call. `store` is the gateway's: it is only read, for keys no one holds
 * (random ones), so that its read statements run once before a client's knock needs them.
 */
export function* knockPathWarmUp(store: Pick<Store, 'getPeer' | 'getLastTimestamp'>, rounds = KNOCK_PATH_WARM_UP_ROUNDS): Generator<void, void, void> {
  const rateLimit = new SourceRateLimit();
  const metrics = new GatewayMetrics({ kernelPeers: () => 0, storePeers: () => 0, capture: () => null });
  const fakeStore = new ThrowawayStore();
  const lookup = new PeerLookup({ store: fakeStore });
  const stages: Stages = {
    rateLimit,
    verifier: { verify: () => ({ ok: true, publicKey: fakeStore.key, timestamp: fakeStore.nextTimestamp() }) },
    replay: new ReplayGuard(fakeStore),
    inKernel: () => false,
    flights: new KeyedFlights<KnockOutcome>(),
    lookup,
    installer: { install: async () => ({ installed: true, netlinkCall: 0 }) },
    now: () => performance.timeOrigin + performance.now(),
  };
  for (let round = 0; round < rounds; round++) {
    const v4 = { address: `192.0.2.${1 + (round % 254)}`, port: 40000 + round };
    const v6 = { address: `2001:db8::${(1 + (round % 254)).toString(16)}`, port: 40000 + round };
    rateLimit.admit(v4);
    yield;
    rateLimit.admit(v6);
    yield;
    readQuietly(() => store.getLastTimestamp(randomKey()));
    yield;
    readQuietly(() => store.getPeer(randomKey()));
    yield;
    // The whole pipeline over fakes: rate limit, verify, replay, lookup (a store hit), install.
    fakeStore.key = randomKey();
    void handleKnock({ packet: new Uint8Array(148), source: round % 2 ? v6 : v4, receivedAt: stages.now() }, stages).catch(() => {});
    yield;
    metrics.initiation();
    yield;
    metrics.rejected('unauthenticated');
    yield;
    metrics.lookup('store_hit');
    yield;
    metrics.installed('store', 0.002);
    yield;
    metrics.installCalls(round + 1);
    yield;
    metrics.inKernel();
    yield;
  }
}

/** A read whose answer and failure do not matter (a closed store, a store that rejects). */
function readQuietly(read: () => unknown): void {
  try {
    const result = read();
    if (result instanceof Promise) result.catch(() => {});
  } catch {
    /* only warming up */
  }
}

function randomKey(): string {
  return randomBytes(32).toString('base64');
}

/** Knows every key as pushed, has no timestamps and keeps nothing. */
class ThrowawayStore implements Store {
  key = randomKey();
  #counter = 0;

  nextTimestamp(): Uint8Array {
    const t = new Uint8Array(12);
    new DataView(t.buffer).setUint32(8, ++this.#counter);
    return t;
  }

  getPeer(publicKey: string): StoredPeer {
    return { publicKey, allowedIps: ['192.0.2.1/32'], presharedKey: null, persistentKeepalive: 0, origin: 'push', fetchedAt: Date.now() };
  }

  getLastTimestamp(): Uint8Array | null {
    return null;
  }

  advanceTimestamp(): boolean {
    return true;
  }

  putPeer(): void {}
  revokePeer(): boolean {
    return false;
  }
  deletePeer(): void {}
  countPeers(): number {
    return 0;
  }
  close(): void {}
}
