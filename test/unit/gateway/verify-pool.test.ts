/**
 * VerifierPool (lib/gateway/verify-pool.ts): the same results as the synchronous Verifier on the
 * real vectors and on forged and damaged packets, one message per thread per turn, the
 * outstanding bound, a killed thread, stop(), and the event-loop mode's time budget.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { ValidationError } from '../../../lib/errors.js';
import { Verifier, type VerifyResult } from '../../../lib/gateway/verify.js';
import { EventLoopVerification } from '../../../lib/gateway/verify-on-event-loop.js';
import { VerifierPool, defaultVerifyThreads, verifierPoolTuning, type VerifierPoolOptions } from '../../../lib/gateway/verify-pool.js';
import { Responder } from '../../../lib/noise/responder.js';
import { SeenInitiations } from '../../../lib/noise/seen-initiations.js';
import { tai64nFromUnixMs } from '../../../lib/noise/tai64n.js';
import { buildInitiation, lowOrderPoints, randomPrivateKey, withMac1 } from '../noise/noble-reference.js';
import { loadVectors } from '../noise/vectors.js';
import { FakeKernel, TestClient } from './support/fakes.js';

const pools: VerifierPool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.stop()));
});

function pool(options: Omit<VerifierPoolOptions, 'seen'> & { seen?: SeenInitiations }): VerifierPool {
  const p = new VerifierPool({ seen: new SeenInitiations(), warmUp: 0, ...options });
  pools.push(p);
  return p;
}

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Every kind of packet a gateway sees, for the responder whose public key is `responderPublic`. */
function mixedPackets(responderPublic: Uint8Array, real: Uint8Array[]): Uint8Array[] {
  const client = new TestClient(Buffer.from(responderPublic).toString('base64'));
  const packets: Uint8Array[] = [...real];
  packets.push(real[0]!, Uint8Array.from(real[0]!)); // replays of the first, one a copy
  const senderChanged = Uint8Array.from(real[1]!);
  senderChanged[4]! ^= 0xff; // a changed sender index with a recomputed mac1: still the same handshake
  packets.push(withMac1(senderChanged, responderPublic));
  for (let i = 0; i < 4; i++) packets.push(client.forgery());
  for (let i = 0; i < 4; i++) {
    const junk = new Uint8Array(randomBytes(148)); // not a Buffer: withMac1's slice() must copy
    junk.set([1, 0, 0, 0]);
    packets.push(junk, withMac1(junk, responderPublic)); // mac1 wrong; mac1 right, body junk
  }
  packets.push(real[2]!.subarray(0, 147), Uint8Array.from([2, 0, 0, 0, ...real[2]!.subarray(4)]), new Uint8Array(0));
  for (const point of lowOrderPoints().slice(0, 3)) {
    const p = Uint8Array.from(client.initiation());
    p.set(point, 8);
    packets.push(withMac1(p, responderPublic));
  }
  packets.push(buildInitiation({
    responderPublic, initiatorPrivate: randomPrivateKey(), claimedPublic: new Uint8Array(32).fill(0xff).fill(0x7f, 31),
    timestamp: tai64nFromUnixMs(Date.now()).bytes,
  }));
  for (let i = 0; i < 3; i++) packets.push(client.initiation());
  return packets;
}

function syncResults(privateKey: string | Uint8Array, packets: Uint8Array[]): VerifyResult[] {
  const verifier = new Verifier(new Responder(privateKey), new SeenInitiations());
  return packets.map((p) => verifier.verify(p));
}

describe('VerifierPool: the same results as Verifier', () => {
  for (const vectors of loadVectors()) {
    const responder = new Responder(vectors.responderPrivateKey);
    const real = vectors.initiations.map((i) => Buffer.from(i.packet, 'hex'));
    const packets = mixedPackets(responder.publicKeyBytes, real);
    const want = syncResults(vectors.responderPrivateKey, packets);

    for (const threads of [0, 2]) {
      it(`${vectors.file}: ${packets.length} real, replayed, forged and damaged packets, threads: ${threads}`, async () => {
        const verifier = pool({ privateKey: vectors.responderPrivateKey, threads });
        const got = await Promise.all(packets.map((p) => verifier.verify(p)));
        assert.deepEqual(got, want);
        const reasons = new Set(want.map((r) => (r.ok ? 'ok' : r.reason === 'unauthenticated' ? r.detail : r.reason)));
        for (const r of ['ok', 'replayed-packet', 'size', 'type', 'mac1', 'ephemeral', 'static', 'static-noncanonical', 'timestamp']) {
          assert.ok(reasons.has(r), `the packets exercise ${r}`);
        }
        for (const [i, vector] of vectors.initiations.entries()) {
          const r = got[i]!;
          assert.ok(r.ok && r.publicKey === vector.initiatorPublicKey, `vector ${i} authenticates its initiator`);
        }
      });
    }
  }

  it('remembers every packet past mac1, whatever its outcome, and none that failed it', async () => {
    const kernel = new FakeKernel();
    const seen = new SeenInitiations();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1, seen });
    const client = new TestClient(kernel.publicKey);
    const junk = randomBytes(148);
    junk.set([1, 0, 0, 0]);
    const packets = [client.initiation(), client.forgery(), junk];
    await Promise.all(packets.map((p) => verifier.verify(p)));
    assert.deepEqual(packets.map((p) => seen.has(p)), [true, true, false]);
  });

  it('refuses a copy that arrives while the first is being verified as a replay, without a second verification', async () => {
    const kernel = new FakeKernel();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1 });
    const packet = new TestClient(kernel.publicKey).initiation();
    const first = verifier.verify(packet);
    await immediate(); // the first is with the thread now
    const copies = await Promise.all(Array.from({ length: 50 }, () => verifier.verify(packet)));
    assert.ok((await first).ok);
    assert.ok(copies.every((r) => !r.ok && r.reason === 'replayed-packet'));
    assert.equal(verifier.stats().batches, 1, 'the copies never reached a thread');
  });

  it('copies the packet: the caller may reuse its buffer at once', async () => {
    const kernel = new FakeKernel();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1 });
    const client = new TestClient(kernel.publicKey);
    const buffer = Uint8Array.from(client.initiation());
    const result = verifier.verify(buffer);
    buffer.set(client.forgery());
    assert.equal((await result).ok && (await result as { publicKey: string }).publicKey, client.publicKey);
  });
});

describe('VerifierPool: batching', () => {
  it('posts the packets asked for in one turn as one message per thread, spread over the threads', async () => {
    const kernel = new FakeKernel();
    // A budget no loaded machine exhausts: the mac1 prechecks of the turn then fit one drain.
    const verifier = pool({ privateKey: kernel.privateKey, threads: 2, turnBudgetMs: 1000 });
    const client = new TestClient(kernel.publicKey);
    await verifier.verify(client.initiation()); // threads up
    const posted = verifier.workersForTest().map(() => 0);
    verifier.workersForTest().forEach((worker, i) => {
      const post = worker.postMessage.bind(worker);
      worker.postMessage = (message: unknown, transfer?: readonly import('node:worker_threads').TransferListItem[]) => {
        posted[i]!++;
        post(message, transfer);
      };
    });
    const before = verifier.stats().batches;
    const packets = Array.from({ length: 200 }, () => client.forgery());
    const results = await Promise.all(packets.map((p) => verifier.verify(p)));
    assert.ok(results.every((r) => !r.ok && r.reason === 'unauthenticated' && r.detail === 'timestamp'));
    assert.deepEqual(posted, [1, 1], 'one message to each thread');
    assert.equal(verifier.stats().batches - before, 2);
  });

  it('posts one message per turn to a single thread, however many packets the turn asked for', async () => {
    const kernel = new FakeKernel();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1 });
    const client = new TestClient(kernel.publicKey);
    const first = await Promise.all(Array.from({ length: 100 }, () => verifier.verify(client.initiation())));
    assert.ok(first.every((r) => r.ok));
    assert.equal(verifier.stats().batches, 1);
    for (let turn = 0; turn < 3; turn++) {
      await immediate();
      assert.ok((await verifier.verify(client.initiation())).ok);
    }
    assert.equal(verifier.stats().batches, 4, 'three turns of one packet: three more messages');
  });
});

describe('VerifierPool: a tiny turn budget', () => {
  it('still gives every result, prechecks and replies spread over turns', async () => {
    const kernel = new FakeKernel();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1, turnBudgetMs: 0.1 });
    const client = new TestClient(kernel.publicKey);
    const packets = [...Array.from({ length: 150 }, () => client.forgery()), ...Array.from({ length: 50 }, () => client.initiation())];
    const results = await Promise.all(packets.map((p) => verifier.verify(p)));
    assert.equal(results.slice(0, 150).filter((r) => !r.ok && r.reason === 'unauthenticated' && r.detail === 'timestamp').length, 150);
    assert.ok(results.slice(150).every((r) => r.ok && r.publicKey === client.publicKey));
  });
});

describe('VerifierPool: bounded', () => {
  it('refuses beyond maxOutstanding with verify-overloaded, at once and without remembering, and serves again after', async () => {
    const kernel = new FakeKernel();
    const seen = new SeenInitiations();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1, maxOutstanding: 50, seen });
    const client = new TestClient(kernel.publicKey);
    const packets = Array.from({ length: 500 }, () => client.forgery());
    const pending = packets.map((p) => verifier.verify(p));
    assert.equal(verifier.stats().outstanding, 50);
    const results = await Promise.all(pending);
    const overloaded = results.filter((r) => !r.ok && r.reason === 'verify-overloaded').length;
    assert.equal(overloaded, 450);
    assert.equal(results.slice(0, 50).filter((r) => !r.ok && r.reason === 'unauthenticated').length, 50);
    assert.equal(verifier.stats().outstanding, 0);
    assert.equal(verifier.stats().overloaded, 450);
    assert.equal(seen.size, 50, 'only the verified ones are remembered');
    const again = await verifier.verify(packets[499]!);
    assert.deepEqual(again, { ok: false, reason: 'unauthenticated', detail: 'timestamp' }, 'an overloaded packet is verified when asked again');
  });

  it('replays never count against the bound, and junk never reaches a thread', async () => {
    const kernel = new FakeKernel();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1, maxOutstanding: 2 });
    const client = new TestClient(kernel.publicKey);
    const known = client.initiation();
    assert.ok((await verifier.verify(known)).ok);
    const batches = verifier.stats().batches;
    const held = [verifier.verify(client.initiation()), verifier.verify(client.initiation())];
    assert.deepEqual(await verifier.verify(known), { ok: false, reason: 'replayed-packet' }, 'refused in the call, bound or not');
    assert.deepEqual(await verifier.verify(client.forgery()), { ok: false, reason: 'verify-overloaded' });
    assert.ok((await Promise.all(held)).every((r) => r.ok));
    const junk = Array.from({ length: 100 }, () => {
      const p = new Uint8Array(randomBytes(148));
      p.set([1, 0, 0, 0]);
      return p;
    });
    for (let i = 0; i < junk.length; i += 2) {
      const results = await Promise.all([verifier.verify(junk[i]!), verifier.verify(junk[i + 1]!)]);
      assert.ok(results.every((r) => !r.ok && r.reason === 'unauthenticated' && r.detail === 'mac1'));
    }
    assert.equal(verifier.stats().batches, batches + 1, 'only the two honest ones were posted');
  });

  it('checks mac1 in slices of the budget, so a turn full of packets does not stall on them', async () => {
    const kernel = new FakeKernel();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1, turnBudgetMs: 0.1 });
    const junk = Array.from({ length: 3000 }, () => {
      const p = new Uint8Array(randomBytes(148));
      p.set([1, 0, 0, 0]);
      return p;
    });
    let turns = 0;
    let working = true;
    const tick = () => {
      turns++;
      if (working) setImmediate(tick);
    };
    setImmediate(tick);
    const results = await Promise.all(junk.map((p) => verifier.verify(p)));
    working = false;
    assert.ok(results.every((r) => !r.ok && r.reason === 'unauthenticated' && r.detail === 'mac1'));
    assert.ok(turns >= 4, `other work ran in ${turns} turns while the 3,000 mac1 checks went on`);
  });
});

describe('VerifierPool: a thread that dies', () => {
  it('settles its packets as verify-failed, reports it, and a replacement serves', async () => {
    const kernel = new FakeKernel();
    const errors: Array<[string, unknown]> = [];
    const verifier = pool({ privateKey: kernel.privateKey, threads: 1, onError: (code, error) => errors.push([code, error]) });
    const client = new TestClient(kernel.publicKey);
    assert.ok((await verifier.verify(client.initiation())).ok);
    const [worker] = verifier.workersForTest();
    const pending = Array.from({ length: 300 }, () => verifier.verify(client.forgery()));
    await immediate(); // posted
    await worker!.terminate();
    const results = await Promise.all(pending);
    const failed = results.filter((r) => !r.ok && r.reason === 'verify-failed');
    assert.ok(failed.length > 0, 'the packets the thread held are settled, not lost');
    assert.ok(results.every((r) => !r.ok && (r.reason === 'verify-failed' ? r.detail === 'thread-exit' : r.reason === 'unauthenticated')));
    assert.deepEqual(errors.map(([code]) => code), ['ERR_JITGUARD_VERIFY_THREAD_EXIT']);
    assert.match(String((errors[0]![1] as Error).message), /exited with code/);
    assert.notEqual(verifier.workersForTest()[0], worker, 'replaced');
    const next = await verifier.verify(client.initiation());
    assert.ok(next.ok && next.publicKey === client.publicKey, 'the replacement verifies');
    assert.equal(verifier.stats().threadExits, 1);
    assert.equal(verifier.stats().mode, 'threads');
  });
});

describe('VerifierPool: stop()', () => {
  for (const threads of [0, 1]) {
    it(`settles every outstanding verification as stopping, and every later one (threads: ${threads})`, async () => {
      const kernel = new FakeKernel();
      const verifier = pool({ privateKey: kernel.privateKey, threads });
      const client = new TestClient(kernel.publicKey);
      if (threads > 0) assert.ok((await verifier.verify(client.initiation())).ok);
      const posted = Array.from({ length: 200 }, () => verifier.verify(client.forgery()));
      await immediate(); // these went to the backend
      const notYetPosted = Array.from({ length: 20 }, () => verifier.verify(client.forgery()));
      await verifier.stop();
      const results = await Promise.all([...posted, ...notYetPosted]);
      assert.equal(results.length, 220);
      assert.ok(results.slice(200).every((r) => !r.ok && r.reason === 'stopping'));
      assert.ok(results.every((r) => !r.ok && (r.reason === 'stopping' || r.reason === 'unauthenticated')));
      assert.deepEqual(await verifier.verify(client.initiation()), { ok: false, reason: 'stopping' });
      assert.deepEqual(verifier.workersForTest().length, 0, 'no thread left');
      await verifier.stop(); // idempotent
    });
  }
});

describe('VerifierPool: on the event loop (threads: 0)', () => {
  it('verifies in slices of the budget on its clock, and lets other callbacks run between slices', async () => {
    // A fake clock that moves 1 ms each time it is read: a slice reads it once at its start and
    // once after each verification, so a 5 ms budget holds exactly 5 verifications whatever the
    // machine's speed or load (the stall this gives in real time is the bench's to measure:
    // bench/gateway/verify-pool.ts).
    const kernel = new FakeKernel();
    const client = new TestClient(kernel.publicKey);
    let clock = 0;
    const backend = new EventLoopVerification({
      responder: new Responder(kernel.privateKey), seen: new SeenInitiations(),
      budgetMs: 5, warmUp: 0, onWarmedUp: () => assert.fail('no warm-up was asked for'), now: () => clock++,
    });
    const results: VerifyResult[] = [];
    const settledAtSlice: number[] = [];
    const pending = Array.from({ length: 200 }, () => ({
      packet: client.forgery(), prechecked: false,
      settle: (r: VerifyResult) => { results.push(r); settledAtSlice.push(backend.slices); },
    }));
    // Another callback chain on the same queue: it must get a turn between every two slices.
    let otherTurns = 0;
    let othersBetweenSlices = 0;
    let lastSlice = 0;
    const other = (): void => {
      otherTurns++;
      if (backend.slices > lastSlice) { othersBetweenSlices++; lastSlice = backend.slices; }
      if (results.length < 200) setImmediate(other);
    };
    backend.submit(pending);
    setImmediate(other);
    while (results.length < 200) await immediate();
    assert.ok(results.every((r) => !r.ok && r.reason === 'unauthenticated' && r.detail === 'timestamp'));
    assert.equal(backend.slices, 40, '200 verifications, 5 a slice');
    const perSlice = new Map<number, number>();
    for (const s of settledAtSlice) perSlice.set(s, (perSlice.get(s) ?? 0) + 1);
    assert.deepEqual([...perSlice.values()], Array(40).fill(5));
    assert.ok(othersBetweenSlices >= 39, `the other chain ran after ${othersBetweenSlices} of 40 slices (${otherTurns} turns)`);
    assert.equal(backend.queued, 0);
    await backend.stop();
  });

  it('gives its slices to the warm-up until it is primed: the first packet waits for every primitive call and build', async () => {
    const kernel = new FakeKernel();
    const client = new TestClient(kernel.publicKey);
    const reports: Array<[number, string | null]> = [];
    // A zero budget: exactly one call of the warm-up's plan, or one packet, a slice.
    const backend = new EventLoopVerification({
      responder: new Responder(kernel.privateKey), seen: new SeenInitiations(),
      budgetMs: 0, warmUp: 3, onWarmedUp: (r) => reports.push([r.verifications, r.failure]),
    });
    let result: VerifyResult | undefined;
    let settledAtSlice = -1;
    backend.submit([{ packet: client.initiation(), prechecked: false, settle: (r) => { result = r; settledAtSlice = backend.slices; } }]);
    while (result === undefined) await immediate();
    // lib/noise/warm-up.ts: 380 primitive calls, then min(8, 3) builds; the packet the slice after.
    assert.equal(settledAtSlice, 380 + 3 + 1);
    assert.equal(result.ok, true);
    while (reports.length === 0) await immediate();
    assert.deepEqual(reports, [[3, null]], 'the warm-up\'s verifications come after the packet');
    assert.equal(backend.slices, 380 + 3 + 1 + 3);
    await backend.stop();
  });

  it('a pool without threads verifies on the event loop, in more than one turn', async () => {
    const kernel = new FakeKernel();
    const client = new TestClient(kernel.publicKey);
    const verifier = pool({ privateKey: kernel.privateKey, threads: 0, turnBudgetMs: 0.1 });
    let turns = 0;
    let done = false;
    const count = (): void => { turns++; if (!done) setImmediate(count); };
    setImmediate(count);
    const results = await Promise.all(Array.from({ length: 20 }, () => verifier.verify(client.forgery())));
    done = true;
    assert.ok(results.every((r) => !r.ok && r.reason === 'unauthenticated' && r.detail === 'timestamp'));
    assert.equal(verifier.stats().mode, 'event-loop');
    // One verification (two X25519) takes far longer than 0.1 ms on any machine: one a turn.
    assert.ok(turns >= 10, `other callbacks ran ${turns} times while 20 verifications went on`);
  });

  it('warms up in the same slices, and reports it', async () => {
    const kernel = new FakeKernel();
    const verifier = pool({ privateKey: kernel.privateKey, threads: 0, warmUp: 40 });
    for (let i = 0; i < 200 && verifier.stats().warmUps.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(verifier.stats().warmUps.map((w) => [w.verifications, w.failure]), [[40, null]]);
  });
});

describe('VerifierPool: options and arguments', () => {
  const kernel = new FakeKernel();

  it('defaults to no thread on two cores or fewer, else one thread fewer than the cores, at most 4', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 8, 64].map((cores) => defaultVerifyThreads(cores)), [0, 0, 2, 3, 4, 4, 4]);
  });

  it('warms every thread up at start and reports each', async () => {
    const verifier = pool({ privateKey: kernel.privateKey, threads: 2, warmUp: 30 });
    for (let i = 0; i < 1000 && verifier.stats().warmUps.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(verifier.stats().warmUps.map((w) => [w.verifications, w.failure]), [[30, null], [30, null]]);
    assert.equal(verifier.stats().precheckWarmUp?.checks, 30, 'and the event loop\'s mac1 as often');
  });

  it('refuses bad options with a ValidationError naming the option', () => {
    const seen = new SeenInitiations();
    const cases: Array<[Partial<VerifierPoolOptions>, string]> = [
      [{ threads: -1 }, 'options.threads'], [{ threads: 1.5 }, 'options.threads'], [{ threads: 65 }, 'options.threads'],
      [{ maxOutstanding: 0 }, 'options.maxOutstanding'], [{ turnBudgetMs: 0 }, 'options.turnBudgetMs'],
      [{ warmUp: -1 }, 'options.warmUp'], [{ onError: 'x' as never }, 'options.onError'],
      [{ seen: {} as never }, 'options.seen'], [{ privateKey: 'not a key' }, 'options.privateKey'],
    ];
    for (const [options, path] of cases) {
      assert.throws(() => new VerifierPool({ privateKey: kernel.privateKey, seen, threads: 0, ...options }), (e: unknown) => e instanceof ValidationError && e.path === path, path);
    }
  });

  it('verifierPoolTuning fills in the defaults and names the path of a bad field (for Gateway\'s constructor)', () => {
    assert.deepEqual(verifierPoolTuning(undefined, 'options.verify'), { threads: defaultVerifyThreads(), maxOutstanding: 4096, turnBudgetMs: 5, warmUp: 40 });
    assert.deepEqual(verifierPoolTuning({ threads: 0, turnBudgetMs: 2 }), { threads: 0, maxOutstanding: 4096, turnBudgetMs: 2, warmUp: 40 });
    assert.throws(() => verifierPoolTuning({ maxOutstanding: -5 }, 'options.verify'), (e: unknown) => e instanceof ValidationError && e.path === 'options.verify.maxOutstanding');
    assert.throws(() => verifierPoolTuning(3, 'options.verify'), (e: unknown) => e instanceof ValidationError && e.path === 'options.verify');
  });

  it('rejects a packet that is not a Uint8Array with a ValidationError', async () => {
    const verifier = pool({ privateKey: kernel.privateKey, threads: 0 });
    await assert.rejects(verifier.verify('x' as never), ValidationError);
  });

  it('never puts the private key in an error', () => {
    const raw = new Uint8Array(32).fill(7);
    try {
      new VerifierPool({ privateKey: Buffer.from(raw).toString('base64').slice(0, 40), seen: new SeenInitiations(), threads: 0 });
      assert.fail('expected a ValidationError');
    } catch (error) {
      assert.ok(error instanceof ValidationError);
      assert.ok(!String(error.message).includes(Buffer.from(raw).toString('base64').slice(0, 20)));
    }
  });
});
