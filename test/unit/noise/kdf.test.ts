/**
 * lib/noise/kdf.ts (the responder's HASH and KDF) against the noble-only
 * reference and lib/noise/blake2s.ts's JavaScript; the precheck the pool runs on the event loop;
 * the synthetic initiations and the warm-up built on them.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ValidationError } from '../../../lib/errors.js';
import { privateKeyBytes } from '../../../lib/keys.js';
import { hash2Into, HmacBlake2s, kdfInto } from '../../../lib/noise/blake2s.js';
import { hashInto, kdf1Into, kdf2Into } from '../../../lib/noise/kdf.js';
import { Responder } from '../../../lib/noise/responder.js';
import { buildSyntheticInitiation } from '../../../lib/noise/synthetic-initiation.js';
import { tai64nToUnixMs } from '../../../lib/noise/tai64n.js';
import { ResponderWarmUp } from '../../../lib/noise/warm-up.js';
import { HASH, KDF, nobleUnwrap } from './noble-reference.js';
import { loadVectors } from './vectors.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('native HASH and KDF (kdf.ts)', () => {
  it('hashInto(a, b) = HASH(a ‖ b) of noble and of our JavaScript, also when the output is an input', () => {
    for (let i = 0; i < 100; i++) {
      const a = randomBytes(i % 70);
      const b = randomBytes((i * 7) % 90);
      const want = hex(HASH(a, b));
      assert.equal(hex(hashInto(new Uint8Array(32), a, b)), want);
      assert.equal(hex(hash2Into(new Uint8Array(32), a, b)), want);
      const alias = Uint8Array.from(a.length === 32 ? a : randomBytes(32));
      const aliasWant = hex(HASH(alias, b));
      assert.equal(hex(hashInto(alias, alias, b)), aliasWant);
    }
  });

  it('kdf1Into and kdf2Into = KDF1 and KDF2 of the paper (§5.4), over a sub-range, with the output aliasing the key', () => {
    for (let i = 0; i < 100; i++) {
      const ck = randomBytes(32);
      const src = randomBytes(64 + (i % 40));
      const off = i % 16;
      const len = 1 + ((i * 13) % 48);
      const input = src.subarray(off, off + len);
      const [w1, w2] = KDF(2, ck, input) as [Uint8Array, Uint8Array];
      const o1 = new Uint8Array(32);
      const o2 = new Uint8Array(32);
      kdf2Into(ck, src, off, len, o1, o2);
      assert.equal(hex(o1), hex(w1));
      assert.equal(hex(o2), hex(w2));
      const js1 = new Uint8Array(32);
      const js2 = new Uint8Array(32);
      kdfInto(new HmacBlake2s().setKey(ck), new HmacBlake2s(), new Uint8Array(32), src, off, len, js1, js2);
      assert.equal(hex(js1), hex(w1), 'the JavaScript KDF agrees');
      const key = Uint8Array.from(ck);
      kdf1Into(key, src, off, len, key);
      assert.equal(hex(key), hex(w1));
      const key2 = Uint8Array.from(ck);
      const k = new Uint8Array(32);
      kdf2Into(key2, src, off, len, key2, k);
      assert.deepEqual([hex(key2), hex(k)], [hex(w1), hex(w2)]);
    }
  });
});

describe('Responder.precheck', () => {
  it('gives unwrap\'s reason for size, type and mac1, and null where unwrap goes on to the DH', () => {
    for (const vectors of loadVectors()) {
      const responder = new Responder(vectors.responderPrivateKey);
      for (const { packet } of vectors.initiations) {
        const bytes = Buffer.from(packet, 'hex');
        assert.equal(responder.precheck(bytes), null);
        const badMac = Uint8Array.from(bytes);
        badMac[120]! ^= 1;
        assert.equal(responder.precheck(badMac), 'mac1');
        assert.deepEqual(responder.unwrap(badMac), { ok: false, reason: 'mac1' });
        assert.equal(responder.precheck(bytes.subarray(0, 100)), 'size');
        const other = Uint8Array.from(bytes);
        other[0] = 2;
        assert.equal(responder.precheck(other), 'type');
      }
    }
    assert.throws(() => new Responder(randomBytes(32)).precheck('x' as never), ValidationError);
  });
});

describe('synthetic initiations and the warm-up', () => {
  it('builds initiations our responder and the noble reference both accept, with the initiator, timestamp and sender asked for', () => {
    const { privateKey } = generateKeyPairSync('x25519');
    const responder = new Responder(privateKey);
    const initiator = generateKeyPairSync('x25519').privateKey;
    const initiatorPublic = new Responder(initiator).publicKey;
    const packet = buildSyntheticInitiation(responder.publicKeyBytes, { initiatorPrivateKey: initiator, unixMs: 1_700_000_000_123, senderIndex: 0xdeadbeef });
    const ours = responder.unwrap(packet);
    assert.ok(ours.ok);
    assert.equal(ours.publicKey, initiatorPublic);
    assert.equal(tai64nToUnixMs(ours.timestamp), 1_700_000_000_123);
    assert.equal(ours.senderIndex, 0xdeadbeef);
    const noble = nobleUnwrap(privateKeyBytes(privateKey, 'privateKey'), packet);
    assert.ok(noble.ok && noble.publicKey === initiatorPublic);
    const other = buildSyntheticInitiation(responder.publicKeyBytes);
    assert.notEqual(hex(other.subarray(8, 40)), hex(packet.subarray(8, 40)), 'a fresh ephemeral each time');
  });

  it('refuses a responder key that is not 32 bytes, naming the length', () => {
    assert.throws(() => buildSyntheticInitiation(new Uint8Array(31)), (e: unknown) => e instanceof ValidationError && /31 bytes/.test(e.message));
  });

  it('ResponderWarmUp verifies the count asked for, one call of its plan a step at a zero budget, and reports no failure', () => {
    const warmUp = new ResponderWarmUp(25);
    let steps = 0;
    let firstVerificationStep = -1;
    let finished = false;
    while (!finished) {
      // A zero budget is spent by the first call, so every step is exactly one call: the test
      // counts calls, never time (a small positive budget lets a fast machine fit two hot calls).
      finished = warmUp.step(0);
      steps++;
      if (warmUp.done > 0 && firstVerificationStep < 0) firstVerificationStep = steps;
    }
    // 380 calls of primitives and 8 builds come first, so no step is ever a whole cold
    // verification (lib/noise/warm-up.ts).
    assert.equal(firstVerificationStep, 380 + 8 + 1, 'the first verification comes after every primitive call and build');
    assert.equal(steps, 380 + 8 + 25, 'one call a step: the primitives, the builds, then one verification a step');
    assert.equal(warmUp.done, 25);
    assert.equal(warmUp.failure, null);
    assert.ok(warmUp.spentMs > 0);
    assert.equal(new ResponderWarmUp(0).step(5), true);
  });
});
