/**
 * One validator for a peer's configuration wherever it enters the gateway: a resolver's
 * answer, `Gateway.upsertPeer`, the admin API. It applies the same rules `setDevice` applies
 * to the same fields, and returns the canonical form (host bits cleared, keys re-encoded), so
 * what the store keeps is exactly what the kernel will hold.
 */
import { ValidationError } from '../errors.js';
import { decodeKey, describe, encodeKey } from '../keys.js';
import { formatPrefix, maskHostBits, parsePrefix } from '../net/ip.js';
import type { ResolvedPeer } from './types.js';

/**
 * Allowed IPs one peer may carry through the gateway. The kernel takes far more, but a control
 * plane answering with thousands of prefixes for one client is a fault, not a configuration.
 */
export const MAX_ALLOWED_IPS = 1024;

const FIELDS = new Set(['publicKey', 'allowedIps', 'presharedKey', 'persistentKeepalive']);

/** A validated configuration: `presharedKey` and `persistentKeepalive` always present. */
export interface PeerConfigValue {
  publicKey: string;
  allowedIps: string[];
  presharedKey: string | null;
  persistentKeepalive: number;
}

/**
 * Validates `value` as a {@link ResolvedPeer}; throws a `ValidationError` naming the field
 * under `path`. Unknown fields are refused (a typo such as `allowedIPs` must not silently
 * install a peer with no addresses). The preshared key's value never reaches a message.
 */
export function validatePeerConfig(value: unknown, path = 'peer'): PeerConfigValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(path, `expected an object, got ${describe(value)}`);
  }
  for (const field of Object.keys(value)) {
    if (!FIELDS.has(field)) throw new ValidationError(`${path}.${field.slice(0, 64)}`, 'unknown field');
  }
  const peer = value as Partial<Record<keyof ResolvedPeer, unknown>>;
  const publicKey = canonicalKey(peer.publicKey, `${path}.publicKey`);
  const allowedIps = canonicalAllowedIps(peer.allowedIps, `${path}.allowedIps`);
  let presharedKey: string | null = null;
  if (peer.presharedKey !== undefined && peer.presharedKey !== null) {
    if (typeof peer.presharedKey !== 'string') {
      throw new ValidationError(`${path}.presharedKey`, `expected a base64 string or null, got ${describe(peer.presharedKey)}`);
    }
    const bytes = decodeKey(peer.presharedKey, `${path}.presharedKey`);
    presharedKey = encodeKey(bytes);
    bytes.fill(0);
  }
  let persistentKeepalive = 0;
  if (peer.persistentKeepalive !== undefined) {
    const k = peer.persistentKeepalive;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > 65535) {
      throw new ValidationError(`${path}.persistentKeepalive`, `expected an integer number of seconds from 0 to 65535, got ${typeof k === 'number' ? k : describe(k)}`);
    }
    persistentKeepalive = k;
  }
  return { publicKey, allowedIps, presharedKey, persistentKeepalive };
}

/** A public key in the one base64 spelling the rest of the gateway compares against. */
export function canonicalKey(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new ValidationError(path, `expected a base64 string, got ${describe(value)}`);
  return encodeKey(decodeKey(value, path));
}

function canonicalAllowedIps(value: unknown, path: string): string[] {
  if (!Array.isArray(value)) throw new ValidationError(path, `expected an array of CIDR strings, got ${describe(value)}`);
  if (value.length > MAX_ALLOWED_IPS) throw new ValidationError(path, `expected at most ${MAX_ALLOWED_IPS} prefixes, got ${value.length}`);
  const seen = new Set<string>();
  const out: string[] = [];
  value.forEach((item: unknown, i) => {
    if (typeof item !== 'string') throw new ValidationError(`${path}[${i}]`, `expected a CIDR string, got ${describe(item)}`);
    const prefix = parsePrefix(item);
    if (typeof prefix === 'string') throw new ValidationError(`${path}[${i}]`, prefix);
    maskHostBits(prefix.bytes, prefix.length);
    const text = formatPrefix(prefix);
    if (seen.has(text)) throw new ValidationError(`${path}[${i}]`, `duplicate prefix ${text}`);
    seen.add(text);
    out.push(text);
  });
  return out;
}

/** Base64url without padding (43 characters), as the resolver contract puts a key in a URL. */
export function keyToUrl(publicKey: string): string {
  return publicKey.slice(0, 43).replaceAll('+', '-').replaceAll('/', '_');
}

/** The inverse of {@link keyToUrl}; throws a `ValidationError` for anything but 43 base64url characters. */
export function keyFromUrl(text: string, path = 'key'): string {
  if (!/^[A-Za-z0-9_-]{43}$/.test(text)) throw new ValidationError(path, 'expected a public key in base64url without padding (43 characters)');
  return canonicalKey(`${text.replaceAll('-', '+').replaceAll('_', '/')}=`, path);
}
