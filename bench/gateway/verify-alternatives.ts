/**
 * What the parts of one verification cost on this machine, and what the alternatives to
 * lib/noise's choices would cost: the figures behind the suggestions in the gateway section of
 * bench/RESULTS.md (run it in the bench VM: `bash test/kernel/vm/run-in-vm.sh -- node --import
 * tsx bench/gateway/verify-alternatives.ts [--out FILE]`; with `node --no-opt --no-sparkplug` it
 * shows what the same code costs interpreted, as code that runs rarely does). Nothing here is used
 * by the gateway. --out writes the figures (µs per operation) as JSON.
 *
 * - X25519 with the peer's public key imported as JWK (what lib/noise/x25519.ts does) or as
 *   DER (SPKI prefix + raw key), and with a ready KeyObject (the floor);
 * - HMAC-BLAKE2s (the KDF's primitive, 6 per verify) in lib/noise's JS, in @noble/hashes, and
 *   node:crypto's native createHmac('blake2s256');
 * - one ChaCha20-Poly1305 open of the 48-byte static field with node:crypto (two per verify);
 * - X25519 through WebCrypto (`subtle.importKey('raw')` + `deriveBits`): asynchronous, run on
 *   libuv's thread pool, so it leaves the event loop free and uses more than one core; measured
 *   as throughput with many derivations in flight, and as the latency of one.
 */
import { createCipheriv, createDecipheriv, createHmac, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { HmacBlake2s } from '../../lib/noise/blake2s.js';

const figures: Record<string, number> = {};

const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

function rate(label: string, fn: (i: number) => void, ms = 1500): number {
  for (let i = 0; i < 50; i++) fn(i); // warm
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let j = 0; j < 10; j++) fn(n++);
  }
  const us = ((performance.now() - t0) * 1000) / n;
  console.log(`${label.padEnd(58)} ${us.toFixed(2).padStart(9)} µs/op`);
  figures[label] = us;
  return us;
}

const { privateKey } = generateKeyPairSync('x25519');
const peers: Buffer[] = Array.from({ length: 256 }, () => generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_X25519.length));
const ready: KeyObject[] = peers.map((raw) => createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' }));

console.log(`node ${process.version}, ${process.arch}`);
rate('X25519, KeyObject ready (the floor)', (i) => diffieHellman({ privateKey, publicKey: ready[i & 255]! }));
rate('X25519, public key imported as JWK', (i) =>
  diffieHellman({ privateKey, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peers[i & 255]!.toString('base64url') }, format: 'jwk' }) }));
rate('X25519, public key imported as DER (SPKI prefix + raw)', (i) =>
  diffieHellman({ privateKey, publicKey: createPublicKey({ key: Buffer.concat([SPKI_X25519, peers[i & 255]!]), format: 'der', type: 'spki' }) }));
rate('import only: JWK', (i) => createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: peers[i & 255]!.toString('base64url') }, format: 'jwk' }));
rate('import only: DER', (i) => createPublicKey({ key: Buffer.concat([SPKI_X25519, peers[i & 255]!]), format: 'der', type: 'spki' }));

const key = randomBytes(32);
const data = randomBytes(33);
const libHmac = new HmacBlake2s();
const out = Buffer.alloc(32);
rate('HMAC-BLAKE2s with its key set up, lib/noise (JS)', () => libHmac.setKey(key).macInto(out, data));
rate('HMAC-BLAKE2s with its key set up, @noble/hashes (JS)', () => hmac(blake2s, key, data));
rate('HMAC-BLAKE2s with its key set up, node:crypto (native)', () => createHmac('blake2s256', key).update(data).digest());

const aeadKey = randomBytes(32);
const nonce = Buffer.alloc(12);
const ad = randomBytes(32);
const cipher = createCipheriv('chacha20-poly1305', aeadKey, nonce, { authTagLength: 16 });
cipher.setAAD(ad, { plaintextLength: 32 });
const sealed = Buffer.concat([cipher.update(randomBytes(32)), cipher.final(), cipher.getAuthTag()]);
rate('ChaCha20-Poly1305 open of 48 bytes, node:crypto', () => {
  const d = createDecipheriv('chacha20-poly1305', aeadKey, nonce, { authTagLength: 16 });
  d.setAAD(ad, { plaintextLength: 32 });
  d.setAuthTag(sealed.subarray(32));
  d.update(sealed.subarray(0, 32));
  d.final();
});

// WebCrypto: one at a time (latency), then 64 in flight (throughput over the thread pool).
const subtle = webcrypto.subtle;
const own = await subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), { name: 'X25519' }, false, ['deriveBits']);
const deriveOne = async (i: number) => {
  const pub = await subtle.importKey('raw', peers[i & 255]!, { name: 'X25519' }, false, []);
  return subtle.deriveBits({ name: 'X25519', public: pub } as unknown as AlgorithmIdentifier, own, 256);
};
async function asyncRate(label: string, inFlight: number, ms = 1500): Promise<void> {
  for (let i = 0; i < 20; i++) await deriveOne(i);
  let n = 0;
  const t0 = performance.now();
  const lane = async () => {
    while (performance.now() - t0 < ms) await deriveOne(n++);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const us = ((performance.now() - t0) * 1000) / n;
  console.log(`${label.padEnd(58)} ${us.toFixed(2).padStart(9)} µs/op`);
  figures[label] = us;
}
await asyncRate('X25519 via WebCrypto raw import, one at a time', 1);
await asyncRate('X25519 via WebCrypto raw import, 64 in flight (per op)', 64);

const outFlag = process.argv.indexOf('--out');
if (outFlag >= 0) {
  const file = process.argv[outFlag + 1]!;
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), node: process.version, execArgv: process.execArgv.filter((a) => a.startsWith('--no-')), cpu: cpus()[0]?.model, cpus: cpus().length, microsecondsPerOp: figures }, null, 2) + '\n');
}
