/**
 * Where a gateway process's time went: summarises a V8 `.cpuprofile` (written by the gateway
 * process when the bench runs with JITGUARD_BENCH_PROFILE=DIR) by area of the code and by
 * function, self time and time including callees.
 *
 *   node --import tsx bench/gateway/profile-summary.ts FILE.cpuprofile [--top 25] [--from S --to S] [--bundle B.mjs]
 *
 * --from/--to keep only samples in that window, in seconds since the profile started.
 * --at-monotonic: --from/--to are CLOCK_MONOTONIC seconds (what the gateway process logs for
 * its longest stalls under JITGUARD_BENCH_PROFILE) instead of seconds since the profile started.
 * --busy N: list the N longest runs of samples without an idle one, then summarise the longest
 * (unless --from/--to are given). A run is the event loop never waiting: one long turn (a stall)
 * or a chain of short ones (setImmediate work); the stall times the gateway logs tell which.
 * --bundle: the gateway process ran from an esbuild bundle (the runner's default); frames in it
 * are attributed to their source files by the `// path` comments esbuild writes before each
 * module (rebuild the same bundle with common.ts `bundleEntry` if the run removed it).
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The area a frame belongs to: lib/<folder>, the bench, node's internals, V8's pseudo-frames. */
export function area(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const lib = /\/lib\/([\w-]+)\//.exec(url);
  if (lib && !url.includes('node_modules')) return `lib/${lib[1]}`;
  const pkg = /node_modules\/((?:@[\w.-]+\/)?[\w.-]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node:internals';
  if (url.includes('/bench/')) return 'bench';
  return url.replace(/^.*\//, '');
}

/** Rewrites frames in `bundle` to the source file esbuild took them from. */
export function mapBundle(profile: Profile, bundle: string): void {
  const lines = readFileSync(bundle, 'utf8').split('\n');
  const sourceOf: string[] = new Array(lines.length);
  let current = '';
  for (let i = 0; i < lines.length; i++) {
    const m = /^\/\/ ((?:lib|bench|node_modules)\/\S+\.(?:ts|js|mjs|cjs))$/.exec(lines[i]!);
    if (m) current = m[1]!;
    sourceOf[i] = current;
  }
  // The run's bundle had a per-process name (gateway-<pid>.mjs): any bundle under .cache/bench maps.
  for (const n of profile.nodes) {
    if (/\/\.cache\/bench\/[^/]+\.mjs$/.test(n.callFrame.url)) n.callFrame.url = `/${sourceOf[n.callFrame.lineNumber] ?? 'bundle'}`;
  }
}

export function summarise(profile: Profile, window?: { from: number; to: number }) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let t = 0;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    const s = t / 1e6;
    if (window && (s < window.from || s > window.to)) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0; // a sample stands for the time until the next
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + dt);
    total += dt;
  }
  const key = (n: ProfileNode) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(lib|bench|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`;
  const selfByKey = new Map<string, number>();
  const inclusiveByKey = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    selfByKey.set(key(node), (selfByKey.get(key(node)) ?? 0) + us);
    const a = area(node.callFrame.url, node.callFrame.functionName);
    selfByArea.set(a, (selfByArea.get(a) ?? 0) + us);
    // Inclusive: once per distinct function on the stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = key(byId.get(cur)!);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusiveByKey.set(k, (inclusiveByKey.get(k) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { totalMicros: total, selfByArea: sorted(selfByArea), self: sorted(selfByKey), inclusive: sorted(inclusiveByKey) };
}

/**
 * Runs of consecutive samples with no `(idle)` one, longest first: the event loop did not wait
 * for I/O from `from` to `to` (seconds since the profile started). Not the same as a stall: a
 * chain of short turns never waits either, and lets timers run between them.
 */
export function busyRuns(profile: Profile, count: number): Array<{ from: number; to: number }> {
  const idle = new Set(profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  const runs: Array<{ from: number; to: number }> = [];
  let t = 0;
  let runStart: number | null = null;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    if (idle.has(profile.samples[i]!)) {
      if (runStart !== null) runs.push({ from: runStart / 1e6, to: t / 1e6 });
      runStart = null;
    } else {
      runStart ??= t;
    }
  }
  return runs.sort((a, b) => b.to - b.from - (a.to - a.from)).slice(0, count);
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const args = process.argv.slice(2);
  const opt = (flag: string) => (args.includes(flag) ? Number(args[args.indexOf(flag) + 1]) : undefined);
  const file = args.find((a, i) => !a.startsWith('--') && !['--top', '--from', '--to', '--bundle', '--busy'].includes(args[i - 1]!));
  if (!file) throw new Error('usage: profile-summary.ts FILE.cpuprofile [--top N] [--from S --to S]');
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  if (args.includes('--bundle')) mapBundle(profile, args[args.indexOf('--bundle') + 1]!);
  const top = opt('--top') ?? 25;
  let from = opt('--from');
  let to = opt('--to');
  if (args.includes('--at-monotonic')) {
    const profileStart = profile.startTime / 1e6;
    if (from !== undefined) from -= profileStart;
    if (to !== undefined) to -= profileStart;
  }
  const busy = opt('--busy');
  if (busy !== undefined) {
    const runs = busyRuns(profile, busy);
    console.log('longest busy runs (s since the profile started):');
    for (const r of runs) console.log(`  ${((r.to - r.from) * 1000).toFixed(0).padStart(6)} ms  ${r.from.toFixed(3)} .. ${r.to.toFixed(3)}`);
    if (from === undefined && to === undefined && runs.length) ({ from, to } = runs[0]!);
  }
  const s = summarise(profile, from !== undefined || to !== undefined ? { from: from ?? 0, to: to ?? Infinity } : undefined);
  const pct = (us: number) => `${((100 * us) / s.totalMicros).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms`;
  console.log(`profile: ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s, ${(s.totalMicros / 1e6).toFixed(1)} s in the window`);
  console.log('\nself time by area:');
  for (const [a, us] of s.selfByArea.slice(0, top)) console.log(`  ${pct(us)}  ${a}`);
  console.log('\nself time by function:');
  for (const [k, us] of s.self.slice(0, top)) console.log(`  ${pct(us)}  ${k}`);
  console.log('\ntime including callees:');
  for (const [k, us] of s.inclusive.slice(0, top)) console.log(`  ${pct(us)}  ${k}`);
}
