import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { blake2s as nobleBlake2s } from '@noble/hashes/blake2.js';
import { hmac as nobleHmac } from '@noble/hashes/hmac.js';
import fc from 'fast-check';
import { Blake2s, blake2s, hash2Into, HmacBlake2s, hmacBlake2s, kdfInto, Mac1 } from '../../../lib/noise/blake2s.js';
import { CONSTRUCTION, IDENTIFIER } from '../../../lib/noise/constants.js';
import { KDF } from './noble-reference.js';

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

describe('BLAKE2s (own implementation)', () => {
  it('matches RFC 7693 Appendix B: BLAKE2s-256("abc")', () => {
    assert.equal(hex(blake2s(new TextEncoder().encode('abc'))), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982');
  });

  it('matches the empty-input digest', () => {
    assert.equal(hex(blake2s(new Uint8Array(0))), createHash('blake2s256').digest('hex'));
  });

  it('matches Node blake2s256 for every length 0..300 (block boundaries included)', () => {
    for (let len = 0; len <= 300; len++) {
      const data = randomBytes(len);
      assert.equal(hex(blake2s(data)), createHash('blake2s256').update(data).digest('hex'), `length ${len}`);
    }
  });

  it('incremental updates of any split equal the one-shot digest (fast-check)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.array(fc.nat(400), { maxLength: 6 }), (data, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        const s = new Blake2s().init(32);
        let prev = 0;
        for (const p of [...points, data.length]) {
          s.update(data, prev, p - prev);
          prev = p;
        }
        const out = s.digestInto(new Uint8Array(32));
        assert.equal(hex(out), createHash('blake2s256').update(data).digest('hex'));
      }),
      { numRuns: 300 },
    );
  });

  it('keyed, any output length: matches @noble/hashes (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ minLength: 1, maxLength: 32 }),
        fc.integer({ min: 1, max: 32 }),
        (data, key, outLen) => {
          assert.equal(hex(blake2s(data, { key, outLen })), hex(nobleBlake2s(data, { key, dkLen: outLen })));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('Mac1 (prepared keyed BLAKE2s-128) equals one-shot keyed BLAKE2s-128 at offsets', () => {
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(32);
      const buf = randomBytes(200);
      const off = i % 50;
      const len = 1 + (i % 140);
      const m = new Mac1(key);
      const got = m.computeInto(new Uint8Array(16), buf, off, len);
      assert.equal(hex(got), hex(nobleBlake2s(buf.subarray(off, off + len), { key, dkLen: 16 })));
      // the prepared state is reusable
      assert.equal(hex(m.computeInto(new Uint8Array(16), buf, off, len)), hex(got));
    }
  });

  it('Mac1 rejects a key that is not 32 bytes and an empty input', () => {
    assert.throws(() => new Mac1(new Uint8Array(31)), { name: 'RangeError', message: /32 bytes, got 31/ });
    assert.throws(() => new Mac1(new Uint8Array(32)).computeInto(new Uint8Array(16), new Uint8Array(4), 0, 0), RangeError);
  });

  it('hash2Into(a, b) = HASH(a ‖ b), also when the output aliases an input', () => {
    const a = randomBytes(32);
    const b = randomBytes(48);
    const want = createHash('blake2s256').update(a).update(b).digest('hex');
    assert.equal(hex(hash2Into(new Uint8Array(32), a, b)), want);
    const alias = new Uint8Array(a);
    hash2Into(alias, alias, b);
    assert.equal(hex(alias), want);
  });

  it('rejects bad lengths', () => {
    assert.throws(() => new Blake2s().init(0), RangeError);
    assert.throws(() => new Blake2s().init(33), RangeError);
    assert.throws(() => new Blake2s().init(32, new Uint8Array(33)), RangeError);
  });

  it('wipe() zeroes the chain value and buffer', () => {
    const s = new Blake2s().init(32, randomBytes(32)).update(randomBytes(100));
    s.wipe();
    assert.ok(s.h.every((w) => w === 0));
    assert.ok(s.buf.every((b) => b === 0));
  });
});

describe('HMAC-BLAKE2s and KDF', () => {
  it('matches Node createHmac("blake2s256") and noble hmac for keys 0..64 bytes and messages 0..200', () => {
    for (let i = 0; i < 300; i++) {
      const key = randomBytes(i % 65);
      const msg = randomBytes((i * 7) % 201);
      const want = createHmac('blake2s256', key).update(msg).digest('hex');
      assert.equal(hex(hmacBlake2s(key, msg)), want, `key ${key.length} msg ${msg.length}`);
      assert.equal(hex(nobleHmac(nobleBlake2s, key, msg)), want);
    }
  });

  it('a prepared key gives the same MAC many times; empty messages are refused by the prepared state', () => {
    const key = randomBytes(32);
    const hm = new HmacBlake2s().setKey(key);
    for (let i = 1; i < 100; i++) {
      const msg = randomBytes(i);
      assert.equal(hex(hm.macInto(new Uint8Array(32), msg)), createHmac('blake2s256', key).update(msg).digest('hex'));
    }
    assert.throws(() => hm.macInto(new Uint8Array(32), new Uint8Array(0)), RangeError);
  });

  it('kdfInto = KDF1/KDF2 of the paper (§5.4), checked against a noble-only KDF', () => {
    for (let i = 0; i < 50; i++) {
      const ck = randomBytes(32);
      const input = randomBytes(1 + ((i * 13) % 100));
      const [w1, w2] = KDF(2, ck, input) as [Uint8Array, Uint8Array];
      const o1 = new Uint8Array(32);
      const o2 = new Uint8Array(32);
      const tau0 = new Uint8Array(32);
      kdfInto(new HmacBlake2s().setKey(ck), new HmacBlake2s(), tau0, input, 0, input.length, o1, o2);
      assert.equal(hex(o1), hex(w1));
      assert.equal(hex(o2), hex(w2));
      assert.ok(tau0.every((b) => b === 0), 'τ0 is wiped');
      const k1 = new Uint8Array(32);
      kdfInto(new HmacBlake2s().setKey(ck), new HmacBlake2s(), tau0, input, 0, input.length, k1);
      assert.equal(hex(k1), hex(w1));
    }
  });

  it('the initial chaining key HASH(CONSTRUCTION) is the constant other implementations hard-code', () => {
    // 60e26dae… is hard-coded in e.g. hannesm/wireguard-ocaml (noise.ml, initial_chain_key).
    const c = blake2s(new TextEncoder().encode(CONSTRUCTION));
    assert.equal(hex(c), '60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36');
    const h = hash2Into(new Uint8Array(32), c, new TextEncoder().encode(IDENTIFIER));
    assert.equal(hex(h), createHash('blake2s256').update(c).update(IDENTIFIER).digest('hex'));
  });
});
