/**
 * The built addon must load on the oldest distributions the package claims (the versions and
 * why: test/support/symbol-versions.ts). The packaged prebuild gets the same check in
 * test/package/pack.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MAX_GLIBC, MAX_GLIBCXX, tooNewSymbols, versionedSymbols } from '../../support/symbol-versions.js';

const RELEASE = fileURLToPath(new URL('../../../build/Release/', import.meta.url));

describe('the built addon', () => {
  const addons = readdirSync(RELEASE).filter((name) => name.endsWith('.node'));

  it('exists (the unit tier runs against build/Release)', () => {
    assert.ok(addons.length > 0, `no .node in ${RELEASE}: run npx node-gyp rebuild`);
  });

  for (const addon of addons) {
    it(`${addon} needs no symbol newer than GLIBC_${MAX_GLIBC.join('.')} / GLIBCXX_${MAX_GLIBCXX.join('.')}`, () => {
      const symbols = versionedSymbols(RELEASE + addon);
      assert.ok(symbols.some((s) => s.library === 'GLIBC'), 'objdump listed no versioned glibc symbol: the check would prove nothing');
      assert.deepEqual(tooNewSymbols(symbols), []);
    });
  }
});
