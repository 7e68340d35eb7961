/**
 * Counts the event loop's turns (a setImmediate chain) while some work runs, and the longest
 * gap between two of them. Tests pin the count: a slicing decode gives the loop many turns, a
 * synchronous pass none. The gap is only a diagnostic: wall-clock bounds belong in bench/,
 * where the machine's load is known.
 */
export interface TurnProbe {
  /** Turns so far. */
  readonly turns: number;
  /** The longest gap between two turns so far, ms. */
  readonly longestGapMs: number;
  stop(): void;
}

export function probeTurns(): TurnProbe {
  let turns = 0;
  let longest = 0;
  let last = performance.now();
  let probing = true;
  const probe = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    turns++;
    if (probing) setImmediate(probe);
  };
  setImmediate(probe);
  return {
    get turns() { return turns; },
    get longestGapMs() { return longest; },
    stop() { probing = false; },
  };
}

/** Runs `call` under a probe: the turns it gave the loop and the longest gap. */
export async function turnsDuring(call: () => Promise<unknown> | unknown): Promise<{ turns: number; longest: number }> {
  const probe = probeTurns();
  await call();
  probe.stop();
  return { turns: probe.turns, longest: probe.longestGapMs };
}
