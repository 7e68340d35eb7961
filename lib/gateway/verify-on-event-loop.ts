/**
 * `VerifierPool` without threads (`threads: 0`, or when no worker could start): verification on
 * the event loop, in slices of at most `budgetMs` of work each (at least one verification per
 * slice), the rest continued on `setImmediate`, so that timers, I/O and the next capture wake-up
 * get their turn in between. The queue is the pool's, bounded by its `maxOutstanding`; packets
 * the kernel has not delivered yet wait in the socket's buffer.
 *
 * Each packet is verified as `Verifier` does it, replay check and remembering included, in the
 * order asked; one already past mac1 and remembered (handed over by threads that could not start)
 * is only unwrapped.
 *
 * The warm-up (lib/noise/warm-up.ts) runs in the same slices. Until it is primed (its
 * primitives called and its initiations built), it has the slices to itself and packets wait:
 * a fresh process's first real verification, run with every primitive cold, held the event loop
 * for 60–110 ms in the TCG bench VM (a burst into a just-started gateway), where no step of the
 * warm-up's is longer than one cold primitive call. After that, it runs only when no packet waits.
 */
import { ResponderWarmUp } from '../noise/warm-up.js';
import type { Responder } from '../noise/responder.js';
import type { SeenInitiations } from '../noise/seen-initiations.js';
import { Verifier, type VerifyResult } from './verify.js';
import type { WarmUpReport } from './verify-batch.js';
import type { PendingVerification, VerifyBackend } from './verify-pool.js';

export interface EventLoopVerificationOptions {
  readonly responder: Responder;
  readonly seen: SeenInitiations;
  readonly budgetMs: number;
  readonly warmUp: number;
  readonly onWarmedUp: (report: WarmUpReport) => void;
  /** The clock slices are measured on, in milliseconds; `performance.now` unless a test fakes it. */
  readonly now?: () => number;
}

export class EventLoopVerification implements VerifyBackend {
  readonly kind = 'event-loop' as const;
  /** Slices run so far. */
  slices = 0;
  readonly #responder: Responder;
  readonly #verifier: Verifier;
  readonly #budgetMs: number;
  readonly #warmUp: ResponderWarmUp;
  readonly #onWarmedUp: EventLoopVerificationOptions['onWarmedUp'];
  readonly #now: () => number;
  #queue: PendingVerification[] = [];
  #head = 0;
  #scheduled: NodeJS.Immediate | null = null;
  #stopped = false;

  constructor(options: EventLoopVerificationOptions) {
    this.#responder = options.responder;
    this.#verifier = new Verifier(options.responder, options.seen);
    this.#budgetMs = options.budgetMs;
    this.#warmUp = new ResponderWarmUp(options.warmUp);
    this.#onWarmedUp = options.onWarmedUp;
    this.#now = options.now ?? (() => performance.now());
    if (options.warmUp > 0) this.#schedule();
  }

  /** Packets waiting for a slice. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  submit(batch: PendingVerification[]): void {
    if (this.#stopped) {
      for (const p of batch) p.settle({ ok: false, reason: 'stopping' });
      return;
    }
    for (const p of batch) this.#queue.push(p);
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#scheduled !== null) clearImmediate(this.#scheduled);
    this.#scheduled = null;
    const left = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    for (const p of left) p.settle({ ok: false, reason: 'stopping' });
  }

  #schedule(): void {
    if (this.#scheduled === null && !this.#stopped) this.#scheduled = setImmediate(this.#slice);
  }

  readonly #slice = (): void => {
    this.#scheduled = null;
    this.slices++;
    if (!this.#warmUp.primed) {
      if (this.#warmUp.step(this.#budgetMs)) {
        this.#onWarmedUp({ verifications: this.#warmUp.done, ms: this.#warmUp.spentMs, failure: this.#warmUp.failure });
      }
      this.#schedule();
      return;
    }
    const start = this.#now();
    const queuedAtStart = this.queued;
    while (this.#head < this.#queue.length) {
      const pending = this.#queue[this.#head]!;
      this.#queue[this.#head++] = undefined as unknown as PendingVerification;
      pending.settle(this.#verify(pending));
      if (this.#now() - start >= this.#budgetMs) break;
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (this.queued === 0 && !this.#warmUp.finished) {
      // A slice that verified nothing gives the warm-up at least one call, whatever the budget.
      const left = this.#budgetMs - (this.#now() - start);
      if ((queuedAtStart === 0 || left > 0) && this.#warmUp.step(Math.max(left, 0))) {
        this.#onWarmedUp({ verifications: this.#warmUp.done, ms: this.#warmUp.spentMs, failure: this.#warmUp.failure });
      }
    }
    if (this.queued > 0 || !this.#warmUp.finished) this.#schedule();
  };

  #verify(pending: PendingVerification): VerifyResult {
    try {
      if (!pending.prechecked) return this.#verifier.verify(pending.packet);
      const result = this.#responder.unwrap(pending.packet);
      if (result.ok) return { ok: true, publicKey: result.publicKey, timestamp: result.timestamp.bytes };
      return { ok: false, reason: 'unauthenticated', detail: result.reason };
    } catch {
      return { ok: false, reason: 'verify-failed', detail: 'exception' };
    }
  }
}
