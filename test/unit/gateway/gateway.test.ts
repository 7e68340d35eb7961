/**
 * The Gateway's wiring, end to end over fakes: a kernel in memory, a store in memory, clients
 * built by the independent noble initiator, initiations fed through inject() (no capture).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Gateway, type GatewayOptions } from '../../../lib/gateway/gateway.js';
import { GatewayError } from '../../../lib/gateway/errors.js';
import type { EvictedEvent, InstalledEvent, RejectedEvent, ResolvedPeer } from '../../../lib/gateway/types.js';
import { FakeKernel, MemoryStore, TestClient, randomKey, storedPeer, tick } from './support/fakes.js';

function setup(options: Partial<GatewayOptions> = {}) {
  const kernel = new FakeKernel();
  const store = new MemoryStore();
  const resolverCalls: string[] = [];
  const directory = new Map<string, ResolvedPeer>();
  const gateway = new Gateway({
    interface: 'wg0', store, wireguard: kernel, capture: false, idleTimeout: 600, evictInterval: 3600,
    resolve: async (key) => { resolverCalls.push(key); return directory.get(key) ?? null; },
    ...options,
  });
  const events = { installed: [] as InstalledEvent[], rejected: [] as RejectedEvent[], evicted: [] as EvictedEvent[] };
  gateway.on('installed', (e) => events.installed.push(e));
  gateway.on('rejected', (e) => events.rejected.push(e));
  gateway.on('evicted', (e) => events.evicted.push(e));
  const client = (allowedIps = ['10.9.0.7/32']) => {
    const c = new TestClient(kernel.publicKey);
    directory.set(c.publicKey, { publicKey: c.publicKey, allowedIps });
    return c;
  };
  return { kernel, store, gateway, events, resolverCalls, directory, client };
}

async function settled(gateway: Gateway): Promise<void> {
  for (let i = 0; i < 20; i++) await tick();
  await (gateway as unknown as { knocks: Set<Promise<void>> }).knocks.values().next().value;
  for (let i = 0; i < 5; i++) await tick();
}

describe('Gateway', () => {
  it('installs a knocking client as initiator, from the resolver then from the store', async () => {
    const { kernel, gateway, events, resolverCalls, client } = setup();
    await gateway.start();
    const c = client();
    assert.equal(gateway.inject(c.initiation(), { address: '192.0.2.7', port: 40404 }), true);
    await once(gateway, 'installed');
    const peer = kernel.peers.get(c.publicKey)!;
    assert.deepEqual([peer.endpoint, peer.allowedIps, peer.persistentKeepalive], ['192.0.2.7:40404', ['10.9.0.7/32'], 25]);
    assert.deepEqual([events.installed[0]!.via, events.installed[0]!.publicKey], ['resolver', c.publicKey]);
    assert.ok(events.installed[0]!.knockToInstallMs >= 0);

    // Already in the kernel: left to the kernel, no lookup, no install.
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 40404 });
    await settled(gateway);
    assert.equal(gateway.stats().inKernel, 1);
    assert.equal(kernel.count('set'), 1);

    // Evicted, then back: installed from the store, without the resolver.
    kernel.peers.delete(c.publicKey);
    await gateway.evictNow();
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 40405 });
    await once(gateway, 'installed');
    assert.equal(events.installed[1]!.via, 'store');
    assert.equal(resolverCalls.length, 1);
    await gateway.stop();
  });

  it('installs a key once when a second initiation arrives while the first is looked up or installed', { timeout: 10_000 }, async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const { kernel, gateway, events, resolverCalls, client, directory } = setup({
      resolve: async (key) => { resolverCalls.push(key); await held; return directory.get(key) ?? null; },
    });
    await gateway.start();
    const c = client();
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 40404 });
    for (let i = 0; i < 10; i++) await tick(); // the first knock waits in the resolver
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 40404 }); // the client's retry
    for (let i = 0; i < 10; i++) await tick();
    release();
    await once(gateway, 'installed');
    await settled(gateway);
    assert.equal(events.installed.length, 1, 'one installed event');
    assert.equal(kernel.count('set'), 1, 'one setDevice');
    assert.equal(resolverCalls.length, 1);
    const stats = gateway.stats();
    assert.deepEqual([stats.installs, stats.inKernel], [1, 1], 'the retry joined the first knock');
    assert.equal(events.rejected.length, 0);
    await gateway.stop();
  });

  it('refuses replays, forgeries, unknown keys and rate-limited sources, each with its reason', async () => {
    const { gateway, events, resolverCalls, client, kernel } = setup({ negativeTtl: 60 });
    await gateway.start();
    const c = client();
    const packet = c.initiation();
    gateway.inject(packet, { address: '192.0.2.7', port: 1 });
    await once(gateway, 'installed');
    gateway.inject(packet, { address: '198.51.100.9', port: 2 }); // the same packet from elsewhere
    gateway.inject(c.forgery(), { address: '198.51.100.10', port: 3 });
    const stranger = new TestClient(kernel.publicKey);
    for (let i = 0; i < 4; i++) gateway.inject(stranger.initiation(), { address: '198.51.100.11', port: 10 + i });
    const flood = Array.from({ length: 7 }, () => new TestClient(kernel.publicKey).forgery()); // built first: the bucket refills meanwhile
    for (const [i, forged] of flood.entries()) gateway.inject(forged, { address: '203.0.113.1', port: 100 + i });
    await settled(gateway);
    const reasons = events.rejected.map((e) => e.reason);
    assert.equal(reasons.filter((r) => r === 'replayed-packet').length, 1);
    assert.equal(reasons.filter((r) => r === 'unknown').length, 4);
    assert.equal(reasons.filter((r) => r === 'rate-limited').length, 2, 'burst of 5 per source');
    assert.equal(reasons.filter((r) => r === 'unauthenticated').length, 1 + 5);
    assert.deepEqual(resolverCalls, [c.publicKey, stranger.publicKey], 'one resolver call for the stranger, none for forgeries');
    assert.equal(events.rejected.find((e) => e.reason === 'replayed-packet')!.publicKey, undefined);
    const stats = gateway.stats();
    assert.equal(stats.rejected.unknown, 4);
    assert.equal(stats.lookups.unknown + stats.lookups.negative_cached, 4, 'concurrent knocks share one lookup');
    await gateway.stop();
  });

  it('refuses a replayed initiation after an eviction and after a restart (timestamps in the store)', async () => {
    const first = setup();
    await first.gateway.start();
    const c = first.client();
    const old = c.initiation();
    first.gateway.inject(old, { address: '192.0.2.7', port: 1 });
    await once(first.gateway, 'installed');
    await first.gateway.stop();
    first.kernel.peers.clear();
    // A new gateway on the same store: the packet itself is not remembered any more, its timestamp is.
    const second = new Gateway({ interface: 'wg0', store: Object.assign(first.store, { closed: false }), wireguard: first.kernel, capture: false, resolve: async () => ({ publicKey: c.publicKey, allowedIps: [] }) });
    const rejected: RejectedEvent[] = [];
    second.on('rejected', (e) => rejected.push(e));
    await second.start();
    second.inject(old, { address: '198.51.100.1', port: 9 });
    await settled(second);
    assert.deepEqual(rejected.map((e) => [e.reason, e.publicKey]), [['replayed-timestamp', c.publicKey]]);
    assert.equal(first.kernel.peers.size, 0);
    await second.stop();
  });

  it('reconciles at start: unknown and revoked kernel peers removed, known ones adopted', async () => {
    const { kernel, store, gateway, events } = setup();
    const known = randomKey();
    const revoked = randomKey();
    const stranger = randomKey();
    store.putPeer(storedPeer(known));
    store.revokePeer(revoked);
    for (const k of [known, revoked, stranger]) kernel.add({ publicKey: k, lastHandshake: new Date() });
    await gateway.start();
    assert.deepEqual([...kernel.peers.keys()], [known]);
    assert.deepEqual(events.evicted.map((e) => [e.publicKey, e.reason]).sort(), [[revoked, 'revoked'], [stranger, 'unknown-to-store']].sort());
    assert.equal(gateway.stats().kernelPeers, 1);
    await gateway.stop();
  });

  it('an authenticated initiation to a peer in the kernel restarts its handshake grace and idle clock', { timeout: 60_000 }, async () => {
    // Seconds, not milliseconds: each scan must come well inside the grace the knock restarted,
    // also on a loaded machine.
    const { kernel, gateway, events, client } = setup({ handshakeGrace: 2, idleTimeout: 2 });
    await gateway.start();
    try {
      const c = client();
      gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
      await once(gateway, 'installed');
      await new Promise((r) => setTimeout(r, 2200)); // past the grace: a scan now would cut it...
      gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 }); // ...but its client is knocking
      await settled(gateway);
      assert.equal(gateway.stats().inKernel, 1);
      await gateway.evictNow();
      assert.equal(kernel.peers.has(c.publicKey), true, 'the kernel is answering this client; it must stay');
      assert.deepEqual(events.evicted, []);
      await new Promise((r) => setTimeout(r, 2200)); // silent since: now it goes
      await gateway.evictNow();
      assert.deepEqual(events.evicted.map((e) => [e.publicKey, e.reason]), [[c.publicKey, 'never-handshaked']]);
    } finally {
      await gateway.stop();
    }
  });

  it('counts adopted peers still queued for removal as kernel peers until they are removed', { timeout: 60_000 }, async () => {
    const { kernel, store, gateway } = setup();
    const idle = Array.from({ length: 600 }, () => randomKey());
    for (const k of idle) { store.putPeer(storedPeer(k)); kernel.add({ publicKey: k, lastHandshake: null }); }
    kernel.latencyMs = 300; // each call takes a while, as removals do in a real kernel: the first batch is in flight below
    await gateway.start();
    try {
      assert.equal(kernel.peers.size, 600, 'the removal runs in the background, after ready');
      assert.equal(gateway.stats().kernelPeers, 600);
      assert.ok((await gateway.metrics.metrics()).includes('jitguard_kernel_peers 600'), 'a batch in flight still counts');
      for (let i = 0; i < 500 && kernel.peers.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(kernel.peers.size, 0);
      for (let i = 0; i < 10; i++) await tick();
      assert.equal(gateway.stats().kernelPeers, 0);
      assert.ok((await gateway.metrics.metrics()).includes('jitguard_kernel_peers 0'));
    } finally {
      await gateway.stop();
    }
  });

  it('settles while other knocks wait on a slow control plane (only installs hold settles off)', { timeout: 60_000 }, async () => {
    let release!: () => void;
    const slow = new Promise<void>((resolve) => { release = resolve; });
    const held = new Set<string>();
    const { kernel, gateway, client, directory } = setup({
      resolve: async (key) => { if (held.has(key)) await slow; return directory.get(key) ?? null; },
    });
    await gateway.start();
    try {
      const c = client();
      gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
      await once(gateway, 'installed');
      const waiting = new TestClient(kernel.publicKey);
      held.add(waiting.publicKey);
      gateway.inject(waiting.initiation(), { address: '198.51.100.9', port: 1 }); // its lookup hangs
      for (let i = 0; i < 500 && gateway.stats().pendingLookups === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(gateway.stats().pendingLookups, 1, 'the slow lookup is running');
      kernel.handshake(c.publicKey);
      // The old rule deferred the settle for 5 s while any knock was running; it now goes at once.
      for (let i = 0; i < 150 && kernel.peers.get(c.publicKey)!.persistentKeepalive !== 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(gateway.stats().pendingLookups, 1, 'the slow lookup is still running');
      assert.equal(kernel.peers.get(c.publicKey)!.persistentKeepalive, 0);
    } finally {
      release();
      await gateway.stop();
    }
  });

  it('settles the install-time keepalive once the kernel shows the handshake', async () => {
    const { kernel, gateway, client } = setup();
    await gateway.start();
    const c = client();
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
    await once(gateway, 'installed');
    assert.equal(kernel.peers.get(c.publicKey)!.persistentKeepalive, 25);
    kernel.handshake(c.publicKey);
    for (let i = 0; i < 50 && kernel.peers.get(c.publicKey)!.persistentKeepalive !== 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(kernel.peers.get(c.publicKey)!.persistentKeepalive, 0);
    assert.equal(gateway.stats().settled, 1);
    await gateway.stop();
  });

  it('revokePeer cuts a live client at once and keeps it refused until upserted again', async () => {
    const { kernel, gateway, events, client, resolverCalls } = setup();
    await gateway.start();
    const c = client();
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
    await once(gateway, 'installed');
    await gateway.revokePeer(c.publicKey);
    assert.equal(kernel.peers.has(c.publicKey), false);
    assert.deepEqual(events.evicted.map((e) => e.reason), ['revoked']);
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
    await settled(gateway);
    assert.equal(events.rejected.at(-1)!.reason, 'revoked');
    await gateway.upsertPeer({ publicKey: c.publicKey, allowedIps: ['10.9.0.8/32'] });
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
    await once(gateway, 'installed');
    assert.deepEqual(kernel.peers.get(c.publicKey)!.allowedIps, ['10.9.0.8/32']);
    assert.equal(resolverCalls.length, 1);
    await gateway.stop();
  });

  it('keeps running when the kernel refuses, reporting typed errors; refuses bad arguments and bad states', async () => {
    const { kernel, gateway, events, client } = setup();
    assert.throws(() => new Gateway({ interface: 'wg0' } as GatewayOptions), TypeError);
    await assert.rejects(gateway.upsertPeer({ publicKey: randomKey(), allowedIps: [] }), GatewayError);
    await gateway.start();
    await assert.rejects(gateway.start(), (e: unknown) => e instanceof GatewayError && e.code === 'ERR_JITGUARD_GATEWAY_STATE');
    assert.throws(() => gateway.inject(new Uint8Array(148), { address: 'nope', port: 1 }), TypeError);
    assert.equal(gateway.inject(new Uint8Array(10), { address: '192.0.2.1', port: 1 }), false);
    kernel.beforeSet = () => { throw Object.assign(new Error('busy'), { code: 'EBUSY' }); };
    const c = client();
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
    await settled(gateway);
    assert.deepEqual([events.rejected.at(-1)!.reason, events.rejected.at(-1)!.detail], ['install-failed', 'EBUSY']);
    kernel.beforeSet = null;
    gateway.inject(c.initiation(), { address: '192.0.2.7', port: 1 });
    await once(gateway, 'installed');
    await gateway.stop();
    await gateway.stop();
  });

  it('refuses to start on an interface without a private key, and closes what it opened', async () => {
    const kernel = new FakeKernel();
    const store = new MemoryStore();
    const original = kernel.getDevice.bind(kernel);
    kernel.getDevice = async (name) => ({ ...(await original(name)), publicKey: null });
    const gateway = new Gateway({ interface: 'wg0', store, wireguard: kernel, capture: false });
    await assert.rejects(gateway.start(), (e: unknown) => e instanceof GatewayError && e.code === 'ERR_JITGUARD_NO_PRIVATE_KEY');
    assert.equal(store.closed, true);
  });

  it('serves Prometheus metrics named jitguard_*', async () => {
    const { gateway, client } = setup();
    await gateway.start();
    gateway.inject(client().initiation(), { address: '192.0.2.7', port: 1 });
    await once(gateway, 'installed');
    const text = await gateway.metrics.metrics();
    for (const name of ['jitguard_initiations_total 1', 'jitguard_installs_total{via="resolver"} 1', 'jitguard_kernel_peers 1', 'jitguard_store_peers 1',
      'jitguard_lookups_total{outcome="resolver_found"} 1', 'jitguard_rejected_initiations_total{reason="unknown"} 0', 'jitguard_knock_to_install_seconds_count 1',
      'jitguard_install_netlink_calls_total 1', 'jitguard_evictions_total{reason="idle"} 0', 'jitguard_kernel_stale_peers 0']) {
      assert.ok(text.includes(name), name);
    }
    await gateway.stop();
  });
});
