/**
 * The demo's network (demo/topology.ts) on this host's kernel, without WireGuard: built by its
 * scripts, it must carry what the demo relies on (IPv4 and IPv6 across the bridge, UDP from
 * behind the NAT arriving from the NAT's address on a port of its range, UDP dropped for the
 * WebSocket client while its other traffic passes, the control network, the gateway's low-port
 * sysctl), and the teardown must leave nothing behind. A mistake here would otherwise show only
 * as a failed `npm run demo` in the VM.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inNamespace, run, script } from '../../demo/exec.js';
import { nobodyCanRun } from '../../demo/gateway-daemon.js';
import { GATEWAY, HOME, NAMESPACES, NAT, clientSideLines, gatewaySideLines, teardownLines } from '../../demo/topology.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') it('runs as root', () => assert.fail('the privileged tier needs root'));

describe('the demo topology', { skip: !isRoot && 'needs root' }, () => {
  before(async () => {
    await script(gatewaySideLines());
    // `extra` lines land in their namespace's batch (the demo's clients put their wg0 there).
    await script(clientSideLines(new Map([['jgd-ipv4', ['addr add 10.99.0.1/32 dev lo']]])));
  });
  after(async () => {
    await script(teardownLines());
  });

  it('carries IPv4 and IPv6 across the bridge, and the control network', async () => {
    await inNamespace('jgd-ipv4', 'ping', ['-n', '-c', '1', '-W', '5', GATEWAY.v4]);
    await inNamespace('jgd-ipv6', 'ping', ['-n', '-c', '1', '-W', '5', GATEWAY.v6]);
    await inNamespace('jgd-forger', 'ping', ['-n', '-c', '1', '-W', '5', GATEWAY.v4]);
    await run('ping', ['-n', '-c', '1', '-W', '5', GATEWAY.control]);
    assert.match(await run('ip', ['-n', 'jgd-ipv4', 'addr', 'show', 'dev', 'lo']), /10\.99\.0\.1\/32/, 'the extra batch line ran in its namespace');
    assert.doesNotMatch(await run('ip', ['-n', 'jgd-ipv6', '-4', 'addr', 'show', 'dev', 'eth0']), /inet /, 'the IPv6 client has no IPv4 address');
  });

  it('translates UDP from behind the NAT to its own address and a port of its range', async () => {
    // A UDP listener in the gateway's namespace that prints where the first datagram came from.
    const listener = spawn('ip', ['netns', 'exec', GATEWAY.namespace, process.execPath, '-e', `
      const s = require('node:dgram').createSocket('udp4');
      s.on('message', (_m, r) => { console.log(r.address + ':' + r.port); process.exit(0); });
      s.bind(${GATEWAY.listenPort}, () => console.log('listening'));
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: listener.stdout! });
    const [first] = await once(lines, 'line') as [string];
    assert.equal(first, 'listening');
    const seen = once(lines, 'line') as Promise<[string]>;
    await inNamespace(HOME.namespace, 'bash', ['--norc', '--noprofile', '-c', `echo knock > /dev/udp/${GATEWAY.v4}/${GATEWAY.listenPort}`]);
    const [source] = await seen;
    const [address, port] = source.split(':');
    assert.equal(address, NAT.outside);
    assert.ok(Number(port) >= NAT.ports.min && Number(port) <= NAT.ports.max, `translated port ${port}`);
    listener.kill();
  });

  it('drops UDP leaving the WebSocket client\'s namespace, and nothing else', async () => {
    await assert.rejects(inNamespace('jgd-ws', 'bash', ['--norc', '--noprofile', '-c', `echo knock > /dev/udp/${GATEWAY.v4}/${GATEWAY.listenPort}`]), /Operation not permitted/);
    await inNamespace('jgd-ws', 'bash', ['--norc', '--noprofile', '-c', 'echo local > /dev/udp/127.0.0.1/9']);
    await inNamespace('jgd-ws', 'ping', ['-n', '-c', '1', '-W', '5', GATEWAY.v4]);
  });

  it('lets an unprivileged user bind port 443 in the gateway\'s namespace only', async () => {
    assert.equal((await inNamespace(GATEWAY.namespace, 'sysctl', ['-n', 'net.ipv4.ip_unprivileged_port_start'])).trim(), String(GATEWAY.websocketPort));
    assert.notEqual((await run('sysctl', ['-n', 'net.ipv4.ip_unprivileged_port_start'])).trim(), String(GATEWAY.websocketPort));
  });

  it('tears down to nothing, and a second build after an interrupted one starts clean', async () => {
    await script(gatewaySideLines()); // over the existing network: its own teardown runs first
    await script(teardownLines());
    const left = (await run('ip', ['netns', 'list'])).split('\n').filter((l) => NAMESPACES.some((ns) => l.startsWith(`${ns} `) || l === ns));
    assert.deepEqual(left, []);
    await assert.rejects(run('ip', ['link', 'show', 'jgd-ctl']));
    await script(gatewaySideLines());
    await script(clientSideLines(new Map()));
  });
});

describe('who runs the demo\'s processes', { skip: !isRoot && 'needs root' }, () => {
  it('nobody, when it can read the executable and the packages; root otherwise', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jg-demo-user-'));
    try {
      const executable = join(dir, 'jitguard.mjs');
      writeFileSync(executable, '');
      chmodSync(dir, 0o755);
      chmodSync(executable, 0o644);
      const readable = await nobodyCanRun([process.execPath, executable]);
      // This project's node_modules must be readable by nobody too (as for the kernel tier's daemon test).
      assert.equal(readable, (await run('capsh', ['--user=nobody', '--', '-c', 'test -r "$0"', resolve('node_modules/better-sqlite3/package.json')]).then(() => true, () => false)));
      chmodSync(dir, 0o700); // a clone under /root
      assert.equal(await nobodyCanRun([process.execPath, executable]), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
