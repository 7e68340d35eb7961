/**
 * Gateway results → the gateway section of bench/RESULTS.md and its plot
 * (bench/results/gateway-<date>.svg). The section sits between markers, so bench/netlink's
 * report keeps it when it rewrites the file (see `withSection` there).
 *
 *   node --import tsx bench/gateway/report.ts [bench/results/gateway-<date>.json] [--out-dir DIR]
 *
 * The goals of issue 9 are evaluated here (evaluateGatewayGoals), also by the runner.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DIR, formatSeconds, type Row } from '../netlink/common.js';
import { type BenchResults, type Goal, withSection } from '../netlink/report.js';
import { COLORS, formatN, renderSvg, type Panel } from '../netlink/plot.js';
import type { GatewayMeasurementResult, GatewaySizeResult } from './context.js';

export interface GatewayGoal extends Goal {
  /** The measured figure and what it is compared with, as text for the table. */
  figure: string;
  anchor: string;
  ratio: number | null;
}

export const STALL_LIMIT_MS = 50;
/** A kernel WireGuard client re-sends its initiation after 5 s (REKEY_TIMEOUT). */
const CLIENT_RETRY_SECONDS = 5;

function measurement(results: BenchResults, id: string): GatewayMeasurementResult | undefined {
  return results.measurements.find((m) => m.id === id) as GatewayMeasurementResult | undefined;
}

function row(size: GatewaySizeResult | undefined, impl: string): Row | undefined {
  return size?.rows.find((r) => r.impl === impl && r.ok && r.seconds !== undefined);
}

const ms = (seconds: number | undefined) => formatSeconds(seconds);

export function evaluateGatewayGoals(results: BenchResults): GatewayGoal[] {
  const goals: GatewayGoal[] = [];
  const ratioGoal = (id: string, text: string, target: string, n: number, figure: number | undefined, anchor: number | undefined, figureText: string, anchorText: string, limit: number) => {
    const ratio = figure !== undefined && anchor !== undefined && anchor > 0 ? figure / anchor : null;
    const met = ratio === null ? null : ratio <= limit;
    goals.push({
      id, text, target, figure: figureText, anchor: anchorText, ratio,
      values: ratio === null ? [] : [{ n, ratio, met: met! }],
      met,
      summary: ratio === null ? 'not measured' : `${ratio.toFixed(2)}× (${figureText} vs ${anchorText})`,
    });
  };

  const jit = measurement(results, 'jit-latency')?.sizes[0];
  const jitRow = row(jit, 'jitguard');
  const pre = row(jit, 'kernel');
  ratioGoal('jit', 'JIT first reply p50 ≤ 1.5× a peer installed beforehand', '≤ 1.5×', jit?.n ?? 0, jitRow?.seconds, pre?.seconds,
    `p50 ${ms(jitRow?.seconds)} (p99 ${ms(jitRow?.figures?.p99Seconds)})`, `pre-installed p50 ${ms(pre?.seconds)} (p99 ${ms(pre?.figures?.p99Seconds)})`, 1.5);

  const burst = measurement(results, 'burst')?.sizes[0];
  const burstRow = row(burst, 'jitguard');
  const floor = row(burst, 'kernel');
  ratioGoal('burst', `Burst of ${formatN(burst?.n ?? 0)} initiations into an empty gateway ≤ 1.5× the kernel's bulk floor`, '≤ 1.5×', burst?.n ?? 0, burstRow?.seconds, floor?.seconds,
    `${ms(burstRow?.seconds)} in ${burstRow?.figures?.installNetlinkCalls ?? '—'} netlink install calls`, `\`wg addconf\` ${ms(floor?.seconds)}`, 1.5);

  // Reboot: every start ≤ 1 s, at every store size.
  const reboot = measurement(results, 'reboot');
  if (reboot?.sizes.length) {
    const values = reboot.sizes.flatMap((s) => {
      const r = row(s, 'jitguard');
      const worst = r?.figures?.maxStartSeconds;
      return worst === undefined ? [] : [{ n: s.n, ratio: worst / 1, met: worst <= 1 }];
    });
    const largest = reboot.sizes[reboot.sizes.length - 1]!;
    const r = row(largest, 'jitguard');
    const k = row(largest, 'kernel');
    goals.push({
      id: 'reboot',
      text: 'Ready after a reboot ≤ 1 s whatever the store holds',
      target: '≤ 1 s',
      figure: `worst start ${ms(r?.figures?.maxStartSeconds)} with ${formatN(largest.n)} stored (${values.map((v) => `${formatN(v.n)}: ${ms(v.ratio)}`).join(', ')})`,
      anchor: k ? `loading ${formatN(largest.n)} into the kernel: ${ms(k.seconds)}${k.figures?.extrapolated ? ' (extrapolated)' : ''}` : '—',
      ratio: r && k ? r.figures!.maxStartSeconds! / k.seconds! : null,
      values,
      met: values.length ? values.every((v) => v.met) : null,
      summary: values.map((v) => `N=${v.n}: ${v.ratio.toFixed(3)} s`).join(', '),
    });
  }

  // The switchover serves clients that connect during it: before their own retry.
  const sw = measurement(results, 'switchover')?.sizes[0];
  const swRow = sw?.rows.find((x) => x.impl === 'jitguard');
  if (swRow?.figures) {
    const replies = [swRow.figures.client1FirstReplySeconds, swRow.figures.client2FirstReplySeconds].filter((v): v is number => v !== undefined && Number.isFinite(v));
    const worst = replies.length === 2 ? Math.max(...replies) : undefined;
    goals.push({
      id: 'switchover-client',
      text: `A client connecting during the switchover (${formatN(sw!.n)} idle peers) is served before its own retry`,
      target: `< ${CLIENT_RETRY_SECONDS} s`,
      figure: `first replies ${replies.map((v) => ms(v)).join(' and ')}; kernel held only live peers after ${ms(swRow.seconds)}`,
      anchor: `the client's retry after ${CLIENT_RETRY_SECONDS} s`,
      ratio: worst === undefined ? null : worst / CLIENT_RETRY_SECONDS,
      values: worst === undefined ? [] : [{ n: sw!.n, ratio: worst / CLIENT_RETRY_SECONDS, met: worst < CLIENT_RETRY_SECONDS }],
      met: worst === undefined ? false : worst < CLIENT_RETRY_SECONDS,
      summary: worst === undefined ? 'a client was not served' : `worst first reply ${worst.toFixed(2)} s`,
    });
  }

  // No stall over 50 ms, in each scenario.
  const stalls = results.measurements.flatMap((m) => {
    const worst = Math.max(...m.sizes.flatMap((s) => s.rows.map((r) => r.impl === 'jitguard' ? r.figures?.maxStallMs ?? -1 : -1)));
    return worst >= 0 ? [{ id: m.id, worst }] : [];
  });
  if (stalls.length) {
    goals.push({
      id: 'stall',
      text: `No event-loop stall over ${STALL_LIMIT_MS} ms in the gateway process`,
      target: `≤ ${STALL_LIMIT_MS} ms`,
      figure: stalls.map((s) => `${s.id} ${s.worst.toFixed(0)} ms`).join(', '),
      anchor: `${STALL_LIMIT_MS} ms`,
      ratio: Math.max(...stalls.map((s) => s.worst)) / STALL_LIMIT_MS,
      values: stalls.map((s, i) => ({ n: i, ratio: s.worst / STALL_LIMIT_MS, met: s.worst <= STALL_LIMIT_MS })),
      met: stalls.every((s) => s.worst <= STALL_LIMIT_MS),
      summary: stalls.map((s) => `${s.id}: ${s.worst.toFixed(0)} ms`).join(', '),
    });
  }
  return goals;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function fmtRatio(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return '—';
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r >= 0.01 ? r.toFixed(2) : r.toExponential(1)}×`;
}

const num = (v: number | undefined, digits = 0) => (v === undefined || !Number.isFinite(v) ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits }));

type Column = { head: string; value: (r: Row) => string };

/** The figures each scenario's table shows beside the primary one. */
const COLUMNS: Record<string, Column[]> = {
  'jit-latency': [
    { head: 'p50', value: (r) => ms(r.figures?.p50Seconds) },
    { head: 'p99', value: (r) => ms(r.figures?.p99Seconds) },
    { head: 'max', value: (r) => ms(r.figures?.maxSeconds) },
    { head: 'samples', value: (r) => num(r.figures?.samples) },
    { head: 'knock → install p50', value: (r) => ms(r.figures?.knockToInstallP50Seconds) },
    { head: 'max stall', value: (r) => (r.figures?.maxStallMs !== undefined ? `${num(r.figures.maxStallMs)} ms` : '—') },
  ],
  burst: [
    { head: 'time (median)', value: (r) => ms(r.seconds) },
    { head: 'runs (min–max)', value: (r) => `${num(r.figures?.runs)} (${ms(r.figures?.minSeconds)}–${ms(r.figures?.maxSeconds)})` },
    { head: 'netlink install calls', value: (r) => num(r.figures?.installNetlinkCalls) },
    { head: 'last packet captured at', value: (r) => ms(r.figures?.lastArrivalSeconds) },
    { head: 'first install at', value: (r) => ms(r.figures?.firstInstallSeconds) },
    { head: 'gateway CPU / VM busy', value: (r) => (r.figures?.gatewayCpuSeconds !== undefined ? `${ms(r.figures.gatewayCpuSeconds)} / ${ms(r.figures.machineBusySeconds)}` : '—') },
    { head: 'capture drops', value: (r) => (r.figures?.captureKernelDrops !== undefined ? num(r.figures.captureKernelDrops + (r.figures.captureQueueDrops ?? 0)) : '—') },
    { head: 'max stall', value: (r) => (r.figures?.maxStallMs !== undefined ? `${num(r.figures.maxStallMs)} ms` : '—') },
  ],
  flood: [
    { head: 'CPU per packet', value: (r) => (r.figures?.cpuMicrosPerPacket !== undefined ? `${num(r.figures.cpuMicrosPerPacket, 1)} µs` : r.figures?.cpuMicrosPerSecond !== undefined ? `${num(r.figures.cpuMicrosPerSecond)} µs/s (${num(r.figures.cpuMicrosPerSecondWithoutProbe)} without the probe)` : '—') },
    { head: 'sent / seen / dropped', value: (r) => (r.figures?.packetsSent !== undefined ? `${num(r.figures.packetsSent)} / ${num(r.figures.packetsSeen)} / ${num(r.figures.captureDrops)}` : '—') },
    { head: 'rejects (reason)', value: (r) => r.notes?.find((n) => n.startsWith('rejects:'))?.slice(9) ?? '—' },
    { head: 'packets/s (lower bound)', value: (r) => (r.figures?.busySecondsUpperBound ? num(r.figures.packetsSeen! / r.figures.busySecondsUpperBound) : '—') },
    { head: 'max stall', value: (r) => (r.figures?.maxStallMs !== undefined ? `${num(r.figures.maxStallMs)} ms` : '—') },
  ],
  switchover: [
    { head: 'only live peers after', value: (r) => ms(r.seconds) },
    { head: 'start → ready', value: (r) => ms(r.figures?.startToReadySeconds) },
    { head: 'first / last eviction', value: (r) => (r.figures ? `${ms(r.figures.firstEvictionSeconds)} / ${ms(r.figures.lastEvictionSeconds)}` : '—') },
    { head: 'sampler saw it at', value: (r) => ms(r.figures?.samplerConfirmedSeconds) },
    { head: 'client 1: connect → first reply', value: (r) => (r.figures?.client1ConnectSeconds !== undefined ? `at ${ms(r.figures.client1ConnectSeconds)}: ${ms(r.figures.client1FirstReplySeconds)}` : '—') },
    { head: 'client 2', value: (r) => (r.figures?.client2ConnectSeconds !== undefined ? `at ${ms(r.figures.client2ConnectSeconds)}: ${ms(r.figures.client2FirstReplySeconds)}` : '—') },
    { head: 'max stall (start / after)', value: (r) => (r.figures?.maxStallMs !== undefined ? `${num(r.figures.maxStallDuringStartMs)} / ${num(r.figures.maxStallAfterReadyMs)} ms` : '—') },
  ],
  reboot: [
    { head: 'start → ready (median)', value: (r) => ms(r.seconds) },
    { head: 'worst start', value: (r) => ms(r.figures?.maxStartSeconds) },
    { head: 'opening the store', value: (r) => ms(r.figures?.storeOpenSeconds) },
    { head: 'process start → ready', value: (r) => ms(r.figures?.processStartToReadySeconds) },
    { head: 'client after ready: first reply', value: (r) => ms(r.figures?.firstReplyAfterReadySeconds) },
    { head: 'max stall', value: (r) => (r.figures?.maxStallMs !== undefined ? `${num(r.figures.maxStallMs)} ms` : '—') },
  ],
};

function scenarioTable(results: BenchResults, m: GatewayMeasurementResult): string[] {
  const columns = COLUMNS[m.id] ?? [{ head: 'seconds', value: (r: Row) => ms(r.seconds) }];
  const label = (impl: string) => results.implementations.find((i) => i.id === impl)?.label ?? impl;
  const lines = [`| N | | how | ${columns.map((c) => c.head).join(' | ')} | ÷ anchor | status |`, `|---:|---|---|${columns.map(() => '---:').join('|')}|---:|---|`];
  for (const size of m.sizes) {
    for (const r of size.rows) {
      const status = r.ok ? 'ok' : `**failed**: ${r.error ?? ''}`;
      lines.push(`| ${formatN(size.n)} | ${cell(label(r.impl))} | ${cell(r.how)} | ${columns.map((c) => cell(r.ok || r.figures ? c.value(r) : '—')).join(' | ')} | ${fmtRatio(r.ratioToWg)} | ${cell(status)} |`);
    }
  }
  return lines;
}

/**
 * Where the time goes for each goal this run missed, and what would close it: written from the
 * profiles and part measurements named in each text (bench/gateway/README of this run's
 * commands is in the section's "How to run"). Shown only for goals the results mark missed.
 */
export const CLOSING: Record<string, string> = {};

export function renderSection(results: BenchResults, svgLink: string, resultsLink: string): string {
  const goals = results.goals as GatewayGoal[];
  const env = results.environment as Record<string, any>;
  const lines: string[] = [];
  lines.push('## Gateway benchmarks (issue 9)', '');
  lines.push(
    `Generated by \`bash bench/run.sh --gateway\` (bench/gateway/runner.ts) on ${results.date}; raw figures in [${resultsLink}](${resultsLink}). ` +
      `Regenerate this section with \`node --import tsx bench/gateway/report.ts ${resultsLink.replace(/^results\//, 'bench/results/')}\`; do not edit it by hand. ` +
      `One run of one VM (${cell(String(env.vm?.description ?? ''))}; kernel ${String(env.kernel)}; node ${String(env.node)}; jitguard ${String(env.jitguardCommit)}), ${(results.durationSeconds / 60).toFixed(1)} min of guest time` +
      (env.host?.loadAverage ? `, on a ${String(env.host.cpus)}-CPU host shared with other work (load average ${String(env.host.loadAverage)} when it started)` : '') +
      ': ratios within this run are the result, absolute times are TCG times (~10–50× native).',
  );
  if (results.failures.length) lines.push('', `**This run had ${results.failures.length} failure(s):** ${results.failures.map(cell).join('; ')}`);
  lines.push('', '### Goals', '');
  lines.push('| goal | figure | anchor | ratio | target | verdict |', '|---|---|---|---:|---|---|');
  for (const g of goals) {
    lines.push(`| ${cell(g.text)} | ${cell(g.figure)} | ${cell(g.anchor)} | ${fmtRatio(g.ratio)} | ${g.target} | ${g.met === null ? 'not measured' : g.met ? '**met**' : '**missed**'} |`);
  }
  lines.push('');
  const missed = goals.filter((g) => g.met === false && CLOSING[g.id]);
  if (missed.length) {
    lines.push('#### Where the time goes in the missed goals, and what would close them', '');
    for (const g of missed) lines.push(`- **${g.text}** — ${CLOSING[g.id]}`);
    lines.push('');
  }
  lines.push('### Plot', '', `![switchover: kernel peers against time; burst: peers in the kernel against time; first-reply samples](${svgLink})`, '');
  let k = 1;
  for (const m of results.measurements as GatewayMeasurementResult[]) {
    lines.push(`### ${String.fromCharCode(96 + k++)}) ${m.title}`, '', `Primary figure: ${m.figure}.`, '');
    for (const note of m.notes) lines.push(`- ${note}`);
    lines.push('', ...scenarioTable(results, m), '');
  }
  lines.push('### How to run', '', '```sh');
  lines.push('bash bench/run.sh --gateway           # this section: every scenario in one VM run (~30 min under TCG)');
  lines.push('bash bench/run.sh --gateway --smoke   # tiny sizes (CI; also part of `bash bench/run.sh --smoke`)');
  lines.push('JITGUARD_BENCH_PROFILE=$PWD/.cache/vm-rw/prof bash bench/run.sh --gateway --only burst   # the gateway process under --cpu-prof');
  lines.push('```', '');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Plot

function plotPanels(results: BenchResults): Panel[] {
  const panels: Panel[] = [];
  const seconds = (x: number) => `${+x.toPrecision(3)} s`;
  const sw = measurement(results, 'switchover')?.sizes[0];
  if (sw?.series) {
    panels.push({
      title: `Switchover: ${formatN(sw.n)} idle peers`,
      xLabel: 'seconds since start() (gateway events: N − evicted + installed)',
      yLabel: 'peers in the kernel',
      xScale: 'linear', yScale: 'linear', xFormat: seconds, yFormat: formatN,
      series: [
        { label: 'wg(8) sampler', color: COLORS.wg!, points: sw.series.sampler!.map((p) => ({ x: p.t, y: p.value })) },
        { label: 'gateway events', color: COLORS.jitguard!, dotRadius: 0, points: sw.series.gateway!.map((p) => ({ x: p.t, y: p.value })) },
        { label: 'ready', color: '#000', points: (sw.series.ready ?? []).map((p) => ({ x: p.t, y: p.value })) },
        { label: 'client 1: connect → first reply', color: COLORS['wireguard-tools.js']!, points: (sw.series.client1 ?? []).map((p) => ({ x: p.t, y: p.value })) },
        { label: 'client 2: connect → first reply', color: COLORS.netlink!, points: (sw.series.client2 ?? []).map((p) => ({ x: p.t, y: p.value })) },
      ],
    });
  }
  const burst = measurement(results, 'burst')?.sizes[0];
  if (burst?.series) {
    const floor = row(burst, 'kernel');
    panels.push({
      title: `Burst of ${formatN(burst.n)} initiations`,
      xLabel: 'seconds since the first packet was sent',
      yLabel: 'peers',
      xScale: 'linear', yScale: 'linear', xFormat: seconds, yFormat: formatN,
      series: [
        { label: 'in the kernel', color: COLORS.jitguard!, dotRadius: 0, points: burst.series.installed!.map((p) => ({ x: p.t, y: p.value })) },
        { label: 'captured', color: COLORS.floor!, dotRadius: 0, points: burst.series.arrived!.map((p) => ({ x: p.t, y: p.value })) },
        ...(floor ? [{ label: 'wg addconf (floor)', color: COLORS.wg!, dashed: true, dotRadius: 0, points: [{ x: 0, y: 0 }, { x: floor.seconds!, y: burst.n }] }] : []),
      ],
    });
  }
  const jit = measurement(results, 'jit-latency')?.sizes[0];
  if (jit?.series) {
    panels.push({
      title: 'First initiation → first reply',
      xLabel: 'sample (each a fresh client)',
      yLabel: 'ping RTT of the first packet',
      xScale: 'linear', yScale: 'linear', xFormat: (x) => String(x), yFormat: (y) => `${+(y * 1000).toPrecision(3)} ms`,
      series: [
        { label: 'JIT', color: COLORS.jitguard!, points: jit.series.jit!.map((p) => ({ x: p.t, y: p.value })) },
        { label: 'installed beforehand', color: COLORS.wg!, points: jit.series.preinstalled!.map((p) => ({ x: p.t, y: p.value })) },
      ],
    });
  }
  return panels;
}

export function writeGatewayReport(resultsFile: string, options: { markdownPath?: string; svgDir?: string } = {}): { markdown: string; svg: string } {
  const results = JSON.parse(readFileSync(resultsFile, 'utf8')) as BenchResults;
  const svgDir = options.svgDir ?? join(BENCH_DIR, 'results');
  const markdownPath = options.markdownPath ?? join(BENCH_DIR, 'RESULTS.md');
  const svgPath = join(svgDir, basename(resultsFile).replace(/\.json$/, '.svg'));
  const caption = `jitguard gateway bench ${results.date} · ${String(results.environment.kernel)} · ${(results.environment.vm as { description?: string } | undefined)?.description ?? ''}`;
  writeFileSync(svgPath, renderSvg(plotPanels(results), caption));
  const existing = existsSync(markdownPath) ? readFileSync(markdownPath, 'utf8') : '# Benchmarks: results\n';
  const section = renderSection(results, relative(dirname(markdownPath), svgPath), relative(dirname(markdownPath), resultsFile));
  writeFileSync(markdownPath, withSection(existing, 'gateway', section));
  return { markdown: markdownPath, svg: svgPath };
}

function newestResults(): string {
  const dir = join(BENCH_DIR, 'results');
  const files = readdirSync(dir).filter((f) => /^gateway-\d{4}-\d{2}-\d{2}\.json$/.test(f)).sort();
  if (!files.length) throw new Error(`no gateway results in ${dir}`);
  return join(dir, files[files.length - 1]!);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const outDir = args.indexOf('--out-dir') >= 0 ? resolve(args[args.indexOf('--out-dir') + 1]!) : undefined;
  const positional = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--out-dir');
  const file = resolve(positional[0] ?? newestResults());
  const written = writeGatewayReport(file, outDir ? { markdownPath: join(outDir, 'RESULTS.md'), svgDir: outDir } : {});
  console.log(`wrote ${relative(process.cwd(), written.markdown)} and ${relative(process.cwd(), written.svg)} from ${relative(process.cwd(), file)}`);
}
