/**
 * `jitguard gateway` as an operator runs it: the real executable, in its own network namespace,
 * as the unprivileged user `nobody` holding only CAP_NET_ADMIN and CAP_NET_RAW (ambient, under
 * capsh, as systemd's AmbientCapabilities= gives them). It creates and keys wg0 itself, learns a
 * kernel WireGuard client from the resolver on its first initiation, and the client's ping is
 * answered; /readyz and /metrics answer over the network; the admin API shows the peer in the
 * kernel with a handshake; SIGTERM drains and exits 0 within 5 s.
 *
 * The executable is lib/cli/main.ts bundled into one file by esbuild (tsx's own compiler) just
 * before the run: the same source as the shipped dist/ build, loaded without tsx's loader hooks,
 * which cost more than a minute per start in the TCG VM.
 *
 * Layout: namespace gw ← veth 192.0.2.1 | 192.0.2.2 → this VM's root namespace, which holds the
 * client (jgc…) and the control plane (this process).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, it } from 'node:test';
import { exec, kernelHasWireGuard, withNamespace } from './support/netns.js';

const NOBODY = 65534;
const GATEWAY_ADDRESS = '192.0.2.1';
const HOST_ADDRESS = '192.0.2.2';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const rawKey = (der: Buffer) => der.subarray(der.length - 32).toString('base64');
const base64url = (key: string) => key.slice(0, 43).replaceAll('+', '-').replaceAll('/', '_');

function keyPair() {
  const { privateKey } = generateKeyPairSync('x25519');
  return {
    privateKey: rawKey(privateKey.export({ format: 'der', type: 'pkcs8' })),
    publicKey: rawKey(createPublicKey(privateKey).export({ format: 'der', type: 'spki' })),
  };
}

let executable = '';
let bundleDir = '';

before(async () => {
  assert.ok(await kernelHasWireGuard(), 'this kernel cannot create WireGuard interfaces: run the kernel tier through test/kernel/run.sh');
  // Inside the project, so the bundle finds node_modules and the addon (binding.gyp) as dist/ would.
  mkdirSync(resolve('.cache'), { recursive: true });
  bundleDir = mkdtempSync(resolve('.cache', 'daemon-test-'));
  chmodSync(bundleDir, 0o755);
  executable = join(bundleDir, 'main.mjs');
  await promisify(execFile)(resolve('node_modules/.bin/esbuild'), [
    'lib/cli/main.ts', '--bundle', '--platform=node', '--format=esm', '--target=node20', '--packages=external',
    `--outfile=${executable}`, '--log-level=warning',
  ]);
  // The gateway's verification threads start from verify-worker.mjs beside the executable
  // (lib/gateway/verify-worker-entry.ts), as dist/lib/gateway/verify-worker.js is beside the pool.
  await promisify(execFile)(resolve('node_modules/.bin/esbuild'), [
    'lib/gateway/verify-worker.ts', '--bundle', '--platform=node', '--format=esm', '--target=node20', '--packages=external',
    `--outfile=${join(bundleDir, 'verify-worker.mjs')}`, '--log-level=warning',
  ]);
});

after(() => {
  if (bundleDir !== '') rmSync(bundleDir, { recursive: true, force: true });
});

it('runs as nobody with only CAP_NET_ADMIN and CAP_NET_RAW: JIT install, ping, /readyz, /metrics, admin GET, SIGTERM → 0 within 5 s', { timeout: 240_000 }, async () => {
  await withNamespace(async (ns) => {
    const suffix = randomBytes(2).toString('hex');
    const hostVeth = `jgv${suffix}`;
    const clientDevice = `jgc${suffix}`;
    const dir = mkdtempSync(join(tmpdir(), 'jg-daemon-'));
    chownSync(dir, NOBODY, NOBODY);
    const gateway = keyPair();
    const client = keyPair();
    const secrets = { admin: randomBytes(16).toString('hex'), resolver: randomBytes(16).toString('hex') };
    const file = (name: string, content: string) => {
      const path = join(dir, name);
      writeFileSync(path, content, { mode: 0o600 });
      chownSync(path, NOBODY, NOBODY);
      return path;
    };
    const resolverRequests: IncomingHttpHeaders[] = [];
    const controlPlane = createServer((req, res) => {
      resolverRequests.push(req.headers);
      const known = (req.url ?? '').endsWith(`/${base64url(client.publicKey)}`);
      res.writeHead(known ? 200 : 404, { 'content-type': 'application/json' })
        .end(known ? JSON.stringify({ publicKey: client.publicKey, allowedIps: ['10.8.0.2/32'] }) : '{}');
    });
    let daemon: ChildProcess | undefined;
    let stdout = '';
    let stderr = '';
    try {
      await exec('ip', ['link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', 'jgv-gw', 'netns', ns.name]);
      await exec('ip', ['addr', 'add', `${HOST_ADDRESS}/24`, 'dev', hostVeth]);
      await exec('ip', ['link', 'set', hostVeth, 'up']);
      await ns.exec('ip', ['addr', 'add', `${GATEWAY_ADDRESS}/24`, 'dev', 'jgv-gw']);
      await ns.exec('ip', ['link', 'set', 'jgv-gw', 'up']);
      await new Promise<void>((resolve) => controlPlane.listen(0, HOST_ADDRESS, resolve));
      const resolverUrl = `http://${HOST_ADDRESS}:${(controlPlane.address() as AddressInfo).port}/v1/peers`;

      // ip netns exec → capsh (root: keep CAP_NET_ADMIN/CAP_NET_RAW as ambient, become nobody) → exec node.
      daemon = spawn('ip', [
        'netns', 'exec', ns.name,
        'capsh', '--caps=cap_net_admin,cap_net_raw+eip cap_setpcap,cap_setuid,cap_setgid+ep', '--keep=1', `--user=nobody`,
        '--addamb=cap_net_admin,cap_net_raw', '--', '-c', 'exec "$0" "$@"',
        process.execPath, executable, 'gateway',
        '--interface', 'wg0', '--private-key-file', file('gateway.key', `${gateway.privateKey}\n`), '--listen-port', '51820',
        '--db', join(dir, 'peers.db'), '--resolver', resolverUrl, '--resolver-token-file', file('resolver.token', secrets.resolver),
        '--metrics', `${GATEWAY_ADDRESS}:9100`, '--admin', `${GATEWAY_ADDRESS}:9101`, '--admin-token-file', file('admin.token', secrets.admin),
        '--log-level', 'debug',
      ], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
      daemon.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
      daemon.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => daemon!.once('exit', (code, signal) => resolve({ code, signal })));

      // Ready: the interface created and reconciled, every listener up.
      const metrics = `http://${GATEWAY_ADDRESS}:9100`;
      const spawnedAt = Date.now();
      const deadline = spawnedAt + 120_000;
      let readyStatus = 0;
      while (readyStatus !== 200) {
        assert.equal(daemon.exitCode, null, `the daemon exited early: ${stderr}`);
        assert.ok(Date.now() < deadline, `not ready within 120 s; stderr: ${stderr}; stdout: ${stdout}`);
        readyStatus = await fetch(`${metrics}/readyz`).then((r) => r.status, () => 0);
        if (readyStatus !== 200) await sleep(200);
      }
      const readyMs = Date.now() - spawnedAt;
      assert.equal((await fetch(`${metrics}/healthz`)).status, 200);

      // The process holds exactly the two capabilities, as nobody.
      const status = readFileSync(`/proc/${daemon.pid}/status`, 'utf8');
      assert.match(status, /^Uid:\t65534\t65534\t65534\t65534$/m);
      assert.match(status, /^CapEff:\t0000000000003000$/m, 'CAP_NET_ADMIN and CAP_NET_RAW only');
      assert.match(status, /^CapPrm:\t0000000000003000$/m);

      // The daemon keyed and raised wg0; the operator gives it an address.
      const shown = await ns.exec('wg', ['show', 'wg0', 'dump']);
      assert.equal(shown.split('\n')[0]!.split('\t').slice(1, 3).join(' '), `${gateway.publicKey} 51820`);
      assert.equal(shown.trim().split('\n').length, 1, 'no peers');
      await ns.exec('ip', ['addr', 'add', '10.8.0.1/24', 'dev', 'wg0']);

      // A stock kernel WireGuard client that knows only the gateway's key and address.
      await exec('ip', ['link', 'add', clientDevice, 'type', 'wireguard']);
      await exec('wg', ['set', clientDevice, 'private-key', file('client.key', client.privateKey), 'peer', gateway.publicKey,
        'endpoint', `${GATEWAY_ADDRESS}:51820`, 'allowed-ips', '10.8.0.1/32']);
      await exec('ip', ['addr', 'add', '10.8.0.2/24', 'dev', clientDevice]);
      await exec('ip', ['link', 'set', clientDevice, 'up']);
      const pingStarted = Date.now();
      // One echo request, waited for long enough to cover a client retry (every 5 s) on a loaded VM.
      await exec('ping', ['-c', '1', '-W', '30', '-I', clientDevice, '10.8.0.1']).catch((error: Error) => {
        assert.fail(`no ping reply: ${error.message}; daemon log: ${stdout.split('\n').filter((l) => /"event":"(installed|rejected|gateway-error)"/.test(l)).join('\n')}`);
      });
      const pingMs = Date.now() - pingStarted;

      assert.equal(resolverRequests.length, 1, 'one control-plane request');
      assert.equal(resolverRequests[0]!.authorization, `Bearer ${secrets.resolver}`);
      const text = await (await fetch(`${metrics}/metrics`)).text();
      assert.match(text, /^jitguard_installs_total\{via="resolver"\} 1$/m);
      assert.match(text, /^jitguard_kernel_peers 1$/m);
      assert.match(text, /^jitguard_store_peers 1$/m);

      const peer = await fetch(`http://${GATEWAY_ADDRESS}:9101/v1/peers/${base64url(client.publicKey)}`, { headers: { authorization: `Bearer ${secrets.admin}` } });
      assert.equal(peer.status, 200);
      const view = await peer.json() as { inStore: string; inKernel: boolean; lastHandshake: string | null };
      assert.equal(view.inStore, 'configured');
      assert.equal(view.inKernel, true);
      assert.ok(view.lastHandshake !== null && Date.now() - Date.parse(view.lastHandshake) < 60_000, `a recent handshake: ${view.lastHandshake}`);
      assert.equal((await fetch(`http://${GATEWAY_ADDRESS}:9101/v1/peers/${base64url(client.publicKey)}`)).status, 401);

      const stopStarted = Date.now();
      daemon.kill('SIGTERM');
      const { code, signal } = await exited;
      const stopMs = Date.now() - stopStarted;
      assert.equal(signal, null);
      assert.equal(code, 0, `exit code; stderr: ${stderr}`);
      assert.ok(stopMs < 5000, `stopped in ${stopMs} ms`);
      assert.equal(stderr, '');

      const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { event?: string });
      const events = lines.map((l) => l.event);
      for (const event of ['interface-created', 'ready', 'installed', 'stopping', 'stopped']) assert.ok(events.includes(event), `a '${event}' log line`);
      for (const secret of [gateway.privateKey, client.privateKey, secrets.admin, secrets.resolver]) assert.ok(!stdout.includes(secret), 'no secret in the log');
      console.log(`# daemon: ready ${readyMs} ms after spawn; first ping answered ${pingMs} ms after it was sent; SIGTERM to exit ${stopMs} ms (TCG VM)`);
    } finally {
      if (daemon && daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
      controlPlane.close();
      await exec('ip', ['link', 'del', clientDevice]).catch(() => undefined);
      await exec('ip', ['link', 'del', hostVeth]).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
