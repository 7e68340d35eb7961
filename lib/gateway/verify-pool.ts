/**
 * `VerifierPool`: stage 2 (verify.ts) with the Diffie-Hellman work off the event loop. It gives
 * the results `Verifier` gives, but a capture wake-up's 64 initiations no longer cost the event
 * loop 64 verifications (bench/RESULTS.md, gateway section: 64 × 4.45 ms = a 1.25 s stall under a
 * forged flood in the bench VM).
 *
 * On the event loop, per packet, only what costs about a microsecond when optimised: the replay
 * check (`SeenInitiations`) in the call itself, so a replay costs nothing more; then, on the next
 * turn, size, type and mac1 (`Responder.precheck`), so that junk never reaches a thread. That
 * turn checks at most `turnBudgetMs` of packets and continues on the one after: mac1 is a keyed
 * BLAKE2s in JavaScript, and interpreted in the bench VM it costs ~3 ms, 64 of them a 190 ms
 * stall. A packet past mac1 is remembered then, before it goes to a thread, whatever its
 * verification will say — as `Verifier` remembers every packet past mac1 — so a copy arriving
 * while the first is being verified is refused as a replay instead of costing a second
 * verification (one captured initiation replayed at line rate must stay cheap). The rest,
 * `Responder.unwrap`, runs on worker threads: the packets asked for in one turn go out together,
 * one message per thread (verify-threads.ts); or, with `threads: 0`, everything runs on the event
 * loop in slices of `turnBudgetMs` (verify-on-event-loop.ts).
 *
 * Bounded: at most `maxOutstanding` packets between the call and their result; beyond, the result
 * is `verify-overloaded` at once (not remembered: it cost nothing). Never hangs: a thread that
 * dies settles its packets as `verify-failed`; `stop()` settles everything left as `stopping`.
 *
 * The private key reaches the threads as a KeyObject (a handle to the same key material; no
 * bytes in any message). Errors a gateway should count (a thread died, threads could not start
 * and verification moved to the event loop, the warm-up failed) go to `onError(code, error)`.
 */
import { availableParallelism } from 'node:os';
import type { KeyObject } from 'node:crypto';
import { describe } from '../describe.js';
import { ValidationError } from '../errors.js';
import { importPrivateKey, type PrivateKeyInput } from '../keys.js';
import { Responder } from '../noise/responder.js';
import { SeenInitiations } from '../noise/seen-initiations.js';
import { PrecheckWarmUp } from '../noise/warm-up.js';
import { integerOption } from './options.js';
import type { WarmUpReport } from './verify-batch.js';
import type { VerifyResult } from './verify.js';
import { EventLoopVerification } from './verify-on-event-loop.js';
import { VerifyThreads } from './verify-threads.js';
import { locateVerifyWorker } from './verify-worker-entry.js';

/** A packet between the call and its result, as the backends see it. */
export interface PendingVerification {
  /** The pool's own copy. */
  readonly packet: Uint8Array;
  /** Past size, type and mac1, and remembered (only `Responder.unwrap` is left to do). */
  prechecked: boolean;
  /** Delivers the result; calls after the first are ignored. */
  settle(result: VerifyResult): void;
}

/** Where `Responder.unwrap` runs: worker threads or event-loop slices. */
export interface VerifyBackend {
  readonly kind: 'threads' | 'event-loop';
  submit(batch: PendingVerification[]): void;
  stop(): Promise<void>;
}

/** The tunables, as `GatewayOptions.verify` takes them. */
export interface VerifierPoolTuning {
  /**
   * Worker threads verifying (0 to 64). Default {@link defaultVerifyThreads}: one core fewer
   * than the process may use, at least 1, at most 4. 0 verifies on the event loop in slices of
   * `turnBudgetMs`: no threads, and still no long stalls.
   */
  readonly threads?: number;
  /** Packets between mac1 and their result at most (1 to 1,000,000; default 4,096); beyond: `verify-overloaded`. */
  readonly maxOutstanding?: number;
  /** With `threads: 0`: milliseconds of verification per event-loop turn (0.1 to 1,000; default 5). */
  readonly turnBudgetMs?: number;
  /** Synthetic verifications per thread (or on the event loop) at start, so the first real one runs optimised (0 to 100,000; default 300). */
  readonly warmUp?: number;
}

export interface VerifierPoolOptions extends VerifierPoolTuning {
  /** The responder's private key (the interface's): a KeyObject is best, it never becomes bytes. */
  readonly privateKey: PrivateKeyInput;
  /** Replays refused before anything else; every packet past mac1 is remembered. */
  readonly seen: SeenInitiations;
  /** A failure the pool survived: `ERR_JITGUARD_VERIFY_THREAD_EXIT`, `…_THREAD_START`, `…_WARM_UP`. */
  readonly onError?: (code: string, error: unknown) => void;
}

export interface VerifierPoolStats {
  /** Where verification runs now (`event-loop` after threads could not start). */
  mode: VerifyBackend['kind'];
  threads: number;
  /** Threads that have loaded their code and can verify (they serve what was posted before, too). */
  threadsStarted: number;
  /** Packets between the call and their result. */
  outstanding: number;
  /** Batch messages posted to threads. */
  batches: number;
  /** Refused `verify-overloaded`. */
  overloaded: number;
  /** Threads that died after starting (each replaced). */
  threadExits: number;
  /** Warm-ups finished (one per thread, or one on the event loop). */
  warmUps: WarmUpReport[];
  /** With threads: the event loop's own warm-up of size/type/mac1 (as many checks as `warmUp`), once finished. */
  precheckWarmUp: { checks: number; ms: number } | null;
}

export const DEFAULT_MAX_OUTSTANDING = 4096;
export const DEFAULT_TURN_BUDGET_MS = 5;
/**
 * Synthetic verifications at start, per thread (or on the event loop, in slices). In the bench VM
 * 300 cost 4.4 s of CPU, taken from the first clients' knocks on a small machine, while the first
 * verification fell only from 132 to 74 ms; 40 keep most of that at a seventh of the cost.
 */
export const DEFAULT_WARM_UP = 40;
const MAX_THREADS = 64;
/**
 * One check per turn: the warm-up runs while start() reconciles on the same event loop, and
 * interpreted in the bench VM one mac1 costs milliseconds; V8 optimised mac1 after ~250 checks here.
 */
const PRECHECK_WARM_UP_STEP_MS = 0;

/**
 * Default worker threads: none on two cores or fewer, else `os.availableParallelism() − 1`, at
 * most 4. On the 2-vCPU bench VM a thread lost on both counts: a lone knock's round trip through
 * it took 45-50 ms (0.7 ms verified in slices on the event loop on the host), 2,000 forged
 * initiations took 22 s against 16 s in slices, and the first client of a freshly started kernel
 * test gateway, knocking while the thread started and warmed up, got no answer within 10 s. With
 * a core to spare the thread takes the DH work off the event loop's core; 4 verify ~30,000
 * initiations a second natively (~120 µs each), beyond what the per-source rate limit lets
 * through from any plausible number of sources, while each costs a V8 isolate (~10 MB).
 */
export function defaultVerifyThreads(cores = availableParallelism()): number {
  return cores <= 2 ? 0 : Math.min(4, cores - 1);
}

/**
 * The tunables checked and with their defaults filled in, so a caller (`Gateway`'s constructor)
 * can refuse bad ones before anything starts.
 * @throws ValidationError naming `${path}.threads` etc. (or `path` itself when not an object).
 */
export function verifierPoolTuning(value: unknown, path = 'options'): Required<VerifierPoolTuning> {
  if (value === undefined) value = {};
  if (typeof value !== 'object' || value === null) throw new ValidationError(path, `expected an object, got ${describe(value)}`);
  const tuning = value as VerifierPoolTuning;
  const budget = tuning.turnBudgetMs ?? DEFAULT_TURN_BUDGET_MS;
  if (typeof budget !== 'number' || !(budget >= 0.1 && budget <= 1000)) {
    throw new ValidationError(`${path}.turnBudgetMs`, `expected milliseconds from 0.1 to 1000, got ${typeof budget === 'number' ? budget : describe(budget)}`);
  }
  return {
    threads: integerOption(tuning.threads, defaultVerifyThreads(), 0, MAX_THREADS, `${path}.threads`),
    maxOutstanding: integerOption(tuning.maxOutstanding, DEFAULT_MAX_OUTSTANDING, 1, 1_000_000, `${path}.maxOutstanding`),
    turnBudgetMs: budget,
    warmUp: integerOption(tuning.warmUp, DEFAULT_WARM_UP, 0, 100_000, `${path}.warmUp`),
  };
}

export class VerifierPool {
  readonly #seen: SeenInitiations;
  readonly #responder: Responder;
  readonly #privateKey: KeyObject;
  readonly #maxOutstanding: number;
  readonly #turnBudgetMs: number;
  readonly #warmUp: number;
  readonly #onError: (code: string, error: unknown) => void;
  #backend: VerifyBackend;
  /** Asked for, not yet past the precheck (threads) or handed to the event-loop backend. */
  #incoming: PendingVerification[] = [];
  #incomingHead = 0;
  #drainScheduled: NodeJS.Immediate | null = null;
  #outstanding = 0;
  #overloaded = 0;
  #stopped = false;
  readonly #warmUps: WarmUpReport[] = [];
  #precheckWarmUp: PrecheckWarmUp | null = null;
  #precheckWarmUpStep: NodeJS.Immediate | null = null;

  /**
   * @throws ValidationError naming the option (`options.threads`, …) for a bad option, or
   *   `options.privateKey` for a bad key (never its content).
   */
  constructor(options: VerifierPoolOptions) {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', `expected an options object, got ${describe(options)}`);
    if (!(options.seen instanceof SeenInitiations)) throw new ValidationError('options.seen', `expected a SeenInitiations, got ${describe(options.seen)}`);
    if (options.onError !== undefined && typeof options.onError !== 'function') throw new ValidationError('options.onError', `expected a function, got ${describe(options.onError)}`);
    const { threads, maxOutstanding, turnBudgetMs, warmUp } = verifierPoolTuning(options, 'options');
    this.#maxOutstanding = maxOutstanding;
    this.#turnBudgetMs = turnBudgetMs;
    this.#warmUp = warmUp;
    this.#seen = options.seen;
    this.#onError = options.onError ?? (() => {});
    this.#privateKey = importPrivateKey(options.privateKey, 'options.privateKey');
    this.#responder = new Responder(this.#privateKey);
    this.#backend = threads === 0 ? this.#onEventLoop() : this.#onThreads(threads);
    // With threads, the event loop still runs mac1 for every packet: warm that too, or the first
    // flood meets it interpreted (in the bench VM, capture wake-ups of ~190 ms for 64 prechecks).
    if (this.#backend.kind === 'threads' && warmUp > 0) {
      this.#precheckWarmUp = new PrecheckWarmUp(this.#responder, warmUp);
      this.#precheckWarmUpStep = setImmediate(this.#warmPrecheck);
    }
  }

  /**
   * Verifies one initiation: the same result `Verifier.verify` gives for it, plus
   * `verify-overloaded`, `verify-failed` and `stopping` (see `VerifyResult`). Never rejects for
   * any byte content; rejects with a ValidationError when `packet` is not a Uint8Array. The
   * packet is copied: the caller may reuse its buffer at once.
   */
  verify(packet: Uint8Array): Promise<VerifyResult> {
    if (!(packet instanceof Uint8Array)) {
      return Promise.reject(new ValidationError('packet', `expected the UDP payload as a Uint8Array, got ${describe(packet)}`));
    }
    if (this.#stopped) return Promise.resolve({ ok: false, reason: 'stopping' });
    if (this.#seen.has(packet)) return Promise.resolve({ ok: false, reason: 'replayed-packet' });
    if (this.#outstanding >= this.#maxOutstanding) {
      this.#overloaded++;
      return Promise.resolve({ ok: false, reason: 'verify-overloaded' });
    }
    this.#outstanding++;
    return new Promise<VerifyResult>((resolve) => {
      let settled = false;
      this.#incoming.push({
        packet: new Uint8Array(packet),
        prechecked: false,
        settle: (result) => {
          if (settled) return;
          settled = true;
          this.#outstanding--;
          resolve(result);
        },
      });
      this.#drainScheduled ??= setImmediate(this.#drain);
    });
  }

  /**
   * Stops the threads; every verification not yet settled settles as `stopping`, and so does
   * every later call. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#precheckWarmUpStep !== null) clearImmediate(this.#precheckWarmUpStep);
    this.#precheckWarmUpStep = null;
    if (this.#drainScheduled !== null) clearImmediate(this.#drainScheduled);
    this.#drainScheduled = null;
    const incoming = this.#incoming.slice(this.#incomingHead);
    this.#incoming = [];
    this.#incomingHead = 0;
    for (const p of incoming) p.settle({ ok: false, reason: 'stopping' });
    await this.#backend.stop();
  }

  stats(): VerifierPoolStats {
    const backend = this.#backend;
    return {
      mode: backend.kind,
      threads: backend instanceof VerifyThreads ? backend.threads : 0,
      threadsStarted: backend instanceof VerifyThreads ? backend.started : 0,
      outstanding: this.#outstanding,
      batches: backend instanceof VerifyThreads ? backend.messages : 0,
      overloaded: this.#overloaded,
      threadExits: backend instanceof VerifyThreads ? backend.exits : 0,
      warmUps: [...this.#warmUps],
      precheckWarmUp: this.#precheckWarmUp?.finished ? { checks: this.#precheckWarmUp.done, ms: this.#precheckWarmUp.spentMs } : null,
    };
  }

  /** For tests that kill a thread: the workers now running (none on the event loop). */
  workersForTest(): readonly import('node:worker_threads').Worker[] {
    return this.#backend instanceof VerifyThreads ? this.#backend.workers : [];
  }

  /** One step per turn, so the warm-up never stalls the event loop itself. */
  readonly #warmPrecheck = (): void => {
    this.#precheckWarmUpStep = null;
    if (this.#precheckWarmUp !== null && !this.#stopped && !this.#precheckWarmUp.step(PRECHECK_WARM_UP_STEP_MS)) {
      this.#precheckWarmUpStep = setImmediate(this.#warmPrecheck);
    }
  };

  /**
   * The turn after the calls: on the event loop, the backend takes them all (its slices do the
   * rest); with threads, size, type and mac1 for as many as `turnBudgetMs` allows, those that
   * pass remembered and posted together, the others refused; what is left waits a turn.
   */
  readonly #drain = (): void => {
    this.#drainScheduled = null;
    if (this.#stopped) return;
    if (this.#backend.kind === 'event-loop') {
      const all = this.#incoming.slice(this.#incomingHead);
      this.#incoming = [];
      this.#incomingHead = 0;
      this.#backend.submit(all);
      return;
    }
    const start = performance.now();
    const passed: PendingVerification[] = [];
    const incoming = this.#incoming;
    while (this.#incomingHead < incoming.length) {
      const pending = incoming[this.#incomingHead]!;
      incoming[this.#incomingHead++] = undefined as unknown as PendingVerification;
      const refused = this.#responder.precheck(pending.packet);
      if (refused !== null) pending.settle({ ok: false, reason: 'unauthenticated', detail: refused });
      else if (!this.#seen.remember(pending.packet)) pending.settle({ ok: false, reason: 'replayed-packet' });
      else {
        pending.prechecked = true;
        passed.push(pending);
      }
      if (performance.now() - start >= this.#turnBudgetMs) break;
    }
    if (this.#incomingHead === incoming.length) {
      this.#incoming = [];
      this.#incomingHead = 0;
    } else {
      this.#drainScheduled = setImmediate(this.#drain);
    }
    if (passed.length > 0) this.#backend.submit(passed);
  };

  #onEventLoop(): EventLoopVerification {
    return new EventLoopVerification({
      responder: this.#responder,
      seen: this.#seen,
      budgetMs: this.#turnBudgetMs,
      warmUp: this.#warmUp,
      onWarmedUp: (report) => this.#warmedUp(report),
    });
  }

  #onThreads(count: number): VerifyBackend {
    const entry = locateVerifyWorker();
    if (entry instanceof Error) return this.#fallBack(entry);
    try {
      return new VerifyThreads({
        count,
        privateKey: this.#privateKey,
        warmUp: this.#warmUp,
        settleBudgetMs: this.#turnBudgetMs,
        entry,
        onError: (code, error) => this.#onError(code, error),
        onWarmedUp: (report) => this.#warmedUp(report),
        onStartFailure: (error, held) => {
          const backend = this.#fallBack(error);
          this.#backend = backend;
          if (this.#stopped) void backend.stop();
          backend.submit(held);
        },
      });
    } catch (error) {
      return this.#fallBack(error);
    }
  }

  #fallBack(error: unknown): EventLoopVerification {
    this.#onError('ERR_JITGUARD_VERIFY_THREAD_START', new Error('verification threads could not start; verifying on the event loop', { cause: error }));
    return this.#onEventLoop();
  }

  #warmedUp(report: WarmUpReport): void {
    this.#warmUps.push(report);
    if (report.failure !== null) this.#onError('ERR_JITGUARD_VERIFY_WARM_UP', new Error(`verification warm-up ended early: ${report.failure}`));
  }
}
