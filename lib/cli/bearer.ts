/**
 * Bearer-token checks for the admin API, in constant time: both sides are hashed to SHA-256
 * and the digests compared with `timingSafeEqual`, so neither the token's length nor the
 * position of the first wrong byte shows in the response time (comparing the tokens directly
 * would need equal lengths, and the length check would leak).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export function bearerDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Whether an `Authorization` header carries the token whose digest is `expected`. */
export function bearerMatches(authorization: string | undefined, expected: Buffer | null): boolean {
  if (expected === null || authorization === undefined) return false;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  // Hashed even when malformed, so a malformed header costs the same as a wrong token.
  const presented = bearerDigest(match?.[1] ?? '');
  return timingSafeEqual(presented, expected) && match !== null;
}
