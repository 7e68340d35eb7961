/** Rows for the store tests and their child processes: cheap to make, distinct, valid. */
import type { StoredPeer } from '../../../../lib/gateway/types.js';

/** A peer whose key is `n` in a 32-byte big-endian counter under a per-run prefix. */
export function numberedPeer(prefix: number, n: number): StoredPeer {
  const key = Buffer.alloc(32);
  key.writeUInt32BE(prefix, 0);
  key.writeUInt32BE(n, 28);
  return {
    publicKey: key.toString('base64'),
    allowedIps: [`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}/32`],
    presharedKey: n % 2 === 0 ? Buffer.alloc(32, n & 255).toString('base64') : null,
    persistentKeepalive: 0,
    origin: 'push',
    fetchedAt: 1_700_000_000_000 + n,
  };
}

/** TAI64N bytes for `value` seconds after the WireGuard epoch label. */
export function timestampOf(value: number): Uint8Array {
  const bytes = Buffer.alloc(12);
  bytes.writeBigUInt64BE(0x400000000000000an + BigInt(value), 0);
  return bytes;
}
