/**
 * Where the verification worker's code is, in each way this library runs, and how to start it.
 *
 * The worker runs verify-worker.ts as its own module graph, so it needs a file of its own,
 * found relative to this module (`import.meta.url`):
 * - compiled by tsc (dist/lib/gateway/, what `npm pack` ships): `verify-worker.js` beside this file;
 * - from an esbuild bundle that inlines this module (the bench's and the kernel tests' children,
 *   the daemon test's executable): `import.meta.url` is the bundle's, so whoever bundles must emit
 *   lib/gateway/verify-worker.ts, bundled on its own, as `verify-worker.mjs` beside the bundle
 *   (`.mjs`: a bundle may live where no package.json says "type": "module");
 * - from the TypeScript sources under tsx (`node --import tsx`, the tests): `verify-worker.ts`.
 *   tsx's hooks on the main thread do not reach a worker on Node 20, nor does an inherited
 *   `--import tsx`, so the worker is started from a two-line bootstrap (`eval`) that registers
 *   tsx in the worker first and then imports the entry by URL.
 * When none is there, `VerifierPool` verifies on the event loop and reports why.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

const CANDIDATES = ['verify-worker.js', 'verify-worker.mjs', 'verify-worker.ts'] as const;

/** The worker entry beside this module, or an Error naming every place looked at. */
export function locateVerifyWorker(base: string | URL = import.meta.url): URL | Error {
  const tried: string[] = [];
  for (const name of CANDIDATES) {
    const url = new URL(`./${name}`, base);
    if (existsSync(url)) return url;
    tried.push(fileURLToPath(url));
  }
  return new Error(`no verification worker entry found (looked for ${tried.join(', ')}); a bundle must emit lib/gateway/verify-worker.ts bundled as verify-worker.mjs beside itself`);
}

/** Starts a worker running `entry` (a located verify-worker file) with `options`. */
export function startVerifyWorker(entry: URL, options: WorkerOptions): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry, options);
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}
