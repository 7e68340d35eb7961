/**
 * The built addon must load on the oldest distributions the package claims: glibc 2.28 is
 * RHEL 8's and Debian 10's (Ubuntu 20.04 has 2.31), and their libstdc++ is GCC 8's
 * (GLIBCXX_3.4.25). A symbol bound to a newer version makes a prebuild fail to load there
 * and a source build fail to link: strerrorname_np (GLIBC_2.32), or libstdc++'s
 * std::shared_ptr atomics (__libc_single_threaded, GLIBC_2.32; GLIBCXX_3.4.26+). Reads the
 * dynamic symbol table with objdump (binutils, installed with gcc).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const RELEASE = fileURLToPath(new URL('../../../build/Release/', import.meta.url));
const MAX_GLIBC = [2, 28];
const MAX_GLIBCXX = [3, 4, 25];

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Every (symbol, library version) the object needs, from `objdump -T`. */
function versionedSymbols(file: string): Array<{ symbol: string; library: string; version: number[] }> {
  const table = execFileSync('objdump', ['-T', file], { encoding: 'utf8' });
  const found = [];
  for (const line of table.split('\n')) {
    const match = /\((GLIBC|GLIBCXX)_([0-9.]+)\)\s+(\S+)\s*$/.exec(line);
    if (match) found.push({ library: match[1]!, version: match[2]!.split('.').map(Number), symbol: match[3]! });
  }
  return found;
}

describe('the built addon', () => {
  const addons = readdirSync(RELEASE).filter((name) => name.endsWith('.node'));

  it('exists (the unit tier runs against build/Release)', () => {
    assert.ok(addons.length > 0, `no .node in ${RELEASE}: run npx node-gyp rebuild`);
  });

  for (const addon of addons) {
    it(`${addon} needs no symbol newer than GLIBC_${MAX_GLIBC.join('.')} / GLIBCXX_${MAX_GLIBCXX.join('.')}`, () => {
      const symbols = versionedSymbols(RELEASE + addon);
      assert.ok(symbols.some((s) => s.library === 'GLIBC'), 'objdump listed no versioned glibc symbol: the check would prove nothing');
      const tooNew = symbols.filter((s) => compare(s.version, s.library === 'GLIBC' ? MAX_GLIBC : MAX_GLIBCXX) > 0);
      assert.deepEqual(tooNew.map((s) => `${s.symbol}@${s.library}_${s.version.join('.')}`), []);
    });
  }
});
