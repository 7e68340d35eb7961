/**
 * The figures behind lib/noise/kdf.ts (issue 9): the responder's HASH and KDF in lib/noise's
 * JavaScript BLAKE2s against node:crypto's BLAKE2s-256, per operation as one verification calls
 * them (KDF1 of the ephemeral, KDF2 of each DH, HASH of 32 ‖ 32 and 32 ‖ 48 bytes), and the whole
 * `Responder.unwrap` of a real initiation as it is now. Run it twice, optimised and interpreted:
 *
 *   node --import tsx bench/gateway/verify-cold.ts [--out FILE]
 *   node --no-opt --no-sparkplug --import tsx bench/gateway/verify-cold.ts [--out FILE]
 *
 * A verification calls KDF1 once, KDF2 twice and each HASH once, so the per-verification
 * difference between the two is the sum printed last. µs per operation; --out writes JSON.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hash2Into, HmacBlake2s, kdfInto } from '../../lib/noise/blake2s.js';
import { hashInto, kdf1Into, kdf2Into } from './native-kdf.js';
import { Responder } from '../../lib/noise/responder.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const figures: Record<string, number> = {};

function rate(label: string, fn: (i: number) => void, ms = 1000): number {
  for (let i = 0; i < 20; i++) fn(i);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) for (let j = 0; j < 8; j++) fn(n++);
  const us = ((performance.now() - t0) * 1000) / n;
  console.log(`${label.padEnd(52)} ${us.toFixed(2).padStart(9)} µs`);
  figures[label] = us;
  return us;
}

const ck = randomBytes(32);
const input = randomBytes(32);
const a = randomBytes(32);
const b32 = randomBytes(32);
const b48 = randomBytes(48);
const o1 = new Uint8Array(32);
const o2 = new Uint8Array(32);
const tau0 = new Uint8Array(32);
const keyed = new HmacBlake2s();
const tmp = new HmacBlake2s();
const initialKeyed = new HmacBlake2s().setKey(ck); // the responder prepared KDF1's constant key once

console.log(`node ${process.version} ${process.execArgv.filter((f) => f.startsWith('--no-')).join(' ') || '(optimised)'}`);
// First calls of a fresh process (lazy compilation, OpenSSL's first fetch of the digest).
let t = performance.now();
kdfInto(keyed.setKey(ck), tmp, tau0, input, 0, 32, o1, o2);
figures['first KDF2, JavaScript'] = (performance.now() - t) * 1000;
t = performance.now();
kdf2Into(ck, input, 0, 32, o1, o2);
figures['first KDF2, node:crypto'] = (performance.now() - t) * 1000;
console.log(`first KDF2: JavaScript ${figures['first KDF2, JavaScript']!.toFixed(0)} µs, node:crypto ${figures['first KDF2, node:crypto']!.toFixed(0)} µs`);

const js = {
  kdf1: rate('KDF1, JavaScript (key prepared once)', () => kdfInto(initialKeyed, tmp, tau0, input, 0, 32, o1)),
  kdf2: rate('KDF2, JavaScript', () => { keyed.setKey(ck); kdfInto(keyed, tmp, tau0, input, 0, 32, o1, o2); keyed.wipe(); }),
  hash64: rate('HASH(32 ‖ 32), JavaScript', () => hash2Into(o1, a, b32)),
  hash80: rate('HASH(32 ‖ 48), JavaScript', () => hash2Into(o1, a, b48)),
};
const native = {
  kdf1: rate('KDF1, node:crypto createHmac', () => kdf1Into(ck, input, 0, 32, o1)),
  kdf2: rate('KDF2, node:crypto createHmac', () => kdf2Into(ck, input, 0, 32, o1, o2)),
  hash64: rate('HASH(32 ‖ 32), node:crypto createHash', () => hashInto(o1, a, b32)),
  hash80: rate('HASH(32 ‖ 48), node:crypto createHash', () => hashInto(o1, a, b48)),
};
rate('one HMAC, node:crypto createHmac (reference)', () => createHmac('blake2s256', ck).update(input).digest());
rate('one HASH, node:crypto createHash (reference)', () => createHash('blake2s256').update(input).digest());
const perVerify = (s: typeof js) => s.kdf1 + 2 * s.kdf2 + s.hash64 + s.hash80;
figures['per verification: JavaScript HASH+KDF'] = perVerify(js);
figures['per verification: node:crypto HASH+KDF'] = perVerify(native);
console.log(`per verification, HASH + KDF: JavaScript ${perVerify(js).toFixed(1)} µs, node:crypto ${perVerify(native).toFixed(1)} µs`);

const vectors = JSON.parse(readFileSync(join(HERE, '../../test/vectors/wireguard-go.json'), 'utf8')) as { responderPrivateKey: string; initiations: { packet: string }[] };
const responder = new Responder(vectors.responderPrivateKey);
const packets = vectors.initiations.map((i) => Buffer.from(i.packet, 'hex'));
rate('Responder.unwrap of a real initiation (as built now)', (i) => {
  if (!responder.unwrap(packets[i % packets.length]!).ok) throw new Error('a vector was refused');
}, 2000);

const outFlag = process.argv.indexOf('--out');
if (outFlag >= 0) {
  writeFileSync(process.argv[outFlag + 1]!, JSON.stringify({
    date: new Date().toISOString(), node: process.version, execArgv: process.execArgv.filter((f) => f.startsWith('--no-')),
    cpu: cpus()[0]?.model, cpus: cpus().length, microsecondsPerOp: figures,
  }, null, 2) + '\n');
}
