import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { ValidationError } from '../../../lib/errors.js';
import { Responder, SeenInitiations, tai64nFromUnixMs, type UnwrapResult } from '../../../lib/noise/index.js';
import { INITIATION_LENGTH, INITIATION_OFFSET } from '../../../lib/protocol/initiation.js';
import { buildInitiation, publicKeyOfRaw, randomPrivateKey, withMac1 } from './noble-reference.js';
import { b64, hex, loadVectors } from './vectors.js';

const reasonOf = (r: UnwrapResult): string => (r.ok ? 'ok' : r.reason);

/** An initiation-shaped packet whose ephemeral's first 8 bytes encode `n` (the rest random). */
function shaped(n: number, into: Buffer = Buffer.alloc(INITIATION_LENGTH)): Buffer {
  into[0] = 1;
  into.writeBigUInt64LE(BigInt(n), INITIATION_OFFSET.ephemeral);
  return into;
}

describe('SeenInitiations', () => {
  it('remembers by ephemeral key: has() is false before, true after; remember() says whether it was new', () => {
    const seen = new SeenInitiations({ capacity: 16 });
    const p = shaped(42);
    assert.equal(seen.has(p), false);
    assert.equal(seen.remember(p), true);
    assert.equal(seen.has(p), true);
    assert.equal(seen.remember(p), false, 'a second remember is a hit, not a second entry');
    assert.equal(seen.size, 1);
    assert.equal(seen.has(shaped(43)), false);
  });

  it('a packet with the same ephemeral but any other byte changed is treated as seen (documented: the ephemeral is the identity)', () => {
    const seen = new SeenInitiations({ capacity: 16 });
    const original = Buffer.from(randomBytes(INITIATION_LENGTH));
    original.writeUInt32LE(1, 0);
    seen.remember(original);
    // sender index, static, timestamp, mac1, mac2 — and the ephemeral's bytes after the first 8
    for (const at of [4, 7, 16, 39, 40, 87, 88, 115, 116, 131, 132, 147]) {
      const mutated = Buffer.from(original);
      mutated[at]! ^= 0x5a;
      assert.equal(seen.has(mutated), true, `byte ${at} changed`);
    }
    for (const at of [8, 11, 12, 15]) {
      const mutated = Buffer.from(original);
      mutated[at]! ^= 0x01;
      assert.equal(seen.has(mutated), false, `ephemeral byte ${at} changed: a different initiation`);
    }
  });

  it('evicts the oldest first when full, and a hit does not refresh an entry', () => {
    const seen = new SeenInitiations({ capacity: 3 });
    for (const n of [1, 2, 3]) seen.remember(shaped(n));
    assert.equal(seen.remember(shaped(1)), false, 'hit');
    seen.remember(shaped(4)); // evicts 1 (oldest by insertion), although 1 was just hit
    assert.deepEqual([1, 2, 3, 4].map((n) => seen.has(shaped(n))), [false, true, true, true]);
    seen.remember(shaped(5)); // evicts 2
    seen.remember(shaped(1)); // 1 is new again; evicts 3
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => seen.has(shaped(n))), [true, false, false, true, true]);
    assert.equal(seen.size, 3);
  });

  it('stays at capacity with flat memory across 10^6 distinct initiations, keeping exactly the newest', () => {
    const capacity = 4096;
    const seen = new SeenInitiations({ capacity });
    const packet = shaped(0);
    const total = 1_000_000;
    const before = process.memoryUsage();
    for (let n = 0; n < total; n++) seen.remember(shaped(n, packet));
    const after = process.memoryUsage();
    assert.equal(seen.size, capacity);
    for (const n of [total - 1, total - capacity]) assert.ok(seen.has(shaped(n, packet)), `#${n} is among the newest`);
    for (const n of [0, total / 2, total - capacity - 1]) assert.ok(!seen.has(shaped(n, packet)), `#${n} was evicted`);
    // No allocation per entry: a per-entry string or bigint key would add tens of MB here.
    assert.ok(after.arrayBuffers - before.arrayBuffers < 64 * 1024, `arrayBuffers grew by ${after.arrayBuffers - before.arrayBuffers}`);
    assert.ok(after.heapUsed - before.heapUsed < 4 * 1024 * 1024, `heap grew by ${after.heapUsed - before.heapUsed}`);
  });

  it('agrees with a simple model under random remember/has with heavy index collisions (eviction keeps every entry reachable)', () => {
    for (const capacity of [1, 2, 3, 8, 33]) {
      const seen = new SeenInitiations({ capacity });
      const order: number[] = [];
      const present = new Set<number>();
      const packet = shaped(0);
      let state = 12345;
      const next = (): number => (state = (Math.imul(state, 1103515245) + 12345) >>> 0);
      for (let step = 0; step < 50_000; step++) {
        const n = next() % (capacity * 3);
        if (next() & 1) {
          const isNew = !present.has(n);
          assert.equal(seen.remember(shaped(n, packet)), isNew, `cap ${capacity} step ${step} remember ${n}`);
          if (isNew) {
            if (order.length === capacity) present.delete(order.shift()!);
            order.push(n);
            present.add(n);
          }
        } else {
          assert.equal(seen.has(shaped(n, packet)), present.has(n), `cap ${capacity} step ${step} has ${n}`);
        }
        assert.equal(seen.size, present.size);
      }
    }
  });

  it('has() is false for anything not initiation-shaped; remember() refuses it with a ValidationError', () => {
    const seen = new SeenInitiations();
    const p = shaped(7);
    seen.remember(p);
    const wrongType = Buffer.from(p);
    wrongType[0] = 2;
    for (const bad of [p.subarray(0, 147), Buffer.concat([p, Buffer.alloc(1)]), wrongType, new Uint8Array(0)]) {
      assert.equal(seen.has(bad), false);
      assert.throws(() => seen.remember(bad), { name: 'ValidationError', path: 'packet', message: /expected a 148-byte handshake initiation/ });
    }
    assert.throws(() => seen.remember(wrongType), { message: /got a 148-byte message of another type/ });
    assert.throws(() => seen.remember(p.subarray(0, 100)), { message: /got a 100-byte Buffer/ });
    for (const bad of [null, undefined, 'x'.repeat(148), [1, 0, 0, 0]]) {
      assert.throws(() => seen.has(bad as unknown as Uint8Array), (e: unknown) => e instanceof ValidationError && e.path === 'packet');
      assert.throws(() => seen.remember(bad as unknown as Uint8Array), (e: unknown) => e instanceof ValidationError && e.path === 'packet');
    }
  });

  it('validates its options', () => {
    assert.equal(new SeenInitiations().capacity, SeenInitiations.DEFAULT_CAPACITY);
    assert.equal(new SeenInitiations({ capacity: 1 }).capacity, 1);
    assert.equal(new SeenInitiations({ capacity: SeenInitiations.MAX_CAPACITY }).capacity, SeenInitiations.MAX_CAPACITY);
    for (const capacity of [0, -1, 1.5, Number.NaN, Infinity, SeenInitiations.MAX_CAPACITY + 1, '10']) {
      assert.throws(() => new SeenInitiations({ capacity: capacity as number }), { name: 'ValidationError', path: 'options.capacity' });
    }
    assert.throws(() => new SeenInitiations(null as unknown as object), { name: 'ValidationError', path: 'options' });
  });

  it('clear() forgets everything', () => {
    const seen = new SeenInitiations({ capacity: 4 });
    for (let n = 0; n < 6; n++) seen.remember(shaped(n));
    seen.clear();
    assert.equal(seen.size, 0);
    for (let n = 0; n < 6; n++) assert.equal(seen.has(shaped(n)), false);
    assert.equal(seen.remember(shaped(5)), true);
  });
});

describe('Responder with seenInitiations: replays refused before any DH (issue 8, item 1)', () => {
  const [file] = loadVectors();
  assert.ok(file);
  const rPriv = b64(file.responderPrivateKey);
  const rPub = b64(file.responderPublicKey);
  const real = file.initiations.map((v) => hex(v.packet));

  it('a replayed real initiation is refused as replay; without the cache it verifies again (the old cost: two DHs)', () => {
    const plain = new Responder(rPriv);
    const guarded = new Responder(rPriv, { seenInitiations: new SeenInitiations() });
    const packet = real[0]!;
    assert.ok(plain.unwrap(packet).ok);
    assert.ok(plain.unwrap(packet).ok, 'control: a replay verifies when nothing remembers it');
    assert.ok(guarded.unwrap(packet).ok, 'first arrival verifies');
    for (let i = 0; i < 3; i++) assert.equal(reasonOf(guarded.unwrap(packet)), 'replay');
    // the other, fresh initiations still verify
    for (const p of real.slice(1)) assert.ok(guarded.unwrap(p).ok);
  });

  it('a replay with a changed sender index and recomputed mac1 (anyone with our public key can do this) is still a replay', () => {
    const guarded = new Responder(rPriv, { seenInitiations: new SeenInitiations() });
    const packet = real[0]!;
    assert.ok(guarded.unwrap(packet).ok);
    const mutated = Buffer.from(packet);
    mutated.writeUInt32LE((mutated.readUInt32LE(4) ^ 0xdeadbeef) >>> 0, 4);
    const resigned = withMac1(mutated, rPub);
    assert.ok(new Responder(rPriv).unwrap(resigned).ok, 'control: without the cache it verifies, with the new index');
    assert.equal(reasonOf(guarded.unwrap(resigned)), 'replay');
  });

  it('the replay check runs after mac1: junk that fails mac1 is never remembered and cannot evict', () => {
    const seen = new SeenInitiations({ capacity: 2 });
    const guarded = new Responder(rPriv, { seenInitiations: seen });
    assert.ok(guarded.unwrap(real[0]!).ok);
    for (let i = 0; i < 100; i++) {
      const junk = Buffer.from(randomBytes(INITIATION_LENGTH));
      junk.writeUInt32LE(1, 0);
      assert.equal(reasonOf(guarded.unwrap(junk)), 'mac1');
    }
    assert.equal(seen.size, 1);
    assert.equal(reasonOf(guarded.unwrap(real[0]!)), 'replay', 'still remembered');
  });

  it('an initiation that passed mac1 but failed later is remembered too: its replay would cost a DH again', () => {
    const guarded = new Responder(rPriv, { seenInitiations: new SeenInitiations() });
    const staticJunk = Buffer.from(randomBytes(INITIATION_LENGTH));
    staticJunk.writeUInt32LE(1, 0);
    const signed = withMac1(staticJunk, rPub);
    assert.equal(reasonOf(guarded.unwrap(signed)), 'static');
    assert.equal(reasonOf(guarded.unwrap(signed)), 'replay');
    const forged = buildInitiation({ responderPublic: rPub, claimedPublic: b64(file.initiations[0]!.initiatorPublicKey), timestamp: tai64nFromUnixMs(Date.now()).bytes });
    assert.equal(reasonOf(guarded.unwrap(forged)), 'timestamp');
    assert.equal(reasonOf(guarded.unwrap(forged)), 'replay');
  });

  it('one cache shared by two responders (a key rotation) refuses a replay to either', () => {
    const seen = new SeenInitiations();
    const oldKey = new Responder(rPriv, { seenInitiations: seen });
    const newPriv = randomPrivateKey();
    const newKey = new Responder(newPriv, { seenInitiations: seen });
    const fresh = buildInitiation({ responderPublic: publicKeyOfRaw(newPriv), initiatorPrivate: randomPrivateKey(), timestamp: tai64nFromUnixMs(Date.now()).bytes });
    assert.equal(reasonOf(oldKey.unwrap(fresh)), 'mac1', 'not for the old key: not remembered');
    assert.ok(newKey.unwrap(fresh).ok);
    assert.equal(reasonOf(newKey.unwrap(fresh)), 'replay');
    assert.ok(oldKey.unwrap(real[0]!).ok);
    assert.equal(reasonOf(oldKey.unwrap(real[0]!)), 'replay');
  });
});
