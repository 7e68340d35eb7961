import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Responder, type UnwrapResult } from '../../../lib/noise/index.js';
import { nobleUnwrap, publicKeyOfRaw, randomPrivateKey, withMac1 } from './noble-reference.js';
import { b64, hex, loadVectors } from './vectors.js';

const rPriv = randomPrivateKey();
const rPub = publicKeyOfRaw(rPriv);
const responder = new Responder(rPriv);
const REASONS = new Set(['size', 'type', 'mac1', 'ephemeral', 'static', 'timestamp']);

function safeUnwrap(r: Responder, p: Uint8Array): UnwrapResult {
  // any exception fails the property
  return r.unwrap(p);
}

describe('property: arbitrary input never throws and never verifies (fast-check)', () => {
  it('random bytes of any length (0..400) → a rejection; size unless exactly 148 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const r = safeUnwrap(responder, bytes);
        assert.equal(r.ok, false);
        if (!r.ok) {
          assert.ok(REASONS.has(r.reason));
          if (bytes.length !== 148) assert.equal(r.reason, 'size');
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('random 148-byte buffers starting 01 00 00 00 → mac1', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 144, maxLength: 144 }), (body) => {
        const p = new Uint8Array(148);
        p[0] = 1;
        p.set(body, 4);
        const r = safeUnwrap(responder, p);
        assert.deepEqual(r, { ok: false, reason: 'mac1' });
      }),
      { numRuns: 5000 },
    );
  });

  it('random 148-byte buffers with a valid header AND a valid mac1 → ephemeral or static, as the noble reference says', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 144, maxLength: 144 }), (body) => {
        const p = new Uint8Array(148);
        p[0] = 1;
        p.set(body, 4);
        const fixed = withMac1(p, rPub);
        const r = safeUnwrap(responder, fixed);
        assert.equal(r.ok, false);
        if (!r.ok) assert.ok(r.reason === 'ephemeral' || r.reason === 'static', r.reason);
      }),
      { numRuns: 300 },
    );
    // the reference agrees on a few (noble X25519 is ~1 ms, so only a handful)
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 144, maxLength: 144 }), (body) => {
        const p = new Uint8Array(148);
        p[0] = 1;
        p.set(body, 4);
        const fixed = withMac1(p, rPub);
        const mine = responder.unwrap(fixed);
        const ref = nobleUnwrap(rPriv, fixed);
        assert.equal(mine.ok ? 'ok' : mine.reason, ref.ok ? 'ok' : ref.reason);
      }),
      { numRuns: 15 },
    );
  });

  it('random multi-byte damage to a real initiation (mac1 recomputed) never verifies unless only the sender index changed', () => {
    const f = loadVectors()[0]!;
    const real = hex(f.initiations[0]!.packet);
    const r = new Responder(b64(f.responderPrivateKey));
    const gwPub = b64(f.responderPublicKey);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 4, max: 115 }), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }),
        (edits) => {
          const p = Buffer.from(real);
          for (const [at, x] of edits) p[at]! ^= x;
          const changed = [...p.subarray(0, 116)].some((b, i) => b !== real[i]);
          const onlySender = [...p.subarray(0, 116)].every((b, i) => (i >= 4 && i < 8) || b === real[i]);
          const res = r.unwrap(withMac1(p, gwPub));
          if (!changed || onlySender) assert.equal(res.ok, true);
          else assert.equal(res.ok, false, `edits ${JSON.stringify(edits)}`);
        },
      ),
      { numRuns: 400 },
    );
  });
});
