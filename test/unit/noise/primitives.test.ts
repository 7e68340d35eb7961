import assert from 'node:assert/strict';
import { createCipheriv, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { x25519 } from '@noble/curves/ed25519.js';
import { aeadOpenCounter0 } from '../../../lib/noise/aead.js';
import { importPrivateKey as importKey, publicKeyBytes as publicKeyOf } from '../../../lib/keys.js';
import { dh, importPublicKey, isCanonicalPublicKey } from '../../../lib/noise/x25519.js';
import { AEAD, lowOrderPoints, randomPrivateKey, x25519Ladder } from './noble-reference.js';

const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const importPrivateKey = (key: unknown) => importKey(key, 'privateKey');

describe('X25519 (native) cross-checked with @noble/curves and an RFC 7748 bigint ladder', () => {
  it('DH agrees with noble and with the ladder on random keys', () => {
    for (let i = 0; i < 20; i++) {
      const a = randomPrivateKey();
      const B = x25519.getPublicKey(randomPrivateKey());
      const got = dh(importPrivateKey(a), B);
      assert.ok(got);
      assert.equal(hex(got), hex(x25519.getSharedSecret(a, B)));
      if (i < 3) assert.equal(hex(got), hex(x25519Ladder(a, B)));
    }
  });

  it('DH reads the public key at an offset inside a larger buffer', () => {
    const a = randomPrivateKey();
    const B = x25519.getPublicKey(randomPrivateKey());
    const big = Buffer.concat([randomBytes(13), B, randomBytes(7)]);
    const view = big.subarray(5);
    assert.equal(hex(dh(importPrivateKey(a), view, 8)!), hex(x25519.getSharedSecret(a, B)));
  });

  it('reading a public key past the end of the buffer is a ValidationError, not a silent over-read', () => {
    const priv = importPrivateKey(randomPrivateKey());
    const big = Buffer.alloc(64, 9);
    assert.throws(() => dh(priv, big.subarray(0, 40), 10), { name: 'ValidationError', message: /at offset 10, got 30 bytes/ });
    assert.throws(() => importPublicKey(new Uint8Array(31)), { name: 'ValidationError', message: /got 31 bytes/ });
  });

  it('publicKeyOf(import(raw)) equals noble getPublicKey', () => {
    const a = randomPrivateKey();
    assert.equal(hex(publicKeyOf(importPrivateKey(a))), hex(x25519.getPublicKey(a)));
    const B = x25519.getPublicKey(a);
    assert.equal(importPublicKey(B).asymmetricKeyType, 'x25519');
  });

  it('every listed low-order point gives an all-zero ladder output, and dh() returns null for it', () => {
    const points = lowOrderPoints();
    assert.equal(points.length, 14);
    const a = randomPrivateKey();
    const priv = importPrivateKey(a);
    for (const p of points) {
      assert.ok(x25519Ladder(a, p).every((b) => b === 0), `ladder(${hex(p)}) is zero`);
      assert.equal(dh(priv, p), null, hex(p));
    }
    // control: a random point is not low order
    assert.ok(!x25519Ladder(a, x25519.getPublicKey(randomPrivateKey())).every((b) => b === 0));
  });

  it('importPrivateKey: argument errors are ValidationErrors naming what was expected and what was given', () => {
    assert.throws(() => importPrivateKey(new Uint8Array(31)), {
      name: 'ValidationError',
      path: 'privateKey',
      message: 'privateKey: expected 32 bytes, got 31',
    });
    assert.throws(() => importPrivateKey(new Uint8Array(33)), { name: 'ValidationError', message: /got 33$/ });
    assert.throws(() => importPrivateKey('AAAA'), { name: 'ValidationError', message: /expected a 44-character base64 key, got 4 characters/ });
    assert.throws(() => importPrivateKey(null), { name: 'ValidationError', message: /got null/ });
    assert.throws(() => importPrivateKey(42), { name: 'ValidationError', message: /got a number/ });
    const ed = generateKeyPairSync('ed25519');
    assert.throws(() => importPrivateKey(ed.privateKey), { name: 'ValidationError', message: /got a private KeyObject of type ed25519/ });
    const xk = generateKeyPairSync('x25519');
    assert.throws(() => importPrivateKey(xk.publicKey), { name: 'ValidationError', message: /got a public KeyObject of type x25519/ });
    assert.equal(importPrivateKey(xk.privateKey), xk.privateKey);
  });

  it('importPrivateKey: base64, raw bytes and the KeyObject give the same key', () => {
    const a = randomPrivateKey();
    const fromBytes = importPrivateKey(a);
    const fromBase64 = importPrivateKey(Buffer.from(a).toString('base64'));
    assert.equal(hex(publicKeyOf(fromBase64)), hex(x25519.getPublicKey(a)));
    assert.equal(hex(publicKeyOf(fromBytes)), hex(x25519.getPublicKey(a)));
  });

  it('isCanonicalPublicKey: bit 255 set or u ≥ 2^255 − 19 is not canonical; honest keys always are', () => {
    const le = (n: bigint): Uint8Array => {
      const out = new Uint8Array(32);
      for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
      return out;
    };
    const p = 2n ** 255n - 19n;
    for (const u of [0n, 1n, 9n, p - 2n, p - 1n, 2n ** 254n, 2n ** 255n - 2n ** 248n - 1n]) {
      assert.equal(isCanonicalPublicKey(le(u)), u < p, `u = ${u}`);
    }
    for (let d = 0n; d < 19n; d++) assert.equal(isCanonicalPublicKey(le(p + d)), false, `p + ${d}`);
    for (const u of [0n, 9n, p - 1n]) assert.equal(isCanonicalPublicKey(le(u + 2n ** 255n)), false, `bit 255 + ${u}`);
    for (let i = 0; i < 200; i++) assert.ok(isCanonicalPublicKey(x25519.getPublicKey(randomPrivateKey())));
    const buf = Buffer.concat([Buffer.alloc(5), le(p)]);
    assert.equal(isCanonicalPublicKey(buf, 5), false, 'at an offset');
  });
});

describe('ChaCha20-Poly1305 (native) cross-checked with @noble/ciphers', () => {
  it('opens what noble sealed, at an offset, and only with the right key, AD and bytes', () => {
    for (let i = 0; i < 50; i++) {
      const key = randomBytes(32);
      const ad = randomBytes(32);
      const plain = randomBytes(i % 2 ? 32 : 12);
      const sealed = AEAD(key, plain, ad);
      const buf = Buffer.concat([randomBytes(9), sealed, randomBytes(3)]);
      assert.equal(hex(aeadOpenCounter0(key, buf, 9, sealed.length, ad)!), hex(plain));
      const wrongKey = Buffer.from(key);
      wrongKey[i % 32]! ^= 1;
      assert.equal(aeadOpenCounter0(wrongKey, buf, 9, sealed.length, ad), null);
      const wrongAd = Buffer.from(ad);
      wrongAd[i % 32]! ^= 0x80;
      assert.equal(aeadOpenCounter0(key, buf, 9, sealed.length, wrongAd), null);
      const damaged = Buffer.from(buf);
      damaged[9 + (i % sealed.length)]! ^= 4;
      assert.equal(aeadOpenCounter0(key, damaged, 9, sealed.length, ad), null);
    }
  });

  it('uses the all-zero nonce (counter 0) like Node createCipheriv with a zero IV', () => {
    const key = randomBytes(32);
    const ad = randomBytes(7);
    const c = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
    c.setAAD(ad, { plaintextLength: 12 });
    const sealed = Buffer.concat([c.update(Buffer.from('hello world!')), c.final(), c.getAuthTag()]);
    assert.equal(hex(sealed), hex(AEAD(key, Buffer.from('hello world!'), ad)));
    assert.equal(aeadOpenCounter0(key, sealed, 0, sealed.length, ad)!.toString(), 'hello world!');
    assert.equal(aeadOpenCounter0(key, sealed, 0, 15, ad), null, 'shorter than a tag');
    assert.throws(() => aeadOpenCounter0(key, sealed.subarray(0, 20), 0, 28, ad), RangeError);
  });
});
