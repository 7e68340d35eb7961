import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityTable, REJECT_AFTER_TIME_MS, decide } from '../../../lib/gateway/evict.js';
import { EvictionScan } from '../../../lib/gateway/eviction-scan.js';
import { SharedDump } from '../../../lib/gateway/kernel.js';
import { FakeKernel, randomKey } from './support/fakes.js';

const policy = { idleTimeoutMs: 10_000, handshakeGraceMs: 30_000 };
const T0 = 1_800_000_000_000;
const peer = (rx: bigint, handshakeAt: number | null) => ({ publicKey: 'k', rxBytes: rx, lastHandshake: handshakeAt === null ? null : new Date(handshakeAt) });

describe('eviction decisions (stage 7)', () => {
  it('a table of cases', () => {
    const installedHere = { rxBytes: 100n, lastReceiveAt: T0, installedAt: T0, graceFrom: T0, installedHere: true };
    const adopted = { ...installedHere, installedHere: false };
    const cases: Array<[string, ReturnType<typeof peer>, typeof installedHere, number, string | null]> = [
      ['never handshaked, within grace', peer(0n, null), installedHere, T0 + 29_000, null],
      ['never handshaked, past grace', peer(0n, null), installedHere, T0 + 30_000, 'never-handshaked'],
      ['adopted, never handshaked: no session to lose', peer(0n, null), adopted, T0, 'never-handshaked'],
      ['received recently, old handshake', peer(100n, T0 - 60_000), { ...installedHere, lastReceiveAt: T0 + 5_000 }, T0 + 10_000, null],
      ['quiet for idleTimeout but handshake younger', peer(100n, T0 + 5_000), installedHere, T0 + 10_001, null],
      ['quiet and handshake older than idleTimeout', peer(100n, T0 - 1_000), installedHere, T0 + 10_000, 'idle'],
    ];
    for (const [name, p, activity, now, expected] of cases) {
      assert.equal(decide(p, activity, now, policy)?.reason ?? null, expected, name);
    }
  });

  it('never evicts a peer whose receive counter grows, even with a 1 s idleTimeout and a 3-minute-old handshake', () => {
    const table = new ActivityTable({ idleTimeoutMs: 1_000, handshakeGraceMs: 1_000 });
    const handshake = T0 - 170_000; // a busy peer's handshake moves only on rekeys
    table.installed('k', T0 - 200_000);
    let rx = 0n;
    for (let scan = 0; scan < 20; scan++) {
      rx += 148n;
      const decisions = table.observe([peer(rx, handshake)], T0 + scan * 2_000);
      assert.deepEqual(decisions, [], `scan ${scan}`);
    }
    const quiet = table.observe([peer(rx, handshake)], T0 + 40_000 + 1_000);
    assert.equal(quiet[0]?.reason, 'idle', 'once the counter stops for idleTimeout, it goes');
    assert.equal(quiet[0]?.idleSeconds, 3);
  });

  it('adopts found peers: a handshake older than REJECT_AFTER_TIME starts the idle clock from it; a younger one is watched', () => {
    const table = new ActivityTable(policy);
    const old = { publicKey: 'old', rxBytes: 5n, lastHandshake: new Date(T0 - REJECT_AFTER_TIME_MS - 1) };
    const young = { publicKey: 'young', rxBytes: 5n, lastHandshake: new Date(T0 - 60_000) };
    const decisions = table.observe([old, young], T0);
    assert.deepEqual(decisions.map((d) => d.publicKey), ['old']);
    assert.deepEqual(table.observe([young], T0 + 9_999), []);
    assert.deepEqual(table.observe([young], T0 + 10_000).map((d) => d.publicKey), ['young']);
  });

  it('forgets peers that left the kernel, but not one installed after the dump was requested', () => {
    const table = new ActivityTable(policy);
    table.installed('gone', T0);
    table.installed('racing', T0 + 50);
    table.observe([], T0 + 100, T0 + 10);
    assert.equal(table.has('gone'), false);
    assert.equal(table.has('racing'), true);
  });
});

describe('eviction scan', () => {
  it('removes in batches of evictBatch from one dump, and reports the peers left', async () => {
    const kernel = new FakeKernel();
    const table = new ActivityTable({ idleTimeoutMs: 1_000, handshakeGraceMs: 1_000 });
    const keys = Array.from({ length: 10 }, randomKey);
    const live = randomKey();
    for (const k of keys) kernel.add({ publicKey: k, lastHandshake: new Date(Date.now() - 3_600_000) });
    kernel.add({ publicKey: live, lastHandshake: new Date() });
    const evicted: string[] = [];
    const scanned: Array<[number, number]> = [];
    const scan = new EvictionScan({
      kernel, dump: new SharedDump(kernel, 'wg0'), interfaceName: 'wg0', table, batchSize: 4,
      onEvicted: (d) => evicted.push(d.publicKey), onScanned: (n, s) => scanned.push([n, s]), onError: assert.fail,
    });
    await Promise.all([scan.scan(), scan.scan()]);
    assert.deepEqual(kernel.calls.map((c) => [c.op, c.peers]), [['get', 11], ['remove', 4], ['remove', 4], ['remove', 2]]);
    assert.deepEqual(evicted.sort(), [...keys].sort());
    assert.deepEqual([...kernel.peers.keys()], [live]);
    assert.deepEqual(scanned, [[1, 0]]);
  });

  it('a failed removal leaves the peers for the next scan and reports the error', async () => {
    const kernel = new FakeKernel();
    kernel.add({ publicKey: randomKey(), lastHandshake: new Date(Date.now() - 3_600_000) });
    kernel.removePeers = async () => { throw Object.assign(new Error('x'), { code: 'ETIMEDOUT' }); };
    const errors: string[] = [];
    const scanned: Array<[number, number]> = [];
    const table = new ActivityTable(policy);
    await new EvictionScan({
      kernel, dump: new SharedDump(kernel, 'wg0'), interfaceName: 'wg0', table,
      onEvicted: assert.fail, onScanned: (n, s) => scanned.push([n, s]), onError: (code) => errors.push(code),
    }).scan();
    assert.deepEqual(errors, ['ETIMEDOUT']);
    assert.deepEqual(scanned, [[1, 1]], 'one stale peer still in the kernel');
  });
});
