import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { KNOCK_PATH_WARM_UP_ROUNDS, KNOCK_PATH_WARM_UP_STEPS_PER_ROUND, knockPathWarmUp } from '../../../lib/gateway/warm-up.js';

describe('knockPathWarmUp', () => {
  it('only reads the store it is given, two keys no one holds a round, one call per step', () => {
    const reads: Array<[string, string]> = [];
    const store = {
      getPeer: (key: string) => { reads.push(['getPeer', key]); return null; },
      getLastTimestamp: (key: string) => { reads.push(['getLastTimestamp', key]); return null; },
    };
    let steps = 0;
    for (const _ of knockPathWarmUp(store)) steps++;
    assert.equal(steps, KNOCK_PATH_WARM_UP_STEPS_PER_ROUND * KNOCK_PATH_WARM_UP_ROUNDS);
    assert.equal(reads.length, 2 * KNOCK_PATH_WARM_UP_ROUNDS);
    assert.deepEqual(new Set(reads.map(([method]) => method)), new Set(['getPeer', 'getLastTimestamp']));
    // Random keys, each a base64 public key, never the same twice.
    assert.equal(new Set(reads.map(([, key]) => key)).size, reads.length);
    for (const [, key] of reads) assert.equal(Buffer.from(key, 'base64').length, 32);
    assert.equal([...knockPathWarmUp(store, 0)].length, 0);
  });

  it('goes on when the store throws or rejects (a closed store, a remote one that is down)', async () => {
    const throwing = { getPeer: () => { throw new Error('closed'); }, getLastTimestamp: () => { throw new Error('closed'); } };
    const rejecting = { getPeer: () => Promise.reject(new Error('down')), getLastTimestamp: () => Promise.reject(new Error('down')) };
    assert.equal([...knockPathWarmUp(throwing, 2)].length, 2 * KNOCK_PATH_WARM_UP_STEPS_PER_ROUND);
    assert.equal([...knockPathWarmUp(rejecting, 2)].length, 2 * KNOCK_PATH_WARM_UP_STEPS_PER_ROUND);
    // An unhandled rejection would fail the test run after this turn.
    await new Promise((resolve) => setImmediate(resolve));
  });
});
