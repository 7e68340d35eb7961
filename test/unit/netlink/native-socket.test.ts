/**
 * The addon's netlink socket against this host's kernel, with requests the kernel never
 * answers (see unanswered.ts): the reply timeout, the cancel path, close(), process exit,
 * Worker termination, and a small thread pool. NETLINK_ROUTE link dumps need no privilege
 * and no WireGuard, so this is unit tier.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WireGuard, WireGuardError } from '../../../lib/index.js';
import { NETLINK_ROUTE, RTM_NEWLINK } from '../../../lib/netlink/constants.js';
import { NetlinkConnection } from '../../../lib/netlink/connection.js';
import { NativeTransport } from '../../../lib/netlink/transport.js';
import type { ExchangeResult, NetlinkTransport } from '../../../lib/netlink/transport.js';
import { decodeLinks, encodeListLinks } from '../../../lib/rtnetlink/link.js';
import { messagesIn } from '../../../lib/netlink/message.js';
import { answeredRequest, unansweredRequest } from './unanswered.js';

interface NativeFailure {
  errno?: number;
  syscall?: string;
  completed?: number;
}

const ETIMEDOUT = 110;
const ECANCELED = 125;
const EBADF = 9;
const EBUSY = 16;

/** Runs a scenario of unanswered.ts in a child process; resolves with its exit and output. */
function child(scenario: string, env: Record<string, string> = {}, limitMs = 20_000) {
  const script = fileURLToPath(new URL('./unanswered.ts', import.meta.url));
  const start = performance.now();
  return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string; ms: number }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', script, scenario], { env: { ...process.env, ...env }, timeout: limitMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number; signal?: string }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr, ms: performance.now() - start });
    });
  });
}

/** A transport whose first exchange is made unanswerable (its messages lose NLM_F_REQUEST). */
class LosesFirstAnswer implements NetlinkTransport {
  closed = false;
  constructor(private readonly inner: NativeTransport, private first = true) {}
  exchange(messages: Buffer[]): Promise<ExchangeResult> {
    if (this.first) {
      this.first = false;
      for (const message of messages) message.writeUInt16LE(message.readUInt16LE(6) & ~1, 6);
    }
    return this.inner.exchange(messages);
  }
  cancel(): void {
    this.inner.cancel();
  }
  close(): void {
    this.closed = true;
    this.inner.close();
  }
}

describe('native netlink socket: a request the kernel never answers', () => {
  it('the wait times out with ETIMEDOUT after replyTimeoutMs, and the socket still works', async () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 300);
    try {
      const start = performance.now();
      await assert.rejects(transport.exchange([unansweredRequest()]), (e: NativeFailure) => {
        assert.equal(e.errno, ETIMEDOUT);
        assert.equal(e.syscall, 'poll');
        assert.equal(e.completed, 0);
        return true;
      });
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= 290 && elapsed < 3000, `timed out after ${elapsed.toFixed(0)} ms`);
      const { completed, replies } = await transport.exchange([answeredRequest()]);
      assert.equal(completed, 1);
      assert.ok(replies.length >= 1);
    } finally {
      transport.close();
    }
  });

  it('cancel() ends a wait at once with ECANCELED, and later answered requests still complete', async () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 60_000);
    try {
      const start = performance.now();
      const pending = transport.exchange([unansweredRequest()]);
      setTimeout(() => transport.cancel(), 100);
      await assert.rejects(pending, (e: NativeFailure) => e.errno === ECANCELED && e.syscall === 'poll');
      assert.ok(performance.now() - start < 5000);
      // The cancel stays in force, but an answer that has come is read: nothing is cut off.
      const { completed } = await transport.exchange([answeredRequest(), answeredRequest()]);
      assert.equal(completed, 2);
    } finally {
      transport.close();
    }
  });

  it('close() during a wait ends it with ECANCELED; the socket then refuses exchanges (EBADF)', async () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 60_000);
    const start = performance.now();
    const pending = transport.exchange([unansweredRequest(), answeredRequest()]);
    setTimeout(() => transport.close(), 100);
    await assert.rejects(pending, (e: NativeFailure) => e.errno === ECANCELED && e.completed === 0);
    assert.ok(performance.now() - start < 5000);
    assert.throws(() => transport.exchange([answeredRequest()]), (e: NativeFailure) => e.errno === EBADF);
  });

  it('exchanges on one socket run one after another, in call order', async () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 400);
    try {
      const order: string[] = [];
      const first = transport.exchange([unansweredRequest()]).catch(() => order.push('unanswered'));
      const second = transport.exchange([answeredRequest()]).then(() => order.push('answered'));
      await Promise.all([first, second]);
      assert.deepEqual(order, ['unanswered', 'answered']);
    } finally {
      transport.close();
    }
  });

  it('process.exit() is not held up by a wait (60 s timeout)', async () => {
    const run = await child('exit');
    assert.equal(run.signal, null, `killed after ${run.ms.toFixed(0)} ms: exit hung (${run.stderr})`);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.ms < 10_000, `exit took ${run.ms.toFixed(0)} ms`);
  });

  it('a Worker terminated during a wait ends when the wait times out, without aborting the process', async () => {
    const run = await child('worker');
    assert.equal(run.signal, null, `killed: termination hung (${run.stderr})`);
    assert.equal(run.code, 0, run.stderr);
    const { terminateMs } = JSON.parse(run.stdout) as { terminateMs: number };
    assert.ok(terminateMs < 5000, `terminate took ${terminateMs.toFixed(0)} ms with a 1 s reply timeout`);
  });

  it('with UV_THREADPOOL_SIZE=2, four exchanges (one unanswered) all settle and a file read is not starved', async () => {
    const run = await child('pool', { UV_THREADPOOL_SIZE: '2' });
    assert.equal(run.signal, null, `killed: the thread pool starved (${run.stderr})`);
    assert.equal(run.code, 0, run.stderr);
    const { readMs, settled } = JSON.parse(run.stdout) as { readMs: number; settled: Array<{ ok: boolean; errno?: number; completed?: number }> };
    assert.ok(readMs < 1000, `a file read waited ${readMs.toFixed(0)} ms for the pool`);
    assert.deepEqual(settled.map((s) => (s.ok ? `ok ${s.completed}` : `errno ${s.errno}`)), [`errno ${ETIMEDOUT}`, 'ok 1', 'ok 1', 'ok 1']);
  });
});

describe('WireGuard and its connections over the native socket when an answer is lost', () => {
  it('a timed-out exchange is a WireGuardError ETIMEDOUT, and the next call gets a new socket', async () => {
    const opened: LosesFirstAnswer[] = [];
    const connection = new NetlinkConnection(() => {
      const transport = new LosesFirstAnswer(new NativeTransport(NETLINK_ROUTE, '', 300), opened.length === 0);
      opened.push(transport);
      return transport;
    }, NETLINK_ROUTE);
    await assert.rejects(connection.request([encodeListLinks()], { operation: 'listDevices' }), (e: unknown) => {
      assert.ok(e instanceof WireGuardError);
      assert.equal(e.code, 'ETIMEDOUT');
      assert.equal(e.errno, ETIMEDOUT);
      assert.equal(e.syscall, 'poll');
      assert.match(e.message, /listDevices: no answer from the kernel within the reply timeout/);
      return true;
    });
    assert.equal(opened.length, 1);
    assert.equal(opened[0]!.closed, true, 'the socket that timed out is closed');
    const { messages } = await connection.request([encodeListLinks()], { operation: 'listDevices' });
    assert.ok(messages.length >= 1, 'the new socket answers (lo at least)');
    assert.equal(opened.length, 2, 'a new socket was opened');
    await connection.close();
  });

  it('close() cancels a lost answer at once (ECANCELED) and resolves once the socket is closed', async () => {
    const transport = new LosesFirstAnswer(new NativeTransport(NETLINK_ROUTE, '', 60_000));
    const wg = new WireGuard({ transports: { route: transport } });
    const start = performance.now();
    const listing = wg.listDevices();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = wg.close();
    assert.ok(closing instanceof Promise);
    await assert.rejects(listing, (e: unknown) => e instanceof WireGuardError && e.code === 'ECANCELED' && /cancelled: the instance is closing/.test(e.message));
    await closing;
    assert.equal(transport.closed, true);
    assert.ok(performance.now() - start < 5000, `close took ${(performance.now() - start).toFixed(0)} ms`);
    assert.equal(wg.close(), closing, 'close() again returns the same Promise');
  });

  it('replyTimeoutMs is validated', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 3_600_001, '10']) {
      assert.throws(() => new WireGuard({ replyTimeoutMs: bad as number }), (e: unknown) => e instanceof Error && e.name === 'ValidationError' && /options.replyTimeoutMs/.test(e.message), String(bad));
    }
    assert.doesNotThrow(() => new WireGuard({ replyTimeoutMs: 1 }));
  });
});

describe('native netlink socket: exchangeNow, on the calling thread', () => {
  it('returns the same answer as exchange, synchronously', async () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 5_000);
    try {
      const now = transport.exchangeNow([answeredRequest(), answeredRequest()]);
      assert.equal(now.completed, 2);
      const pooled = await transport.exchange([answeredRequest(), answeredRequest()]);
      // Datagrams may be packed differently; the links they describe are the same.
      const names = (replies: Buffer[]) => decodeLinks(replies.flatMap((r) => [...messagesIn(r)]).filter((m) => m.type === RTM_NEWLINK)).map((l) => l.name).sort();
      assert.ok(names(now.replies).includes('lo'));
      assert.deepEqual(names(now.replies), names(pooled.replies));
    } finally {
      transport.close();
    }
  });

  it('an answer that does not come fails within its short bound (ETIMEDOUT), not the reply timeout', () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 60_000);
    try {
      const start = performance.now();
      assert.throws(() => transport.exchangeNow([unansweredRequest()]), (e: NativeFailure) => e.errno === ETIMEDOUT && e.syscall === 'poll' && e.completed === 0);
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= 90 && elapsed < 2_000, `gave up after ${elapsed.toFixed(0)} ms`);
    } finally {
      transport.close();
    }
  });

  it('is refused (EBUSY) while an exchange is on the pool, and after close (EBADF)', async () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 300);
    const pending = transport.exchange([unansweredRequest()]).catch((e: NativeFailure) => e.errno);
    assert.throws(() => transport.exchangeNow([answeredRequest()]), (e: NativeFailure) => e.errno === EBUSY);
    assert.equal(await pending, ETIMEDOUT);
    assert.equal(transport.exchangeNow([answeredRequest()]).completed, 1);
    transport.close();
    assert.throws(() => transport.exchangeNow([answeredRequest()]), (e: NativeFailure) => e.errno === EBADF);
  });

  it('a connection uses it only for requests marked small', async () => {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 5_000);
    const calls: string[] = [];
    const counting: NetlinkTransport = {
      exchange: (m) => { calls.push('pool'); return transport.exchange(m); },
      exchangeNow: (m) => { calls.push('now'); return transport.exchangeNow(m); },
      close: () => transport.close(),
    };
    const connection = new NetlinkConnection(() => counting, NETLINK_ROUTE);
    try {
      await connection.request([answeredRequest()], { operation: 'listDevices' });
      await connection.request([answeredRequest()], { operation: 'listDevices', small: true });
      assert.deepEqual(calls, ['pool', 'now']);
    } finally {
      await connection.close();
    }
  });
});
