/** Capabilities read from CapEff, and the refusal naming the one that is missing. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { effectiveCapabilities, hasCapability, requireCapabilities } from '../../../lib/cli/capabilities.js';
import { Refusal } from '../../../lib/cli/refusal.js';
import { capabilityStatus } from './support/daemon-harness.js';

const NET_ADMIN = 12;
const NET_RAW = 13;

describe('capabilities', () => {
  it('reads CapEff as a bit set', () => {
    const effective = effectiveCapabilities('CapInh:\t0000000000000000\nCapEff:\t0000000000003000\nCapBnd:\t000001ffffffffff\n');
    assert.equal(effective, 0x3000n);
    assert.ok(hasCapability(effective!, 'CAP_NET_ADMIN'));
    assert.ok(hasCapability(effective!, 'CAP_NET_RAW'));
    assert.ok(!hasCapability(effective!, 'CAP_NET_BIND_SERVICE'));
  });

  it('reads this process\'s own status', () => {
    assert.notEqual(effectiveCapabilities(readFileSync('/proc/self/status', 'utf8')), null);
  });

  it('accepts exactly CAP_NET_ADMIN and CAP_NET_RAW', () => {
    assert.doesNotThrow(() => requireCapabilities(['CAP_NET_ADMIN', 'CAP_NET_RAW'], capabilityStatus(NET_ADMIN, NET_RAW)));
  });

  for (const [held, missing] of [[[NET_RAW], 'CAP_NET_ADMIN'], [[NET_ADMIN], 'CAP_NET_RAW'], [[], 'CAP_NET_ADMIN']] as const) {
    it(`names ${missing} when CapEff holds ${held.length === 0 ? 'nothing' : held.join(',')}`, () => {
      assert.throws(() => requireCapabilities(['CAP_NET_ADMIN', 'CAP_NET_RAW'], capabilityStatus(...held)),
        (error: unknown) => error instanceof Refusal && error.message.startsWith(`missing capability ${missing} `) && /AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW/.test(error.message));
    });
  }

  it('refuses when there is no CapEff line', () => {
    assert.throws(() => requireCapabilities(['CAP_NET_ADMIN'], 'Name:\tnode\n'), /cannot read the effective capabilities/);
  });
});
