/**
 * (d) Seed 002's switchover: a gateway that ran push-model (every peer in the kernel) switches
 * to just-in-time. The interface holds N peers that the store knows and that are idle; the
 * gateway starts on it and the kernel should end up holding only the live peers, while clients
 * that connect during the switchover are served.
 *
 * The idle peers have never handshaked: the kernel's last-handshake time cannot be set from user
 * space, and a peer with no handshake is what an idle push-model peer that no client has used
 * since the last reboot looks like. The live peers are the kernel WireGuard clients that connect
 * during the switchover (one as soon as the gateway is ready, one when half the idle peers are
 * gone).
 *
 * An independent process samples the kernel's peer count with wg(8) every ~250 ms (a sample at
 * 10^5 peers is itself a full dump, seconds under TCG, so samples are further apart while the
 * kernel is big); the gateway's own eviction events give a second, finer timeline.
 */
import { spawn } from 'node:child_process';
import { SqliteStore } from '../../lib/gateway/sqlite-store.js';
import type { StoredPeer } from '../../lib/index.js';
import { INTERFACE, makePeers, peersConf, type PeerSpec, type Row } from '../netlink/common.js';
import { floorFigure } from './bystander.js';
import { freshStorePath, sleep, unixNow, type GatewayMeasurement, type GatewaySizeResult, type Point } from './context.js';
import type { EvictionTimeline, InstalledRecord, Measured, StartReport } from './gateway-process.js';
import type { ChildRpc } from './rpc.js';
import { longestStall } from './stall.js';
import { clientUp, createTopology, destroyTopology, firstPing, newKernelClient, tunnelAddress, type KernelClient, type Topology } from './topology.js';

/** Idle push-model peers in the store: pushed a day ago, never fetched since. */
export function storedPeers(peers: PeerSpec[], fetchedAt: number): StoredPeer[] {
  return peers.map((p) => ({ publicKey: p.publicKey, allowedIps: [p.allowedIp], presharedKey: null, persistentKeepalive: 0, origin: 'push', fetchedAt }));
}

export function writeStore(path: string, peers: PeerSpec[]): number {
  const t0 = performance.now();
  const store = new SqliteStore(path);
  try {
    const chunk = 50_000;
    for (let i = 0; i < peers.length; i += chunk) store.putPeers(storedPeers(peers.slice(i, i + chunk), Date.now() - 86_400_000));
  } finally {
    store.close();
  }
  return (performance.now() - t0) / 1000;
}

interface Sample {
  startedAt: number;
  endedAt: number;
  peers: number;
}

/** `wg show wg0 peers | wc -l` in a loop, ~250 ms apart, in its own process. */
class PeerCountSampler {
  readonly samples: Sample[] = [];
  private readonly child;
  private buffer = '';

  constructor(ns: string) {
    const loop = `while :; do s=$EPOCHREALTIME; c=$(wg show ${INTERFACE} peers | wc -l); echo "$s $EPOCHREALTIME $c"; sleep 0.25; done`;
    this.child = spawn('ip', ['netns', 'exec', ns, 'bash', '-c', loop], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('utf8');
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const [s, e, c] = this.buffer.slice(0, nl).trim().split(' ').map(Number);
        this.buffer = this.buffer.slice(nl + 1);
        if (Number.isFinite(c)) this.samples.push({ startedAt: s! * 1000, endedAt: e! * 1000, peers: c! });
      }
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

interface ClientResult {
  connectAt: number;
  rttMs?: number;
  error?: string;
}

async function connect(t: Topology, client: KernelClient): Promise<ClientResult> {
  const connectAt = unixNow();
  try {
    await clientUp(t, client);
    const ping = await firstPing(t, client, 60);
    return ping.ok ? { connectAt, rttMs: ping.rttMs } : { connectAt, error: ping.output.slice(-200) };
  } catch (error) {
    return { connectAt, error: (error as Error).message.slice(0, 200) };
  }
}

export const measurement: GatewayMeasurement = {
  id: 'switchover',
  title: 'Switchover: a gateway starts on an interface holding N idle peers',
  figure: 'wall time from start() until the kernel holds only live peers',
  notes: [
    'wg0 holds N peers loaded with `wg addconf` (timed: the kernel\'s bulk load of N peers, used as the anchor of the reboot scenario); the store holds the same N as pushed configurations. None has ever handshaked.',
    'Two real kernel WireGuard clients connect during the switchover, their configurations in the store beforehand (not in the kernel): one as soon as start() resolves, one when the gateway has evicted half the idle peers. Their figure is ping\'s first-packet RTT (first initiation → first reply).',
    'The end is the gateway\'s last eviction event; the wg(8) sampler\'s first sample showing only the live clients confirms it.',
    'The sampler\'s dumps compete with the gateway\'s for the kernel (both take the device lock) and for the VM\'s two vCPUs; that is part of the figure.',
  ],
  async run(ctx) {
    const n = ctx.config.switchoverPeers;
    const peers = makePeers(n);
    ctx.log(`switchover: loading ${n} peers into wg0 (wg addconf)`);
    const t = await createTopology('switchover', { peersConf: peersConf(peers) });
    ctx.bulkLoadSeconds.set(n, t.addconfSeconds!);
    // The store: the N idle peers, and the clients that will connect (pushed, not in the kernel).
    const clients = [newKernelClient('wgs1', tunnelAddress(1)), newKernelClient('wgs2', tunnelAddress(2))];
    const storePath = freshStorePath('switchover');
    const storeSeconds = writeStore(storePath, [...peers, ...clients.map((c) => ({ publicKey: c.publicKey, allowedIp: `${c.address}/32`, endpoint: '' }))]);
    ctx.log(`switchover: wg addconf ${t.addconfSeconds!.toFixed(1)} s, store written in ${storeSeconds.toFixed(1)} s`);
    const sampler = new PeerCountSampler(t.gatewayNs);
    let gateway: ChildRpc | undefined;
    try {
      gateway = await ctx.startGateway(t, { storePath });
      await sleep(1500); // a few samples of the full interface
      const start = await gateway.call<StartReport>('start', {}, 1_800_000);
      const zero = start.startCalledAt;
      const first = connect(t, clients[0]!);
      let second: Promise<ClientResult> | undefined;
      const deadline = Date.now() + 1_800_000;
      for (;;) {
        const evicted = await gateway.call<number>('evictedCount');
        if (!second && evicted >= n / 2) second = connect(t, clients[1]!);
        if (evicted >= n || Date.now() > deadline) break;
        await sleep(250);
      }
      second ??= connect(t, clients[1]!);
      const results = await Promise.all([first, second]);
      // The sampler must see only the live clients.
      let confirmedAt: number | undefined;
      while (Date.now() < deadline) {
        const done = sampler.samples.find((s) => s.startedAt > zero && s.peers <= clients.length && results.every((r) => r.connectAt < s.startedAt));
        if (done) {
          confirmedAt = done.endedAt;
          break;
        }
        await sleep(250);
      }
      const measured = await gateway.call<Measured>('measure');
      const evictions = await gateway.call<EvictionTimeline>('evictions');
      const installed = await gateway.call<InstalledRecord[]>('installed');
      const lastEviction = evictions.at[evictions.at.length - 1];
      const ok = evictions.at.length >= n && confirmedAt !== undefined && results.every((r) => r.rttMs !== undefined);
      if (!ok) ctx.fail(`switchover: ${evictions.at.length} of ${n} evicted, sampler ${confirmedAt ? 'confirmed' : 'never saw only live peers'}, clients ${JSON.stringify(results)}`);
      const seconds = (ms: number | undefined) => (ms === undefined ? NaN : (ms - zero) / 1000);
      const stalled = longestStall(start.stall, measured.stall);
      const row: Row = {
        impl: 'jitguard',
        how: 'Gateway.start() on the full interface: reconcile (adopt), then the first eviction scan',
        ok,
        seconds: seconds(lastEviction),
        figures: {
          startToReadySeconds: start.startMs / 1000,
          storeOpenSeconds: start.openMs / 1000,
          firstEvictionSeconds: seconds(evictions.at[0]),
          lastEvictionSeconds: seconds(lastEviction),
          samplerConfirmedSeconds: seconds(confirmedAt),
          evictedNeverHandshaked: evictions.reasons['never-handshaked'] ?? 0,
          evictedOther: evictions.at.length - (evictions.reasons['never-handshaked'] ?? 0),
          client1ConnectSeconds: seconds(results[0]!.connectAt),
          client1FirstReplySeconds: (results[0]!.rttMs ?? NaN) / 1000,
          client2ConnectSeconds: seconds(results[1]!.connectAt),
          client2FirstReplySeconds: (results[1]!.rttMs ?? NaN) / 1000,
          installs: installed.length,
          maxStallMs: stalled.maxStallMs,
          maxStallCpuMs: stalled.maxStallCpuMs,
          maxBusyStallMs: stalled.maxBusyStallMs,
          maxGcPauseMs: stalled.maxGcPauseMs,
          ...floorFigure(ctx.bystander(start.stall, measured.stall)),
          maxStallDuringStartMs: start.stall.maxStallMs,
          maxStallAfterReadyMs: measured.stall.maxStallMs,
          stallsOver50Ms: start.stall.stallsOver50Ms + measured.stall.stallsOver50Ms,
          samplerSamples: sampler.samples.length,
          storeWriteSeconds: storeSeconds,
        },
      };
      const kernel: Row = { impl: 'kernel', how: `\`wg addconf\` of the same ${n} peers (the push-model load, for scale)`, ok: true, seconds: t.addconfSeconds };
      const series: Record<string, Point[]> = {
        sampler: sampler.samples.map((s) => ({ t: ((s.startedAt + s.endedAt) / 2 - zero) / 1000, value: s.peers })),
        gateway: gatewayView(n, zero, evictions.at, installed.map((r) => r.at)),
        ...Object.fromEntries(results.map((r, i) => [`client${i + 1}`, r.rttMs === undefined ? [] : [{ t: (r.connectAt - zero) / 1000, value: 0 }, { t: (r.connectAt + r.rttMs - zero) / 1000, value: 0 }]])),
        ready: [{ t: start.startMs / 1000, value: n }],
      };
      return [{ n, reference: 'kernel', rows: [kernel, row], series } satisfies GatewaySizeResult];
    } finally {
      await ctx.stopGateway(gateway, `switchover`);
      await sampler.stop();
      await destroyTopology(t);
    }
  },
};

/** Kernel peers as the gateway's events tell it (N, minus evictions, plus installs), at most ~400 points. */
function gatewayView(n: number, zero: number, evictedAt: number[], installedAt: number[]): Point[] {
  const events = [...evictedAt.map((at) => ({ at, d: -1 })), ...installedAt.map((at) => ({ at, d: +1 }))].sort((a, b) => a.at - b.at);
  const points: Point[] = [{ t: 0, value: n }];
  const step = Math.max(1, Math.floor(events.length / 400));
  let value = n;
  events.forEach((e, i) => {
    value += e.d;
    if (i % step === 0 || i === events.length - 1) points.push({ t: (e.at - zero) / 1000, value });
  });
  return points;
}
