/**
 * Every refusal of `jitguard gateway`: one line on stderr starting "jitguard: ", exit code 2,
 * nothing left half-done. In-process over a fake kernel, plus the real executable for a bad
 * flag, --help and a refusal from the daemon, so the process's own exit code is pinned too.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CliIo } from '../../../lib/cli/run.js';
import { DaemonKernel, TempDir, capabilityStatus, startCli } from './support/daemon-harness.js';

const dir = new TempDir();
after(() => dir.remove());
const db = () => dir.join(`r-${Math.random().toString(36).slice(2)}.db`);

function assertOneLine(stderr: string[], pattern: RegExp): void {
  const text = stderr.join('');
  assert.match(text, /^jitguard: [^\n]+\n$/, `one line: ${JSON.stringify(text)}`);
  assert.match(text, pattern);
}

async function refuses(argv: string[], pattern: RegExp, daemon: NonNullable<CliIo['daemon']> = {}) {
  const run = startCli(['gateway', ...argv], { daemon });
  const code = await run.exit;
  assert.equal(code, 2, `exit code (stderr: ${run.stderr.join('')})`);
  assertOneLine(run.stderr, pattern);
  return run;
}

describe('jitguard gateway refuses, with one line and exit code 2', () => {
  it('a bad flag', () => refuses(['--interface', 'wg0', '--nope'], /unknown option '--nope'/));
  it('a bad flag value', () => refuses(['--interface', 'wg0', '--db', db(), '--idle-timeout', 'soon'], /--idle-timeout: expected a non-negative number of seconds/));
  it('a missing --config file', () => refuses(['--config', dir.join('none.json')], /--config .*none\.json: cannot read it \(ENOENT\)/));

  it('missing CAP_NET_ADMIN, by name', () => refuses(['--interface', 'wg0', '--db', db()], /missing capability CAP_NET_ADMIN/, { capabilityStatus: capabilityStatus(13) }));
  it('missing CAP_NET_RAW, by name', () => refuses(['--interface', 'wg0', '--db', db()], /missing capability CAP_NET_RAW/, { capabilityStatus: capabilityStatus(12) }));
  it('a kernel that answers EPERM after all (a capability the check could not see)', async () => {
    const kernel = new DaemonKernel();
    kernel.listDevices = async () => { throw Object.assign(new Error('Operation not permitted'), { code: 'EPERM' }); };
    await refuses(['--interface', 'wg0', '--db', db()], /cannot list the WireGuard interfaces: missing capability CAP_NET_ADMIN/, { kernel });
  });

  it('an interface that does not exist', () => refuses(['--interface', 'wg0', '--db', db()], /interface wg0 does not exist \(create it, or give --private-key-file and --listen-port/, { kernel: new DaemonKernel({ exists: false }) }));
  it('an interface that is not WireGuard', () => refuses(['--interface', 'wg0', '--db', db()], /interface wg0 is not a WireGuard interface/, { kernel: new DaemonKernel({ exists: false }), linkExists: () => true }));
  it('an interface without a private key', async () => {
    const kernel = new DaemonKernel();
    kernel.hasPrivateKey = false;
    await refuses(['--interface', 'wg0', '--db', db()], /interface wg0 has no private key/, { kernel });
  });
  it('an interface without a listen port', async () => {
    const kernel = new DaemonKernel({ name: 'wg0' });
    Object.defineProperty(kernel, 'listenPort', { value: 0 });
    await refuses(['--interface', 'wg0', '--db', db()], /interface wg0 has no listen port/, { kernel });
  });
  it('a private key file that holds no key (creating the interface)', async () => {
    const kernel = new DaemonKernel({ exists: false });
    const secret = 'not-a-key-but-maybe-a-secret';
    const run = await refuses(['--interface', 'wg0', '--db', db(), '--private-key-file', dir.file('bad.key', `${secret}\n`), '--listen-port', '51820'], /--private-key-file .*bad\.key: no private key in it/, { kernel });
    assert.ok(!run.stderr.join('').includes(secret));
    assert.equal(kernel.createCalls, 0, 'nothing created before the key was read');
  });
  it('a private key file that cannot be read', () => refuses(['--interface', 'wg0', '--db', db(), '--private-key-file', dir.join('none.key'), '--listen-port', '51820'], /--private-key-file .*none\.key: cannot read it \(ENOENT\)/, { kernel: new DaemonKernel({ exists: false }) }));

  it('a database whose directory does not exist', () => refuses(['--interface', 'wg0', '--db', dir.join('no/such/dir/p.db')], /--db .*: database not writable: directory .*no\/such\/dir does not exist/));
  it('a database not writable, before any interface is created', async () => {
    const kernel = new DaemonKernel({ exists: false });
    await refuses(['--interface', 'wg0', '--db', dir.join('missing/p.db'), '--private-key-file', dir.file('k', `${Buffer.alloc(32, 3).toString('base64')}\n`), '--listen-port', '51820'], /database not writable/, { kernel });
    assert.equal(kernel.createCalls, 0);
  });
  it('a database whose directory is a file', () => refuses(['--interface', 'wg0', '--db', `${dir.file('plain', '')}/p.db`], /database not writable: .*plain is not a directory/));
  it('a database path that is a directory', () => {
    const path = dir.join('a-directory.db');
    mkdirSync(path);
    return refuses(['--interface', 'wg0', '--db', path], /database not writable: not a regular file/);
  });
  it('a database group or others may read (it holds preshared keys)', () => refuses(['--interface', 'wg0', '--db', dir.file('open.db', '', 0o644)], /--db .*open\.db: ERR_JITGUARD_STORE_PERMISSIONS/));

  it('a listener address in use', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    try {
      const kernel = new DaemonKernel();
      await refuses(['--interface', 'wg0', '--db', db(), '--metrics', `127.0.0.1:${port}`], new RegExp(`--metrics 127\\.0\\.0\\.1:${port}: cannot listen \\(EADDRINUSE\\)`), { kernel });
      const again = await refuses(['--interface', 'wg0', '--db', db(), '--admin', `127.0.0.1:${port}`, '--admin-token-file', dir.file('t', 'tok')], /--admin .*EADDRINUSE/, { kernel: new DaemonKernel() });
      assert.ok(again);
      await refuses(['--interface', 'wg0', '--db', db(), '--websocket', `127.0.0.1:${port}`], /--websocket .*EADDRINUSE/, { kernel: new DaemonKernel() });
    } finally {
      busy.close();
    }
  });
  it('a TLS file that cannot be read', () => refuses(['--interface', 'wg0', '--db', db(), '--websocket', '127.0.0.1:0', '--tls-cert', dir.join('none.pem'), '--tls-key', dir.join('none.pem')], /--tls-cert .*none\.pem: cannot read it \(ENOENT\)/));
  it('a TLS certificate that is not PEM', () => refuses(['--interface', 'wg0', '--db', db(), '--websocket', '127.0.0.1:0', '--tls-cert', dir.file('c.pem', 'junk'), '--tls-key', dir.file('k.pem', 'junk')], /--websocket: options\.tls\.cert: expected a PEM certificate/));
  it('an unreadable admin token file', () => refuses(['--interface', 'wg0', '--db', db(), '--admin', '127.0.0.1:0', '--admin-token-file', dir.join('none.token')], /--admin-token-file .*none\.token: cannot read it \(ENOENT\)/));
});

describe('jitguard gateway creates a missing interface only when asked to', () => {
  it('with --private-key-file and --listen-port: created, keyed, brought up, then run', async () => {
    const kernel = new DaemonKernel({ exists: false });
    const keyBytes = Buffer.alloc(32, 0x41);
    keyBytes[0] = 0x40;
    const upCalls: string[] = [];
    const run = startCli(['gateway', '--interface', 'wg0', '--db', db(), '--private-key-file', dir.file('gw.key', `${keyBytes.toString('base64')}\n`), '--listen-port', '51999'],
      { daemon: { kernel, setLinkUp: async (name) => { upCalls.push(name); } } });
    const daemon = await run.daemon;
    assert.equal(kernel.createCalls, 1);
    assert.equal(kernel.configured.length, 1);
    assert.deepEqual(Buffer.from(kernel.configured[0]!.privateKey as Uint8Array), keyBytes);
    assert.equal(kernel.configured[0]!.listenPort, 51999);
    assert.deepEqual(upCalls, ['wg0']);
    assert.equal(run.log.events('interface-created').length, 1);
    assert.ok(daemon.ready);
    run.signals.emit('SIGTERM');
    assert.equal(await run.exit, 0);
  });

  it('an existing WireGuard interface is used as it is, even with --private-key-file', async () => {
    const kernel = new DaemonKernel();
    const run = startCli(['gateway', '--interface', 'wg0', '--db', db(), '--private-key-file', dir.file('unused.key', `${Buffer.alloc(32, 1).toString('base64')}\n`), '--listen-port', '51999'], { daemon: { kernel } });
    await run.daemon;
    assert.equal(kernel.createCalls, 0);
    assert.deepEqual(kernel.configured, []);
    run.signals.emit('SIGTERM');
    assert.equal(await run.exit, 0);
  });
});

describe('the jitguard executable', () => {
  const exec = promisify(execFile);
  const cli = (...args: string[]) => exec(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { timeout: 30_000 });

  it('--help prints usage on stdout and exits 0', async () => {
    const { stdout, stderr } = await cli('gateway', '--help');
    assert.match(stdout, /^Usage: jitguard gateway \[options\]/);
    assert.match(stdout, /--admin-token-file <file>/);
    assert.equal(stderr, '');
  });

  it('a bad flag: one stderr line, exit 2', async () => {
    await assert.rejects(cli('gateway', '--interface', 'wg0', '--frobnicate'), (error: { code: number; stderr: string; stdout: string }) => {
      assert.equal(error.code, 2);
      assert.equal(error.stderr, "jitguard: unknown option '--frobnicate'\n");
      assert.equal(error.stdout, '');
      return true;
    });
  });

  it('a refusal from the daemon: one stderr line, exit 2', async () => {
    const path = dir.join('never/p.db');
    await assert.rejects(cli('gateway', '--interface', 'jgnone0', '--db', path), (error: { code: number; stderr: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr, /^jitguard: [^\n]+\n$/);
      return true;
    });
    assert.ok(!existsSync(path));
  });
});
