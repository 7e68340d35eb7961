/**
 * The gateway's reads of the kernel (issue 9): one dump at start for the device, its private key
 * and the reconciliation, handed to the first eviction scan; scans observed in slices, their
 * decisions checked again before each removal; settling without dumps of its own where another
 * dump serves, none while installs are in flight, and fewer on a device whose dump is slow.
 */
import { probeTurns } from '../../support/event-loop-turns.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ActivityTable } from '../../../lib/gateway/evict.js';
import { EvictionQueue, EvictionScan } from '../../../lib/gateway/eviction-scan.js';
import { Gateway } from '../../../lib/gateway/gateway.js';
import { INSTALL_KEEPALIVE } from '../../../lib/gateway/install.js';
import { SharedDump } from '../../../lib/gateway/kernel.js';
import { Reconciliation } from '../../../lib/gateway/reconcile.js';
import { Settler } from '../../../lib/gateway/settle.js';
import type { EvictedEvent } from '../../../lib/gateway/types.js';
import { SliceClock } from '../../../lib/slices.js';
import { WireGuard } from '../../../lib/wireguard/client.js';
import { decodeDevice } from '../../../lib/wireguard/decode.js';
import { CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, GENL_ID_CTRL } from '../../../lib/netlink/constants.js';
import { messagesIn } from '../../../lib/netlink/message.js';
import { ack, concat, genlReply } from '../../support/kernel-replies.js';
import { privateKeyBytes } from '../../support/keys.js';
import { LARGE_DUMP_FAMILY, largeDump, largeDumpKey } from '../../support/large-dump.js';
import { restamp } from '../../support/replay-transport.js';
import { FakeKernel, MemoryStore, TestClient, randomKey, storedPeer, tick } from './support/fakes.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('Gateway.start(): one dump (issue 9)', () => {
  it('reads the device, its private key and its peers in one dump; the idle adopted peers leave with no second dump', async () => {
    const kernel = new FakeKernel();
    const store = new MemoryStore();
    const adopted = Array.from({ length: 600 }, randomKey);
    for (const key of adopted) {
      store.putPeer(storedPeer(key));
      kernel.add({ publicKey: key }); // never handshaked: no session, removed by the first scan
    }
    const live = randomKey();
    store.putPeer(storedPeer(live));
    kernel.add({ publicKey: live, lastHandshake: new Date(), rxBytes: 100n });
    const stranger = randomKey();
    kernel.add({ publicKey: stranger });
    const gateway = new Gateway({ interface: 'wg0', store, wireguard: kernel, capture: false, evictInterval: 3600, evictBatch: 256 });
    const evicted: EvictedEvent[] = [];
    gateway.on('evicted', (e) => evicted.push(e));
    await gateway.start();
    assert.equal(gateway.publicKey, kernel.publicKey);
    await until(() => kernel.peers.size === 1, 'the adopted idle peers to leave');
    await (gateway as unknown as { scanner: EvictionScan }).scanner.idle();
    assert.equal(kernel.count('get'), 1, 'one dump for start, reconcile and the first scan');
    assert.deepEqual([...kernel.peers.keys()], [live]);
    // Each peer left once, with its reason: the stranger at reconciliation, not again at the scan.
    const reasons = new Map<string, string[]>();
    for (const e of evicted) reasons.set(e.publicKey, [...(reasons.get(e.publicKey) ?? []), e.reason]);
    assert.deepEqual(reasons.get(stranger), ['unknown-to-store']);
    assert.equal(reasons.size, 601);
    assert.ok(adopted.every((key) => reasons.get(key)?.join() === 'never-handshaked'));
    // The stranger alone, then the 600 in batches that double from 16 up to evictBatch (rampedBatches).
    assert.deepEqual(kernel.calls.filter((c) => c.op === 'remove').map((c) => c.peers), [1, 16, 32, 64, 128, 256, 104]);
    await gateway.stop();
  });

  it('is ready before the idle adopted peers are removed (they leave in the background)', async () => {
    const kernel = new FakeKernel();
    const store = new MemoryStore();
    for (let i = 0; i < 1000; i++) {
      const key = randomKey();
      store.putPeer(storedPeer(key));
      kernel.add({ publicKey: key });
    }
    kernel.latencyMs = 20;
    const gateway = new Gateway({ interface: 'wg0', store, wireguard: kernel, capture: false, evictInterval: 3600 });
    await gateway.start();
    assert.equal(gateway.ready, true);
    assert.ok(kernel.peers.size > 500, `${kernel.peers.size} peers left when ready`);
    await until(() => kernel.peers.size === 0, 'the background removal');
    await gateway.stop();
  });

  // Wall-clock stalls are the bench's (a loaded CI host makes them flaky); this pins that the
  // start and the removal give the event loop many turns, with one dump.
  it('on an interface of 30,000 adopted idle peers: the event loop keeps turning, one dump', async (t) => {
    const peers = 30_000;
    const dump = largeDump(peers, { privateKey: privateKeyBytes(9) });
    const messages = () => dump.flatMap((d) => [...messagesIn(Buffer.from(d))]).filter((m) => m.type === LARGE_DUMP_FAMILY);
    const t0 = performance.now();
    decodeDevice(messages());
    const onePass = performance.now() - t0;
    const store = new MemoryStore();
    for (let i = 0; i < peers; i++) store.putPeer(storedPeer(largeDumpKey(i).toString('base64')));
    const replies = dump.map((d) => Buffer.from(d)); // copied before the clock: the addon's copy is not under test
    let dumps = 0;
    let removals = 0;
    const transport = {
      async exchange(sent: Buffer[]) {
        const request = sent[0]!;
        const seq = request.readUInt32LE(8);
        let out: Buffer[];
        if (request.readUInt16LE(4) === GENL_ID_CTRL) out = [concat(genlReply(GENL_ID_CTRL, 1, (w) => { w.attrU16(CTRL_ATTR_FAMILY_ID, LARGE_DUMP_FAMILY); w.attrString(CTRL_ATTR_FAMILY_NAME, 'wireguard'); }, 0), ack())];
        else if (request[16] === 0) { dumps++; out = replies; }
        else { removals++; out = sent.map(() => ack()); }
        for (const reply of out) restamp(reply, seq);
        await sleep(1);
        return { replies: out, completed: sent.length };
      },
      close() {},
    };
    const gateway = new Gateway({ interface: 'wg0', store, wireguard: new WireGuard({ transports: { generic: transport } }), capture: false, evictInterval: 3600, verify: { threads: 0 } });
    let evicted = 0;
    gateway.on('evicted', () => evicted++);
    const probe = probeTurns();
    await gateway.start();
    const startTurns = probe.turns;
    await until(() => evicted === peers, 'every idle peer removed', 60_000);
    probe.stop();
    t.diagnostic(`longest gap ${probe.longestGapMs.toFixed(1)} ms (one-pass decode ${onePass.toFixed(1)} ms); turns: ${startTurns} during start, ${probe.turns} in all`);
    assert.equal(dumps, 1);
    assert.ok(removals >= peers / 256);
    assert.ok(startTurns >= 10, `the start gave the event loop ${startTurns} turns`);
    await gateway.stop();
  });

  it('stop() does not wait for the background removal of a large interface', async () => {
    const kernel = new FakeKernel();
    const store = new MemoryStore();
    for (let i = 0; i < 3000; i++) {
      const key = randomKey();
      store.putPeer(storedPeer(key));
      kernel.add({ publicKey: key });
    }
    const gateway = new Gateway({ interface: 'wg0', store, wireguard: kernel, capture: false, evictInterval: 3600, verify: { threads: 0 } });
    await gateway.start();
    kernel.latencyMs = 50; // ~12 batches left: ~0.6 s
    await until(() => kernel.count('remove') >= 1, 'the first batch');
    const t0 = Date.now();
    await gateway.stop();
    assert.ok(Date.now() - t0 < 400, `stop took ${Date.now() - t0} ms`);
    assert.ok(kernel.peers.size > 0, 'the removal stopped with peers left (the next start removes them)');
  });

  it('refuses an interface without a private key, from the same dump', async () => {
    const kernel = new FakeKernel();
    const getDevice = kernel.getDevice.bind(kernel);
    kernel.getDevice = async (name, options) => ({ ...(await getDevice(name, options)), privateKey: null });
    const gateway = new Gateway({ interface: 'wg0', store: new MemoryStore(), wireguard: kernel, capture: false });
    await assert.rejects(gateway.start(), (e: unknown) => (e as { code?: string }).code === 'ERR_JITGUARD_NO_PRIVATE_KEY');
    assert.equal(kernel.count('get'), 1);
  });
});

describe('eviction scan in slices (issue 9)', () => {
  const policy = { idleTimeoutMs: 10_000, handshakeGraceMs: 30_000 };
  const T0 = 1_800_000_000_000;

  it('observeInSlices decides as observe does, and lets the event loop run', async () => {
    const peers = Array.from({ length: 20_000 }, (_, i) => ({ publicKey: `k${i}`, rxBytes: BigInt(i % 3), lastHandshake: i % 2 ? null : new Date(T0 - 3_600_000) }));
    const once = new ActivityTable(policy);
    const sliced = new ActivityTable(policy);
    const clock = new SliceClock(0.5);
    const expected = once.observe(peers, T0);
    const candidates = await sliced.observeInSlices(peers, T0, T0, clock);
    assert.deepEqual(candidates.map(({ publicKey, reason, idleSeconds }) => ({ publicKey, reason, idleSeconds })), expected);
    assert.equal(expected.length, 20_000);
    assert.ok(clock.pauses > 0);
  });

  it('does not adopt back a peer removed after the dump was requested', () => {
    const table = new ActivityTable(policy);
    table.remove('revoked', T0 + 5);
    assert.deepEqual(table.observe([{ publicKey: 'revoked', rxBytes: 0n, lastHandshake: null }], T0 + 10, T0), []);
    assert.equal(table.has('revoked'), false);
    // A dump requested after the removal shows what the kernel holds then: adopted.
    table.observe([{ publicKey: 'revoked', rxBytes: 0n, lastHandshake: new Date(T0) }], T0 + 20, T0 + 15);
    assert.equal(table.has('revoked'), true);
  });

  it('keeps a peer installed again, touched or revoked after the decision, while earlier batches are removed', async () => {
    const kernel = new FakeKernel();
    const table = new ActivityTable({ idleTimeoutMs: 1_000, handshakeGraceMs: 1_000 });
    const keys = Array.from({ length: 12 }, randomKey);
    for (const key of keys) kernel.add({ publicKey: key });
    kernel.latencyMs = 30;
    const evicted: string[] = [];
    const scan = new EvictionScan({
      kernel, dump: new SharedDump(kernel, 'wg0'), interfaceName: 'wg0', table, batchSize: 4,
      onEvicted: (d) => evicted.push(d.publicKey), onScanned: () => {}, onError: assert.fail,
    });
    const running = scan.scan();
    await until(() => kernel.count('remove') === 1, 'the first batch');
    const [touched, reinstalled, revoked] = [keys[5]!, keys[9]!, keys[10]!];
    table.touch(touched, Date.now()); // its client's initiation, which the kernel answers
    table.installed(reinstalled, Date.now());
    table.remove(revoked);
    await running;
    assert.deepEqual(evicted.sort(), keys.filter((k) => ![touched, reinstalled, revoked].includes(k)).sort());
    assert.ok(kernel.peers.has(touched) && kernel.peers.has(reinstalled));
  });
});

describe('queued removal of adopted idle peers (issue 9)', () => {
  it('Reconciliation sorts each batch: unknown and revoked to remove, certainly idle to the queue, the rest adopted', async () => {
    const now = 1_800_000_000_000;
    const store = new MemoryStore();
    const table = new ActivityTable({ idleTimeoutMs: 600_000, handshakeGraceMs: 30_000 });
    const [unknown, revoked, never, old, young] = Array.from({ length: 5 }, randomKey) as [string, string, string, string, string];
    for (const key of [never, old, young]) store.putPeer(storedPeer(key));
    store.revokePeer(revoked);
    const adopted: string[] = [];
    const reconciliation = new Reconciliation({ store, table, now, onAdopted: (peer) => adopted.push(peer.publicKey) });
    const peer = (publicKey: string, lastHandshake: Date | null) => ({ publicKey, hasPresharedKey: false, endpoint: null, persistentKeepalive: 0, lastHandshake, rxBytes: 0n, txBytes: 0n, allowedIps: [], protocolVersion: 1 });
    await reconciliation.add([peer(unknown, null), peer(revoked, null), peer(never, null)]);
    await reconciliation.add([peer(old, new Date(now - 3_600_000)), peer(young, new Date(now - 60_000))]);
    assert.deepEqual(reconciliation.remove.map((r) => [r.publicKey, r.reason]), [[unknown, 'unknown-to-store'], [revoked, 'revoked']]);
    assert.deepEqual(Array.from({ length: reconciliation.idle.size }, (_, i) => reconciliation.idle.at(i)), [
      { publicKey: never, reason: 'never-handshaked', idleSeconds: null },
      { publicKey: old, reason: 'idle', idleSeconds: 3600 },
    ]);
    assert.deepEqual(adopted, [young]);
    assert.deepEqual([table.has(young), table.has(never), table.has(old)], [true, false, false], 'the queued ones are not tracked');
  });

  it('EvictionQueue keeps keys and decisions compactly and gives them back as they were', () => {
    const queue = new EvictionQueue();
    const decisions = Array.from({ length: 2500 }, (_, i) => ({ publicKey: randomKey(), reason: i % 2 ? 'idle' as const : 'never-handshaked' as const, idleSeconds: i % 2 ? i : null }));
    for (const d of decisions) queue.push(d);
    assert.equal(queue.size, 2500);
    assert.deepEqual(Array.from({ length: queue.size }, (_, i) => queue.at(i)), decisions);
  });

  it('removes in batches, keeps a peer installed since it was queued, and scans join it instead of dumping', async () => {
    const kernel = new FakeKernel();
    kernel.latencyMs = 20;
    const table = new ActivityTable({ idleTimeoutMs: 1_000, handshakeGraceMs: 30_000 });
    const queue = new EvictionQueue();
    const keys = Array.from({ length: 10 }, randomKey);
    for (const key of keys) {
      kernel.add({ publicKey: key });
      queue.push({ publicKey: key, reason: 'never-handshaked', idleSeconds: null });
    }
    const evicted: string[] = [];
    const scan = new EvictionScan({
      kernel, dump: new SharedDump(kernel, 'wg0'), interfaceName: 'wg0', table, batchSize: 4,
      onEvicted: (d) => evicted.push(d.publicKey), onScanned: () => {}, onError: assert.fail,
    });
    const removing = scan.removeQueued(queue);
    assert.equal(scan.busy, true);
    assert.equal(scan.queued, 10);
    await until(() => kernel.count('remove') === 1, 'the first batch');
    const installed = keys[7]!;
    table.installed(installed, Date.now()); // its client knocked: the gateway installed it again
    await scan.scan(); // the timer's scan: joins the removal
    await removing;
    assert.equal(kernel.count('get'), 0, 'no dump while the queued removal ran');
    assert.deepEqual(evicted.sort(), keys.filter((k) => k !== installed).sort());
    assert.deepEqual([...kernel.peers.keys()], [installed]);
    assert.equal(scan.busy, false);
    assert.equal(scan.queued, 0);
    // No dump was in flight: nothing to remember of the removed peers (10^5 of them at a switchover).
    assert.equal((table as unknown as { departed: Map<string, number> }).departed.size, 0);
  });
});

describe('settle without competing dumps (issue 9)', () => {
  function setup(options: Partial<ConstructorParameters<typeof Settler>[0]> = {}) {
    const kernel = new FakeKernel();
    const dump = new SharedDump(kernel, 'wg0');
    const settled: string[] = [];
    const settler = new Settler({ kernel, dump, interfaceName: 'wg0', giveUpMs: 30_000, intervalMs: 10, onSettled: (k) => settled.push(k), ...options });
    return { kernel, dump, settler, settled };
  }

  it('takes the handshake from a dump another reader took (the eviction scan), with no dump of its own', async () => {
    const { kernel, dump, settler, settled } = setup({ intervalMs: 60_000 });
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE });
    settler.add(key, 0);
    kernel.handshake(key);
    await dump.read(); // the scan's
    await until(() => settled.length === 1, 'the settle');
    assert.equal(kernel.peers.get(key)!.persistentKeepalive, 0);
    assert.deepEqual(kernel.calls.map((c) => c.op), ['get', 'set']);
    await settler.stop();
  });

  it('starts no dump while installs are in flight, and dumps once they are done', async () => {
    let busy = true;
    const { kernel, settler, settled } = setup({ socketBusy: () => busy });
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE, lastHandshake: new Date() });
    settler.add(key, 0);
    await sleep(150);
    assert.equal(kernel.count('get'), 0, 'no dump while installs are busy');
    busy = false;
    await until(() => settled.length === 1, 'the settle');
    assert.equal(kernel.count('get'), 1);
    await settler.stop();
  });

  it('waits for busy installs at most maxDeferMs', async () => {
    const { kernel, settler, settled } = setup({ socketBusy: () => true, maxDeferMs: 100 });
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE, lastHandshake: new Date() });
    settler.add(key, 0);
    await until(() => settled.length === 1, 'the deferred settle');
    await settler.stop();
  });

  it('on a device whose dump is slow, waits for a busy socket longer than maxDeferMs (up to the back-off)', async () => {
    let busy = true;
    const { kernel, dump, settler, settled } = setup({ socketBusy: () => busy, maxDeferMs: 50 });
    kernel.latencyMs = 100;
    await dump.read(); // a dump of ~100 ms: back-off ~400 ms
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE, lastHandshake: new Date() });
    settler.add(key, 0);
    await sleep(250);
    assert.equal(kernel.count('get'), 1, 'no settle dump after maxDeferMs while the socket is busy');
    await until(() => settled.length === 1, 'the settle once the back-off has passed', 3_000);
    busy = false;
    await settler.stop();
  });

  it('starts no dump while an eviction runs, however long, and one once it is done', async () => {
    let evicting = true;
    const { kernel, settler, settled } = setup({ evicting: () => evicting, maxDeferMs: 20 });
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE, lastHandshake: new Date() });
    settler.add(key, 0);
    await sleep(300);
    assert.equal(kernel.count('get'), 0, 'no settle dump during the eviction');
    evicting = false;
    await until(() => settled.length === 1, 'the settle after the eviction');
    await settler.stop();
  });

  it("backs off after the start-up's dump too, which SharedDump only notes", async () => {
    const { kernel, dump, settler, settled } = setup({ intervalMs: 10 });
    const now = Date.now();
    dump.note(now - 100, now); // a 100 ms dump just ended: no own dump for ~400 ms
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE, lastHandshake: new Date() });
    settler.add(key, 0);
    await sleep(250);
    assert.equal(kernel.count('get'), 0);
    await until(() => settled.length === 1, 'the settle after the back-off');
    assert.ok(Date.now() - now >= 380, `settled after ${Date.now() - now} ms`);
    await settler.stop();
  });

  it('backs off after a slow dump: no dump every interval on a device whose dump takes long', async () => {
    const { kernel, settler } = setup({ intervalMs: 10 });
    kernel.latencyMs = 50; // each dump ~50 ms: the next one no sooner than ~200 ms after
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE }); // never handshakes
    settler.add(key, 0);
    await sleep(700);
    await settler.stop();
    const dumps = kernel.count('get');
    // Without back-off: one every 10 ms + 50 ms, ~11 in 700 ms.
    assert.ok(dumps >= 1 && dumps <= 4, `${dumps} dumps in 700 ms`);
  });

  it('a peer seen handshaked is set on the next round without another dump when the set failed', async () => {
    const { kernel, settler, settled, dump } = setup();
    const key = randomKey();
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE, lastHandshake: new Date() });
    let fail = true;
    kernel.beforeSet = () => { if (fail) { fail = false; throw Object.assign(new Error('busy'), { code: 'EBUSY' }); } };
    const errors: string[] = [];
    const s = new Settler({ kernel, dump, interfaceName: 'wg0', giveUpMs: 30_000, intervalMs: 10, onSettled: (k) => settled.push(k), onError: (code) => errors.push(code) });
    s.add(key, 0);
    await until(() => settled.length === 1, 'the retried set');
    assert.deepEqual(errors, ['EBUSY']);
    assert.equal(kernel.count('get'), 1);
    assert.equal(kernel.count('set'), 2);
    await s.stop();
    await settler.stop();
  });

  it('a dump requested before a peer was added neither settles nor forgets it', async () => {
    const { kernel, dump, settler, settled } = setup({ intervalMs: 60_000 });
    const key = randomKey();
    const reading = dump.read(); // requested before the install
    kernel.add({ publicKey: key, persistentKeepalive: INSTALL_KEEPALIVE, lastHandshake: new Date() });
    settler.add(key, 0);
    await reading;
    await tick();
    assert.equal(settler.has(key), true, 'still pending');
    assert.equal(settled.length, 0);
    await dump.read();
    await until(() => settled.length === 1, 'the settle from a later dump');
    await settler.stop();
  });

  it('a gateway takes no settle dump while knocks are in flight during a burst', async () => {
    const kernel = new FakeKernel();
    kernel.latencyMs = 40; // installs in flight most of the burst
    const store = new MemoryStore();
    const gateway = new Gateway({ interface: 'wg0', store, wireguard: kernel, capture: false, evictInterval: 3600 });
    await gateway.start();
    const clients = Array.from({ length: 48 }, () => new TestClient(kernel.publicKey));
    for (const c of clients) await gateway.upsertPeer({ publicKey: c.publicKey, allowedIps: [] });
    const knocks = (gateway as unknown as { knocks: Set<unknown> }).knocks;
    const dumpsDuringKnocks: number[] = [];
    const getDevice = kernel.getDevice.bind(kernel);
    kernel.getDevice = (name, options) => {
      if (knocks.size > 0) dumpsDuringKnocks.push(knocks.size);
      return getDevice(name, options);
    };
    let installed = 0;
    gateway.on('installed', (e) => { installed++; kernel.handshake(e.publicKey); });
    for (const [i, c] of clients.entries()) {
      gateway.inject(c.initiation(), { address: `192.0.2.${i + 1}`, port: 40000 + i });
      if (i % 4 === 3) await sleep(30); // ~400 ms of arrivals
    }
    await until(() => installed === clients.length, 'every install');
    await until(() => gateway.stats().settled === clients.length, 'every settle');
    assert.deepEqual(dumpsDuringKnocks, [], 'settle dumps started while knocks were in flight');
    assert.ok(kernel.count('get') >= 1);
    await gateway.stop();
  });
});
