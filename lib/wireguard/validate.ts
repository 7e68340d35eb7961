/**
 * Validation of everything a caller passes, before anything crosses into native code.
 * Produces the normalized form the encoder consumes: keys as bytes, prefixes and endpoints
 * parsed. Secret bytes in the result must be wiped by the caller (`wipeConfig`).
 */
import { ValidationError } from '../errors.js';
import { decodeKey, decodePrivateKey, derivePublicKey, describe } from '../keys.js';
import { maskHostBits, parseEndpoint, parsePrefix } from '../net/ip.js';
import { runAtOnce, SliceClock } from '../slices.js';
import type { Endpoint, Prefix } from '../net/ip.js';
import type { DeviceConfig, PeerConfig } from './types.js';

export interface NormalizedPeer {
  publicKey: Uint8Array;
  remove: boolean;
  updateOnly: boolean;
  replaceAllowedIps: boolean;
  /** undefined: unchanged; null: clear. */
  presharedKey?: Uint8Array | null;
  endpoint?: Endpoint;
  persistentKeepalive?: number;
  /** undefined: unchanged (or cleared, with replaceAllowedIps). */
  allowedIps?: Prefix[];
}

export interface NormalizedConfig {
  /** undefined: unchanged; null: clear. */
  privateKey?: Uint8Array | null;
  listenPort?: number;
  fwmark?: number;
  replacePeers: boolean;
  peers: NormalizedPeer[];
}

const DEVICE_FIELDS = new Set(['privateKey', 'listenPort', 'fwmark', 'replacePeers', 'peers']);
const PEER_FIELDS = new Set([
  'publicKey', 'remove', 'updateOnly', 'presharedKey', 'endpoint', 'persistentKeepalive', 'replaceAllowedIps', 'allowedIps',
]);

function rejectUnknownFields(value: object, allowed: Set<string>, path: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.has(key)) {
      throw new ValidationError(`${path}.${key}`, `unknown field (known: ${[...allowed].join(', ')})`);
    }
  }
}

function optionalBoolean(value: unknown, path: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ValidationError(path, `expected a boolean, got ${describe(value)}`);
  return value;
}

function optionalInteger(value: unknown, path: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(path, `expected an integer from ${min} to ${max}, got ${typeof value === 'number' ? value : describe(value)}`);
  }
  return value;
}

function peerPath(index: number): string {
  return `config.peers[${index}]`;
}

/** The fields of a peer after its keys: endpoint, keepalive, allowed IPs. */
function validatePeerRest(p: PeerConfig, path: string, normalized: NormalizedPeer): void {
  if (p.endpoint !== undefined) {
    if (typeof p.endpoint !== 'string') throw new ValidationError(`${path}.endpoint`, `expected "ip:port", got ${describe(p.endpoint)}`);
    const endpoint = parseEndpoint(p.endpoint);
    if (typeof endpoint === 'string') throw new ValidationError(`${path}.endpoint`, endpoint);
    normalized.endpoint = endpoint;
  }
  if (p.persistentKeepalive !== undefined) {
    normalized.persistentKeepalive = optionalInteger(p.persistentKeepalive, `${path}.persistentKeepalive`, 0, 65535);
  }
  if (p.allowedIps !== undefined) {
    if (!Array.isArray(p.allowedIps)) {
      throw new ValidationError(`${path}.allowedIps`, `expected an array of CIDR strings, got ${describe(p.allowedIps)}`);
    }
    const texts: unknown[] = p.allowedIps;
    const prefixes: Prefix[] = new Array(texts.length);
    for (let i = 0; i < texts.length; i++) {
      const text = texts[i];
      if (typeof text !== 'string') throw new ValidationError(`${path}.allowedIps[${i}]`, `expected a CIDR string, got ${describe(text)}`);
      const prefix = parsePrefix(text);
      if (typeof prefix === 'string') throw new ValidationError(`${path}.allowedIps[${i}]`, `${prefix}, got "${text}"`);
      maskHostBits(prefix.bytes, prefix.length);
      prefixes[i] = prefix;
    }
    normalized.allowedIps = prefixes;
  }
}

/**
 * One peer. Its error paths ("config.peers[3].remove") are built only for fields that are
 * there, or for the error itself: a one-peer install is dozens of microseconds of JavaScript
 * in the test VM, and strings made for errors that never happen were a visible part of it.
 */
function validatePeer(peer: unknown, index: number): NormalizedPeer {
  if (typeof peer !== 'object' || peer === null || Array.isArray(peer)) {
    throw new ValidationError(peerPath(index), `expected a peer object, got ${describe(peer)}`);
  }
  for (const field in peer) {
    if (!PEER_FIELDS.has(field) && Object.hasOwn(peer, field)) rejectUnknownFields(peer, PEER_FIELDS, peerPath(index));
  }
  const p = peer as PeerConfig;
  const path = peerPath(index);
  const normalized: NormalizedPeer = {
    publicKey: decodeKey(p.publicKey, `${path}.publicKey`),
    remove: p.remove === undefined ? false : optionalBoolean(p.remove, `${path}.remove`),
    updateOnly: p.updateOnly === undefined ? false : optionalBoolean(p.updateOnly, `${path}.updateOnly`),
    replaceAllowedIps: p.replaceAllowedIps === undefined ? false : optionalBoolean(p.replaceAllowedIps, `${path}.replaceAllowedIps`),
  };
  if (normalized.remove) {
    for (const field in p) {
      if (field !== 'publicKey' && field !== 'remove' && p[field as keyof PeerConfig] !== undefined && Object.hasOwn(p, field)) {
        const others = Object.entries(p).filter(([k, v]) => k !== 'publicKey' && k !== 'remove' && v !== undefined);
        throw new ValidationError(path, `remove cannot be combined with ${others.map(([k]) => k).join(', ')}`);
      }
    }
    return normalized;
  }
  if (p.presharedKey !== undefined) {
    normalized.presharedKey = p.presharedKey === null ? null : decodeKey(p.presharedKey, `${path}.presharedKey`);
  }
  try {
    validatePeerRest(p, path, normalized);
  } catch (error) {
    // The peer never reaches the config (and so `wipeConfig`): wipe its decoded key here.
    normalized.presharedKey?.fill(0);
    throw error;
  }
  return normalized;
}

/**
 * Validates a `setDevice` config. `devicePublicKey` is the interface's current public key
 * when known: a peer equal to it would be silently ignored by the kernel, so it is refused.
 */
export function validateConfig(config: unknown, devicePublicKey: Uint8Array | null | undefined): NormalizedConfig {
  return runAtOnce(validateConfigSteps(config, devicePublicKey, new SliceClock(Infinity)));
}

/**
 * {@link validateConfig} as steps that yield whenever `clock` is due (run them with
 * `runInSlices`): validating 10^5 peers (keys decoded, prefixes parsed, duplicates looked up)
 * takes seconds under emulation, too long for one turn of the event loop. The result is the
 * same; the caller must not change `config` until it is done.
 */
export function* validateConfigSteps(config: unknown, devicePublicKey: Uint8Array | null | undefined, clock: SliceClock): Generator<void, NormalizedConfig, void> {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new ValidationError('config', `expected a config object, got ${describe(config)}`);
  }
  rejectUnknownFields(config, DEVICE_FIELDS, 'config');
  const c = config as DeviceConfig;
  const normalized: NormalizedConfig = {
    listenPort: optionalInteger(c.listenPort, 'config.listenPort', 0, 65535),
    fwmark: optionalInteger(c.fwmark, 'config.fwmark', 0, 0xffffffff),
    replacePeers: optionalBoolean(c.replacePeers, 'config.replacePeers'),
    peers: [],
  };
  try {
    let ownPublicKey = devicePublicKey ?? null;
    if (c.privateKey !== undefined) {
      normalized.privateKey = c.privateKey === null ? null : decodePrivateKey(c.privateKey, 'config.privateKey');
      ownPublicKey = normalized.privateKey === null ? null : derivePublicKey(normalized.privateKey);
    }
    if (c.peers !== undefined) {
      if (!Array.isArray(c.peers)) throw new ValidationError('config.peers', `expected an array of peers, got ${describe(c.peers)}`);
      const peers: unknown[] = c.peers;
      const seen = new Map<string, number>();
      for (let i = 0; i < peers.length; i++) {
        if (clock.due()) yield;
        const normalizedPeer = validatePeer(peers[i], i);
        normalized.peers.push(normalizedPeer); // before any further check, so a failure wipes it
        if (peers.length === 1) break; // nothing to be a duplicate of
        const key = bytesKey(normalizedPeer.publicKey);
        const first = seen.get(key);
        if (first !== undefined) throw new ValidationError(`${peerPath(i)}.publicKey`, `the same public key as config.peers[${first}]; list each peer once`);
        seen.set(key, i);
      }
      yield* rejectOwnKeyPeerSteps(normalized, ownPublicKey, clock);
      yield* rejectSharedPrefixes(normalized, clock);
      if (normalized.replacePeers) {
        const index = normalized.peers.findIndex((peer) => peer.updateOnly);
        if (index !== -1) {
          throw new ValidationError(`config.peers[${index}].updateOnly`, 'cannot be combined with replacePeers: every peer is removed first, so an update-only peer would never be applied');
        }
      }
    }
  } catch (error) {
    wipeConfig(normalized);
    throw error;
  }
  return normalized;
}

/**
 * Refuses a peer equal to the interface's own public key: the kernel would silently ignore
 * it (set_peer skips a peer whose key is the device's own).
 */
export function rejectOwnKeyPeer(config: NormalizedConfig, ownPublicKey: Uint8Array | null): void {
  runAtOnce(rejectOwnKeyPeerSteps(config, ownPublicKey, new SliceClock(Infinity)));
}

function* rejectOwnKeyPeerSteps(config: NormalizedConfig, ownPublicKey: Uint8Array | null, clock: SliceClock): Generator<void, void, void> {
  if (!ownPublicKey) return;
  for (let index = 0; index < config.peers.length; index++) {
    if (clock.due()) yield;
    const peer = config.peers[index]!;
    if (!peer.remove && Buffer.compare(peer.publicKey, ownPublicKey) === 0) {
      throw new ValidationError(`config.peers[${index}].publicKey`, "equals the interface's own public key; the kernel would silently ignore this peer");
    }
  }
}

/**
 * Refuses the same prefix on two peers of one call: the kernel would silently move it to the
 * later one (an allowed IP routes to exactly one peer).
 */
function* rejectSharedPrefixes(config: NormalizedConfig, clock: SliceClock): Generator<void, void, void> {
  if (config.peers.length < 2) return; // one peer's own prefixes may repeat (the kernel keeps one)
  const owner = new Map<string, number>();
  for (let i = 0; i < config.peers.length; i++) {
    if (clock.due()) yield;
    const allowedIps = config.peers[i]!.allowedIps ?? [];
    for (let j = 0; j < allowedIps.length; j++) {
      const prefix = allowedIps[j]!;
      const key = `${bytesKey(prefix.bytes)}/${prefix.length}`;
      const first = owner.get(key);
      if (first !== undefined && first !== i) {
        throw new ValidationError(`config.peers[${i}].allowedIps[${j}]`, `the same prefix as an allowed IP of config.peers[${first}]; a prefix routes to one peer only`);
      }
      owner.set(key, i);
    }
  }
}

/** A cheap Map key for a short byte string (one char per byte; no base64 or hex). */
function bytesKey(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** Zeroes the secret bytes a normalized config holds. */
export function wipeConfig(config: NormalizedConfig): void {
  config.privateKey?.fill(0);
  for (const peer of config.peers) peer.presharedKey?.fill(0);
}
