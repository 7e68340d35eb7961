/**
 * The admin API through the running daemon (fake kernel, real SQLite store): Bearer auth,
 * base64url keys, bodies validated as the resolver's answers are, and GET's view of the store
 * and the kernel.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { keyToUrl } from '../../../lib/gateway/peer-config.js';
import { formatListenAddress } from '../../../lib/cli/listen-address.js';
import { randomKey } from '../gateway/support/fakes.js';
import { DaemonKernel, TempDir, readyCli, terminate, type CliRun } from './support/daemon-harness.js';
import type { Daemon } from '../../../lib/cli/daemon.js';

const TOKEN = 'admin-token-for-tests';
const dir = new TempDir();
const kernel = new DaemonKernel();
let run: CliRun & { ready: Daemon };
let base = '';

before(async () => {
  run = await readyCli(['gateway', '--interface', 'wg0', '--db', dir.join('admin.db'), '--admin', '127.0.0.1:0', '--admin-token-file', dir.file('token', `${TOKEN}\n`)], { daemon: { kernel } });
  base = `http://${formatListenAddress(run.ready.addresses.admin!)}/v1/peers/`;
});
after(async () => {
  assert.equal(await terminate(run), 0);
  dir.remove();
});

const request = (path: string, init: RequestInit & { token?: string | null } = {}) => {
  const headers = new Headers(init.headers);
  if (init.token !== null) headers.set('authorization', `Bearer ${init.token ?? TOKEN}`);
  return fetch(`${base}${path}`, { ...init, headers });
};
const put = (key: string, body: unknown, init: RequestInit = {}) =>
  request(keyToUrl(key), { method: 'PUT', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...init });

describe('admin API: authentication', () => {
  for (const [name, authorization] of [
    ['no Authorization header', null],
    ['a wrong token of the same length', `Bearer ${'x'.repeat(TOKEN.length)}`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`],
    ['the token with more after it', `Bearer ${TOKEN}x`],
    ['another scheme', `Basic ${TOKEN}`],
  ] as const) {
    it(`401 for ${name}, before the body is looked at`, async () => {
      const key = randomKey();
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== null) headers.authorization = authorization;
      const res = await fetch(`${base}${keyToUrl(key)}`, { method: 'PUT', headers, body: JSON.stringify({ allowedIps: ['10.1.0.1/32'] }) });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="jitguard"');
      const status = await request(keyToUrl(key));
      assert.equal((await status.json() as { inStore: string }).inStore, 'absent', 'nothing stored');
    });
  }

  it('401 on every path and method without the token', async () => {
    for (const [path, method] of [['', 'GET'], ['x', 'DELETE'], ['../../metrics', 'GET']] as const) {
      assert.equal((await request(path, { method, token: 'nope' })).status, 401);
    }
  });
});

describe('admin API: peers', () => {
  it('PUT upserts (validated, canonical), GET shows it in the store, DELETE revokes', async () => {
    const key = randomKey();
    const psk = Buffer.alloc(32, 7).toString('base64');
    const res = await put(key, { allowedIps: ['10.1.2.3/24', 'fd00::5/128'], presharedKey: psk, persistentKeepalive: 25 });
    assert.equal(res.status, 200);
    const body = await res.json() as Record<string, unknown>;
    assert.deepEqual({ ...body, fetchedAt: typeof body.fetchedAt }, {
      publicKey: key, allowedIps: ['10.1.2.0/24', 'fd00::5/128'], persistentKeepalive: 25, hasPresharedKey: true, origin: 'push', fetchedAt: 'string',
    });
    assert.ok(!JSON.stringify(body).includes(psk), 'no preshared key in the reply');

    const status = await (await request(keyToUrl(key))).json() as Record<string, unknown>;
    assert.equal(status.inStore, 'configured');
    assert.equal(status.inKernel, false);
    assert.equal(status.lastHandshake, null);
    assert.deepEqual((status.store as Record<string, unknown>).allowedIps, ['10.1.2.0/24', 'fd00::5/128']);
    assert.ok(!JSON.stringify(status).includes(psk));

    const deleted = await request(keyToUrl(key), { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    const revoked = await (await request(keyToUrl(key))).json() as Record<string, unknown>;
    assert.equal(revoked.inStore, 'revoked');
    assert.equal(revoked.store, null);
  });

  it('GET shows a peer the kernel holds, with its last handshake; DELETE removes it from the kernel at once', async () => {
    const key = randomKey();
    assert.equal((await put(key, { publicKey: key, allowedIps: ['10.1.0.9/32'] })).status, 200);
    const handshake = new Date('2026-01-02T03:04:05.000Z');
    kernel.add({ publicKey: key, endpoint: '192.0.2.9:5000', allowedIps: ['10.1.0.9/32'], lastHandshake: handshake, rxBytes: 1234n });
    const status = await (await request(keyToUrl(key))).json() as Record<string, unknown>;
    assert.equal(status.inKernel, true);
    assert.equal(status.lastHandshake, handshake.toISOString());
    assert.deepEqual(status.kernel, { endpoint: '192.0.2.9:5000', allowedIps: ['10.1.0.9/32'], persistentKeepalive: 0, rxBytes: '1234', txBytes: '0' });
  });

  it('PUT of a peer in the kernel updates it there', async () => {
    const key = randomKey();
    assert.equal((await put(key, { allowedIps: ['10.1.0.10/32'] })).status, 200);
    kernel.add({ publicKey: key, allowedIps: ['10.1.0.10/32'], lastHandshake: new Date() });
    // The gateway updates only peers it knows are in the kernel; a scan adopts this one.
    await run.ready.running.evictNow();
    assert.equal((await put(key, { allowedIps: ['10.1.0.11/32'] })).status, 200);
    assert.deepEqual(kernel.peers.get(key)!.allowedIps, ['10.1.0.11/32']);
  });

  for (const [name, path, body, status, message] of [
    ['an unknown field (a typo must not install a peer with no addresses)', null, { allowedIPs: ['10.0.0.1/32'] }, 400, /body\.allowedIPs: unknown field/],
    ['allowedIps missing', null, {}, 400, /body\.allowedIps: expected an array/],
    ['a bad prefix', null, { allowedIps: ['10.0.0.1/33'] }, 400, /body\.allowedIps\[0\]/],
    ['a bad preshared key', null, { allowedIps: [], presharedKey: 'short' }, 400, /body\.presharedKey/],
    ['a keepalive out of range', null, { allowedIps: [], persistentKeepalive: 70000 }, 400, /body\.persistentKeepalive/],
    ['a publicKey other than the URL\'s', null, { publicKey: randomKey(), allowedIps: [] }, 400, /body\.publicKey: differs from the key in the URL/],
    ['an array', null, [], 400, /body: expected an object/],
    ['not JSON', null, '{"allowedIps": [', 400, /not valid JSON/],
    ['a key in standard base64 (not base64url)', 'ab+c'.repeat(10) + 'abc', { allowedIps: [] }, 400, /key: expected a public key in base64url/],
    ['a 44-character key with padding', `${'A'.repeat(43)}=`, { allowedIps: [] }, 400, /key: expected a public key in base64url/],
    ['a non-canonical key (low bits of the last character set)', `${'A'.repeat(42)}B`, { allowedIps: [] }, 400, /key/],
  ] as const) {
    it(`PUT refuses ${name} with ${status}`, async () => {
      const key = randomKey();
      const res = path === null ? await put(key, body) : await request(path, { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, status);
      const reply = await res.json() as { error: string };
      assert.match(reply.error, message);
      if (path === null) assert.equal((await (await request(keyToUrl(key))).json() as { inStore: string }).inStore, 'absent');
    });
  }

  it('PUT refuses a wrong Content-Type (415) and a body over 64 KiB (413)', async () => {
    const key = randomKey();
    assert.equal((await put(key, { allowedIps: [] }, { headers: { 'content-type': 'text/plain' } })).status, 415);
    const big = JSON.stringify({ allowedIps: [], pad: 'x'.repeat(70_000) });
    assert.equal((await put(key, big)).status, 413);
  });

  it('the preshared key of a refused body is not in the refusal', async () => {
    const psk = Buffer.alloc(32, 9).toString('base64');
    const res = await put(randomKey(), { allowedIps: ['nonsense'], presharedKey: psk });
    assert.equal(res.status, 400);
    assert.ok(!(await res.text()).includes(psk));
  });

  it('404 for other paths, 405 for other methods', async () => {
    assert.equal((await fetch(base.replace(/\/$/, ''), { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    assert.equal((await request(`${keyToUrl(randomKey())}/more`)).status, 404);
    assert.equal((await fetch(`${base.replace('/v1/peers/', '/v2/x')}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 404);
    const res = await request(keyToUrl(randomKey()), { method: 'POST' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, PUT, DELETE');
  });
});
