/**
 * Logs: JSON lines, one per event, public keys allowed; private keys, preshared keys, tokens
 * and header values never. The daemon is driven through everything that touches a secret (a
 * created interface's private key, both tokens, header files and values, a pushed and a
 * resolved preshared key, a refused body, a reload, stop), at trace level, and the captured
 * output is searched for each secret.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { keyToUrl } from '../../../lib/gateway/peer-config.js';
import { createLogger, errorFields } from '../../../lib/cli/logger.js';
import { formatListenAddress } from '../../../lib/cli/listen-address.js';
import { GatewayError } from '../../../lib/gateway/errors.js';
import { TestClient, randomKey } from '../gateway/support/fakes.js';
import { ControlPlane } from './support/control-plane.js';
import { DaemonKernel, LogCapture, TempDir, readyCli, terminate } from './support/daemon-harness.js';

const dir = new TempDir();
after(() => dir.remove());

describe('logs', () => {
  it('never carry a private key, preshared key, token or header value', async () => {
    const privateKey = Buffer.alloc(32, 0x5a);
    privateKey[0] = 0x58;
    const secrets = {
      privateKey: privateKey.toString('base64'),
      adminToken: 'admin-token-SECRET-1',
      adminToken2: 'admin-token-SECRET-2',
      resolverToken: 'resolver-token-SECRET',
      headerFileValue: 'header-file-SECRET',
      headerFlagValue: 'header-flag-SECRET',
      pushedPsk: Buffer.alloc(32, 0x11).toString('base64'),
      resolvedPsk: Buffer.alloc(32, 0x22).toString('base64'),
      refusedPsk: Buffer.alloc(32, 0x33).toString('base64'),
    };
    const kernel = new DaemonKernel({ exists: false });
    const controlPlane = await new ControlPlane().start();
    const adminTokenFile = dir.file('admin', secrets.adminToken);
    const run = await readyCli([
      'gateway', '--interface', 'wg0', '--db', dir.join('log.db'), '--log-level', 'trace',
      '--private-key-file', dir.file('key', `${secrets.privateKey}\n`), '--listen-port', '51820',
      '--admin', '127.0.0.1:0', '--admin-token-file', adminTokenFile, '--metrics', '127.0.0.1:0',
      '--resolver', controlPlane.url, '--resolver-token-file', dir.file('rt', secrets.resolverToken),
      '--resolver-header', `@${dir.file('headers', `X-File: ${secrets.headerFileValue}\n`)}`, '--resolver-header', `X-Flag: ${secrets.headerFlagValue}`,
    ], { daemon: { kernel, setLinkUp: async () => undefined } });
    const admin = `http://${formatListenAddress(run.ready.addresses.admin!)}/v1/peers/`;
    const auth = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

    const pushed = randomKey();
    assert.equal((await fetch(admin + keyToUrl(pushed), { method: 'PUT', headers: auth(secrets.adminToken), body: JSON.stringify({ allowedIps: ['10.2.0.1/32'], presharedKey: secrets.pushedPsk }) })).status, 200);
    assert.equal((await fetch(admin + keyToUrl(randomKey()), { method: 'PUT', headers: auth(secrets.adminToken), body: JSON.stringify({ allowedIps: ['bad'], presharedKey: secrets.refusedPsk }) })).status, 400);
    assert.equal((await fetch(admin + keyToUrl(pushed), { headers: auth('wrong-token') })).status, 401);
    assert.equal((await fetch(admin + keyToUrl(pushed), { headers: auth(secrets.adminToken) })).status, 200);

    const client = new TestClient(kernel.publicKey);
    controlPlane.peers.set(client.publicKey, { publicKey: client.publicKey, allowedIps: ['10.2.0.2/32'], presharedKey: secrets.resolvedPsk });
    run.ready.running.inject(client.initiation(), { address: '192.0.2.10', port: 4000 });
    const stranger = new TestClient(kernel.publicKey);
    run.ready.running.inject(stranger.initiation(), { address: '192.0.2.11', port: 4001 });
    for (let i = 0; i < 200 && run.log.events('rejected').length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 200 && run.log.events('installed').length === 0; i++) await new Promise((r) => setTimeout(r, 10));

    dir.file('admin', secrets.adminToken2);
    run.signals.emit('SIGHUP');
    assert.equal(await terminate(run), 0);
    await controlPlane.stop();

    const output = run.log.all;
    for (const [name, secret] of Object.entries(secrets)) assert.ok(!output.includes(secret), `${name} appears in the log`);
    // Spelled other ways a mistake could spell them.
    assert.ok(!output.includes(Buffer.from(secrets.privateKey, 'base64').toString('hex')));
    assert.ok(!output.includes(keyToUrl(secrets.pushedPsk)));

    // And the log is what it should be: one JSON object per line, events named, public keys present.
    const lines = run.log.lines();
    assert.ok(lines.every((l) => typeof l.event === 'string' && typeof l.level === 'string' && typeof l.time === 'string'));
    const events = lines.map((l) => l.event);
    for (const event of ['starting', 'interface-created', 'ready', 'admin-upsert', 'admin-unauthorized', 'installed', 'rejected', 'reloaded', 'stopping', 'stopped']) {
      assert.ok(events.includes(event), `a '${event}' line`);
    }
    assert.equal(run.log.events('installed')[0]!.publicKey, client.publicKey);
    assert.equal(run.log.events('rejected')[0]!.publicKey, stranger.publicKey);
    assert.equal(run.log.events('rejected')[0]!.reason, 'unknown');
    assert.equal(run.log.events('admin-upsert')[0]!.hasPresharedKey, true);
    assert.equal(run.log.events('interface-created')[0]!.publicKey, kernel.publicKey);
  });

  it('redacts fields named like secrets, should one ever be logged', () => {
    const log = new LogCapture();
    const logger = createLogger('info', log);
    logger.info({ event: 'x', presharedKey: 'p1', peer: { privateKey: 'p2', token: 'p3' }, headers: { authorization: 'p4' } }, 'oops');
    assert.ok(!/p[1-4]/.test(log.all.replace(/"pid":\d+/, '')), log.all);
    assert.equal(log.lines()[0]!.presharedKey, '[redacted]');
  });

  it('logs an error as its name, code, stage and message only', () => {
    const cause = Object.assign(new Error('netlink said no'), { code: 'ETIMEDOUT', extra: 'x'.repeat(10) });
    const error = new GatewayError('evict: ETIMEDOUT', { code: 'ETIMEDOUT', stage: 'evict', cause });
    assert.deepEqual(errorFields(error), {
      type: 'GatewayError', message: 'evict: ETIMEDOUT', code: 'ETIMEDOUT', stage: 'evict',
      cause: { type: 'Error', message: 'netlink said no', code: 'ETIMEDOUT' },
    });
  });
});
