/**
 * Token buckets for many keys in bounded memory: the per-source rate limit in front of all
 * crypto, and the per-key install limit. Each key refills at `ratePerSecond` up to `burst`.
 * At most `capacity` keys are tracked; the least recently used is forgotten first. Forgetting
 * a key gives it a full bucket again, so an attacker who churns sources to push entries out
 * only makes the limit more lenient for others, never stricter: memory stays bounded either way.
 */
import { ValidationError } from '../errors.js';

export interface TokenBucketOptions {
  ratePerSecond: number;
  burst: number;
  /** Keys tracked at once (default 65,536). */
  capacity?: number;
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly capacity: number;
  private readonly now: () => number;

  constructor(options: TokenBucketOptions, path = 'options') {
    const { ratePerSecond, burst, capacity = 65_536 } = options;
    if (typeof ratePerSecond !== 'number' || !(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) {
      throw new ValidationError(`${path}.ratePerSecond`, `expected a positive finite number, got ${String(ratePerSecond)}`);
    }
    if (!Number.isInteger(burst) || burst < 1) throw new ValidationError(`${path}.burst`, `expected a positive integer, got ${String(burst)}`);
    if (!Number.isInteger(capacity) || capacity < 1) throw new ValidationError(`${path}.capacity`, `expected a positive integer, got ${String(capacity)}`);
    this.ratePerMs = ratePerSecond / 1000;
    this.burst = burst;
    this.capacity = capacity;
    this.now = options.now ?? performance.now.bind(performance);
  }

  /** Takes one token for `key` if it has one; false means over the limit. */
  take(key: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= this.capacity) this.buckets.delete(this.buckets.keys().next().value!);
      bucket = { tokens: this.burst, at: now };
    } else {
      this.buckets.delete(key); // re-inserted below: Map order is recency order
      bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.ratePerMs);
      bucket.at = now;
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  get size(): number {
    return this.buckets.size;
  }
}
