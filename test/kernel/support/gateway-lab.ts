/**
 * The network the gateway's kernel tests run in: a gateway namespace holding wg0 (a key, a
 * listen port, no peers) and a client namespace holding real kernel WireGuard clients, joined
 * by a veth pair (or, with `nat`, through a middle namespace that masquerades). Clients are
 * configured with wg(8) and ip(8) only, and wg(8) reads the gateway's kernel state back: both
 * are independent of the code under test.
 *
 * Addresses:
 *   gateway  veth-gw 192.0.2.1/24, fd00:2::1/64; wg0 10.7.0.1/16, and every 10.7.200.x is local
 *   client   veth-cl 192.0.2.2/24, 192.0.2.3 (a replayer elsewhere), fd00:2::2/64, and
 *            192.0.2.(10+i) for client i's packets (policy routing on its fwmark)
 *            (with nat: veth-cl 192.168.50.2/24 → nat 192.168.50.1 | 192.0.2.2 → gateway)
 *   client i wgc<i> 10.7.1.<i>/32 inside the tunnel; it reaches the gateway at 10.7.200.<i>,
 *            routed through its own interface, so one process can make every client send at
 *            once (see `burst`) and each ping picks its client by its destination.
 *
 * Everything runs asynchronously: the gateway lives in the test process, and a blocking child
 * would stall its capture. Each exec costs ~0.2-1 s in the TCG VM, hence the batching.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WireGuard } from '../../../lib/index.js';
import type { Namespace } from './netns.js';
import { trace } from './gateway-trace.js';

/**
 * Runs a command; resolves with stdout, rejects on a non-zero exit. Stdin is /dev/null unless
 * `input` is given, never a socket: bash sources ~/.bashrc when its stdin is a socket (as
 * Node's 'pipe' stdio is), which costs ~30 s per bash in the VM on a host whose .bashrc does work.
 */
async function exec(command: string, args: string[], input?: string): Promise<string> {
  const started = performance.now();
  try {
    return await new Promise<string>((resolve, reject) => {
      const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.once('error', reject);
      child.once('close', (code, signal) => {
        if (code === 0) resolve(stdout);
        else reject(Object.assign(new Error(`${command} ${args.join(' ')} failed (${signal ?? code}): ${stderr.trim()}`), { code, stdout, stderr }));
      });
      if (input !== undefined) child.stdin!.end(input);
    });
  } finally {
    trace(`${command} ${args.join(' ').slice(0, 100)}${input ? ' <' + input.slice(0, 60).replace(/\n/g, '; ') : ''}: ${(performance.now() - started).toFixed(0)} ms`);
  }
}

export const GATEWAY_V4 = '192.0.2.1';
export const GATEWAY_V6 = 'fd00:2::1';
export const CLIENT_V4 = '192.0.2.2';
export const CLIENT_V6 = 'fd00:2::2';
/** A second address of the client namespace: a replayer somewhere else. */
export const OTHER_V4 = '192.0.2.3';
export const NAT_INSIDE_V4 = '192.168.50.2';
/** Ports the masquerade maps to: a translated endpoint is visibly not the client's own. */
export const NAT_PORTS = { min: 10000, max: 10100 };
export const LISTEN_PORT = 51820;

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export function newKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const raw = (der: Buffer) => der.subarray(der.length - 32).toString('base64');
  return {
    privateKey: raw(privateKey.export({ format: 'der', type: 'pkcs8' })),
    publicKey: raw(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })),
  };
}

export interface Client extends KeyPair {
  index: number;
  /** The client's WireGuard interface in the client namespace. */
  device: string;
  /** Its address inside the tunnel (what the control plane gives as allowed IPs). */
  innerAddress: string;
  /** The gateway-side address only this client routes (through its own interface). */
  target: string;
  listenPort: number;
  /**
   * The outer address its packets leave from: its own 192.0.2.(10+i) (policy routing on its
   * fwmark, so clients are distinct sources as on the Internet, each with its own rate-limit
   * bucket), fd00:2::2 over IPv6, the NAT's address behind NAT.
   */
  sourceAddress: string;
  /** The gateway endpoint it was configured with. */
  endpoint: string;
  persistentKeepalive: number;
}

export interface ClientOptions {
  /** 'v4' (default) or 'v6': which outer address of the gateway the client talks to. */
  family?: 'v4' | 'v6';
  /** Seconds; non-zero makes the client initiate as soon as its interface is up. */
  persistentKeepalive?: number;
}

export interface KernelPeer {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  latestHandshake: number;
  rxBytes: number;
  persistentKeepalive: number;
}

export interface PingResult {
  ok: boolean;
  /** ping's own round trip for the first reply (ms); null without one. */
  rttMs: number | null;
  /** Wall time of the ping command (includes its exec). */
  elapsedMs: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Ns implements Namespace {
  readonly path: string;
  constructor(readonly name: string) {
    this.path = `/run/netns/${name}`;
  }
  exec(command: string, args: string[], input?: string): Promise<string> {
    return exec('ip', ['netns', 'exec', this.name, command, ...args], input);
  }
  /** One ip(8) process for many commands. */
  batch(lines: string[]): Promise<string> {
    return exec('ip', ['-n', this.name, '-batch', '-'], lines.join('\n') + '\n');
  }
  bash(script: string): Promise<string> {
    return this.exec('bash', ['--norc', '--noprofile', '-c', script]);
  }
}

export interface LabOptions {
  /** Put the client behind a masquerading namespace (nftables). */
  nat?: boolean;
}

export class GatewayLab {
  readonly gateway: Ns;
  readonly client: Ns;
  readonly nat: Ns | null;
  readonly gatewayKeys = newKeyPair();
  readonly dir = mkdtempSync(join(tmpdir(), 'jg-gwk-'));
  private readonly clients: Client[] = [];
  private readonly children = new Set<ChildProcess>();

  private constructor(options: LabOptions) {
    const id = randomBytes(3).toString('hex');
    this.gateway = new Ns(`jg-gw-${id}`);
    this.client = new Ns(`jg-cl-${id}`);
    this.nat = options.nat ? new Ns(`jg-nat-${id}`) : null;
  }

  static async create(options: LabOptions = {}): Promise<GatewayLab> {
    const lab = new GatewayLab(options);
    try {
      await lab.build();
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  get namespaces(): Ns[] {
    return [this.gateway, this.client, ...(this.nat ? [this.nat] : [])];
  }

  private async build(): Promise<void> {
    for (const ns of this.namespaces) await exec('ip', ['netns', 'add', ns.name]);
    const gw = this.gateway.name;
    const cl = this.client.name;
    if (this.nat === null) {
      await exec('ip', ['link', 'add', 'veth-gw', 'netns', gw, 'type', 'veth', 'peer', 'name', 'veth-cl', 'netns', cl]);
      await this.client.batch([
        'link set lo up',
        `addr add ${CLIENT_V4}/24 dev veth-cl`,
        `addr add ${OTHER_V4}/24 dev veth-cl`,
        `addr add ${CLIENT_V6}/64 dev veth-cl nodad`,
        'link set veth-cl up',
      ]);
    } else {
      const nat = this.nat.name;
      await exec('ip', ['link', 'add', 'veth-gw', 'netns', gw, 'type', 'veth', 'peer', 'name', 'veth-ng', 'netns', nat]);
      await exec('ip', ['link', 'add', 'veth-cl', 'netns', cl, 'type', 'veth', 'peer', 'name', 'veth-nc', 'netns', nat]);
      await this.client.batch([
        'link set lo up',
        `addr add ${NAT_INSIDE_V4}/24 dev veth-cl`,
        'link set veth-cl up',
        'route add default via 192.168.50.1',
      ]);
      await this.nat.batch([
        'link set lo up',
        'addr add 192.168.50.1/24 dev veth-nc',
        `addr add ${CLIENT_V4}/24 dev veth-ng`,
        'link set veth-nc up',
        'link set veth-ng up',
      ]);
      await this.nat.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      // Masquerade onto a port range the client does not use: the gateway must see (and
      // install) the translated address and port, and has no route to 192.168.50.0/24.
      await this.nat.exec('nft', ['-f', '-'], [
        'table ip nat {',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    oifname "veth-ng" meta l4proto udp masquerade to :${NAT_PORTS.min}-${NAT_PORTS.max}`,
        '  }',
        '}',
      ].join('\n') + '\n');
    }
    await this.gateway.batch([
      'link set lo up',
      `addr add ${GATEWAY_V4}/24 dev veth-gw`,
      `addr add ${GATEWAY_V6}/64 dev veth-gw nodad`,
      'link set veth-gw up',
    ]);
    // wg0: a key, a port, no peers (created through jitguard, as a deployment would).
    const admin = new WireGuard({ netns: this.gateway.path });
    try {
      await admin.createDevice('wg0');
      await admin.setDevice('wg0', { privateKey: this.gatewayKeys.privateKey, listenPort: LISTEN_PORT });
    } finally {
      await admin.close();
    }
    await this.gateway.batch([
      'addr add 10.7.0.1/16 dev wg0',
      'link set wg0 up',
      // Every 10.7.200.x is the gateway's (each client pings its own one).
      'route add local 10.7.200.0/24 dev lo',
    ]);
  }

  /** Creates `count` kernel WireGuard clients (keys generated here), configured with wg(8) and up. */
  async addClients(count: number, options: ClientOptions = {}): Promise<Client[]> {
    const made: Client[] = [];
    for (let n = 0; n < count; n++) {
      const index = this.clients.length + 1;
      if (index > 199) throw new Error('at most 199 clients per lab');
      const keys = newKeyPair();
      const client: Client = {
        ...keys, index,
        device: `wgc${index}`,
        innerAddress: `10.7.1.${index}`,
        target: `10.7.200.${index}`,
        listenPort: 40000 + index,
        sourceAddress: this.nat !== null ? CLIENT_V4 : options.family === 'v6' ? CLIENT_V6 : `192.0.2.${10 + index}`,
        endpoint: options.family === 'v6' ? `[${GATEWAY_V6}]:${LISTEN_PORT}` : `${GATEWAY_V4}:${LISTEN_PORT}`,
        persistentKeepalive: options.persistentKeepalive ?? 0,
      };
      writeFileSync(this.keyFile(client), keys.privateKey + '\n', { mode: 0o600 });
      this.clients.push(client);
      made.push(client);
    }
    // Links and addresses first (down, so a keepalive client initiates only once it is whole).
    await this.client.batch(made.flatMap((c) => [
      `link add ${c.device} type wireguard`,
      `addr add ${c.innerAddress}/32 dev ${c.device}`,
    ]));
    const ownSource = (c: Client) => this.nat === null && c.sourceAddress !== CLIENT_V6;
    const routed = made.filter(ownSource);
    if (routed.length > 0) {
      await this.client.batch(routed.flatMap((c) => [
        `addr add ${c.sourceAddress}/32 dev veth-cl`,
        `rule add fwmark ${0x100 + c.index} lookup ${100 + c.index}`,
        `route add 192.0.2.0/24 dev veth-cl src ${c.sourceAddress} table ${100 + c.index}`,
      ]));
    }
    await this.client.bash(made.map((c) => `wg set ${c.device} private-key ${this.keyFile(c)} listen-port ${c.listenPort}` +
      `${ownSource(c) ? ` fwmark ${0x100 + c.index}` : ''} ${this.peerArgs(c)}`).join(' && '));
    await this.client.batch(made.flatMap((c) => [`link set ${c.device} up`, `route add ${c.target}/32 dev ${c.device}`]));
    return made;
  }

  /**
   * Makes the client send a fresh handshake initiation now: its gateway peer is removed and
   * added again with a keepalive (a new peer has no handshake rate limit, and a keepalive going
   * from 0 to non-zero sends at once). This also drops the client's session.
   */
  async knock(client: Client): Promise<void> {
    client.persistentKeepalive = 25;
    await this.client.bash(`wg set ${client.device} peer ${this.gatewayKeys.publicKey} remove && wg set ${client.device} ${this.peerArgs(client)}`);
  }

  /** Deletes the client's interface (it sends nothing more). */
  async removeClient(client: Client): Promise<void> {
    await this.client.exec('ip', ['link', 'del', client.device]);
  }

  /**
   * One datagram from each client's tunnel at once: bash's /dev/udp is a builtin, so the sends
   * are microseconds apart and every kernel client queues its packet and initiates together.
   */
  async burst(clients: readonly Client[]): Promise<void> {
    await this.client.bash(clients.map((c) => `echo knock > /dev/udp/${c.target}/9`).join('; '));
  }

  async ping(client: Client, timeoutSeconds: number): Promise<PingResult> {
    const started = performance.now();
    try {
      const out = await this.client.exec('ping', ['-n', '-c', '1', '-W', String(timeoutSeconds), client.target]);
      return { ok: true, rttMs: parseRtt(out), elapsedMs: performance.now() - started };
    } catch {
      return { ok: false, rttMs: null, elapsedMs: performance.now() - started };
    }
  }

  /** Pings until one reply (one request a second) or `deadlineSeconds`. */
  async pingUntilReply(client: Client, deadlineSeconds: number): Promise<PingResult> {
    const started = performance.now();
    try {
      const out = await this.client.exec('ping', ['-n', '-c', '1', '-i', '1', '-w', String(deadlineSeconds), client.target]);
      return { ok: true, rttMs: parseRtt(out), elapsedMs: performance.now() - started };
    } catch {
      return { ok: false, rttMs: null, elapsedMs: performance.now() - started };
    }
  }

  /** Pings every client at once (one process); returns the clients that got no reply. */
  async pingAll(clients: readonly Client[], deadlineSeconds: number): Promise<Client[]> {
    const script = clients.map((c) => `(ping -n -q -c 1 -i 1 -w ${deadlineSeconds} ${c.target} >/dev/null 2>&1 || echo ${c.index}) &`).join('\n') + '\nwait';
    const failed = new Set((await this.client.bash(script)).split(/\s+/).filter(Boolean).map(Number));
    return clients.filter((c) => failed.has(c.index));
  }

  /** A ping that runs until stopped, counting replies (the "active client"). */
  pingContinuously(client: Client, intervalSeconds: number): ContinuousPing {
    const child = spawn('ip', ['netns', 'exec', this.client.name, 'ping', '-n', '-i', String(intervalSeconds), client.target], { stdio: ['ignore', 'pipe', 'ignore'] });
    this.children.add(child);
    const replies: number[] = [];
    let buffered = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (/bytes from/.test(line)) replies.push(Date.now());
    });
    return {
      replies,
      repliesSince: (at) => replies.filter((t) => t >= at).length,
      stop: () => {
        child.kill('SIGINT');
        this.children.delete(child);
      },
    };
  }

  /** The gateway's kernel peers as wg(8) shows them. */
  async kernelPeers(): Promise<KernelPeer[]> {
    const out = await this.gateway.exec('wg', ['show', 'wg0', 'dump']);
    return out.trim().split('\n').slice(1).filter(Boolean).map((line) => {
      const [publicKey, , endpoint, allowedIps, handshake, rx, , keepalive] = line.split('\t');
      return {
        publicKey: publicKey!,
        endpoint: endpoint === '(none)' ? null : endpoint!,
        allowedIps: allowedIps === '(none)' ? [] : allowedIps!.split(','),
        latestHandshake: Number(handshake),
        rxBytes: Number(rx),
        persistentKeepalive: keepalive === 'off' ? 0 : Number(keepalive),
      };
    });
  }

  async kernelPeer(publicKey: string): Promise<KernelPeer | undefined> {
    return (await this.kernelPeers()).find((p) => p.publicKey === publicKey);
  }

  /** Adds a peer to wg0 behind the gateway's back (with wg(8)). */
  async plantKernelPeer(publicKey: string, allowedIp: string): Promise<void> {
    await this.gateway.exec('wg', ['set', 'wg0', 'peer', publicKey, 'allowed-ips', allowedIp]);
  }

  /**
   * tcpdump on the client's veth, for a real client's packets as they left it (the replay test
   * resends one): resolves once tcpdump listens; `stop()` returns the UDP payloads sent to the
   * gateway's port.
   */
  async tcpdump(): Promise<{ stop(): Promise<UdpPacket[]> }> {
    const file = join(this.dir, `capture-${randomBytes(3).toString('hex')}.pcap`);
    const child = spawn('ip', ['netns', 'exec', this.client.name, 'tcpdump', '-i', 'veth-cl', '-n', '-U', '--immediate-mode', '-w', file, 'udp', 'and', 'dst', 'port', String(LISTEN_PORT)], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.children.add(child);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tcpdump did not start: ${stderr}`)), 30_000);
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr += chunk;
        if (stderr.includes('listening on')) { clearTimeout(timer); resolve(); }
      });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`tcpdump exited (${code}): ${stderr}`)); });
    });
    return {
      stop: async () => {
        child.kill('SIGINT');
        await exited;
        this.children.delete(child);
        return parsePcap(readFileSync(file));
      },
    };
  }

  async destroy(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    for (const ns of this.namespaces) {
      try { await exec('ip', ['netns', 'del', ns.name]); } catch { /* not created */ }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private keyFile(client: Client): string {
    return join(this.dir, `${client.device}.key`);
  }

  private peerArgs(client: Client): string {
    return `peer ${this.gatewayKeys.publicKey} endpoint ${client.endpoint} allowed-ips ${client.target}/32` +
      (client.persistentKeepalive > 0 ? ` persistent-keepalive ${client.persistentKeepalive}` : '');
  }
}

export interface ContinuousPing {
  /** Date.now() of each reply. */
  replies: number[];
  repliesSince(at: number): number;
  stop(): void;
}

function parseRtt(out: string): number | null {
  const match = /time=([\d.]+) ms/.exec(out);
  return match ? Number(match[1]) : null;
}

export interface UdpPacket {
  source: { address: string; port: number };
  payload: Buffer;
}

/** The UDP payloads of a pcap file (Ethernet, IPv4 or IPv6): enough of the format for tcpdump -w. */
export function parsePcap(file: Buffer): UdpPacket[] {
  const magic = file.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`not a little-endian pcap file (magic ${magic.toString(16)})`);
  if (file.readUInt32LE(20) !== 1) throw new Error('not an Ethernet capture');
  const packets: UdpPacket[] = [];
  for (let at = 24; at + 16 <= file.length;) {
    const length = file.readUInt32LE(at + 8);
    const frame = file.subarray(at + 16, at + 16 + length);
    at += 16 + length;
    const etherType = frame.readUInt16BE(12);
    let ip = frame.subarray(14);
    let address: string;
    if (etherType === 0x0800 && ip[9] === 17) {
      address = [...ip.subarray(12, 16)].join('.');
      ip = ip.subarray((ip[0]! & 0x0f) * 4);
    } else if (etherType === 0x86dd && ip[6] === 17) {
      const words = [];
      for (let i = 8; i < 24; i += 2) words.push(ip.readUInt16BE(i).toString(16));
      address = words.join(':');
      ip = ip.subarray(40);
    } else {
      continue;
    }
    packets.push({ source: { address, port: ip.readUInt16BE(0) }, payload: Buffer.from(ip.subarray(8, ip.readUInt16BE(4))) });
  }
  return packets;
}

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes (then throws, naming `what`). */
export async function waitFor<T>(condition: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export { sleep };
