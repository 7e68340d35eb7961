/**
 * Credentials: the admin Bearer check (constant time over equal-length digests), resolver
 * headers from flags, header files and the token file, and SIGHUP's re-read keeping the old
 * value of a file that fails.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';
import { after, describe, it, mock } from 'node:test';
import { bearerDigest, bearerMatches } from '../../../lib/cli/bearer.js';
import { parseHeaderArgument } from '../../../lib/cli/headers.js';
import { Refusal } from '../../../lib/cli/refusal.js';
import { SecretFiles } from '../../../lib/cli/secret-files.js';
import { TempDir } from './support/daemon-harness.js';

const dir = new TempDir();
after(() => dir.remove());

describe('bearerMatches', () => {
  const digest = bearerDigest('correct-token');

  it('accepts the token and refuses anything else', () => {
    assert.ok(bearerMatches('Bearer correct-token', digest));
    assert.ok(bearerMatches('bearer  correct-token ', digest), 'scheme case-insensitive, spaces around');
    for (const header of [undefined, '', 'Bearer', 'Bearer ', 'Bearer correct-toke', 'Bearer correct-token2', 'Basic correct-token', 'correct-token', 'Bearer correct-token extra']) {
      assert.ok(!bearerMatches(header, digest), String(header));
    }
    assert.ok(!bearerMatches('Bearer correct-token', null), 'no token configured: nothing matches');
  });

  it('compares with crypto.timingSafeEqual over two 32-byte digests, whatever the presented length', () => {
    const calls: Array<[number, number]> = [];
    const original = crypto.timingSafeEqual;
    const spy = mock.method(crypto, 'timingSafeEqual', (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      calls.push([a.byteLength, b.byteLength]);
      return original(a, b);
    });
    syncBuiltinESMExports();
    try {
      for (const header of ['Bearer x', 'Bearer correct-token', `Bearer ${'y'.repeat(4000)}`, 'garbage']) bearerMatches(header, digest);
    } finally {
      spy.mock.restore();
      syncBuiltinESMExports();
    }
    assert.deepEqual(calls, [[32, 32], [32, 32], [32, 32], [32, 32]]);
  });
});

describe('SecretFiles', () => {
  it('builds resolver headers from flag values, header files and the token file, in that order', () => {
    const headers = dir.file('headers', '# rotated by ops\nX-Api-Key: key-1\n\nX-Region: from-file\n');
    const token = dir.file('resolver-token', 'tok-1\n');
    const secrets = SecretFiles.load({
      adminTokenFile: null, resolverTokenFile: token,
      resolverHeaders: [parseHeaderArgument('X-Region: from-flag', 'h'), parseHeaderArgument(`@${headers}`, 'h')],
    });
    assert.deepEqual(secrets.resolverHeaders(), { 'x-region': 'from-file', 'x-api-key': 'key-1', authorization: 'Bearer tok-1' });
  });

  it('re-reads every file on reload, and keeps the old value of one that fails', () => {
    const admin = dir.file('admin-token', 'admin-1');
    const token = dir.file('resolver-token-2', 'tok-1');
    const headers = dir.file('headers-2', 'X-Api-Key: key-1\n');
    const secrets = SecretFiles.load({ adminTokenFile: admin, resolverTokenFile: token, resolverHeaders: [{ kind: 'file', path: headers }] });
    assert.ok(bearerMatches('Bearer admin-1', secrets.adminTokenDigest()));

    dir.file('admin-token', 'admin-2');
    dir.file('resolver-token-2', 'tok-2');
    dir.file('headers-2', 'X-Api-Key: key-2\n');
    const result = secrets.reload();
    assert.deepEqual(result, { reloaded: [admin, token, headers], failed: [] });
    assert.ok(!bearerMatches('Bearer admin-1', secrets.adminTokenDigest()));
    assert.ok(bearerMatches('Bearer admin-2', secrets.adminTokenDigest()));
    assert.deepEqual(secrets.resolverHeaders(), { 'x-api-key': 'key-2', authorization: 'Bearer tok-2' });

    dir.file('admin-token', '');
    dir.file('headers-2', 'not a header line\n');
    const failed = secrets.reload();
    assert.deepEqual(failed.failed.map((f) => f.file), [admin, headers]);
    assert.match(failed.failed[1]!.reason, /line 1: expected 'Name: value'/);
    assert.ok(bearerMatches('Bearer admin-2', secrets.adminTokenDigest()), 'an empty token file keeps the previous token');
    assert.equal(secrets.resolverHeaders()['x-api-key'], 'key-2');
  });

  for (const [name, content, message] of [
    ['empty', '', /expected one token/],
    ['two words', 'two words', /expected one token/],
    ['a control character', 'tok\u0007en', /expected one token/],
  ] as const) {
    it(`refuses at start a token file that is ${name}`, () => {
      const path = dir.file(`bad-token-${name.replaceAll(' ', '-')}`, content);
      assert.throws(() => SecretFiles.load({ adminTokenFile: path, resolverTokenFile: null, resolverHeaders: [] }),
        (error: unknown) => error instanceof Refusal && error.message.startsWith(`--admin-token-file ${path}: `) && message.test(error.message) && (content === '' || !error.message.includes(content)));
    });
  }

  it('refuses at start a file that cannot be read, with its errno', () => {
    assert.throws(() => SecretFiles.load({ adminTokenFile: null, resolverTokenFile: dir.join('nope'), resolverHeaders: [] }),
      /--resolver-token-file .*nope: cannot read it \(ENOENT\)/);
    assert.throws(() => SecretFiles.load({ adminTokenFile: null, resolverTokenFile: null, resolverHeaders: [{ kind: 'file', path: dir.join('nope') }] }),
      /--resolver-header .*nope: cannot read it \(ENOENT\)/);
  });

  it('never puts a header file\'s value in a refusal', () => {
    const path = dir.file('bad-headers', 'X-Api-Key: sk_secret\u0001\n');
    assert.throws(() => SecretFiles.load({ adminTokenFile: null, resolverTokenFile: null, resolverHeaders: [{ kind: 'file', path }] }),
      (error: Error) => /line 1: the value of X-Api-Key contains a control character/.test(error.message) && !error.message.includes('sk_secret'));
  });
});
