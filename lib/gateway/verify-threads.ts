/**
 * `VerifierPool`'s worker threads: each turn's packets are spread over them, one message per
 * thread that gets any (verify-batch.ts), and each reply settles its packets.
 *
 * A thread that dies after it started is replaced at once, and the packets it held are settled as
 * `verify-failed`, not retried: one of them may be what killed it, and a retry would take the
 * replacement down with it. A thread that dies before it ever started (its file missing or not
 * loadable, a loader that cannot run it) would die again: then this backend gives up and hands
 * every packet it holds back to the pool, which verifies on the event loop from then on.
 *
 * Idle threads are unref'd, so a pool nobody stopped does not keep the process alive; a thread
 * holding packets is ref'd, so the process does not exit with verifications pending.
 */
import type { KeyObject } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import { packBatch, decodeResult, resultCount, type BatchRequest, type VerifyWorkerData, type WarmUpReport, type WorkerMessage } from './verify-batch.js';
import type { PendingVerification, VerifyBackend } from './verify-pool.js';
import { startVerifyWorker } from './verify-worker-entry.js';

export interface VerifyThreadsOptions {
  readonly count: number;
  readonly privateKey: KeyObject;
  readonly warmUp: number;
  /**
   * Milliseconds of result decoding per event-loop turn: a reply to a large batch is settled in
   * slices (at least one result each), the rest on the next turn.
   */
  readonly settleBudgetMs: number;
  /** The located worker entry (verify-worker-entry.ts). */
  readonly entry: URL;
  readonly onError: (code: string, error: unknown) => void;
  /** A thread never started: every packet still held is handed back; the backend is stopped. */
  readonly onStartFailure: (error: unknown, held: PendingVerification[]) => void;
  /** Each thread's warm-up, as it ends. */
  readonly onWarmedUp: (report: WarmUpReport) => void;
}

class VerifyThread {
  readonly worker: Worker;
  readonly inFlight = new Map<number, PendingVerification[]>();
  load = 0;
  started = false;
  lastError: unknown = undefined;

  constructor(worker: Worker) {
    this.worker = worker;
  }

  held(): PendingVerification[] {
    const all = [...this.inFlight.values()].flat();
    this.inFlight.clear();
    this.load = 0;
    return all;
  }
}

export class VerifyThreads implements VerifyBackend {
  readonly kind = 'threads' as const;
  /** Batch messages posted to threads. */
  messages = 0;
  /** Threads that died after starting (each was replaced). */
  exits = 0;
  readonly #options: VerifyThreadsOptions;
  readonly #threads: VerifyThread[] = [];
  #nextBatch = 1;
  #stopped = false;
  /** Replies being settled over several turns (their results are known). */
  readonly #settling = new Set<(budgetMs: number) => void>();

  /** @throws what starting a worker throws synchronously (no tsx for a .ts entry); none is left running. */
  constructor(options: VerifyThreadsOptions) {
    this.#options = options;
    try {
      for (let slot = 0; slot < options.count; slot++) this.#threads.push(this.#spawn(slot));
    } catch (error) {
      for (const t of this.#threads.splice(0)) void t.worker.terminate();
      throw error;
    }
  }

  get threads(): number {
    return this.#threads.length;
  }

  /** Threads that have loaded their code and built their responder. */
  get started(): number {
    return this.#threads.filter((t) => t.started).length;
  }

  /** The workers, for tests that must kill one. */
  get workers(): readonly Worker[] {
    return this.#threads.map((t) => t.worker);
  }

  submit(batch: PendingVerification[]): void {
    if (this.#stopped) {
      for (const p of batch) p.settle({ ok: false, reason: 'stopping' });
      return;
    }
    // Each packet to the thread with the least work, counting what this turn already gave it.
    const shares: PendingVerification[][] = this.#threads.map(() => []);
    for (const pending of batch) {
      let best = 0;
      for (let i = 1; i < this.#threads.length; i++) {
        if (this.#threads[i]!.load + shares[i]!.length < this.#threads[best]!.load + shares[best]!.length) best = i;
      }
      shares[best]!.push(pending);
    }
    shares.forEach((share, i) => {
      if (share.length > 0) this.#post(this.#threads[i]!, share);
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const threads = this.#threads.splice(0);
    for (const thread of threads) for (const p of thread.held()) p.settle({ ok: false, reason: 'stopping' });
    // Replies already here are settled with their results, now (a later turn would be after stop()).
    for (const rest of [...this.#settling]) rest(Infinity);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  #post(thread: VerifyThread, share: PendingVerification[]): void {
    const batch = this.#nextBatch++;
    const packets = packBatch(share.map((p) => p.packet));
    thread.inFlight.set(batch, share);
    if (thread.load === 0) thread.worker.ref();
    thread.load += share.length;
    this.messages++;
    const request: BatchRequest = { batch, packets };
    thread.worker.postMessage(request, [packets]);
  }

  #spawn(slot: number): VerifyThread {
    const workerData: VerifyWorkerData = { privateKey: this.#options.privateKey, warmUp: this.#options.warmUp };
    const worker = startVerifyWorker(this.#options.entry, { workerData });
    const thread = new VerifyThread(worker);
    worker.unref();
    worker.on('message', (message: WorkerMessage) => this.#message(thread, message));
    worker.on('error', (error) => {
      thread.lastError = error;
    });
    worker.on('exit', (code) => this.#exited(slot, thread, code));
    return thread;
  }

  #message(thread: VerifyThread, message: WorkerMessage): void {
    if ('ready' in message) {
      thread.started = true;
      return;
    }
    if ('warmedUp' in message) {
      this.#options.onWarmedUp(message.warmedUp);
      return;
    }
    const share = thread.inFlight.get(message.batch);
    if (share === undefined) return;
    thread.inFlight.delete(message.batch);
    thread.load -= share.length;
    if (thread.load === 0) thread.worker.unref();
    if (resultCount(message.results) !== share.length) {
      for (const pending of share) pending.settle({ ok: false, reason: 'verify-failed', detail: 'bad-reply' });
      return;
    }
    this.#settle(share, message.results, 0);
  }

  /** Settles `share[from..]` from `results` for at most the settle budget, then continues next turn. */
  #settle(share: PendingVerification[], results: ArrayBuffer, from: number, budgetMs = this.#options.settleBudgetMs): void {
    const start = performance.now();
    let i = from;
    while (i < share.length) {
      share[i]!.settle(decodeResult(results, i));
      i++;
      if (performance.now() - start >= budgetMs) break;
    }
    if (i === share.length) return;
    const rest = (budget: number) => {
      if (!this.#settling.delete(rest)) return;
      this.#settle(share, results, i, budget);
    };
    this.#settling.add(rest);
    setImmediate(rest, budgetMs);
  }

  #exited(slot: number, thread: VerifyThread, code: number): void {
    if (this.#stopped || this.#threads[slot] !== thread) return;
    const error = new Error(`verification thread ${slot} exited with code ${code}`, thread.lastError !== undefined ? { cause: thread.lastError } : undefined);
    if (!thread.started) {
      this.#startFailed(error);
      return;
    }
    this.exits++;
    for (const p of thread.held()) p.settle({ ok: false, reason: 'verify-failed', detail: 'thread-exit' });
    this.#options.onError('ERR_JITGUARD_VERIFY_THREAD_EXIT', error);
    try {
      this.#threads[slot] = this.#spawn(slot);
    } catch (spawnError) {
      this.#startFailed(spawnError);
    }
  }

  #startFailed(error: unknown): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const threads = this.#threads.splice(0);
    const held = threads.flatMap((t) => t.held());
    for (const t of threads) void t.worker.terminate();
    this.#options.onStartFailure(error, held);
  }
}
