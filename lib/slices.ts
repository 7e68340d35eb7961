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

/** Slices at the start of a loop in which the clock is read after every item (see `due`). */
const CAREFUL_SLICES = 4;

export class SliceClock {
  private deadline: number;
  private sinceCheck = 0;
  /** Pauses taken, for tests and measurements. */
  pauses = 0;

  /**
   * `sliceMs`: Infinity never pauses (a synchronous caller), and never reads the clock: where
   * the clock is HPET (the TCG test VM) each read is a system call, several per small SET.
   */
  constructor(readonly sliceMs: number = DEFAULT_SLICE_MS) {
    this.deadline = sliceMs === Infinity ? Infinity : performance.now() + sliceMs;
  }

  /**
   * Whether the slice's time is up (call it once per item). The clock is read every few items,
   * except in the first few slices, where it is read after every item: the first items a
   * process decodes run cold, ~3 ms each in the TCG test VM (the very first tens of ms), and 16
   * of them held the event loop for 50 ms (bench/gateway reboot profile, 2026-12-02).
   */
  due(): boolean {
    if (this.deadline === Infinity) return false;
    if (++this.sinceCheck < CHECK_EVERY && this.pauses >= CAREFUL_SLICES) return false;
    this.sinceCheck = 0;
    return performance.now() >= this.deadline;
  }

  /** Starts a new slice now (the caller has just let the event loop run some other way). */
  restart(): void {
    if (this.sliceMs === Infinity) return;
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

/**
 * Resolves in the event loop's next iteration, after its timers. Not `setImmediate`: queued
 * from an I/O callback (a netlink reply), an immediate runs in the same iteration's check phase,
 * so the two pieces of work would hold timers back as one.
 */
export function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, 0));
}

/** Size of the first batch of `rampedBatches`. */
export const FIRST_BATCH = 16;

/**
 * `[start, end)` ranges over `total` items in batches that start at `first` and double up to
 * `max`, as TCP's slow start does. Why: validating and encoding a batch runs on the event loop,
 * and the first few batches of a process (or after V8 dropped the code of a rarely used path)
 * run cold, 10–30× slower than hot (the gateway's first removal of 200 peers held the event loop
 * for 70 ms in the TCG test VM, bench/gateway switchover profile, 2026-12-02). Small first
 * batches keep those turns short; by the fifth the code is hot and the batch is full size. A few
 * more netlink calls per sequence cost little: the kernel's work is per peer.
 */
export function* rampedBatches(total: number, max: number, first = FIRST_BATCH): Generator<[number, number], void, void> {
  let size = Math.max(1, Math.min(first, max));
  for (let start = 0; start < total; start += size, size = Math.min(max, size * 2)) {
    yield [start, Math.min(total, start + size)];
  }
}
