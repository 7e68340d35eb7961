import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { FIRST_BATCH, rampedBatches } from '../../../lib/slices.js';

describe('rampedBatches', () => {
  it('starts at the first size and doubles up to the maximum, covering every item once', () => {
    const ranges = [...rampedBatches(1000, 256)];
    assert.deepEqual(ranges.map(([s, e]) => e - s), [16, 32, 64, 128, 256, 256, 248]);
    let next = 0;
    for (const [start, end] of ranges) {
      assert.equal(start, next, 'contiguous, no gap and no overlap');
      next = end;
    }
    assert.equal(next, 1000);
  });

  it('never exceeds a maximum below the first size, and yields nothing for nothing', () => {
    assert.deepEqual([...rampedBatches(10, 4)], [[0, 4], [4, 8], [8, 10]]);
    assert.deepEqual([...rampedBatches(0, 256)], []);
    assert.deepEqual([...rampedBatches(5, 256)], [[0, 5]]);
    assert.deepEqual([...rampedBatches(3, 256, 1)], [[0, 1], [1, 3]]);
    assert.equal(FIRST_BATCH, 16);
  });
});
