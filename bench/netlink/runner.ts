/**
 * Runner of the netlink benchmarks. Runs every measurement module at every N, in one process,
 * on a kernel with WireGuard (bench/run.sh starts it inside the VM when the host has none),
 * and writes one results file.
 *
 *   node --import tsx bench/netlink/runner.ts [--smoke | --huge] [--sizes 1000,10000]
 *        [--only install-latency,reload] [--out FILE]
 *
 * Exit status: 0 when every required implementation (jitguard, wg(8), ip(8)) measured
 * correctly; 1 otherwise (a measurement broke: see the "failures" list of the results).
 * The npm libraries' failures are results, not breakage.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  type BenchConfig,
  type Measurement,
  type MeasurementResult,
  type PeerSpec,
  type RunContext,
  BENCH_DIR,
  MAXRSS,
  NETLINK_DIR,
  SCRATCH,
  addRatios,
  bundleEntry,
  fileExists,
  formatSeconds,
  makePeers,
  runChild,
  setChildCommand,
} from './common.js';
import { dependencyVersions, diagnose, implementationInfos, writePeersDatabase } from './implementations.js';
import { measurement as installLatency } from './install-latency.js';
import { measurement as reload } from './reload.js';
import { measurement as dump } from './dump.js';
import { measurement as eviction } from './eviction.js';
import { measurement as deletion } from './delete.js';
import { evaluateGoals, type BenchResults } from './report.js';

/** In run order. New measurements slot in here (one module each, same Measurement shape). */
export const MEASUREMENTS: Measurement[] = [installLatency, reload, dump, eviction, deletion];

function parseArgs(argv: string[]): { config: BenchConfig; only?: string[]; out?: string } {
  const has = (flag: string) => argv.includes(flag);
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(flag + '='))?.slice(flag.length + 1);
  };
  let config: BenchConfig;
  if (has('--smoke')) {
    config = {
      mode: 'smoke',
      sizes: [100],
      installSamples: 20,
      installRounds: 1,
      installWarmup: 2,
      libraryWarmup: 2,
      dumpRepeats: () => 1,
      linkDelMaxN: 100,
      netlinkDelMaxN: 0,
      skipImpls: ['netlink-raw'],
    };
  } else {
    config = {
      mode: has('--huge') ? 'huge' : 'default',
      sizes: has('--huge') ? [1000, 10000, 100000, 1048576] : [1000, 10000, 100000],
      installSamples: 500,
      installRounds: 2,
      installWarmup: 5,
      libraryWarmup: 100,
      dumpRepeats: (n) => (n <= 1000 ? 5 : n <= 10000 ? 3 : n <= 100000 ? 2 : 1),
      linkDelMaxN: 10000,
      netlinkDelMaxN: 1000,
      skipImpls: [],
    };
  }
  const sizes = value('--sizes');
  if (sizes) {
    config.sizes = sizes.split(',').map(Number);
    config.mode = 'custom';
  }
  const samples = value('--samples');
  if (samples) config.installSamples = Number(samples);
  const linkDel = value('--link-del-max');
  if (linkDel) config.linkDelMaxN = Number(linkDel);
  return { config, only: value('--only')?.split(','), out: value('--out') };
}

function tryRun(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return '?';
  }
}

/** The machine, kernel, tools and versions a results file records (bench/gateway uses it too). */
export function environment(): Record<string, unknown> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? '?';
  const hypervisor = /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo);
  const vm = process.env.JITGUARD_BENCH_VM;
  return {
    kernel: release(),
    kernelVersion: tryRun('uname', ['-v']),
    cpuModel: model,
    cpus: cpus().length,
    memTotalMiB: Math.round(totalmem() / 2 ** 20),
    vm: vm ? { inVm: true, description: vm } : { inVm: hypervisor, description: hypervisor ? 'hypervisor flag set (virtual machine)' : 'bare metal' },
    host: process.env.JITGUARD_BENCH_HOST ? JSON.parse(process.env.JITGUARD_BENCH_HOST) : undefined,
    node: process.version,
    wg: tryRun('wg', ['--version']).split(' - ')[0],
    iproute2: tryRun('ip', ['-V']),
    jitguardCommit: process.env.JITGUARD_BENCH_COMMIT ?? tryRun('git', ['-C', BENCH_DIR, 'rev-parse', '--short', 'HEAD']),
    packages: dependencyVersions(),
  };
}

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the netlink benchmarks need root (they create network namespaces and WireGuard interfaces)');
  if (!fileExists(MAXRSS)) throw new Error(`${MAXRSS} is missing: run bench/run.sh (it builds the maxrss wrapper)`);
  if (!fileExists(join(BENCH_DIR, 'node_modules/better-sqlite3'))) throw new Error('bench dependencies missing: npm ci --prefix bench');
  const probe = `jgbprobe${process.pid % 10000}`;
  try {
    execFileSync('ip', ['link', 'add', probe, 'type', 'wireguard'], { stdio: 'ignore' });
    execFileSync('ip', ['link', 'del', probe], { stdio: 'ignore' });
  } catch {
    throw new Error('this kernel cannot create WireGuard interfaces: run bench/run.sh, which uses the VM of test/kernel/vm');
  }
}

/** Children run from one esbuild bundle of child.ts (common.ts `bundleEntry`), else under tsx. */
async function prepareChildBundle(log: (m: string) => void): Promise<() => void> {
  try {
    const bundle = await bundleEntry(join(NETLINK_DIR, 'child.ts'), `child-${process.pid}`);
    setChildCommand(bundle.command);
    return bundle.remove;
  } catch (error) {
    log(`could not bundle child.ts (${(error as Error).message}); children run under tsx (slower start)`);
    return () => undefined;
  }
}

function summarize(result: MeasurementResult, n: number): string {
  const size = result.sizes.find((s) => s.n === n)!;
  const cells = size.rows.map((r) => {
    if (!r.ok) return `${r.impl}: ${r.skipped ? 'skipped' : `FAILED (${r.errorCode ?? (r.error ?? '').slice(0, 60)})`}`;
    const ratio = r.ratioToWg !== undefined ? ` ×${r.ratioToWg.toFixed(2)}` : '';
    return `${r.impl}: ${formatSeconds(r.seconds)}${ratio}`;
  });
  return `  ${result.id} n=${n}: ${cells.join('; ')}`;
}

async function main(): Promise<void> {
  const { config, only, out } = parseArgs(process.argv.slice(2));
  preflight();
  const started = new Date();
  const t0 = Date.now();
  const failures: string[] = [];
  const log = (message: string) => console.log(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${message}`);
  mkdirSync(SCRATCH, { recursive: true });

  const peerSets = new Map<number, PeerSpec[]>();
  const databases = new Map<number, string>();
  const ctx: RunContext = {
    config,
    peers(n) {
      let peers = peerSets.get(n);
      if (!peers) {
        peers = makePeers(n);
        peerSets.set(n, peers);
      }
      return peers;
    },
    async sqlite(n) {
      let path = databases.get(n);
      if (!path) {
        path = join(SCRATCH, `peers-${n}.sqlite`);
        rmSync(path, { force: true });
        await writePeersDatabase(path, ctx.peers(n));
        databases.set(n, path);
      }
      return path;
    },
    fail(message) {
      failures.push(message);
      console.error(`[bench] FAILURE: ${message}`);
    },
    log,
  };

  const removeBundle = await prepareChildBundle(log);
  const env = environment();
  log(`mode ${config.mode}, sizes ${config.sizes.join(', ')}; kernel ${String(env.kernel)}, ${String(env.cpus)} CPUs, node ${process.version}`);

  // Peak RSS of a process that only loaded each library: the floor under their RSS figures.
  const baselineRssKiB: Record<string, number> = {};
  for (const impl of config.mode === 'smoke' ? ['jitguard'] : ['jitguard', 'wireguard-tools.js', 'netlink']) {
    const outcome = await runChild('baseline', impl, {});
    baselineRssKiB[impl] = outcome.maxRssKiB;
    if (!outcome.ok && impl === 'jitguard') ctx.fail(`loading jitguard failed: ${outcome.error}`);
  }
  env.baselineRssKiB = baselineRssKiB;

  const selected = only ? MEASUREMENTS.filter((m) => only.includes(m.id)) : MEASUREMENTS;
  const results: MeasurementResult[] = selected.map((m) => ({ id: m.id, title: m.title, figure: m.figure, notes: m.notes, sizes: [] }));
  for (const n of config.sizes) {
    for (const [i, m] of selected.entries()) {
      const started = Date.now();
      try {
        const size = addRatios(await m.run(ctx, n));
        for (const row of size.rows) {
          const cause = row.ok || row.skipped ? undefined : diagnose(row.impl, row.error);
          if (cause) row.notes = [...(row.notes ?? []), cause];
        }
        size.context = { ...(size.context ?? {}), elapsedSeconds: (Date.now() - started) / 1000 };
        results[i]!.sizes.push(size);
        log(summarize(results[i]!, n).trim());
      } catch (error) {
        ctx.fail(`${m.id} n=${n} crashed: ${(error as Error).stack ?? String(error)}`);
      }
    }
  }

  const finished = new Date();
  const bench: BenchResults = {
    schema: 'jitguard-bench-netlink/1',
    date: started.toISOString().slice(0, 10),
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationSeconds: (Date.now() - t0) / 1000,
    mode: config.mode,
    config: {
      sizes: config.sizes,
      installSamples: config.installSamples,
      installRounds: config.installRounds,
      installWarmup: config.installWarmup,
      libraryWarmup: config.libraryWarmup,
      dumpRepeats: Object.fromEntries(config.sizes.map((n) => [n, config.dumpRepeats(n)])),
      linkDelMaxN: config.linkDelMaxN,
      netlinkDelMaxN: config.netlinkDelMaxN,
      skipImpls: config.skipImpls,
    },
    environment: env,
    implementations: implementationInfos(),
    measurements: results,
    goals: [],
    failures,
  };
  bench.goals = evaluateGoals(bench);
  const file = out ?? join(BENCH_DIR, 'results', `${bench.date}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(bench, null, 2) + '\n');
  log(`wrote ${file} (${bench.durationSeconds.toFixed(0)} s)`);
  for (const goal of bench.goals) log(`goal ${goal.met === null ? 'n/a ' : goal.met ? 'MET ' : 'MISSED'} ${goal.text}: ${goal.summary}`);
  rmSync(SCRATCH, { recursive: true, force: true });
  removeBundle();
  if (failures.length) {
    console.error(`[bench] ${failures.length} failure(s):\n  ${failures.join('\n  ')}`);
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(`[bench] ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  });
}
