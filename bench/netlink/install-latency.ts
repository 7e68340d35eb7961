/**
 * Single-peer install latency: one peer at a time onto an interface (with a private key)
 * already holding N peers, as a JIT gateway installs a peer that just knocked. p50 / p99 / max
 * over the samples; beside it the kernel's own per-peer cost, the floor: the wall time of the
 * `wg addconf` that loaded the N peers, divided by N (same interface, same run).
 *
 * Library rows time the call inside a running Node process (after a few untimed warm-up
 * installs; the first call's time is reported separately). wg(8) rows time `wg set wg0 peer …`
 * as a shell runs it: fork, exec, netlink, exit (bash loop, $EPOCHREALTIME around each call).
 */
import { writeFileSync } from 'node:fs';
import {
  type ChildReport,
  type Measurement,
  type PeerSpec,
  type Row,
  INTERFACE,
  INSTALL_FLOOR,
  createFixture,
  destroyFixture,
  latencyFigures,
  makePeers,
  measure,
  peerCount,
  runChild,
  scratchPath,
} from './common.js';
import { loadAdapter } from './implementations.js';

const now = () => Number(process.hrtime.bigint()) / 1e9;
/** Install peers live in 10.128.0.0/9, apart from the fixture's 10.0.0.0/9. */
const INSTALL_BASE = 1 << 23;

interface Plan {
  impl: string;
  how: string;
  /** Fraction of the sample budget: 1 for full rows, small for implementations expected to fail. */
  full: boolean;
  required: boolean;
}

const PLANS: Plan[] = [
  { impl: 'jitguard', how: '`setDevice` with one peer per call', full: true, required: true },
  { impl: 'c-floor', how: 'one-peer SET from one long-running C process (bench/gateway/install-floor.c --keep), sendmsg → ack', full: true, required: true },
  { impl: 'node-floor', how: "the addon's `exchangeNow` of a one-peer SET encoded before the clock starts: no validation, no encoding, no promise", full: true, required: true },
  { impl: 'wg', how: '`wg set wg0 peer K endpoint E allowed-ips A` per peer, from a bash loop', full: true, required: true },
  { impl: 'wireguard-tools.js', how: '`setConfig` with one peer per call', full: false, required: false },
  { impl: 'netlink', how: '`setDevice` with one peer per call', full: false, required: false },
  { impl: 'netlink-raw', how: 'SET_DEVICE `request()` with one peer per call', full: false, required: false },
];

export const measurement: Measurement = {
  id: 'install-latency',
  title: 'Single-peer install latency onto an interface holding N peers',
  figure: 'p50 latency of one install',
  notes: [
    'Anchors: the C one-peer SET (bench/gateway/install-floor.c, back to back from one process, each peer left on the device as the library rows leave theirs) is the system-call floor of one install, what the goal compares with; the Node floor (the addon sending a SET encoded before its clock starts) is the lowest any Node library can reach here. The kernel\'s bulk share, `wg addconf` of the N peers ÷ N on the same interface, is shown for scale: one message cannot reach it.',
    'Library and floor rows get untimed warm-up installs in their process first, 100 in the default run: a gateway\'s install path is warm; wg(8) rows 5 (bash processes, nothing to warm).',
    'Library calls are timed inside a long-running Node process after untimed warm-up installs; "first" is the first call of a fresh process (it includes one-time work such as resolving the netlink family, and for jitguard reading the interface\'s public key from the first datagram of a dump).',
    'wg(8) is timed per process, as a shell runs it (fork + exec + netlink + exit).',
    'Samples from jitguard and wg(8) are taken in alternating rounds to spread out noise from the shared host.',
  ],
  async run(ctx, n) {
    const cfg = ctx.config;
    const fixture = await createFixture('install', ctx.peers(n));
    const floor = fixture.bulkSeconds / n;
    const privateKey = fixture.privateKey;
    const rows: Row[] = [];
    let nextIndex = INSTALL_BASE;
    let installed = 0;
    const take = (count: number): PeerSpec[] => {
      const peers = makePeers(count, nextIndex);
      nextIndex += count;
      return peers;
    };
    try {
      const perRound = Math.ceil(cfg.installSamples / cfg.installRounds);
      const collected = new Map<string, { samples: number[]; first: number[]; rss: number; error?: Row }>();
      for (let round = 0; round < cfg.installRounds; round++) {
        for (const plan of PLANS.filter((p) => !cfg.skipImpls.includes(p.impl))) {
          const state = collected.get(plan.impl) ?? { samples: [], first: [], rss: 0 };
          collected.set(plan.impl, state);
          if (state.error) continue; // a failing implementation is tried in the first round only
          if (!plan.full && round > 0) continue;
          const count = plan.full ? perRound : Math.min(3, perRound);
          const inProcess = plan.impl === 'jitguard' || plan.impl === 'node-floor' || plan.impl === 'c-floor';
          const warmup = !plan.full ? 0 : inProcess ? cfg.libraryWarmup : cfg.installWarmup;
          ctx.log(`install-latency n=${n} ${plan.impl}: round ${round + 1}, ${count} installs`);
          if (plan.impl === 'c-floor' || plan.impl === 'wg') {
            // Processes timed from outside a Node child: the C floor, and wg(8) from bash.
            let result;
            if (plan.impl === 'c-floor') {
              result = await cFloor(fixture.ns, warmup + count, nextIndex);
              nextIndex += warmup + count;
            } else {
              result = await wgLoop(fixture.ns, take(warmup + count));
            }
            if (!result.ok) state.error = { impl: plan.impl, how: plan.how, ok: false, error: result.error };
            else {
              installed += warmup + count;
              state.samples.push(...result.samples.slice(warmup));
              state.first.push(result.samples[0]!);
              state.rss = Math.max(state.rss, result.maxRssKiB);
            }
            continue;
          }
          const peers = take(warmup + count);
          const outcome = await runChild('install-latency', plan.impl, { peers, warmup, privateKey }, fixture.ns);
          state.rss = Math.max(state.rss, outcome.maxRssKiB);
          if (!outcome.ok || !outcome.samples) {
            state.error = { impl: plan.impl, how: plan.how, ok: false, error: outcome.error, errorCode: outcome.errorCode, maxRssKiB: outcome.maxRssKiB };
            if (outcome.figures?.installed) installed += outcome.figures.installed;
          } else {
            installed += warmup + count;
            state.samples.push(...outcome.samples);
            if (outcome.figures?.firstSeconds !== undefined) state.first.push(outcome.figures.firstSeconds);
          }
        }
      }
      for (const plan of PLANS.filter((p) => !cfg.skipImpls.includes(p.impl))) {
        const state = collected.get(plan.impl)!;
        if (state.error) {
          rows.push(state.error);
          if (plan.required) ctx.fail(`install-latency n=${n} ${plan.impl}: ${state.error.error}`);
          continue;
        }
        const figures = latencyFigures(state.samples);
        figures.firstSeconds = Math.max(...state.first);
        figures.p50OverFloor = figures.p50Seconds! / floor;
        const cFloorSamples = collected.get('c-floor')?.samples;
        if (cFloorSamples?.length) figures.p50OverCFloor = figures.p50Seconds! / latencyFigures(cFloorSamples).p50Seconds!;
        const notes: string[] = [];
        if (!plan.full) notes.push('few samples (an implementation expected to fail)');
        rows.push({ impl: plan.impl, how: plan.how, ok: true, seconds: figures.p50Seconds, figures, maxRssKiB: state.rss, notes });
      }
      const expected = n + installed;
      const count = await peerCount(fixture.ns);
      if (count !== expected) ctx.fail(`install-latency n=${n}: ${INTERFACE} holds ${count} peers after the installs, expected ${expected}`);
    } finally {
      await destroyFixture(fixture.ns);
    }
    return {
      n,
      reference: 'wg',
      rows,
      context: {
        floorSeconds: floor,
        bulkSeconds: fixture.bulkSeconds,
        kernelMemAvailableDropKiB: fixture.memAvailableDropKiB,
        kernelSlabGrowthKiB: fixture.slabGrowthKiB,
      },
    };
  },
};

/**
 * The system-call floor of one install: install-floor.c sending one-peer SETs back to back
 * from one process (each left on the device, as the library rows leave theirs), numbered from
 * `firstIndex` so that its allowed IPs (100.64.0.0/10) never repeat within a run.
 */
async function cFloor(ns: string, count: number, firstIndex: number): Promise<{ ok: boolean; samples: number[]; maxRssKiB: number; error?: string }> {
  const result = await measure([INSTALL_FLOOR, INTERFACE, String(count), '0', '--keep', '--first-index', String(firstIndex)], { ns });
  const samples = result.stdout.trim().split('\n').filter(Boolean).map((line) => Number(line) / 1e9);
  if (result.status !== 0 || samples.length !== count) {
    return { ok: false, samples, maxRssKiB: result.maxRssKiB, error: `install-floor failed after ${samples.length} installs: ${result.stderr.trim().slice(0, 300)}` };
  }
  return { ok: true, samples, maxRssKiB: result.maxRssKiB };
}

/** wg(8) per peer from a bash loop; returns the per-call wall times. */
async function wgLoop(ns: string, peers: PeerSpec[]): Promise<{ ok: boolean; samples: number[]; maxRssKiB: number; error?: string }> {
  const lines = ['export LC_ALL=C', 'set -e'];
  for (const p of peers) {
    lines.push(`s=$EPOCHREALTIME; wg set ${INTERFACE} peer ${p.publicKey} endpoint ${p.endpoint} allowed-ips ${p.allowedIp}; e=$EPOCHREALTIME; echo "$s $e"`);
  }
  const script = scratchPath(`install-wg-${process.pid}.sh`);
  writeFileSync(script, lines.join('\n') + '\n');
  const result = await measure(['bash', script], { ns });
  const samples = result.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [s, e] = line.split(' ').map(Number);
      return e! - s!;
    });
  if (result.status !== 0 || samples.length !== peers.length) {
    return { ok: false, samples, maxRssKiB: result.maxRssKiB, error: `wg set failed after ${samples.length} installs: ${result.stderr.trim().slice(0, 300)}` };
  }
  return { ok: true, samples, maxRssKiB: result.maxRssKiB };
}

export async function child(impl: string, params: Record<string, unknown>): Promise<ChildReport> {
  const peers = params.peers as PeerSpec[];
  const warmup = params.warmup as number;
  if (impl === 'node-floor') return nodeFloor(peers, warmup);
  const adapter = await loadAdapter(impl, { privateKey: params.privateKey as string | undefined });
  try {
    return await timedInstalls(peers, warmup, (peer) => peer, (peer) => adapter.setPeers([peer]));
  } finally {
    adapter.close();
  }
}

/**
 * Installs `peers` one at a time: `prepare` untimed, `install` timed. The first `warmup`
 * samples are left out (the first call's time is reported apart).
 */
async function timedInstalls<T>(peers: PeerSpec[], warmup: number, prepare: (peer: PeerSpec, index: number) => T, install: (prepared: T, index: number) => unknown): Promise<ChildReport> {
  const samples: number[] = [];
  let first = NaN;
  let installed = 0;
  try {
    for (let i = 0; i < peers.length; i++) {
      const prepared = prepare(peers[i]!, i);
      const t0 = now();
      await install(prepared, i);
      const t = now() - t0;
      installed++;
      if (i === 0) first = t;
      if (i >= warmup) samples.push(t);
    }
  } catch (error) {
    const { describeError } = await import('./common.js');
    return { ok: false, ...describeError(error), figures: { installed } };
  }
  return { ok: true, samples, figures: { firstSeconds: first, installed } };
}

/**
 * The lowest any Node library can reach here: each one-peer SET is validated, encoded and
 * numbered before its clock starts, and the clock covers only the addon's synchronous
 * `exchangeNow` (the same system calls as the C floor, plus the crossing into native code and
 * back). The difference to the C floor is Node's own; the difference to jitguard is jitguard's.
 */
async function nodeFloor(peers: PeerSpec[], warmup: number): Promise<ChildReport> {
  const { NativeTransport } = await import('../../lib/netlink/transport.js');
  const { NetlinkConnection } = await import('../../lib/netlink/connection.js');
  const { NETLINK_GENERIC } = await import('../../lib/netlink/constants.js');
  const { resolveFamily } = await import('../../lib/netlink/genl.js');
  const { setSequence } = await import('../../lib/netlink/message.js');
  const { validateConfig } = await import('../../lib/wireguard/validate.js');
  const { encodeSetDevice } = await import('../../lib/wireguard/encode.js');
  const connection = new NetlinkConnection(() => new NativeTransport(NETLINK_GENERIC, '', 10_000), NETLINK_GENERIC);
  const transport = new NativeTransport(NETLINK_GENERIC, '', 10_000);
  try {
    const family = await resolveFamily(connection, 'wireguard', 'resolveFamily');
    let sequence = 1;
    return await timedInstalls(peers, warmup, (p) => {
      const config = validateConfig({ peers: [{ publicKey: p.publicKey, endpoint: p.endpoint, allowedIps: [p.allowedIp] }] }, null);
      const [message] = encodeSetDevice(family, INTERFACE, config, 32768).messages;
      setSequence(message!, sequence++);
      return message!;
    }, (message, i) => {
      // A refusal would end the exchange with completed 0 (the kernel answered with an error).
      if (transport.exchangeNow([message]).completed !== 1) throw new Error(`install ${i}: the kernel refused the SET`);
    });
  } catch (error) {
    const { describeError } = await import('./common.js');
    return { ok: false, ...describeError(error) };
  } finally {
    transport.close();
    await connection.close();
  }
}
