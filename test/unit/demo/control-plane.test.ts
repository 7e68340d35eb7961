/**
 * The demo's control plane (demo/control-plane.ts) against the resolver contract, from both
 * sides: raw HTTP for the statuses, and jitguard's own `httpResolver` as the client a gateway
 * uses, so a drift between the demo's server and the contract fails here, not in the VM.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane, toBase64Url, type PeersFile } from '../../../demo/control-plane.js';
import { httpResolver } from '../../../lib/gateway/http-resolver.js';

const publicKey = () => {
  const der = createPublicKey(generateKeyPairSync('x25519').privateKey).export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32).toString('base64');
};

describe('the demo control plane', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jg-demo-cp-'));
  const file = join(dir, 'peers.json');
  const alice = publicKey();
  const bob = publicKey();
  const write = (peers: PeersFile) => writeFileSync(file, JSON.stringify(peers));
  let plane: ControlPlane;
  const seen: Array<string | null> = [];

  before(async () => {
    write({ peers: [{ name: 'alice', publicKey: alice, allowedIps: ['10.7.0.11/32'], persistentKeepalive: 25 }] });
    plane = await ControlPlane.start({ peersFile: file, host: '127.0.0.1', port: 0, basePath: '/v1/wireguard/peers', bearerToken: 'secret', onRequest: (r) => seen.push(r.publicKey) });
  });
  after(async () => {
    await plane.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a listed key with the contract\'s fields only (the file\'s name is not sent), an unlisted one with 404', async () => {
    const auth = { authorization: 'Bearer secret' };
    const found = await fetch(`${plane.url}/${toBase64Url(alice)}`, { headers: auth });
    assert.equal(found.status, 200);
    assert.deepEqual(await found.json(), { publicKey: alice, allowedIps: ['10.7.0.11/32'], persistentKeepalive: 25 });
    assert.equal((await fetch(`${plane.url}/${toBase64Url(bob)}`, { headers: auth })).status, 404);
    assert.equal(plane.requestsFor(alice), 1);
    assert.equal(plane.requestsFor(bob), 1);
  });

  it('refuses a missing or wrong token (401) and a path without a key (400), and counts them', async () => {
    const before = plane.requests.length;
    assert.equal((await fetch(`${plane.url}/${toBase64Url(alice)}`)).status, 401);
    assert.equal((await fetch(`${plane.url}/${toBase64Url(alice)}`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${plane.url}/not-a-key`, { headers: { authorization: 'Bearer secret' } })).status, 400);
    assert.deepEqual(plane.requests.slice(before).map((r) => r.status), [401, 401, 400]);
    assert.equal(seen.at(-1), null, 'a request without a key is recorded with none');
  });

  it('is what httpResolver expects: found, unknown, and the file re-read on the next request', async () => {
    const resolve = httpResolver({ url: plane.url, headers: { authorization: 'Bearer secret' } });
    const signal = new AbortController().signal;
    const found = await resolve(alice, signal);
    assert.deepEqual([found?.publicKey, found?.allowedIps, found?.persistentKeepalive], [alice, ['10.7.0.11/32'], 25]);
    assert.equal(await resolve(bob, signal), null);
    write({ peers: [{ name: 'bob', publicKey: bob, allowedIps: ['10.7.0.12/32', 'fd00::12/128'] }] });
    const added = await resolve(bob, signal);
    assert.deepEqual([added?.publicKey, added?.allowedIps], [bob, ['10.7.0.12/32', 'fd00::12/128']]);
    assert.equal(await resolve(alice, signal), null, 'removed from the file, unknown at once');
  });
});
