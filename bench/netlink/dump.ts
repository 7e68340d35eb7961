/**
 * Dump: read back an interface holding N peers. Wall time (median of the repeats) and peak
 * RSS (largest of the repeats), each repeat in its own process, implementations interleaved.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import {
  type ChildReport,
  type Measurement,
  type Row,
  INTERFACE,
  createFixture,
  destroyFixture,
  measure,
  median,
  runChild,
  scratchPath,
} from './common.js';
import { loadAdapter } from './implementations.js';
import { startStallProbe } from './stall.js';

const now = () => Number(process.hrtime.bigint()) / 1e9;

interface Plan {
  impl: string;
  how: string;
  required: boolean;
}

const PLANS: Plan[] = [
  { impl: 'jitguard', how: '`getDevice` → typed Device with N peers', required: true },
  { impl: 'wg', how: '`wg show wg0 dump` > file (text, not parsed)', required: true },
  { impl: 'wg-node', how: 'Node spawns `wg show wg0 dump`, parses the lines into objects', required: true },
  { impl: 'wireguard-tools.js', how: '`getConfig` → object with N peers', required: false },
  { impl: 'netlink', how: '`getDevice`', required: false },
  { impl: 'netlink-raw', how: 'GET_DEVICE dump `request()`', required: false },
];

export const measurement: Measurement = {
  id: 'dump',
  title: 'Dump: read back N peers',
  figure: 'wall time (median of repeats)',
  notes: [
    'Library rows read the device twice in one process: "cold" is the first call of a fresh process (JavaScript not yet compiled, netlink family not yet resolved), the primary figure is the second call, the steady state of a running gateway. Start-up and module loading are not counted.',
    'wg(8) is timed as a whole process writing its dump to a tmpfs file (nothing parsed); "wg(8) from Node" spawns it and parses the lines into objects, as a Node gateway without a netlink library would.',
    'Every repeat runs in a new process; peak RSS is the largest of the repeats.',
  ],
  async run(ctx, n) {
    const fixture = await createFixture('dump', ctx.peers(n));
    const repeats = ctx.config.dumpRepeats(n);
    const state = new Map<string, { times: number[]; cold: number[]; stalls: number[]; rss: number; error?: Row }>();
    try {
      for (let r = 0; r < repeats; r++) {
        for (const plan of PLANS) {
          const s = state.get(plan.impl) ?? { times: [], cold: [], stalls: [], rss: 0 };
          state.set(plan.impl, s);
          if (s.error || ctx.config.skipImpls.includes(plan.impl)) continue;
          ctx.log(`dump n=${n} ${plan.impl}: repeat ${r + 1}/${repeats}`);
          if (plan.impl === 'wg') {
            const file = scratchPath(`dump-${process.pid}.txt`);
            const result = await measure(['wg', 'show', INTERFACE, 'dump'], { ns: fixture.ns, stdoutFile: file });
            const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
            rmSync(file, { force: true });
            s.rss = Math.max(s.rss, result.maxRssKiB);
            if (result.status !== 0 || lines !== n + 1) {
              s.error = { impl: plan.impl, how: plan.how, ok: false, error: `status ${result.status}, ${lines - 1} peer lines (expected ${n}): ${result.stderr.trim().slice(0, 200)}` };
            } else s.times.push(result.wallSeconds);
            continue;
          }
          const outcome = await runChild('dump', plan.impl, { n }, fixture.ns);
          s.rss = Math.max(s.rss, outcome.maxRssKiB);
          if (!outcome.ok || outcome.seconds === undefined) {
            s.error = { impl: plan.impl, how: plan.how, ok: false, error: outcome.error, errorCode: outcome.errorCode, maxRssKiB: outcome.maxRssKiB };
          } else {
            s.times.push(outcome.seconds);
            s.cold.push(outcome.figures?.coldSeconds ?? NaN);
            s.stalls.push(Math.max(outcome.figures?.maxStallMs ?? NaN, outcome.figures?.coldMaxStallMs ?? NaN));
          }
        }
      }
    } finally {
      await destroyFixture(fixture.ns);
    }
    const rows: Row[] = [];
    for (const plan of PLANS) {
      const s = state.get(plan.impl);
      if (!s || ctx.config.skipImpls.includes(plan.impl)) continue;
      if (s.error) {
        rows.push(s.error);
        if (plan.required) ctx.fail(`dump n=${n} ${plan.impl}: ${s.error.error}`);
        continue;
      }
      rows.push({
        impl: plan.impl,
        how: plan.how,
        ok: true,
        seconds: median(s.times),
        figures: {
          repeats: s.times.length,
          minSeconds: Math.min(...s.times),
          maxSeconds: Math.max(...s.times),
          ...(s.cold.length ? { coldSeconds: median(s.cold) } : {}),
          // The longest stall of any read, cold or warm, in any repeat.
          ...(s.stalls.length ? { maxStallMs: Math.max(...s.stalls) } : {}),
        },
        maxRssKiB: s.rss,
      });
    }
    return { n, reference: 'wg', rows };
  },
};

/** wg show dump from Node: spawn, collect stdout, parse every line (what a Node caller of wg(8) does). */
async function wgFromNode(): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    const child = spawn('wg', ['show', INTERFACE, 'dump'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`wg exited ${code}: ${Buffer.concat(err)}`))));
  });
  const lines = text.split('\n');
  const peers: Array<Record<string, unknown>> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const f = line.split('\t');
    peers.push({
      publicKey: f[0],
      presharedKey: f[1] === '(none)' ? null : f[1],
      endpoint: f[2] === '(none)' ? null : f[2],
      allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','),
      lastHandshake: f[4] === '0' ? null : new Date(Number(f[4]) * 1000),
      rxBytes: BigInt(f[5]!),
      txBytes: BigInt(f[6]!),
      persistentKeepalive: f[7] === 'off' ? 0 : Number(f[7]),
    });
  }
  return peers.length;
}

export async function child(impl: string, params: Record<string, unknown>): Promise<ChildReport> {
  const n = params.n as number;
  // Two reads in one process: the first is a fresh process's cold call (code not yet compiled),
  // the second the steady state of a running gateway. Peak RSS covers both.
  const read: () => Promise<number> = impl === 'wg-node' ? wgFromNode : await (async () => {
    const adapter = await loadAdapter(impl);
    return () => adapter.dump();
  })();
  const t0 = now();
  const coldProbe = startStallProbe();
  const first = await read();
  const coldStallMs = coldProbe.stop();
  const t1 = now();
  if (first !== n) return { ok: false, error: `returned ${first} peers, expected ${n}` };
  const probe = startStallProbe();
  const second = await read();
  const maxStallMs = probe.stop();
  const t2 = now();
  if (second !== n) return { ok: false, error: `second read returned ${second} peers, expected ${n}` };
  return { ok: true, seconds: t2 - t1, figures: { coldSeconds: t1 - t0, warmSeconds: t2 - t1, maxStallMs, coldMaxStallMs: coldStallMs } };
}
