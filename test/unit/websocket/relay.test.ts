/**
 * `WebSocketRelay` on loopback, with a UDP socket standing in for the WireGuard interface and
 * raw flyctl-style clients (or a `WebSocketBridge`) on the other side. No root, no kernel
 * WireGuard: the kernel tier (test/kernel/websocket.test.ts) runs the real thing.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { ValidationError } from '../../../lib/errors.js';
import { WebSocketBridge } from '../../../lib/websocket/bridge.js';
import { WebSocketRelay, BINARY_SUBPROTOCOL, type WebSocketRelayOptions } from '../../../lib/websocket/relay.js';
import { encodeFrame, encodeKeepalive, encodeMagic } from '../../../lib/websocket/stream.js';
import type { Address } from '../../../lib/gateway/types.js';
import {
  FakeKernel, LocalClient, RawClient, openFds, sleep, udpSocketsOfThisProcess, upgradeStatus, waitFor,
} from './support/loopback.js';
import { selfSignedCertificate } from './support/tls.js';

const initiation = () => {
  const packet = Buffer.alloc(148, 0x5a);
  packet.writeUInt32LE(1, 0);
  return packet;
};

describe('WebSocketRelay', () => {
  let kernel: FakeKernel;
  let relay: WebSocketRelay;
  let url: string;
  const initiations: Array<{ payload: Buffer; source: Address }> = [];
  const clients: RawClient[] = [];

  async function startRelay(options: Partial<WebSocketRelayOptions> = {}): Promise<void> {
    relay = new WebSocketRelay({
      host: '127.0.0.1', port: 0, wireguardPort: kernel.port,
      onInitiation: (payload, source) => initiations.push({ payload: Buffer.from(payload), source }),
      ...options,
    });
    const address = await relay.listen();
    url = `ws://127.0.0.1:${address.port}/`;
  }

  async function client(options: Parameters<typeof RawClient.open>[1] = {}): Promise<RawClient> {
    const c = await RawClient.open(url, options);
    clients.push(c);
    return c;
  }

  beforeEach(async () => {
    kernel = await FakeKernel.start();
    initiations.length = 0;
    clients.length = 0;
  });

  afterEach(async () => {
    for (const c of clients) c.ws.terminate();
    await relay?.close();
    await kernel.close();
  });

  it('datagrams flow both ways: client → its own loopback UDP socket → the interface, and back in text frames', async () => {
    await startRelay();
    const c = await client();
    c.datagram(Buffer.from('hello kernel'));
    await waitFor(() => c.datagrams.length === 1, 2000, 'the echo');
    assert.equal(kernel.received[0]!.payload.toString(), 'hello kernel');
    assert.equal(kernel.received[0]!.from.address, '127.0.0.1');
    assert.equal(c.datagrams[0]!.toString(), 'hello kernel');
    assert.ok(c.messages.every((m) => m.isBinary === false), 'every reply is a text frame');
    const stats = relay.stats();
    assert.equal(stats.datagramsIn, 1);
    assert.equal(stats.datagramsOut, 1);
    assert.equal(stats.bytesIn, 12);
    assert.equal(stats.bytesOut, 12);
    assert.equal(stats.connections, 1);
    assert.equal(stats.udpSockets, 1);
  });

  it('each connection has its own UDP socket; the kernel\'s datagram to one reaches only that client', async () => {
    await startRelay();
    const a = await client();
    const b = await client();
    a.datagram(Buffer.from('a'));
    b.datagram(Buffer.from('b'));
    await waitFor(() => kernel.received.length === 2 && a.datagrams.length === 1 && b.datagrams.length === 1, 2000, 'both echoes');
    const portOf = (text: string) => kernel.received.find((r) => r.payload.toString() === text)!.from.port;
    assert.notEqual(portOf('a'), portOf('b'));
    kernel.echo = false;
    kernel.send(Buffer.from('only for b'), portOf('b'));
    await waitFor(() => b.datagrams.length === 2, 2000, 'the datagram to b');
    await sleep(50);
    assert.equal(a.datagrams.length, 1, 'a got nothing');
    assert.equal(b.datagrams[1]!.toString(), 'only for b');
  });

  it('an initiation is handed to onInitiation with the loopback socket as source, and also sent to the interface', async () => {
    await startRelay();
    const c = await client();
    c.datagram(initiation());
    await waitFor(() => kernel.received.length === 1 && initiations.length === 1, 2000, 'the initiation');
    const [seen] = initiations;
    assert.deepEqual(seen!.payload, initiation());
    assert.deepEqual(seen!.source, { address: '127.0.0.1', port: kernel.received[0]!.from.port }, 'the source is the socket the kernel hears from');
    // The kernel's handshake back, sent to that source, reaches the client.
    kernel.echo = false;
    const response = Buffer.alloc(92, 0x22);
    response.writeUInt32LE(2, 0);
    kernel.send(response, seen!.source.port);
    await waitFor(() => c.datagrams.length === 2, 2000, 'the response');
    assert.deepEqual(c.datagrams[1], response);
    // Only initiation-shaped datagrams are handed over.
    c.datagram(Buffer.alloc(148, 0x04));
    c.datagram(initiation().subarray(0, 147));
    await waitFor(() => kernel.received.length === 3, 2000, 'the other datagrams');
    assert.equal(initiations.length, 1);
    assert.equal(relay.stats().initiations, 1);
  });

  it('an onInitiation that throws is counted; the datagram still reaches the interface', async () => {
    await startRelay({ onInitiation: () => { throw new Error('boom'); } });
    const c = await client();
    c.datagram(initiation());
    await waitFor(() => kernel.received.length === 1, 2000, 'the initiation');
    assert.equal(relay.stats().initiationErrors, 1);
    assert.ok(c.open);
  });

  it('older clients: length and datagram as separate messages; the magic split too', async () => {
    await startRelay();
    const c = await client({ magic: false });
    const magic = encodeMagic();
    c.text(magic.subarray(0, 1));
    c.text(magic.subarray(1));
    for (const text of ['first', 'second datagram']) {
      const frame = encodeFrame(Buffer.from(text));
      c.text(frame.subarray(0, 4));
      c.text(frame.subarray(4));
    }
    // And several frames in one message.
    c.text(Buffer.concat([encodeFrame(Buffer.from('x')), encodeFrame(Buffer.from('yz'))]));
    await waitFor(() => kernel.received.length === 4, 2000, 'four datagrams');
    assert.deepEqual(kernel.received.map((r) => r.payload.toString()), ['first', 'second datagram', 'x', 'yz']);
  });

  it('keepalive frames are dropped (never sent to the interface) and counted; they keep the connection from idling out', async () => {
    await startRelay({ idleTimeout: 0.3 });
    const kept = await client();
    const silent = await client();
    for (let i = 0; i < 8; i++) {
      kept.text(encodeKeepalive());
      await sleep(100);
    }
    await silent.closed;
    assert.equal(silent.closeCode, 1000);
    assert.equal(silent.closeReason, 'idle');
    assert.ok(kept.open, 'the client sending keepalives is still connected');
    assert.equal(kernel.received.length, 0, 'no keepalive reached the interface');
    const stats = relay.stats();
    assert.equal(stats.keepalives, 8);
    assert.equal(stats.closed.idle, 1);
    assert.equal(stats.udpSockets, 1);
  });

  for (const [name, send, code, reason] of [
    ['wrong magic', (c: RawClient) => c.text(Buffer.from([0xde, 0xad, 0xbe, 0xef])), 1002, 'bad-magic'],
    ['an oversize length', (c: RawClient) => { c.text(encodeMagic()); c.text(Buffer.from([0x00, 0x01, 0x00, 0x00])); }, 1002, 'oversize-length'],
    ['a binary frame', (c: RawClient) => { c.text(encodeMagic()); c.binary(encodeFrame(Buffer.from('bin'))); }, 1003, 'binary-frame'],
    ['garbage', (c: RawClient) => c.text(Buffer.from('GET / HTTP/1.1\r\n\r\n')), 1002, 'bad-magic'],
    ['garbage after the magic', (c: RawClient) => { c.text(encodeMagic()); c.text(Buffer.from('\xff\xfe garbage', 'latin1')); }, 1002, 'oversize-length'],
  ] as const) {
    it(`${name} closes that one connection (${code} ${reason}) and nothing else`, async () => {
      await startRelay();
      const good = await client();
      good.datagram(Buffer.from('before'));
      await waitFor(() => good.datagrams.length === 1, 2000, 'the first echo');
      const bad = await client({ magic: false });
      send(bad);
      await bad.closed;
      assert.equal(bad.closeCode, code);
      assert.equal(bad.closeReason, reason);
      good.datagram(Buffer.from('after'));
      await waitFor(() => good.datagrams.length === 2, 2000, 'the second echo');
      assert.ok(good.open);
      await waitFor(() => relay.stats().udpSockets === 1, 2000, 'the bad connection\'s UDP socket closed');
      const stats = relay.stats();
      assert.equal(stats.closed[reason], 1);
      assert.equal(stats.connections, 1);
      assert.ok(!kernel.received.some((r) => r.payload.toString() === 'bin'), 'nothing of the bad stream reached the interface');
    });
  }

  it('a client that never answers the close frame loses its slot after 2 s, not ws\'s 30 s', async () => {
    await startRelay();
    const bad = await client({ magic: false });
    (bad.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    bad.text(Buffer.from([1, 2, 3, 4]));
    const started = Date.now();
    await waitFor(() => relay.stats().connections === 0, 5000, 'the connection gone');
    const ms = Date.now() - started;
    assert.ok(ms >= 1500 && ms < 4000, `dropped after ${ms} ms`);
    assert.equal(relay.stats().closed['bad-magic'], 1);
    assert.equal(relay.stats().udpSockets, 0);
  });

  it('a UDP socket that cannot be opened closes its connection (1011 udp-error) and is not left behind', async () => {
    // 192.0.2.1 (TEST-NET-1) is no local address: binding the relay socket there fails.
    await startRelay({ wireguardAddress: '192.0.2.1' });
    const c = await client();
    await c.closed;
    assert.equal(c.closeCode, 1011);
    assert.equal(c.closeReason, 'udp-error');
    await waitFor(() => relay.stats().udpSockets === 0 && relay.stats().connections === 0, 2000, 'both gone');
    assert.equal(relay.stats().closed['udp-error'], 1);
  });

  it('a message above maxPayload closes that connection (1009)', async () => {
    await startRelay({ maxDatagramLength: 1500 });
    const bad = await client();
    bad.text(Buffer.alloc(2000));
    await bad.closed;
    assert.equal(bad.closeCode, 1009);
    await waitFor(() => relay.stats().closed['message-too-big'] === 1, 2000, 'the count');
  });

  it('a client offering wswg-binary gets binary frames and may send them', async () => {
    await startRelay();
    const c = await client({ protocols: [BINARY_SUBPROTOCOL] });
    assert.equal(c.ws.protocol, BINARY_SUBPROTOCOL);
    c.binary(encodeFrame(Buffer.from('bin ok')));
    c.datagram(Buffer.from('text ok'));
    await waitFor(() => c.datagrams.length === 2, 2000, 'two echoes');
    assert.ok(c.messages.every((m) => m.isBinary === true));
  });

  it('100 connections opened and closed leave no UDP socket and no file descriptor behind', async (t) => {
    await startRelay({ maxConnectionsPerAddress: 200 });
    // Warm up once so lazily opened descriptors (none expected) are in the baseline.
    const warm = await client();
    warm.datagram(Buffer.from('warm'));
    await waitFor(() => warm.datagrams.length === 1, 2000, 'warm-up echo');
    await warm.close();
    await waitFor(() => relay.stats().udpSockets === 0, 2000, 'warm-up socket closed');
    const udpBefore = udpSocketsOfThisProcess();
    const fdsBefore = openFds();
    const many: RawClient[] = [];
    for (let i = 0; i < 100; i++) many.push(await client());
    for (const [i, c] of many.entries()) c.datagram(Buffer.from(`c${i}`));
    await waitFor(() => many.every((c) => c.datagrams.length === 1), 5000, '100 echoes');
    assert.equal(relay.stats().udpSockets, 100);
    assert.equal(udpSocketsOfThisProcess() - udpBefore, 100, '/proc shows 100 more UDP sockets while open');
    assert.equal(new Set(kernel.received.slice(1).map((r) => r.from.port)).size, 100, '100 distinct source ports');
    // Half closed by the client, half dropped without a closing handshake.
    await Promise.all(many.map((c, i) => (i % 2 === 0 ? c.close() : (c.ws.terminate(), c.closed))));
    await waitFor(() => relay.stats().connections === 0 && relay.stats().udpSockets === 0, 5000, 'every connection gone');
    await sleep(50);
    const udpAfter = udpSocketsOfThisProcess();
    const fdsAfter = openFds();
    t.diagnostic(`UDP sockets ${udpBefore} → ${udpBefore + 100} → ${udpAfter}; fds ${fdsBefore} → ${fdsAfter}`);
    assert.equal(udpAfter, udpBefore, 'no UDP socket left (per /proc)');
    assert.equal(fdsAfter, fdsBefore, 'no file descriptor left');
    assert.equal(relay.stats().closed.client, 101);
  });

  it('refuses beyond maxConnections and maxConnectionsPerAddress with 503, and counts it', async () => {
    await startRelay({ maxConnections: 3, maxConnectionsPerAddress: 2 });
    const a = await client();
    await client();
    assert.equal(await upgradeStatus(url), 503, 'a third from 127.0.0.1');
    assert.equal(relay.stats().refused['max-per-address'], 1);
    await client({ localAddress: '127.0.0.2' });
    assert.equal(await upgradeStatus(url, '127.0.0.3'), 503, 'a fourth in total');
    assert.equal(relay.stats().refused['max-connections'], 1);
    await a.close();
    await waitFor(() => relay.stats().connections === 2, 2000, 'a closed');
    const again = await client({ localAddress: '127.0.0.3' });
    again.datagram(Buffer.from('in'));
    await waitFor(() => again.datagrams.length === 1, 2000, 'the echo');
    assert.equal(relay.stats().accepted, 4);
  });

  it('answers a plain HTTP request with 426', async () => {
    await startRelay();
    const response = await fetch(url.replace('ws:', 'http:'));
    assert.equal(response.status, 426);
    assert.equal(response.headers.get('upgrade'), 'websocket');
  });

  it('drops datagrams toward a client that does not read, rather than buffering them', async (t) => {
    const maxBufferedBytes = 4 + 65_535;
    await startRelay({ maxBufferedBytes });
    const c = await client();
    c.datagram(Buffer.from('x'));
    await waitFor(() => c.datagrams.length === 1, 2000, 'the echo');
    const port = kernel.received[0]!.from.port;
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    kernel.echo = false;
    const datagram = Buffer.alloc(1400, 0x33);
    // Loopback TCP buffers absorb megabytes before the relay's own queue grows: keep sending
    // (in small bursts, so the relay's UDP receive buffer is not what overflows) until it drops.
    const deadline = Date.now() + 20_000;
    while (relay.stats().dropped['client-backpressure'] === 0 && Date.now() < deadline) {
      for (let i = 0; i < 64; i++) kernel.send(datagram, port);
      await sleep(1);
    }
    const stats = relay.stats();
    t.diagnostic(`${stats.datagramsOut} datagrams (${(stats.bytesOut / 1e6).toFixed(1)} MB) queued toward the stalled client before the first drop`);
    assert.ok(stats.dropped['client-backpressure'] > 0, 'datagrams were dropped');
    assert.ok(c.open, 'the slow client keeps its connection');
    // Once it reads again it gets every datagram that was queued, whole, and the stream is intact.
    (c.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await sleep(200);
    const sent = relay.stats().datagramsOut;
    await waitFor(() => c.datagrams.length === sent, 10_000, 'the queued datagrams');
    assert.ok(c.datagrams.slice(1).every((d) => d.equals(datagram)));
  });

  it('close() ends every connection (1001) and every UDP socket', async () => {
    await startRelay();
    const a = await client();
    const b = await client();
    a.datagram(Buffer.from('a'));
    b.datagram(Buffer.from('b'));
    await waitFor(() => relay.stats().udpSockets === 2 && a.datagrams.length === 1 && b.datagrams.length === 1, 2000, 'two echoes');
    const udpOpen = udpSocketsOfThisProcess();
    await relay.close();
    await Promise.all([a.closed, b.closed]);
    assert.equal(a.closeCode, 1001);
    assert.equal(relay.stats().udpSockets, 0);
    assert.equal(relay.stats().closed.shutdown, 2);
    assert.equal(udpSocketsOfThisProcess(), udpOpen - 2);
    assert.equal(await upgradeStatus(url), 0, 'nothing listens any more');
  });

  for (const withTls of [false, true]) {
    it(`close() does not wait for a TCP connection that never upgrades${withTls ? ' (TLS: never handshakes)' : ''}`, async () => {
      await startRelay(withTls ? { tls: selfSignedCertificate() } : {});
      const silent = connect(relay.address!.port, '127.0.0.1');
      await once(silent, 'connect');
      silent.on('error', () => {});
      await sleep(50);
      const started = Date.now();
      await relay.close();
      const ms = Date.now() - started;
      assert.ok(ms < 1500, `close() took ${ms} ms`);
      silent.destroy();
    });
  }

  it('metrics: jitguard_websocket_* in the registry passed in', async () => {
    const registry = new Registry();
    await startRelay({ registry });
    assert.equal(relay.metrics, registry);
    const c = await client();
    c.datagram(Buffer.from('12345'));
    c.text(encodeKeepalive());
    await waitFor(() => c.datagrams.length === 1, 2000, 'the echo');
    await waitFor(() => relay.stats().keepalives === 1, 2000, 'the keepalive');
    const text = await registry.metrics();
    for (const line of [
      'jitguard_websocket_connections 1',
      'jitguard_websocket_udp_sockets 1',
      'jitguard_websocket_connections_accepted_total 1',
      'jitguard_websocket_received_bytes_total 5',
      'jitguard_websocket_sent_bytes_total 5',
      'jitguard_websocket_keepalives_total 1',
      'jitguard_websocket_connections_refused_total{reason="max-per-address"} 0',
      'jitguard_websocket_dropped_datagrams_total{reason="client-backpressure"} 0',
      'jitguard_websocket_connections_closed_total{reason="bad-magic"} 0',
    ]) assert.ok(text.includes(`\n${line}\n`), `${line} in\n${text}`);
  });

  it('bad options → ValidationError', () => {
    const base = { port: 0, wireguardPort: 51820 };
    assert.throws(() => new WebSocketRelay(null as never), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, port: 70000 }), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, wireguardPort: 0 }), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, host: 'localhost' }), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, maxConnections: 0 }), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, maxBufferedBytes: 100 }), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, idleTimeout: 0 }), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, tls: { cert: 'nope', key: 'nope' } }), ValidationError);
    assert.throws(() => new WebSocketRelay({ ...base, registry: {} as never }), ValidationError);
  });
});
