/**
 * Runner of the gateway benchmarks (issue 9): every scenario in one process on a kernel with
 * WireGuard (bench/run.sh --gateway starts it inside the VM when the host has none), the gateway
 * and the synthetic initiator each in its own child process and network namespace; writes one
 * results file in bench/netlink's format.
 *
 *   node --import tsx bench/gateway/runner.ts [--smoke] [--only jit-latency,burst,flood,switchover,reboot]
 *        [--burst N] [--switchover-peers N] [--reboot-sizes 0,1000000] [--samples N] [--out FILE]
 *
 * Exit status: 0 when every scenario measured (goals may be missed); 1 when one broke.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BENCH_DIR, MAXRSS, SCRATCH, addRatios, bundleEntry, fileExists } from '../netlink/common.js';
import type { BenchResults } from '../netlink/report.js';
import { environment } from '../netlink/runner.js';
import { measurement as burst } from './burst.js';
import { TimerBystander } from './bystander.js';
import { startGatewayProcess, startInitiatorProcess, stopGatewayProcess, type ChildCommands, type GatewayBenchConfig, type GatewayMeasurementResult, type GatewayMeasurement, type GatewayRunContext } from './context.js';
import { measurement as flood } from './flood.js';
import { measurement as jitLatency } from './jit-latency.js';
import { measurement as reboot } from './reboot.js';
import { evaluateGatewayGoals } from './report.js';
import { measurement as switchover } from './switchover.js';

/** In run order: the switchover measures the 10^5 bulk load that the reboot scenario's anchor uses. */
export const MEASUREMENTS: GatewayMeasurement[] = [jitLatency, burst, flood, switchover, reboot];

const GATEWAY_DIR = dirname(new URL(import.meta.url).pathname);

function parseArgs(argv: string[]): { config: GatewayBenchConfig; only?: string[]; out?: string } {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(flag + '='))?.slice(flag.length + 1);
  };
  const config: GatewayBenchConfig = argv.includes('--smoke')
    ? { mode: 'smoke', jitSamples: 2, jitWarmup: 0, burstSize: 20, burstRepeats: 1, floorRepeats: 1, floodPackets: 40, floodSources: 20, floodQuietMs: 500, switchoverPeers: 200, rebootSizes: [1000], rebootRepeats: 1 }
    : { mode: 'default', jitSamples: 24, jitWarmup: 8, burstSize: 1000, burstRepeats: 3, floorRepeats: 3, floodPackets: 2000, floodSources: 1000, floodQuietMs: 1500, switchoverPeers: 100_000, rebootSizes: [0, 100_000, 1_000_000], rebootRepeats: 3 };
  const number = (flag: string, set: (v: number) => void) => {
    const v = value(flag);
    if (v !== undefined) {
      set(Number(v));
      config.mode = 'custom';
    }
  };
  number('--burst', (v) => (config.burstSize = v));
  number('--switchover-peers', (v) => (config.switchoverPeers = v));
  number('--samples', (v) => (config.jitSamples = v));
  number('--flood', (v) => (config.floodPackets = v));
  const sizes = value('--reboot-sizes');
  if (sizes) {
    config.rebootSizes = sizes.split(',').map(Number);
    config.mode = 'custom';
  }
  return { config, only: value('--only')?.split(','), out: value('--out') };
}

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the gateway benchmarks need root (network namespaces, WireGuard interfaces, AF_PACKET)');
  if (!fileExists(MAXRSS)) throw new Error(`${MAXRSS} is missing: run bench/run.sh (it builds the maxrss wrapper)`);
  const probe = `jgbprobe${process.pid % 10000}`;
  try {
    execFileSync('ip', ['link', 'add', probe, 'type', 'wireguard'], { stdio: 'ignore' });
    execFileSync('ip', ['link', 'del', probe], { stdio: 'ignore' });
  } catch {
    throw new Error('this kernel cannot create WireGuard interfaces: run bench/run.sh --gateway, which uses the VM of test/kernel/vm');
  }
}

/**
 * The gateway's verification threads run lib/gateway/verify-worker.ts, which a bundle does not
 * contain: the pool looks for it as verify-worker.mjs beside the bundle that inlines it
 * (lib/gateway/verify-worker-entry.ts), so emit it there, bundled on its own.
 */
async function emitVerifyWorker(bundle: string): Promise<() => void> {
  const out = join(dirname(bundle), 'verify-worker.mjs');
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [join(BENCH_DIR, '..', 'lib', 'gateway', 'verify-worker.ts')],
    bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: out, packages: 'external', logLevel: 'warning',
  });
  await esbuild.stop?.();
  return () => rmSync(out, { force: true });
}

/** The two children run from esbuild bundles (seconds faster to start under TCG), else under tsx. */
async function childCommands(log: (m: string) => void): Promise<{ commands: ChildCommands; remove: () => void }> {
  const commands: ChildCommands = { gateway: [], initiator: [] };
  const removals: Array<() => void> = [];
  for (const [key, file] of [['gateway', 'gateway-process.ts'], ['initiator', 'initiator-process.ts']] as const) {
    try {
      const bundle = await bundleEntry(join(GATEWAY_DIR, file), `${key}-${process.pid}`);
      if (key === 'gateway') removals.push(await emitVerifyWorker(bundle.command[1]!));
      commands[key] = bundle.command;
      removals.push(bundle.remove);
    } catch (error) {
      log(`could not bundle ${file} (${(error as Error).message}); it runs under tsx`);
      commands[key] = [process.execPath, '--import', 'tsx', join(GATEWAY_DIR, file)];
    }
  }
  return { commands, remove: () => removals.forEach((r) => r()) };
}

function implementations(): BenchResults['implementations'] {
  const pkg = JSON.parse(readFileSync(join(BENCH_DIR, '..', 'package.json'), 'utf8')) as { version: string };
  return [
    { id: 'jitguard', label: `jitguard ${pkg.version} Gateway`, what: 'the gateway of issue 9: capture → rate limit → verify → replay → store → coalesced install as initiator → settle → evict, over a SqliteStore' },
    { id: 'kernel', label: 'kernel WireGuard alone', what: 'the same work done the push-model way: peers put into the kernel beforehand with wg(8)' },
    { id: 'c-jit', label: 'C JIT, unauthenticated', what: 'bench/gateway/knock-install.c: sees the initiation on AF_PACKET and installs its (known) key as initiator at once, verifying nothing: the fastest JIT any user-space process can make' },
    { id: 'c-floor', label: 'C one-peer SET', what: 'bench/gateway/install-floor.c: the gateway\'s install as one netlink message from a long-running C process, the system-call floor of any install' },
    { id: 'idle', label: 'idle gateway', what: 'the gateway process with nothing to do (its timers): subtracted from CPU figures' },
  ];
}

async function main(): Promise<void> {
  const { config, only, out } = parseArgs(process.argv.slice(2));
  preflight();
  const started = new Date();
  const t0 = Date.now();
  const failures: string[] = [];
  const log = (message: string) => console.log(`[bench gateway ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${message}`);
  mkdirSync(SCRATCH, { recursive: true });
  const { commands, remove } = await childCommands(log);
  let partsOfCurrent: NonNullable<GatewayMeasurementResult['parts']> = [];
  const bystander = TimerBystander.start();
  if (!bystander) log('timer-bystander not built (bench/run.sh builds it): no stall floor in this run');
  const ctx: GatewayRunContext = {
    config,
    log,
    fail(message) {
      failures.push(message);
      console.error(`[bench gateway] FAILURE: ${message}`);
    },
    bulkLoadSeconds: new Map(),
    startGateway: (t, params) => startGatewayProcess(commands, t, params),
    startInitiator: async (t) => startInitiatorProcess(commands, t),
    async stopGateway(rpc, label) {
      const parts = await stopGatewayProcess(rpc, label, log);
      if (parts) partsOfCurrent.push({ label, parts });
    },
    bystander: (...windows) => bystander?.over(...windows),
  };
  const env = environment();
  log(`mode ${config.mode}; kernel ${String(env.kernel)}, ${String(env.cpus)} CPUs, node ${process.version}`);

  const selected = only ? MEASUREMENTS.filter((m) => only.includes(m.id)) : MEASUREMENTS;
  const results: GatewayMeasurementResult[] = [];
  for (const m of selected) {
    const began = Date.now();
    log(`${m.id}: ${m.title}`);
    const result: GatewayMeasurementResult = { id: m.id, title: m.title, figure: m.figure, notes: m.notes, sizes: [] };
    results.push(result);
    partsOfCurrent = [];
    try {
      for (const size of await m.run(ctx)) {
        addRatios(size);
        size.context = { ...(size.context ?? {}), elapsedSeconds: (Date.now() - began) / 1000 };
        result.sizes.push(size);
        for (const row of size.rows) {
          log(`  ${m.id} n=${size.n} ${row.impl}: ${row.ok ? `${row.seconds?.toPrecision(4)} s${row.ratioToWg !== undefined ? ` ×${row.ratioToWg.toFixed(2)}` : ''}` : `FAILED ${row.error ?? ''}`}${row.figures?.maxStallMs !== undefined ? `, max stall ${row.figures.maxStallMs.toFixed(0)} ms${row.figures.maxStallCpuMs !== undefined ? ` (${row.figures.maxStallCpuMs.toFixed(0)} ms of CPU)` : ''}${row.figures.maxBusyStallMs !== undefined ? `, longest busy ${row.figures.maxBusyStallMs.toFixed(0)} ms` : ''}${row.figures.maxGcPauseMs !== undefined ? `, longest GC pause ${row.figures.maxGcPauseMs.toFixed(0)} ms` : ''}${row.figures.bystanderMaxStallMs !== undefined ? `, timer bystander ${row.figures.bystanderMaxStallMs.toFixed(0)} ms` : ''}` : ''}`);
        }
      }
    } catch (error) {
      ctx.fail(`${m.id} crashed: ${(error as Error).stack ?? String(error)}`);
    }
    if (partsOfCurrent.length) result.parts = partsOfCurrent;
    log(`${m.id}: ${((Date.now() - began) / 1000).toFixed(0)} s`);
  }

  const bench: BenchResults = {
    schema: 'jitguard-bench-gateway/1',
    date: started.toISOString().slice(0, 10),
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    durationSeconds: (Date.now() - t0) / 1000,
    mode: config.mode,
    config: { ...config, ...(process.env.JITGUARD_BENCH_PARTS ? { partsMeasured: true } : {}) },
    environment: env,
    implementations: implementations(),
    measurements: results,
    goals: [],
    failures,
  };
  bench.goals = evaluateGatewayGoals(bench);
  const file = out ?? join(BENCH_DIR, 'results', `gateway-${bench.date}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(bench, null, 2) + '\n');
  log(`wrote ${file} (${bench.durationSeconds.toFixed(0)} s)`);
  for (const goal of bench.goals) log(`goal ${goal.met === null ? 'n/a ' : goal.met ? 'MET ' : 'MISSED'} ${goal.text}: ${goal.summary}`);
  rmSync(SCRATCH, { recursive: true, force: true });
  bystander?.stop();
  remove();
  if (failures.length) {
    console.error(`[bench gateway] ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(`[bench gateway] ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
