/**
 * The implementations compared, and the Node-side adapters the measuring children use.
 *
 * Each adapter is loaded (module import, socket set-up that a long-running process does once)
 * before the timer starts; the measured operations are its methods. wg(8) and ip(8) are run
 * as processes by the measurement modules themselves (see common.ts `measure`).
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, INTERFACE, ROOT_DIR, type PeerSpec } from './common.js';

export interface ImplementationInfo {
  id: string;
  label: string;
  /** One line: what it is. */
  what: string;
}

const require = createRequire(join(BENCH_DIR, 'package.json'));

function packageVersion(name: string): string {
  try {
    // Read directly: some packages' "exports" do not expose package.json.
    const pkg = JSON.parse(readFileSync(join(BENCH_DIR, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '?';
  }
}

export function implementationInfos(): ImplementationInfo[] {
  const jitguard = JSON.parse(readFileSync(join(ROOT_DIR, 'package.json'), 'utf8')) as { version: string };
  return [
    { id: 'jitguard', label: `jitguard ${jitguard.version}`, what: 'this library: TypeScript over a thin N-API addon; size-split SET, merged dumps' },
    { id: 'c-floor', label: 'C one-peer SET (floor)', what: 'bench/gateway/install-floor.c: raw netlink from one long-running C process, nothing else (the system-call floor of one install)' },
    { id: 'node-floor', label: 'Node floor (addon exchange)', what: "jitguard's addon sending a one-peer SET encoded beforehand: the floor of any Node library in this VM" },
    { id: 'wg', label: 'wg(8)', what: 'wireguard-tools (C): one process per call, size-split netlink messages' },
    { id: 'wg-node', label: 'wg(8) from Node', what: 'a Node process spawning wg(8) and parsing its output (what a Node gateway without a netlink library does)' },
    { id: 'ip', label: 'ip link del', what: 'iproute2: RTM_DELLINK; the kernel then tears the peers down one by one' },
    { id: 'wg-flush', label: 'wg setconf /dev/null + ip link del', what: 'the flush-first strategy done with the command-line tools' },
    { id: 'wireguard-tools.js', label: `wireguard-tools.js ${packageVersion('wireguard-tools.js')}`, what: 'npm: C++ addon around the embeddable wireguard library' },
    { id: 'netlink', label: `netlink ${packageVersion('netlink')}`, what: 'npm: TypeScript over a thin netlink addon; its published WireGuard calls' },
    {
      id: 'netlink-raw',
      label: `netlink ${packageVersion('netlink')} (raw request)`,
      what: "npm netlink's own WireGuardSocket.request() with the kernel's command numbers (works around its off-by-one Commands enum); no message splitting",
    },
  ];
}

export function dependencyVersions(): Record<string, string> {
  return {
    'wireguard-tools.js': packageVersion('wireguard-tools.js'),
    netlink: packageVersion('netlink'),
    'better-sqlite3': packageVersion('better-sqlite3'),
  };
}

// ---------------------------------------------------------------------------------------------
// SQLite: the peer store a push-model gateway reloads from after a reboot.

export const PEERS_TABLE = 'CREATE TABLE peers (public_key TEXT PRIMARY KEY, endpoint TEXT NOT NULL, allowed_ip TEXT NOT NULL, persistent_keepalive INTEGER NOT NULL DEFAULT 0)';

type DatabaseConstructor = typeof import('better-sqlite3');

/** better-sqlite3 from bench/node_modules (required by path: this code may run from a bundle elsewhere). */
function sqlite(): DatabaseConstructor {
  return require('better-sqlite3') as DatabaseConstructor;
}

export async function writePeersDatabase(path: string, peers: PeerSpec[]): Promise<void> {
  const Database = sqlite();
  const db = new Database(path);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.exec('DROP TABLE IF EXISTS peers');
  db.exec(PEERS_TABLE);
  const insert = db.prepare('INSERT INTO peers (public_key, endpoint, allowed_ip) VALUES (?, ?, ?)');
  const all = db.transaction((rows: PeerSpec[]) => {
    for (const p of rows) insert.run(p.publicKey, p.endpoint, p.allowedIp);
  });
  all(peers);
  db.close();
}

export interface PeerReader {
  /** Reads every stored peer (timed as part of a reload). */
  read(): PeerSpec[];
  close(): void;
}

export async function openPeerStore(path: string): Promise<PeerReader> {
  const Database = sqlite();
  const db = new Database(path, { readonly: true });
  const statement = db.prepare('SELECT public_key AS publicKey, endpoint, allowed_ip AS allowedIp FROM peers ORDER BY rowid');
  return {
    read: () => statement.all() as PeerSpec[],
    close: () => db.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Library adapters (child side)

export interface Adapter {
  /** Adds or updates peers (reload, single install). */
  setPeers(peers: PeerSpec[]): Promise<void>;
  /** Reads the interface back; returns the number of peers. */
  dump(): Promise<number>;
  removePeers(publicKeys: string[]): Promise<void>;
  deleteInterface(): Promise<void>;
  close(): void;
}

/** Loads an implementation's library and opens what it needs. `privateKey`: see wireguard-tools.js. */
export async function loadAdapter(impl: string, options: { privateKey?: string } = {}): Promise<Adapter> {
  switch (impl) {
    case 'jitguard':
      return loadJitguard();
    case 'wireguard-tools.js':
      return loadWireguardToolsJs(options.privateKey);
    case 'netlink':
      return loadNetlink(false);
    case 'netlink-raw':
      return loadNetlink(true);
    default:
      throw new Error(`no Node adapter for ${impl}`);
  }
}

async function loadJitguard(): Promise<Adapter> {
  const { WireGuard } = await import('../../lib/index.js');
  const wg = new WireGuard();
  return {
    async setPeers(peers) {
      await wg.setDevice(INTERFACE, {
        peers: peers.map((p) => ({ publicKey: p.publicKey, endpoint: p.endpoint, allowedIps: [p.allowedIp] })),
      });
    },
    async dump() {
      return (await wg.getDevice(INTERFACE)).peers.length;
    },
    removePeers: (keys) => wg.removePeers(INTERFACE, keys),
    deleteInterface: () => wg.deleteDevice(INTERFACE),
    close: () => wg.close(),
  };
}

interface WgToolsPeer {
  endpoint?: string;
  allowedIPs?: string[];
  removeMe?: boolean;
}
interface WgTools {
  setConfig(name: string, config: { privateKey?: string; peers: Record<string, WgToolsPeer> }): Promise<unknown>;
  getConfig(name: string): Promise<{ peers?: Record<string, unknown> }>;
  deleteInterface(name: string): Promise<void>;
}

async function loadWireguardToolsJs(privateKey: string | undefined): Promise<Adapter> {
  const wgt = require('wireguard-tools.js') as WgTools;
  // Its setConfig refuses a config without privateKey ("privateKey is empty") and always sets it.
  const key = privateKey ?? '';
  return {
    async setPeers(peers) {
      const map: Record<string, WgToolsPeer> = {};
      for (const p of peers) map[p.publicKey] = { endpoint: p.endpoint, allowedIPs: [p.allowedIp] };
      await wgt.setConfig(INTERFACE, { privateKey: key, peers: map });
    },
    async dump() {
      const config = await wgt.getConfig(INTERFACE);
      return Object.keys(config.peers ?? {}).length;
    },
    async removePeers(keys) {
      const map: Record<string, WgToolsPeer> = {};
      for (const k of keys) map[k] = { removeMe: true };
      await wgt.setConfig(INTERFACE, { privateKey: key, peers: map });
    },
    deleteInterface: () => wgt.deleteInterface(INTERFACE),
    close: () => undefined,
  };
}

interface NlAllowedIp {
  family: number;
  ipaddr: Buffer;
  cidrMask: number;
}
interface NlPeer {
  publicKey: Buffer;
  endpoint?: Buffer;
  allowedIps?: NlAllowedIp[];
  flags?: { removeMe?: true };
}
interface NlDevice {
  ifname?: string;
  peers?: Array<{ publicKey?: Buffer }>;
}
interface NlWireGuardSocket {
  getDevice(iface: string): Promise<NlDevice[]>;
  setDevice(iface: string, msg: { peers: NlPeer[] }): Promise<NlDevice[]>;
  request(cmd: number, msg: Record<string, unknown>, options?: { flags?: number }): Promise<NlDevice[]>;
}
interface NlModule {
  createWireGuard(): Promise<NlWireGuardSocket>;
  createRtNetlink(): {
    getLinks(): Promise<Array<{ data: { index: number }; attrs: { ifname?: string } }>>;
    delLink(data: { index: number }): Promise<unknown>;
    socket?: { socket?: { close?: () => void } };
  };
  FlagsGet: { DUMP: number };
}

/** Kernel uapi (linux/wireguard.h): WG_CMD_GET_DEVICE = 0, WG_CMD_SET_DEVICE = 1. */
const WG_CMD_GET_DEVICE = 0;
const WG_CMD_SET_DEVICE = 1;

function sockaddrIn(endpoint: string): Buffer {
  const at = endpoint.lastIndexOf(':');
  const b = Buffer.alloc(16);
  b.writeUInt16LE(2, 0); // AF_INET
  b.writeUInt16BE(Number(endpoint.slice(at + 1)), 2);
  endpoint
    .slice(0, at)
    .split('.')
    .forEach((octet, i) => b.writeUInt8(Number(octet), 4 + i));
  return b;
}

function nlAllowedIp(cidr: string): NlAllowedIp {
  const [address, length] = cidr.split('/');
  return { family: 2, ipaddr: Buffer.from(address!.split('.').map(Number)), cidrMask: Number(length) };
}

function countPeers(devices: NlDevice[]): number {
  let count = 0;
  let last: string | undefined;
  for (const device of devices) {
    for (const peer of device.peers ?? []) {
      const key = peer.publicKey?.toString('base64');
      if (key !== last) count++; // a peer continued in the next message repeats its key
      last = key;
    }
  }
  return count;
}

async function loadNetlink(raw: boolean): Promise<Adapter> {
  const nl = require('netlink') as NlModule;
  const socket = await nl.createWireGuard();
  const set = (peers: NlPeer[]) =>
    raw ? socket.request(WG_CMD_SET_DEVICE, { ifname: INTERFACE, peers }) : socket.setDevice(INTERFACE, { peers });
  return {
    async setPeers(peers) {
      await set(peers.map((p) => ({ publicKey: Buffer.from(p.publicKey, 'base64'), endpoint: sockaddrIn(p.endpoint), allowedIps: [nlAllowedIp(p.allowedIp)] })));
    },
    async dump() {
      const devices = raw
        ? await socket.request(WG_CMD_GET_DEVICE, { ifname: INTERFACE }, { flags: nl.FlagsGet.DUMP })
        : await socket.getDevice(INTERFACE);
      return countPeers(devices);
    },
    async removePeers(keys) {
      await set(keys.map((k) => ({ publicKey: Buffer.from(k, 'base64'), flags: { removeMe: true } })));
    },
    async deleteInterface() {
      const rt = nl.createRtNetlink();
      const link = (await rt.getLinks()).find((l) => l.attrs.ifname === INTERFACE);
      if (!link) throw new Error(`${INTERFACE} not found by getLinks()`);
      await rt.delLink({ index: link.data.index });
    },
    close: () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// Why the npm peers fail: causes found by reading their sources (bench/node_modules) and the
// kernel's, attached to the failed rows so the table explains itself.

const DIAGNOSES: Array<{ impl: string; pattern: RegExp; cause: string }> = [
  {
    impl: 'netlink',
    pattern: /ENOTSUP|EOPNOTSUPP/,
    cause:
      "cause: netlink@0.3.0's WireGuard `Commands` enum is off by one (GET_DEVICE = 1, SET_DEVICE = 2; linux/wireguard.h has 0 and 1), so getDevice goes out as SET_DEVICE with NLM_F_DUMP and setDevice as command 2; genetlink has no such operation and answers EOPNOTSUPP",
  },
  {
    impl: 'netlink',
    pattern: /message too long|EMSGSIZE/,
    cause: 'cause: the whole configuration goes out as one netlink message (no splitting), and sending it fails',
  },
  {
    impl: 'netlink',
    pattern: /Maximum attribute length exceeded/,
    cause: 'cause: all N peers go into one WGDEVICE_A_PEERS attribute of one message (no splitting); its encoder refuses an attribute longer than 65,535 bytes (the netlink attribute length field)',
  },
  {
    impl: 'netlink-raw',
    pattern: /Maximum attribute length exceeded/,
    cause: 'cause: all N peers go into one WGDEVICE_A_PEERS attribute of one message (no splitting); its encoder refuses an attribute longer than 65,535 bytes (the netlink attribute length field)',
  },
  {
    impl: 'netlink-raw',
    pattern: /message too long|EMSGSIZE/,
    cause: 'cause: the whole configuration goes out as one netlink message (no splitting), and sending it fails',
  },
  {
    impl: 'netlink-raw',
    pattern: /EINVAL/,
    cause:
      "cause: with the right command, the kernel rejects the first peer: netlink@0.3.0 never sets NLA_F_NESTED on nested attributes, and the kernel parses each peer with nla_parse_nested(), which requires it (strict validation since Linux 5.2). Device-only SETs (no peers) do work",
  },
  {
    impl: 'netlink-raw',
    pattern: /Non-sequential array types/,
    cause:
      "cause: with the right command the kernel answers the dump, but netlink@0.3.0's parser expects nested array items numbered from 1 and the kernel numbers peers from 0, so parsing a correct reply throws",
  },
  {
    impl: 'wireguard-tools.js',
    pattern: /code: -17|EEXIST/,
    cause:
      'cause: setConfig always calls wg_add_device() first; its check for an existing device compares C string pointers (`device_name == wgName.c_str()`), which is never true, so an existing interface answers EEXIST. It can only configure an interface it creates in that same call',
  },
  {
    impl: 'wireguard-tools.js',
    pattern: /still exists/,
    cause: 'cause: deleteInterface() has the same pointer comparison: it never finds the device, does nothing and resolves',
  },
];

export function diagnose(impl: string, error: string | undefined): string | undefined {
  if (!error) return undefined;
  return DIAGNOSES.find((d) => d.impl === impl && d.pattern.test(error))?.cause;
}
