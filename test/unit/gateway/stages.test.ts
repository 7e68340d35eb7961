import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SourceRateLimit, sourceKey } from '../../../lib/gateway/rate-limit.js';
import { Verifier } from '../../../lib/gateway/verify.js';
import { ReplayGuard } from '../../../lib/gateway/replay.js';
import { Installer, INSTALL_KEEPALIVE } from '../../../lib/gateway/install.js';
import { Settler } from '../../../lib/gateway/settle.js';
import { SharedDump } from '../../../lib/gateway/kernel.js';
import { planReconcile } from '../../../lib/gateway/reconcile.js';
import { PushPath } from '../../../lib/gateway/push.js';
import { validatePeerConfig, keyFromUrl, keyToUrl } from '../../../lib/gateway/peer-config.js';
import { Responder } from '../../../lib/noise/responder.js';
import { SeenInitiations } from '../../../lib/noise/seen-initiations.js';
import { tai64nFromUnixMs } from '../../../lib/noise/tai64n.js';
import { ValidationError } from '../../../lib/errors.js';
import { FakeClock, FakeKernel, MemoryStore, TestClient, randomKey, storedPeer, tick } from './support/fakes.js';

describe('rate limit (stage 1)', () => {
  it('allows the kernel\'s burst of 5, then 20/s, per source address whatever the port', () => {
    const clock = new FakeClock();
    const limit = new SourceRateLimit({ now: clock.now });
    const results = Array.from({ length: 8 }, (_, i) => limit.admit({ address: '192.0.2.7', port: 40000 + i }));
    assert.deepEqual(results, [true, true, true, true, true, false, false, false]);
    assert.equal(limit.admit({ address: '192.0.2.8', port: 1 }), true, 'another source has its own bucket');
    clock.advance(50);
    assert.equal(limit.admit({ address: '192.0.2.7', port: 1 }), true, 'one token per 50 ms');
    assert.equal(limit.admit({ address: '192.0.2.7', port: 1 }), false);
  });

  it('groups IPv6 sources by /64 and IPv4-mapped ones with their IPv4 address', () => {
    assert.equal(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:2:ffff::9'));
    assert.notEqual(sourceKey('2001:db8:1:2::1'), sourceKey('2001:db8:1:3::1'));
    assert.equal(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
  });

  it('tracks a bounded number of sources', () => {
    const limit = new SourceRateLimit({ capacity: 100 });
    for (let i = 0; i < 10_000; i++) limit.admit({ address: `10.${i >> 16 & 255}.${i >> 8 & 255}.${i & 255}`, port: 1 });
    assert.equal(limit.trackedSources, 100);
  });

  it('refuses nonsense options with a ValidationError', () => {
    assert.throws(() => new SourceRateLimit({ ratePerSecond: -1 }), ValidationError);
    assert.throws(() => new SourceRateLimit({ burst: 0.5 }), ValidationError);
  });
});

describe('verify (stage 2)', () => {
  const kernel = new FakeKernel();
  const responder = new Responder(kernel.privateKey);

  it('authenticates an honest initiation and refuses its replay before any DH', () => {
    const verifier = new Verifier(responder, new SeenInitiations());
    const client = new TestClient(kernel.publicKey);
    const packet = client.initiation();
    const first = verifier.verify(packet);
    assert.equal(first.ok && first.publicKey, client.publicKey);
    let unwraps = 0;
    const counting = new Proxy(responder, { get: (t, p) => (p === 'unwrap' ? (...a: [Uint8Array]) => { unwraps++; return t.unwrap(...a); } : Reflect.get(t, p)) });
    const again = new Verifier(counting, (verifier as unknown as { seen: SeenInitiations }).seen);
    const mutated = Uint8Array.from(packet);
    mutated[4] ^= 0xff; // another sender index: still the same handshake
    assert.deepEqual(again.verify(packet), { ok: false, reason: 'replayed-packet' });
    assert.deepEqual(again.verify(mutated), { ok: false, reason: 'replayed-packet' });
    assert.equal(unwraps, 0, 'no unwrap, so no DH, for a replay');
  });

  it('refuses a forgery claiming a real key (built by an initiator without its private key)', () => {
    const verifier = new Verifier(responder, new SeenInitiations());
    const client = new TestClient(kernel.publicKey);
    assert.deepEqual(verifier.verify(client.forgery()), { ok: false, reason: 'unauthenticated', detail: 'timestamp' });
  });

  it('does not remember packets that failed mac1, so junk cannot push real entries out', () => {
    const seen = new SeenInitiations({ capacity: 4 });
    const verifier = new Verifier(responder, seen);
    const junk = new Uint8Array(148);
    junk[0] = 1;
    for (let i = 0; i < 100; i++) {
      junk[8] = i;
      assert.deepEqual(verifier.verify(junk), { ok: false, reason: 'unauthenticated', detail: 'mac1' });
    }
    assert.equal(seen.size, 0);
  });
});

describe('replay (stage 3)', () => {
  it('accepts strictly later timestamps only, per key, and remembers them in the store', async () => {
    const store = new MemoryStore();
    const replay = new ReplayGuard(store);
    const key = randomKey();
    const t1 = tai64nFromUnixMs(1_000).bytes;
    const t2 = tai64nFromUnixMs(2_000).bytes;
    assert.equal(await replay.isFresh(key, t1), true);
    assert.equal(await replay.accept(key, t2), true);
    assert.equal(await replay.isFresh(key, t2), false, 'equal is a replay');
    assert.equal(await replay.isFresh(key, t1), false, 'earlier is a replay');
    assert.equal(await replay.accept(key, t1), false);
    assert.equal(await new ReplayGuard(store).isFresh(key, t2), false, 'a new guard on the same store (a restart) still refuses it');
    assert.equal(await replay.isFresh(randomKey(), t1), true, 'per key');
  });
});

describe('install (stage 5)', () => {
  it('installs as initiator: endpoint from the source, the keepalive trick, replaced allowed IPs', async () => {
    const kernel = new FakeKernel();
    const installer = new Installer({ kernel, interfaceName: 'wg0' });
    const a = randomKey();
    const b = randomKey();
    await Promise.all([
      installer.install({ peer: storedPeer(a), source: { address: '192.0.2.7', port: 40001 } }),
      installer.install({ peer: storedPeer(b, { persistentKeepalive: 15, allowedIps: ['fd00::7/128'] }), source: { address: '2001:db8::7', port: 40002 } }),
    ]);
    assert.deepEqual([kernel.peers.get(a)!.endpoint, kernel.peers.get(a)!.persistentKeepalive], ['192.0.2.7:40001', INSTALL_KEEPALIVE]);
    assert.deepEqual([kernel.peers.get(b)!.endpoint, kernel.peers.get(b)!.persistentKeepalive, kernel.peers.get(b)!.allowedIps], ['[2001:db8::7]:40002', 15, ['fd00::7/128']]);
  });

  it('coalesces: 1,000 installs ready in one burst are a handful of netlink calls', async () => {
    const kernel = new FakeKernel();
    kernel.latencyMs = 5;
    const installer = new Installer({ kernel, interfaceName: 'wg0', maxBatch: 400 });
    const keys = Array.from({ length: 1000 }, randomKey);
    const outcomes = [];
    for (let i = 0; i < 1000; i++) {
      outcomes.push(installer.install({ peer: storedPeer(keys[i]!), source: { address: '192.0.2.7', port: 1024 + i } }));
      if (i % 100 === 0) await tick(); // arrivals spread over several turns of the event loop
    }
    const done = await Promise.all(outcomes);
    assert.ok(done.every((o) => o.installed));
    assert.equal(kernel.peers.size, 1000);
    // Ten turns of arrivals while each call takes 5 ms: calls are bounded by turns, not peers.
    assert.ok(kernel.count('set') <= 6, `${kernel.count('set')} setDevice calls`);
    assert.equal(installer.netlinkCalls, kernel.count('set'));
  });

  it('coalesces a burst released one install at a time (fast kernel), yet sends a lone install at once', async () => {
    const kernel = new FakeKernel(); // answers at once, as a one-peer SET on the event loop does
    const installer = new Installer({ kernel, interfaceName: 'wg0' });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await installer.install({ peer: storedPeer(randomKey()), source: { address: '192.0.2.7', port: 1 } });
    await sleep(100); // a quiet spell
    const lone = performance.now();
    await installer.install({ peer: storedPeer(randomKey()), source: { address: '192.0.2.7', port: 2 } });
    assert.ok(performance.now() - lone < 20, `a lone install waits for no timer (${(performance.now() - lone).toFixed(1)} ms)`);
    const outcomes = [];
    for (let i = 0; i < 20; i++) { // verification releasing one knock every 2 ms
      outcomes.push(installer.install({ peer: storedPeer(randomKey()), source: { address: '192.0.2.7', port: 100 + i } }));
      await sleep(2);
    }
    assert.ok((await Promise.all(outcomes)).every((o) => o.installed));
    assert.ok(kernel.count('set') <= 2 + 5, `${kernel.count('set') - 2} setDevice calls for the 20 of the burst`);
  });

  it('limits installs per key per minute', async () => {
    const clock = new FakeClock();
    const kernel = new FakeKernel();
    const installer = new Installer({ kernel, interfaceName: 'wg0', maxInstallsPerKey: 3, now: clock.now });
    const key = randomKey();
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await installer.install({ peer: storedPeer(key), source: { address: '192.0.2.7', port: 1000 + i } }));
    assert.deepEqual(results.map((r) => r.installed), [true, true, true, false, false]);
    assert.equal(!results[3]!.installed && results[3]!.reason, 'install-rate');
    clock.advance(20_000);
    assert.equal((await installer.install({ peer: storedPeer(key), source: { address: '192.0.2.7', port: 2000 } })).installed, true);
  });

  it('isolates a peer the kernel refuses: the rest of its batch is installed', async () => {
    const kernel = new FakeKernel();
    const bad = randomKey();
    kernel.beforeSet = (config) => {
      if (config.peers!.some((p) => p.publicKey === bad)) throw Object.assign(new Error('refused'), { code: 'EINVAL' });
    };
    const installer = new Installer({ kernel, interfaceName: 'wg0' });
    const keys = [randomKey(), bad, randomKey()];
    const results = await Promise.all(keys.map((k, i) => installer.install({ peer: storedPeer(k), source: { address: '192.0.2.7', port: 100 + i } })));
    assert.deepEqual(results.map((r) => r.installed), [true, false, true]);
    assert.deepEqual(!results[1]!.installed && [results[1]!.reason, results[1]!.detail], ['install-failed', 'EINVAL']);
  });

  it('refuses installs once stopped, after sending what was queued', async () => {
    const kernel = new FakeKernel();
    const installer = new Installer({ kernel, interfaceName: 'wg0' });
    const queued = installer.install({ peer: storedPeer(randomKey()), source: { address: '192.0.2.7', port: 1 } });
    await installer.stop();
    assert.equal((await queued).installed, true);
    assert.equal((await installer.install({ peer: storedPeer(randomKey()), source: { address: '192.0.2.7', port: 2 } })).installed, false);
  });
});

describe('settle (stage 6)', () => {
  it('one dump and one update-only setDevice settle every peer that handshaked; others wait', async () => {
    const kernel = new FakeKernel();
    const keys = [randomKey(), randomKey(), randomKey()];
    for (const k of keys) kernel.add({ publicKey: k, persistentKeepalive: INSTALL_KEEPALIVE });
    const settler = new Settler({ kernel, dump: new SharedDump(kernel, 'wg0'), interfaceName: 'wg0', giveUpMs: 30_000 });
    for (const k of keys) settler.add(k, 0);
    kernel.handshake(keys[0]!);
    kernel.handshake(keys[1]!);
    kernel.calls.length = 0;
    await settler.settleRound();
    assert.deepEqual(kernel.calls.map((c) => [c.op, c.peers]), [['get', 3], ['set', 2]]);
    assert.deepEqual(keys.map((k) => kernel.peers.get(k)!.persistentKeepalive), [0, 0, INSTALL_KEEPALIVE]);
    assert.equal(settler.size, 1);
    kernel.peers.delete(keys[2]!); // evicted meanwhile
    await settler.settleRound();
    assert.equal(settler.size, 0);
    assert.equal(kernel.peers.has(keys[2]!), false, 'update-only: never re-created');
  });
});

describe('reconcile (stage 9)', () => {
  it('removes kernel peers the store does not know or revoked, and adopts the others', async () => {
    const store = new MemoryStore();
    const known = randomKey();
    const revoked = randomKey();
    const stranger = randomKey();
    store.putPeer(storedPeer(known));
    store.revokePeer(revoked);
    const kernel = new FakeKernel();
    for (const k of [known, revoked, stranger]) kernel.add({ publicKey: k });
    const plan = await planReconcile((await kernel.getDevice('wg0')).peers, store);
    assert.deepEqual(plan.adopt.map((a) => a.peer.publicKey), [known]);
    assert.deepEqual(plan.remove.map((r) => [r.publicKey, r.reason]).sort(), [[revoked, 'revoked'], [stranger, 'unknown-to-store']].sort());
  });

  it('yields to the event loop between chunks of a large interface', async () => {
    const store = new MemoryStore();
    const peers = Array.from({ length: 5000 }, (_, i) => ({ publicKey: `k${i}`, hasPresharedKey: false, endpoint: null, persistentKeepalive: 0, lastHandshake: null, rxBytes: 0n, txBytes: 0n, allowedIps: [], protocolVersion: 1 }));
    let ticks = 0;
    const probe = setInterval(() => ticks++, 0);
    await planReconcile(peers, store);
    clearInterval(probe);
    assert.ok(ticks >= 1, 'the loop ran between chunks');
  });
});

describe('push and revoke (stage 8)', () => {
  it('upsert stores and updates a kernel peer in place; revoke removes it and marks the key', async () => {
    const kernel = new FakeKernel();
    const store = new MemoryStore();
    const key = randomKey();
    kernel.add({ publicKey: key, allowedIps: ['10.9.0.2/32'], persistentKeepalive: 0, lastHandshake: new Date() });
    const forgotten: string[] = [];
    const push = new PushPath({ store, kernel, interfaceName: 'wg0', inKernel: (k) => kernel.peers.has(k), settling: () => false, forget: (k) => forgotten.push(k) });
    await push.upsert({ publicKey: key, allowedIps: ['10.9.0.3/32'], persistentKeepalive: 25 });
    assert.deepEqual([kernel.peers.get(key)!.allowedIps, kernel.peers.get(key)!.persistentKeepalive], [['10.9.0.3/32'], 25]);
    assert.equal((store.getPeer(key) as { origin: string }).origin, 'push');
    const fresh = randomKey();
    await push.upsert({ publicKey: fresh, allowedIps: [] });
    assert.equal(kernel.peers.has(fresh), false, 'a push never creates a kernel peer');
    assert.equal(await push.revoke(key), true);
    assert.equal(kernel.peers.has(key), false);
    assert.equal(store.getPeer(key), 'revoked');
    assert.deepEqual(forgotten, [key, fresh, key]);
    await assert.rejects(push.upsert({ publicKey: key, allowedIPs: [] }), (e: unknown) => e instanceof ValidationError && e.path === 'peer.allowedIPs');
    await assert.rejects(push.revoke('nope'), ValidationError);
  });
});

describe('peer configuration', () => {
  it('canonicalises and refuses what setDevice would refuse, never echoing a preshared key', () => {
    const key = randomKey();
    const psk = randomKey();
    assert.deepEqual(validatePeerConfig({ publicKey: key, allowedIps: ['10.0.0.9/24'], presharedKey: psk }), {
      publicKey: key, allowedIps: ['10.0.0.0/24'], presharedKey: psk, persistentKeepalive: 0,
    });
    const bad: Array<[unknown, string]> = [
      [{ publicKey: key, allowedIps: ['10.0.0.1/33'] }, 'peer.allowedIps[0]'],
      [{ publicKey: key, allowedIps: ['10.0.0.1/32', '10.0.0.1'] }, 'peer.allowedIps[1]'],
      [{ publicKey: key, allowedIps: [], persistentKeepalive: 70_000 }, 'peer.persistentKeepalive'],
      [{ publicKey: key, allowedIps: [], presharedKey: psk.slice(0, 40) }, 'peer.presharedKey'],
      [{ publicKey: key }, 'peer.allowedIps'],
      [{ publicKey: key, allowedIps: Array.from({ length: 1025 }, (_, i) => `10.0.${i >> 8}.${i & 255}/32`) }, 'peer.allowedIps'],
    ];
    for (const [value, path] of bad) {
      assert.throws(() => validatePeerConfig(value), (e: unknown) => e instanceof ValidationError && e.path === path && !e.message.includes(psk.slice(0, 40)), path);
    }
    assert.equal(keyFromUrl(keyToUrl(key)), key);
    assert.throws(() => keyFromUrl('short'), ValidationError);
  });
});
