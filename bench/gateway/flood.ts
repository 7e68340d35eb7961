/**
 * (c) The gateway's CPU per rejected packet under floods of initiations it must refuse, each kind
 * stopping at a different stage: forged (valid mac1 and static key, a timestamp sealed without
 * the claimed key's private key: two DH operations), garbage with a valid mac1 (one DH), garbage
 * (mac1 fails: one BLAKE2s), one real initiation replayed (refused before any DH), and a flood
 * from one address (the per-source rate limit, before any crypto).
 *
 * CPU is the gateway process's own (process.cpuUsage: user + system, so the capture's reads
 * count), minus what it burns idle over the same time (its timers, the stall probe), divided by
 * the initiations it saw.
 */
import { type Row } from '../netlink/common.js';
import { floorFigure } from './bystander.js';
import { freshStorePath, sleep, type GatewayMeasurement, type GatewaySizeResult } from './context.js';
import type { Measured } from './gateway-process.js';
import type { PacketKind, SendReport } from './initiator-process.js';
import type { ChildRpc } from './rpc.js';
import { GATEWAY_ADDRESS, LISTEN_PORT, createTopology, destroyTopology, newKernelClient, tunnelAddress } from './topology.js';

interface Flood {
  id: string;
  kind: PacketKind;
  sources: 'spread' | 'single';
  how: string;
  /** The reject reason every packet should get (all but the first few, for rate-limited). */
  expect: string;
}

const FLOODS: Flood[] = [
  { id: 'forged', kind: 'forged', sources: 'spread', how: 'forged: claims a key the store knows, valid mac1, timestamp sealed with another key', expect: 'unauthenticated' },
  { id: 'garbage-mac1', kind: 'garbage-mac1', sources: 'spread', how: 'random body with a valid mac1 (the static key does not decrypt)', expect: 'unauthenticated' },
  { id: 'garbage', kind: 'garbage', sources: 'spread', how: 'random body and mac1', expect: 'unauthenticated' },
  { id: 'replayed', kind: 'replay', sources: 'spread', how: 'one real initiation of a known key, replayed from many sources', expect: 'replayed-packet' },
  { id: 'rate-limited', kind: 'garbage', sources: 'single', how: 'random initiations, all from one source address', expect: 'rate-limited' },
];

/** How long a flood's verdicts may take after its last packet before the scenario fails. */
const FLOOD_SETTLE_LIMIT_MS = 300_000;

export const measurement: GatewayMeasurement = {
  id: 'flood',
  title: 'Gateway CPU per rejected initiation under floods',
  figure: 'gateway CPU (user + system) per initiation seen, idle CPU subtracted',
  notes: [
    'Each flood is prepared before its clock starts and sent back to back with dgram from the clients\' namespace: from many source addresses (so the per-source rate limit lets each packet through to the stage under test), or from one for the rate-limit row.',
    'The gateway\'s store knows 100 keys; forged initiations claim them in turn. The replayed initiation is a real one of a known key: sent once first (it installs), then replayed.',
    'A flood is over when the gateway has no verification or lookup outstanding and its initiation counter has stopped moving for a quiet period (1.5 s; 0.5 s in the smoke run; at most 5 min); "seen" is that counter, drops are the capture\'s (kernel ring and queue). "packets/s" divides by the time from the first packet sent to the last moment the gateway was busy with the flood (verdicts included).',
    'The idle row is the gateway process with nothing to do over the same kind of window, with and without the stall probe (a 10 ms timer is not free under TCG); the flood rows have the idle figure (probe included) subtracted.',
  ],
  async run(ctx) {
    const packets = ctx.config.floodPackets;
    const t = await createTopology('flood', { sources: ctx.config.floodSources });
    const initiator = await ctx.startInitiator(t);
    let gateway: ChildRpc | undefined;
    const rows: Row[] = [];
    try {
      await initiator.call('sockets', { addresses: t.sources });
      gateway = await ctx.startGateway(t, { storePath: freshStorePath('flood'), evictInterval: 3600 });
      await gateway.call('start');
      const known = Array.from({ length: 100 }, (_, i) => newKernelClient(`k${i}`, tunnelAddress(i)));
      await gateway.call('upsert', { peers: known.map((c) => ({ publicKey: c.publicKey, allowedIps: [`${c.address}/32`] })) });
      const prepared = new Map<string, string[]>();
      for (const flood of FLOODS) {
        const r = await initiator.call<{ publicKeys: string[] }>('prepare', {
          name: flood.id, kind: flood.kind, count: flood.kind === 'replay' ? packets + 1 : packets, responderPublicKey: t.publicKey,
          claimed: known.map((c) => c.publicKey),
        });
        prepared.set(flood.id, r.publicKeys);
      }
      // The replayed key must be one the store knows: its first copy is a real, accepted initiation.
      const replayKey = prepared.get('replayed')![0]!;
      await gateway.call('upsert', { peers: [{ publicKey: replayKey, allowedIps: [`${tunnelAddress(200)}/32`] }] });

      // Idle CPU (timers, the stall probe), subtracted from each flood's figure; and without
      // the probe, to show what the probe itself costs.
      const idleMs = ctx.config.floodQuietMs * 2;
      await gateway.call('probe', { on: false });
      await gateway.call('mark');
      await sleep(idleMs);
      const idleNoProbe = await gateway.call<Measured>('measure');
      await gateway.call('probe', { on: true });
      await gateway.call('mark');
      await sleep(idleMs);
      const idle = await gateway.call<Measured>('measure');
      const idleMicrosPerMs = (idle.cpuUserMicros + idle.cpuSystemMicros) / idle.elapsedMs;

      for (const flood of FLOODS) {
        const target = { address: GATEWAY_ADDRESS, port: LISTEN_PORT };
        if (flood.kind === 'replay') {
          await initiator.call<SendReport>('send', { name: flood.id, target, sources: 'spread', slice: [0, 1] });
          await sleep(ctx.config.floodQuietMs);
        }
        await sleep(ctx.config.floodQuietMs); // the previous flood's stragglers, and the buckets' refill
        const before = (await gateway.call<{ stats: Measured['stats'] }>('mark')).stats;
        const sent = await initiator.call<SendReport>('send', { name: flood.id, target, sources: flood.sources, ...(flood.kind === 'replay' ? { slice: [1, packets + 1] } : {}) });
        // Wait until the gateway has seen everything it will see, and settled it: verification
        // is queued (bounded), so the counter of initiations seen stops long before the last
        // verdict; a flood the gateway has not finished would spill into the next one's figures.
        let last = -1;
        let lastChangeAt = Date.now();
        const giveUpAt = Date.now() + FLOOD_SETTLE_LIMIT_MS;
        for (;;) {
          const stats = await gateway.call<Measured['stats']>('stats');
          const busy = (stats.verify?.outstanding ?? 0) > 0 || stats.pendingLookups > 0;
          if (stats.initiations !== last || busy) {
            last = stats.initiations;
            lastChangeAt = Date.now();
          } else if (Date.now() - lastChangeAt > ctx.config.floodQuietMs) break;
          if (Date.now() > giveUpAt) {
            ctx.fail(`flood ${flood.id}: the gateway was still busy ${FLOOD_SETTLE_LIMIT_MS / 1000} s after the flood (${stats.verify?.outstanding ?? 0} verifications outstanding)`);
            break;
          }
          await sleep(250);
        }
        const m = await gateway.call<Measured>('measure');
        const seen = m.stats.initiations - before.initiations;
        const rejected = Object.fromEntries(Object.entries(m.stats.rejected).map(([k, v]) => [k, v - (before.rejected as Record<string, number>)[k]!]).filter(([, v]) => (v as number) > 0)) as Record<string, number>;
        const drops = m.stats.captureKernelDrops - before.captureKernelDrops + m.stats.captureQueueDrops - before.captureQueueDrops;
        // The busy time: from the first packet sent to the last verdict (the 1.5 s quiet tail is idle).
        const busyMs = Math.max(1, lastChangeAt - sent.startedAt);
        const cpuMicros = m.cpuUserMicros + m.cpuSystemMicros - idleMicrosPerMs * m.elapsedMs;
        const expected = rejected[flood.expect] ?? 0;
        // From one source, the bucket's burst (and its refill while the flood lasts) gets through to verification.
        const admitted = flood.expect === 'rate-limited' ? rejected.unauthenticated ?? 0 : 0;
        const ok = seen > 0 && expected + admitted >= seen * 0.99 && expected > admitted;
        if (!ok) ctx.fail(`flood ${flood.id}: ${seen} seen, rejects ${JSON.stringify(rejected)} (expected ${flood.expect})`);
        rows.push({
          impl: 'jitguard',
          how: flood.how,
          ok,
          seconds: cpuMicros / Math.max(1, seen) / 1e6,
          figures: {
            cpuMicrosPerPacket: cpuMicros / Math.max(1, seen),
            packetsSent: sent.sent,
            packetsSeen: seen,
            captureDrops: drops,
            expectedRejects: expected,
            otherRejects: Object.values(rejected).reduce((a, b) => a + b, 0) - expected,
            installs: m.stats.installs - before.installs,
            sendSeconds: (sent.finishedAt - sent.startedAt) / 1000,
            busySecondsUpperBound: busyMs / 1000,
            maxStallMs: m.stall.maxStallMs,
            maxStallCpuMs: m.stall.maxStallCpuMs,
            maxBusyStallMs: m.stall.maxBusyStallMs,
            maxGcPauseMs: m.stall.maxGcPauseMs,
            stallsOver50Ms: m.stall.stallsOver50Ms,
            ...floorFigure(ctx.bystander(m.stall)),
          },
          notes: [flood.id, `rejects: ${JSON.stringify(rejected)}`],
          ...(ok ? {} : { error: `rejects ${JSON.stringify(rejected)}` }),
        });
        await initiator.call('drop', { name: flood.id });
      }
      const noProbe = (idleNoProbe.cpuUserMicros + idleNoProbe.cpuSystemMicros) / idleNoProbe.elapsedMs;
      rows.push({ impl: 'idle', how: 'the gateway doing nothing (its timers and the 10 ms stall probe)', ok: true, seconds: 0, figures: { cpuMicrosPerSecond: idleMicrosPerMs * 1000, cpuMicrosPerSecondWithoutProbe: noProbe * 1000, maxStallMs: idle.stall.maxStallMs } });
    } finally {
      await ctx.stopGateway(gateway, `flood`);
      await initiator.close();
      await destroyTopology(t);
    }
    return [{ n: packets, reference: 'idle', rows } satisfies GatewaySizeResult];
  },
};
