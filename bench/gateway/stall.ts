/**
 * The event loop's longest stall, as a gateway's own timers would feel it: a 10 ms interval
 * timer whose lateness (time between ticks minus the period) is the stall. Inside the gateway
 * process only; the bench's orchestration runs elsewhere so it cannot cause or hide a stall.
 */
export const STALL_PERIOD_MS = 10;

export interface StallWindow {
  /** Longest lateness of one tick in the window, ms. */
  maxStallMs: number;
  /** Ticks over 50 ms late (the goal's threshold). */
  stallsOver50Ms: number;
  ticks: number;
  /** When the longest stall ended, Unix ms (to place it on a timeline). */
  maxStallAt: number;
}

export class StallProbe {
  private timer: NodeJS.Timeout | null = null;
  private last = 0;
  private window: StallWindow = emptyWindow();

  start(): void {
    if (this.timer) return;
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.last - STALL_PERIOD_MS;
      this.last = now;
      const w = this.window;
      w.ticks++;
      if (late > 50) w.stallsOver50Ms++;
      if (late > w.maxStallMs) {
        w.maxStallMs = late;
        w.maxStallAt = performance.timeOrigin + now;
      }
    }, STALL_PERIOD_MS);
  }

  /** The window since the last `take` (or start), and a new window from now. */
  take(): StallWindow {
    const w = this.window;
    this.window = emptyWindow();
    return w;
  }

  /** The current window without resetting it. */
  peek(): StallWindow {
    return { ...this.window };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function emptyWindow(): StallWindow {
  return { maxStallMs: 0, stallsOver50Ms: 0, ticks: 0, maxStallAt: 0 };
}
