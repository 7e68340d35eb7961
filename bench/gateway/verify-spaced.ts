/**
 * What one verification costs when it runs alone, as a gateway's knocks do (one every second or
 * more), against the same verification back to back: `Responder.unwrap`'s steps, each timed, on
 * real initiations, one every 300 ms after a warm-up of 100, then 200 in a row. A lone
 * verification pays for caches, TLBs and branch predictors that other work (or idleness) has
 * taken; under TCG that costs far more than natively, since every guest page the code touches
 * again goes through QEMU's software TLB. The steps are the responder's own primitives, called
 * in unwrap's order (lib/noise/responder.ts); the HASH and KDF steps are timed twice, through
 * node:crypto (bench/gateway/native-kdf.ts) and through lib/noise's JavaScript BLAKE2s (as lib/noise/kdf.ts does them).
 *
 *   node --import tsx bench/gateway/verify-spaced.ts [--out FILE]
 *   bash test/kernel/vm/run-in-vm.sh -- node --import tsx bench/gateway/verify-spaced.ts
 */
import { diffieHellman, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { aeadOpenCounter0 } from '../../lib/noise/aead.js';
import { hash2Into, HmacBlake2s, kdfInto, Mac1 } from '../../lib/noise/blake2s.js';
import { CONSTRUCTION, IDENTIFIER, LABEL_MAC1 } from '../../lib/noise/constants.js';
import { hashInto, kdf1Into, kdf2Into } from './native-kdf.js';
import { Responder } from '../../lib/noise/responder.js';
import { buildSyntheticInitiation } from '../../lib/noise/synthetic-initiation.js';
import { importPublicKey } from '../../lib/noise/x25519.js';
import { INITIATION_OFFSET as OFFSET } from '../../lib/protocol/initiation.js';

const SPACING_MS = 300;
const LONE = 20;
const utf8 = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
const { privateKey } = generateKeyPairSync('x25519');
const responder = new Responder(privateKey);
const ourPublic = responder.publicKeyBytes;
const chainingKey0 = hashInto(new Uint8Array(32), utf8(CONSTRUCTION), new Uint8Array(0));
const hash0 = hashInto(new Uint8Array(32), hashInto(new Uint8Array(32), chainingKey0, utf8(IDENTIFIER)), ourPublic);
const mac1 = new Mac1(hashInto(new Uint8Array(32), utf8(LABEL_MAC1), ourPublic));
const packets = Array.from({ length: 400 }, () => buildSyntheticInitiation(ourPublic));

let steps = new Map<string, number[]>();

/** A function that records, under the name it is given, the time since its last call (or its creation). */
function stepTimer(): (name: string) => void {
  let t = performance.now();
  return (name) => {
    const now = performance.now();
    let list = steps.get(name);
    if (!list) steps.set(name, (list = []));
    list.push(now - t);
    t = now;
  };
}

/** unwrap's work on `packet`, step by step (no replay cache, no result object). */
function verifyInSteps(packet: Uint8Array): void {
  const h = new Uint8Array(32), ck = new Uint8Array(32), k = new Uint8Array(32), mac = new Uint8Array(16);
  const step = stepTimer();
  mac1.computeInto(mac, packet, 0, OFFSET.mac1); step('mac1 (keyed BLAKE2s-128, JS)');
  hashInto(h, hash0, packet.subarray(OFFSET.ephemeral, OFFSET.static)); step('HASH of the ephemeral (node:crypto)');
  kdf1Into(chainingKey0, packet, OFFSET.ephemeral, 32, ck); step('KDF1 (node:crypto HMAC)');
  const ephemeral = importPublicKey(packet, OFFSET.ephemeral); step('ephemeral key import (JWK)');
  const es = diffieHellman({ privateKey, publicKey: ephemeral }); step('X25519 es');
  kdf2Into(ck, es, 0, 32, ck, k); step('KDF2 of es (node:crypto HMAC)');
  const initiatorStatic = aeadOpenCounter0(k, packet, OFFSET.static, OFFSET.timestamp - OFFSET.static, h); step('AEAD open static');
  if (!initiatorStatic) throw new Error('the synthetic initiation did not decrypt');
  hashInto(h, h, packet.subarray(OFFSET.static, OFFSET.timestamp)); step('HASH of the static (node:crypto)');
  const staticKey = importPublicKey(initiatorStatic, 0); step('static key import (JWK)');
  const ss = diffieHellman({ privateKey, publicKey: staticKey }); step('X25519 ss');
  kdf2Into(ck, ss, 0, 32, ck, k); step('KDF2 of ss (node:crypto HMAC)');
  if (!aeadOpenCounter0(k, packet, OFFSET.timestamp, OFFSET.mac1 - OFFSET.timestamp, h)) throw new Error('timestamp did not decrypt');
  step('AEAD open timestamp');
}

const keyed = new HmacBlake2s();
const tmp = new HmacBlake2s();
const tau0 = new Uint8Array(32);
const initialKeyed = new HmacBlake2s().setKey(chainingKey0);

/** The same HASH and KDF steps (no DH, no AEAD: their inputs are stand-ins) in lib/noise's JavaScript. */
function hashAndKdfInJavaScript(packet: Uint8Array, dhOut: Uint8Array): void {
  const h = new Uint8Array(32), ck = new Uint8Array(32), k = new Uint8Array(32);
  const step = stepTimer();
  hash2Into(h, hash0, packet.subarray(OFFSET.ephemeral, OFFSET.static)); step('HASH of the ephemeral (JS)');
  kdfInto(initialKeyed, tmp, tau0, packet, OFFSET.ephemeral, 32, ck); step('KDF1 (JS)');
  keyed.setKey(ck); kdfInto(keyed, tmp, tau0, dhOut, 0, 32, ck, k); keyed.wipe(); step('KDF2 of es (JS)');
  hash2Into(h, h, packet.subarray(OFFSET.static, OFFSET.timestamp)); step('HASH of the static (JS)');
  keyed.setKey(ck); kdfInto(keyed, tmp, tau0, dhOut, 0, 32, ck, k); keyed.wipe(); step('KDF2 of ss (JS)');
}

const median = (a: number[]) => a.slice().sort((x, y) => x - y)[a.length >> 1]!;
const time = (fn: () => void) => {
  const t = performance.now();
  fn();
  return performance.now() - t;
};

let next = 0;
const packet = () => packets[next++ % packets.length]!;
for (let i = 0; i < 100; i++) if (!responder.unwrap(packet()).ok) throw new Error('warm-up verification failed');

const lone: number[] = [];
for (let i = 0; i < LONE; i++) {
  await new Promise((resolve) => setTimeout(resolve, SPACING_MS));
  lone.push(time(() => responder.unwrap(packet())));
}
for (let i = 0; i < LONE; i++) {
  await new Promise((resolve) => setTimeout(resolve, SPACING_MS));
  verifyInSteps(packet());
}
const standInDh = new Uint8Array(32).fill(9);
for (let i = 0; i < 100; i++) hashAndKdfInJavaScript(packet(), standInDh);
steps.forEach((list, name) => { if (name.endsWith('(JS)')) list.length = 0; });
for (let i = 0; i < LONE; i++) {
  await new Promise((resolve) => setTimeout(resolve, SPACING_MS));
  hashAndKdfInJavaScript(packet(), standInDh);
}
const loneSteps = steps;
steps = new Map();
const inRow: number[] = [];
for (let i = 0; i < 200; i++) inRow.push(time(() => responder.unwrap(packet())));
for (let i = 0; i < 200; i++) verifyInSteps(packet());
for (let i = 0; i < 200; i++) hashAndKdfInJavaScript(packet(), standInDh);

const figures = {
  loneUnwrapMs: median(lone),
  inRowUnwrapMs: median(inRow.slice(100)),
  stepsMs: [...loneSteps.keys()].map((step) => ({ step, lone: median(loneSteps.get(step)!), inRow: median(steps.get(step)!.slice(100)) })),
};

const sum = (names: (step: string) => boolean, key: 'lone' | 'inRow') => figures.stepsMs.filter((x) => names(x.step)).reduce((a, x) => a + x[key], 0);
const nativeHashKdf = (step: string) => /^(HASH|KDF)/.test(step) && step.includes('node:crypto');
const jsHashKdf = (step: string) => step.endsWith('(JS)');
Object.assign(figures, {
  hashAndKdfNativeMs: { lone: sum(nativeHashKdf, 'lone'), inRow: sum(nativeHashKdf, 'inRow') },
  hashAndKdfJavaScriptMs: { lone: sum(jsHashKdf, 'lone'), inRow: sum(jsHashKdf, 'inRow') },
});
console.log(`node ${process.version}, ${cpus()[0]?.model ?? '?'}; one verification every ${SPACING_MS} ms vs back to back (medians, ms)`);
console.log(`Responder.unwrap: lone ${figures.loneUnwrapMs.toFixed(3)}, in a row ${figures.inRowUnwrapMs.toFixed(3)} (${(figures.loneUnwrapMs / figures.inRowUnwrapMs).toFixed(1)}×)`);
for (const s of figures.stepsMs) console.log(`  ${s.step.padEnd(36)} lone ${s.lone.toFixed(3).padStart(7)}  in a row ${s.inRow.toFixed(3).padStart(7)}`);
const f = figures as typeof figures & Record<'hashAndKdfNativeMs' | 'hashAndKdfJavaScriptMs', { lone: number; inRow: number }>;
console.log(`HASH + KDF of one verification: node:crypto lone ${f.hashAndKdfNativeMs.lone.toFixed(3)}, in a row ${f.hashAndKdfNativeMs.inRow.toFixed(3)}; JavaScript lone ${f.hashAndKdfJavaScriptMs.lone.toFixed(3)}, in a row ${f.hashAndKdfJavaScriptMs.inRow.toFixed(3)}`);
const out = process.argv.indexOf('--out');
if (out >= 0) writeFileSync(process.argv[out + 1]!, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, spacingMs: SPACING_MS, ...figures }, null, 2) + '\n');
