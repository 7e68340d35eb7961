/**
 * A warm-up for the responder's code: verify a few hundred synthetic initiations against a
 * throwaway key before the first real one arrives.
 *
 * Why: a gateway verifies an initiation every second or two, and code that runs that rarely is
 * never optimised by V8; the first verifications of a process run interpreted, several times
 * slower (bench/RESULTS.md, gateway section: 20.7 ms cold against 4.94 ms hot in the bench VM).
 * V8 optimises functions, not instances, so a `Responder` of a throwaway key warms the code every
 * `Responder` runs. The throwaway key and the synthetic initiators' keys are fresh per warm-up
 * and never leave it.
 *
 * It runs in steps so that a caller can interleave real work (a worker thread serving batches
 * between steps, an event loop staying within its budget).
 *
 * @module
 */

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { INITIATION_LENGTH, MESSAGE_TYPE_INITIATION } from '../protocol/initiation.js';
import { Responder } from './responder.js';
import { buildSyntheticInitiation } from './synthetic-initiation.js';

/** Distinct initiations built; the rest of the verifications repeat them (building one costs about as much as verifying it). */
const DISTINCT_INITIATIONS = 8;

export class ResponderWarmUp {
  /** Verifications done so far. */
  done = 0;
  /** Milliseconds spent in {@link ResponderWarmUp.step}, building included. */
  spentMs = 0;
  /**
   * Why the warm-up ended early, or null: a synthetic initiation the responder refused (the two
   * disagree: a bug) or an exception. The responder itself is unaffected; it only stays cold.
   */
  failure: string | null = null;
  readonly #total: number;
  #responder: Responder | null = null;
  #packets: Uint8Array[] = [];

  /** @param verifications how many verifications in all (0 does nothing). */
  constructor(verifications: number) {
    this.#total = verifications;
  }

  /** All verifications done, or given up (see {@link ResponderWarmUp.failure}). */
  get finished(): boolean {
    return this.done >= this.#total || this.failure !== null;
  }

  /**
   * Verifies synthetic initiations until `budgetMs` have passed (at least one) or the warm-up is
   * finished; returns true once it is finished. Never throws: a failure ends the warm-up and is
   * kept in {@link ResponderWarmUp.failure}.
   */
  step(budgetMs: number): boolean {
    if (this.finished) return true;
    const start = performance.now();
    try {
      if (this.#responder === null) {
        this.#responder = new Responder(generateKeyPairSync('x25519').privateKey);
        const target = this.#responder.publicKeyBytes;
        for (let i = 0; i < Math.min(DISTINCT_INITIATIONS, this.#total); i++) this.#packets.push(buildSyntheticInitiation(target, { senderIndex: i }));
      }
      do {
        const result = this.#responder.unwrap(this.#packets[this.done % this.#packets.length]!);
        if (!result.ok) {
          this.failure = `a synthetic initiation was refused (${result.reason})`;
          break;
        }
        this.done++;
      } while (!this.finished && performance.now() - start < budgetMs);
    } catch (error) {
      this.failure = `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`;
    }
    this.spentMs += performance.now() - start;
    if (this.finished) {
      this.#responder = null;
      this.#packets = [];
    }
    return this.finished;
  }
}

/**
 * The same for the checks before any DH (`Responder.precheck`: size, type, mac1's keyed BLAKE2s)
 * on the thread that runs only those — an event loop whose verifications go to worker threads.
 * Random initiation-shaped packets run the whole mac1 computation and fail its comparison; the
 * responder given is the one that will serve, and keeps nothing from them.
 */
export class PrecheckWarmUp {
  /** Checks done so far. */
  done = 0;
  /** Milliseconds spent in {@link PrecheckWarmUp.step}. */
  spentMs = 0;
  readonly #responder: Responder;
  readonly #total: number;
  #packets: Uint8Array[] = [];

  constructor(responder: Responder, checks: number) {
    this.#responder = responder;
    this.#total = checks;
  }

  get finished(): boolean {
    return this.done >= this.#total;
  }

  /** Runs checks until `budgetMs` have passed (at least one) or all are done; true once they are. */
  step(budgetMs: number): boolean {
    if (this.finished) return true;
    const start = performance.now();
    if (this.#packets.length === 0) {
      for (let i = 0; i < DISTINCT_INITIATIONS; i++) {
        const packet = new Uint8Array(randomBytes(INITIATION_LENGTH));
        packet.set([MESSAGE_TYPE_INITIATION, 0, 0, 0]);
        this.#packets.push(packet);
      }
    }
    do {
      this.#responder.precheck(this.#packets[this.done % this.#packets.length]!);
      this.done++;
    } while (!this.finished && performance.now() - start < budgetMs);
    this.spentMs += performance.now() - start;
    if (this.finished) this.#packets = [];
    return this.finished;
  }
}
