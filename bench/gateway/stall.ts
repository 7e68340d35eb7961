/**
 * The event loop's longest stall, as a gateway's own timers would feel it: a 10 ms interval
 * timer whose lateness (time between ticks minus the period) is the stall. Inside the gateway
 * process only; the bench's orchestration runs elsewhere so it cannot cause or hide a stall.
 */
import { PerformanceObserver } from 'node:perf_hooks';
export const STALL_PERIOD_MS = 10;

export interface StallWindow {
  /** Longest lateness of one tick in the window, ms. */
  maxStallMs: number;
  /** Ticks over 50 ms late (the goal's threshold). */
  stallsOver50Ms: number;
  ticks: number;
  /** When the longest stall ended, Unix ms (to place it on a timeline). */
  maxStallAt: number;
  /**
   * CPU time this process (every thread: the event loop, V8's GC and compiler threads, the
   * addon's) used during the longest stall, ms. Near the stall: the process's own work. Far
   * below it: the process was waiting for a vCPU (the VM's other processes, the kernel) and the
   * event loop itself was not busy.
   */
  maxStallCpuMs: number;
  /**
   * Longest lateness of a tick whose gap the process spent mostly on CPU (at least half of it,
   * every thread counted): the stalls the gateway's own work caused, without those in which the
   * VM ran something else (the bench's orchestration, the kernel, the clients) instead of it.
   */
  maxBusyStallMs: number;
  /** When the longest busy stall ended, Unix ms. */
  maxBusyStallAt?: number;
  /**
   * Longest garbage-collection pause of the event loop's thread in the window, ms (perf_hooks
   * 'gc' entries: scavenges, mark-compacts, incremental-marking steps, weak callbacks). A stall
   * at least this long happened whatever the gateway's own code did.
   */
  maxGcPauseMs: number;
  /** The window's bounds, Unix ms (to look up what the timer bystander saw over the same time). */
  fromAt: number;
  toAt: number;
}

export class StallProbe {
  private timer: NodeJS.Timeout | null = null;
  private gcObserver: PerformanceObserver | null = null;
  private last = 0;
  private lastCpuMs = 0;
  private window: StallWindow = emptyWindow();

  start(): void {
    if (this.timer) return;
    this.last = performance.now();
    this.lastCpuMs = processCpuMs();
    this.window = emptyWindow();
    this.timer = setInterval(() => {
      this.close(true);
    }, STALL_PERIOD_MS);
    this.gcObserver = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (e.duration > this.window.maxGcPauseMs) this.window.maxGcPauseMs = e.duration;
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
  }

  /**
   * The window since the last `take` (or start), and a new window from now. The gap running at
   * the call is closed into the window returned, so a stall before `take` (a synchronous call
   * the orchestrator made just before) never shows up in the next window.
   */
  take(): StallWindow {
    if (this.timer) this.close(false);
    const w = this.window;
    w.toAt = unixNow();
    this.window = emptyWindow();
    return w;
  }

  /** The current window without resetting it. */
  peek(): StallWindow {
    return { ...this.window, toAt: unixNow() };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.gcObserver?.disconnect();
    this.gcObserver = null;
  }

  /**
   * Ends the gap running now, at a tick or at a `take`; its lateness is its length minus the
   * period either way (the tick after a `take` measures from the `take`, so it may read up to one
   * period low).
   */
  private close(tick: boolean): void {
    const now = performance.now();
    const cpu = processCpuMs();
    const late = now - this.last - STALL_PERIOD_MS;
    const w = this.window;
    if (tick) w.ticks++;
    if (late > 50) w.stallsOver50Ms++;
    const cpuInGap = cpu - this.lastCpuMs;
    if (late > w.maxStallMs) {
      w.maxStallMs = late;
      w.maxStallAt = performance.timeOrigin + now;
      w.maxStallCpuMs = cpuInGap;
    }
    if (late > w.maxBusyStallMs && cpuInGap >= 0.5 * (now - this.last)) {
      w.maxBusyStallMs = late;
      w.maxBusyStallAt = performance.timeOrigin + now;
    }
    this.last = now;
    this.lastCpuMs = cpu;
  }
}

/**
 * The window holding the longest stall of those given (its CPU figure goes with it), with the
 * longest busy stall and GC pause of them all; its bounds are the hull of theirs (time between
 * them included, so give the bystander the windows themselves).
 */
export function longestStall(...windows: StallWindow[]): StallWindow {
  // No window: a neutral seed to fold later windows into, covering no time.
  if (windows.length === 0) return { ...emptyWindow(), fromAt: Infinity, toAt: -Infinity };
  const longest = windows.reduce((a, w) => (w.maxStallMs > a.maxStallMs ? w : a), emptyWindow());
  return {
    ...longest,
    maxBusyStallMs: Math.max(0, ...windows.map((w) => w.maxBusyStallMs ?? 0)),
    maxGcPauseMs: Math.max(0, ...windows.map((w) => w.maxGcPauseMs ?? 0)),
    fromAt: Math.min(...windows.map((w) => w.fromAt)),
    toAt: Math.max(...windows.map((w) => w.toAt)),
  };
}

function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

const unixNow = () => performance.timeOrigin + performance.now();

function emptyWindow(): StallWindow {
  const now = unixNow();
  return { maxStallMs: 0, stallsOver50Ms: 0, ticks: 0, maxStallAt: 0, maxStallCpuMs: 0, maxBusyStallMs: 0, maxGcPauseMs: 0, fromAt: now, toAt: now };
}
