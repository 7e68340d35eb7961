/**
 * The network the gateway benchmarks run on, inside the bench VM:
 *
 *   gateway netns                              clients netns
 *   wg0 10.200.0.1/16, :51820, private key     wgcN: kernel WireGuard clients, 10.200.x.y/32
 *   veth-gw 192.0.2.1/24  ◀──── veth ────▶     veth-cl 192.0.2.2/24
 *   198.18.0.0/15 via 192.0.2.2                + one /32 per synthetic source (198.18.x.y)
 *
 * The gateway's capture listens on veth-gw. Synthetic initiations leave the clients' namespace
 * from their own source addresses (the per-source rate limit sees distinct clients), and the
 * kernel's handshakes back to them route to the clients' namespace, where sockets take them.
 */
import { writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { INTERFACE, SCRATCH, makePrivateKey, scratchPath, sh } from '../netlink/common.js';
import { keyPairFromPrivate } from './initiator.js';

export const GATEWAY_ADDRESS = '192.0.2.1';
export const CLIENT_LINK_ADDRESS = '192.0.2.2';
export const LISTEN_PORT = 51820;
export const TUNNEL_GATEWAY = '10.200.0.1';
export const GATEWAY_LINK = 'veth-gw';

export interface Topology {
  gatewayNs: string;
  clientNs: string;
  /** The gateway interface's keys (base64). */
  privateKey: string;
  publicKey: string;
  /** Extra source addresses on the clients' link (198.18.0.0/15). */
  sources: string[];
}

let counter = 0;

/** The i-th synthetic source address: 198.18.0.1, 198.18.0.2, … (skipping .0 and .255). */
export function sourceAddress(i: number): string {
  const host = (i % 254) + 1;
  const net = Math.floor(i / 254);
  return `198.${18 + (net >> 8)}.${net & 255}.${host}`;
}

/** The i-th tunnel address of a client (10.200.1.0/24 onwards; 10.200.0.1 is the gateway). */
export function tunnelAddress(i: number): string {
  const host = (i % 254) + 1;
  const net = 1 + Math.floor(i / 254);
  return `10.200.${net}.${host}`;
}

export function publicKeyOf(privateKey: string): string {
  return keyPairFromPrivate(Buffer.from(privateKey, 'base64')).publicKey.toString('base64');
}

/**
 * Both namespaces, the veth link, wg0 (key, port, address, up) and `sources` extra addresses.
 * `peersConf`, when given, is loaded onto wg0 with `wg addconf` before it goes up, and the wall
 * time of that load is returned (the kernel's bulk cost for those peers).
 */
export async function createTopology(tag: string, options: { sources?: number; peersConf?: string } = {}): Promise<Topology & { addconfSeconds?: number }> {
  const id = `${process.pid % 100000}-${++counter}`;
  const gatewayNs = `jgg-${tag}-${id}`;
  const clientNs = `jgc-${tag}-${id}`;
  const privateKey = makePrivateKey();
  const keyFile = scratchPath(`gwkey-${id}`);
  writeFileSync(keyFile, privateKey + '\n', { mode: 0o600 });
  const sources = Array.from({ length: options.sources ?? 0 }, (_, i) => sourceAddress(i));
  const steps = [
    `ip netns add ${gatewayNs}`,
    `ip netns add ${clientNs}`,
    `ip -n ${gatewayNs} link set lo up`,
    `ip -n ${clientNs} link set lo up`,
    `ip link add ${GATEWAY_LINK} netns ${gatewayNs} type veth peer name veth-cl netns ${clientNs}`,
    `ip -n ${gatewayNs} addr add ${GATEWAY_ADDRESS}/24 dev ${GATEWAY_LINK}`,
    `ip -n ${clientNs} addr add ${CLIENT_LINK_ADDRESS}/24 dev veth-cl`,
    `ip -n ${gatewayNs} link set ${GATEWAY_LINK} up`,
    `ip -n ${clientNs} link set veth-cl up`,
    `ip -n ${gatewayNs} route add 198.18.0.0/15 via ${CLIENT_LINK_ADDRESS}`,
    `ip -n ${gatewayNs} link add ${INTERFACE} type wireguard`,
    `ip netns exec ${gatewayNs} wg set ${INTERFACE} private-key ${keyFile} listen-port ${LISTEN_PORT}`,
    `rm -f ${keyFile}`,
    `ip -n ${gatewayNs} addr add ${TUNNEL_GATEWAY}/16 dev ${INTERFACE}`,
  ];
  const batch = join(SCRATCH, `sources-${id}.batch`);
  if (sources.length) {
    writeFileSync(batch, sources.map((a) => `addr add ${a}/32 dev veth-cl`).join('\n') + '\n');
    steps.push(`ip -n ${clientNs} -batch ${batch}`, `rm -f ${batch}`);
  }
  const topology: Topology = { gatewayNs, clientNs, privateKey, publicKey: publicKeyOf(privateKey), sources };
  try {
    await sh('bash', ['-euc', steps.join('\n')]);
    let addconfSeconds: number | undefined;
    if (options.peersConf !== undefined) {
      const conf = join(SCRATCH, `peers-${id}.conf`);
      writeFileSync(conf, options.peersConf);
      const out = await sh('bash', ['-euc', `s=$EPOCHREALTIME; ip netns exec ${gatewayNs} wg addconf ${INTERFACE} ${conf}; e=$EPOCHREALTIME; rm -f ${conf}; echo "$s $e"`]);
      const [s, e] = out.trim().split(' ').map(Number);
      addconfSeconds = e! - s!;
    }
    await sh('ip', ['-n', gatewayNs, 'link', 'set', INTERFACE, 'up']);
    return { ...topology, addconfSeconds };
  } catch (error) {
    rmSync(keyFile, { force: true });
    await destroyTopology(topology);
    throw error;
  }
}

/** Flushes wg0's peers first (deleting an interface that holds peers is the kernel's slow path), then both namespaces. */
export async function destroyTopology(t: Pick<Topology, 'gatewayNs' | 'clientNs'>): Promise<void> {
  await sh('bash', ['-c', [
    `ip netns exec ${t.gatewayNs} wg setconf ${INTERFACE} /dev/null 2>/dev/null`,
    // Client interfaces hold one peer each: deleted with the namespace.
    `ip netns del ${t.clientNs} 2>/dev/null`,
    `ip netns del ${t.gatewayNs} 2>/dev/null`,
    'true',
  ].join('; ')]);
}

/** Peers on wg0, counted by wg(8). */
export async function kernelPeerCount(t: Topology): Promise<number> {
  return Number((await sh('bash', ['-c', `ip netns exec ${t.gatewayNs} wg show ${INTERFACE} peers | wc -l`])).trim());
}

/** A kernel WireGuard client that knows only the gateway (key, endpoint): wg(8) configures it. */
export interface KernelClient {
  name: string;
  privateKey: string;
  publicKey: string;
  address: string;
}

export function newKernelClient(name: string, address: string): KernelClient {
  const privateKey = makePrivateKey();
  return { name, privateKey, publicKey: publicKeyOf(privateKey), address };
}

/** Creates the client's interface (fresh key: its first ping starts its first handshake). */
export async function clientUp(t: Topology, client: KernelClient): Promise<void> {
  const keyFile = scratchPath(`clkey-${client.name}-${process.pid}`);
  writeFileSync(keyFile, client.privateKey + '\n', { mode: 0o600 });
  const n = client.name;
  await sh('bash', ['-euc', [
    `ip -n ${t.clientNs} link add ${n} type wireguard`,
    `ip netns exec ${t.clientNs} wg set ${n} private-key ${keyFile} peer ${t.publicKey} endpoint ${GATEWAY_ADDRESS}:${LISTEN_PORT} allowed-ips ${TUNNEL_GATEWAY}/32`,
    `rm -f ${keyFile}`,
    `ip -n ${t.clientNs} addr add ${client.address}/32 dev ${n}`,
    `ip -n ${t.clientNs} link set ${n} up`,
  ].join('\n')]);
}

export async function clientDown(t: Topology, client: KernelClient): Promise<void> {
  await sh('ip', ['-n', t.clientNs, 'link', 'del', client.name]);
}

/**
 * One ping through the tunnel. Its RTT, as ping measures it, runs from the moment the ICMP
 * packet is handed to the client's wg interface (which holds it and sends its first handshake
 * initiation) to the reply: the first initiation → first reply figure, without process start-up.
 */
export async function firstPing(t: Topology, client: KernelClient, timeoutSeconds = 30): Promise<{ ok: boolean; rttMs?: number; output: string }> {
  try {
    const out = await sh('ip', ['netns', 'exec', t.clientNs, 'ping', '-n', '-c', '1', '-W', String(timeoutSeconds), '-I', client.name, TUNNEL_GATEWAY]);
    const m = /time=([\d.]+) ms/.exec(out);
    return m ? { ok: true, rttMs: Number(m[1]), output: out } : { ok: false, output: out };
  } catch (error) {
    return { ok: false, output: (error as Error).message };
  }
}
