/**
 * Noise responder benchmark: verified initiations per second on one core, rejects per second at
 * each stage (including a replay refused by SeenInitiations before any DH, goal ≤ 2 µs), and the
 * physical floor — two native X25519 operations per verify — measured in the same run. Run: `node --import tsx bench/noise.ts [--quick]`.
 * Prints a table and writes bench/results/noise-<YYYY-MM-DD>.json.
 *
 * Inputs are real initiations from test/vectors/wireguard-go.json (see test/vectors/README.md);
 * forged and damaged ones are built with the noble reference in test/unit/noise.
 */
import { createPublicKey, diffieHellman, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, arch, platform, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Responder, SeenInitiations, tai64nFromUnixMs, type UnwrapResult } from '../lib/noise/index.js';
import { Mac1 } from '../lib/noise/blake2s.js';
import { privateKeyObject } from '../lib/keys.js';
import { buildInitiation, lowOrderPoints, nobleUnwrap, publicKeyOfRaw, randomPrivateKey, withMac1 } from '../test/unit/noise/noble-reference.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const SLICE_MS = 25;
const SLICES = QUICK ? 12 : 120; // per case: 3 s of measurement in 25 ms slices

interface Vectors {
  responderPrivateKey: string;
  responderPublicKey: string;
  initiations: { packet: string; initiatorPublicKey: string }[];
}
const vec = JSON.parse(readFileSync(join(HERE, '../test/vectors/wireguard-go.json'), 'utf8')) as Vectors;
const rPriv = Buffer.from(vec.responderPrivateKey, 'base64');
const rPub = Buffer.from(vec.responderPublicKey, 'base64');
const responder = new Responder(rPriv);
const real = vec.initiations.map((i) => Buffer.from(i.packet, 'hex'));

/** Runs `fn` (batches of 16 calls) for `ms` milliseconds; returns calls per second. */
function timed(fn: (i: number) => unknown, ms: number, start: number): number {
  let n = 0;
  let i = start;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let j = 0; j < 16; j++) fn(i++);
    n += 16;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

function expectAll(packets: Uint8Array[], want: string, by: Responder = responder): void {
  for (const p of packets) {
    const r: UnwrapResult = by.unwrap(p);
    const got = r.ok ? 'ok' : r.reason;
    if (got !== want) throw new Error(`bench input expected ${want}, got ${got}`);
  }
}

// ---- inputs for each stage ----------------------------------------------------------------
const N = 64;
const sizeRejects = Array.from({ length: N }, (_, k) => real[k % real.length]!.subarray(0, 147));
const typeRejects = Array.from({ length: N }, (_, k) => {
  const p = Buffer.from(real[k % real.length]!);
  p[0] = 2;
  return p;
});
const mac1Rejects = Array.from({ length: N }, () => {
  const p = randomBytes(148);
  p.writeUInt32LE(1, 0);
  return p;
});
const ephemeralRejects = lowOrderPoints().map((point, k) => {
  const p = Buffer.from(real[k % real.length]!);
  p.set(point, 8);
  return withMac1(p, rPub);
});
const staticRejects = Array.from({ length: N }, () => {
  const p = randomBytes(148);
  p.writeUInt32LE(1, 0);
  return withMac1(p, rPub);
});
const now = tai64nFromUnixMs(Date.now()).bytes;
const timestampRejects = Array.from({ length: 16 }, (_, k) =>
  buildInitiation({
    responderPublic: rPub,
    claimedPublic: Buffer.from(vec.initiations[k % vec.initiations.length]!.initiatorPublicKey, 'base64'),
    timestamp: now,
  }),
);
// Replays: every real initiation once through a responder with a replay cache, then again.
const seen = new SeenInitiations();
const guarded = new Responder(rPriv, { seenInitiations: seen });
expectAll(real, 'ok', guarded);
expectAll(real, 'replay', guarded);
// An honest initiator presenting its key with bit 255 set (the same key to X25519).
const noncanonicalRejects = Array.from({ length: 16 }, () => {
  const iPriv = randomPrivateKey();
  const alias = publicKeyOfRaw(iPriv);
  alias[31]! |= 0x80;
  return buildInitiation({ responderPublic: rPub, initiatorPrivate: iPriv, claimedPublic: alias, timestamp: tai64nFromUnixMs(Date.now()).bytes });
});
expectAll(real, 'ok');
expectAll(noncanonicalRejects, 'static-noncanonical');
expectAll(sizeRejects, 'size');
expectAll(typeRejects, 'type');
expectAll(mac1Rejects, 'mac1');
expectAll(ephemeralRejects, 'ephemeral');
expectAll(staticRejects, 'static');
expectAll(timestampRejects, 'timestamp');

// ---- the floor: native X25519 --------------------------------------------------------------
const privKO = privateKeyObject(rPriv);
const peerKOs = real.map((p) =>
  createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: p.subarray(8, 40).toString('base64url') }, format: 'jwk' }),
);
const mac1 = new Mac1(Buffer.from(randomBytes(32)));
const macOut = new Uint8Array(16);

const cases: { name: string; what: string; fn: (i: number) => unknown }[] = [
  { name: 'verify (ok)', what: 'real wireguard-go initiations, full unwrap', fn: (i) => responder.unwrap(real[i % real.length]!) },
  { name: 'reject size', what: '147-byte payload', fn: (i) => responder.unwrap(sizeRejects[i % N]!) },
  { name: 'reject type', what: 'type byte 2', fn: (i) => responder.unwrap(typeRejects[i % N]!) },
  { name: 'reject mac1', what: 'random 148 bytes with header 01 00 00 00', fn: (i) => responder.unwrap(mac1Rejects[i % N]!) },
  { name: 'reject ephemeral', what: 'low-order ephemeral, valid mac1', fn: (i) => responder.unwrap(ephemeralRejects[i % ephemeralRejects.length]!) },
  { name: 'reject replay', what: 'real initiation already seen (Responder with seenInitiations): mac1 + lookup, no DH', fn: (i) => guarded.unwrap(real[i % real.length]!) },
  { name: 'SeenInitiations.has (hit)', what: 'the lookup alone', fn: (i) => seen.has(real[i % real.length]!) },
  { name: 'reject static', what: 'random body, valid mac1 (a flood that knows our public key)', fn: (i) => responder.unwrap(staticRejects[i % N]!) },
  { name: 'reject static-noncanonical', what: 'honest initiator, static key with bit 255 set (one DH)', fn: (i) => responder.unwrap(noncanonicalRejects[i % 16]!) },
  { name: 'reject timestamp', what: "forgery claiming a real victim's key", fn: (i) => responder.unwrap(timestampRejects[i % 16]!) },
  { name: 'X25519 native (KeyObjects ready)', what: 'crypto.diffieHellman only', fn: (i) => diffieHellman({ privateKey: privKO, publicKey: peerKOs[i % peerKOs.length]! }) },
  {
    name: 'X25519 native + JWK import',
    what: 'what unwrap pays per DH',
    fn: (i) =>
      diffieHellman({
        privateKey: privKO,
        publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: real[i % real.length]!.subarray(8, 40).toString('base64url') }, format: 'jwk' }),
      }),
  },
  { name: 'mac1 alone (keyed BLAKE2s-128)', what: 'Mac1.computeInto over 116 bytes', fn: (i) => mac1.computeInto(macOut, real[i % real.length]!, 0, 116) },
];

const results: Record<string, { opsPerSec: number; usPerOp: number; slices: number; medianSliceOpsPerSec: number; what: string }> = {};
// Warm every case up first (JIT, GC steady state), then measure in many short slices taken
// round-robin over all cases, so that noise from other work on the machine (shared cores)
// falls on every case alike and the ratios between cases stay meaningful.
for (const c of cases) timed(c.fn, QUICK ? 200 : 800, 0);
const acc = new Map<string, { n: number; ms: number; slices: number[] }>(cases.map((c) => [c.name, { n: 0, ms: 0, slices: [] }]));
for (let r = 0; r < SLICES; r++) {
  for (const c of cases) {
    const a = acc.get(c.name)!;
    const ops = timed(c.fn, SLICE_MS, r * 10_000);
    a.slices.push(ops);
    a.ms += SLICE_MS;
    a.n += (ops * SLICE_MS) / 1000;
  }
}
for (const c of cases) {
  const a = acc.get(c.name)!;
  const ops = (a.n * 1000) / a.ms;
  const sorted = [...a.slices].sort((x, y) => x - y);
  results[c.name] = { opsPerSec: ops, usPerOp: 1e6 / ops, slices: a.slices.length, medianSliceOpsPerSec: sorted[sorted.length >> 1]!, what: c.what };
  process.stderr.write(`  ${c.name}: ${Math.round(ops)} ops/s\n`);
}
// The pure-noble reference (cross-check implementation), briefly: it is ~1000x slower.
{
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < (QUICK ? 300 : 1500)) {
    nobleUnwrap(rPriv, real[n % real.length]!);
    n++;
  }
  const ops = n / ((performance.now() - t0) / 1000);
  results['verify, pure-noble reference'] = { opsPerSec: ops, usPerOp: 1e6 / ops, slices: 1, medianSliceOpsPerSec: ops, what: 'test/unit/noise/noble-reference.ts (measured alone)' };
}

const verify = results['verify (ok)']!.opsPerSec;
const dhOps = results['X25519 native (KeyObjects ready)']!.opsPerSec;
const floor = dhOps / 2;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const rows = Object.entries(results).map(([name, r]) => ({
  name,
  opsPerSec: fmt(r.opsPerSec),
  usPerOp: r.usPerOp.toFixed(2),
  vsVerify: (r.opsPerSec / verify).toFixed(2) + '×',
}));
const w = [38, 12, 9, 10];
console.log(`\nNoise responder, one core (${cpus()[0]?.model ?? '?'}, Node ${process.version})`);
console.log(['case'.padEnd(w[0]!), 'ops/s'.padStart(w[1]!), 'µs/op'.padStart(w[2]!), 'vs verify'.padStart(w[3]!)].join(' '));
for (const r of rows) {
  console.log([r.name.padEnd(w[0]!), r.opsPerSec.padStart(w[1]!), r.usPerOp.padStart(w[2]!), r.vsVerify.padStart(w[3]!)].join(' '));
}
const summary = {
  verifiesPerSec: verify,
  mac1RejectsPerSec: results['reject mac1']!.opsPerSec,
  x25519OpsPerSec: dhOps,
  floorVerifiesPerSec: floor,
  verifyVsFloor: verify / floor,
  mac1RejectVsVerify: results['reject mac1']!.opsPerSec / verify,
  staticRejectVsVerify: results['reject static']!.opsPerSec / verify,
  replayRejectUs: results['reject replay']!.usPerOp,
  replayRejectGoalUs: 2,
  replayRejectVsVerify: results['reject replay']!.opsPerSec / verify,
};
console.log(
  `\nfloor (2 native X25519 per verify): ${fmt(floor)} verifies/s; achieved ${fmt(verify)} = ${(100 * summary.verifyVsFloor).toFixed(0)}% of floor` +
    `\nmac1 reject is ${summary.mac1RejectVsVerify.toFixed(0)}× cheaper than a verify; a valid-mac1 flood (static reject) ${summary.staticRejectVsVerify.toFixed(2)}×` +
    `\na refused replay costs ${summary.replayRejectUs.toFixed(2)} µs (goal ≤ ${summary.replayRejectGoalUs} µs), ${summary.replayRejectVsVerify.toFixed(0)}× cheaper than the verify it used to cost`,
);

const date = new Date().toISOString().slice(0, 10);
const outDir = join(HERE, 'results');
mkdirSync(outDir, { recursive: true });
const outFile = join(outDir, `noise-${date}.json`);
writeFileSync(
  outFile,
  JSON.stringify(
    {
      benchmark: 'bench/noise.ts',
      date: new Date().toISOString(),
      quick: QUICK,
      method: `all cases warmed up, then ${SLICES} round-robin slices of ${SLICE_MS} ms per case; ops/s = total calls / total time; single thread`,
      environment: { node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, platform: platform(), arch: arch(), release: release() },
      summary,
      results,
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${outFile}`);
