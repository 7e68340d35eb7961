/**
 * Kernel tier for WireGuard over WebSocket (issue 10): a kernel WireGuard client whose peer
 * endpoint is a `WebSocketBridge` at 127.0.0.1:51821 → TLS (a self-signed certificate made with
 * openssl, pinned) → `WebSocketRelay` → `Gateway` (capture off: initiations come only through
 * `inject`) → just-in-time install → ping, with wg(8) as the oracle for the kernel's peer.
 *
 * Layout: both WireGuard interfaces are created in this process's namespace and then moved
 * into their own (gateway, client). A WireGuard interface keeps its UDP socket in the
 * namespace it was created in, so both sockets are on this namespace's loopback, where the
 * bridge and the relay run, while the tunnel's inner traffic really crosses between the two
 * namespaces. This is the deployed arrangement from the relay's point of view: it shares a
 * namespace with the socket on the interface's listen port.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '../../lib/gateway/gateway.js';
import { SqliteStore } from '../../lib/gateway/sqlite-store.js';
import type { Address, InstalledEvent, RejectedEvent } from '../../lib/gateway/types.js';
import { startWebSocketBridge, type WebSocketBridge } from '../../lib/websocket/bridge.js';
import { WebSocketRelay } from '../../lib/websocket/relay.js';
import { selfSignedCertificate } from '../unit/websocket/support/tls.js';
import { exec, kernelHasWireGuard } from './support/netns.js';

const GATEWAY_PORT = 51820;
const CLIENT_PORT = 40001;
const BRIDGE_PORT = 51821;
const GATEWAY_INNER = '10.66.0.1';
const CLIENT_INNER = '10.66.0.2';

function keyPair(): { privateKey: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('x25519');
  const raw = (der: Buffer) => der.subarray(der.length - 32).toString('base64');
  return {
    privateKey: raw(privateKey.export({ format: 'der', type: 'pkcs8' })),
    publicKey: raw(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })),
  };
}

interface KernelPeer {
  publicKey: string;
  endpoint: string;
  latestHandshake: number;
}

before(async () => {
  assert.equal(process.getuid?.(), 0, 'kernel tests run as root (inside the test VM)');
  assert.ok(await kernelHasWireGuard(), 'this kernel cannot create WireGuard interfaces: run the kernel tier through test/kernel/run.sh');
});

describe('WireGuard over WebSocket with a kernel WireGuard client', () => {
  const tag = randomBytes(3).toString('hex');
  const gwNs = `jg-wsg-${tag}`;
  const clNs = `jg-wsc-${tag}`;
  const gwDev = `jgwsg${tag.slice(0, 4)}`;
  const clDev = `jgwsc${tag.slice(0, 4)}`;
  const dir = mkdtempSync(join(tmpdir(), 'jg-ws-'));
  const gatewayKeys = keyPair();
  const clientKeys = keyPair();
  const tls = selfSignedCertificate('gateway.test');
  const installed: InstalledEvent[] = [];
  const rejected: RejectedEvent[] = [];
  const injected: Address[] = [];
  let gateway: Gateway;
  let relay: WebSocketRelay;
  let bridge: WebSocketBridge;

  const inGateway = (cmd: string, args: string[]) => exec('ip', ['netns', 'exec', gwNs, cmd, ...args]);
  const inClient = (cmd: string, args: string[]) => exec('ip', ['netns', 'exec', clNs, cmd, ...args]);

  async function kernelPeers(): Promise<KernelPeer[]> {
    const lines = (await inGateway('wg', ['show', gwDev, 'dump'])).trim().split('\n').slice(1).filter(Boolean);
    return lines.map((line) => {
      const [publicKey, , endpoint, , latestHandshake] = line.split('\t');
      return { publicKey: publicKey!, endpoint: endpoint!, latestHandshake: Number(latestHandshake) };
    });
  }

  async function ping(timeoutSeconds: number): Promise<{ ok: boolean; ms: number }> {
    const started = performance.now();
    try {
      await inClient('ping', ['-n', '-c', '1', '-W', String(timeoutSeconds), GATEWAY_INNER]);
      return { ok: true, ms: Math.round(performance.now() - started) };
    } catch {
      return { ok: false, ms: Math.round(performance.now() - started) };
    }
  }

  function startRelay(port: number): Promise<Address> {
    relay = new WebSocketRelay({
      host: '127.0.0.1', port, wireguardPort: gateway.listenPort, tls,
      onInitiation: (payload, source) => {
        injected.push(source);
        gateway.inject(payload, source);
      },
    });
    return relay.listen();
  }

  before(async () => {
    writeFileSync(join(dir, 'gw.key'), gatewayKeys.privateKey + '\n', { mode: 0o600 });
    writeFileSync(join(dir, 'cl.key'), clientKeys.privateKey + '\n', { mode: 0o600 });
    await exec('ip', ['netns', 'add', gwNs]);
    await exec('ip', ['netns', 'add', clNs]);
    await exec('ip', ['link', 'set', 'lo', 'up']);
    // Created here (their UDP sockets stay on this namespace's loopback), then moved.
    await exec('ip', ['link', 'add', gwDev, 'type', 'wireguard']);
    await exec('wg', ['set', gwDev, 'private-key', join(dir, 'gw.key'), 'listen-port', String(GATEWAY_PORT)]);
    await exec('ip', ['link', 'set', gwDev, 'netns', gwNs]);
    await exec('ip', ['link', 'add', clDev, 'type', 'wireguard']);
    await exec('wg', ['set', clDev, 'private-key', join(dir, 'cl.key'), 'listen-port', String(CLIENT_PORT),
      'peer', gatewayKeys.publicKey, 'endpoint', `127.0.0.1:${BRIDGE_PORT}`, 'allowed-ips', `${GATEWAY_INNER}/32`]);
    await exec('ip', ['link', 'set', clDev, 'netns', clNs]);
    await inGateway('ip', ['addr', 'add', `${GATEWAY_INNER}/24`, 'dev', gwDev]);
    await inGateway('ip', ['link', 'set', gwDev, 'up']);
    await inClient('ip', ['addr', 'add', `${CLIENT_INNER}/32`, 'dev', clDev]);
    await inClient('ip', ['link', 'set', clDev, 'up']);
    await inClient('ip', ['route', 'add', `${GATEWAY_INNER}/32`, 'dev', clDev]);

    gateway = new Gateway({
      interface: gwDev,
      netns: `/run/netns/${gwNs}`,
      store: new SqliteStore(join(dir, 'store.db')),
      resolve: async (publicKey) => (publicKey === clientKeys.publicKey ? { publicKey, allowedIps: [`${CLIENT_INNER}/32`] } : null),
      capture: false,
    });
    gateway.on('installed', (event) => installed.push(event));
    gateway.on('rejected', (event) => rejected.push(event));
    gateway.on('error', () => {});
    await gateway.start();
    assert.equal(gateway.listenPort, GATEWAY_PORT);
    await startRelay(0);
    bridge = await startWebSocketBridge({
      url: `wss://127.0.0.1:${relay.address!.port}/`,
      listen: { address: '127.0.0.1', port: BRIDGE_PORT },
      pinSha256: tls.fingerprint256,
      reconnectDelay: 0.5,
    });
    await once(bridge, 'connected');
  });

  after(async () => {
    await bridge?.close();
    await relay?.close();
    await gateway?.stop();
    for (const ns of [gwNs, clNs]) await exec('ip', ['netns', 'del', ns]).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('a client with no prior state pings through an empty gateway over the WebSocket at its first try', async (t) => {
    assert.deepEqual(await kernelPeers(), [], 'the gateway starts empty');
    const reply = await ping(20);
    assert.ok(reply.ok, `the first ping got a reply (rejected: ${JSON.stringify(rejected)})`);
    assert.equal(installed.length, 1);
    const [install] = installed;
    assert.equal(install!.publicKey, clientKeys.publicKey);
    assert.equal(install!.via, 'resolver');
    // The proof of "first try": one initiation reached the relay, so the client never retried
    // (its retry comes 5 s after an unanswered one). Wall time is not asserted: under TCG on a
    // loaded host it measures the machine.
    assert.equal(injected.length, 1, 'one initiation came through the relay (the client never had to retry)');
    assert.deepEqual(install!.source, injected[0], 'installed with the relay\'s loopback socket as endpoint');
    assert.equal(install!.source.address, '127.0.0.1');
    const [peer] = await kernelPeers();
    assert.equal(peer?.publicKey, clientKeys.publicKey);
    assert.equal(peer?.endpoint, `127.0.0.1:${install!.source.port}`, 'wg(8) shows the relay socket as the endpoint');
    assert.ok(peer!.latestHandshake > 0);
    const relayStats = relay.stats();
    assert.equal(relayStats.connections, 1);
    assert.ok(relayStats.datagramsIn >= 3 && relayStats.datagramsOut >= 2, JSON.stringify(relayStats));
    const bridgeStats = bridge.stats();
    t.diagnostic(`first ping ${reply.ms} ms (ping's own exec included; the client's retry would come at 5,000 ms); ` +
      `knock to install ${install!.knockToInstallMs.toFixed(1)} ms; relay: ${relayStats.datagramsIn} datagrams in, ${relayStats.datagramsOut} out; ` +
      `bridge: ${bridgeStats.datagramsOut} out, ${bridgeStats.datagramsIn} in`);
    assert.equal(rejected.length, 0, JSON.stringify(rejected));
  });

  it('after the relay restarts, the bridge reconnects and the session carries on from the new socket (no reinstall)', async (t) => {
    const port = relay.address!.port;
    const oldEndpoint = (await kernelPeers())[0]!.endpoint;
    const gone = once(bridge, 'disconnected');
    await relay.close();
    await gone;
    const downAt = performance.now();
    await startRelay(port);
    await once(bridge, 'connected');
    const reconnectMs = Math.round(performance.now() - downAt);
    const reply = await ping(20);
    assert.ok(reply.ok, 'the ping after the reconnect got a reply');
    const [peer] = await kernelPeers();
    assert.notEqual(peer!.endpoint, oldEndpoint, 'the kernel roamed to the new relay socket');
    assert.match(peer!.endpoint, /^127\.0\.0\.1:\d+$/);
    assert.equal(installed.length, 1, 'no second install');
    t.diagnostic(`reconnected ${reconnectMs} ms after the relay came back (reconnectDelay 500 ms); ping ${reply.ms} ms; endpoint ${oldEndpoint} → ${peer!.endpoint}`);
  });
});
