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

import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { INITIATION_LENGTH, MESSAGE_TYPE_INITIATION } from '../protocol/initiation.js';
import { aeadOpenCounter0 } from './aead.js';
import { Mac1 } from './blake2s.js';
import { hashInto, kdf2Into } from './kdf.js';
import { Responder } from './responder.js';
import { buildSyntheticInitiation } from './synthetic-initiation.js';
import { dh } from './x25519.js';

/** Distinct initiations built; the rest of the verifications repeat them (building one costs about as much as verifying it). */
const DISTINCT_INITIATIONS = 8;

/**
 * Calls of each primitive before the first whole initiation is built, in this order, leaves
 * first. A whole build or verification run cold is one long synchronous call, while one call
 * of a cold primitive is short and V8 optimises it after a few dozen. In the TCG bench VM
 * (bench/gateway/warm-up-steps.ts, bench/results/gateway-warm-up-2026-12-02.json, worst of
 * three fresh processes) a process's first build takes 76 ms and its first verification 41 ms;
 * the former first step (eight builds and a verification in one turn) stalled a gateway's event
 * loop for 504 ms. Staged like this, the longest step at the event loop's 5 ms budget is 77 ms
 * (one call's cold cost, at most ~35 ms, on top of the budget, and now and then a collection),
 * and the warm-up takes 0.75 s in all. The counts were chosen in the same VM: by the end of its
 * stage each call costs what it costs hot (a keyed hash 8 ms on its first call, 0.4 ms on its
 * 200th; a KDF 10 ms, then 0.1 ms).
 */
const PRIMITIVE_CALLS = { hash: 200, kdf: 100, mac1: 50, aead: 20, dh: 10 } as const;

/** A stage of the plan: `call` made `calls` times, on throwaway random bytes and keys. */
interface Stage {
  readonly calls: number;
  readonly call: () => void;
}

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
  #stages: Stage[] | null = null;
  #stage = 0;
  #callsInStage = 0;
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
   * Every primitive a verification calls has run its stage's count and the initiations are
   * built (or the warm-up is finished): from here on a real verification is no longer one long
   * cold call, only slower than hot until V8 optimises `unwrap` itself.
   */
  get primed(): boolean {
    return this.finished || (this.#stages !== null && this.#stage === this.#stages.length - 1);
  }

  /**
   * Makes calls of the warm-up's plan (primitives, then builds, then verifications) until
   * `budgetMs` have passed (at least one call) or the warm-up is finished; returns true once it
   * is finished. No call of the plan is a whole cold verification, so a step overruns its budget
   * by at most one short call. Never throws: a failure ends the warm-up and is kept in
   * {@link ResponderWarmUp.failure}.
   */
  step(budgetMs: number): boolean {
    if (this.finished) return true;
    const start = performance.now();
    try {
      this.#stages ??= this.#plan();
      do {
        const stage = this.#stages[this.#stage]!;
        stage.call();
        if (++this.#callsInStage >= stage.calls && this.#stage < this.#stages.length - 1) {
          this.#stage++;
          this.#callsInStage = 0;
        }
      } while (!this.finished && performance.now() - start < budgetMs);
    } catch (error) {
      this.failure = `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message ?? String(error)}`;
    }
    this.spentMs += performance.now() - start;
    if (this.finished) this.#release();
    return this.finished;
  }

  /** The stages, last one the verifications (it runs until `done` reaches the total). */
  #plan(): Stage[] {
    const a = new Uint8Array(randomBytes(32));
    const b = new Uint8Array(randomBytes(32));
    const input = new Uint8Array(randomBytes(INITIATION_LENGTH));
    const out1 = new Uint8Array(32);
    const out2 = new Uint8Array(32);
    const mac1 = new Mac1(a);
    let throwaway: KeyObject | null = null;
    const stages: Stage[] = [
      { calls: PRIMITIVE_CALLS.hash, call: () => void hashInto(out1, a, b) },
      { calls: PRIMITIVE_CALLS.kdf, call: () => kdf2Into(a, input, 0, 32, out1, out2) },
      { calls: PRIMITIVE_CALLS.mac1, call: () => void mac1.computeInto(out1.subarray(0, 16), input, 0, 116) },
      // A random ciphertext never authenticates: this runs the whole open and its refusal.
      { calls: PRIMITIVE_CALLS.aead, call: () => void aeadOpenCounter0(a, input, 0, 48, out1) },
      {
        calls: PRIMITIVE_CALLS.dh,
        call: () => {
          throwaway ??= generateKeyPairSync('x25519').privateKey;
          dh(throwaway, b)?.fill(0);
        },
      },
      {
        calls: Math.min(DISTINCT_INITIATIONS, this.#total),
        call: () => {
          this.#responder ??= new Responder(generateKeyPairSync('x25519').privateKey);
          this.#packets.push(buildSyntheticInitiation(this.#responder.publicKeyBytes, { senderIndex: this.#packets.length }));
        },
      },
      {
        calls: Infinity,
        call: () => {
          const result = this.#responder!.unwrap(this.#packets[this.done % this.#packets.length]!);
          if (!result.ok) this.failure = `a synthetic initiation was refused (${result.reason})`;
          else this.done++;
        },
      },
    ];
    return stages;
  }

  #release(): void {
    this.#stages = null;
    this.#responder = null;
    this.#packets = [];
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
