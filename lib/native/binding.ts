/**
 * The one place the native addon is loaded, through `node-gyp-build`: a matching prebuild in
 * `prebuilds/<platform>-<arch>/` wins, else the local `build/Release/` compiled at install.
 *
 * The addon is deliberately thin (syscalls, wire structs, the thread hop); every argument it
 * receives has been validated by the TypeScript module that calls it.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** Walks up from this module to the package root (the folder holding binding.gyp). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('jitguard: cannot find the package root (binding.gyp) to load the native addon');
    dir = parent;
  }
}

let cached: unknown;

/** Loads the addon once; later calls return the same object. */
export function loadBinding<T>(): T {
  if (cached === undefined) {
    const nodeGypBuild = require('node-gyp-build') as (root: string) => unknown;
    cached = nodeGypBuild(packageRoot());
  }
  return cached as T;
}
