/** Deterministic test keys: key(n) is a valid 32-byte key, distinct for each n. */
import { createHash } from 'node:crypto';

export function keyBytes(n: number, label = 'peer'): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`${label}:${n}`).digest());
}

export function key(n: number, label = 'peer'): string {
  return Buffer.from(keyBytes(n, label)).toString('base64');
}

/** A private key as wg genkey makes them: clamped per RFC 7748, as the kernel stores it. */
export function privateKeyBytes(n: number, label = 'device'): Uint8Array {
  const bytes = keyBytes(n, label);
  bytes[0]! &= 248;
  bytes[31]! &= 127;
  bytes[31]! |= 64;
  return bytes;
}
