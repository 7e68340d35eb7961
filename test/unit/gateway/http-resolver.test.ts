/**
 * httpResolver against real node:http servers written here (the control plane), no mocks of
 * fetch: the answers the contract allows, a table of the ones it refuses (each checked for the
 * reason and for secrets in the error), the body limit against a server that never stops, and
 * connections after timeouts.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ValidationError } from '../../../lib/errors.js';
import { httpResolver, ResolverError, type ResolverErrorReason } from '../../../lib/gateway/http-resolver.js';
import { keyToUrl } from '../../../lib/gateway/peer-config.js';
import { randomKey } from './support/fakes.js';

/** Recognisable secrets: neither may appear anywhere in an error. */
const PSK = Buffer.from('PSK-secret-preshared-key-32bytes').toString('base64');
const TOKEN_SECRET = 'tok-SECRET-7f3a9c';
const TOKEN = `Bearer ${TOKEN_SECRET}`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface ControlPlane {
  /** Base URL with a trailing slash (the resolver must not make it `//`). */
  url: string;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers'] }>;
  opened: number;
  closed: number;
  /** Connections still open that carried a request (not the idle spares undici keeps). */
  carryingOpen: number;
  open(): Promise<number>;
}

/** A control plane on 127.0.0.1 for one test, closed (every connection cut) when the test ends. */
async function controlPlane(t: TestContext, handler: Handler): Promise<ControlPlane> {
  const sockets = new Set<Socket>();
  const carrying = new WeakSet<Socket>();
  const server = createServer((req, res) => {
    plane.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (!carrying.has(req.socket)) {
      carrying.add(req.socket);
      plane.carryingOpen++;
      req.socket.on('close', () => plane.carryingOpen--);
    }
    handler(req, res);
  });
  server.on('connection', (socket) => {
    plane.opened++;
    sockets.add(socket);
    socket.on('close', () => { plane.closed++; sockets.delete(socket); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const plane: ControlPlane = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/wireguard/peers/`,
    requests: [],
    opened: 0,
    closed: 0,
    carryingOpen: 0,
    open: () => new Promise((resolve, reject) => server.getConnections((e, n) => (e ? reject(e) : resolve(n)))),
  };
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return plane;
}

/** A port nothing listens on (bound once, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Handler => (_req, res) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(typeof body === 'string' ? body : JSON.stringify(body));
};

const never = new AbortController().signal;

async function failure(promise: Promise<unknown>): Promise<ResolverError> {
  const error = await promise.then(() => assert.fail('resolved'), (e: unknown) => e);
  assert.ok(error instanceof ResolverError, `expected a ResolverError, got ${String(error)}`);
  return error;
}

function assertNoSecret(error: ResolverError): void {
  const cause = error.cause as Error | undefined;
  const text = [error.message, error.stack, JSON.stringify(error), cause?.message, cause?.stack].join('\n');
  for (const secret of [PSK, PSK.slice(0, 40), 'PSK-secret', TOKEN_SECRET]) {
    assert.ok(!text.includes(secret), `error text contains a secret: ${text}`);
  }
}

/** A key whose base64 holds '+' and '/', so the URL form visibly differs. */
function keyWithUrlUnsafeChars(): string {
  const bytes = Buffer.from(randomKey(), 'base64');
  bytes.set([0xfb, 0xff, 0xbf], 0);
  return bytes.toString('base64');
}

describe('httpResolver: answers it accepts', () => {
  it('asks GET {url}/{base64url key} with Accept and the configured header, and returns the canonical peer', async (t) => {
    const key = keyWithUrlUnsafeChars();
    const plane = await controlPlane(t, json(200, { publicKey: key, allowedIps: ['10.0.0.7/24', 'fd00::7/128'], presharedKey: PSK, persistentKeepalive: 25 }));
    const resolve = httpResolver({ url: plane.url, headers: { authorization: TOKEN } });
    const peer = await resolve(key, never);
    assert.deepEqual(peer, { publicKey: key, allowedIps: ['10.0.0.0/24', 'fd00::7/128'], presharedKey: PSK, persistentKeepalive: 25 });
    const [request] = plane.requests;
    assert.equal(request?.method, 'GET');
    assert.match(keyToUrl(key), /^[A-Za-z0-9_-]{43}$/);
    assert.ok(keyToUrl(key).startsWith('-_-_'), keyToUrl(key));
    assert.equal(request?.url, `/v1/wireguard/peers/${keyToUrl(key)}`);
    assert.equal(request?.headers.accept, 'application/json');
    assert.equal(request?.headers.authorization, TOKEN);
  });

  it('fills absent optional fields and accepts any content type when the body is JSON', async (t) => {
    const key = randomKey();
    const plane = await controlPlane(t, json(200, { publicKey: key, allowedIps: ['10.0.0.7/32'] }, { 'content-type': 'text/plain' }));
    assert.deepEqual(await httpResolver({ url: plane.url })(key, never), { publicKey: key, allowedIps: ['10.0.0.7/32'], presharedKey: null, persistentKeepalive: 0 });
  });

  it('asks the same path with and without a trailing slash on url', async (t) => {
    const key = randomKey();
    const plane = await controlPlane(t, json(404, {}));
    const withoutSlash = plane.url.replace(/\/$/, '');
    await httpResolver({ url: plane.url })(key, never);
    await httpResolver({ url: `${withoutSlash}///` })(key, never);
    await httpResolver({ url: withoutSlash })(key, never);
    assert.deepEqual(plane.requests.map((r) => r.url), Array(3).fill(`/v1/wireguard/peers/${keyToUrl(key)}`));
  });

  it('404 and 410 mean unknown (null)', async (t) => {
    for (const status of [404, 410]) {
      const plane = await controlPlane(t, json(status, { error: 'no such peer' }));
      assert.equal(await httpResolver({ url: plane.url })(randomKey(), never), null, `HTTP ${status}`);
    }
  });

  it('calls the headers function once per request, so a new token applies at once', async (t) => {
    const key = randomKey();
    const plane = await controlPlane(t, json(404, {}));
    let calls = 0;
    const resolve = httpResolver({ url: plane.url, headers: () => ({ authorization: `Bearer token-${++calls}` }) });
    await resolve(key, never);
    await resolve(key, never);
    assert.equal(calls, 2);
    assert.deepEqual(plane.requests.map((r) => r.headers.authorization), ['Bearer token-1', 'Bearer token-2']);
  });

  it('always sends Accept: application/json, whatever the configured headers say', async (t) => {
    const plane = await controlPlane(t, json(404, {}));
    await httpResolver({ url: plane.url, headers: { Accept: 'text/html' } })(randomKey(), never);
    assert.equal(plane.requests[0]?.headers.accept, 'application/json');
  });

  it('reads a body of exactly maxBodyBytes', async (t) => {
    const key = randomKey();
    const body = JSON.stringify({ publicKey: key, allowedIps: ['10.0.0.7/32'] });
    const plane = await controlPlane(t, json(200, body));
    assert.ok(await httpResolver({ url: plane.url, maxBodyBytes: body.length })(key, never));
    await assert.rejects(httpResolver({ url: plane.url, maxBodyBytes: body.length - 1 })(key, never), (e: unknown) => e instanceof ResolverError && e.reason === 'body-too-large');
  });

  it('reuses keep-alive connections for consecutive lookups', async (t) => {
    const plane = await controlPlane(t, json(404, {}));
    const resolve = httpResolver({ url: plane.url });
    for (let i = 0; i < 10; i++) assert.equal(await resolve(randomKey(), never), null);
    // undici opens a second connection for the second request (the first is not back in its
    // pool yet), then reuses them: the figure to pin is "not one per lookup".
    assert.ok(plane.opened <= 2, `${plane.opened} connections for 10 lookups`);
  });
});

interface BadAnswer {
  name: string;
  reason: ResolverErrorReason;
  status?: number;
  /** The server's behaviour, or 'closed-port' for no server at all. */
  answer: Handler | 'closed-port';
  timeoutMs?: number;
}

describe('httpResolver: answers it refuses', () => {
  const key = randomKey();
  const valid = { publicKey: key, allowedIps: ['10.0.0.7/32'], presharedKey: PSK };
  const bad: BadAnswer[] = [
    { name: '500 (with a secret in the body)', reason: 'status', status: 500, answer: json(500, { error: 'boom', presharedKey: PSK }) },
    { name: '503', reason: 'status', status: 503, answer: json(503, 'down for maintenance') },
    { name: '401', reason: 'status', status: 401, answer: json(401, { error: 'bad token' }) },
    { name: '204', reason: 'status', status: 204, answer: (_q, s) => s.writeHead(204).end() },
    { name: '302 redirect to a valid answer', reason: 'redirect', status: 302, answer: (q, s) => (q.url?.startsWith('/moved') ? json(200, valid)(q, s) : s.writeHead(302, { location: `/moved${q.url}` }).end()) },
    { name: '307 redirect', reason: 'redirect', status: 307, answer: (_q, s) => s.writeHead(307, { location: 'http://127.0.0.1:9/' }).end() },
    { name: '200 not JSON (an HTML page quoting a secret)', reason: 'invalid-json', status: 200, answer: json(200, `<html>${PSK} ${TOKEN_SECRET}</html>`, { 'content-type': 'text/html' }) },
    { name: '200 truncated JSON holding a secret', reason: 'invalid-json', status: 200, answer: json(200, `{"publicKey":"${key}","presharedKey":"${PSK}`) },
    { name: '200 not UTF-8', reason: 'invalid-json', status: 200, answer: (_q, s) => s.writeHead(200).end(Buffer.from([0x22, 0xff, 0xfe, 0x22])) },
    { name: '200 empty body', reason: 'invalid-json', status: 200, answer: json(200, '') },
    { name: '200 a JSON array', reason: 'invalid-peer', status: 200, answer: json(200, [valid]) },
    { name: '200 JSON null', reason: 'invalid-peer', status: 200, answer: json(200, 'null') },
    { name: '200 declaring a body over 64 KiB', reason: 'body-too-large', status: 200, answer: json(200, { ...valid, pad: 'x'.repeat(70_000) }) },
    { name: '200 chunked body over 64 KiB', reason: 'body-too-large', status: 200, answer: (_q, s) => { s.writeHead(200); for (let i = 0; i < 5; i++) s.write(`${PSK}`.repeat(400)); s.end(); } },
    { name: '200 another key', reason: 'wrong-key', status: 200, answer: json(200, { ...valid, publicKey: randomKey() }) },
    { name: '200 invalid allowedIps', reason: 'invalid-peer', status: 200, answer: json(200, { ...valid, allowedIps: ['10.0.0.7/32', '10.0.0.300/32'] }) },
    { name: '200 unknown field', reason: 'invalid-peer', status: 200, answer: json(200, { publicKey: key, allowedIPs: ['10.0.0.7/32'], presharedKey: PSK }) },
    { name: '200 presharedKey of the wrong length', reason: 'invalid-peer', status: 200, answer: json(200, { ...valid, presharedKey: PSK.slice(0, 40) }) },
    { name: 'no answer within the timeout', reason: 'timeout', answer: (_q, s) => { const timer = setTimeout(() => json(200, valid)(_q, s), 1000); s.on('close', () => clearTimeout(timer)); }, timeoutMs: 100 },
    { name: 'headers in time, the body not', reason: 'timeout', answer: (_q, s) => { s.writeHead(200); s.write('{"publicKey":'); const timer = setTimeout(() => s.end(`"${key}"}`), 1000); s.on('close', () => clearTimeout(timer)); }, timeoutMs: 100 },
    { name: 'connection refused (a closed port)', reason: 'network', answer: 'closed-port' },
    { name: 'connection reset mid-body', reason: 'network', answer: (_q, s) => { s.writeHead(200, { 'content-length': '200' }); s.write(`{"presharedKey":"${PSK}",`); setTimeout(() => s.socket?.destroy(), 10); } },
  ];

  for (const { name, reason, status, answer, timeoutMs } of bad) {
    it(`${name} → '${reason}', with no secret in the error`, async (t) => {
      const url = answer === 'closed-port' ? `http://127.0.0.1:${await closedPort()}/v1/` : (await controlPlane(t, answer)).url;
      const resolve = httpResolver({ url, headers: { authorization: TOKEN }, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
      const error = await failure(resolve(key, never));
      assert.equal(error.reason, reason, error.message);
      assert.equal(error.code, 'ERR_JITGUARD_RESOLVER');
      assert.equal(error.status, status);
      assertNoSecret(error);
    });
  }

  it('never follows a redirect: the target is not asked', async (t) => {
    const target = await controlPlane(t, json(200, valid));
    const plane = await controlPlane(t, (_q, s) => s.writeHead(302, { location: `${target.url}${keyToUrl(key)}` }).end());
    assert.equal((await failure(httpResolver({ url: plane.url })(key, never))).reason, 'redirect');
    assert.equal(target.requests.length, 0);
  });

  it("keeps the validator's path for an invalid field", async (t) => {
    const plane = await controlPlane(t, json(200, { ...valid, allowedIps: ['10.0.0.7/32', '10.0.0.8/32', 'nope'] }));
    const error = await failure(httpResolver({ url: plane.url })(key, never));
    assert.equal(error.path, 'resolved.allowedIps[2]');
    assert.match(error.message, /resolved\.allowedIps\[2\]/);
  });

  it('a network failure names the socket error and keeps it as cause', async () => {
    const error = await failure(httpResolver({ url: `http://127.0.0.1:${await closedPort()}/` })(key, never));
    assert.match(error.message, /ECONNREFUSED/);
    assert.equal((error.cause as { code?: string }).code, 'ECONNREFUSED');
  });

  it('stops reading a body that never ends and closes its connection', async (t) => {
    let written = 0;
    let finished = false;
    const plane = await controlPlane(t, (_q, s) => {
      s.writeHead(200, { 'content-type': 'application/json' });
      const chunk = `[${'"x",'.repeat(4095)}`;
      const pump = () => { while (!s.destroyed && s.write(chunk)) written += chunk.length; };
      s.on('drain', pump);
      s.on('close', () => { finished = true; });
      pump();
    });
    const error = await failure(httpResolver({ url: plane.url, timeoutMs: 5000 })(key, never));
    assert.equal(error.reason, 'body-too-large');
    for (let i = 0; i < 100 && !finished; i++) await sleep(10);
    assert.ok(finished, 'the server is still streaming to the resolver');
    assert.equal(plane.carryingOpen, 0);
    // What the server got out before the cut is the limit plus socket buffers, not unbounded.
    assert.ok(written < 16 * 1024 * 1024, `${written} bytes written`);
  });

  it('refuses a key that is not a public key with a ValidationError, asking nothing', async (t) => {
    const plane = await controlPlane(t, json(404, {}));
    await assert.rejects(httpResolver({ url: plane.url })('not-a-key', never), ValidationError);
    assert.equal(plane.requests.length, 0);
  });
});

describe('httpResolver: cancellation and connections', () => {
  it("the caller's abort during the exchange → 'aborted'", async (t) => {
    const plane = await controlPlane(t, () => {});
    const controller = new AbortController();
    const pending = httpResolver({ url: plane.url, timeoutMs: 5000 })(randomKey(), controller.signal);
    setTimeout(() => controller.abort(), 30);
    const error = await failure(pending);
    assert.equal(error.reason, 'aborted');
    assertNoSecret(error);
  });

  it("an already aborted signal → 'aborted' without a request", async (t) => {
    const plane = await controlPlane(t, json(404, {}));
    const controller = new AbortController();
    controller.abort();
    assert.equal((await failure(httpResolver({ url: plane.url })(randomKey(), controller.signal))).reason, 'aborted');
    assert.equal(plane.requests.length, 0);
  });

  it('timed-out lookups do not pile up connections: 8 waves of 20 against a server that never answers', async (t) => {
    const plane = await controlPlane(t, () => {});
    // Long enough for requests to reach the server on a loaded machine: the test is about
    // connections that carried a request.
    const resolve = httpResolver({ url: plane.url, timeoutMs: 200 });
    const openAfterWave: number[] = [];
    for (let wave = 0; wave < 8; wave++) {
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => resolve(randomKey(), new AbortController().signal)));
      assert.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof ResolverError && r.reason.reason === 'timeout'));
      for (let i = 0; i < 50 && plane.carryingOpen > 0; i++) await sleep(10);
      assert.equal(plane.carryingOpen, 0, `wave ${wave}: ${plane.carryingOpen} connections still hold a timed-out request`);
      openAfterWave.push(await plane.open());
    }
    assert.ok(plane.requests.length >= 80, `${plane.requests.length} requests reached the server`);
    // undici replaces a destroyed connection by a fresh idle one (nodejs/undici#5845) that later
    // lookups reuse: what stays open is bounded by the lookups in flight, not by how many timed out.
    assert.ok(Math.max(...openAfterWave) <= 40, `open after each wave: ${openAfterWave.join(' ')}`);
  });

  it('the timeout covers the body: a body trickling a byte at a time is cut at timeoutMs', async (t) => {
    const plane = await controlPlane(t, (_q, s) => {
      s.writeHead(200);
      const timer = setInterval(() => s.write(' '), 10);
      s.on('close', () => clearInterval(timer));
    });
    const started = performance.now();
    assert.equal((await failure(httpResolver({ url: plane.url, timeoutMs: 150 })(randomKey(), never))).reason, 'timeout');
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 140 && elapsed < 3000, `${elapsed} ms`);
  });
});

describe('httpResolver: headers and options', () => {
  it("a headers function that throws → 'headers', its message kept out", async (t) => {
    const plane = await controlPlane(t, json(404, {}));
    const resolve = httpResolver({ url: plane.url, headers: () => { throw new Error(`cannot read token ${TOKEN_SECRET}`); } });
    const error = await failure(resolve(randomKey(), never));
    assert.equal(error.reason, 'headers');
    assertNoSecret(error);
    assert.equal(plane.requests.length, 0);
  });

  it("a headers function returning a value fetch would refuse → 'headers', the value not quoted", async (t) => {
    const plane = await controlPlane(t, json(404, {}));
    const resolve = httpResolver({ url: plane.url, headers: () => ({ authorization: `${TOKEN}\r\nx-injected: 1` }) });
    const error = await failure(resolve(randomKey(), never));
    assert.equal(error.reason, 'headers');
    assert.match(error.message, /authorization/);
    assertNoSecret(error);
    assert.equal(plane.requests.length, 0);
  });

  it('refuses bad options with a ValidationError naming the option', () => {
    const refused: Array<[unknown, string]> = [
      [null, 'options'],
      [{ url: 'ftp://example.com/' }, 'options.url'],
      [{ url: 'not a url' }, 'options.url'],
      [{ url: 42 }, 'options.url'],
      [{ url: 'http://user:pass@example.com/' }, 'options.url'],
      [{ url: 'http://example.com/peers?x=1' }, 'options.url'],
      [{ url: 'http://example.com/', timeoutMs: 0 }, 'options.timeoutMs'],
      [{ url: 'http://example.com/', timeoutMs: 1.5 }, 'options.timeoutMs'],
      [{ url: 'http://example.com/', timeoutMs: '2000' }, 'options.timeoutMs'],
      [{ url: 'http://example.com/', maxBodyBytes: 0 }, 'options.maxBodyBytes'],
      [{ url: 'http://example.com/', timeout: 2000 }, 'options.timeout'],
      [{ url: 'http://example.com/', headers: 'authorization: x' }, 'options.headers'],
      [{ url: 'http://example.com/', headers: { 'bad name': 'x' } }, 'options.headers["bad name"]'],
      [{ url: 'http://example.com/', headers: { authorization: `${TOKEN}\n` } }, 'options.headers["authorization"]'],
      [{ url: 'http://example.com/', headers: { authorization: 'a', Authorization: 'b' } }, 'options.headers["Authorization"]'],
    ];
    for (const [options, path] of refused) {
      assert.throws(() => httpResolver(options as never), (e: unknown) => e instanceof ValidationError && e.path === path && !e.message.includes(TOKEN_SECRET), `${JSON.stringify(options)}`);
    }
  });

  it('accepts a URL object and https:', () => {
    assert.equal(typeof httpResolver({ url: new URL('https://control-plane.internal/v1/peers') }), 'function');
  });
});
