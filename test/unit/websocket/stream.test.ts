/**
 * The flyctl framing parser and encoder (lib/websocket/stream.ts): byte-stream parsing across
 * WebSocket message boundaries, keepalives, and the refusals that close a connection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ValidationError } from '../../../lib/errors.js';
import {
  encodeFrame, encodeKeepalive, encodeMagic, FrameParser, MAX_DATAGRAM_LENGTH, RelayProtocolError, WSWG_MAGIC,
} from '../../../lib/websocket/stream.js';

const bytes = (...values: number[]) => Uint8Array.from(values);
const concat = (parts: readonly Uint8Array[]) => Uint8Array.from(Buffer.concat(parts));
const datagramsOf = (out: Uint8Array[]) => out.map((d) => Buffer.from(d).toString('hex'));

/** A client's whole stream: the magic, then each datagram as length ‖ datagram (empty = keepalive). */
function clientStream(datagrams: readonly Uint8Array[]): Uint8Array {
  return concat([encodeMagic(), ...datagrams.map((d) => (d.length === 0 ? encodeKeepalive() : encodeFrame(d)))]);
}

function pushAll(parser: FrameParser, chunks: readonly Uint8Array[]): Uint8Array[] {
  return chunks.flatMap((chunk) => parser.push(chunk));
}

function refusal(reason: RelayProtocolError['reason']) {
  return (error: unknown) => error instanceof RelayProtocolError && error.reason === reason && error.code === 'ERR_JITGUARD_WEBSOCKET_PROTOCOL';
}

const initiationLike = Uint8Array.from({ length: 148 }, (_, i) => (i === 0 ? 1 : i < 4 ? 0 : i));
const sample = [initiationLike, bytes(4, 0, 0, 0, 9, 9), Uint8Array.from({ length: 1452 }, (_, i) => i & 0xff)];

describe('FrameParser: the byte stream across message boundaries', () => {
  it('the magic, then every datagram, is encoded big-endian as flyctl writes it', () => {
    assert.deepEqual([...encodeMagic()], [0x2f, 0xac, 0xed, 0x77]);
    assert.equal(WSWG_MAGIC, 0x2faced77);
    assert.deepEqual([...encodeFrame(bytes(7, 8, 9))], [0, 0, 0, 3, 7, 8, 9]);
    assert.deepEqual([...encodeKeepalive()], [0, 0, 0, 0]);
    assert.deepEqual([...encodeFrame(new Uint8Array(300)).subarray(0, 4)], [0, 0, 1, 0x2c]);
  });

  it('the whole stream in one message → every datagram, in order', () => {
    const parser = new FrameParser({ expectMagic: true });
    assert.deepEqual(datagramsOf(parser.push(clientStream(sample))), datagramsOf(sample));
    assert.equal(parser.bufferedBytes, 0);
    assert.equal(parser.magicSeen, true);
  });

  it('split at every byte boundary (two chunks) → the same datagrams', () => {
    const stream = clientStream(sample);
    for (let cut = 0; cut <= stream.length; cut++) {
      const parser = new FrameParser({ expectMagic: true });
      const out = pushAll(parser, [stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(datagramsOf(out), datagramsOf(sample), `cut at ${cut}`);
      assert.equal(parser.bufferedBytes, 0);
    }
  });

  it('one byte per message → the same datagrams, holding less than one datagram at any time', () => {
    const stream = clientStream(sample);
    const parser = new FrameParser({ expectMagic: true });
    const out: Uint8Array[] = [];
    let most = 0;
    for (let i = 0; i < stream.length; i++) {
      out.push(...parser.push(stream.subarray(i, i + 1)));
      most = Math.max(most, parser.bufferedBytes);
    }
    assert.deepEqual(datagramsOf(out), datagramsOf(sample));
    assert.equal(most, 1451, 'the largest datagram less its last byte');
  });

  it('older clients: the magic, then each length and each datagram as their own messages', () => {
    const parser = new FrameParser({ expectMagic: true });
    const messages = [encodeMagic(), ...sample.flatMap((d) => [encodeFrame(d).subarray(0, 4), d])];
    const out: Uint8Array[] = [];
    for (const [i, message] of messages.entries()) {
      const got = parser.push(message);
      // A length message completes nothing; its datagram message completes exactly one.
      assert.equal(got.length, i > 0 && i % 2 === 0 ? 1 : 0, `message ${i}`);
      out.push(...got);
    }
    assert.deepEqual(datagramsOf(out), datagramsOf(sample));
  });

  it('several frames in one message, and a message ending inside a frame', () => {
    const parser = new FrameParser({ expectMagic: true });
    const stream = clientStream(sample);
    const first = parser.push(stream.subarray(0, 4 + 152 + 10 + 5));
    assert.deepEqual(datagramsOf(first), datagramsOf(sample.slice(0, 2)));
    assert.equal(parser.bufferedBytes, 5 - 4, 'one byte of the third datagram held');
    assert.deepEqual(datagramsOf(parser.push(stream.subarray(4 + 152 + 10 + 5))), datagramsOf(sample.slice(2)));
  });

  it('zero-length frames are keepalives: dropped and counted, wherever they fall', () => {
    const parser = new FrameParser({ expectMagic: true });
    const stream = clientStream([new Uint8Array(0), sample[0]!, new Uint8Array(0), new Uint8Array(0), sample[1]!]);
    const out = pushAll(parser, [stream.subarray(0, 6), stream.subarray(6, 160), stream.subarray(160)]);
    assert.deepEqual(datagramsOf(out), datagramsOf(sample.slice(0, 2)));
    assert.equal(parser.keepalives, 3);
  });

  it('the client side (no magic expected) parses the gateway\'s frames', () => {
    const parser = new FrameParser({ expectMagic: false });
    assert.deepEqual(datagramsOf(parser.push(concat([encodeFrame(sample[1]!), encodeKeepalive()]))), datagramsOf(sample.slice(1, 2)));
    assert.equal(parser.keepalives, 1);
  });

  it('a datagram returned from a split is a copy; one within a chunk may be a view of it', () => {
    const parser = new FrameParser({ expectMagic: false });
    const frame = encodeFrame(bytes(1, 2, 3));
    const head = Uint8Array.from(frame.subarray(0, 5));
    assert.deepEqual(parser.push(head), []);
    const tail = Uint8Array.from(frame.subarray(5));
    const [datagram] = parser.push(tail);
    head.fill(0xee);
    tail.fill(0xee);
    assert.deepEqual([...datagram!], [1, 2, 3], 'not affected by the caller reusing its buffers');
  });
});

describe('FrameParser: refusals', () => {
  it('wrong magic → RelayProtocolError bad-magic, also when it arrives a byte at a time', () => {
    assert.throws(() => new FrameParser({ expectMagic: true }).push(bytes(0x2f, 0xac, 0xed, 0x78)), refusal('bad-magic'));
    const parser = new FrameParser({ expectMagic: true });
    assert.deepEqual(parser.push(bytes(0x00)), []);
    assert.deepEqual(parser.push(bytes(0x00, 0x00)), []);
    assert.throws(() => parser.push(bytes(0x94)), refusal('bad-magic'));
  });

  it('a datagram where the magic should be (a client that skipped it) → bad-magic', () => {
    assert.throws(() => new FrameParser({ expectMagic: true }).push(encodeFrame(initiationLike)), refusal('bad-magic'));
  });

  it('random garbage where the magic belongs → bad-magic, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 64 }), (garbage) => {
        fc.pre(Buffer.from(garbage).readUInt32BE(0) !== WSWG_MAGIC);
        assert.throws(() => new FrameParser({ expectMagic: true }).push(garbage), refusal('bad-magic'));
      }),
      { numRuns: 2000 },
    );
  });

  it('random garbage after the magic → datagrams or oversize-length, never another error, never more than it was given', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 600 }), (garbage, step) => {
        const parser = new FrameParser({ expectMagic: true, maxDatagramLength: 1500 });
        parser.push(encodeMagic());
        try {
          for (let at = 0; at < garbage.length; at += step) parser.push(garbage.subarray(at, at + step));
        } catch (error) {
          assert.ok(refusal('oversize-length')(error), String(error));
        }
        assert.ok(parser.bufferedBytes <= garbage.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('a length above 65,535 → oversize-length, before any of the datagram is buffered', () => {
    const parser = new FrameParser({ expectMagic: true });
    assert.deepEqual(parser.push(concat([encodeMagic(), encodeFrame(new Uint8Array(MAX_DATAGRAM_LENGTH))])).map((d) => d.length), [MAX_DATAGRAM_LENGTH]);
    assert.throws(() => parser.push(bytes(0, 1, 0, 0)), refusal('oversize-length'));
    assert.equal(parser.bufferedBytes, 0);
    assert.throws(() => new FrameParser({ expectMagic: false }).push(bytes(0xff, 0xff, 0xff, 0xff)), refusal('oversize-length'));
  });

  it('a lower maxDatagramLength is enforced (and 65,535 is the ceiling)', () => {
    const parser = new FrameParser({ expectMagic: false, maxDatagramLength: 1500 });
    assert.equal(parser.push(encodeFrame(new Uint8Array(1500))).length, 1);
    assert.throws(() => parser.push(encodeFrame(new Uint8Array(1501))), refusal('oversize-length'));
    assert.throws(() => new FrameParser({ expectMagic: false, maxDatagramLength: 65_536 }), ValidationError);
    assert.throws(() => new FrameParser({ expectMagic: false, maxDatagramLength: 0 }), ValidationError);
  });

  it('after a refusal every push throws the same error (the stream is dead)', () => {
    const parser = new FrameParser({ expectMagic: true });
    let first: unknown;
    try {
      parser.push(bytes(1, 2, 3, 4));
    } catch (error) {
      first = error;
    }
    assert.ok(first instanceof RelayProtocolError);
    assert.throws(() => parser.push(encodeMagic()), (error) => error === first);
  });

  it('bad arguments → ValidationError', () => {
    assert.throws(() => new FrameParser({} as never), ValidationError);
    assert.throws(() => new FrameParser({ expectMagic: false }).push('abc' as never), ValidationError);
    assert.throws(() => encodeFrame(new Uint8Array(MAX_DATAGRAM_LENGTH + 1)), ValidationError);
  });
});

describe('property: any split of any sequence of frames parses to the same datagrams (fast-check)', () => {
  it('datagrams of 0..1600 bytes (0 = keepalive), the stream cut at arbitrary points', () => {
    const datagram = fc.oneof(
      { weight: 1, arbitrary: fc.constant(new Uint8Array(0)) },
      { weight: 4, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 1600 }) },
    );
    fc.assert(
      fc.property(
        fc.array(datagram, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.boolean(),
        (datagrams, cutSeeds, expectMagic) => {
          const frames = concat(datagrams.map((d) => (d.length === 0 ? encodeKeepalive() : encodeFrame(d))));
          const stream = expectMagic ? concat([encodeMagic(), frames]) : frames;
          const cuts = [...new Set(cutSeeds.map((seed) => seed % (stream.length + 1)))].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let at = 0;
          for (const cut of [...cuts, stream.length]) {
            chunks.push(stream.subarray(at, cut));
            at = cut;
          }
          const parser = new FrameParser({ expectMagic });
          const out = pushAll(parser, chunks);
          const expected = datagrams.filter((d) => d.length > 0);
          assert.deepEqual(datagramsOf(out), datagramsOf(expected));
          assert.equal(parser.keepalives, datagrams.length - expected.length);
          assert.equal(parser.bufferedBytes, 0);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
