import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import {
  CaptureError, HandshakeCapture, ValidationErrorLike, bpfProgram, handshakeFilter, isCaptureNotFound,
  type HandshakeInitiation,
} from './helpers.js';
import { fromNative } from '../../../lib/capture/errors.js';
import { recorded } from '../../vectors/frames/frames.js';

const initiation = (n = 0) => {
  const p = recorded('01').slice(28);
  p[4] = n; // sender index: tells injected packets apart
  return p;
};
const source = { address: '192.0.2.7', port: 40000 };

describe('HandshakeCapture.detached() and inject()', () => {
  it('delivers an injected initiation as an event with its fields', () => {
    const capture = HandshakeCapture.detached();
    const seen: HandshakeInitiation[] = [];
    capture.on('initiation', (i) => seen.push(i));
    const before = Date.now();
    const packet = initiation(9);
    assert.equal(capture.inject(packet, { address: '2001:DB8:0:0::7', port: 1 }, { address: '198.51.100.1', port: 443 }), true);
    assert.equal(seen.length, 1);
    const i = seen[0]!;
    assert.deepEqual([...i.packet], [...packet]);
    assert.notEqual(i.packet.buffer, packet.buffer, 'the event owns a copy');
    assert.deepEqual(i.source, { address: '2001:db8::7', port: 1, family: 6 });
    assert.deepEqual(i.destination, { address: '198.51.100.1', port: 443, family: 4 });
    assert.equal(i.ifindex, 0);
    assert.equal(i.injected, true);
    assert.ok(i.receivedAt.getTime() >= before && i.receivedAt.getTime() <= Date.now());
    assert.equal(i.timestamp / 1_000_000n, BigInt(i.receivedAt.getTime()));
    assert.deepEqual(capture.stats(), {
      delivered: 1, injected: 1, rejected: 0, queueDrops: 0, duplicates: 0, wakeups: 0, kernelPackets: 0, kernelDrops: 0,
    });
    capture.inject(packet, source);
    assert.equal(seen[1]!.destination, null);
    capture.close();
  });

  it('rejects (and counts) payloads that are not initiations', () => {
    const capture = HandshakeCapture.detached();
    let events = 0;
    capture.on('initiation', () => events++);
    const good = initiation();
    const bad = [good.subarray(0, 147), Uint8Array.from([...good, 0]), new Uint8Array(0)];
    for (const type of [2, 3, 4]) {
      const p = Uint8Array.from(good);
      p[0] = type;
      bad.push(p);
    }
    const reserved = Uint8Array.from(good);
    reserved[3] = 1;
    bad.push(reserved);
    for (const p of bad) assert.equal(capture.inject(p, source), false);
    assert.equal(events, 0);
    assert.equal(capture.stats().rejected, bad.length);
    assert.equal(capture.stats().delivered, 0);
    capture.close();
  });

  it('validates inject() arguments', () => {
    const capture = HandshakeCapture.detached();
    const p = initiation();
    assert.throws(() => capture.inject([...p] as never, source), ValidationErrorLike);
    assert.throws(() => capture.inject('x' as never, source), ValidationErrorLike);
    for (const bad of [null, {}, { address: 'example.com', port: 1 }, { address: 'fe80::1%eth0', port: 1 },
      { address: '10.0.0.1', port: 0 }, { address: '10.0.0.1', port: 65536 }, { address: '10.0.0.1', port: 1.5 },
      { address: '10.0.0.1', port: '1' }, { address: '10.0.0.256', port: 1 }]) {
      assert.throws(() => capture.inject(p, bad as never), ValidationErrorLike, JSON.stringify(bad));
      assert.throws(() => capture.inject(p, source, bad as never), ValidationErrorLike, JSON.stringify(bad));
    }
    assert.equal(capture.stats().delivered + capture.stats().rejected, 0);
    capture.close();
  });

  it('copies the injected packet: reusing the caller\'s Buffer afterwards changes nothing queued or delivered', async () => {
    const capture = HandshakeCapture.detached();
    const seen: HandshakeInitiation[] = [];
    capture.on('initiation', (i) => seen.push(i));
    const iterator = capture[Symbol.asyncIterator]();
    // A Buffer, whose slice() is a view: the case the copy must not get wrong.
    const slab = Buffer.alloc(4096);
    const original = initiation(7);
    slab.set(original, 100);
    const packet = slab.subarray(100, 100 + original.length);
    assert.equal(capture.inject(packet, source), true);
    slab.fill(0xee); // the caller reuses its buffer for the next datagram
    const queued = (await iterator.next()).value as HandshakeInitiation;
    assert.deepEqual([...queued.packet], [...original], 'the queued packet is unchanged');
    assert.deepEqual([...seen[0]!.packet], [...original], 'the delivered packet is unchanged');
    assert.notEqual(queued.packet.buffer, slab.buffer);
    assert.equal(queued.packet.byteLength, 148);
    assert.equal(queued.packet.buffer.byteLength, 148, 'owns exactly its bytes, not a slab');
    capture.close();
  });

  it('refuses inject() after close, and close() is idempotent and emits close once', async () => {
    const capture = HandshakeCapture.detached();
    let closes = 0;
    capture.on('close', () => closes++);
    capture.close();
    capture.close();
    assert.equal(capture.closed, true);
    await new Promise((r) => setImmediate(r));
    assert.equal(closes, 1);
    assert.throws(() => capture.inject(initiation(), source), (e: unknown) => e instanceof CaptureError && e.code === 'ERR_CAPTURE_CLOSED');
  });
});

describe('HandshakeCapture async iteration', () => {
  it('yields initiations in order, the same ones the events see', async () => {
    const capture = HandshakeCapture.detached();
    const events: number[] = [];
    capture.on('initiation', (i) => events.push(i.packet[4]!));
    const iterator = capture[Symbol.asyncIterator]();
    for (let n = 0; n < 5; n++) capture.inject(initiation(n), source);
    const got: number[] = [];
    for (let n = 0; n < 5; n++) {
      const r = await iterator.next();
      assert.equal(r.done, false);
      got.push((r.value as HandshakeInitiation).packet[4]!);
    }
    assert.deepEqual(got, [0, 1, 2, 3, 4]);
    assert.deepEqual(events, got);
    capture.close();
    assert.deepEqual(await iterator.next(), { value: undefined, done: true });
  });

  it('wakes a waiting consumer', async () => {
    const capture = HandshakeCapture.detached();
    const pending = (async () => {
      for await (const i of capture) return i.packet[4];
      return undefined;
    })();
    await new Promise((r) => setImmediate(r));
    capture.inject(initiation(42), source);
    assert.equal(await pending, 42);
    capture.close();
  });

  it('drops the oldest when the queue is full, and counts it', async () => {
    const capture = HandshakeCapture.detached({ queueLimit: 3 });
    const iterator = capture[Symbol.asyncIterator]();
    for (let n = 0; n < 8; n++) capture.inject(initiation(n), source);
    assert.equal(capture.stats().queueDrops, 5);
    assert.equal(capture.stats().delivered, 8);
    capture.close();
    const got: number[] = [];
    for (;;) {
      const r = await iterator.next();
      if (r.done) break;
      got.push(r.value.packet[4]!);
    }
    assert.deepEqual(got, [5, 6, 7], 'the newest three survive, then the iterator ends');
  });

  it('keeps memory bounded under a long overflow', async () => {
    const capture = HandshakeCapture.detached({ queueLimit: 10 });
    const iterator = capture[Symbol.asyncIterator]();
    for (let n = 0; n < 100_000; n++) capture.inject(initiation(n & 0xff), source);
    assert.equal(capture.stats().queueDrops, 100_000 - 10);
    let count = 0;
    capture.close();
    while (!(await iterator.next()).done) count++;
    assert.equal(count, 10);
  });

  it('gives every iterator every initiation; a finished one stops counting drops', async () => {
    const capture = HandshakeCapture.detached({ queueLimit: 2 });
    const a = capture[Symbol.asyncIterator]();
    const b = capture[Symbol.asyncIterator]();
    capture.inject(initiation(1), source);
    assert.equal((await a.next()).value.packet[4], 1);
    assert.equal((await b.next()).value.packet[4], 1);
    await b.return!();
    for (let n = 0; n < 4; n++) capture.inject(initiation(n), source);
    assert.equal(capture.stats().queueDrops, 2, 'only a overflowed');
    capture.close();
  });

  it('breaking out of for-await detaches the iterator', async () => {
    const capture = HandshakeCapture.detached({ queueLimit: 1 });
    capture.inject(initiation(), source);
    setImmediate(() => capture.inject(initiation(7), source));
    for await (const i of capture) {
      assert.equal(i.packet[4], 7);
      break;
    }
    for (let n = 0; n < 3; n++) capture.inject(initiation(), source);
    assert.equal(capture.stats().queueDrops, 0);
    capture.close();
  });

  it('ends an iterator created after close at once', async () => {
    const capture = HandshakeCapture.detached();
    capture.close();
    assert.deepEqual(await capture[Symbol.asyncIterator]().next(), { value: undefined, done: true });
  });
});

describe('HandshakeCapture.open() argument validation', () => {
  const invalid: [string, unknown][] = [
    ['options', null],
    ['ports', { ports: [] }],
    ['ports[0]', { ports: [0] }],
    ['ports[1]', { ports: [51820, 51820] }],
    ['ports[0]', { ports: ['51820'] }],
    ['ports', { ports: 51820 }],
    ['queueLimit', { queueLimit: 0 }],
    ['queueLimit', { queueLimit: 1.5 }],
    ['batch', { batch: 0 }],
    ['batch', { batch: 1025 }],
    ['receiveBufferSize', { receiveBufferSize: -1 }],
    ['receiveBufferSize', { receiveBufferSize: 2 ** 31 }],
    ['interface', { interface: '' }],
    ['interface', { interface: 'a-very-long-name' }], // 16 bytes
    ['interface', { interface: 'ééééééééé' }], // 18 bytes
    ['interface', { interface: 'eth/0' }],
    ['interface', { interface: 'eth 0' }],
    ['interface', { interface: '..' }],
    ['interface', { interface: 7 }],
    ['filter', { filter: [] }],
    ['filter', { filter: { instructions: [] } }],
    ['ports', { filter: handshakeFilter(), ports: [1] }],
    ['destinations', { filter: handshakeFilter(), destinations: ['192.0.2.1'] }],
    ['destinations', { destinations: [] }],
    ['destinations', { destinations: 'any' }],
    ['destinations[0]', { destinations: ['example.com'] }],
    ['destinations[0]', { destinations: ['fe80::1%eth0'] }],
    ['destinations[1]', { destinations: ['2001:db8::1', '2001:DB8:0::1'] }],
    ['destinations', { destinations: Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 0xff}`) }],
    ['linkDown', { linkDown: 'stay' }],
    ['netns', { netns: '' }],
    ['netns', { netns: 7 }],
    // What SO_ATTACH_FILTER would refuse is a ValidationError naming the instruction.
    ['filter[0]', { filter: bpfProgram([{ code: 0x0e, jt: 0, jf: 0, k: 0 }]) }], // ret x
    ['filter[0]', { filter: bpfProgram([{ code: 0x64, jt: 0, jf: 0, k: 32 }, { code: 0x16, jt: 0, jf: 0, k: 0 }]) }], // lsh #32
    ['filter[0]', { filter: bpfProgram([{ code: 0x60, jt: 0, jf: 0, k: 0 }, { code: 0x16, jt: 0, jf: 0, k: 0 }]) }], // ld M[0] first
  ];
  for (const [path, options] of invalid) {
    it(`rejects ${JSON.stringify(options)} at ${path}`, () => {
      assert.throws(() => HandshakeCapture.open(options as never), (e: unknown) =>
        e instanceof ValidationErrorLike && (e as { path: string }).path === path);
    });
  }

  it('reports an unknown interface as ENODEV, before needing any privilege', () => {
    assert.throws(() => HandshakeCapture.open({ interface: 'jgnosuchif0' }), (e: unknown) => {
      assert.ok(e instanceof CaptureError);
      assert.equal(e.code, 'ENODEV');
      assert.equal(e.interface, 'jgnosuchif0');
      assert.match(e.message, /no such interface 'jgnosuchif0'/);
      assert.ok(isCaptureNotFound(e));
      return true;
    });
  });

  it('accepts a replacement filter program (validated like any other)', () => {
    assert.throws(() => HandshakeCapture.open({ filter: bpfProgram([{ code: 6, jt: 0, jf: 0, k: 0 }]), interface: 'jgnosuchif0' }),
      (e: unknown) => e instanceof CaptureError && e.code === 'ENODEV');
  });

  it('can only be constructed through open() or detached()', () => {
    assert.throws(() => new HandshakeCapture(Symbol('x') as never, { ifindex: 0, ports: [], queueLimit: 1 }), TypeError);
  });
});

describe('CaptureError from native errors', () => {
  it('names CAP_NET_RAW for EPERM', () => {
    const e = fromNative(Object.assign(new Error('socket failed: Operation not permitted'), { code: 'EPERM', errno: 1, syscall: 'socket' }),
      { doing: 'opening the capture socket (AF_PACKET)' });
    assert.equal(e.code, 'EPERM');
    assert.equal(e.errno, 1);
    assert.equal(e.syscall, 'socket');
    assert.match(e.message, /CAP_NET_RAW/);
  });

  it('fills the code from errno when the addon could not name it', () => {
    const e = fromNative({ code: 'EUNKNOWN', errno: 100, syscall: 'recvmmsg', message: 'x' }, { doing: 'capture', interface: 'eth0' });
    assert.equal(e.code, 'ENETDOWN');
    assert.equal(e.interface, 'eth0');
  });

  it('emits a typed error to listeners and ends iterators with it', async () => {
    const capture = HandshakeCapture.detached();
    const iterator = capture[Symbol.asyncIterator]();
    const pending = iterator.next();
    const errored = once(capture, 'error');
    // The path a native socket error takes (there is no socket on a detached capture).
    (capture as unknown as { shutdown(e: CaptureError): void }).shutdown(new CaptureError('gone', { code: 'ENETDOWN' }));
    const [error] = await errored;
    assert.equal((error as CaptureError).code, 'ENETDOWN');
    await assert.rejects(pending, (e: unknown) => e instanceof CaptureError && e.code === 'ENETDOWN');
    assert.equal(capture.closed, true);
  });
});
