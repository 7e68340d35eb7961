/**
 * Kernel tier for `Gateway` (issue 9): the gateway on an empty wg0 in one network namespace,
 * real kernel WireGuard clients (configured with wg(8)/ip(8), independent of jitguard) in
 * another, a real node:http control plane in this process. wg(8) in the gateway's namespace is
 * the oracle for what the kernel holds. Support: test/kernel/support/gateway-*.ts.
 *
 * Timings are real time in the TCG VM (10-50x slower CPU than native); the WireGuard timers
 * (5 s handshake retry, 15 s re-handshake after unanswered data) run at their real rate.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../lib/gateway/sqlite-store.js';
import { buildInitiation } from '../unit/noise/noble-reference.js';
import { ControlPlane, warmUpFetch } from './support/gateway-control-plane.js';
import {
  CLIENT_V4, CLIENT_V6, GATEWAY_V4, LISTEN_PORT, NAT_PORTS, OTHER_V4, GatewayLab, newKeyPair, sleep, waitFor,
  type Client, type UdpPacket,
} from './support/gateway-lab.js';
import { ChildGateway, GatewayRun } from './support/gateway-run.js';
import { NamespaceSender } from './support/gateway-sender.js';

const b64 = (text: string) => Uint8Array.from(Buffer.from(text, 'base64'));

/** TAI64N of now, as an initiator writes it (2^62 + 10 + unix seconds, nanoseconds). */
function tai64nNow(): Uint8Array {
  const ms = Date.now();
  const out = Buffer.alloc(12);
  out.writeBigUInt64BE(0x400000000000000an + BigInt(Math.floor(ms / 1000)));
  out.writeUInt32BE((ms % 1000) * 1e6, 8);
  return out;
}

function knowAll(plane: ControlPlane, clients: readonly Client[]): void {
  for (const c of clients) plane.know(c.publicKey, [`${c.innerAddress}/32`]);
}

const isInitiationFrom = (client: Client) => (p: UdpPacket) =>
  p.source.port === client.listenPort && p.payload.length === 148 && p.payload[0] === 1;

describe('Gateway with kernel WireGuard clients', () => {
  before(async () => {
    // The first fetch of a process loads undici: seconds in the VM, more than a resolver
    // timeout. Paid here, once, rather than by the first test's first knock.
    console.log(`# the process's first fetch took ${(await warmUpFetch()).toFixed(0)} ms (undici loads on first use)`);
  });

  describe('first contact', () => {
    let lab: GatewayLab;
    let plane: ControlPlane;
    let run: GatewayRun;
    let v4: Client;
    let v6: Client;
    let twice: Client;

    before(async () => {
      lab = await GatewayLab.create();
      plane = await ControlPlane.start();
      [v4, twice] = (await lab.addClients(2, { family: 'v4' })) as [Client, Client];
      [v6] = (await lab.addClients(1, { family: 'v6' })) as [Client];
      knowAll(plane, [v4, v6, twice]);
      run = await GatewayRun.start(lab, plane);
    });
    after(async () => {
      await run?.stop();
      await plane?.close();
      await lab?.destroy();
    });

    it('a client with no prior state pings through an empty gateway at its first try, over IPv4 and IPv6', async (t) => {
      assert.deepEqual(await lab.kernelPeers(), [], 'the gateway starts empty');
      for (const [family, client, endpoint] of [
        ['IPv4', v4, `${v4.sourceAddress}:${v4.listenPort}`],
        ['IPv6', v6, `[${CLIENT_V6}]:${v6.listenPort}`],
      ] as const) {
        const initiationsBefore: number = run.gateway.stats().initiations;
        const reply = await lab.ping(client, 10);
        assert.ok(reply.ok, `${family}: the first ping got a reply`);
        // ping's round trip runs from the first echo request, which made the client send its
        // first initiation; a lost one would be retried only 5 s later.
        t.diagnostic(`${family}: first reply ${reply.rttMs} ms after the first echo request (ping's RTT; the client's own retry would come at 5,000 ms); ` +
          `knock to install ${run.installedFor(client.publicKey)[0]?.knockToInstallMs.toFixed(1)} ms; ${run.gateway.stats().initiations - initiationsBefore} initiation(s) seen`);
        assert.ok(reply.rttMs !== null && reply.rttMs < 4000, `${family}: first reply in ${reply.rttMs} ms, before the 5 s retry with a margin for a loaded VM`);
        const [installed] = run.installedFor(client.publicKey);
        assert.ok(installed);
        assert.equal(installed.via, 'resolver');
        assert.equal(installed.source.address, client.sourceAddress);
        assert.equal(installed.source.port, client.listenPort);
        const peer = await lab.kernelPeer(client.publicKey);
        assert.ok(peer, `${family}: wg(8) shows the peer`);
        assert.equal(peer.endpoint, endpoint);
        assert.deepEqual(peer.allowedIps, [`${client.innerAddress}/32`]);
        assert.ok(peer.latestHandshake > 0);
        assert.equal(plane.callsFor(client.publicKey), 1);
      }
      assert.equal(run.rejected.length, 0, `nothing rejected: ${JSON.stringify(run.rejected)}`);
      t.diagnostic(`gateway errors: ${run.describeErrors()}`);
    });

    // Two initiations of one key arriving before its install completes (a client's retry, or
    // in the VM the kernel clients sending two within a second, as seen in these tests) must
    // install it once: one install counted, one event, one setDevice.
    it('two initiations of one key arriving together install it once', async (t) => {
      const client = twice;
      const installsBefore = run.gateway.stats().installs;
      const callsBefore = run.gateway.stats().installNetlinkCalls;
      const source = { address: client.sourceAddress, port: client.listenPort };
      const first = buildInitiation({ responderPublic: b64(lab.gatewayKeys.publicKey), initiatorPrivate: b64(client.privateKey), timestamp: tai64nNow() });
      await sleep(5); // a later timestamp, as a retry has
      const second = buildInitiation({ responderPublic: b64(lab.gatewayKeys.publicKey), initiatorPrivate: b64(client.privateKey), timestamp: tai64nNow() });
      assert.equal(run.gateway.inject(first, source), true);
      assert.equal(run.gateway.inject(second, source), true);
      await waitFor(() => run.installedFor(client.publicKey).length > 0, 15_000, 'the install');
      await sleep(500);
      assert.ok((await lab.ping(client, 10)).ok, 'the client is up');
      const installs = run.installedFor(client.publicKey).length;
      t.diagnostic(`installed events: ${installs}; installs counted: ${run.gateway.stats().installs - installsBefore}; ` +
        `setDevice calls: ${run.gateway.stats().installNetlinkCalls - callsBefore}`);
      assert.equal(installs, 1, 'one installed event');
      assert.equal(run.gateway.stats().installs - installsBefore, 1, 'one install counted');
      assert.equal(run.gateway.stats().installNetlinkCalls - callsBefore, 1, 'one setDevice');
    });
  });

  it('20 clients knocking at once are all up, installed in few netlink calls', async (t) => {
    const lab = await GatewayLab.create();
    const plane = await ControlPlane.start();
    let run: GatewayRun | undefined;
    try {
      const clients = await lab.addClients(20);
      run = await GatewayRun.start(lab, plane);
      // Pushed, so that the 20 installs become ready together: a resolver lookup costs ~0.1-0.2 s
      // of CPU in the VM, and 20 of them would spread the installs over seconds. (The resolver
      // path under a burst is the SIGKILL test's.)
      for (const c of clients) await run.gateway.upsertPeer({ publicKey: c.publicKey, allowedIps: [`${c.innerAddress}/32`] });
      const started = Date.now();
      await lab.burst(clients);
      await waitFor(() => new Set(run!.installed.map((e) => e.publicKey)).size >= 20, 30_000, '20 installs');
      const installedMs = Date.now() - started;
      const failed = await lab.pingAll(clients, 10);
      assert.deepEqual(failed.map((c) => c.device), [], 'every client pings through');
      const stats = run.gateway.stats();
      const peers = await lab.kernelPeers();
      assert.equal(peers.length, 20);
      for (const c of clients) {
        const peer = peers.find((p) => p.publicKey === c.publicKey);
        assert.ok(peer, `${c.device} in the kernel`);
        assert.equal(peer.endpoint, `${c.sourceAddress}:${c.listenPort}`);
        assert.ok(peer.latestHandshake > 0, `${c.device} handshaked`);
      }
      assert.equal(plane.totalCalls, 0, 'all from the store');
      t.diagnostic(`20 clients installed in ${stats.installNetlinkCalls} netlink calls (setDevice), all in the kernel ${installedMs} ms after the burst; ` +
        `${stats.initiations} initiations seen, ${stats.installs} installs counted; knock to install max ${Math.max(...run.installed.map((e) => e.knockToInstallMs)).toFixed(1)} ms`);
      assert.ok(stats.installNetlinkCalls <= 5, `${stats.installNetlinkCalls} netlink calls for 20 installs`);
    } finally {
      await run?.stop();
      await plane.close();
      await lab.destroy();
    }
  });

  it('a client behind NAT (nftables masquerade) is installed with its translated endpoint', async (t) => {
    const lab = await GatewayLab.create({ nat: true });
    const plane = await ControlPlane.start();
    let run: GatewayRun | undefined;
    try {
      const client = (await lab.addClients(1))[0]!;
      knowAll(plane, [client]);
      run = await GatewayRun.start(lab, plane);
      const reply = await lab.ping(client, 10);
      assert.ok(reply.ok, 'the client behind NAT pings through');
      const [installed] = run.installedFor(client.publicKey);
      assert.ok(installed);
      // The masquerade's address, and a port from its range: not the client's own 192.168.50.2:40001.
      assert.equal(installed.source.address, CLIENT_V4);
      assert.ok(installed.source.port >= NAT_PORTS.min && installed.source.port <= NAT_PORTS.max, `translated port ${installed.source.port}`);
      const peer = await lab.kernelPeer(client.publicKey);
      assert.equal(peer?.endpoint, `${CLIENT_V4}:${installed.source.port}`, 'wg(8) shows the translated endpoint');
      // The gateway has no route to 192.168.50.0/24: its handshake reached the client only
      // through the NAT's mapping of that endpoint.
      assert.doesNotMatch(await lab.gateway.exec('ip', ['route', 'show']), /192\.168\.50/);
      t.diagnostic(`client ${client.listenPort} behind NAT installed as ${peer?.endpoint}; first reply ${reply.rttMs} ms`);
    } finally {
      await run?.stop();
      await plane.close();
      await lab.destroy();
    }
  });

  describe('what the gateway refuses', () => {
    let lab: GatewayLab;
    let plane: ControlPlane;
    let run: GatewayRun;
    let sender: NamespaceSender;
    let capture: Awaited<ReturnType<GatewayLab['tcpdump']>>;
    const storePath = () => join(lab.dir, 'refusals.db');
    const options = () => ({ storePath: storePath(), idleTimeout: 3, evictInterval: 1 });

    before(async () => {
      lab = await GatewayLab.create();
      sender = NamespaceSender.start(lab.client.name); // a node start is seconds in the VM: early
      capture = await lab.tcpdump(); // for the replay test: what the real clients sent
      plane = await ControlPlane.start();
      run = await GatewayRun.start(lab, plane, options());
    });
    after(async () => {
      sender?.stop();
      await run?.stop();
      await plane?.close();
      await lab?.destroy();
    });

    it('an unknown key is never installed, and costs one resolver call for many knocks', async (t) => {
      const stranger = (await lab.addClients(1, { persistentKeepalive: 25 }))[0]!; // knocks once up
      const unknownFor = () => run.rejectedFor(stranger.publicKey).filter((e) => e.reason === 'unknown').length;
      await waitFor(() => unknownFor() >= 1, 15_000, 'the first refusal');
      for (let knock = 2; knock <= 5; knock++) {
        await lab.knock(stranger);
        await waitFor(() => unknownFor() >= knock, 15_000, `refusal ${knock}`);
      }
      assert.deepEqual(new Set(run.rejectedFor(stranger.publicKey).map((e) => e.reason)), new Set(['unknown']));
      assert.equal(plane.callsFor(stranger.publicKey), 1, 'one control-plane request for all the knocks');
      assert.equal(run.installedFor(stranger.publicKey).length, 0);
      assert.equal(await lab.kernelPeer(stranger.publicKey), undefined, 'never in the kernel');
      assert.equal((await lab.ping(stranger, 1)).ok, false);
      const stats = run.gateway.stats();
      assert.ok(stats.lookups.negative_cached >= 4, `negative-cached lookups: ${stats.lookups.negative_cached}`);
      t.diagnostic(`${unknownFor()} knocks refused as unknown, ${plane.callsFor(stranger.publicKey)} resolver call`);
      await lab.removeClient(stranger);
    });

    it('a forged initiation claiming a known key (built by an independent initiator) is refused with zero resolver calls', async (t) => {
      const victim = newKeyPair(); // known to the control plane, never connects
      plane.know(victim.publicKey, ['10.7.9.9/32']);
      const sources: Array<{ address: string; port: number }> = [];
      for (let i = 0; i < 3; i++) {
        const forged = buildInitiation({ responderPublic: b64(lab.gatewayKeys.publicKey), claimedPublic: b64(victim.publicKey), timestamp: tai64nNow() });
        sources.push(await sender.send({ packet: forged, address: GATEWAY_V4, port: LISTEN_PORT, bind: CLIENT_V4 }));
      }
      const refusals = await waitFor(() => {
        const found = sources.map((s) => run.rejected.find((e) => e.source.address === s.address && e.source.port === s.port));
        return found.every(Boolean) ? found : null;
      }, 15_000, 'three refusals');
      for (const e of refusals) {
        assert.equal(e!.reason, 'unauthenticated');
        assert.equal(e!.detail, 'timestamp', 'the forger cannot encrypt the timestamp without the private key');
        assert.equal(e!.publicKey, undefined);
      }
      assert.equal(plane.callsFor(victim.publicKey), 0, 'no resolver call for a forgery');
      assert.equal(run.installedFor(victim.publicKey).length, 0);
      assert.equal(await lab.kernelPeer(victim.publicKey), undefined);
      t.diagnostic(`3 forgeries refused (${refusals.map((e) => e!.detail).join(', ')}), resolver calls for the claimed key: 0`);
    });

    it('a captured real initiation, replayed from elsewhere after its peer was evicted and after a restart, is refused', async (t) => {
      const client = (await lab.addClients(1))[0]!;
      knowAll(plane, [client]);
      assert.ok((await lab.ping(client, 10)).ok, 'the real client is up');
      const packets = await capture.stop();
      const captured = packets.find(isInitiationFrom(client));
      assert.ok(captured, `tcpdump saw the client's initiation (${packets.length} packets)`);
      assert.equal(run.installedFor(client.publicKey).length, 1);
      // The client goes away; the gateway evicts its peer.
      await lab.removeClient(client);
      const evicted = await waitFor(() => run.evicted.find((e) => e.publicKey === client.publicKey), 20_000, 'the idle eviction');
      assert.equal(evicted.reason, 'idle');
      assert.equal(await lab.kernelPeer(client.publicKey), undefined);

      // Same process: refused by the packet itself, before any DH.
      const from = await sender.send({ packet: captured.payload, address: GATEWAY_V4, port: LISTEN_PORT, bind: OTHER_V4 });
      assert.equal(from.address, OTHER_V4);
      const first = await waitFor(() => run.rejected.find((e) => e.source.address === OTHER_V4 && e.source.port === from.port), 15_000, 'the replay refusal');
      assert.equal(first.reason, 'replayed-packet');

      // A restart (new process state, same SqliteStore file): refused by its timestamp.
      await run.stop();
      run = await GatewayRun.start(lab, plane, options());
      const again = await sender.send({ packet: captured.payload, address: GATEWAY_V4, port: LISTEN_PORT, bind: OTHER_V4 });
      const second = await waitFor(() => run.rejected.find((e) => e.source.port === again.port), 15_000, 'the replay refusal after the restart');
      assert.equal(second.reason, 'replayed-timestamp');
      assert.equal(second.publicKey, client.publicKey);
      await sleep(300);
      assert.equal(run.installedFor(client.publicKey).length, 0, 'not reinstalled (the store knows the key: a replay would install it)');
      assert.equal(await lab.kernelPeer(client.publicKey), undefined);
      assert.equal(plane.callsFor(client.publicKey), 1);
      t.diagnostic(`replay after eviction: ${first.reason}; after a restart: ${second.reason}`);
    });
  });

  describe('eviction, re-install and revocation', () => {
    let lab: GatewayLab;
    let plane: ControlPlane;
    let run: GatewayRun;
    let active: Client;
    let idle: Client;
    let activePing: ReturnType<GatewayLab['pingContinuously']>;

    before(async () => {
      lab = await GatewayLab.create();
      plane = await ControlPlane.start();
      [active, idle] = (await lab.addClients(2)) as [Client, Client];
      knowAll(plane, [active, idle]);
      run = await GatewayRun.start(lab, plane, { idleTimeout: 3, evictInterval: 1 });
    });
    after(async () => {
      activePing?.stop();
      await run?.stop();
      await plane?.close();
      await lab?.destroy();
    });

    it('removes an idle client and keeps an active one', async (t) => {
      // The active client pings from the start: with a 3 s idleTimeout, a gap of a few seconds
      // (a ping process start is ~1-2 s in the VM) would rightly make it idle.
      activePing = lab.pingContinuously(active, 0.5);
      await waitFor(() => activePing.replies.length >= 2, 20_000, 'the active client up');
      assert.ok((await lab.ping(idle, 10)).ok, 'the idle client up');
      const evicted = await waitFor(() => run.evicted.find((e) => e.publicKey === idle.publicKey), 20_000, 'the idle client evicted');
      assert.equal(evicted.reason, 'idle');
      assert.equal(await lab.kernelPeer(idle.publicKey), undefined, 'gone from the kernel');
      // By now the active peer's last handshake is older than idleTimeout too: only its receive
      // counter keeps it. Watch several more scans.
      const watchFrom = Date.now();
      await sleep(5000);
      assert.equal(run.evicted.filter((e) => e.publicKey === active.publicKey).length, 0, 'the active client is never evicted');
      assert.ok(await lab.kernelPeer(active.publicKey), 'the active client is still in the kernel');
      const replies = activePing.repliesSince(watchFrom);
      assert.ok(replies >= 6, `the active client kept getting replies (${replies} in 5 s)`);
      t.diagnostic(`idle client evicted after ${evicted.idleSeconds} s idle; active client: ${replies} replies in the 5 s after`);
    });

    it("the evicted client's next handshake re-installs it, from the store", async (t) => {
      // The idle client's session is young (< 3 min): it sends data the gateway's kernel no
      // longer has a peer for, and re-initiates by itself ~15 s later (KEEPALIVE_TIMEOUT +
      // REKEY_TIMEOUT). This waits for that rather than forcing a handshake, so it shows the
      // real recovery a client sees after an early eviction (README: why idleTimeout ≫ 180 s).
      const evictedAt = run.evicted.find((e) => e.publicKey === idle.publicKey)!.at;
      const reply = await lab.pingUntilReply(idle, 30);
      assert.ok(reply.ok, 'the evicted client is back');
      const reinstalls = run.installedFor(idle.publicKey).filter((e) => e.at > evictedAt);
      assert.equal(reinstalls.length, 1);
      assert.equal(reinstalls[0]!.via, 'store');
      assert.equal(plane.callsFor(idle.publicKey), 1, 'no second control-plane request');
      t.diagnostic(`re-installed ${((reinstalls[0]!.at - evictedAt) / 1000).toFixed(1)} s after its eviction (the client's own re-handshake), ping answered after ${(reply.elapsedMs / 1000).toFixed(1)} s`);
    });

    it('revokePeer cuts a live client at once, and its next knock is refused', async (t) => {
      assert.ok(activePing.repliesSince(Date.now() - 2000) > 0, 'the active client is live');
      await run.gateway.revokePeer(active.publicKey);
      const cutAt = Date.now();
      assert.equal(await lab.kernelPeer(active.publicKey), undefined, 'out of the kernel when revokePeer resolves');
      assert.equal((await lab.ping(active, 2)).ok, false, 'no reply right after');
      // A second's grace for a reply already in flight (and read late from ping's output).
      assert.equal(activePing.repliesSince(cutAt + 1000), 0, 'the continuous ping got nothing since');
      assert.ok(run.evicted.some((e) => e.publicKey === active.publicKey && e.reason === 'revoked'));
      await lab.knock(active);
      const refused = await waitFor(() => run.rejectedFor(active.publicKey).find((e) => e.at > cutAt), 15_000, 'the refusal');
      assert.equal(refused.reason, 'revoked');
      assert.equal(plane.callsFor(active.publicKey), 1, 'a revoked key is not looked up');
      t.diagnostic(`revoked: no reply after the cut; next knock refused as ${refused.reason}`);
    });
  });

  describe('a failing control plane', () => {
    const FAILURE_TTL = 1; // s
    let lab: GatewayLab;
    let plane: ControlPlane;
    let run: GatewayRun;
    let steady: Client;
    let clients: Client[];

    before(async () => {
      lab = await GatewayLab.create();
      plane = await ControlPlane.start();
      [steady, ...clients] = (await lab.addClients(5)) as [Client, ...Client[]];
      knowAll(plane, [steady, ...clients]);
      plane.slowMs = 4000;
      run = await GatewayRun.start(lab, plane, { failureTtl: FAILURE_TTL, resolverTimeoutMs: 1500 });
      assert.ok((await lab.ping(steady, 10)).ok);
    });
    after(async () => {
      await run?.stop();
      await plane?.close();
      await lab?.destroy();
    });

    for (const [index, mode, title, detail] of [
      [0, 'down', 'down (connection refused)', 'network'],
      [1, 'slow', 'slow (answers after the timeout)', 'timeout'],
      [2, 'error500', 'answering 500', 'status'],
      [3, 'malformed', 'answering malformed JSON', 'invalid-json'],
    ] as const) {
      it(`resolver ${title}: the gateway keeps running, counts the failure, recovers with the resolver`, async (t) => {
        const client = clients[index]!;
        const before = run.gateway.stats();
        await plane.setMode(mode);
        await lab.knock(client);
        const refused = await waitFor(() => run.rejectedFor(client.publicKey)[0], 15_000, 'the refusal');
        assert.equal(refused.reason, 'lookup-failed');
        assert.equal(refused.detail, detail, 'the ResolverError reason');
        const during = run.gateway.stats();
        assert.ok(during.rejected['lookup-failed'] > before.rejected['lookup-failed']);
        assert.ok(during.lookups.failed > before.lookups.failed);
        assert.equal(run.installedFor(client.publicKey).length, 0);
        assert.equal(await lab.kernelPeer(client.publicKey), undefined);
        assert.ok(run.gateway.ready, 'still running');
        assert.ok((await lab.ping(steady, 5)).ok, 'a client installed before still pings');
        const callsDuring = plane.callsFor(client.publicKey);
        if (mode === 'down') assert.equal(callsDuring, 0);
        else assert.ok(callsDuring >= 1);

        await plane.setMode('ok');
        await sleep(FAILURE_TTL * 1000 + 200);
        await lab.knock(client);
        const installed = await waitFor(() => run.installedFor(client.publicKey)[0], 15_000, 'the install once the resolver is back');
        assert.equal(installed.via, 'resolver');
        assert.ok((await lab.ping(client, 10)).ok, 'the client pings through');
        t.diagnostic(`${title}: refused as ${refused.reason} (${refused.detail}); lookups.failed ${before.lookups.failed} → ${during.lookups.failed}; ` +
          `resolver calls ${callsDuring} during, ${plane.callsFor(client.publicKey)} in all`);
      });
    }
  });

  it('a gateway process SIGKILLed during a burst and restarted: store intact, kernel reconciled, every client reconnects', async (t) => {
    const plane = await ControlPlane.start();
    const children: ChildGateway[] = [];
    let created: GatewayLab | undefined;
    try {
      // Both processes load while the namespaces are set up; the second opens nothing until it
      // is started, after the kill (a restart with the process start-up paid in advance).
      const spawning = Promise.all([ChildGateway.spawn(), ChildGateway.spawn()]);
      void spawning.then((spawned) => children.push(...spawned));
      const lab = (created = await GatewayLab.create());
      const [first, second] = await spawning;
      const config = {
        interface: 'wg0', netns: lab.gateway.path, storePath: join(lab.dir, 'crash.db'),
        resolverUrl: plane.url, resolverTimeoutMs: 5000, captureInterface: 'veth-gw',
      };
      const clients = await lab.addClients(12);
      knowAll(plane, clients);
      const waves = [clients.slice(0, 4), clients.slice(4)];
      await waitFor(() => first.of('loaded').length > 0, 120_000, 'the first gateway process loaded');
      first.start(config);
      await waitFor(() => first.of('ready').length > 0 || first.of('failed').length > 0, 30_000, 'the first gateway ready');
      assert.equal(first.of('failed').length, 0, JSON.stringify(first.of('failed')));

      await lab.burst(waves[0]!);
      await waitFor(() => first.of('installed').length > 0, 20_000, 'a first install');
      await lab.burst(waves[1]!);
      first.kill('SIGKILL');
      const exit = await first.exited;
      assert.equal(exit.signal, 'SIGKILL');
      const installedBeforeKill = new Set(first.of('installed').map((e) => e.publicKey as string));
      const kernelAtKill = await lab.kernelPeers();

      // The store, as the killed process left it.
      const db = new Database(config.storePath);
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      db.close();
      const store = new SqliteStore(config.storePath);
      for (const key of installedBeforeKill) {
        const stored = store.getPeer(key);
        assert.ok(stored !== null && stored !== 'revoked', 'an installed peer is in the store');
        assert.ok(store.getLastTimestamp(key) !== null, 'with its last timestamp');
      }
      store.close();

      // A peer put into wg0 behind the gateway's back while it was down.
      const stranger = newKeyPair();
      await lab.plantKernelPeer(stranger.publicKey, '10.7.9.1/32');

      await waitFor(() => second.of('loaded').length > 0, 120_000, 'the second gateway process loaded');
      const restartedAt = Date.now();
      second.start(config);
      await waitFor(() => second.of('ready').length > 0 || second.of('failed').length > 0, 30_000, 'the restarted gateway ready');
      assert.equal(second.of('failed').length, 0, JSON.stringify(second.of('failed')));
      const readyMs = second.of('ready')[0]!.at - restartedAt;
      await waitFor(() => second.of('evicted').some((e) => e.publicKey === stranger.publicKey), 10_000, 'the planted peer removed');
      assert.equal(second.of('evicted').find((e) => e.publicKey === stranger.publicKey)!.reason, 'unknown-to-store');

      const failed = await lab.pingAll(clients, 30);
      assert.deepEqual(failed.map((c) => c.device), [], 'every client reconnects');
      const keys = new Set(clients.map((c) => c.publicKey));
      const settledPeers = await waitFor(async () => {
        const peers = await lab.kernelPeers();
        return peers.length === keys.size && peers.every((p) => p.persistentKeepalive === 0) ? peers : null;
      }, 15_000, 'the kernel to hold exactly the clients, settled (keepalive off)');
      assert.deepEqual(new Set(settledPeers.map((p) => p.publicKey)), keys, 'the kernel holds the clients and nothing else');
      for (const c of clients) {
        const calls = plane.callsFor(c.publicKey);
        if (installedBeforeKill.has(c.publicKey)) assert.equal(calls, 1, 'a peer stored before the kill is not looked up again');
        else assert.ok(calls >= 1 && calls <= 2, `${c.device}: ${calls} lookups`);
      }
      second.command('stop');
      assert.equal((await second.exited).code, 0);
      const after = new SqliteStore(config.storePath);
      try {
        assert.equal(after.countPeers(), clients.length, 'every client once in the store');
        for (const c of clients) assert.ok(after.getPeer(c.publicKey) !== null);
      } finally {
        after.close();
      }
      t.diagnostic(`killed after ${installedBeforeKill.size} of ${clients.length} installs (kernel then held ${kernelAtKill.length}); ` +
        `restarted process ready ${readyMs} ms after "start"; ${second.of('installed').length} installs after the restart; ` +
        `${second.of('evicted').length} evicted at reconciliation or later`);
    } finally {
      for (const child of children) child.kill('SIGKILL');
      await plane.close();
      await created?.destroy();
    }
  });
});
