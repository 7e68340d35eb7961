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
import type { GatewayMeasurementResult, GatewaySizeResult, Part } from './context.js';

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

/**
 * Per scenario with stall figures, over its jitguard rows: the longest stall, the longest busy
 * stall, the longest GC pause, and the timer bystander's longest stall over the same windows.
 */
function scenarioStalls(results: BenchResults): Array<{ id: string; worst: number; busy?: number; gc?: number; floor?: number }> {
  return results.measurements.flatMap((m) => {
    const rows = m.sizes.flatMap((s) => s.rows.filter((r) => r.impl === 'jitguard'));
    const longest = (figure: string) => Math.max(...rows.map((r) => r.figures?.[figure] ?? -1));
    const worst = longest('maxStallMs');
    const optional = (name: string, v: number) => (v >= 0 ? { [name]: v } : {});
    return worst >= 0 ? [{ id: m.id, worst, ...optional('busy', longest('maxBusyStallMs')), ...optional('gc', longest('maxGcPauseMs')), ...optional('floor', longest('bystanderMaxStallMs')) }] : [];
  });
}

/** ' (busy N ms, GC N ms)' after a scenario's longest stall, as far as the run recorded them. */
function busyAndGc(s: { busy?: number; gc?: number }): string {
  return s.busy === undefined ? '' : ` (busy ${num(s.busy)} ms${s.gc !== undefined ? `, GC ${num(s.gc)} ms` : ''})`;
}

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
  if (jit) ratioGoal('jit', 'JIT first reply p50 ≤ 1.5× a peer installed beforehand', '≤ 1.5×', jit?.n ?? 0, jitRow?.seconds, pre?.seconds,
    `p50 ${ms(jitRow?.seconds)} (p99 ${ms(jitRow?.figures?.p99Seconds)})`, `pre-installed p50 ${ms(pre?.seconds)} (p99 ${ms(pre?.figures?.p99Seconds)})`, 1.5);
  const jitFloor = row(jit, 'c-floor')?.figures?.jitFloorSeconds;
  if (jit && jitFloor !== undefined && pre?.seconds) {
    ratioGoal('jit-floor', 'The lowest JIT first reply this VM allows (the C JIT\'s, unauthenticated, + two X25519) ≤ 1.5× pre-installed: is the goal reachable here?', '≤ 1.5×', jit.n,
      jitFloor, pre.seconds, `floor ${ms(jitFloor)} (C JIT p50 ${ms(row(jit, 'c-jit')?.seconds)}, C install ${ms(row(jit, 'c-floor')?.seconds)})`, `pre-installed p50 ${ms(pre.seconds)}`, 1.5);
  }

  const burst = measurement(results, 'burst')?.sizes[0];
  const burstRow = row(burst, 'jitguard');
  const floor = row(burst, 'kernel');
  if (burst) ratioGoal('burst', `Burst of ${formatN(burst?.n ?? 0)} initiations into an empty gateway ≤ 1.5× the kernel's bulk floor`, '≤ 1.5×', burst?.n ?? 0, burstRow?.seconds, floor?.seconds,
    `${ms(burstRow?.seconds)} in ${burstRow?.figures?.installNetlinkCalls ?? '—'} netlink install calls`, `\`wg addconf\` ${ms(floor?.seconds)}`, 1.5);
  const verifyFloor = row(burst, 'verify-floor');
  if (burst && verifyFloor && floor?.seconds) {
    ratioGoal('burst-floor', 'The fastest burst this VM allows (`wg addconf` + two X25519 an initiation on every vCPU) ≤ 1.5× `wg addconf`: is the goal reachable here?', '≤ 1.5×', burst.n,
      verifyFloor.seconds, floor.seconds, `floor ${ms(verifyFloor.seconds)} (X25519 ${ms(verifyFloor.figures?.x25519Seconds)} each, ${verifyFloor.figures?.cpus} vCPUs)`, `\`wg addconf\` ${ms(floor.seconds)}`, 1.5);
  }

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
  const stalls = scenarioStalls(results);
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
      summary: stalls.map((s) => `${s.id}: ${num(s.worst)} ms${busyAndGc(s)}`).join(', '),
    });
    const floors = stalls.filter((s) => s.floor !== undefined);
    if (floors.length === stalls.length) {
      const worstFloor = Math.max(...floors.map((s) => s.floor!));
      goals.push({
        id: 'stall-floor',
        text: `The shortest longest stall this VM allows (a C process waiting on the same 10 ms timer beside the gateway, over the same windows) ≤ ${STALL_LIMIT_MS} ms in every scenario: is the goal reachable here?`,
        target: `≤ ${STALL_LIMIT_MS} ms`,
        figure: floors.map((s) => `${s.id} ${num(s.floor)} ms`).join(', '),
        anchor: `${STALL_LIMIT_MS} ms`,
        ratio: worstFloor / STALL_LIMIT_MS,
        values: floors.map((s, i) => ({ n: i, ratio: s.floor! / STALL_LIMIT_MS, met: s.floor! <= STALL_LIMIT_MS })),
        met: worstFloor <= STALL_LIMIT_MS,
        summary: floors.map((s) => `${s.id}: ${num(s.floor)} ms (gateway ${num(s.worst)} ms)`).join(', '),
      });
    }
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
    { head: 'max stall', value: stallCell },
  ],
  burst: [
    { head: 'time (median)', value: (r) => ms(r.seconds) },
    { head: 'runs (min–max)', value: (r) => `${num(r.figures?.runs)} (${ms(r.figures?.minSeconds)}–${ms(r.figures?.maxSeconds)})` },
    { head: 'netlink install calls', value: (r) => num(r.figures?.installNetlinkCalls) },
    { head: 'last packet captured at', value: (r) => ms(r.figures?.lastArrivalSeconds) },
    { head: 'first install at', value: (r) => ms(r.figures?.firstInstallSeconds) },
    { head: 'gateway CPU / VM busy', value: (r) => (r.figures?.gatewayCpuSeconds !== undefined ? `${ms(r.figures.gatewayCpuSeconds)} / ${ms(r.figures.machineBusySeconds)}` : '—') },
    { head: 'capture drops', value: (r) => (r.figures?.captureKernelDrops !== undefined ? num(r.figures.captureKernelDrops + (r.figures.captureQueueDrops ?? 0)) : '—') },
    { head: 'max stall', value: stallCell },
  ],
  flood: [
    { head: 'CPU per packet', value: (r) => (r.figures?.cpuMicrosPerPacket !== undefined ? `${num(r.figures.cpuMicrosPerPacket, 1)} µs` : r.figures?.cpuMicrosPerSecond !== undefined ? `${num(r.figures.cpuMicrosPerSecond)} µs/s (${num(r.figures.cpuMicrosPerSecondWithoutProbe)} without the probe)` : '—') },
    { head: 'sent / seen / dropped', value: (r) => (r.figures?.packetsSent !== undefined ? `${num(r.figures.packetsSent)} / ${num(r.figures.packetsSeen)} / ${num(r.figures.captureDrops)}` : '—') },
    { head: 'rejects (reason)', value: (r) => r.notes?.find((n) => n.startsWith('rejects:'))?.slice(9) ?? '—' },
    { head: 'packets/s (lower bound)', value: (r) => (r.figures?.busySecondsUpperBound ? num(r.figures.packetsSeen! / r.figures.busySecondsUpperBound) : '—') },
    { head: 'max stall', value: stallCell },
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
    { head: 'max stall', value: stallCell },
  ],
};

/**
 * The longest stall, the CPU the process used in it, the longest stall the process spent mostly
 * on CPU ("busy": its own work, not the VM running something else), the longest GC pause and
 * the timer bystander's longest stall over the same windows, where the run recorded them (older
 * results did not).
 */
function stallCell(r: Row): string {
  const f = r.figures;
  if (f?.maxStallMs === undefined) return '—';
  const busy = (f.maxBusyStallMs !== undefined ? `; longest busy ${num(f.maxBusyStallMs)} ms` : '') +
    (f.maxGcPauseMs !== undefined ? `; longest GC pause ${num(f.maxGcPauseMs)} ms` : '') +
    (f.bystanderMaxStallMs !== undefined ? `; timer bystander ${num(f.bystanderMaxStallMs)} ms` : '');
  return f.maxStallCpuMs !== undefined ? `${num(f.maxStallMs)} ms (${num(f.maxStallCpuMs)} ms CPU${busy})` : `${num(f.maxStallMs)} ms`;
}

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
 * Files checked in beside a results file, same date: an instrumented run of the same scenarios
 * (gateway-parts-<date>.json, JITGUARD_BENCH_PARTS=1) and the verification's parts and their
 * alternatives (gateway-verify-<date>.json, from bench/gateway/verify-alternatives.ts, optimised
 * and interpreter-only). The texts below say which figure comes from which.
 */
export interface Companions {
  parts?: { run: BenchResults; link: string };
  /** bench/gateway/verify-spaced.ts in the VM: a lone verification against one in a row. */
  spaced?: { loneUnwrapMs: number; inRowUnwrapMs: number; stepsMs: Array<{ step: string; lone: number; inRow: number }>; link: string };
}

/** ", at commit X (this run is at Y)" when the instrumented run measured other code than this run. */
function partsCommit(c: Companions, results: BenchResults): string {
  const theirs = c.parts?.run.environment?.jitguardCommit;
  const ours = results.environment?.jitguardCommit;
  return theirs && theirs !== ours ? `, at commit ${theirs} (this run: ${ours ?? '?'})` : '';
}

function partsOf(c: Companions, id: string): Record<string, Part> | undefined {
  const m = c.parts ? measurement(c.parts.run, id) : undefined;
  return m?.parts?.[m.parts.length - 1]?.parts;
}

function partsTable(parts: Record<string, Part>): string[] {
  const rows = Object.entries(parts).sort((a, b) => b[1].totalMs - a[1].totalMs).slice(0, 12);
  return [
    '| part | calls | total | mean | longest |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(([name, p]) => `| ${cell(name)} | ${num(p.calls)} | ${ms(p.totalMs / 1000)} | ${ms(p.totalMs / p.calls / 1000)} | ${ms(p.maxMs / 1000)} |`),
  ];
}

/** Seconds: a part's mean, total or longest call (undefined when not measured). */
const partMean = (p: Record<string, Part> | undefined, name: string) => (p?.[name] ? p[name]!.totalMs / p[name]!.calls / 1000 : undefined);
const partTotal = (p: Record<string, Part> | undefined, name: string) => (p?.[name] ? p[name]!.totalMs / 1000 : undefined);
const partMax = (p: Record<string, Part> | undefined, name: string) => (p?.[name] ? p[name]!.maxMs / 1000 : undefined);
const partCalls = (p: Record<string, Part> | undefined, name: string) => num(p?.[name]?.calls);
const us = (v: number | undefined) => (v === undefined ? '—' : ms(v / 1e6));

const VERIFY = 'verify: one packet on the event loop (sync)';
const BATCH = 'capture: one batch, listeners included (sync)';

/**
 * Where the time goes for each goal this run missed, and what would close it. Figures come from
 * this run's results and, where the text says so, from the companion files (same VM image, run
 * separately: instrumentation is not free). Shown only for goals the results mark missed.
 */
export const CLOSING: Record<string, (results: BenchResults, c: Companions) => string> = {
  jit(results, c) {
    const size = measurement(results, 'jit-latency')?.sizes[0];
    const jit = row(size, 'jitguard');
    const pre = row(size, 'kernel');
    const cjit = row(size, 'c-jit');
    const floorRow = row(size, 'c-floor');
    const floor = floorRow?.figures?.jitFloorSeconds;
    const knock = jit?.figures?.knockToInstallP50Seconds;
    const p = partsOf(c, 'jit-latency');
    const sp = c.spaced;
    const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b ? `${(a / b).toFixed(2)}×` : '—');
    const steps = sp ? sp.stepsMs.filter((x) => !x.step.includes('node:crypto')).sort((a, b) => b.lone - a.lone).slice(0, 3).map((s) => `${s.step} ${ms(s.lone / 1000)} (${ms(s.inRow / 1000)} in a row)`).join(', ') : '';
    return (
      `No JIT gateway meets this goal in this VM. The C JIT of the same run — it verifies nothing, looks nothing up, and sends its C install the moment the initiation reaches its AF_PACKET socket — got its first reply at p50 ${ms(cjit?.seconds)}, ${ratio(cjit?.seconds, pre?.seconds)} the pre-installed ${ms(pre?.seconds)}: the role reversal alone (the kernel initiates back, and the client may send only after the keepalive that confirms its session as responder: one more message each way and four more X25519 than the push model's one response, plus the capture wake-up and the install) costs more than the goal's 50%. With the two X25519 any verification needs, the floor is ${ms(floor)} (${ratio(floor, pre?.seconds)}, the row above). ` +
      `jitguard's p50 is ${ratio(jit?.seconds, cjit?.seconds)} the C JIT's; its knock → install p50 is ${ms(knock)} against ${ms(floorRow?.seconds)} for the C install alone, so the difference is the gateway's own knock path. ` +
      (sp ? `In this VM that path runs cold: bench/gateway/verify-spaced.ts ([${sp.link}](${sp.link})) measured one \`Responder.unwrap\` every 300 ms at ${ms(sp.loneUnwrapMs / 1000)} against ${ms(sp.inRowUnwrapMs / 1000)} back to back (${(sp.loneUnwrapMs / sp.inRowUnwrapMs).toFixed(1)}×), spread over every step rather than in one (largest: ${steps}): each native call's first touch of its pages after other work goes through QEMU's software TLB. ` : '') +
      (p ? `In the instrumented run a knock's verification took ${ms(partMean(p, 'verify: submitted → result (threads or event-loop slices)'))} on average, its install flush ${ms(partMean(p, 'install: one flush (setDevice and retries)'))} (\`setDevice\` ${ms(partMean(p, 'kernel: setDevice'))} over all sets, settles included), the capture wake-up ${ms(partMean(p, BATCH))}. ` : '') +
      'What would close the rest: a leaner one-peer install (issue 11: the single install against the C floor), and fewer native calls per verification; natively a lone verification is ~0.6 ms and the C floor ~0.1 ms, where the whole gap is a few milliseconds.'
    );
  },
  burst(results, c) {
    const size = measurement(results, 'burst')?.sizes[0];
    const b = row(size, 'jitguard');
    const floor = row(size, 'kernel');
    const f = b?.figures ?? {};
    const n = size?.n ?? 0;
    const p = partsOf(c, 'burst');
    const sp = c.spaced;
    const dh = row(measurement(results, 'jit-latency')?.sizes[0], 'c-floor')?.figures?.x25519Seconds;
    const perClient = f.gatewayCpuSeconds !== undefined && n ? f.gatewayCpuSeconds / n : undefined;
    return (
      `All ${formatN(n)} initiations were captured by ${ms(f.lastArrivalSeconds)} after the first was sent, with no drops; the first install returned at ${ms(f.firstInstallSeconds)}, the last at ${ms(b?.seconds)}, in ${num(f.installNetlinkCalls)} \`setDevice\` calls. ` +
      `The run is CPU-bound: the gateway process used ${ms(f.gatewayCpuSeconds)} of CPU (${ms(perClient)} a client), the whole VM ${ms(f.machineBusySeconds)} of the ${ms((f.machineBusySeconds ?? NaN) + (f.machineIdleSeconds ?? NaN))} its 2 vCPUs had. ` +
      `On 2 CPUs the gateway verifies on the event loop (\`verify.threads\` defaults to 0 there), in slices of 5 ms: ${sp ? `a verification costs ${ms(sp.inRowUnwrapMs / 1000)} back to back in this VM (bench/gateway/verify-spaced.ts), ` : ''}${dh !== undefined ? `of which the two X25519 are ${ms(2 * dh)}, ` : ''}and each also reads and writes the store (replay state) and queues an install, while the kernel creates each peer and initiates to it on the same 2 vCPUs. ` +
      (p ? `In the instrumented run: verification ${ms(partTotal(p, VERIFY))} for ${partCalls(p, VERIFY)} packets (${ms(partMean(p, VERIFY))} each: verifications interleaved with other work run colder than back to back), settle ${partCalls(p, 'settle: one round')} rounds (${ms(partTotal(p, 'settle: one round'))}), ${partCalls(p, 'kernel: getDevice')} dumps (${ms(partTotal(p, 'kernel: getDevice'))}), \`setDevice\` ${ms(partTotal(p, 'kernel: setDevice'))} over ${partCalls(p, 'kernel: setDevice')} calls. ` : '') +
      `The floor loads ${formatN(n)} peers in one process with one DH each; no JIT gateway here can do less than that plus two X25519 a client in user space and the kernel's initiation to each peer. ` +
      `What would close the gap to that: verification that costs its two DH and little else (${sp && dh !== undefined ? `here the rest of a back-to-back verification is ${((sp.inRowUnwrapMs / 1000 - 2 * dh) / (2 * dh)).toFixed(1)}× the DH` : 'in this VM the rest of a verification costs more than the DH'}, and interleaved with the rest of the pipeline it runs colder still), verification on more cores where there are more than two, and no settle dump while a burst is being verified.`
    );
  },
  'switchover-client'(results, c) {
    const size = measurement(results, 'switchover')?.sizes[0];
    const s = size?.rows.find((r) => r.impl === 'jitguard')?.figures ?? {};
    const p = partsOf(c, 'switchover');
    return (
      `start() took ${ms(s.startToReadySeconds)} on the interface of ${formatN(size?.n ?? 0)} peers (one dump, decoded and reconciled in slices), the first client got its first reply ${ms(s.client1FirstReplySeconds)} after connecting at ready and the second ${ms(s.client2FirstReplySeconds)} during the removal, which ran from ${ms(s.firstEvictionSeconds)} to ${ms(s.lastEvictionSeconds)}` +
      (p ? ` (${partCalls(p, 'kernel: removePeers')} removePeers calls, ${ms(partMean(p, 'kernel: removePeers'))} each on average: the kernel's synchronize_net() per peer)` : '') + '.'
    );
  },
  stall(results, c) {
    const stalls = scenarioStalls(results);
    const worst = stalls.map((s) => `${s.id} ${num(s.worst)} ms${busyAndGc(s)}`).join(', ');
    const p = partsOf(c, 'jit-latency');
    const floors = stalls.filter((s) => s.floor !== undefined);
    const unreachable = floors.filter((s) => s.floor! > STALL_LIMIT_MS);
    const reachable = floors.filter((s) => s.floor! <= STALL_LIMIT_MS);
    const floorText = floors.length
      ? `The timer bystander (bench/gateway/timer-bystander.c: a C process waiting on the same 10 ms timer beside the gateway, doing nothing else) saw over the same windows ${floors.map((s) => `${s.id} ${num(s.floor)} ms`).join(', ')}: ` +
        (unreachable.length ? `in ${unreachable.map((s) => s.id).join(', ')} the VM itself held every process longer than ${STALL_LIMIT_MS} ms (no gateway can meet the goal there in this VM); ` : '') +
        (reachable.length ? `in ${reachable.map((s) => s.id).join(', ')} it did not, so there the gateway's own work is what is over the goal. ` : '. ')
      : '';
    return (
      floorText +
      `Longest stalls: ${worst}; "busy" is the longest stall in which the gateway process itself was on CPU for at least half the gap (every thread counted), the rest being the VM running the bench's orchestration, the clients and the kernel on its 2 vCPUs instead; "GC" is the longest garbage-collection pause of the gateway's event-loop thread in the same scenario (perf_hooks 'gc' entries): V8 scavenging or compacting the process's heap of about 10 MB, which under TCG takes tens of milliseconds whatever the gateway's code does. ` +
      (p ? `The longest synchronous parts in the instrumented JIT run were the capture wake-up (${ms(partMax(p, BATCH))}) and one verification (${ms(partMax(p, VERIFY))}). ` : '') +
      'What the instrumented runs show (JITGUARD_BENCH_PARTS=1: the gateway process logs the timed parts and the collections inside its longest stall and its longest busy stall): collections of 40–80 ms (a scavenge while a burst\'s initiations are in flight, a mark-compact finalising incremental marking) inside the longest busy stalls of the JIT, burst and switchover runs; single cold steps of start() (the capture\'s first open, 23–30 ms; the first slices of a dump, in which a CPU profile shows V8 compiling code that has not run before); and gaps with no timed part and little CPU, in which the VM ran the kernel, the clients or the orchestration. ' +
      'Fixed on 2026-12-03, from those runs: warm-ups of the knock path (rate limit, replay, lookup, pipeline and metrics on throwaway instances; a fresh gateway\'s first knock held the loop 22–31 ms before its verification was queued) and of the capture\'s frame decoding (42–55 ms for the first packet of a wake-up), netlink replies handed to JavaScript without a copy (allocating, copying and wiping a 10^5-peer dump\'s ~17 MB in one turn was ~80 ms of the switchover\'s start-up stall) and looked through in slices (one pass over its thousands of messages held the loop ~50 ms), the start-up reconciliation\'s store reads ramped from 8 keys (the first 64 took 42 ms cold), the capture filter built in a turn of its own before the open, and capture deliveries and verification slices that give the loop back after 8 ms; the 2026-12-02 run\'s stalls were burst 339 ms, switchover 236 ms, JIT 120 ms. ' +
      'What would close the rest: fewer objects alive per initiation in flight (the packet is copied by the capture and again by the verifier; each knock holds a promise chain), so that a burst promotes less and collects less often; one event-loop budget shared by every sliced producer of an iteration (verification, decoding, warm-ups each keep their own); and start-up steps split further.'
    );
  },
};

export function renderSection(results: BenchResults, svgLink: string, resultsLink: string, c: Companions = {}): string {
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
    const sources = [
      c.parts ? `an instrumented run of the same scenarios ([${c.parts.link}](${c.parts.link}), \`JITGUARD_BENCH_PARTS=1\`${partsCommit(c, results)}; its parts are shown under each scenario below)` : '',
      c.spaced ? `a verification alone against one back to back, step by step ([${c.spaced.link}](${c.spaced.link}), bench/gateway/verify-spaced.ts)` : '',
    ].filter(Boolean);
    if (sources.length) lines.push(`Besides this run's figures, the texts use ${sources.join(' and ')}, each measured in the same VM image in a separate run.`, '');
    for (const g of missed) lines.push(`- **${g.text}** — ${CLOSING[g.id]!(results, c)}`);
    lines.push('');
  }
  lines.push('### Plot', '', `![switchover: kernel peers against time; burst: peers in the kernel against time; first-reply samples](${svgLink})`, '');
  let k = 1;
  for (const m of results.measurements as GatewayMeasurementResult[]) {
    lines.push(`### ${String.fromCharCode(96 + k++)}) ${m.title}`, '', `Primary figure: ${m.figure}.`, '');
    for (const note of m.notes) lines.push(`- ${note}`);
    lines.push('', ...scenarioTable(results, m), '');
    const p = partsOf(c, m.id);
    if (p) {
      lines.push(`Where the gateway process's time went in the instrumented run (synchronous parts are event-loop time; asynchronous ones run from call to settlement and overlap):`, '');
      lines.push(...partsTable(p), '');
    }
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
      title: `Burst of ${formatN(burst.n)} initiations (run ${String(burst.context?.plottedRun ?? 1)} of ${String(row(burst, 'jitguard')?.figures?.runs ?? 1)})`,
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
        ...(jit.series['c-jit'] ? [{ label: 'C JIT, unauthenticated', color: COLORS.floor!, points: jit.series['c-jit'].map((p) => ({ x: p.t, y: p.value })) }] : []),
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
  const section = renderSection(results, relative(dirname(markdownPath), svgPath), relative(dirname(markdownPath), resultsFile), companions(resultsFile, dirname(markdownPath)));
  writeFileSync(markdownPath, withSection(existing, 'gateway', section));
  return { markdown: markdownPath, svg: svgPath };
}

/** The companion files checked in beside `resultsFile` (same date), linked relative to `from`. */
function companions(resultsFile: string, from: string): Companions {
  const beside = (kind: string) => join(dirname(resultsFile), basename(resultsFile).replace(/^gateway-(smoke-)?/, `gateway-${kind}-`));
  const c: Companions = {};
  const parts = beside('parts');
  if (existsSync(parts) && parts !== resultsFile) c.parts = { run: JSON.parse(readFileSync(parts, 'utf8')) as BenchResults, link: relative(from, parts) };
  const spaced = beside('verify-spaced');
  if (existsSync(spaced)) c.spaced = { ...(JSON.parse(readFileSync(spaced, 'utf8')) as Omit<NonNullable<Companions['spaced']>, 'link'>), link: relative(from, spaced) };
  return c;
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
