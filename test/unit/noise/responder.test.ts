import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { ValidationError } from '../../../lib/errors.js';
import {
  compareTai64n,
  Responder,
  SeenInitiations,
  tai64nFromUnixMs,
  tai64nToUnixMs,
  type UnwrapResult,
} from '../../../lib/noise/index.js';
import { INITIATION_LENGTH } from '../../../lib/protocol/initiation.js';
import {
  buildInitiation,
  isCanonicalU,
  lowOrderPoints,
  nobleUnwrap,
  publicKeyOfRaw,
  randomPrivateKey,
  withMac1,
  x25519Ladder,
} from './noble-reference.js';
import { b64, hex, loadVectors, type VectorFile } from './vectors.js';

const files = loadVectors();
const toHex = (u: Uint8Array): string => Buffer.from(u).toString('hex');
const reasonOf = (r: UnwrapResult): string => (r.ok ? 'ok' : r.reason);
const senderOf = (p: Uint8Array): number => Buffer.from(p.buffer, p.byteOffset, p.length).readUInt32LE(4);

/** How far a decrypted timestamp may be from the capture's wall clock (same machine). */
const TIMESTAMP_SLACK_MS = 2_000;

function responderFor(f: VectorFile): Responder {
  return new Responder(b64(f.responderPrivateKey));
}

/** One initiation from each vector file (the first and the last captured). */
function samples(): { file: VectorFile; packet: Buffer; index: number }[] {
  const out: { file: VectorFile; packet: Buffer; index: number }[] = [];
  for (const f of files) {
    out.push({ file: f, packet: hex(f.initiations[0]!.packet), index: 0 });
    const last = f.initiations.length - 1;
    out.push({ file: f, packet: hex(f.initiations[last]!.packet), index: last });
  }
  return out;
}

describe('real initiations captured from implementations we did not write', () => {
  it('there are at least 20, from both wireguard-go and the Linux kernel, over IPv4 and IPv6', () => {
    const total = files.reduce((n, f) => n + f.initiations.length, 0);
    assert.ok(total >= 20, `only ${total} vectors`);
    const sources = new Set(files.map((f) => f.source));
    assert.ok(sources.has('wireguard-go'), 'wireguard-go vectors present');
    assert.ok(sources.has('linux-kernel'), 'kernel WireGuard vectors present');
    for (const f of files) {
      assert.ok(f.initiations.length >= 10, `${f.file}: ${f.initiations.length} initiations`);
      const transports = new Set(f.initiations.map((i) => i.transport));
      assert.deepEqual([...transports].sort(), ['ipv4', 'ipv6'], `${f.file} transports`);
    }
  });

  for (const f of files) {
    describe(`${f.file} (${f.source})`, () => {
      const responder = responderFor(f);

      it('every initiation verifies with the configured key: right initiator, sender index, timestamp near capture time', () => {
        assert.equal(responder.publicKey, f.responderPublicKey);
        for (const [n, v] of f.initiations.entries()) {
          const packet = hex(v.packet);
          assert.equal(packet.length, INITIATION_LENGTH);
          const r = responder.unwrap(packet);
          assert.ok(r.ok, `#${n} rejected: ${reasonOf(r)}`);
          assert.equal(r.publicKey, v.initiatorPublicKey, `#${n} key`);
          assert.equal(toHex(r.publicKeyBytes), toHex(b64(v.initiatorPublicKey)));
          assert.equal(r.senderIndex, senderOf(packet));
          assert.equal(r.timestamp.bytes.length, 12);
          const skew = tai64nToUnixMs(r.timestamp) - v.capturedAtUnixMs;
          assert.ok(Math.abs(skew) < TIMESTAMP_SLACK_MS, `#${n} timestamp off by ${skew} ms`);
        }
      });

      it('the noble-only reference implementation returns exactly the same result for each', () => {
        const priv = b64(f.responderPrivateKey);
        for (const v of f.initiations) {
          const packet = hex(v.packet);
          const mine = responder.unwrap(packet);
          const ref = nobleUnwrap(priv, packet);
          assert.ok(mine.ok && ref.ok);
          assert.deepEqual(
            { publicKey: mine.publicKey, timestamp: toHex(mine.timestamp.bytes), senderIndex: mine.senderIndex },
            { publicKey: ref.publicKey, timestamp: ref.timestamp, senderIndex: ref.senderIndex },
          );
        }
      });

      it('timestamps strictly increase per initiator in capture order; a replay compares equal', () => {
        const last = new Map<string, ReturnType<typeof responder.unwrap>>();
        let comparisons = 0;
        for (const v of f.initiations) {
          const r = responder.unwrap(hex(v.packet));
          assert.ok(r.ok);
          const prev = last.get(v.initiatorPublicKey);
          if (prev?.ok) {
            assert.equal(compareTai64n(r.timestamp, prev.timestamp), 1);
            assert.equal(compareTai64n(prev.timestamp, r.timestamp), -1);
            comparisons++;
          }
          const again = responder.unwrap(hex(v.packet));
          assert.ok(again.ok);
          assert.equal(compareTai64n(again.timestamp, r.timestamp), 0, 'a replay carries the same timestamp');
          last.set(v.initiatorPublicKey, r);
        }
        assert.ok(comparisons >= f.initiations.length / 2, 'several initiations per initiator');
      });

      it('with any other responder key every initiation is rejected as mac1', () => {
        const other = new Responder(randomPrivateKey());
        for (const v of f.initiations) assert.equal(reasonOf(other.unwrap(hex(v.packet))), 'mac1');
      });

      it('a KeyObject private key behaves like the raw bytes', () => {
        const der = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), b64(f.responderPrivateKey)]);
        const viaKeyObject = new Responder(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
        assert.equal(viaKeyObject.publicKey, f.responderPublicKey);
        const r = viaKeyObject.unwrap(hex(f.initiations[0]!.packet));
        assert.ok(r.ok);
        assert.equal(r.publicKey, f.initiations[0]!.initiatorPublicKey);
      });
    });
  }
});

describe('damaged real initiations', () => {
  it('every single-bit flip in bytes 0–131 is rejected: type/reserved bytes as type, the rest as mac1', () => {
    for (const { file, packet, index } of samples()) {
      const responder = responderFor(file);
      for (let byte = 0; byte < 132; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const p = Buffer.from(packet);
          p[byte]! ^= 1 << bit;
          const want = byte < 4 ? 'type' : 'mac1';
          assert.equal(reasonOf(responder.unwrap(p)), want, `${file.file}#${index} byte ${byte} bit ${bit}`);
        }
      }
    }
  });

  it('with mac1 recomputed over the damaged bytes, each field lands on its own reason', () => {
    // Layout (§5.4.2): type+reserved 0–3 · sender 4–7 · ephemeral 8–39 · static 40–87 ·
    // timestamp 88–115. The sender index is covered by mac1 but never enters the Noise hash
    // or an AEAD, so once mac1 is recomputed a flip there VERIFIES, with the flipped index.
    // A flipped ephemeral changes H and C (and DH), so msg.static no longer decrypts: 'static'
    // (even bit 255, which X25519 ignores: the raw bytes are hashed).
    const lowOrder = new Set(lowOrderPoints().map(toHex));
    for (const { file, packet, index } of samples()) {
      const responder = responderFor(file);
      const rPub = b64(file.responderPublicKey);
      const orig = responder.unwrap(packet);
      assert.ok(orig.ok);
      const counts: Record<string, number> = {};
      for (let byte = 0; byte < 116; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const damaged = Buffer.from(packet);
          damaged[byte]! ^= 1 << bit;
          const p = withMac1(damaged, rPub);
          const r = responder.unwrap(p);
          const where = `${file.file}#${index} byte ${byte} bit ${bit}`;
          let want: string;
          if (byte < 4) want = 'type';
          else if (byte < 8) want = 'ok';
          else if (byte < 40) want = lowOrder.has(toHex(p.subarray(8, 40))) ? 'ephemeral' : 'static';
          else if (byte < 88) want = 'static';
          else want = 'timestamp';
          assert.equal(reasonOf(r), want, where);
          counts[want] = (counts[want] ?? 0) + 1;
          if (r.ok) {
            assert.equal(r.publicKey, orig.publicKey, where);
            assert.equal(r.senderIndex, (orig.senderIndex ^ (1 << (8 * (byte - 4) + bit))) >>> 0, where);
            assert.equal(compareTai64n(r.timestamp, orig.timestamp), 0, where);
          }
        }
      }
      assert.deepEqual(counts, { type: 32, ok: 32, static: 80 * 8, timestamp: 28 * 8 });
    }
  });

  it('the noble reference gives the same reason for a sample of recomputed-mac1 flips', () => {
    const { file, packet } = samples()[0]!;
    const responder = responderFor(file);
    const priv = b64(file.responderPrivateKey);
    const rPub = b64(file.responderPublicKey);
    for (let byte = 0; byte < 116; byte += 5) {
      const damaged = Buffer.from(packet);
      damaged[byte]! ^= 1 << (byte % 8);
      const p = withMac1(damaged, rPub);
      const mine = responder.unwrap(p);
      const ref = nobleUnwrap(priv, p);
      assert.equal(reasonOf(mine), ref.ok ? 'ok' : ref.reason, `byte ${byte}`);
    }
  });

  it('flips in mac2 (bytes 132–147) still verify: a responder not under load ignores mac2 (§5.4.7)', () => {
    for (const { file, packet } of samples()) {
      const responder = responderFor(file);
      const want = responder.unwrap(packet);
      assert.ok(want.ok);
      for (let byte = 132; byte < 148; byte++) {
        for (let bit = 0; bit < 8; bit++) {
          const p = Buffer.from(packet);
          p[byte]! ^= 1 << bit;
          const r = responder.unwrap(p);
          assert.ok(r.ok, `byte ${byte} bit ${bit}: ${reasonOf(r)}`);
          assert.equal(r.publicKey, want.publicKey);
        }
      }
    }
  });

  it('truncation or extension by one byte (and other sizes) → size', () => {
    for (const { file, packet } of samples()) {
      const responder = responderFor(file);
      assert.equal(reasonOf(responder.unwrap(packet.subarray(0, 147))), 'size');
      assert.equal(reasonOf(responder.unwrap(Buffer.concat([packet, Buffer.alloc(1)]))), 'size');
      assert.equal(reasonOf(responder.unwrap(Buffer.concat([packet, packet]))), 'size');
      assert.equal(reasonOf(responder.unwrap(packet.subarray(0, 92))), 'size');
      assert.equal(reasonOf(responder.unwrap(new Uint8Array(0))), 'size');
    }
  });

  it('a wrong type byte or non-zero reserved bytes → type, even with mac1 recomputed', () => {
    const { file, packet } = samples()[0]!;
    const responder = responderFor(file);
    const rPub = b64(file.responderPublicKey);
    for (const type of [0, 2, 3, 4, 0x81, 0xff]) {
      const p = Buffer.from(packet);
      p[0] = type;
      assert.equal(reasonOf(responder.unwrap(p)), 'type', `type ${type}`);
      assert.equal(reasonOf(responder.unwrap(withMac1(p, rPub))), 'type', `type ${type} + mac1`);
    }
    for (const at of [1, 2, 3]) {
      const p = Buffer.from(packet);
      p[at] = 0x01;
      assert.equal(reasonOf(responder.unwrap(withMac1(p, rPub))), 'type', `reserved byte ${at}`);
    }
  });

  it('a real initiation verifies inside a larger buffer at an unaligned offset', () => {
    const { file, packet } = samples()[0]!;
    const big = Buffer.concat([Buffer.alloc(3, 0xaa), packet, Buffer.alloc(5, 0xbb)]);
    const r = responderFor(file).unwrap(big.subarray(3, 3 + 148));
    assert.ok(r.ok);
    assert.equal(r.publicKey, file.initiations[0]!.initiatorPublicKey);
  });
});

describe('forged and malicious initiations (built with @noble)', () => {
  const rPriv = randomPrivateKey();
  const rPub = publicKeyOfRaw(rPriv);
  const responder = new Responder(rPriv);
  const now = tai64nFromUnixMs(Date.now());

  it('positive control: an honest noble-built initiation verifies, and both implementations agree', () => {
    for (let i = 0; i < 5; i++) {
      const iPriv = randomPrivateKey();
      const packet = buildInitiation({ responderPublic: rPub, initiatorPrivate: iPriv, timestamp: now.bytes, senderIndex: 1000 + i });
      const r = responder.unwrap(packet);
      assert.ok(r.ok, reasonOf(r));
      assert.equal(r.publicKey, Buffer.from(publicKeyOfRaw(iPriv)).toString('base64'));
      assert.equal(r.senderIndex, 1000 + i);
      assert.equal(toHex(r.timestamp.bytes), toHex(now.bytes));
      assert.deepEqual(nobleUnwrap(rPriv, packet), {
        ok: true,
        publicKey: r.publicKey,
        timestamp: toHex(now.bytes),
        senderIndex: 1000 + i,
      });
    }
  });

  it("a forgery claiming a real victim's public key, valid mac1 and static, but no victim private key → timestamp", () => {
    // The victims are real initiators from the captured vectors; we never had their private keys.
    for (const f of files) {
      const victim = b64(f.initiations[0]!.initiatorPublicKey);
      const gwPub = b64(f.responderPublicKey);
      const forged = buildInitiation({ responderPublic: gwPub, claimedPublic: victim, timestamp: tai64nFromUnixMs(Date.now()).bytes });
      const r = responderFor(f).unwrap(forged);
      assert.equal(reasonOf(r), 'timestamp', f.file);
      // the static key really was decryptable (so this is the last line of defence):
      const ref = nobleUnwrap(b64(f.responderPrivateKey), forged);
      assert.deepEqual(ref, { ok: false, reason: 'timestamp' });
    }
  });

  it('every low-order ephemeral point, with a valid mac1 → ephemeral', () => {
    const base = buildInitiation({ responderPublic: rPub, initiatorPrivate: randomPrivateKey(), timestamp: now.bytes });
    for (const point of lowOrderPoints()) {
      assert.ok(x25519Ladder(rPriv, point).every((b) => b === 0), 'really low order');
      const p = Buffer.from(base);
      p.set(point, 8);
      const fixed = withMac1(p, rPub);
      assert.equal(reasonOf(responder.unwrap(fixed)), 'ephemeral', toHex(point));
      assert.deepEqual(nobleUnwrap(rPriv, fixed), { ok: false, reason: 'ephemeral' });
    }
  });

  it('a correctly encrypted low-order static key → static (the ss DH would be all zeros), or static-noncanonical for the non-canonical spellings', () => {
    const seen = new Set<string>();
    for (const point of lowOrderPoints()) {
      const forged = buildInitiation({ responderPublic: rPub, claimedPublic: point, timestamp: now.bytes });
      const want = isCanonicalU(point) ? 'static' : 'static-noncanonical';
      seen.add(want);
      assert.equal(reasonOf(responder.unwrap(forged)), want, toHex(point));
      assert.deepEqual(nobleUnwrap(rPriv, forged), { ok: false, reason: want });
    }
    assert.deepEqual([...seen].sort(), ['static', 'static-noncanonical'], 'both kinds are in the list');
  });

  describe('non-canonical static keys (issue 8, item 2)', () => {
    const le = (n: bigint): Uint8Array => {
      const out = new Uint8Array(32);
      for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
      return out;
    };
    const P = 2n ** 255n - 19n;

    it('an honest initiator presenting its key with bit 255 set → static-noncanonical (it used to be ok under a second base64)', () => {
      for (let i = 0; i < 5; i++) {
        const iPriv = randomPrivateKey();
        const canonical = publicKeyOfRaw(iPriv);
        const aliased = canonical.slice();
        aliased[31]! |= 0x80;
        // The alias is the same key to X25519 (RFC 7748 §5 masks bit 255), so the initiator really
        // can complete the handshake with it: the timestamp would decrypt.
        assert.equal(toHex(x25519Ladder(rPriv, aliased)), toHex(x25519Ladder(rPriv, canonical)));
        const packet = buildInitiation({ responderPublic: rPub, initiatorPrivate: iPriv, claimedPublic: aliased, timestamp: now.bytes });
        assert.equal(reasonOf(responder.unwrap(packet)), 'static-noncanonical');
        assert.deepEqual(nobleUnwrap(rPriv, packet), { ok: false, reason: 'static-noncanonical' });
        // control: the same initiator with its canonical key verifies
        const honest = buildInitiation({ responderPublic: rPub, initiatorPrivate: iPriv, timestamp: now.bytes });
        const r = responder.unwrap(honest);
        assert.ok(r.ok);
        assert.equal(r.publicKey, Buffer.from(canonical).toString('base64'));
      }
    });

    it('u ≥ 2^255 − 19 (the 19 values p … 2^255 − 1) → static-noncanonical, before the second DH', () => {
      for (let d = 0n; d < 19n; d++) {
        const forged = buildInitiation({ responderPublic: rPub, claimedPublic: le(P + d), timestamp: now.bytes });
        assert.equal(reasonOf(responder.unwrap(forged)), 'static-noncanonical', `p + ${d}`);
      }
      // the largest canonical value is not refused as such: it gets as far as the timestamp
      const edge = buildInitiation({ responderPublic: rPub, claimedPublic: le(P - 2n), timestamp: now.bytes });
      assert.equal(reasonOf(responder.unwrap(edge)), 'timestamp');
    });
  });

  it('an initiation for another responder (valid mac1 for us, static encrypted to someone else) → static', () => {
    const otherPub = publicKeyOfRaw(randomPrivateKey());
    const p = buildInitiation({ responderPublic: otherPub, initiatorPrivate: randomPrivateKey(), timestamp: now.bytes });
    assert.equal(reasonOf(responder.unwrap(p)), 'mac1');
    assert.equal(reasonOf(responder.unwrap(withMac1(p, rPub))), 'static');
  });

  it('mac2 set by an initiator holding a cookie does not change the result', () => {
    const iPriv = randomPrivateKey();
    const p = buildInitiation({ responderPublic: rPub, initiatorPrivate: iPriv, timestamp: now.bytes, mac2: new Uint8Array(16).fill(7) });
    assert.ok(responder.unwrap(p).ok);
  });
});

describe('Responder API', () => {
  it('exposes its public key as base64 and as a fresh copy of the bytes', () => {
    const priv = randomPrivateKey();
    const r = new Responder(priv);
    assert.equal(r.publicKey, Buffer.from(publicKeyOfRaw(priv)).toString('base64'));
    const a = r.publicKeyBytes;
    a.fill(0);
    assert.equal(toHex(r.publicKeyBytes), toHex(publicKeyOfRaw(priv)));
  });

  it('takes the private key as a KeyObject, 32 bytes or base64, as the exported PrivateKeyInput says', () => {
    const priv = randomPrivateKey();
    const want = Buffer.from(publicKeyOfRaw(priv)).toString('base64');
    const der = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), priv]);
    assert.equal(new Responder(priv).publicKey, want);
    assert.equal(new Responder(Buffer.from(priv).toString('base64')).publicKey, want);
    assert.equal(new Responder(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).publicKey, want);
  });

  it('constructor argument errors are ValidationErrors with a path, naming expected and actual lengths/types, never echoing key bytes', () => {
    const short = new Uint8Array(31).fill(0xab);
    assert.throws(() => new Responder(short), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.ok(e instanceof TypeError, 'a ValidationError is a TypeError');
      assert.equal(e.path, 'privateKey');
      assert.equal(e.message, 'privateKey: expected 32 bytes, got 31');
      return true;
    });
    const secretish = Buffer.alloc(33, 0xab).toString('base64'); // 44 characters, not a 32-byte key
    assert.throws(() => new Responder(secretish), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.path, 'privateKey');
      assert.ok(!e.message.includes(secretish.slice(0, 8)), 'no key material in the message');
      assert.doesNotMatch(e.message, /ab|q6ur/i, 'no key material in the message');
      return true;
    });
    assert.throws(() => new Responder(new Uint8Array(64)), { name: 'ValidationError', path: 'privateKey', message: /expected 32 bytes, got 64/ });
    assert.throws(() => new Responder('c2VjcmV0'), { name: 'ValidationError', message: /expected a 44-character base64 key, got 8 characters/ });
    assert.throws(() => new Responder(undefined as unknown as Uint8Array), { name: 'ValidationError', message: /got undefined/ });
    assert.throws(() => new Responder(42 as unknown as Uint8Array), { name: 'ValidationError', message: /got a number/ });
    assert.throws(() => new Responder(generateKeyPairSync('x25519').publicKey), { name: 'ValidationError', message: /public KeyObject/ });
    assert.throws(() => new Responder(generateKeyPairSync('ed25519').privateKey), { name: 'ValidationError', message: /ed25519/ });
    const priv = randomPrivateKey();
    assert.throws(() => new Responder(priv, null as unknown as object), { name: 'ValidationError', path: 'options' });
    assert.throws(() => new Responder(priv, { seenInitiations: new Map() as unknown as SeenInitiations }), {
      name: 'ValidationError',
      path: 'options.seenInitiations',
      message: /expected a SeenInitiations, got a Map/,
    });
  });

  it('unwrap throws a ValidationError (a TypeError) only for a non-Uint8Array argument', () => {
    const r = new Responder(randomPrivateKey());
    for (const bad of [null, undefined, 'x'.repeat(148), [1, 0, 0, 0], 148, new ArrayBuffer(148)]) {
      assert.throws(() => r.unwrap(bad as unknown as Uint8Array), {
        name: 'ValidationError',
        path: 'packet',
        message: /expected the UDP payload as a Uint8Array of 148 bytes/,
      });
    }
    assert.throws(() => r.unwrap(new Uint16Array(74) as unknown as Uint8Array), TypeError);
  });

  it('rejections are plain frozen values', () => {
    const r = new Responder(randomPrivateKey());
    const a = r.unwrap(new Uint8Array(3));
    assert.deepEqual(a, { ok: false, reason: 'size' });
    assert.ok(Object.isFrozen(a));
  });
});
