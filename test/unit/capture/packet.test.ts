import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isInitiationPayload, parseInitiation } from './helpers.js';
import { allFrames, recorded, PACKET_HOST } from '../../vectors/frames/frames.js';

describe('parseInitiation()', () => {
  it('reads the 4-tuple and payload of a real IPv4 initiation', () => {
    const parsed = parseInitiation(recorded('01'));
    assert.ok(parsed);
    assert.deepEqual(parsed.source, { address: '10.77.0.1', port: 40404, family: 4 });
    assert.deepEqual(parsed.destination, { address: '10.77.0.2', port: 51820, family: 4 });
    assert.equal(parsed.payload.length, 148);
    assert.deepEqual([...parsed.payload.subarray(0, 4)], [1, 0, 0, 0]);
  });

  it('reads the 4-tuple and payload of a real IPv6 initiation', () => {
    const parsed = parseInitiation(recorded('10'));
    assert.ok(parsed);
    assert.deepEqual(parsed.source, { address: 'fd77::1', port: 40404, family: 6 });
    assert.deepEqual(parsed.destination, { address: 'fd77::2', port: 51820, family: 6 });
    assert.equal(parsed.payload.length, 148);
  });

  it('makes the filter\'s decisions on every vector (packet type and port aside)', () => {
    for (const frame of allFrames()) {
      if (frame.pktType !== PACKET_HOST) continue;
      const parsed = parseInitiation(frame.bytes);
      const consistentProtocol = (frame.bytes[0]! >> 4 === 6) === (frame.protocol === 0x86dd);
      const accepted = parsed !== null && parsed.destination.port === 51820 && consistentProtocol;
      assert.equal(accepted, frame.accept, frame.name);
    }
  });

  it('takes the wire length separately when only the first bytes were captured', () => {
    const v4 = recorded('01');
    const long = Uint8Array.from([...v4, ...new Array<number>(100).fill(0)]);
    const total = v4.length + 100; // 276: the datagram plus 100 trailing bytes
    long[2] = total >> 8;
    long[3] = total & 0xff;
    assert.ok(parseInitiation(long));
    assert.ok(parseInitiation(long.subarray(0, 216), long.length), 'the first 216 bytes hold the initiation');
    assert.equal(parseInitiation(long.subarray(0, 216)), null, 'without the wire length, the packet looks short');
    assert.equal(parseInitiation(long.subarray(0, 216), long.length - 1), null, 'shorter than the total length');
    assert.equal(parseInitiation(v4.subarray(0, 100), 176), null, 'the initiation itself must be captured');
  });

  it('rejects empty and garbage input', () => {
    assert.equal(parseInitiation(new Uint8Array(0)), null);
    assert.equal(parseInitiation(Uint8Array.of(0x45)), null);
    assert.equal(parseInitiation(new Uint8Array(216)), null);
    assert.equal(parseInitiation(new Uint8Array(216).fill(0x60)), null);
  });
});

describe('isInitiationPayload()', () => {
  const payload = recorded('01').slice(28);
  it('accepts 148 bytes starting 01 00 00 00', () => assert.ok(isInitiationPayload(payload)));
  it('rejects other lengths and heads', () => {
    assert.ok(!isInitiationPayload(payload.subarray(0, 147)));
    assert.ok(!isInitiationPayload(Uint8Array.from([...payload, 0])));
    for (const [at, value] of [[0, 2], [0, 3], [0, 4], [1, 1], [2, 1], [3, 1]] as const) {
      const p = Uint8Array.from(payload);
      p[at] = value;
      assert.ok(!isInitiationPayload(p), `byte ${at} = ${value}`);
    }
  });
});
