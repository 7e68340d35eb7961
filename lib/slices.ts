/**
 * Long loops in slices. A dump of 10^5 peers decoded in one pass, or a scan over 10^5 table
 * entries, holds the event loop for seconds under emulation (hundreds of milliseconds natively):
 * capture wake-ups, timers and netlink replies wait behind it. Such a loop asks its
 * `SliceClock` after each item whether its few milliseconds are up, and if so lets the event
 * loop run before it goes on.
 */

/** Milliseconds of work between two turns of the event loop, by default. */
export const DEFAULT_SLICE_MS = 8;

/** Items between two looks at the clock: a look costs about as much as a cheap item. */
const CHECK_EVERY = 16;

export class SliceClock {
  private deadline: number;
  private sinceCheck = 0;
  /** Pauses taken, for tests and measurements. */
  pauses = 0;

  /** `sliceMs`: Infinity never pauses (a synchronous caller). */
  constructor(readonly sliceMs: number = DEFAULT_SLICE_MS) {
    this.deadline = performance.now() + sliceMs;
  }

  /** Whether the slice's time is up (looked at every few calls, so call it once per item). */
  due(): boolean {
    if (++this.sinceCheck < CHECK_EVERY) return false;
    this.sinceCheck = 0;
    return performance.now() >= this.deadline;
  }

  /** Starts a new slice now (the caller has just let the event loop run some other way). */
  restart(): void {
    this.deadline = performance.now() + this.sliceMs;
    this.sinceCheck = 0;
  }

  /**
   * Lets the event loop run, then starts the next slice. `setImmediate` rather than a resolved
   * promise: microtasks would run before any I/O, so nothing else would get its turn.
   */
  async pause(): Promise<void> {
    this.pauses++;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.restart();
  }
}

/**
 * Runs a generator that yields whenever its clock is `due()`, pausing at each yield; resolves
 * with what it returns. The first slice runs before this returns, so small work finishes with
 * no pause at all.
 */
export async function runInSlices<T>(steps: Generator<void, T, void>, clock: SliceClock): Promise<T> {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await clock.pause();
  }
}

/** Runs such a generator to its end at once (the synchronous API of the same decoder). */
export function runAtOnce<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}
