/**
 * Stage 1, before any crypto: a token bucket per source address. The kernel's own limit on
 * handshakes (drivers/net/wireguard/ratelimiter.c) is the reference: 20 per second with a burst
 * of 5, per IPv4 address and per IPv6 /64 (one host usually holds a whole /64, so per-address
 * buckets would let it mint sources for free). The source port is ignored for the same reason.
 */
import { parseAddress } from '../net/ip.js';
import { TokenBuckets } from './token-buckets.js';
import type { Address } from './types.js';

export interface SourceRateLimitOptions {
  /** Initiations per second a source may sustain (default 20, as the kernel). */
  ratePerSecond?: number;
  /** Initiations a quiet source may send at once (default 5, as the kernel). */
  burst?: number;
  /** Sources tracked at once (default 65,536); see `TokenBuckets`. */
  capacity?: number;
  now?: () => number;
}

export class SourceRateLimit {
  private readonly buckets: TokenBuckets;

  constructor(options: SourceRateLimitOptions = {}) {
    this.buckets = new TokenBuckets({
      ratePerSecond: options.ratePerSecond ?? 20,
      burst: options.burst ?? 5,
      capacity: options.capacity,
      now: options.now,
    }, 'rateLimit');
  }

  /** Whether an initiation from `source` may go on to verification. */
  admit(source: Address): boolean {
    return this.buckets.take(sourceKey(source.address));
  }

  get trackedSources(): number {
    return this.buckets.size;
  }
}

/** The bucket a source address falls in: the IPv4 address, or the IPv6 /64. */
export function sourceKey(address: string): string {
  if (!address.includes(':')) return address; // IPv4 (the text of an IPv4 address has no ':')
  const parsed = parseAddress(address);
  if (parsed === null) return address;
  // An IPv4-mapped IPv6 source is the IPv4 host it maps.
  const b = parsed.bytes;
  if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  return Buffer.from(b.subarray(0, 8)).toString('hex') + '::/64';
}
