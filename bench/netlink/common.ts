/**
 * Shared pieces of the netlink benchmarks: the results format, the peer sets, network
 * namespaces holding a WireGuard interface with N peers ("fixtures"), running one command or
 * one Node child per measurement under the `maxrss` wrapper (wall time and peak RSS as the
 * kernel counts them), and small statistics.
 *
 * Everything here runs as root on a kernel with WireGuard (inside the bench VM).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the folder holding binding.gyp, found upwards (this file may run from a bundle). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp')) && existsSync(join(dir, 'bench'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bench: cannot find the project root (binding.gyp)');
    dir = parent;
  }
}
export const ROOT_DIR = findRoot();
export const BENCH_DIR = join(ROOT_DIR, 'bench');
export const NETLINK_DIR = join(BENCH_DIR, 'netlink');
/** Scratch space inside the guest (tmpfs): conf files, SQLite databases, dumps. */
export const SCRATCH = process.env.JITGUARD_BENCH_SCRATCH ?? '/tmp/jitguard-bench';
export const MAXRSS = process.env.JITGUARD_BENCH_MAXRSS ?? join(ROOT_DIR, '.cache/bench/maxrss');
/** bench/gateway/install-floor.c, built by bench/run.sh: one-peer SETs from C, the system-call floor. */
export const INSTALL_FLOOR = join(ROOT_DIR, '.cache/bench/install-floor');
/** bench/gateway/knock-install.c, built by bench/run.sh: the fastest JIT install from C, unauthenticated. */
export const KNOCK_INSTALL = join(ROOT_DIR, '.cache/bench/knock-install');
/** bench/gateway/timer-bystander.c, built by bench/run.sh: the stall floor beside the gateway. */
export const TIMER_BYSTANDER = join(ROOT_DIR, '.cache/bench/timer-bystander');
export const INTERFACE = 'wg0';
const TRACE = Boolean(process.env.JITGUARD_BENCH_TRACE);

// ---------------------------------------------------------------------------------------------
// Results format (bench/results/<date>.json). Every measurement module returns MeasurementRows.

/** One implementation's figures for one measurement at one N. */
export interface Row {
  /** Implementation id (see implementations.ts), e.g. "jitguard", "wg", "netlink". */
  impl: string;
  /** What exactly was run, e.g. "setDevice, one peer per call". */
  how: string;
  ok: boolean;
  /** When ok is false: why, with the library's or tool's own error text. */
  error?: string;
  /** Errno-style code of the failure when there is one (EEXIST, EOPNOTSUPP, ...). */
  errorCode?: string;
  /** Skipped on purpose (budget); not a failure. */
  skipped?: boolean;
  /** The figure ratios and plots use, in seconds. */
  seconds?: number;
  /** Further figures: p50Seconds, p99Seconds, maxSeconds, samples, ... */
  figures?: Record<string, number>;
  /** Peak RSS of the measuring process (and its children), KiB, from wait4's ru_maxrss. */
  maxRssKiB?: number;
  /** seconds / the reference row's seconds (wg(8)), same N, same run. */
  ratioToWg?: number;
  notes?: string[];
}

export interface SizeResult {
  n: number;
  /** Reference row impl id for ratios. */
  reference: string;
  rows: Row[];
  /** Extra per-N facts (e.g. the kernel's per-peer floor for install latency). */
  context?: Record<string, number | string>;
}

export interface MeasurementResult {
  id: string;
  title: string;
  /** What the primary figure (Row.seconds) is. */
  figure: string;
  sizes: SizeResult[];
  notes: string[];
}

export interface BenchConfig {
  mode: 'smoke' | 'default' | 'huge' | 'custom';
  sizes: number[];
  installSamples: number;
  installRounds: number;
  installWarmup: number;
  /**
   * Untimed installs before the samples of an in-process row (jitguard, the Node floor, the C
   * floor): a gateway installs all day, so its install path is compiled and warm; the first
   * hundred calls of a fresh process are not (their p50 was ~1.4× the later ones' in the VM).
   */
  libraryWarmup: number;
  dumpRepeats: (n: number) => number;
  /** Largest N at which the RTM_DELLINK-with-peers path (ip link del) is run. */
  linkDelMaxN: number;
  /** Largest N at which netlink npm's delLink (same kernel path) is also run. */
  netlinkDelMaxN: number;
  /** Implementations left out (smoke: the documentation-only workaround rows). */
  skipImpls: string[];
}

/** What a measurement module exports. */
export interface Measurement {
  id: string;
  title: string;
  figure: string;
  notes: string[];
  run(ctx: RunContext, n: number): Promise<SizeResult>;
}

export interface RunContext {
  config: BenchConfig;
  /** The peers of size n (the same set is stored in SQLite, loaded into fixtures). */
  peers(n: number): PeerSpec[];
  /** Path of the SQLite database holding peers(n). */
  sqlite(n: number): Promise<string>;
  /** Records that a required implementation failed: the run then exits non-zero. */
  fail(message: string): void;
  log(message: string): void;
}

// ---------------------------------------------------------------------------------------------
// Peers

export interface PeerSpec {
  publicKey: string;
  endpoint: string;
  allowedIp: string;
}

/** Peer i: a random public key (any 32 bytes are a valid X25519 public key), a /32, an endpoint in 127/8. */
export function makePeers(count: number, firstIndex = 0): PeerSpec[] {
  const bytes = randomBytes(32 * count);
  const peers: PeerSpec[] = new Array(count);
  for (let k = 0; k < count; k++) {
    const i = firstIndex + k;
    peers[k] = {
      publicKey: bytes.subarray(32 * k, 32 * k + 32).toString('base64'),
      allowedIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`,
      // Loopback endpoints: the interface stays down and keepalive is off, so nothing is sent.
      endpoint: `127.0.0.1:${1024 + (i % 60000)}`,
    };
  }
  return peers;
}

/** A private key with X25519 clamping, base64. */
export function makePrivateKey(): string {
  const k = randomBytes(32);
  k[0]! &= 248;
  k[31]! = (k[31]! & 127) | 64;
  return k.toString('base64');
}

/** wg(8) config text with only [Peer] sections (for addconf). */
export function peersConf(peers: PeerSpec[]): string {
  const parts: string[] = new Array(peers.length);
  for (let i = 0; i < peers.length; i++) {
    const p = peers[i]!;
    parts[i] = `[Peer]\nPublicKey = ${p.publicKey}\nAllowedIPs = ${p.allowedIp}\nEndpoint = ${p.endpoint}\n`;
  }
  return parts.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Running things

export interface Measured {
  status: number;
  wallSeconds: number;
  maxRssKiB: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` under the maxrss wrapper, inside network namespace `ns` (a name) when given.
 * stdout goes to `stdoutFile` when given (else it is collected).
 */
export function measure(command: string[], options: { ns?: string; stdoutFile?: string; quiet?: boolean } = {}): Promise<Measured> {
  const args: string[] = [];
  if (options.ns) args.push('--netns', `/run/netns/${options.ns}`);
  if (options.stdoutFile) args.push('--stdout', options.stdoutFile);
  args.push('--', ...command);
  const t0 = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(MAXRSS, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', () => {
      if (TRACE) console.error(`[trace] ${((Date.now() - t0) / 1000).toFixed(2)} s measure ${command.join(' ').slice(0, 120)}`);
      const stderr = Buffer.concat(err).toString('utf8');
      const line = stderr.split('\n').reverse().find((l) => l.startsWith('@maxrss '));
      if (!line) {
        reject(new Error(`maxrss wrapper gave no report for ${command.join(' ')}: ${stderr.slice(-2000)}`));
        return;
      }
      const report = JSON.parse(line.slice('@maxrss '.length)) as { wallSeconds: number; maxRssKiB: number; status: number };
      resolvePromise({
        status: report.status,
        wallSeconds: report.wallSeconds,
        maxRssKiB: report.maxRssKiB,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: stderr.split('\n').filter((l) => !l.startsWith('@maxrss ')).join('\n'),
      });
    });
  });
}

/** What a measuring Node child reports (last stdout line starting with "@result "). */
export interface ChildReport {
  ok: boolean;
  seconds?: number;
  figures?: Record<string, number>;
  samples?: number[];
  error?: string;
  errorCode?: string;
  notes?: string[];
  /** process.resourceUsage().maxRSS of the child itself, KiB (cross-check of the wrapper's). */
  selfMaxRssKiB?: number;
}

export interface ChildOutcome extends ChildReport {
  maxRssKiB: number;
  processWallSeconds: number;
}

/**
 * How a measuring child is started. The runner replaces the default (tsx, which costs seconds
 * per process under TCG) with a single pre-built bundle of child.ts: `node child.mjs`.
 */
let childCommand: string[] = [process.execPath, '--import', 'tsx', join(NETLINK_DIR, 'child.ts')];

export function setChildCommand(command: string[]): void {
  childCommand = command;
}

/**
 * Bundles `entry` (and jitguard's lib) into one file with esbuild (present as tsx's own
 * dependency): a child then starts in ~1 s under TCG instead of several under tsx. The bundle
 * lives inside the project (.cache/bench/<name>.mjs) so jitguard finds its addon and the
 * external packages resolve from there. Returns the command that runs it and a cleanup;
 * throws when esbuild cannot build it.
 */
export async function bundleEntry(entry: string, name: string): Promise<{ command: string[]; remove: () => void }> {
  const out = join(ROOT_DIR, '.cache', 'bench', `${name}.mjs`);
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: out,
    external: ['better-sqlite3', 'netlink', 'wireguard-tools.js', 'node-gyp-build', 'prom-client'],
    // CommonJS packages bundled into ESM (ws) require Node's built-ins: give them a real require.
    banner: { js: "import { createRequire as bundleRequire } from 'node:module'; const require = bundleRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  await esbuild.stop?.(); // no long-lived esbuild service beside the measurements
  return { command: [process.execPath, out], remove: () => rmSync(out, { force: true }) };
}

/**
 * Runs one measurement's child side in a fresh Node process (its own peak RSS), inside `ns`.
 * `params` is handed over in a JSON file; see child.ts.
 */
export async function runChild(measurement: string, impl: string, params: Record<string, unknown>, ns?: string): Promise<ChildOutcome> {
  mkdirSync(SCRATCH, { recursive: true });
  const file = join(SCRATCH, `params-${measurement}-${impl}-${process.pid}-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify({ measurement, impl, params }));
  try {
    const result = await measure([...childCommand, file], { ns });
    const line = result.stdout.split('\n').reverse().find((l) => l.startsWith('@result '));
    if (!line) {
      return {
        ok: false,
        error: `child exited with status ${result.status} without a result: ${lastLines(result.stderr || result.stdout, 8)}`,
        maxRssKiB: result.maxRssKiB,
        processWallSeconds: result.wallSeconds,
      };
    }
    const report = JSON.parse(line.slice('@result '.length)) as ChildReport;
    if (result.stderr.trim() && process.env.JITGUARD_BENCH_VERBOSE) process.stderr.write(result.stderr);
    return { ...report, maxRssKiB: result.maxRssKiB, processWallSeconds: result.wallSeconds };
  } finally {
    rmSync(file, { force: true });
  }
}

export function lastLines(text: string, count: number): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}

/**
 * Runs a command (setup and checks, not measured); resolves with stdout, rejects with stderr.
 * Asynchronous on purpose: under TCG, node's spawnSync here took seconds per call once
 * measuring children had run (async spawn of the same commands: ~0.1-0.5 s).
 */
export function sh(command: string, args: string[]): Promise<string> {
  const t0 = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (TRACE) console.error(`[trace] ${((Date.now() - t0) / 1000).toFixed(2)} s sh ${command} ${args.join(' ').slice(0, 120)}`);
      if (code === 0) resolvePromise(Buffer.concat(out).toString('utf8'));
      else reject(new Error(`${command} ${args.join(' ').slice(0, 200)}: exit ${code}: ${Buffer.concat(err).toString('utf8').trim()}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Network namespaces and fixtures

let nsCounter = 0;

/**
 * A fresh network namespace with lo up and, unless `bare`, wg0 with a new private key (and no
 * peers). One shell for all the steps: every process start costs ~0.1 s under TCG.
 */
export async function newNamespace(tag: string, options: { bare?: boolean } = {}): Promise<{ ns: string; privateKey: string }> {
  const ns = `jgb-${tag}-${process.pid}-${++nsCounter}`;
  const privateKey = makePrivateKey();
  const steps = [`ip netns add ${ns}`, `ip -n ${ns} link set lo up`];
  if (!options.bare) {
    mkdirSync(SCRATCH, { recursive: true });
    const keyFile = join(SCRATCH, `key-${ns}`);
    writeFileSync(keyFile, privateKey + '\n', { mode: 0o600 });
    steps.push(`ip -n ${ns} link add ${INTERFACE} type wireguard`, `ip netns exec ${ns} wg set ${INTERFACE} private-key ${keyFile}`, `rm -f ${keyFile}`);
  }
  try {
    await sh('bash', ['-euc', steps.join('\n')]);
  } catch (error) {
    await deleteNamespace(ns);
    throw error;
  }
  return { ns, privateKey };
}

export async function deleteNamespace(name: string): Promise<void> {
  try {
    await sh('ip', ['netns', 'del', name]);
  } catch {
    /* already gone */
  }
}

export interface InterfaceState {
  exists: boolean;
  hasPrivateKey: boolean;
  /** Number of peers, by wg(8); -1 when the interface does not exist. */
  peers: number;
}

/** wg0's state in `ns`, read by wg(8) (the independent check after every measurement). */
export async function inspect(ns: string, name = INTERFACE): Promise<InterfaceState> {
  const out = (await sh('ip', [
    'netns',
    'exec',
    ns,
    'bash',
    '-c',
    `if ip link show ${name} >/dev/null 2>&1; then echo yes; wg show ${name} private-key; wg show ${name} peers | wc -l; else echo no; fi`,
  ])).split('\n');
  if (out[0] !== 'yes') return { exists: false, hasPrivateKey: false, peers: -1 };
  return { exists: true, hasPrivateKey: out[1]!.trim() !== '(none)', peers: Number(out[2]) };
}

export async function interfaceExists(ns: string, name = INTERFACE): Promise<boolean> {
  return (await inspect(ns, name)).exists;
}

/** Number of peers on the interface, by wg(8); -1 when it does not exist. */
export async function peerCount(ns: string, name = INTERFACE): Promise<number> {
  return (await inspect(ns, name)).peers;
}

function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+)/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export interface Fixture {
  ns: string;
  n: number;
  privateKey: string;
  /** Wall time of the `wg addconf` that loaded the n peers (the kernel's bulk cost). */
  bulkSeconds: number;
  /** Kernel memory the n peers took: drop of MemAvailable and growth of Slab, KiB. */
  memAvailableDropKiB: number;
  slabGrowthKiB: number;
}

/** A fresh namespace with wg0 (private key set) holding `peers`, loaded by `wg addconf` (timed). */
export async function createFixture(tag: string, peers: PeerSpec[]): Promise<Fixture> {
  const { ns, privateKey } = await newNamespace(tag);
  try {
    const conf = join(SCRATCH, `fixture-${ns}.conf`);
    writeFileSync(conf, peersConf(peers));
    const before = meminfo();
    const loaded = await measure(['wg', 'addconf', INTERFACE, conf], { ns });
    const after = meminfo();
    rmSync(conf);
    if (loaded.status !== 0) throw new Error(`wg addconf of ${peers.length} peers failed: ${loaded.stderr.trim()}`);
    return {
      ns,
      n: peers.length,
      privateKey,
      bulkSeconds: loaded.wallSeconds,
      memAvailableDropKiB: (before.MemAvailable ?? 0) - (after.MemAvailable ?? 0),
      slabGrowthKiB: (after.Slab ?? 0) - (before.Slab ?? 0),
    };
  } catch (error) {
    await deleteNamespace(ns);
    throw error;
  }
}

/**
 * Deletes a fixture's namespace. The kernel would tear the interface's peers down one by one
 * (~17 ms per peer under TCG), so its peers are flushed first (not measured).
 */
export async function destroyFixture(ns: string): Promise<void> {
  try {
    await sh('bash', ['-c', `ip netns exec ${ns} wg setconf ${INTERFACE} /dev/null 2>/dev/null; ip netns del ${ns}`]);
  } catch {
    await deleteNamespace(ns);
  }
}

export function writeScratch(name: string, content: string): string {
  mkdirSync(SCRATCH, { recursive: true });
  const file = join(SCRATCH, name);
  writeFileSync(file, content);
  return file;
}

export function scratchPath(name: string): string {
  mkdirSync(SCRATCH, { recursive: true });
  return join(SCRATCH, name);
}

export function fileExists(path: string): boolean {
  return existsSync(path);
}

// ---------------------------------------------------------------------------------------------
// Statistics

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  // Nearest-rank: the smallest sample with at least q of the samples at or below it.
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function latencyFigures(samples: number[]): Record<string, number> {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / Math.max(1, samples.length);
  return {
    samples: samples.length,
    p50Seconds: quantile(sorted, 0.5),
    p99Seconds: quantile(sorted, 0.99),
    maxSeconds: sorted[sorted.length - 1] ?? NaN,
    minSeconds: sorted[0] ?? NaN,
    meanSeconds: mean,
  };
}

/** Fills ratioToWg on every ok row with seconds, from the reference row. */
export function addRatios(size: SizeResult): SizeResult {
  const ref = size.rows.find((r) => r.impl === size.reference && r.ok && r.seconds !== undefined);
  for (const row of size.rows) {
    if (ref && row.ok && row.seconds !== undefined && ref.seconds) row.ratioToWg = row.seconds / ref.seconds;
  }
  return size;
}

/** A row for an implementation whose child failed. */
export function failedRow(impl: string, how: string, outcome: { error?: string; errorCode?: string; maxRssKiB?: number }, notes: string[] = []): Row {
  return { impl, how, ok: false, error: outcome.error ?? 'failed', errorCode: outcome.errorCode, maxRssKiB: outcome.maxRssKiB, notes };
}

/** Error text and code from anything thrown by a library. */
export function describeError(error: unknown): { error: string; errorCode?: string } {
  const e = error as { message?: string; code?: unknown; errno?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  let message = e?.message ?? String(error);
  const m = /code: (-?\d+)/.exec(message);
  let errorCode = code;
  if (!errorCode && m) errorCode = errnoCode(Math.abs(Number(m[1])));
  if (!errorCode) {
    const named = /\b(E[A-Z]{3,})\b/.exec(message);
    if (named) errorCode = named[1];
  }
  if (message.length > 400) message = message.slice(0, 400) + '…';
  return { error: message, errorCode };
}

function errnoCode(errno: number): string | undefined {
  const names: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 17: 'EEXIST', 19: 'ENODEV', 22: 'EINVAL', 90: 'EMSGSIZE', 95: 'EOPNOTSUPP', 105: 'ENOBUFS' };
  return names[errno];
}

export function formatSeconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '—';
  if (s >= 100) return `${s.toFixed(0)} s`;
  if (s >= 1) return `${s.toFixed(2)} s`;
  if (s >= 1e-3) return `${(s * 1e3).toFixed(s >= 0.1 ? 0 : s >= 0.01 ? 1 : 2)} ms`;
  return `${(s * 1e6).toFixed(0)} µs`;
}
