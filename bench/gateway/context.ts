/**
 * What every gateway scenario gets from the runner: the configuration (sizes per mode), how to
 * start the gateway and the synthetic initiator in their namespaces, the kernel's bulk-load
 * figures measured so far in this run, and the results types (bench/netlink's format, plus
 * time series for the plots).
 */
import type { MeasurementResult, SizeResult } from '../netlink/common.js';
import { readFileSync, rmSync } from 'node:fs';
import { INTERFACE, scratchPath } from '../netlink/common.js';
import type { BystanderWindow } from './bystander.js';
import type { OpenParams } from './gateway-process.js';
import { ChildRpc } from './rpc.js';
import { GATEWAY_LINK, type Topology } from './topology.js';

export interface GatewayBenchConfig {
  mode: 'smoke' | 'default' | 'custom';
  /** (a) first-reply samples per variant, and untimed warm-up samples before them. */
  jitSamples: number;
  jitWarmup: number;
  /** (b) initiations per burst, bursts, and `wg addconf` floor repeats. */
  burstSize: number;
  burstRepeats: number;
  floorRepeats: number;
  /** (c) packets per flood and source addresses they come from. */
  floodPackets: number;
  floodSources: number;
  /** (c) A flood is over after this long without a new initiation; also the pause between floods. */
  floodQuietMs: number;
  /** (d) idle peers on the interface at switchover. */
  switchoverPeers: number;
  /** (e) peers in the store at reboot, and start-ups per size. */
  rebootSizes: number[];
  rebootRepeats: number;
}

export interface Point {
  /** Seconds from the scenario's zero. */
  t: number;
  value: number;
}

/** A SizeResult with the time series a plot draws. */
export interface GatewaySizeResult extends SizeResult {
  series?: Record<string, Point[]>;
}

export interface Part {
  calls: number;
  totalMs: number;
  maxMs: number;
  /** Which call (1 = the first since the mark) was the longest: the first ones run cold. */
  maxCall?: number;
}

export interface GatewayMeasurementResult extends MeasurementResult {
  sizes: GatewaySizeResult[];
  /** With JITGUARD_BENCH_PARTS=1: each gateway process's parts (bench/gateway/parts.ts), since its last mark. */
  parts?: Array<{ label: string; parts: Record<string, Part> }>;
}

export interface GatewayRunContext {
  config: GatewayBenchConfig;
  log(message: string): void;
  /** A measurement of jitguard broke: the run exits non-zero. */
  fail(message: string): void;
  /** `wg addconf` wall time of N peers onto an interface with a private key, measured in this run. */
  bulkLoadSeconds: Map<number, number>;
  startGateway(t: Topology, params: Omit<OpenParams, 'interface' | 'captureInterface'>): Promise<ChildRpc>;
  startInitiator(t: Topology): Promise<ChildRpc>;
  /** Stops a gateway started with startGateway (its parts, when measured, go into the results). */
  stopGateway(rpc: ChildRpc | undefined, label: string): Promise<void>;
  /**
   * The stall floor over a gateway's stall windows: what bench/gateway/timer-bystander.c, waiting
   * on the same timer in a process that does nothing else, saw over the same times (undefined
   * when it was not built).
   */
  bystander(...windows: Array<{ fromAt: number; toAt: number }>): BystanderWindow | undefined;
}

export interface GatewayMeasurement {
  id: string;
  title: string;
  figure: string;
  notes: string[];
  run(ctx: GatewayRunContext): Promise<GatewaySizeResult[]>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
export const unixNow = () => performance.timeOrigin + performance.now();

/**
 * The machine's CPU time so far (all CPUs, /proc/stat, seconds): busy (user, nice, system, irq,
 * softirq, steal) and idle (idle, iowait). The difference of two readings says how much of the
 * VM's CPU a phase used, the kernel's share (softirq, workqueues) included.
 */
export function machineCpu(): { busy: number; idle: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = fields as [number, number, number, number, number, number, number, number];
  return { busy: (user + nice + system + irq + softirq + (steal ?? 0)) / 100, idle: (idle + iowait) / 100 };
}

/** A path in the scratch space for a new SqliteStore (any earlier file of that name, and its WAL, removed). */
export function freshStorePath(name: string): string {
  const path = scratchPath(`${name}-${process.pid}.sqlite`);
  for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  return path;
}

/** How the runner starts its children (a bundle each, or tsx). */
export interface ChildCommands {
  gateway: string[];
  initiator: string[];
}

/**
 * Starts the gateway process in the topology's gateway namespace and opens its `Gateway`
 * (wg0, the capture on the veth). JITGUARD_BENCH_PROFILE=DIR runs it under `--cpu-prof`;
 * JITGUARD_BENCH_GATEWAY_NODE_FLAGS adds node flags (space-separated).
 */
export async function startGatewayProcess(commands: ChildCommands, t: Topology, params: Omit<OpenParams, 'interface' | 'captureInterface'>): Promise<ChildRpc> {
  const profileDir = process.env.JITGUARD_BENCH_PROFILE;
  // An experiment knob: more node flags for the gateway process only (e.g. --trace-gc).
  const extraFlags = (process.env.JITGUARD_BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const [node, ...rest] = commands.gateway;
  const command = [node!, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...extraFlags, ...rest];
  const rpc = new ChildRpc('gateway', t.gatewayNs, command);
  try {
    await rpc.call('open', { ...params, interface: INTERFACE, captureInterface: GATEWAY_LINK } satisfies OpenParams, 120_000);
  } catch (error) {
    await rpc.close(5000);
    throw error;
  }
  return rpc;
}

/**
 * Stops the gateway and closes its process. With JITGUARD_BENCH_PARTS=1 the parts it measured
 * since its last `mark` are logged and returned (the runner puts them into the results).
 */
export async function stopGatewayProcess(rpc: ChildRpc | undefined, label: string, log: (m: string) => void): Promise<Record<string, Part> | undefined> {
  if (!rpc) return undefined;
  let parts: Record<string, Part> | undefined;
  try {
    const stopped = await rpc.call<{ parts?: Record<string, Part> }>('stop', {}, 600_000);
    if (stopped.parts && Object.keys(stopped.parts).length) {
      parts = stopped.parts;
      const lines = Object.entries(stopped.parts)
        .sort((a, b) => b[1].totalMs - a[1].totalMs)
        .map(([k, p]) => `    ${k}: ${p.calls} calls, ${p.totalMs.toFixed(0)} ms total, ${(p.totalMs / p.calls).toFixed(2)} ms mean, ${p.maxMs.toFixed(0)} ms max${p.maxCall ? ` (call ${p.maxCall})` : ''}`);
      log(`parts of ${label}:\n${lines.join('\n')}`);
    }
  } catch {
    /* the process may be gone already; close() reaps it */
  }
  await rpc.close();
  return parts;
}

export function startInitiatorProcess(commands: ChildCommands, t: Topology): ChildRpc {
  return new ChildRpc('initiator', t.clientNs, commands.initiator);
}
