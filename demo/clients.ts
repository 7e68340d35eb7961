/**
 * The demo's clients. Kernel WireGuard clients are configured with wg(8) and ip(8) only, and
 * know nothing but the gateway's public key and address: what a user's `wg-quick up` gives. The
 * WebSocket client is one of those behind `jitguard ws-connect`; the forger is not a WireGuard
 * implementation at all but an initiation built by the tests' own initiator
 * (test/unit/noise/noble-reference.ts: @noble only, nothing from lib/noise), sent with dgram.
 *
 * Every figure comes from the tools: ping's own round-trip time for the first reply (its echo
 * request is the first packet into the tunnel, and the one that makes the kernel initiate),
 * wg(8) for what the kernel holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { createInterface } from 'node:readline';
import { buildInitiation } from '../test/unit/noise/noble-reference.js';
import { NamespaceSender } from '../test/kernel/support/gateway-sender.js';
import { inNamespace, script } from './exec.js';
import { GATEWAY, HOME, NAT } from './topology.js';

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

export interface KernelClient extends KeyPair {
  /** The demo's name for it (table rows, log lines, the peers file). */
  name: string;
  namespace: string;
  /** How its packets travel, for the table. */
  path: string;
  /** Its own address inside the tunnel. */
  tunnelAddress: string;
  listenPort: number;
  /** The gateway endpoint its peer is configured with. */
  endpoint: string;
  /** Listed in the control plane's peers file. */
  known: boolean;
  /** Where the gateway should see it come from: described, and checked against wg(8)'s endpoint. */
  seenAs: { describe: string; matches: (endpoint: string) => boolean };
}

const WEBSOCKET_BRIDGE_PORT = 51821;

/** The cast: four the control plane knows, and a stranger. */
export function kernelClients(): KernelClient[] {
  const client = (name: string, namespace: string, n: number, path: string, endpoint: string, seenAs: KernelClient['seenAs'], known = true): KernelClient => ({
    ...newKeyPair(), name, namespace, path, endpoint, known, seenAs, tunnelAddress: `10.7.0.${n}`, listenPort: 40000 + n,
  });
  const exactly = (endpoint: string) => ({ describe: endpoint, matches: (e: string) => e === endpoint });
  const udp4 = `${GATEWAY.v4}:${GATEWAY.listenPort}`;
  return [
    client('ipv4', 'jgd-ipv4', 11, 'UDP over IPv4 from 192.0.2.11', udp4, exactly('192.0.2.11:40011')),
    client('ipv6', 'jgd-ipv6', 12, 'UDP over IPv6 from 2001:db8:1::12', `[${GATEWAY.v6}]:${GATEWAY.listenPort}`, exactly('[2001:db8:1::12]:40012')),
    client('nat', HOME.namespace, 13, `UDP over IPv4 from ${HOME.address}, behind NAT`, udp4, {
      describe: `the NAT's address and a port it maps to (${NAT.outside}:${NAT.ports.min}-${NAT.ports.max})`,
      matches: (e) => {
        const at = e.lastIndexOf(':');
        const port = Number(e.slice(at + 1));
        return e.slice(0, at) === NAT.outside && port >= NAT.ports.min && port <= NAT.ports.max;
      },
    }),
    client('websocket', 'jgd-ws', 14, `WebSocket (UDP blocked): ws-connect → wss://${GATEWAY.v4}/ → relay`, `127.0.0.1:${WEBSOCKET_BRIDGE_PORT}`, {
      describe: "the relay's socket on the gateway's loopback (127.0.0.1)",
      matches: (e) => /^127\.0\.0\.1:\d+$/.test(e),
    }),
    client('stranger', 'jgd-stranger', 15, 'UDP over IPv4 from 192.0.2.15', udp4, exactly('(never)'), false),
  ];
}

/**
 * The client's wg0, configured as a user would (it sends nothing until used): ip(8) batch lines
 * for its namespace, and the wg(8) command that keys it.
 */
export function kernelClientSetup(client: KernelClient, keyFile: string, gatewayPublicKey: string): { batch: string[]; command: string } {
  return {
    batch: [
      'link add wg0 type wireguard',
      // A /24, not a /32: the prefix route through wg0 comes back by itself after a link down/up.
      `addr add ${client.tunnelAddress}/24 dev wg0`,
      'link set wg0 up',
    ],
    command: `ip netns exec ${client.namespace} wg set wg0 private-key ${keyFile} listen-port ${client.listenPort} ` +
      `peer ${gatewayPublicKey} endpoint ${client.endpoint} allowed-ips ${GATEWAY.tunnel}/32`,
  };
}

export interface PingResult {
  replied: boolean;
  /** ping's round-trip time of the reply (ms): from the client's first packet to its first reply. */
  rttMs: number | null;
}

/** One echo request to the gateway's tunnel address, waited for `timeoutSeconds`. */
export async function ping(client: KernelClient, timeoutSeconds: number): Promise<PingResult> {
  try {
    const out = await inNamespace(client.namespace, 'ping', ['-n', '-c', '1', '-W', String(timeoutSeconds), GATEWAY.tunnel]);
    const match = /time=([\d.]+) ms/.exec(out);
    return { replied: true, rttMs: match ? Number(match[1]) : null };
  } catch {
    return { replied: false, rttMs: null };
  }
}

/**
 * The client goes away and comes back (`wg-quick down; wg-quick up`, a laptop waking): taking
 * wg0 down clears the kernel's session and handshake state, so its next packet starts a fresh
 * handshake at once rather than sending data the gateway can no longer decrypt.
 */
export async function reconnect(client: KernelClient): Promise<void> {
  await script([`ip -n ${client.namespace} link set wg0 down`, `ip -n ${client.namespace} link set wg0 up`]);
}

/** The gateway's wg0 peers as wg(8) shows them: public key → endpoint. */
export async function gatewayKernelPeers(): Promise<Map<string, string>> {
  const out = await inNamespace(GATEWAY.namespace, 'wg', ['show', 'wg0', 'endpoints']);
  const peers = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [key, endpoint] = line.split('\t');
    if (key) peers.set(key, endpoint ?? '(none)');
  }
  return peers;
}

/** A line-delimited JSON log from a child (the daemon, ws-connect), each line with its arrival time. */
export interface LogLine {
  event?: string;
  at: number;
  [field: string]: unknown;
}

/** `jitguard ws-connect` in the WebSocket client's namespace: a local UDP port ↔ the relay. */
export class WebSocketConnect {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';

  private constructor(private readonly child: ChildProcess, onLine: (line: LogLine) => void) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = { ...(JSON.parse(text) as object), at: Date.now() };
      } catch {
        line = { event: 'output', msg: text, at: Date.now() };
      }
      this.lines.push(line);
      onLine(line);
    });
  }

  /** `prefix`: how to run it as nobody with no capability at all (a client bridge needs none), or [] for root. */
  static start(client: KernelClient, jitguard: readonly string[], prefix: readonly string[], pinSha256: string, onLine: (line: LogLine) => void): WebSocketConnect {
    const child = spawn('ip', [
      'netns', 'exec', client.namespace, ...prefix,
      ...jitguard, 'ws-connect', '--url', `wss://${GATEWAY.v4}:${GATEWAY.websocketPort}/`,
      '--listen', `127.0.0.1:${WEBSOCKET_BRIDGE_PORT}`, '--pin-sha256', pinSha256,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new WebSocketConnect(child, onLine);
  }

  get connected(): boolean {
    return this.lines.some((l) => l.event === 'connected');
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** TAI64N of now, as an initiator writes it (2^62 + 10 + unix seconds, nanoseconds). */
function tai64nNow(): Uint8Array {
  const ms = Date.now();
  const out = Buffer.alloc(12);
  out.writeBigUInt64BE(0x400000000000000an + BigInt(Math.floor(ms / 1000)));
  out.writeUInt32BE((ms % 1000) * 1e6, 8);
  return out;
}

/**
 * The forger: knows the gateway's public key and a customer's public key, not the customer's
 * private key. Its initiation has a valid mac1 and a static key that decrypts to the claimed
 * key; only the timestamp, sealed with DH(static_i, static_r), gives it away.
 */
export class Forger {
  readonly address = '192.0.2.16';
  private readonly sender: NamespaceSender;

  private constructor(namespace: string) {
    this.sender = NamespaceSender.start(namespace);
  }

  /** Starts its sending process now (a node start takes a second or more in the VM). */
  static start(namespace = 'jgd-forger'): Forger {
    return new Forger(namespace);
  }

  /**
   * Builds one initiation claiming `claimedPublicKey`. Done ahead of sending: the first build in
   * a process compiles the JS curve code, which takes seconds in the TCG VM.
   */
  forge(gatewayPublicKey: string, claimedPublicKey: string): Uint8Array {
    return buildInitiation({
      responderPublic: Buffer.from(gatewayPublicKey, 'base64'),
      claimedPublic: Buffer.from(claimedPublicKey, 'base64'),
      timestamp: tai64nNow(),
    });
  }

  /** Sends it to the gateway; resolves with the source it left from. */
  send(packet: Uint8Array): Promise<{ address: string; port: number }> {
    return this.sender.send({ packet, address: GATEWAY.v4, port: GATEWAY.listenPort, bind: this.address });
  }

  stop(): void {
    this.sender.stop();
  }
}
