/** Deterministic test keys: key(n) is a valid 32-byte key, distinct for each n. */
import { createHash } from 'node:crypto';

export function keyBytes(n: number, label = 'peer'): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${label}:${n}`).digest());
}

export function key(n: number, label = 'peer'): string {
  return Buffer.from(keyBytes(n, label)).toString('base64');
}
