/**
 * Results → bench/RESULTS.md and the plot (bench/results/<date>.svg).
 *
 *   node --import tsx bench/netlink/report.ts [bench/results/<date>.json]
 *
 * Without an argument, the newest bench/results/<YYYY-MM-DD>.json is used. The goals of
 * issues 5 and 11 are evaluated here (evaluateGoals), also by the runner for the results file.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, type MeasurementResult, type Row, type SizeResult, formatSeconds } from './common.js';
import { type ImplementationInfo, diagnose } from './implementations.js';
import { COLORS, type Panel, type Series, renderSvg } from './plot.js';
import { measurement as installLatency } from './install-latency.js';
import { measurement as reload } from './reload.js';
import { measurement as dump } from './dump.js';
import { measurement as eviction } from './eviction.js';
import { measurement as deletion } from './delete.js';

/** The measurement modules' own notes describe the method; the current wording is used. */
const CURRENT_NOTES: Record<string, string[]> = Object.fromEntries([installLatency, reload, dump, eviction, deletion].map((m) => [m.id, m.notes]));

export interface Goal {
  id: string;
  text: string;
  target: string;
  /** Per N: the ratio, and whether it meets the target. */
  values: Array<{ n: number; ratio: number; met: boolean }>;
  /** True when met at every N measured; null when nothing could be measured. */
  met: boolean | null;
  summary: string;
}

export interface BenchResults {
  schema: string;
  date: string;
  startedAt: string;
  finishedAt: string;
  durationSeconds: number;
  mode: string;
  config: Record<string, unknown>;
  environment: Record<string, unknown>;
  implementations: ImplementationInfo[];
  measurements: MeasurementResult[];
  goals: Goal[];
  failures: string[];
}

function okRow(size: SizeResult | undefined, impl: string): Row | undefined {
  return size?.rows.find((r) => r.impl === impl && r.ok && r.seconds !== undefined);
}

function sizesOf(results: BenchResults, id: string): SizeResult[] {
  return results.measurements.find((m) => m.id === id)?.sizes ?? [];
}

export function evaluateGoals(results: BenchResults): Goal[] {
  const goals: Goal[] = [];
  const ratioGoal = (
    id: string,
    text: string,
    target: string,
    measurementId: string,
    ratioOf: (size: SizeResult) => number | undefined,
    meets: (ratio: number) => boolean,
  ) => {
    const values: Goal['values'] = [];
    for (const size of sizesOf(results, measurementId)) {
      const ratio = ratioOf(size);
      if (ratio !== undefined && Number.isFinite(ratio)) values.push({ n: size.n, ratio, met: meets(ratio) });
    }
    const met = values.length === 0 ? null : values.every((v) => v.met);
    const summary = values.length === 0 ? 'not measured' : values.map((v) => `N=${v.n}: ${v.ratio.toFixed(2)}×`).join(', ');
    goals.push({ id, text, target, values, met, summary });
  };
  const vsRef = (impl: string, ref: string) => (size: SizeResult) => {
    const a = okRow(size, impl);
    const b = okRow(size, ref);
    return a && b ? a.seconds! / b.seconds! : undefined;
  };
  ratioGoal('reload', 'Reload of N peers ≤ 1.05× `wg addconf` (SQLite read included on both sides)', '≤ 1.05×', 'reload', vsRef('jitguard', 'wg'), (r) => r <= 1.05);
  ratioGoal('dump', 'Dump ≤ 1.0× `wg show dump`', '≤ 1.00×', 'dump', vsRef('jitguard', 'wg'), (r) => r <= 1.0);
  ratioGoal('install', 'Single-peer install p50 ≤ 1.25× the C single-peer floor', '≤ 1.25×', 'install-latency', vsRef('jitguard', 'c-floor'), (r) => r <= 1.25);
  ratioGoal(
    'install-reachable',
    'Is it reachable from Node here? The addon\'s bare exchange of a prebuilt SET (the Node floor) ≤ 1.25× the C floor',
    '≤ 1.25×',
    'install-latency',
    vsRef('node-floor', 'c-floor'),
    (r) => r <= 1.25,
  );
  ratioGoal('eviction', 'Eviction ≤ 1.1× `wg set … remove`', '≤ 1.10×', 'eviction', vsRef('jitguard', 'wg'), (r) => r <= 1.1);
  ratioGoal(
    'delete',
    'Deleting a big interface ≥ 50× faster than `ip link del`',
    '≥ 50× faster',
    'delete',
    (size) => {
      const a = okRow(size, 'ip');
      const b = okRow(size, 'jitguard');
      return a && b ? a.seconds! / b.seconds! : undefined;
    },
    (r) => r >= 50,
  );
  return goals;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function fmtN(n: number): string {
  return n.toLocaleString('en-US');
}

function fmtRss(kib: number | undefined): string {
  if (kib === undefined || !Number.isFinite(kib)) return '—';
  return `${(kib / 1024).toFixed(kib >= 100 * 1024 ? 0 : 1)} MiB`;
}

function fmtRatio(r: number | undefined): string {
  if (r === undefined || !Number.isFinite(r)) return '—';
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function status(row: Row): string {
  const warmup = row.figures?.warmupGetDeviceSeconds ?? row.figures?.firstCallExtraSeconds;
  // (Results of 2026-11-22 carry an earlier wording of this note; it is derived from the figure here.)
  const notes = (row.notes ?? []).filter((n) => !n.includes('first removePeers also dumps'));
  const cause = row.ok || row.skipped ? undefined : diagnose(row.impl, row.error);
  if (cause && !notes.includes(cause)) notes.push(cause);
  if (warmup !== undefined) notes.push(`untimed warm-up getDevice of all N peers before it: ${formatSeconds(warmup)}`);
  if (row.ok) return notes.length ? `ok — ${notes.join('; ')}` : 'ok';
  if (row.skipped) return `skipped: ${row.error ?? ''}`;
  return `**failed**${row.errorCode ? ` (${row.errorCode})` : ''}: ${row.error ?? ''}${notes.length ? ` — ${notes.join('; ')}` : ''}`;
}

function label(results: BenchResults, impl: string): string {
  return results.implementations.find((i) => i.id === impl)?.label ?? impl;
}

type Column = { head: string; value: (row: Row, size: SizeResult) => string };

/**
 * The longest event-loop stall during the operation (bench/netlink/stall.ts: a 10 ms timer in
 * the same process), for the rows that run in Node; wg(8) and ip(8) rows have none.
 */
function stallCell(r: Row): string {
  const ms = r.figures?.maxStallMs;
  return ms === undefined || !Number.isFinite(ms) ? '—' : `${ms.toFixed(0)} ms`;
}

const COLUMNS: Record<string, Column[]> = {
  'install-latency': [
    { head: 'p50', value: (r) => formatSeconds(r.figures?.p50Seconds) },
    { head: 'p99', value: (r) => formatSeconds(r.figures?.p99Seconds) },
    { head: 'max', value: (r) => formatSeconds(r.figures?.maxSeconds) },
    { head: 'first call', value: (r) => formatSeconds(r.figures?.firstSeconds) },
    { head: 'samples', value: (r) => (r.figures?.samples !== undefined ? String(r.figures.samples) : '—') },
    { head: 'p50 ÷ C floor', value: (r) => fmtRatio(r.figures?.p50OverCFloor) },
    { head: 'p50 ÷ bulk share', value: (r) => fmtRatio(r.figures?.p50OverFloor) },
    { head: 'p50 ÷ wg(8)', value: (r) => fmtRatio(r.ratioToWg) },
  ],
  reload: [
    { head: 'wall', value: (r) => formatSeconds(r.seconds) },
    { head: '÷ wg(8) pipeline', value: (r) => fmtRatio(r.ratioToWg) },
    {
      head: '÷ `wg addconf` alone',
      value: (r, size) => {
        const wg = okRow(size, 'wg');
        const addconf = wg?.figures?.wgAddconfSeconds;
        return r.ok && r.seconds !== undefined && addconf ? fmtRatio(r.seconds / addconf) : '—';
      },
    },
    { head: 'of which SQLite read', value: (r) => formatSeconds(r.figures?.readSeconds) },
    { head: 'peak RSS', value: (r) => fmtRss(r.maxRssKiB) },
    { head: 'longest stall', value: (r) => stallCell(r) },
  ],
  dump: [
    { head: 'wall (median)', value: (r) => formatSeconds(r.seconds) },
    { head: '÷ wg(8)', value: (r) => fmtRatio(r.ratioToWg) },
    { head: 'cold: first call of a fresh process', value: (r) => formatSeconds(r.figures?.coldSeconds) },
    { head: 'repeats', value: (r) => (r.figures?.repeats !== undefined ? String(r.figures.repeats) : '—') },
    { head: 'peak RSS', value: (r) => fmtRss(r.maxRssKiB) },
    { head: 'longest stall', value: (r) => stallCell(r) },
  ],
  eviction: [
    { head: 'wall', value: (r) => formatSeconds(r.seconds) },
    { head: '÷ wg(8)', value: (r) => fmtRatio(r.ratioToWg) },
    { head: 'peak RSS', value: (r) => fmtRss(r.maxRssKiB) },
    { head: 'longest stall', value: (r) => stallCell(r) },
  ],
  delete: [
    { head: 'wall', value: (r) => formatSeconds(r.seconds) },
    { head: '÷ `ip link del`', value: (r) => fmtRatio(r.ratioToWg) },
    { head: 'peak RSS', value: (r) => fmtRss(r.maxRssKiB) },
    { head: 'longest stall', value: (r) => stallCell(r) },
  ],
};

function measurementTable(results: BenchResults, m: MeasurementResult): string[] {
  const columns = COLUMNS[m.id] ?? [
    { head: 'seconds', value: (r: Row) => formatSeconds(r.seconds) },
    { head: 'ratio', value: (r: Row) => fmtRatio(r.ratioToWg) },
  ];
  const lines: string[] = [];
  lines.push(`| N | implementation | how | ${columns.map((c) => c.head).join(' | ')} | status |`);
  lines.push(`|---:|---|---|${columns.map(() => '---:').join('|')}|---|`);
  for (const size of m.sizes) {
    if (m.id === 'install-latency' && typeof size.context?.floorSeconds === 'number') {
      const floor = size.context.floorSeconds;
      const bulk = size.context.bulkSeconds as number;
      const filler = columns.map((c) => (c.head === 'p50' ? `**${formatSeconds(floor)}**` : c.head === 'p50 ÷ bulk share' ? '1.00×' : '')).join(' | ');
      lines.push(`| ${fmtN(size.n)} | *kernel's bulk share* | \`wg addconf\` of the N peers: ${formatSeconds(bulk)} ÷ N | ${filler} | — |`);
    }
    for (const row of size.rows) {
      lines.push(`| ${fmtN(size.n)} | ${cell(label(results, row.impl))} | ${cell(row.how)} | ${columns.map((c) => c.value(row, size)).join(' | ')} | ${cell(status(row))} |`);
    }
  }
  return lines;
}

function environmentTable(results: BenchResults): string[] {
  const env = results.environment as Record<string, unknown> & {
    vm?: { inVm: boolean; description: string };
    host?: Record<string, string>;
    packages?: Record<string, string>;
    baselineRssKiB?: Record<string, number>;
  };
  const rows: Array<[string, string]> = [
    ['Kernel (where WireGuard ran)', `${String(env.kernel)} (${String(env.kernelVersion)})`],
    ['Virtual machine', env.vm ? `${env.vm.inVm ? 'yes' : 'no'} — ${env.vm.description}` : '?'],
    ['CPU seen by that kernel', `${String(env.cpuModel)}, ${String(env.cpus)} CPU(s), ${String(env.memTotalMiB)} MiB`],
  ];
  if (env.host) {
    rows.push(['Host', `${env.host.cpu ?? '?'} (${env.host.cpus ?? '?'} cores), kernel ${env.host.kernel ?? '?'}, ${env.host.os ?? ''}`]);
  }
  rows.push(
    ['Node.js', String(env.node)],
    ['wg(8)', String(env.wg)],
    ['iproute2', String(env.iproute2)],
    ['jitguard commit', String(env.jitguardCommit)],
    ['npm peers', Object.entries(env.packages ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')],
    [
      'Idle Node process peak RSS (library loaded, nothing done)',
      Object.entries(env.baselineRssKiB ?? {}).map(([k, v]) => `${k}: ${fmtRss(v)}`).join(', '),
    ],
    ['Mode', `${results.mode}: N = ${(results.config.sizes as number[]).map(fmtN).join(', ')}; ${String(results.config.installSamples)} install samples per implementation`],
    ['Run', `${results.startedAt} → ${results.finishedAt} (${(results.durationSeconds / 60).toFixed(1)} min of guest time)`],
  );
  return ['| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`)];
}

function goalsTable(results: BenchResults): string[] {
  const sizes = [...new Set(results.goals.flatMap((g) => g.values.map((v) => v.n)))].sort((a, b) => a - b);
  const lines = [`| goal (issues 5, 11) | target | ${sizes.map((n) => `N=${fmtN(n)}`).join(' | ')} | verdict |`, `|---|---|${sizes.map(() => '---:').join('|')}|---|`];
  for (const g of results.goals) {
    const cells = sizes.map((n) => {
      const v = g.values.find((x) => x.n === n);
      return v ? `${fmtRatio(v.ratio)}${v.met ? '' : ' ✗'}` : '—';
    });
    lines.push(`| ${cell(g.text)} | ${g.target} | ${cells.join(' | ')} | ${g.met === null ? 'not measured' : g.met ? '**met**' : '**missed**'} |`);
  }
  return lines;
}

/** Data-driven notes on each goal: what the figures show (the "why" for missed goals). */
function goalNotes(results: BenchResults): string[] {
  const out: string[] = [];
  const largest = (id: string) => {
    const s = sizesOf(results, id);
    return s[s.length - 1];
  };
  for (const g of results.goals) {
    if (g.met === null) continue;
    if (g.id === 'reload') {
      const size = largest('reload');
      const jg = okRow(size, 'jitguard');
      const wg = okRow(size, 'wg');
      if (jg && wg && size) {
        out.push(
          `- **Reload** (N=${fmtN(size.n)}): jitguard ${formatSeconds(jg.seconds)} (SQLite read ${formatSeconds(jg.figures?.readSeconds)}, kernel load ${formatSeconds(jg.figures?.loadSeconds)}) vs the wg(8) pipeline ${formatSeconds(wg.seconds)} (read ${formatSeconds(wg.figures?.readSeconds)}, config file ${formatSeconds(wg.figures?.writeConfSeconds)}, \`wg addconf\` ${formatSeconds(wg.figures?.wgAddconfSeconds)}). ` +
            `Both are dominated by the kernel's per-peer DH; jitguard's load alone is ${fmtRatio((jg.figures?.loadSeconds ?? NaN) / (wg.figures?.wgAddconfSeconds ?? NaN))} of \`wg addconf\` alone. Peak RSS ${fmtRss(jg.maxRssKiB)} vs ${fmtRss(wg.maxRssKiB)}.`,
        );
      }
    } else if (g.id === 'dump') {
      const size = largest('dump');
      const jg = okRow(size, 'jitguard');
      const wg = okRow(size, 'wg');
      const wgNode = okRow(size, 'wg-node');
      if (jg && wg && size) {
        out.push(
          `- **Dump** (N=${fmtN(size.n)}): jitguard \`getDevice\` ${formatSeconds(jg.seconds)} in a running process (${formatSeconds(jg.figures?.coldSeconds)} as the first call of a fresh one) vs \`wg show dump\` ${formatSeconds(wg.seconds)} (text to a file, nothing parsed)` +
            (wgNode ? ` and ${formatSeconds(wgNode.seconds)} when a Node process runs wg(8) and parses its output (what jitguard's result is comparable to: typed objects in JS).` : '.') +
            ` Peak RSS ${fmtRss(jg.maxRssKiB)} vs ${fmtRss(wg.maxRssKiB)}.`,
        );
      }
    } else if (g.id === 'install') {
      const size = largest('install-latency');
      const jg = okRow(size, 'jitguard');
      const c = okRow(size, 'c-floor');
      const node = okRow(size, 'node-floor');
      if (jg && c && size) {
        out.push(
          `- **Install** (N=${fmtN(size.n)}): jitguard p50 ${formatSeconds(jg.figures?.p50Seconds)}, the C one-peer SET ${formatSeconds(c.figures?.p50Seconds)}` +
            (node ? `, the addon's bare exchange of a prebuilt SET (Node floor) ${formatSeconds(node.figures?.p50Seconds)}: Node alone is ${fmtRatio((node.figures?.p50Seconds ?? NaN) / (c.figures?.p50Seconds ?? NaN))} the C floor, and jitguard's validation, encoding and call path ${fmtRatio((jg.figures?.p50Seconds ?? NaN) / (node.figures?.p50Seconds ?? NaN))} the Node floor.` : '.') +
            ` The first call of a fresh process took ${formatSeconds(jg.figures?.firstSeconds)}: it resolves the family and reads the interface's public key from the first datagram of a dump (not the whole device).` +
            ` The kernel's bulk share (\`wg addconf\` ÷ N, ${formatSeconds(size.context?.floorSeconds as number)}) is not reachable by one message: wg(8) packs dozens of peers into each, so each pays a fraction of the system call, the genetlink dispatch and the device lock.`,
        );
      }
    } else if (g.id === 'eviction') {
      const size = largest('eviction');
      const jg = okRow(size, 'jitguard');
      const wg = okRow(size, 'wg');
      if (jg && wg && size) {
        out.push(
          `- **Eviction** (N=${fmtN(size.n)}, ${fmtN(Math.floor(size.n / 10))} removed): jitguard ${formatSeconds(jg.seconds)} vs \`wg set … remove\` ${formatSeconds(wg.seconds)} (one process, its start included). removePeers reads nothing first; the figure is for a process whose code is already warm.`,
        );
      }
    } else if (g.id === 'delete') {
      const sizes = sizesOf(results, 'delete');
      const parts = sizes
        .map((s) => {
          const jg = okRow(s, 'jitguard');
          const ip = okRow(s, 'ip');
          const flush = okRow(s, 'wg-flush');
          return jg ? `N=${fmtN(s.n)}: jitguard ${formatSeconds(jg.seconds)}${ip ? `, ip link del ${formatSeconds(ip.seconds)}` : ''}${flush ? `, wg flush + ip link del ${formatSeconds(flush.seconds)}` : ''}` : '';
        })
        .filter(Boolean);
      out.push(`- **Delete**: ${parts.join('; ')}.`);
    }
  }
  return out;
}

/**
 * What the figures say about each missed goal and what would close it. Written from this
 * run's figures and from separate checks in the same VM image (named as such); shown only
 * for goals the results file marks missed.
 */
const CLOSING: Record<string, string> = {
  reload:
    'A SET of more than 512 peers is a pipeline (lib/wireguard/set-pipeline.ts): validated in slices, then encoded 128 KiB at a time while the kernel applies the batch before, so at 100,000 peers jitguard\'s JavaScript hides behind the kernel\'s per-peer DH. Where the goal is missed at smaller N, the process is young: the reload is the first work its code does, and in this VM cold JavaScript costs more per peer than the kernel (compare "÷ `wg addconf` alone" across N: the gap shrinks as N grows and the code gets compiled). What would close it: less JavaScript per peer on the cold path (one pass from the row to the message), so that even unoptimised it stays behind the kernel.',
  dump:
    'jitguard turns every peer into a typed object (base64 keys, endpoint and prefix strings, bigint counters, Date); wg(8) prints text and parses nothing. The like-for-like comparison is the "wg(8) from Node" row (a Node process that runs wg(8) and parses its text into objects); the gap to `wg show dump` is jitguard\'s decoder, not the kernel. ' +
    'What would close it: decode with fewer allocations per attribute (one pass over each peer nest, keys encoded once), and decode each reply as it arrives instead of after the whole dump, overlapping the kernel\'s work.',
  install:
    'Read it against the Node floor row: the addon sending a SET encoded before its clock starts, with nothing of the library around it. What lies between the C floor and the Node floor is Node\'s own in this VM (the call into native code and back, around the same system calls); what lies between the Node floor and jitguard is jitguard\'s validation, encoding, request queue and promises. ' +
    'What would close the rest: less JavaScript per one-peer SET (a path for small configs that validates straight into the message), and for the gateway, installs coalesced into one SET (it does so already: one `setDevice` per flush).',
  'install-reachable':
    'No Node library can be faster than the Node floor row: it is one synchronous N-API call doing the same system calls as the C program (send, a zero-length peek, receive). Where it is itself above 1.25× the C floor, the install goal is out of reach for any Node process in this VM, and the figure to judge jitguard by is its ratio to the Node floor.',
  eviction:
    'The removal itself is cheap in the kernel (`wg set … remove` of 10,000 keys is well under a second here), so jitguard\'s validation and encoding of each key is not hidden behind it as a DH would hide it: the run is JavaScript-bound. The figure is for warmed code (both removal paths run once before it). What would close it: a removal path that decodes each key straight into the message (no normalized peer per key), and sending each batch while the next is encoded, as the pipeline does.',
  delete:
    'jitguard\'s deleteDevice sends one REPLACE_PEERS SET, the same flush as `wg setconf wg0 /dev/null` (which also resets key, port and fwmark), then RTM_DELLINK; done with wg(8), that strategy is ~90× faster than `ip link del` at 10,000 peers. ' +
    'In separate runs in the same VM image (10,000 peers, not part of this results file) the flush took 0.85–0.95 s from a warm Node process against 0.36–0.48 s for `wg setconf`, and `wg setconf` itself slowed to 0.62 s while another process kept the second vCPU busy: the kernel\'s per-peer teardown (netif_napi_del\'s synchronize_net, workqueue flushes) waits on the other CPU, and a young Node process keeps it busy. ' +
    'What would close it: find what the Node process runs on the other CPU during the call (V8 background compilation or GC after start-up are the suspects); the wire format is not the cause.',
};

function plotPanels(results: BenchResults): Panel[] {
  const series = (id: string, figure: (r: Row) => number | undefined, impls: string[]): Series[] =>
    impls
      .map((impl) => ({
        label: label(results, impl),
        color: COLORS[impl] ?? '#000',
        points: sizesOf(results, id)
          .map((s) => {
            const row = okRow(s, impl);
            const y = row ? figure(row) : undefined;
            return y !== undefined && y > 0 ? { x: s.n, y } : undefined;
          })
          .filter((p): p is { x: number; y: number } => p !== undefined),
      }))
      .filter((s) => s.points.length > 0);
  const install = series('install-latency', (r) => r.figures?.p50Seconds, ['jitguard', 'wg', 'netlink-raw', 'wireguard-tools.js', 'netlink']);
  const floorPoints = sizesOf(results, 'install-latency')
    .filter((s) => typeof s.context?.floorSeconds === 'number')
    .map((s) => ({ x: s.n, y: s.context!.floorSeconds as number }));
  if (floorPoints.length) install.push({ label: 'kernel floor (bulk ÷ N)', color: COLORS.floor!, dashed: true, points: floorPoints });
  const reload = series('reload', (r) => r.seconds, ['jitguard', 'wg', 'wireguard-tools.js', 'netlink-raw', 'netlink']).map((s) =>
    s.label.startsWith('wireguard-tools.js') ? { ...s, label: `${s.label} (own new interface)` } : s,
  );
  return [
    { title: 'Single-peer install latency (p50)', xLabel: 'peers already on the interface (N)', yLabel: 'p50 per install', series: install },
    { title: 'Reload N peers from SQLite', xLabel: 'peers (N)', yLabel: 'wall time', series: reload },
  ];
}

export function renderMarkdown(results: BenchResults, svgLink: string, resultsLink: string): string {
  const lines: string[] = [];
  lines.push('# Netlink benchmarks: results');
  lines.push('');
  lines.push(
    `Generated by \`npm run bench\` (bench/run.sh → bench/netlink/runner.ts) on ${results.date}; raw figures in [${resultsLink}](${resultsLink}). ` +
      'Regenerate this file from a results file with `node --import tsx bench/netlink/report.ts bench/results/<date>.json`; do not edit it by hand.',
  );
  lines.push('');
  lines.push(
    'All figures come from one run of one VM: Debian\'s stock kernel under qemu TCG (the host kernel has no WireGuard), everything ~10–50× slower than native. ' +
      'Absolute times are only comparable within this file; the ratios are the result. Every interface has a private key (as a gateway\'s does), so the kernel computes a static DH for each peer added.',
  );
  if (results.failures.length) {
    lines.push('');
    lines.push(`**This run had ${results.failures.length} failure(s):** ${results.failures.map(cell).join('; ')}`);
  }
  lines.push('', '## Goals (issues 5 and 11)', '', ...goalsTable(results), '');
  lines.push('Ratios are jitguard ÷ the reference in the same run (for deletion: `ip link del` ÷ jitguard). ✗ marks a size where the goal is missed.', '');
  lines.push(...goalNotes(results), '');
  const missed = results.goals.filter((g) => g.met === false && CLOSING[g.id]);
  if (missed.length) {
    lines.push('### Why the missed goals are missed, and what would close them', '');
    for (const g of missed) lines.push(`- **${g.text}** — ${CLOSING[g.id]}`);
    lines.push('');
  }
  lines.push('## Plot', '', `![install latency and reload time against N](${svgLink})`, '');
  lines.push('## Environment', '', ...environmentTable(results), '');
  lines.push('## Implementations', '');
  for (const impl of results.implementations) lines.push(`- **${impl.label}** — ${impl.what}`);
  lines.push('');
  let k = 1;
  for (const m of results.measurements) {
    lines.push(`## ${k++}. ${m.title}`, '');
    lines.push(`Primary figure: ${m.figure}.`, '');
    for (const note of CURRENT_NOTES[m.id] ?? m.notes) lines.push(`- ${note}`);
    lines.push('', ...measurementTable(results, m), '');
  }
  const others = existsSync(join(BENCH_DIR, 'results'))
    ? readdirSync(join(BENCH_DIR, 'results')).filter((f) => /^(noise|capture)-.*\.json$/.test(f)).sort()
    : [];
  if (others.length) {
    lines.push('## Other benchmarks', '');
    for (const f of others) lines.push(`- [results/${f}](results/${f})`);
    lines.push('');
  }
  lines.push('## How to run', '');
  lines.push('```sh');
  lines.push('npm run bench                 # N = 1,000 / 10,000 / 100,000; writes bench/results/<date>.json, this file, the plot');
  lines.push('npm run bench -- --huge       # adds N = 1,048,576 (the kernel\'s per-device maximum); needs ~12 GiB for the VM');
  lines.push('npm run bench -- --smoke      # N = 100, few iterations: CI keeps the harness from rotting (non-zero exit if a measurement breaks)');
  lines.push('```');
  lines.push('');
  return lines.join('\n');
}

export interface ReportOptions {
  /** Where RESULTS.md goes (default bench/RESULTS.md). */
  markdownPath?: string;
  /** Where the SVG goes (default bench/results/). */
  svgDir?: string;
}

/**
 * RESULTS.md is shared: other reports (bench/gateway) own a section of it, between
 * `<!-- section:NAME -->` and `<!-- /section:NAME -->`. `withSection` puts `body` in the named
 * section (replacing it, or inserting it before "## Other benchmarks", else at the end);
 * this report keeps every such section when it rewrites the file.
 */
export function withSection(markdown: string, name: string, body: string): string {
  const open = `<!-- section:${name} -->`;
  const close = `<!-- /section:${name} -->`;
  const block = `${open}\n${body.trim()}\n${close}\n`;
  const start = markdown.indexOf(open);
  const end = markdown.indexOf(close);
  if (start >= 0 && end > start) return markdown.slice(0, start) + block + markdown.slice(end + close.length).replace(/^\n/, '');
  const other = markdown.indexOf('\n## Other benchmarks');
  if (other >= 0) return `${markdown.slice(0, other + 1)}${block}\n${markdown.slice(other + 1)}`;
  return `${markdown.replace(/\n*$/, '\n\n')}${block}`;
}

/** The sections other reports own in `markdown`, by name. */
function ownedSections(markdown: string): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const m of markdown.matchAll(/<!-- section:([\w-]+) -->\n([\s\S]*?)<!-- \/section:\1 -->/g)) found.push([m[1]!, m[2]!]);
  return found;
}

export function writeReport(resultsFile: string, options: ReportOptions = {}): { markdown: string; svg: string } {
  const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchResults;
  const resultsName = basename(resultsFile);
  const svgName = resultsName.replace(/\.json$/, '.svg');
  const svgDir = options.svgDir ?? join(BENCH_DIR, 'results');
  const markdownPath = options.markdownPath ?? join(BENCH_DIR, 'RESULTS.md');
  const svgPath = join(svgDir, svgName);
  const caption = `jitguard bench ${results.date} · ${String(results.environment.kernel)} · ${(results.environment.vm as { description?: string } | undefined)?.description ?? ''}`;
  writeFileSync(svgPath, renderSvg(plotPanels(results), caption));
  let markdown = renderMarkdown(results, relative(dirname(markdownPath), svgPath), relative(dirname(markdownPath), resultsFile));
  if (existsSync(markdownPath)) {
    for (const [name, body] of ownedSections(readFileSync(markdownPath, 'utf8'))) markdown = withSection(markdown, name, body);
  }
  writeFileSync(markdownPath, markdown);
  return { markdown: markdownPath, svg: svgPath };
}

function newestResults(): string {
  const dir = join(BENCH_DIR, 'results');
  const files = readdirSync(dir).filter((f) => /^\d{4}-\d{2}-\d{2}\.json$/.test(f)).sort();
  if (!files.length) throw new Error(`no results in ${dir}`);
  return join(dir, files[files.length - 1]!);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const outDir = args.indexOf('--out-dir') >= 0 ? resolve(args[args.indexOf('--out-dir') + 1]!) : undefined;
  const positional = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--out-dir');
  const file = resolve(positional[0] ?? newestResults());
  const written = writeReport(file, outDir ? { markdownPath: join(outDir, 'RESULTS.md'), svgDir: outDir } : {});
  console.log(`wrote ${relative(process.cwd(), written.markdown)} and ${relative(process.cwd(), written.svg)} from ${relative(process.cwd(), file)}`);
}
