import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SET_PATH_WARM_UP_ROUNDS, setPathWarmUp } from '../../../lib/wireguard/warm-up.js';

describe('setPathWarmUp', () => {
  it('validates and encodes its throwaway configs one call per step, without throwing', () => {
    let steps = 0;
    for (const _ of setPathWarmUp()) steps++;
    // Per round: validate and encode an install, validate and encode a removal.
    assert.equal(steps, 4 * SET_PATH_WARM_UP_ROUNDS);
    assert.equal([...setPathWarmUp(1)].length, 4);
    assert.equal([...setPathWarmUp(0)].length, 0);
  });
});
