import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { RecentPackets } from '../../../lib/capture/duplicates.js';
import { FRAME_DECODE_WARM_UP_ROUNDS, decodeFrame, frameDecodeWarmUp, syntheticFrameBatch } from '../../../lib/capture/frame.js';
import {
  META_CAPTURED, META_IFINDEX, META_LENGTH, META_NANOS, META_OFFSET, META_SECONDS, META_STRIDE, META_VLAN, META_VLAN_PRESENT,
} from '../../../lib/capture/native.js';
import { recorded } from '../../vectors/frames/frames.js';

/** A batch of the given packets, laid out as the addon does (each packet at its own offset). */
function batch(packets: Uint8Array[], at = { seconds: 1_700_000_000, nanos: 123_456_789 }): { data: Buffer; meta: Uint32Array } {
  const data = Buffer.alloc(packets.length * 256);
  const meta = new Uint32Array(packets.length * META_STRIDE);
  packets.forEach((p, i) => {
    data.set(p, i * 256);
    const m = i * META_STRIDE;
    meta[m + META_OFFSET] = i * 256;
    meta[m + META_CAPTURED] = p.length;
    meta[m + META_LENGTH] = p.length;
    meta[m + META_IFINDEX] = 7;
    meta[m + META_SECONDS] = at.seconds;
    meta[m + META_NANOS] = at.nanos;
  });
  return { data, meta };
}

describe('decodeFrame()', () => {
  it('turns a real IPv4 and a real IPv6 initiation into what the capture delivers', () => {
    const { data, meta } = batch([recorded('01'), recorded('10')]);
    const v4 = decodeFrame(data, meta, 0, undefined);
    const v6 = decodeFrame(data, meta, META_STRIDE, undefined);
    assert.ok(typeof v4 === 'object' && typeof v6 === 'object');
    assert.deepEqual(v4.source, { address: '10.77.0.1', port: 40404, family: 4 });
    assert.deepEqual(v6.destination, { address: 'fd77::2', port: 51820, family: 6 });
    assert.equal(v4.ifindex, 7);
    assert.equal(v4.timestamp, 1_700_000_000_123_456_789n);
    assert.equal(v4.receivedAt.getTime(), 1_700_000_000_123);
    assert.equal(v4.injected, false);
    assert.equal(v4.packet.length, 148);
    // The payload is a copy: the batch's buffer is reused by the next read.
    data.fill(0);
    assert.deepEqual([...v4.packet.subarray(0, 4)], [1, 0, 0, 0]);
  });

  it('rejects a frame with a VLAN tag other than 0, and one that is no initiation', () => {
    const tagged = batch([recorded('01')]);
    tagged.meta[META_VLAN] = META_VLAN_PRESENT | 42;
    assert.equal(decodeFrame(tagged.data, tagged.meta, 0, undefined), 'rejected');
    // Priority-tagged (VLAN 0) frames belong to the untagged device.
    tagged.meta[META_VLAN] = META_VLAN_PRESENT;
    assert.equal(typeof decodeFrame(tagged.data, tagged.meta, 0, undefined), 'object');
    const garbage = batch([new Uint8Array(176).fill(0x45)]);
    assert.equal(decodeFrame(garbage.data, garbage.meta, 0, undefined), 'rejected');
  });

  it('folds the second copy of a frame when given a duplicate table, and only then', () => {
    const { data, meta } = batch([recorded('01'), recorded('01')]);
    const recent = new RecentPackets();
    assert.equal(typeof decodeFrame(data, meta, 0, recent), 'object');
    assert.equal(decodeFrame(data, meta, META_STRIDE, recent), 'duplicate');
    assert.equal(typeof decodeFrame(data, meta, META_STRIDE, undefined), 'object');
  });
});

describe('frameDecodeWarmUp()', () => {
  it('decodes synthetic IPv4 and IPv6 initiations that pass every check, one call per step', () => {
    for (const family of [4, 6] as const) {
      const { data, meta } = syntheticFrameBatch(family, 2);
      const frame = decodeFrame(data, meta, 0, undefined);
      assert.ok(typeof frame === 'object', `the IPv${family} frame must parse, or the warm-up warms only the rejection`);
      assert.deepEqual(frame.source, family === 4 ? { address: '192.0.2.3', port: 40002, family } : { address: '2001:db8::3', port: 40002, family });
    }
    // Per round: two families, each decoded twice (original and copy).
    assert.equal([...frameDecodeWarmUp()].length, 4 * FRAME_DECODE_WARM_UP_ROUNDS);
    assert.equal([...frameDecodeWarmUp(0)].length, 0);
  });
});
