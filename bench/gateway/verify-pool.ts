/**
 * What moving verification off the event loop buys (issue 9): the event loop's longest stall
 * while 2,000 forged, mac1-valid initiations (bench/gateway/initiator.ts: they fail at the
 * timestamp, after both DH) are verified by the old synchronous `Verifier`, by `VerifierPool`
 * on worker threads, and by `VerifierPool` with `threads: 0` (event-loop slices of 5 ms); and
 * what the pool's warm-up costs and saves on the first real verification of a fresh process.
 *
 *   node --import tsx bench/gateway/verify-pool.ts [--quick] [--cases=sync,pool,...] [--out FILE]
 *   (in the bench VM: bash test/kernel/vm/run-in-vm.sh -- node --import tsx bench/gateway/verify-pool.ts)
 *
 * Each case runs in a fresh child process, optimised and with `--no-opt --no-sparkplug` (how
 * code that runs rarely runs: the interpreted worst case). Packets arrive as the capture delivers
 * them: 64 per wake-up (one macrotask), wake-ups back to back. The stall is the lateness of a
 * 10 ms interval timer (bench/gateway/stall.ts, as in the gateway bench). Writes
 * bench/results/gateway-verify-pool-<date>.json unless --out says otherwise.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Verifier, type VerifyResult } from '../../lib/gateway/verify.js';
import { VerifierPool } from '../../lib/gateway/verify-pool.js';
import { Responder } from '../../lib/noise/responder.js';
import { SeenInitiations } from '../../lib/noise/seen-initiations.js';
import { buildSyntheticInitiation } from '../../lib/noise/synthetic-initiation.js';
import { InitiationBuilder, newKeyPair, tai64n } from './initiator.js';
import { StallProbe } from './stall.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const WAKE_UP = 64;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Case = 'sync' | 'pool' | 'pool-event-loop' | 'first-cold' | 'first-warm';

interface FloodFigures {
  packets: number;
  /** From the first wake-up to the last result, ms. */
  totalMs: number;
  maxStallMs: number;
  stallsOver50Ms: number;
  /** Longest synchronous part of one wake-up (what the capture's callback costs), ms. */
  longestWakeUpMs: number;
  results: Record<string, number>;
  threads: number;
  /** Per thread (or on the event loop), before the flood. */
  warmUps: Array<{ verifications: number; ms: number }>;
  /** The event loop's own mac1 warm-up (threads only). */
  precheckWarmUp: { checks: number; ms: number } | null;
  /** Messages posted to threads. */
  batches: number;
}

interface FirstFigures {
  warmUp: number;
  warmUps: Array<{ verifications: number; ms: number }>;
  /** The first real verification's round trip, ms. */
  firstMs: number;
  /** Then one every 500 ms (a gateway's sparse knocks), ms each. */
  sparseMs: number[];
}

async function child(kind: Case, quick: boolean): Promise<FloodFigures | FirstFigures> {
  const { privateKey } = generateKeyPairSync('x25519');
  const responder = new Responder(privateKey);
  if (kind === 'first-cold' || kind === 'first-warm') return firstVerification(privateKey, responder, kind === 'first-warm' ? 300 : 0, quick);
  const builder = new InitiationBuilder(Buffer.from(responder.publicKeyBytes));
  const victim = newKeyPair();
  const packets = Array.from({ length: quick ? 256 : 2000 }, (_, i) => builder.forged(victim.publicKey, tai64n(Date.now() + i)));
  let verify: (p: Uint8Array) => VerifyResult | Promise<VerifyResult>;
  let pool: VerifierPool | null = null;
  if (kind === 'sync') {
    const verifier = new Verifier(responder, new SeenInitiations());
    verify = (p) => verifier.verify(p);
  } else {
    pool = new VerifierPool({ privateKey, seen: new SeenInitiations(), threads: kind === 'pool' ? undefined : 0 });
    const warmed = () => pool!.stats().warmUps.length >= Math.max(1, pool!.stats().threads) && (kind !== 'pool' || pool!.stats().precheckWarmUp !== null);
    for (let i = 0; i < 1200 && !warmed(); i++) await sleep(100);
    verify = (p) => pool!.verify(p);
  }
  const probe = new StallProbe();
  probe.start();
  await sleep(50);
  probe.take();
  const started = performance.now();
  let longestWakeUpMs = 0;
  const pending: Array<VerifyResult | Promise<VerifyResult>> = [];
  await new Promise<void>((resolve) => {
    let next = 0;
    const wakeUp = () => {
      const t0 = performance.now();
      for (const end = Math.min(next + WAKE_UP, packets.length); next < end; next++) pending.push(verify(packets[next]!));
      longestWakeUpMs = Math.max(longestWakeUpMs, performance.now() - t0);
      if (next < packets.length) setImmediate(wakeUp);
      else resolve();
    };
    setImmediate(wakeUp);
  });
  const results = await Promise.all(pending);
  const totalMs = performance.now() - started;
  await sleep(30);
  const stall = probe.take();
  probe.stop();
  const counts: Record<string, number> = {};
  for (const r of results) {
    const key = r.ok ? 'ok' : r.reason === 'unauthenticated' ? `unauthenticated:${r.detail}` : r.reason;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  const stats = pool?.stats();
  await pool?.stop();
  return {
    packets: packets.length, totalMs, maxStallMs: stall.maxStallMs, stallsOver50Ms: stall.stallsOver50Ms, longestWakeUpMs, results: counts,
    threads: stats?.threads ?? 0, warmUps: (stats?.warmUps ?? []).map(({ verifications, ms }) => ({ verifications, ms })),
    precheckWarmUp: stats?.precheckWarmUp ?? null, batches: stats?.batches ?? 0,
  };
}

/** The first honest initiation a fresh process verifies, with or without the warm-up before it. */
async function firstVerification(privateKey: import('node:crypto').KeyObject, responder: Responder, warmUp: number, quick: boolean): Promise<FirstFigures> {
  const pool = new VerifierPool({ privateKey, seen: new SeenInitiations(), threads: 1, warmUp });
  // The thread's start (and warm-up, if asked) is not the figure: wait for it.
  for (let i = 0; i < 1200 && (warmUp > 0 ? pool.stats().warmUps.length === 0 : pool.stats().threadsStarted === 0); i++) await sleep(100);
  await sleep(500);
  const initiator = generateKeyPairSync('x25519').privateKey;
  const packets = Array.from({ length: quick ? 4 : 11 }, () => buildSyntheticInitiation(responder.publicKeyBytes, { initiatorPrivateKey: initiator }));
  const times: number[] = [];
  for (const packet of packets) {
    const t0 = performance.now();
    const result = await pool.verify(packet);
    times.push(performance.now() - t0);
    if (!result.ok) throw new Error(`the bench's initiation was refused: ${result.reason}`);
    await sleep(500);
  }
  const warmUps = pool.stats().warmUps.map(({ verifications, ms }) => ({ verifications, ms }));
  await pool.stop();
  return { warmUp, warmUps, firstMs: times[0]!, sparseMs: times.slice(1) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const childCase = argv.find((a) => a.startsWith('--child='))?.slice('--child='.length) as Case | undefined;
  if (childCase) {
    process.stdout.write(`@result ${JSON.stringify(await child(childCase, quick))}\n`);
    return;
  }
  const outFlag = argv.indexOf('--out');
  const out = outFlag >= 0 ? argv[outFlag + 1]! : join(HERE, '..', 'results', `gateway-verify-pool-${new Date().toISOString().slice(0, 10)}.json`);
  const modes = { optimised: [] as string[], interpreted: ['--no-opt', '--no-sparkplug'] };
  const only = argv.find((a) => a.startsWith('--cases='))?.slice('--cases='.length).split(',');
  const cases = (['sync', 'pool', 'pool-event-loop', 'first-cold', 'first-warm'] as Case[]).filter((c) => !only || only.includes(c));
  const figures: Record<string, Record<string, unknown>> = { optimised: {}, interpreted: {} };
  for (const [mode, flags] of Object.entries(modes)) {
    for (const kind of cases) {
      const stdout = execFileSync(process.execPath, [...flags, '--import', 'tsx', fileURLToPath(import.meta.url), `--child=${kind}`, ...(quick ? ['--quick'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
      const line = stdout.split('\n').find((l) => l.startsWith('@result '));
      if (!line) throw new Error(`case ${kind} (${mode}) printed no result`);
      figures[mode]![kind] = JSON.parse(line.slice('@result '.length));
      console.log(mode.padEnd(12), kind.padEnd(16), line.slice('@result '.length));
    }
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({
    schema: 'jitguard-bench-gateway-verify-pool/1',
    command: 'node [--no-opt --no-sparkplug] --import tsx bench/gateway/verify-pool.ts --child=CASE (run by: node --import tsx bench/gateway/verify-pool.ts)',
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model,
    availableParallelism: availableParallelism(),
    loadAverageAtStart: loadavg(),
    wakeUp: WAKE_UP,
    figures,
  }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}

await main();
