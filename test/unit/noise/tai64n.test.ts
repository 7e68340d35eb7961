import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  compareTai64n,
  decodeTai64n,
  encodeTai64n,
  TAI64_UNIX_EPOCH_LABEL,
  tai64nFromUnixMs,
  tai64nToUnixMs,
} from '../../../lib/noise/index.js';

describe('TAI64N', () => {
  it('decodes the big-endian label and nanoseconds', () => {
    const b = Uint8Array.from([0x40, 0, 0, 0, 0x65, 0x4f, 0x3c, 0x2a, 0x0b, 0xeb, 0xc2, 0x00]);
    const t = decodeTai64n(b);
    assert.equal(t.seconds, 0x40000000654f3c2an);
    assert.equal(t.nanoseconds, 0x0bebc200);
    assert.deepEqual([...t.bytes], [...b]);
    assert.notEqual(t.bytes, b, 'bytes are a copy');
    assert.equal(tai64nToUnixMs(t), (0x654f3c2a - 10) * 1000 + 200);
  });

  it('decodes at an offset and refuses short input / non-bytes', () => {
    const buf = new Uint8Array(20);
    buf[5] = 0x40;
    assert.equal(decodeTai64n(buf, 5).seconds, 0x4000000000000000n);
    assert.throws(() => decodeTai64n(new Uint8Array(11)), { name: 'ValidationError', path: 'src', message: /expected 12 TAI64N bytes at offset 0, got 11/ });
    assert.throws(() => decodeTai64n(buf, 9), { name: 'ValidationError', message: /got 11/ });
    assert.throws(() => decodeTai64n(buf, Number.NaN), { name: 'ValidationError', message: /at offset NaN/ });
    assert.throws(() => decodeTai64n('x' as unknown as Uint8Array), { name: 'ValidationError', message: /got a string/ });
    assert.throws(() => decodeTai64n('x' as unknown as Uint8Array), TypeError, 'still a TypeError for callers that test for one');
  });

  it('unix-ms round trip uses the WireGuard label 2^62 + 10 + seconds', () => {
    const t = tai64nFromUnixMs(1_700_000_000_123);
    assert.equal(t.seconds, TAI64_UNIX_EPOCH_LABEL + 1_700_000_000n);
    assert.equal(t.nanoseconds, 123_000_000);
    assert.equal(tai64nToUnixMs(t), 1_700_000_000_123);
    assert.deepEqual(decodeTai64n(t.bytes), t);
  });

  it('encode refuses out-of-range fields with a ValidationError naming the field', () => {
    assert.throws(() => encodeTai64n(-1n, 0), { name: 'ValidationError', path: 'seconds', message: /got -1$/ });
    assert.throws(() => encodeTai64n(1n << 64n, 0), { name: 'ValidationError', path: 'seconds' });
    assert.throws(() => encodeTai64n(5 as unknown as bigint, 0), { name: 'ValidationError', path: 'seconds', message: /got a number/ });
    assert.throws(() => encodeTai64n(0n, 2 ** 32), { name: 'ValidationError', path: 'nanoseconds' });
    assert.throws(() => encodeTai64n(0n, 1.5), { name: 'ValidationError', path: 'nanoseconds', message: /got 1.5/ });
    assert.throws(() => tai64nFromUnixMs(Number.NaN), { name: 'ValidationError', path: 'unixMs' });
  });

  it('compareTai64n orders exactly like memcmp over the 12 bytes (the kernel rule), fast-check', () => {
    const memcmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(Buffer.from(a), Buffer.from(b));
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), (x, y) => {
        const a = decodeTai64n(x);
        const b = decodeTai64n(y);
        assert.equal(compareTai64n(a, b), memcmp(x, y));
        assert.equal(compareTai64n(b, a), memcmp(y, x));
        assert.equal(compareTai64n(a, a), 0);
      }),
      { numRuns: 2000 },
    );
    // and on near-equal values where only one field differs
    const a = encodeTai64n(TAI64_UNIX_EPOCH_LABEL + 5n, 10);
    assert.equal(compareTai64n(a, encodeTai64n(TAI64_UNIX_EPOCH_LABEL + 5n, 11)), -1);
    assert.equal(compareTai64n(a, encodeTai64n(TAI64_UNIX_EPOCH_LABEL + 4n, 999_999_999)), 1);
  });
});
