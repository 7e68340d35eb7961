/**
 * The daemon's pieces run together in-process over a fake kernel (no root, no WireGuard):
 * the metrics server, readiness, SIGHUP re-reading credentials, SIGTERM draining to exit 0,
 * and the forced exit when a drain does not finish.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createLogger } from '../../../lib/cli/logger.js';
import { createMetricsServer } from '../../../lib/cli/metrics-server.js';
import { listen, closeServer } from '../../../lib/cli/http-server.js';
import { untilStopped } from '../../../lib/cli/signals.js';
import { formatListenAddress, type ListenAddress } from '../../../lib/cli/listen-address.js';
import { Registry, Counter } from 'prom-client';
import { EventEmitter } from 'node:events';
import { TestClient, randomKey } from '../gateway/support/fakes.js';
import { ControlPlane } from './support/control-plane.js';
import { DaemonKernel, LogCapture, TempDir, readyCli, startCli, terminate } from './support/daemon-harness.js';

const dir = new TempDir();
after(() => dir.remove());
const url = (address: ListenAddress | null, path: string) => `http://${formatListenAddress(address!)}${path}`;
const eventually = async (condition: () => boolean, what: string, ms = 3000) => {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

describe('the metrics server', () => {
  it('serves /metrics, /healthz and /readyz (503 until ready), and nothing else', async () => {
    const registry = new Registry();
    new Counter({ name: 'jitguard_test_total', help: 'a test counter', registers: [registry] }).inc(3);
    let ready = false;
    const server = createMetricsServer({ registry, ready: () => ready, logger: createLogger('silent') });
    const address = await listen(server, { host: '127.0.0.1', port: 0 }, '--metrics');
    try {
      const metrics = await fetch(url(address, '/metrics'));
      assert.equal(metrics.status, 200);
      assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(await metrics.text(), /^jitguard_test_total 3$/m);
      assert.equal((await fetch(url(address, '/healthz'))).status, 200);
      const notReady = await fetch(url(address, '/readyz'));
      assert.equal(notReady.status, 503);
      assert.deepEqual(await notReady.json(), { status: 'not ready' });
      ready = true;
      assert.equal((await fetch(url(address, '/readyz'))).status, 200);
      assert.equal((await fetch(url(address, '/other'))).status, 404);
      assert.equal((await fetch(url(address, '/metrics'), { method: 'POST' })).status, 405);
    } finally {
      await closeServer(server);
    }
  });

  it('refuses an address in use with one line naming the flag', async () => {
    const first = createMetricsServer({ registry: new Registry(), ready: () => true, logger: createLogger('silent') });
    const address = await listen(first, { host: '127.0.0.1', port: 0 }, '--metrics');
    try {
      const second = createMetricsServer({ registry: new Registry(), ready: () => true, logger: createLogger('silent') });
      await assert.rejects(listen(second, address, '--metrics'), { name: 'Refusal', message: `--metrics 127.0.0.1:${address.port}: cannot listen (EADDRINUSE)` });
    } finally {
      await closeServer(first);
    }
  });
});

describe('jitguard gateway over a fake kernel', () => {
  it('serves the gateway\'s and the relay\'s metrics, is ready once started, and exits 0 on SIGTERM', async () => {
    const kernel = new DaemonKernel();
    kernel.add({ publicKey: randomKey(), lastHandshake: new Date() });
    const run = await readyCli(['gateway', '--interface', 'wg0', '--db', dir.join('a.db'), '--metrics', '127.0.0.1:0', '--websocket', '127.0.0.1:0'], { daemon: { kernel } });
    const { addresses } = run.ready;
    assert.equal((await fetch(url(addresses.metrics, '/readyz'))).status, 200);
    assert.equal((await fetch(url(addresses.metrics, '/healthz'))).status, 200);
    const text = await (await fetch(url(addresses.metrics, '/metrics'))).text();
    assert.match(text, /^jitguard_kernel_peers 0$/m, 'the peer unknown to the store was removed at reconciliation');
    assert.match(text, /^jitguard_evictions_total\{reason="unknown-to-store"\} 1$/m);
    assert.match(text, /^jitguard_store_peers 0$/m);
    assert.match(text, /^jitguard_websocket_connections 0$/m, 'the relay registers on the same registry');
    const ready = run.log.events('ready');
    assert.equal(ready.length, 1);
    assert.equal(ready[0]!.publicKey, kernel.publicKey);
    assert.equal(ready[0]!.websocket, formatListenAddress(addresses.websocket!));

    const started = performance.now();
    assert.equal(await terminate(run), 0);
    assert.ok(performance.now() - started < 5000);
    assert.deepEqual(run.log.lines().slice(-2).map((l) => l.event), ['stopping', 'stopped']);
    await assert.rejects(fetch(url(addresses.metrics, '/healthz')), 'the metrics server is closed');
    assert.deepEqual(run.stderr, []);
  });

  it('relays WebSocket initiations into the gateway (inject with the relay socket as source)', async () => {
    const kernel = new DaemonKernel();
    const controlPlane = await new ControlPlane().start();
    const run = await readyCli(['gateway', '--interface', 'wg0', '--db', dir.join('ws.db'), '--resolver', controlPlane.url, '--websocket', '127.0.0.1:0'], { daemon: { kernel } });
    try {
      const client = new TestClient(kernel.publicKey);
      controlPlane.peers.set(client.publicKey, { publicKey: client.publicKey, allowedIps: ['10.9.0.9/32'] });
      const ws = new WebSocket(`ws://${formatListenAddress(run.ready.addresses.websocket!)}/`, { origin: 'http://test' });
      await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
      const initiation = client.initiation();
      const frame = Buffer.alloc(8 + initiation.length);
      frame.writeUInt32BE(0x2faced77, 0);
      frame.writeUInt32BE(initiation.length, 4);
      frame.set(initiation, 8);
      ws.send(frame, { binary: false });
      await eventually(() => kernel.peers.has(client.publicKey), 'the install');
      const endpoint = kernel.peers.get(client.publicKey)!.endpoint;
      assert.match(String(endpoint), /^127\.0\.0\.1:\d+$/, 'the endpoint is the relay\'s loopback socket');
      ws.close();
    } finally {
      assert.equal(await terminate(run), 0);
      await controlPlane.stop();
    }
  });

  it('SIGHUP re-reads the admin token and the resolver\'s token and header files', async () => {
    const kernel = new DaemonKernel();
    const controlPlane = await new ControlPlane().start();
    const adminToken = dir.file('hup-admin', 'admin-one');
    const resolverToken = dir.file('hup-resolver', 'resolver-one');
    const headers = dir.file('hup-headers', 'X-Api-Key: key-one\n');
    const run = await readyCli([
      'gateway', '--interface', 'wg0', '--db', dir.join('hup.db'), '--admin', '127.0.0.1:0', '--admin-token-file', adminToken,
      '--resolver', controlPlane.url, '--resolver-token-file', resolverToken, '--resolver-header', `@${headers}`, '--resolver-header', 'X-Static: s',
    ], { daemon: { kernel } });
    const admin = (token: string) => fetch(url(run.ready.addresses.admin, `/v1/peers/${'A'.repeat(42)}A`), { headers: { authorization: `Bearer ${token}` } });
    const knock = async () => {
      const client = new TestClient(kernel.publicKey);
      const before = controlPlane.requests.length;
      assert.ok(run.ready.running.inject(client.initiation(), { address: '192.0.2.7', port: 40000 + before }));
      await eventually(() => controlPlane.requests.length > before, 'a resolver request');
      return controlPlane.requests.at(-1)!.headers;
    };
    try {
      assert.equal((await admin('admin-one')).status, 200);
      let seen = await knock();
      assert.equal(seen.authorization, 'Bearer resolver-one');
      assert.equal(seen['x-api-key'], 'key-one');
      assert.equal(seen['x-static'], 's');

      dir.file('hup-admin', 'admin-two');
      dir.file('hup-resolver', 'resolver-two');
      dir.file('hup-headers', 'X-Api-Key: key-two\n');
      assert.equal((await admin('admin-one')).status, 200, 'nothing changes before the signal');
      run.signals.emit('SIGHUP');
      assert.equal((await admin('admin-one')).status, 401);
      assert.equal((await admin('admin-two')).status, 200);
      seen = await knock();
      assert.equal(seen.authorization, 'Bearer resolver-two');
      assert.equal(seen['x-api-key'], 'key-two');
      assert.equal(run.log.events('reloaded').length, 1);
    } finally {
      assert.equal(await terminate(run), 0);
      await controlPlane.stop();
    }
  });

  it('a second SIGTERM while draining exits 1 at once, with a log line', async () => {
    const log = new LogCapture();
    const signals = new EventEmitter();
    const exit = untilStopped({ signals, stop: () => new Promise(() => undefined), reload: () => undefined, logger: createLogger('info', log), forceAfterMs: 60_000 });
    signals.emit('SIGTERM');
    signals.emit('SIGINT');
    assert.equal(await exit, 1);
    assert.deepEqual(log.lines().map((l) => l.event), ['stopping', 'forced-exit']);
    assert.equal(signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT') + signals.listenerCount('SIGHUP'), 0);
  });

  it('a drain that does not finish within the limit is cut short: exit 1, with a log line', async () => {
    const log = new LogCapture();
    const signals = new EventEmitter();
    const started = performance.now();
    const exit = untilStopped({ signals, stop: () => new Promise(() => undefined), reload: () => undefined, logger: createLogger('info', log), forceAfterMs: 100 });
    signals.emit('SIGINT');
    assert.equal(await exit, 1);
    assert.ok(performance.now() - started >= 95);
    const forced = log.events('forced-exit');
    assert.equal(forced.length, 1);
    assert.equal(forced[0]!.afterMs, 100);
  });

  it('SIGHUP while stopping is ignored; a stop that fails exits 1', async () => {
    const log = new LogCapture();
    const signals = new EventEmitter();
    let reloads = 0;
    const exit = untilStopped({ signals, stop: async () => { signals.emit('SIGHUP'); throw new Error('boom'); }, reload: () => { reloads++; }, logger: createLogger('info', log) });
    signals.emit('SIGTERM');
    assert.equal(await exit, 1);
    assert.equal(reloads, 0);
    assert.deepEqual(log.lines().map((l) => l.event), ['stopping', 'stop-failed']);
  });

  it('the default drain limit is 5 s', async () => {
    const { DRAIN_LIMIT_MS } = await import('../../../lib/cli/signals.js');
    assert.equal(DRAIN_LIMIT_MS, 5000);
  });

  it('reports not ready while it drains', async () => {
    const kernel = new DaemonKernel();
    const run = await readyCli(['gateway', '--interface', 'wg0', '--db', dir.join('drain.db'), '--metrics', '127.0.0.1:0'], { daemon: { kernel } });
    kernel.latencyMs = 200; // the drain's netlink calls (none needed, but the scan may run)
    assert.equal(run.ready.ready, true);
    run.signals.emit('SIGTERM');
    assert.equal(run.ready.ready, false);
    assert.equal(await run.exit, 0);
  });

  it('a SIGTERM while starting stops the daemon once started, and exits 0', async () => {
    const kernel = new DaemonKernel();
    kernel.latencyMs = 100;
    const run = startCli(['gateway', '--interface', 'wg0', '--db', dir.join('early.db')], { daemon: { kernel } });
    await eventually(() => run.log.events('starting').length === 1, 'the starting line');
    run.signals.emit('SIGTERM');
    assert.equal(await run.exit, 0);
    const events = run.log.lines().map((l) => l.event);
    assert.deepEqual(events.filter((e) => e !== 'evicted'), ['starting', 'stopping', 'ready', 'stopped']);
  });

  it('runs startCli to a refusal when the daemon cannot start', async () => {
    const run = startCli(['gateway', '--interface', 'wg0', '--db', dir.join('x.db')], { daemon: { kernel: new DaemonKernel({ exists: false }) } });
    assert.equal(await run.exit, 2);
  });
});
