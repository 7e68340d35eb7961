import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PeerLookup } from '../../../lib/gateway/lookup.js';
import type { ResolvedPeer } from '../../../lib/gateway/types.js';
import { FakeClock, MemoryStore, randomKey, storedPeer, tick } from './support/fakes.js';

/** A resolver whose answers the test releases by hand. */
function gatedResolver() {
  const calls: Array<{ key: string; signal: AbortSignal; answer: (v: ResolvedPeer | null) => void; fail: (e: unknown) => void }> = [];
  const resolve = (key: string, signal: AbortSignal) => new Promise<ResolvedPeer | null>((answer, fail) => calls.push({ key, signal, answer, fail }));
  return { calls, resolve };
}

/** A full collection, so heap figures measure what is retained, not what is garbage. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const answerFor = (key: string): ResolvedPeer => ({ publicKey: key, allowedIps: ['10.1.0.7/32'] });

describe('PeerLookup', () => {
  it('answers from a fresh store entry without asking the resolver', async () => {
    const store = new MemoryStore();
    const key = randomKey();
    store.putPeer(storedPeer(key, { origin: 'resolver', fetchedAt: Date.now() }));
    let asked = 0;
    const lookup = new PeerLookup({ store, resolve: async () => { asked++; return null; } });
    const r = await lookup.lookup(key);
    assert.equal(r.found && r.via, 'store');
    assert.equal(r.outcome, 'store_hit');
    assert.equal(asked, 0);
  });

  it('refreshes a stale resolver entry, and never a pushed one', async () => {
    const clock = new FakeClock(Date.now());
    const store = new MemoryStore();
    const stale = randomKey();
    const pushed = randomKey();
    store.putPeer(storedPeer(stale, { origin: 'resolver', fetchedAt: clock.t - 601_000 }));
    store.putPeer(storedPeer(pushed, { origin: 'push', fetchedAt: clock.t - 10 * 86_400_000 }));
    const asked: string[] = [];
    const lookup = new PeerLookup({ store, now: clock.now, resolve: async (k) => { asked.push(k); return { ...answerFor(k), allowedIps: ['10.1.0.8/32'] }; } });
    const a = await lookup.lookup(stale);
    assert.equal(a.outcome, 'resolver_found');
    assert.deepEqual(a.found && a.peer.allowedIps, ['10.1.0.8/32']);
    assert.deepEqual((store.getPeer(stale) as { allowedIps: string[] }).allowedIps, ['10.1.0.8/32'], 'the answer is stored');
    const b = await lookup.lookup(pushed);
    assert.equal(b.outcome, 'store_hit');
    assert.deepEqual(asked, [stale]);
  });

  it('is single-flight per key: 50 concurrent lookups are one resolver call', async () => {
    const { calls, resolve } = gatedResolver();
    const lookup = new PeerLookup({ store: new MemoryStore(), resolve });
    const key = randomKey();
    const all = Array.from({ length: 50 }, () => lookup.lookup(key));
    await tick();
    assert.equal(calls.length, 1);
    calls[0]!.answer(answerFor(key));
    const results = await Promise.all(all);
    assert.ok(results.every((r) => r.found && r.via === 'resolver'));
  });

  it('caps resolver calls in flight and queued; beyond that it is overloaded at once', async () => {
    const { calls, resolve } = gatedResolver();
    const lookup = new PeerLookup({ store: new MemoryStore(), resolve, maxConcurrentLookups: 2, maxQueuedLookups: 3 });
    const keys = Array.from({ length: 8 }, randomKey);
    const results = keys.map((k) => lookup.lookup(k));
    await tick(); await tick();
    assert.equal(calls.length, 2, 'two in flight');
    const overloaded = await Promise.race([Promise.all(results.slice(5)), new Promise((r) => setTimeout(() => r('blocked'), 50))]);
    assert.deepEqual((overloaded as Array<{ reason: string }>).map((r) => r.reason), ['overloaded', 'overloaded', 'overloaded']);
    calls[0]!.answer(null);
    await tick(); await tick(); await tick();
    assert.equal(calls.length, 3, 'a queued lookup takes the freed slot');
    for (let i = 1; i < 5; i++) {
      while (calls.length <= i) await tick();
      calls[i]!.answer(answerFor(calls[i]!.key));
    }
    const done = await Promise.all(results.slice(0, 5));
    assert.deepEqual(done.map((r) => r.found), [false, true, true, true, true]);
  });

  it('negative-caches unknown keys for negativeTtl and failures for failureTtl', async () => {
    const clock = new FakeClock();
    const asked: string[] = [];
    let fail = true;
    const unknown = randomKey();
    const flaky = randomKey();
    const lookup = new PeerLookup({
      store: new MemoryStore(), now: clock.now, negativeTtl: 60, failureTtl: 5,
      resolve: async (k) => {
        asked.push(k);
        if (k === unknown) return null;
        if (fail) throw Object.assign(new Error('HTTP 503'), { reason: 'status' });
        return answerFor(k);
      },
    });
    assert.equal((await lookup.lookup(unknown)).outcome, 'unknown');
    for (let i = 0; i < 10; i++) assert.equal((await lookup.lookup(unknown)).outcome, 'negative_cached');
    const failed = await lookup.lookup(flaky);
    assert.deepEqual([failed.outcome, !failed.found && failed.reason, !failed.found && failed.detail], ['failed', 'lookup-failed', 'status']);
    assert.equal((await lookup.lookup(flaky)).outcome, 'negative_cached');
    assert.equal(asked.length, 2);
    clock.advance(5_001);
    fail = false;
    assert.equal((await lookup.lookup(flaky)).outcome, 'resolver_found', 'retried after failureTtl');
    assert.equal((await lookup.lookup(unknown)).outcome, 'negative_cached', 'still within negativeTtl');
    clock.advance(55_000);
    assert.equal((await lookup.lookup(unknown)).outcome, 'unknown', 'asked again after negativeTtl');
    assert.equal(asked.length, 4);
  });

  it('serves a stale entry when the resolver fails (stale-if-error) and deletes it when the resolver says unknown', async () => {
    const clock = new FakeClock(Date.now());
    const store = new MemoryStore();
    const key = randomKey();
    store.putPeer(storedPeer(key, { origin: 'resolver', fetchedAt: clock.t - 3_600_000 }));
    let mode: 'fail' | 'unknown' = 'fail';
    const lookup = new PeerLookup({ store, now: clock.now, failureTtl: 1, resolve: async () => { if (mode === 'fail') throw new Error('down'); return null; } });
    const r = await lookup.lookup(key);
    assert.ok(r.found && r.stale && r.via === 'store');
    clock.advance(1_001);
    mode = 'unknown';
    const gone = await lookup.lookup(key);
    assert.equal(gone.found, false);
    assert.equal(store.getPeer(key), null);
  });

  it('refuses revoked keys without asking, and a revocation during a resolver call wins', async () => {
    const store = new MemoryStore();
    const revoked = randomKey();
    store.revokePeer(revoked);
    const { calls, resolve } = gatedResolver();
    const lookup = new PeerLookup({ store, resolve });
    assert.deepEqual(await lookup.lookup(revoked), { found: false, reason: 'revoked', outcome: null });
    assert.equal(calls.length, 0);
    const racing = randomKey();
    const pending = lookup.lookup(racing);
    await tick(); await tick();
    store.revokePeer(racing);
    calls[0]!.answer(answerFor(racing));
    const r = await pending;
    assert.equal(!r.found && r.reason, 'revoked');
    assert.equal(store.getPeer(racing), 'revoked');
  });

  it('treats an answer for another key, or an invalid one, as a failed lookup', async () => {
    const other = randomKey();
    const bad: unknown[] = [
      { publicKey: other, allowedIps: [] },
      { publicKey: 'x', allowedIps: [] },
      { allowedIps: ['10.0.0.1/32'] },
      'a string',
      [],
      { publicKey: '', allowedIps: ['300.0.0.1/32'] },
    ];
    for (const answer of bad) {
      const key = randomKey();
      const good = typeof answer === 'object' && answer !== null && !Array.isArray(answer) && 'publicKey' in answer && (answer as { publicKey: string }).publicKey === ''
        ? { ...answer, publicKey: key } : answer;
      const lookup = new PeerLookup({ store: new MemoryStore(), resolve: async () => good as ResolvedPeer });
      const r = await lookup.lookup(key);
      assert.equal(r.outcome, 'failed', JSON.stringify(good));
    }
  });

  it('bounds a resolver that never answers with resolverTimeoutMs, and stop() aborts what is in flight', async () => {
    const { calls, resolve } = gatedResolver();
    const lookup = new PeerLookup({ store: new MemoryStore(), resolve, resolverTimeoutMs: 30 });
    const r = await lookup.lookup(randomKey());
    assert.deepEqual([r.outcome, !r.found && r.detail], ['failed', 'timeout']);
    assert.equal(calls[0]!.signal.aborted, true, 'the resolver was told to give up');
    const pending = lookup.lookup(randomKey());
    await tick(); await tick();
    lookup.stop();
    assert.equal(((await pending) as { reason: string }).reason, 'stopping');
  });

  it('keeps memory bounded under 10^6 distinct unknown keys', async () => {
    const lookup = new PeerLookup({ store: new MemoryStore(), resolve: async () => null, negativeCacheCapacity: 10_000 });
    const key = Buffer.alloc(32);
    collectGarbage();
    const before = process.memoryUsage().heapUsed;
    for (let round = 0; round < 1000; round++) {
      const batch: Array<Promise<unknown>> = [];
      for (let i = 0; i < 1000; i++) {
        key.writeUInt32LE(round * 1000 + i, 0);
        batch.push(lookup.lookup(key.toString('base64')));
      }
      await Promise.all(batch);
    }
    const cache = (lookup as unknown as { unknownKeys: { size: number } }).unknownKeys;
    assert.equal(cache.size, 10_000);
    assert.equal(lookup.pending, 0);
    collectGarbage();
    const grownMiB = (process.memoryUsage().heapUsed - before) / 2 ** 20;
    assert.ok(grownMiB < 64, `heap grew ${grownMiB.toFixed(1)} MiB`);
  });
});
