/**
 * The stall floor of each scenario: bench/gateway/timer-bystander.c waits on the same 10 ms
 * timer as the gateway's stall probe, for the whole run, in a process that does nothing else.
 * Its longest lateness over a gateway's stall window is what the machine imposed on any
 * process then (vCPUs not running under TCG, the guest kernel's work, the other processes'
 * share), so no gateway process can show a shorter longest stall over that window. It runs
 * outside the gateway process so that it costs the gateway nothing but its tiny CPU share, and
 * its report lines are read by the runner, not by the gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileExists, TIMER_BYSTANDER } from '../netlink/common.js';
import { STALL_PERIOD_MS } from './stall.js';

/** Ticks later than this are reported (the floor of a window with none is "under 1 ms"). */
const REPORT_OVER_MS = 1;

interface LateTick {
  /** Unix ms when the late tick ran (the end of its gap). */
  at: number;
  lateMs: number;
}

export interface BystanderWindow {
  /** Longest lateness of one of the bystander's ticks whose gap lies in the window, ms. */
  maxStallMs: number;
  /** Its ticks over 50 ms late in the window. */
  stallsOver50Ms: number;
}

export class TimerBystander {
  private readonly late: LateTick[] = [];
  private pending = '';

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => this.read(chunk));
    child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[timer-bystander] ${chunk.toString()}`));
  }

  /** Starts it, or returns null when the binary was not built (bench/run.sh builds it). */
  static start(): TimerBystander | null {
    if (!fileExists(TIMER_BYSTANDER)) return null;
    return new TimerBystander(spawn(TIMER_BYSTANDER, [String(STALL_PERIOD_MS), String(REPORT_OVER_MS)], { stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /**
   * What it saw over the windows given ([fromAt, toAt], Unix ms: gateway StallWindows' bounds):
   * a tick counts when its gap ended inside one, as the gateway's probe counts its own.
   */
  over(...windows: Array<{ fromAt: number; toAt: number }>): BystanderWindow {
    let maxStallMs = 0;
    let stallsOver50Ms = 0;
    for (const tick of this.late) {
      if (!windows.some((w) => tick.at >= w.fromAt && tick.at <= w.toAt)) continue;
      if (tick.lateMs > maxStallMs) maxStallMs = tick.lateMs;
      if (tick.lateMs > 50) stallsOver50Ms++;
    }
    return { maxStallMs, stallsOver50Ms };
  }

  stop(): void {
    this.child.stdin!.end();
    this.child.kill();
  }

  private read(chunk: string): void {
    const lines = (this.pending + chunk).split('\n');
    this.pending = lines.pop()!;
    for (const line of lines) {
      // "<unix ms> <late ms> <CPU ms>": the CPU figure is for reading the raw output by hand.
      const [at, lateMs] = line.split(' ').map(Number);
      if (Number.isFinite(at) && Number.isFinite(lateMs)) this.late.push({ at: at!, lateMs: lateMs! });
    }
  }
}

/** The figure a scenario records: the bystander's longest stall over its windows, when it ran. */
export function floorFigure(window: BystanderWindow | undefined): { bystanderMaxStallMs?: number } {
  return window ? { bystanderMaxStallMs: window.maxStallMs } : {};
}
