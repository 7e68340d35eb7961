/**
 * Which glibc / libstdc++ symbol versions a shared object needs, against the oldest the
 * package claims to load on: glibc 2.28 is RHEL 8's and Debian 10's (Ubuntu 20.04 has 2.31),
 * and their libstdc++ is GCC 8's (GLIBCXX_3.4.25). A symbol bound to a newer version makes a
 * prebuild fail to load there and a source build fail to link: strerrorname_np (GLIBC_2.32),
 * or libstdc++'s std::shared_ptr atomics (__libc_single_threaded, GLIBC_2.32; GLIBCXX_3.4.26+).
 * Reads the dynamic symbol table with objdump (binutils, installed with gcc).
 */
import { execFileSync } from 'node:child_process';

export const MAX_GLIBC = [2, 28];
export const MAX_GLIBCXX = [3, 4, 25];

export interface VersionedSymbol {
  symbol: string;
  library: 'GLIBC' | 'GLIBCXX';
  version: number[];
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Every (symbol, library version) the object needs, from `objdump -T`. */
export function versionedSymbols(file: string): VersionedSymbol[] {
  const table = execFileSync('objdump', ['-T', file], { encoding: 'utf8' });
  const found: VersionedSymbol[] = [];
  for (const line of table.split('\n')) {
    const match = /\((GLIBC|GLIBCXX)_([0-9.]+)\)\s+(\S+)\s*$/.exec(line);
    if (match) found.push({ library: match[1] as VersionedSymbol['library'], version: match[2]!.split('.').map(Number), symbol: match[3]! });
  }
  return found;
}

/** The symbols bound to a version newer than MAX_GLIBC / MAX_GLIBCXX, as `name@LIB_x.y`. */
export function tooNewSymbols(symbols: VersionedSymbol[]): string[] {
  return symbols
    .filter((s) => compare(s.version, s.library === 'GLIBC' ? MAX_GLIBC : MAX_GLIBCXX) > 0)
    .map((s) => `${s.symbol}@${s.library}_${s.version.join('.')}`);
}
