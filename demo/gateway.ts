/**
 * The demo gateway: a just-in-time WireGuard peer, end to end, against real kernel WireGuard.
 *
 *   npm run demo      (inside the test VM when this kernel has no WireGuard)
 *
 * Two network namespaces joined by a veth pair: "client" runs a kernel WireGuard client that
 * knows the gateway; "gateway" runs wg0 with a private key and NO peers. The gateway process
 * captures handshake initiations (AF_PACKET + cBPF), unwraps and authenticates them (Noise),
 * looks the key up in a control-plane table, and installs the peer as initiator; the kernel
 * then handshakes back and the client's ping goes through. A client unknown to the control
 * plane is authenticated but refused.
 */
import { execFileSync, spawn } from 'node:child_process';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { existsSync, writeFileSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HandshakeCapture, Responder, WireGuard, compareTai64n, installAsInitiator, settleInitiator } from '../lib/index.js';
import type { Tai64n } from '../lib/index.js';

const GATEWAY_NS = 'jg-demo-gw';
const CLIENT_NS = 'jg-demo-client';
const sh = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const inNs = (ns: string, cmd: string, ...args: string[]) => sh('ip', 'netns', 'exec', ns, cmd, ...args);
const rawKey = (der: Buffer) => der.subarray(der.length - 32).toString('base64');

function newKeyPair() {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return {
    privateKey: rawKey(privateKey.export({ format: 'der', type: 'pkcs8' })),
    publicKey: rawKey(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })),
  };
}

/** The gateway role: runs inside the gateway namespace. */
async function serve(controlPlaneFile: string): Promise<void> {
  const log = (event: string, fields: object = {}) => console.log(JSON.stringify({ t: Number(process.hrtime.bigint() / 1000n) / 1000, event, ...fields }));
  const controlPlane = JSON.parse(readFileSync(controlPlaneFile, 'utf8')) as Record<string, string[]>;
  const wg = new WireGuard();
  const privateKey = await wg.getPrivateKey('wg0');
  if (!privateKey) throw new Error('wg0 has no private key');
  const responder = new Responder(privateKey);
  const lastTimestamp = new Map<string, Tai64n>();
  const capture = HandshakeCapture.open({ interface: 'veth-gw', ports: [51820] });
  log('listening', { publicKey: responder.publicKey });
  process.on('SIGTERM', () => {
    capture.close();
    wg.close();
  });
  for await (const initiation of capture) {
    const result = responder.unwrap(initiation.packet);
    if (!result.ok) {
      log('rejected', { source: initiation.source, reason: result.reason });
      continue;
    }
    const previous = lastTimestamp.get(result.publicKey);
    if (previous && compareTai64n(result.timestamp, previous) <= 0) {
      log('rejected', { source: initiation.source, publicKey: result.publicKey, reason: 'replayed timestamp' });
      continue;
    }
    lastTimestamp.set(result.publicKey, result.timestamp);
    const allowedIps = controlPlane[result.publicKey];
    if (!allowedIps) {
      log('unknown', { source: initiation.source, publicKey: result.publicKey });
      continue;
    }
    const started = process.hrtime.bigint();
    await installAsInitiator(wg, 'wg0', { publicKey: result.publicKey, source: initiation.source, allowedIps });
    log('installed', { source: initiation.source, publicKey: result.publicKey, allowedIps, installMs: Number(process.hrtime.bigint() - started) / 1e6 });
    void settleWhenUp(wg, result.publicKey, log);
  }
}

/** Once the kernel's handshake with the client is done, turn the install-time keepalive off. */
async function settleWhenUp(wg: WireGuard, publicKey: string, log: (event: string, fields?: object) => void): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const peer = (await wg.getDevice('wg0')).peers.find((p) => p.publicKey === publicKey);
    if (!peer) return;
    if (peer.lastHandshake) {
      await settleInitiator(wg, 'wg0', publicKey);
      log('settled', { publicKey, lastHandshake: peer.lastHandshake });
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  for (const ns of [GATEWAY_NS, CLIENT_NS]) {
    if (existsSync(`/run/netns/${ns}`)) sh('ip', 'netns', 'del', ns);
    sh('ip', 'netns', 'add', ns);
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  const dir = mkdtempSync(join(tmpdir(), 'jg-demo-'));
  const gateway = newKeyPair();
  const client = newKeyPair();
  const stranger = newKeyPair();
  try {
    // The wire between them (addresses inside our own namespaces only).
    sh('ip', 'link', 'add', 'veth-gw', 'netns', GATEWAY_NS, 'type', 'veth', 'peer', 'name', 'veth-cl', 'netns', CLIENT_NS);
    inNs(GATEWAY_NS, 'ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'veth-gw');
    inNs(GATEWAY_NS, 'ip', 'link', 'set', 'veth-gw', 'up');
    inNs(CLIENT_NS, 'ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'veth-cl');
    inNs(CLIENT_NS, 'ip', 'link', 'set', 'veth-cl', 'up');

    // Gateway: wg0 with a key and no peers, configured through jitguard.
    const admin = new WireGuard({ netns: `/run/netns/${GATEWAY_NS}` });
    await admin.createDevice('wg0');
    await admin.setDevice('wg0', { privateKey: gateway.privateKey, listenPort: 51820 });
    inNs(GATEWAY_NS, 'ip', 'addr', 'add', '10.7.0.1/24', 'dev', 'wg0');
    inNs(GATEWAY_NS, 'ip', 'link', 'set', 'wg0', 'up');

    // The control plane knows the client, not the stranger.
    const controlPlaneFile = join(dir, 'control-plane.json');
    writeFileSync(controlPlaneFile, JSON.stringify({ [client.publicKey]: ['10.7.0.2/32'] }));

    const gatewayProcess = spawn('ip', ['netns', 'exec', GATEWAY_NS, process.execPath, '--import', 'tsx', new URL(import.meta.url).pathname, '--serve', controlPlaneFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    const events: Array<Record<string, unknown>> = [];
    let ready!: () => void;
    const listening = new Promise<void>((resolve) => (ready = resolve));
    gatewayProcess.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter(Boolean)) {
        console.log(`  gateway | ${line}`);
        const event = JSON.parse(line) as Record<string, unknown>;
        events.push(event);
        if (event.event === 'listening') ready();
      }
    });
    await listening;

    // Client: kernel WireGuard that knows the gateway, and pings through it.
    const clientUp = (name: string, keys: { privateKey: string }, address: string) => {
      inNs(CLIENT_NS, 'ip', 'link', 'add', name, 'type', 'wireguard');
      const keyFile = join(dir, `${name}.key`);
      writeFileSync(keyFile, keys.privateKey, { mode: 0o600 });
      inNs(CLIENT_NS, 'wg', 'set', name, 'private-key', keyFile, 'peer', gateway.publicKey, 'endpoint', '192.0.2.1:51820', 'allowed-ips', '10.7.0.1/32');
      inNs(CLIENT_NS, 'ip', 'addr', 'add', address, 'dev', name);
      inNs(CLIENT_NS, 'ip', 'link', 'set', name, 'up');
    };
    clientUp('wgc', client, '10.7.0.2/32');
    const started = Date.now();
    console.log('client: ping 10.7.0.1 through WireGuard (the gateway has no peer for it yet)');
    sh('ip', 'netns', 'exec', CLIENT_NS, 'ping', '-c', '1', '-W', '10', '-I', 'wgc', '10.7.0.1');
    const tunnelMs = Date.now() - started;
    const ping = sh('ip', 'netns', 'exec', CLIENT_NS, 'ping', '-c', '3', '-i', '0.2', '-W', '5', '-I', 'wgc', '10.7.0.1');
    console.log(ping.trim().split('\n').slice(-2).join('\n'));

    // A stranger the control plane does not know.
    inNs(CLIENT_NS, 'ip', 'link', 'del', 'wgc');
    clientUp('wgs', stranger, '10.7.0.3/32');
    try {
      sh('ip', 'netns', 'exec', CLIENT_NS, 'ping', '-c', '1', '-W', '3', '-I', 'wgs', '10.7.0.1');
    } catch {
      /* expected: no tunnel */
    }
    const device = await admin.getDevice('wg0');
    gatewayProcess.kill('SIGTERM');
    admin.close();

    const installed = events.filter((e) => e.event === 'installed');
    const unknown = events.filter((e) => e.event === 'unknown');
    console.log('\nresult:');
    console.log(`  client's first packet → first reply through the tunnel: ${tunnelMs} ms (in a TCG VM, ~10-50x slower than native)`);
    console.log(`  peers installed: ${installed.length}; unknown keys refused: ${unknown.length}`);
    console.log(`  kernel peers on wg0: ${device.peers.map((p) => `${p.publicKey.slice(0, 8)}… ${p.endpoint} handshake=${p.lastHandshake?.toISOString() ?? 'never'}`).join('; ')}`);
    const settled = events.filter((e) => e.event === 'settled');
    console.log(`  install-time keepalive turned off after the handshake: ${settled.length === 1 ? 'yes' : 'no'} (keepalive now ${device.peers[0]?.persistentKeepalive ?? '-'})`);
    const ok = installed.length === 1 && unknown.length >= 1 && settled.length === 1 && device.peers.length === 1
      && device.peers[0]!.publicKey === client.publicKey && device.peers[0]!.lastHandshake !== null && device.peers[0]!.persistentKeepalive === 0;
    console.log(ok ? 'demo OK' : 'demo FAILED');
    process.exitCode = ok ? 0 : 1;
  } finally {
    for (const ns of [GATEWAY_NS, CLIENT_NS]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
  }
}

if (process.argv[2] === '--serve') await serve(process.argv[3]!);
else await main();
