/**
 * `WebSocketBridge` (the `jitguard ws-connect` side) against a `WebSocketRelay` on loopback:
 * local UDP client → bridge → WebSocket (plain or TLS) → relay → UDP "kernel", and back;
 * certificate checks (default, ca, insecure, pin), keepalives, reconnects, and what it refuses.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { ValidationError } from '../../../lib/errors.js';
import { BridgeError, parsePinSha256, startWebSocketBridge, WebSocketBridge, type BridgeDisconnectEvent, type WebSocketBridgeOptions } from '../../../lib/websocket/bridge.js';
import { WebSocketRelay, type WebSocketRelayOptions } from '../../../lib/websocket/relay.js';
import { encodeFrame } from '../../../lib/websocket/stream.js';
import type { Address } from '../../../lib/gateway/types.js';
import { FakeKernel, LocalClient, sleep, waitFor } from './support/loopback.js';
import { selfSignedCertificate } from './support/tls.js';

const tls = selfSignedCertificate('gateway.test');

describe('WebSocketBridge', () => {
  let kernel: FakeKernel;
  let local: LocalClient;
  let relay: WebSocketRelay | undefined;
  let bridge: WebSocketBridge | undefined;
  const initiations: Address[] = [];

  async function startRelay(options: Partial<WebSocketRelayOptions> = {}): Promise<number> {
    relay = new WebSocketRelay({
      host: '127.0.0.1', port: 0, wireguardPort: kernel.port,
      onInitiation: (_payload, source) => initiations.push(source), ...options,
    });
    return (await relay.listen()).port;
  }

  async function startBridge(options: Omit<WebSocketBridgeOptions, 'listen'>): Promise<WebSocketBridge> {
    bridge = new WebSocketBridge({ listen: { address: '127.0.0.1', port: 0 }, reconnectDelay: 0.2, ...options });
    await bridge.start();
    return bridge;
  }

  const disconnection = (b: WebSocketBridge) => once(b, 'disconnected') as Promise<[BridgeDisconnectEvent]>;

  beforeEach(async () => {
    kernel = await FakeKernel.start();
    local = await LocalClient.start();
    initiations.length = 0;
    relay = bridge = undefined;
  });

  afterEach(async () => {
    await bridge?.close();
    await relay?.close();
    await local.close();
    await kernel.close();
  });

  it('carries datagrams both ways over ws://, to the local address that last sent one', async () => {
    const port = await startRelay();
    const b = await startBridge({ url: `ws://127.0.0.1:${port}/` });
    await once(b, 'connected');
    const initiation = Buffer.alloc(148, 7);
    initiation.writeUInt32LE(1, 0);
    local.send(initiation, b.address!.port);
    local.send(Buffer.from('data'), b.address!.port);
    await waitFor(() => local.received.length === 2, 2000, 'two echoes');
    assert.deepEqual(local.received, [initiation, Buffer.from('data')]);
    assert.deepEqual(kernel.received.map((r) => r.payload), [initiation, Buffer.from('data')]);
    assert.deepEqual(initiations, [{ address: '127.0.0.1', port: kernel.received[0]!.from.port }]);
    const stats = b.stats();
    assert.equal(stats.connected, true);
    assert.equal(stats.datagramsOut, 2);
    assert.equal(stats.datagramsIn, 2);
    assert.equal(stats.bytesOut, 152);
  });

  it('frames toward the gateway are text frames, the magic first, each datagram one message', async () => {
    const seen: Array<{ data: Buffer; isBinary: boolean }> = [];
    const { server, port } = await rawServer((ws) => ws.on('message', (data: Buffer, isBinary) => seen.push({ data, isBinary })));
    try {
      const b = await startBridge({ url: `ws://127.0.0.1:${port}/` });
      await once(b, 'connected');
      local.send(Buffer.from('abc'), b.address!.port);
      await waitFor(() => seen.length === 2, 2000, 'two messages');
      assert.deepEqual(seen.map((m) => m.isBinary), [false, false]);
      assert.deepEqual([...seen[0]!.data], [0x2f, 0xac, 0xed, 0x77]);
      assert.deepEqual(seen[1]!.data, encodeFrame(Buffer.from('abc')));
    } finally {
      await bridge?.close();
      bridge = undefined;
      await closeRaw(server);
    }
  });

  it('sends a keepalive after each second of silence (keepaliveInterval), counted by the relay', async () => {
    const port = await startRelay({ idleTimeout: 0.5 });
    const b = await startBridge({ url: `ws://127.0.0.1:${port}/`, keepaliveInterval: 0.1 });
    await once(b, 'connected');
    await sleep(1200);
    assert.ok(b.connected, 'keepalives kept the idle-timing relay from closing it');
    const sent = b.stats().keepalivesSent;
    assert.ok(sent >= 6 && sent <= 13, `${sent} keepalives in 1.2 s at 0.1 s`);
    await waitFor(() => relay!.stats().keepalives === b.stats().keepalivesSent, 1000, 'the relay counted them');
    assert.equal(kernel.received.length, 0);
    assert.equal(relay!.stats().closed.idle, 0);
  });

  it('datagrams while disconnected are dropped and counted; it reconnects after reconnectDelay when the gateway comes back', async () => {
    const port = await startRelay();
    const b = await startBridge({ url: `ws://127.0.0.1:${port}/`, reconnectDelay: 0.3 });
    await once(b, 'connected');
    const gone = disconnection(b);
    await relay!.close();
    const [event] = await gone;
    assert.equal(event.code, 1001);
    assert.equal(event.retryInMs, 300);
    local.send(Buffer.from('lost'), b.address!.port);
    await waitFor(() => b.stats().dropped['not-connected'] === 1, 2000, 'the drop');
    const downAt = Date.now();
    await startRelay({ port });
    await once(b, 'connected');
    const reconnectMs = Date.now() - downAt;
    assert.ok(reconnectMs < 2000, `reconnected ${reconnectMs} ms after the gateway came back`);
    local.send(Buffer.from('back'), b.address!.port);
    await waitFor(() => local.received.length === 1, 2000, 'the echo');
    assert.equal(local.received[0]!.toString(), 'back');
    assert.ok(b.stats().connects >= 2);
  });

  it('a gateway that refuses the upgrade is retried, with the failure reported', async () => {
    const port = await startRelay({ maxConnections: 1 });
    const holder = new WebSocketBridge({ url: `ws://127.0.0.1:${port}/`, listen: { address: '127.0.0.1', port: 0 } });
    await holder.start();
    try {
      await once(holder, 'connected');
      const b = await startBridge({ url: `ws://127.0.0.1:${port}/` });
      const [event] = await disconnection(b);
      assert.equal(event.code, 1006);
      assert.match(String(event.error?.message), /503/);
      await holder.close();
      await once(b, 'connected');
    } finally {
      await holder.close();
    }
  });

  describe('over TLS', () => {
    const wss = (port: number) => `wss://127.0.0.1:${port}/`;

    it('insecure: any certificate (a self-signed one)', async () => {
      const port = await startRelay({ tls });
      const b = await startBridge({ url: wss(port), insecure: true });
      await once(b, 'connected');
      local.send(Buffer.from('over tls'), b.address!.port);
      await waitFor(() => local.received.length === 1, 2000, 'the echo');
    });

    it('default: a self-signed certificate is refused; with it as ca it is accepted', async () => {
      const port = await startRelay({ tls });
      const refused = await startBridge({ url: wss(port) });
      const [event] = await disconnection(refused);
      assert.match(String((event.error as NodeJS.ErrnoException | undefined)?.code), /SELF_SIGNED|UNABLE_TO_VERIFY/);
      assert.equal(relay!.stats().accepted, 0);
      await refused.close();
      const b = await startBridge({ url: wss(port), ca: tls.cert });
      await once(b, 'connected');
    });

    it('pinSha256: the certificate\'s DER SHA-256 (openssl x509 -fingerprint -sha256), with or without colons', async () => {
      const port = await startRelay({ tls });
      const b = await startBridge({ url: wss(port), pinSha256: tls.fingerprint256.replaceAll(':', '').toLowerCase() });
      await once(b, 'connected');
      local.send(Buffer.from('pinned'), b.address!.port);
      await waitFor(() => local.received.length === 1, 2000, 'the echo');
    });

    it('pinSha256: another certificate is refused before any upgrade reaches the relay', async () => {
      const port = await startRelay({ tls });
      const other = selfSignedCertificate('other.test');
      const b = await startBridge({ url: wss(port), pinSha256: other.fingerprint256 });
      const [event] = await disconnection(b);
      assert.ok(event.error instanceof BridgeError, String(event.error));
      assert.equal((event.error as BridgeError).code, 'ERR_JITGUARD_WEBSOCKET_PIN');
      await sleep(50);
      assert.equal(relay!.stats().accepted, 0);
      assert.equal(b.connected, false);
    });
  });

  it('closes (1003) and reconnects when the gateway sends a binary frame on a text connection, as flyctl does', async () => {
    let connections = 0;
    const { server, port } = await rawServer((ws) => {
      connections++;
      ws.send(encodeFrame(Buffer.from('bin')), { binary: true });
    });
    try {
      const b = await startBridge({ url: `ws://127.0.0.1:${port}/`, reconnectDelay: 0.1 });
      const [event] = await disconnection(b);
      assert.equal(event.code, 1003);
      assert.equal(b.stats().protocolErrors, 1);
      await waitFor(() => connections >= 2, 2000, 'a reconnect');
    } finally {
      await bridge?.close();
      bridge = undefined;
      await closeRaw(server);
    }
  });

  it('closes (1002) on an oversize length from the gateway', async () => {
    const { server, port } = await rawServer((ws) => ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff]), { binary: false }));
    try {
      const b = await startBridge({ url: `ws://127.0.0.1:${port}/` });
      const [event] = await disconnection(b);
      assert.equal(event.code, 1002);
      assert.equal(event.error?.name, 'RelayProtocolError');
    } finally {
      await bridge?.close();
      bridge = undefined;
      await closeRaw(server);
    }
  });

  it('startWebSocketBridge binds and connects; close() releases the UDP port', async () => {
    const port = await startRelay();
    const b = await startWebSocketBridge({ url: `ws://127.0.0.1:${port}/`, listen: { address: '127.0.0.1', port: 0 } });
    await once(b, 'connected');
    const bound = b.address!.port;
    await b.close();
    const again = await startWebSocketBridge({ url: `ws://127.0.0.1:${port}/`, listen: { address: '127.0.0.1', port: bound } });
    assert.equal(again.address!.port, bound);
    await again.close();
    await waitFor(() => relay!.stats().connections === 0, 2000, 'the relay saw both go');
  });

  it('bad options → ValidationError; pins normalise to Node\'s fingerprint256 form', () => {
    const listen = { address: '127.0.0.1', port: 0 };
    assert.throws(() => new WebSocketBridge({ url: 'http://x/', listen }), ValidationError);
    assert.throws(() => new WebSocketBridge({ url: 'not a url', listen }), ValidationError);
    assert.throws(() => new WebSocketBridge({ url: 'wss://x/', listen: { address: 'localhost', port: 1 } }), ValidationError);
    assert.throws(() => new WebSocketBridge({ url: 'wss://x/', listen, pinSha256: 'abcd' }), ValidationError);
    assert.throws(() => new WebSocketBridge({ url: 'wss://x/', listen, pinSha256: 'a'.repeat(64), insecure: true }), ValidationError);
    assert.throws(() => new WebSocketBridge({ url: 'ws://x/', listen, insecure: true }), ValidationError);
    assert.throws(() => new WebSocketBridge({ url: 'wss://x/', listen, keepaliveInterval: 0 }), ValidationError);
    assert.equal(parsePinSha256('ab'.repeat(32)), Array(32).fill('AB').join(':'));
    assert.equal(parsePinSha256(tls.fingerprint256.toLowerCase()), tls.fingerprint256);
  });
});

/** A bare ws server, for what a relay would never send. */
async function rawServer(onConnection: (ws: import('ws').WebSocket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer();
  const wss = new WebSocketServer({ server, skipUTF8Validation: true });
  wss.on('connection', (ws) => { ws.on('error', () => {}); onConnection(ws); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (server as Server & { wss?: WebSocketServer }).wss = wss;
  return { server, port: (server.address() as { port: number }).port };
}

async function closeRaw(server: Server): Promise<void> {
  const wss = (server as Server & { wss?: WebSocketServer }).wss!;
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
