/**
 * The verification worker is found and started in each way the library runs: from the sources
 * under tsx (every other test), from tsc's layout (dist/lib/, what npm pack ships; emulated by
 * transpiling lib/ file by file with esbuild, which tsx itself uses), and from an esbuild bundle
 * with `verify-worker.mjs` emitted beside it (the bench's and kernel tests' children); without
 * that file, the pool verifies on the event loop and says so.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { locateVerifyWorker } from '../../../lib/gateway/verify-worker-entry.js';
import { loadVectors } from '../noise/vectors.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
let scratch = '';

before(() => {
  mkdirSync(join(ROOT, '.cache'), { recursive: true });
  scratch = mkdtempSync(join(ROOT, '.cache', 'verify-worker-entry-'));
});
after(() => {
  if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
});

/** A program that verifies one real initiation with a one-thread pool and prints what happened. */
function probeSource(poolModule: string): string {
  const vectors = loadVectors()[0]!;
  return `
import { VerifierPool } from ${JSON.stringify(poolModule)};
import { SeenInitiations } from ${JSON.stringify(poolModule.replace(/gateway\/verify-pool\.(ts|js)$/, 'noise/seen-initiations.$1'))};
const errors = [];
const pool = new VerifierPool({ privateKey: ${JSON.stringify(vectors.responderPrivateKey)}, seen: new SeenInitiations(), threads: 1, warmUp: 5,
  onError: (code) => errors.push(code) });
const result = await pool.verify(Buffer.from(${JSON.stringify(vectors.initiations[0]!.packet)}, 'hex'));
console.log(JSON.stringify({ mode: pool.stats().mode, publicKey: result.ok ? result.publicKey : null, errors }));
await pool.stop();
`;
}

interface ProbeOutput { mode: string; publicKey: string | null; errors: string[] }

async function runProbe(file: string): Promise<ProbeOutput> {
  const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: ROOT, timeout: 120_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ProbeOutput;
}

const expectedKey = () => loadVectors()[0]!.initiations[0]!.initiatorPublicKey;

async function esbuild(): Promise<typeof import('esbuild')> {
  return import('esbuild');
}

describe('verification worker entry', () => {
  it('is the TypeScript source beside the pool under tsx', () => {
    const entry = locateVerifyWorker();
    assert.ok(!(entry instanceof Error), String(entry));
    assert.equal(relative(ROOT, fileURLToPath(entry)), join('lib', 'gateway', 'verify-worker.ts'));
  });

  it('is missing, with every place looked at named, where there is none', () => {
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    const entry = locateVerifyWorker(pathToFileURL(join(empty, 'bundle.mjs')));
    assert.ok(entry instanceof Error);
    for (const name of ['verify-worker.js', 'verify-worker.mjs', 'verify-worker.ts']) assert.match(entry.message, new RegExp(join(empty, name).replace(/[.]/g, '\\.')));
  });

  it('runs from an esbuild bundle with verify-worker.mjs emitted beside it; without it, or with one that cannot start, verifies on the event loop', async () => {
    const { build } = await esbuild();
    const dir = join(scratch, 'bundle');
    mkdirSync(dir);
    writeFileSync(join(dir, 'probe-source.ts'), probeSource(join(ROOT, 'lib/gateway/verify-pool.ts')));
    const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' } as const;
    await build({ ...common, entryPoints: [join(dir, 'probe-source.ts')], outfile: join(dir, 'probe.mjs') });

    const without = await runProbe(join(dir, 'probe.mjs'));
    assert.deepEqual(without, { mode: 'event-loop', publicKey: expectedKey(), errors: ['ERR_JITGUARD_VERIFY_THREAD_START'] });

    // A worker file that dies while loading: the packet it was given is verified on the event loop.
    writeFileSync(join(dir, 'verify-worker.mjs'), "throw new Error('this worker cannot start');\n");
    assert.deepEqual(await runProbe(join(dir, 'probe.mjs')), { mode: 'event-loop', publicKey: expectedKey(), errors: ['ERR_JITGUARD_VERIFY_THREAD_START'] });

    await build({ ...common, entryPoints: [join(ROOT, 'lib/gateway/verify-worker.ts')], outfile: join(dir, 'verify-worker.mjs') });
    assert.deepEqual(await runProbe(join(dir, 'probe.mjs')), { mode: 'threads', publicKey: expectedKey(), errors: [] });
  });

  it('runs from the compiled layout (lib/ as .js files, as tsc writes dist/lib/)', async () => {
    const { build } = await esbuild();
    const out = join(scratch, 'dist');
    const sources = (function walk(d: string): string[] {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : []));
    })(join(ROOT, 'lib'));
    await build({ entryPoints: sources, outdir: out, outbase: ROOT, bundle: false, platform: 'node', format: 'esm', target: 'node20', logLevel: 'error' });
    writeFileSync(join(out, 'probe.js'), probeSource(join(out, 'lib/gateway/verify-pool.js')));
    assert.deepEqual(await runProbe(join(out, 'probe.js')), { mode: 'threads', publicKey: expectedKey(), errors: [] });
  });
});
