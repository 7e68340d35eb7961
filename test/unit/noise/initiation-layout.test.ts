import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  INITIATION_FIELD_LENGTH,
  INITIATION_LENGTH,
  INITIATION_OFFSET,
  isInitiationShape,
  MESSAGE_TYPE_COOKIE_REPLY,
  MESSAGE_TYPE_DATA,
  MESSAGE_TYPE_INITIATION,
  MESSAGE_TYPE_RESPONSE,
} from '../../../lib/protocol/initiation.js';
import { hex, loadVectors } from './vectors.js';

describe('lib/protocol/initiation.ts: the one definition of the initiation layout', () => {
  it('offsets are the running sum of the field lengths, in wire order, and add up to 148 (§5.4.2)', () => {
    const fields = Object.keys(INITIATION_FIELD_LENGTH) as (keyof typeof INITIATION_FIELD_LENGTH)[];
    assert.deepEqual(fields, Object.keys(INITIATION_OFFSET), 'same fields, same order');
    let at = 0;
    for (const f of fields) {
      assert.equal(INITIATION_OFFSET[f], at, f);
      at += INITIATION_FIELD_LENGTH[f];
    }
    assert.equal(at, INITIATION_LENGTH);
    assert.equal(INITIATION_LENGTH, 148);
    assert.deepEqual(
      { ...INITIATION_FIELD_LENGTH },
      { type: 4, sender: 4, ephemeral: 32, static: 32 + 16, timestamp: 12 + 16, mac1: 16, mac2: 16 },
    );
    assert.ok(Object.isFrozen(INITIATION_OFFSET) && Object.isFrozen(INITIATION_FIELD_LENGTH));
    assert.deepEqual([MESSAGE_TYPE_INITIATION, MESSAGE_TYPE_RESPONSE, MESSAGE_TYPE_COOKIE_REPLY, MESSAGE_TYPE_DATA], [1, 2, 3, 4]);
  });

  it('isInitiationShape: every recorded real initiation; not a byte more or less, not another type, not reserved bits', () => {
    const packets = loadVectors().flatMap((f) => f.initiations.map((v) => hex(v.packet)));
    assert.ok(packets.length >= 20);
    for (const p of packets) {
      assert.equal(isInitiationShape(p), true);
      assert.equal(isInitiationShape(p.subarray(0, 147)), false);
      assert.equal(isInitiationShape(Buffer.concat([p, Buffer.alloc(1)])), false);
    }
    const p = packets[0]!;
    for (const type of [0, 2, 3, 4, 0x81]) {
      const q = Buffer.from(p);
      q[0] = type;
      assert.equal(isInitiationShape(q), false, `type ${type}`);
    }
    for (const at of [1, 2, 3]) {
      const q = Buffer.from(p);
      q[at] = 0x80;
      assert.equal(isInitiationShape(q), false, `reserved byte ${at}`);
    }
    assert.equal(isInitiationShape(new Uint8Array(0)), false);
  });
});
