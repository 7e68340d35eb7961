/**
 * httpResolver against a real node:http server written here (the control plane), no mocks of
 * fetch: the answers the contract allows, and a table of the ones it refuses.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { httpResolver, ResolverError } from '../../../lib/gateway/http-resolver.js';
import { keyToUrl } from '../../../lib/gateway/peer-config.js';
import { ValidationError } from '../../../lib/errors.js';
import { randomKey } from './support/fakes.js';

const TOKEN = 'Bearer sekrit-token-4242';
const PSK = randomKey();

let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
const seen: Array<{ url: string; headers: IncomingMessage['headers'] }> = [];
let server: Server;
let base: string;

before(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/peers/`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const json = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(typeof body === 'string' ? body : JSON.stringify(body));
};

describe('httpResolver', () => {
  it('asks GET {url}/{base64url key} with Accept and the configured headers, and returns the validated peer', async () => {
    const key = randomKey();
    handler = json(200, { publicKey: key, allowedIps: ['10.0.0.7/24'], presharedKey: PSK, persistentKeepalive: 25 });
    let calls = 0;
    const resolve = httpResolver({ url: base, headers: () => { calls++; return { authorization: TOKEN }; } });
    const peer = await resolve(key, new AbortController().signal);
    assert.deepEqual(peer, { publicKey: key, allowedIps: ['10.0.0.0/24'], presharedKey: PSK, persistentKeepalive: 25 });
    const request = seen.at(-1)!;
    assert.equal(request.url, `/v1/peers/${keyToUrl(key)}`);
    assert.equal(request.headers.accept, 'application/json');
    assert.equal(request.headers.authorization, TOKEN);
    await resolve(key, new AbortController().signal);
    assert.equal(calls, 2, 'the headers function is called per request');
  });

  it('404 and 410 mean unknown', async () => {
    for (const status of [404, 410]) {
      handler = json(status, {});
      assert.equal(await httpResolver({ url: base })(randomKey(), new AbortController().signal), null);
    }
  });

  const key = randomKey();
  const bad: Array<[string, (req: IncomingMessage, res: ServerResponse) => void, string]> = [
    ['500', json(500, { presharedKey: PSK }), 'status'],
    ['503', json(503, 'down'), 'status'],
    ['302 redirect', (_q, s) => s.writeHead(302, { location: 'http://127.0.0.1:1/' }).end(), 'redirect'],
    ['200 not JSON', json(200, `<html>${PSK}</html>`), 'invalid-json'],
    ['200 empty body', json(200, ''), 'invalid-json'],
    ['200 a JSON array', json(200, [key]), 'invalid-peer'],
    ['200 body over 64 KiB', json(200, { publicKey: key, allowedIps: [], pad: 'x'.repeat(70_000) }), 'body-too-large'],
    ['200 another key', json(200, { publicKey: randomKey(), allowedIps: [] }), 'wrong-key'],
    ['200 invalid allowedIps', json(200, { publicKey: key, allowedIps: ['10.0.0.300/32'], presharedKey: PSK }), 'invalid-peer'],
    ['200 unknown field', json(200, { publicKey: key, allowedIPs: [] }), 'invalid-peer'],
    ['200 presharedKey of the wrong length', json(200, { publicKey: key, allowedIps: [], presharedKey: PSK.slice(0, 40) }), 'invalid-peer'],
    ['slower than the timeout', (_q, s) => setTimeout(() => s.writeHead(200).end('{}'), 3000), 'timeout'],
    ['a body that never ends', (_q, s) => { s.writeHead(200); const t = setInterval(() => s.write('['.repeat(16_384)), 5); s.on('close', () => clearInterval(t)); }, 'body-too-large'],
    ['connection reset mid-body', (_q, s) => { s.writeHead(200, { 'content-length': '100' }); s.write('{"publicKey"'); setTimeout(() => s.socket?.destroy(), 10); }, 'network'],
  ];
  for (const [name, answer, reason] of bad) {
    it(`refuses ${name} as '${reason}', with no secret in the error`, async () => {
      handler = answer;
      // Generous except where the timeout is the point: a loaded CI machine must not turn a 503 into a timeout.
      const resolve = httpResolver({ url: base, timeoutMs: reason === 'timeout' ? 300 : 10_000, headers: { authorization: TOKEN } });
      const error = await resolve(key, new AbortController().signal).then(() => assert.fail('resolved'), (e: unknown) => e);
      assert.ok(error instanceof ResolverError, String(error));
      assert.equal(error.reason, reason);
      const text = `${error.message} ${error.stack} ${JSON.stringify(error)}`;
      assert.ok(!text.includes(PSK) && !text.includes(PSK.slice(0, 40)) && !text.includes('sekrit'), text);
    });
  }

  it('a closed port is a network failure; the caller\'s abort is aborted', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await assert.rejects(httpResolver({ url: `http://127.0.0.1:${port}/` })(key, new AbortController().signal), (e: unknown) => e instanceof ResolverError && e.reason === 'network');
    handler = (_q, s) => setTimeout(() => s.end('{}'), 300);
    const controller = new AbortController();
    const pending = httpResolver({ url: base, timeoutMs: 5000 })(key, controller.signal);
    setTimeout(() => controller.abort(), 20);
    await assert.rejects(pending, (e: unknown) => e instanceof ResolverError && e.reason === 'aborted');
  });

  it('timed-out lookups do not pile up connections: 5 waves of 20 leave at most 20 open', async () => {
    // A server of its own, so idle keep-alive connections of the other tests do not count.
    const slow = createServer((_q, s) => setTimeout(() => s.end('{}'), 400));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const resolve = httpResolver({ url: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`, timeoutMs: 30 });
    let accepted = 0;
    slow.on('connection', () => accepted++);
    for (let wave = 0; wave < 5; wave++) {
      await Promise.allSettled(Array.from({ length: 20 }, () => resolve(randomKey(), new AbortController().signal)));
      await new Promise((r) => setTimeout(r, 450)); // the server has answered: undici's pool holds them idle
    }
    const open = await new Promise<number>((r) => slow.getConnections((_e, n) => r(n)));
    slow.closeAllConnections();
    slow.close();
    // Open connections stay bounded by one wave's lookups in flight: none accumulate across waves.
    assert.ok(open <= 20, `${open} open (${accepted} accepted) after 100 timed-out lookups`);
  });

  it('refuses bad options with a ValidationError', () => {
    assert.throws(() => httpResolver({ url: 'ftp://x/' }), ValidationError);
    assert.throws(() => httpResolver({ url: 'not a url' }), ValidationError);
    assert.throws(() => httpResolver({ url: base, timeoutMs: 0 }), ValidationError);
  });
});
