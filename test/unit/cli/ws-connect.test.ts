/**
 * `jitguard ws-connect`: flags to a `WebSocketBridge`, refusals for bad ones, and a datagram
 * carried end to end (local UDP → bridge → relay → the "interface" UDP socket and back).
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { WebSocketRelay } from '../../../lib/websocket/relay.js';
import { startCli } from './support/daemon-harness.js';

async function refusesBridge(argv: string[], pattern: RegExp) {
  const run = startCli(['ws-connect', ...argv]);
  assert.equal(await run.exit, 2);
  const text = run.stderr.join('');
  assert.match(text, /^jitguard: [^\n]+\n$/);
  assert.match(text, pattern);
}

describe('jitguard ws-connect', () => {
  it('refuses a bad --listen', () => refusesBridge(['--url', 'wss://gw:443/', '--listen', 'localhost:51821'], /--listen: expected a numeric IP address/));
  it('refuses a URL that is not ws:// or wss://', () => refusesBridge(['--url', 'https://gw/', '--listen', '127.0.0.1:0'], /^jitguard: --url: expected a ws:\/\/ or wss:\/\/ URL/));
  it('refuses --insecure with --pin-sha256', () => refusesBridge(['--url', 'wss://gw/', '--listen', '127.0.0.1:0', '--insecure', '--pin-sha256', 'ab'.repeat(32)], /exclude each other/));
  it('refuses a malformed pin', () => refusesBridge(['--url', 'wss://gw/', '--listen', '127.0.0.1:0', '--pin-sha256', 'abc'], /^jitguard: --pin-sha256: expected a SHA-256 fingerprint/));
  it('refuses certificate options on ws://', () => refusesBridge(['--url', 'ws://gw/', '--listen', '127.0.0.1:0', '--insecure'], /--url: certificate options need a wss:\/\/ URL/));

  it('carries datagrams both ways through a relay, and exits 0 on SIGTERM', async () => {
    const kernelSide = createSocket('udp4');
    await new Promise<void>((resolve) => kernelSide.bind(0, '127.0.0.1', resolve));
    const relay = new WebSocketRelay({ host: '127.0.0.1', port: 0, wireguardPort: kernelSide.address().port });
    const relayAddress = await relay.listen();
    const run = startCli(['ws-connect', '--url', `ws://127.0.0.1:${relayAddress.port}/`, '--listen', '127.0.0.1:0']);
    try {
      for (let i = 0; i < 300 && run.log.events('connected').length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(run.log.events('connected').length, 1, `connected: ${run.stderr.join('')}`);
      const [listening] = run.log.events('listening');
      const port = Number(String(listening!.listen).split(':').pop());
      const client = createSocket('udp4');
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
      const atKernel = once(kernelSide, 'message');
      client.send(Buffer.from('to-the-kernel'), port, '127.0.0.1');
      const [datagram, from] = await atKernel as [Buffer, { port: number; address: string }];
      assert.equal(datagram.toString(), 'to-the-kernel');
      const atClient = once(client, 'message');
      kernelSide.send(Buffer.from('to-the-client'), from.port, from.address);
      assert.equal(((await atClient) as [Buffer])[0].toString(), 'to-the-client');
      client.close();
    } finally {
      run.signals.emit('SIGTERM');
      assert.equal(await run.exit, 0);
      await relay.close();
      kernelSide.close();
    }
  });
});
