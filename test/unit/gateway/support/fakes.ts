/**
 * Fakes for the gateway's unit tests: a kernel WireGuard device in memory (the subset of
 * setDevice semantics the gateway uses, as lib/wireguard/types.ts documents them), a Store in
 * memory, a controllable clock, and initiations built by the independent noble initiator of
 * test/unit/noise/noble-reference.ts (not by our Responder).
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Device, DeviceConfig, GetDeviceOptions, Peer } from '../../../../lib/wireguard/types.js';
import type { StoredPeer, Store } from '../../../../lib/gateway/types.js';
import { buildInitiation, publicKeyOfRaw, randomPrivateKey } from '../../noise/noble-reference.js';
import { tai64nFromUnixMs } from '../../../../lib/noise/tai64n.js';

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

export class FakeKernel {
  readonly peers = new Map<string, Peer>();
  readonly calls: Array<{ op: 'get' | 'set' | 'remove'; peers: number }> = [];
  /** Called before each setDevice with its config; throw to make it fail. */
  beforeSet: ((config: DeviceConfig) => void) | null = null;
  /** Milliseconds each call takes. */
  latencyMs = 0;
  readonly privateKey: KeyObject;
  readonly publicKey: string;
  readonly privateKeyBytes: Uint8Array;

  constructor(readonly name = 'wg0', readonly listenPort = 51820) {
    this.privateKeyBytes = randomPrivateKey();
    this.publicKey = b64(publicKeyOfRaw(this.privateKeyBytes));
    const der = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), this.privateKeyBytes]);
    this.privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }

  count(op: 'get' | 'set' | 'remove'): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  private async wait(): Promise<void> {
    await new Promise((resolve) => (this.latencyMs > 0 ? setTimeout(resolve, this.latencyMs) : setImmediate(resolve)));
  }

  /**
   * As WireGuard.getDevice: with `{ privateKey: true }` the device carries the key (one dump
   * either way); with `onPeers` the peers go to it in batches of 256 and `peers` is empty.
   */
  async getDevice(name: string, options?: GetDeviceOptions): Promise<Device & { privateKey?: KeyObject | null }> {
    this.calls.push({ op: 'get', peers: this.peers.size });
    await this.wait();
    if (name !== this.name) throw Object.assign(new Error('no such device'), { code: 'ENODEV' });
    const peers = [...this.peers.values()].map((p) => ({ ...p, allowedIps: [...p.allowedIps] }));
    if (options?.onPeers) {
      for (let i = 0; i < peers.length; i += 256) await options.onPeers(peers.slice(i, i + 256));
    }
    return {
      name, ifindex: 7, publicKey: this.publicKey, listenPort: this.listenPort, fwmark: 0,
      peers: options?.onPeers ? [] : peers,
      ...(options?.privateKey === true ? { privateKey: this.privateKey } : {}),
    };
  }

  async setDevice(name: string, config: DeviceConfig): Promise<void> {
    this.calls.push({ op: 'set', peers: config.peers?.length ?? 0 });
    await this.wait();
    if (name !== this.name) throw Object.assign(new Error('no such device'), { code: 'ENODEV' });
    this.beforeSet?.(config);
    for (const pc of config.peers ?? []) {
      const key = String(pc.publicKey);
      if (pc.remove) { this.peers.delete(key); continue; }
      let peer = this.peers.get(key);
      if (!peer) {
        if (pc.updateOnly) continue;
        peer = { publicKey: key, hasPresharedKey: false, endpoint: null, persistentKeepalive: 0, lastHandshake: null, rxBytes: 0n, txBytes: 0n, allowedIps: [], protocolVersion: 1 };
        this.peers.set(key, peer);
      }
      if (pc.endpoint !== undefined) peer.endpoint = pc.endpoint;
      if (pc.persistentKeepalive !== undefined) peer.persistentKeepalive = pc.persistentKeepalive;
      if (pc.presharedKey !== undefined) peer.hasPresharedKey = pc.presharedKey !== null;
      if (pc.allowedIps !== undefined) peer.allowedIps = pc.replaceAllowedIps ? [...pc.allowedIps] : [...peer.allowedIps, ...pc.allowedIps];
    }
  }

  async removePeers(name: string, keys: string[]): Promise<void> {
    this.calls.push({ op: 'remove', peers: keys.length });
    await this.wait();
    if (name !== this.name) throw Object.assign(new Error('no such device'), { code: 'ENODEV' });
    for (const key of keys) this.peers.delete(key);
  }

  /** What a client's handshake and traffic would do to the kernel's view of the peer. */
  handshake(key: string, at = new Date()): void {
    const peer = this.peers.get(key);
    if (peer) peer.lastHandshake = at;
  }

  receive(key: string, bytes: bigint): void {
    const peer = this.peers.get(key);
    if (peer) peer.rxBytes += bytes;
  }

  add(peer: Partial<Peer> & { publicKey: string }): void {
    this.peers.set(peer.publicKey, {
      hasPresharedKey: false, endpoint: null, persistentKeepalive: 0, lastHandshake: null, rxBytes: 0n, txBytes: 0n,
      allowedIps: [], protocolVersion: 1, ...peer,
    });
  }
}

export class MemoryStore implements Store {
  readonly peers = new Map<string, StoredPeer | 'revoked'>();
  readonly timestamps = new Map<string, Uint8Array>();
  calls = 0;
  closed = false;

  getPeer(key: string) { this.calls++; return this.peers.get(key) ?? null; }
  putPeer(peer: StoredPeer) { this.peers.set(peer.publicKey, { ...peer }); }
  revokePeer(key: string) { const had = typeof this.peers.get(key) === 'object'; this.peers.set(key, 'revoked'); return had; }
  deletePeer(key: string) { if (this.peers.get(key) !== 'revoked') this.peers.delete(key); }
  getLastTimestamp(key: string) { return this.timestamps.get(key) ?? null; }
  advanceTimestamp(key: string, ts: Uint8Array) {
    const last = this.timestamps.get(key);
    if (last && Buffer.compare(ts, last) <= 0) return false;
    this.timestamps.set(key, Uint8Array.from(ts));
    return true;
  }
  countPeers() { return [...this.peers.values()].filter((p) => p !== 'revoked').length; }
  close() { this.closed = true; }
}

/** A client: a static key pair, and initiations to a responder, each with a later timestamp. */
export class TestClient {
  readonly privateKey = randomPrivateKey();
  readonly publicKey = b64(publicKeyOfRaw(this.privateKey));
  private clock = Date.now();

  constructor(private readonly responderPublic: string) {}

  initiation(timestampMs = ++this.clock): Uint8Array {
    return buildInitiation({
      responderPublic: Buffer.from(this.responderPublic, 'base64'),
      initiatorPrivate: this.privateKey,
      timestamp: tai64nFromUnixMs(timestampMs).bytes,
    });
  }

  /** An initiation claiming this client's key, made by someone without its private key. */
  forgery(): Uint8Array {
    return buildInitiation({
      responderPublic: Buffer.from(this.responderPublic, 'base64'),
      claimedPublic: Buffer.from(this.publicKey, 'base64'),
      timestamp: tai64nFromUnixMs(++this.clock).bytes,
    });
  }
}

export function storedPeer(publicKey: string, fields: Partial<StoredPeer> = {}): StoredPeer {
  return { publicKey, allowedIps: ['10.9.0.2/32'], presharedKey: null, persistentKeepalive: 0, origin: 'push', fetchedAt: Date.now(), ...fields };
}

export function randomKey(): string {
  const { publicKey } = generateKeyPairSync('x25519');
  return publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
}

export class FakeClock {
  constructor(public t = 1_000_000) {}
  now = (): number => this.t;
  advance(ms: number): void { this.t += ms; }
}

export const tick = () => new Promise((resolve) => setImmediate(resolve));
