/**
 * The event loop's longest stall during one operation, as a user of the library would measure
 * it: a 10 ms interval timer whose lateness (time between ticks minus the period) is the stall.
 * The gap running when the probe stops counts too, so an operation that never yields shows
 * its whole length.
 */
const PERIOD_MS = 10;

export interface StallProbe {
  /** Stops the timer; the longest lateness seen, ms. */
  stop(): number;
}

export function startStallProbe(): StallProbe {
  let last = performance.now();
  let longest = 0;
  const close = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last - PERIOD_MS);
    last = now;
  };
  const timer = setInterval(close, PERIOD_MS);
  return {
    stop() {
      clearInterval(timer);
      close();
      return Math.max(0, longest);
    },
  };
}
