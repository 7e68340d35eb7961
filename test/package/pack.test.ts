/**
 * The tarball `npm pack` makes installs and runs on a machine with no C++ compiler, from the
 * prebuild inside it (issue 10, Packaging).
 *
 * Everything happens in one mkdtemp directory: the repository's files (tracked and untracked,
 * not ignored) are copied to a staging folder, where `npm pack` runs its prepack (tsc, then
 * prebuildify); the tarball is installed into an empty project by npm whose PATH holds only
 * node, npm, npx and sh, so no cc, c++, gcc, g++, make or python can be found and node-gyp
 * cannot build. The same tarball without its prebuild must then fail to install: that is what
 * shows the successful install used the prebuild.
 *
 * better-sqlite3 is a dependency with its own native binary, which its install script
 * (prebuild-install) downloads from its release host, or compiles. This machine reaches no
 * such host, so the test stands in for that download: prebuild-install's `local-prebuilds`
 * directory gets the tarball it would have downloaded, made from the repository's own
 * better-sqlite3 build, and the consumer pins better-sqlite3 to that version.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_GLIBC, MAX_GLIBCXX, tooNewSymbols, versionedSymbols } from '../support/symbol-versions.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PREBUILD = 'prebuilds/linux-x64/jitguard.node';
/** Where each shipped path may be; anything else in the tarball is a mistake in `files`. */
const ALLOWED = [/^package\.json$/, /^README\.md$/, /^binding\.gyp$/, /^csrc\/[\w-]+\.(cc|h)$/, /^dist\/lib\/.+\.(js|d\.ts|js\.map)$/, /^prebuilds\/linux-x64\/[\w.-]+\.node$/];
/** Bounds that catch a database, a build tree or node_modules shipped by mistake, with room to grow. */
const MAX_PACKED_BYTES = 1.5 * 1024 * 1024;
const MAX_FILE_BYTES = 512 * 1024;
const COMPILER_TOOLS = ['cc', 'c++', 'gcc', 'g++', 'clang', 'make', 'python3', 'python'];

let work: string;
let tarball: string;
let shipped: Map<string, number>;
let sandboxPath: string;
let localPrebuilds: string;

function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', timeout: 240_000, maxBuffer: 64 * 1024 * 1024, ...options });
}

function ok(result: SpawnSyncReturns<string>, what: string): string {
  assert.equal(result.status, 0, `${what} failed (status ${result.status}, signal ${result.signal}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The environment of the compiler-less machine: nothing inherited but HOME (npm's config and cache). */
function sandboxEnv(): NodeJS.ProcessEnv {
  return { HOME: process.env.HOME, PATH: sandboxPath, npm_config_logs_dir: join(work, 'npm-logs'), npm_config_update_notifier: 'false' };
}

/** A copy of the repository as a fresh clone with local changes would be, without node_modules or build output. */
function stageRepository(stage: string): void {
  const listed = ok(run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO }), 'git ls-files');
  for (const file of listed.split('\0').filter(Boolean)) {
    if (!existsSync(join(REPO, file))) continue; // deleted in the work tree, not yet committed
    mkdirSync(dirname(join(stage, file)), { recursive: true });
    copyFileSync(join(REPO, file), join(stage, file));
  }
  symlinkSync(join(REPO, 'node_modules'), join(stage, 'node_modules'));
}

/** Path → size of every file in a .tgz, read with tar(1), independent of what npm reports. */
function tarballFiles(file: string): Map<string, number> {
  const listing = ok(run('tar', ['-tvzf', file], { cwd: work }), 'tar -tvzf');
  const files = new Map<string, number>();
  for (const line of listing.trim().split('\n')) {
    const fields = line.trim().split(/\s+/);
    const path = fields[fields.length - 1]!;
    if (line.startsWith('d')) continue;
    assert.ok(path.startsWith('package/'), `tarball entry outside package/: ${line}`);
    files.set(path.slice('package/'.length), Number(fields[2]));
  }
  return files;
}

/** A bin folder with only what a compiler-less machine has that npm needs. */
function makeSandboxPath(): string {
  const bin = join(work, 'sandbox-bin');
  mkdirSync(bin);
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const found = ok(run('sh', ['-c', `command -v ${tool}`], { cwd: work }), `finding ${tool}`).trim();
    symlinkSync(found, join(bin, tool));
  }
  return bin;
}

/** The file prebuild-install would download for the repository's better-sqlite3, in a local-prebuilds folder. */
function betterSqlitePrebuild(): { version: string; folder: string } {
  const source = join(REPO, 'node_modules/better-sqlite3');
  const version = (JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')) as { version: string }).version;
  const tree = join(work, 'better-sqlite3-prebuild');
  mkdirSync(join(tree, 'build/Release'), { recursive: true });
  copyFileSync(join(source, 'build/Release/better_sqlite3.node'), join(tree, 'build/Release/better_sqlite3.node'));
  const folder = join(work, 'local-prebuilds');
  mkdirSync(folder);
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  ok(run('tar', ['-czf', join(folder, name), '-C', tree, 'build'], { cwd: work }), 'tar -czf');
  return { version, folder };
}

/** An empty project that installs `file` with the compiler-less environment. */
function installInto(project: string, file: string, betterSqliteVersion: string): SpawnSyncReturns<string> {
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', overrides: { 'better-sqlite3': betterSqliteVersion } }));
  writeFileSync(join(project, '.prebuild-installrc'), JSON.stringify({ 'local-prebuilds': localPrebuilds }));
  return run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', file], { cwd: project, env: sandboxEnv() });
}

describe('npm pack: a tarball that installs and runs without a compiler', () => {
  let consumer: string;
  let betterSqliteVersion: string;
  let installed: SpawnSyncReturns<string>;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'jitguard-pack-'));
    const stage = join(work, 'stage');
    stageRepository(stage);
    // A leftover of an earlier build (a module since renamed) must not be shipped.
    mkdirSync(join(stage, 'dist/lib'), { recursive: true });
    writeFileSync(join(stage, 'dist/lib/leftover-from-an-earlier-build.js'), 'export {};\n');
    ok(run('npm', ['pack', '--pack-destination', work], { cwd: stage }), 'npm pack');
    const tarballs = readdirSync(work).filter((name) => name.endsWith('.tgz'));
    assert.equal(tarballs.length, 1, `npm pack made ${tarballs.join(', ') || 'no tarball'}`);
    tarball = join(work, tarballs[0]!);
    shipped = tarballFiles(tarball);
    sandboxPath = makeSandboxPath();
    ({ version: betterSqliteVersion, folder: localPrebuilds } = betterSqlitePrebuild());
    consumer = join(work, 'consumer');
    installed = installInto(consumer, tarball, betterSqliteVersion);
  });

  after(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('the install runs with no compiler, make or python on PATH', () => {
    for (const tool of COMPILER_TOOLS) {
      const found = run('sh', ['-c', `command -v ${tool}`], { cwd: work, env: sandboxEnv() });
      assert.notEqual(found.status, 0, `${tool} is reachable in the sandbox: ${found.stdout}`);
    }
    for (const tool of ['node', 'npm']) ok(run('sh', ['-c', `command -v ${tool}`], { cwd: work, env: sandboxEnv() }), `${tool} in the sandbox`);
  });

  it('ships dist/lib, csrc, binding.gyp, the prebuild and nothing else', () => {
    const outside = [...shipped.keys()].filter((path) => !ALLOWED.some((pattern) => pattern.test(path)));
    assert.deepEqual(outside, []);
    const forbidden = [...shipped.keys()].filter((path) => /(^|\/)(test|bench|demo|node_modules|build)\//.test(path) || /\.(db|db-wal|db-shm|key|pem|tgz|log)$/.test(path));
    assert.deepEqual(forbidden, []);
    assert.ok(shipped.has(PREBUILD), `no ${PREBUILD} in the tarball`);
    assert.ok(!shipped.has('dist/lib/leftover-from-an-earlier-build.js'), 'prepack kept a stale file of an earlier build in dist/');
  });

  it('ships a compiled module and its types for every lib/ source (worker entries included)', () => {
    const sources = ok(run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard', 'lib'], { cwd: REPO }), 'git ls-files lib')
      .split('\0')
      .filter((file) => file.endsWith('.ts') && existsSync(join(REPO, file)));
    assert.ok(sources.includes('lib/index.ts') && sources.includes('lib/cli/main.ts'), 'lib/ sources not found: the check would prove nothing');
    const missing = sources.flatMap((source) => {
      const base = `dist/${source.slice(0, -'.ts'.length)}`;
      return [`${base}.js`, `${base}.d.ts`].filter((path) => !shipped.has(path));
    });
    assert.deepEqual(missing, []);
    const manifest = JSON.parse(readFileSync(join(work, 'stage/package.json'), 'utf8')) as { bin: Record<string, string>; main: string; types: string };
    for (const entry of [manifest.bin.jitguard!, manifest.main, manifest.types]) assert.ok(shipped.has(relative('.', entry)), `package.json names ${entry}, not in the tarball`);
  });

  it(`stays small: under ${MAX_PACKED_BYTES / 1024} KiB packed, no file over ${MAX_FILE_BYTES / 1024} KiB`, () => {
    const packed = statSync(tarball).size;
    assert.ok(packed < MAX_PACKED_BYTES, `tarball is ${packed} bytes`);
    const large = [...shipped].filter(([, size]) => size > MAX_FILE_BYTES).map(([path, size]) => `${path} (${size})`);
    assert.deepEqual(large, []);
    console.log(`tarball: ${packed} bytes packed, ${[...shipped.values()].reduce((a, b) => a + b, 0)} unpacked, ${shipped.size} files`);
  });

  it(`the prebuild needs no symbol newer than GLIBC_${MAX_GLIBC.join('.')} / GLIBCXX_${MAX_GLIBCXX.join('.')}`, () => {
    const symbols = versionedSymbols(join(consumer, 'node_modules/jitguard', PREBUILD));
    assert.ok(symbols.some((s) => s.library === 'GLIBC'), 'objdump listed no versioned glibc symbol: the check would prove nothing');
    assert.deepEqual(tooNewSymbols(symbols), []);
  });

  it('without its prebuild the same tarball fails to install: node-gyp cannot build here', () => {
    const unpacked = join(work, 'without-prebuild');
    mkdirSync(unpacked);
    ok(run('tar', ['-xzf', tarball, '-C', unpacked], { cwd: work }), 'tar -xzf');
    rmSync(join(unpacked, 'package/prebuilds'), { recursive: true });
    const stripped = join(work, 'jitguard-without-prebuild.tgz');
    ok(run('tar', ['-czf', stripped, '-C', unpacked, 'package'], { cwd: work }), 'tar -czf');
    const result = installInto(join(work, 'consumer-without-prebuild'), stripped, betterSqliteVersion);
    assert.notEqual(result.status, 0, `the install succeeded without a prebuild and without a compiler:\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, /command sh -c node-gyp-build/, 'the failure is not jitguard\'s install script');
    assert.match(result.stderr, /node-gyp[^\n]*rebuild/, 'node-gyp-build did not fall back to node-gyp');
    assert.match(result.stderr, /Could not find any Python|not found: make/, 'node-gyp failed for another reason than the missing toolchain');
    assert.ok(!existsSync(join(work, 'consumer-without-prebuild/node_modules/jitguard')), 'a failed install left jitguard installed');
  });

  it('installs from the tarball, using the prebuild (no build/ made)', () => {
    ok(installed, 'npm install of the tarball');
    const root = join(consumer, 'node_modules/jitguard');
    assert.ok(existsSync(join(root, PREBUILD)), 'the prebuild is not installed');
    assert.ok(!existsSync(join(root, 'build')), 'node_modules/jitguard/build exists: the addon was compiled, not taken from the prebuild');
  });

  it('npx jitguard --help and gateway --help', () => {
    const help = ok(run('npx', ['--no-install', 'jitguard', '--help'], { cwd: consumer, env: sandboxEnv() }), 'npx jitguard --help');
    assert.match(help, /Usage: jitguard/);
    assert.match(help, /gateway/);
    assert.match(help, /ws-connect/);
    const gateway = ok(run('npx', ['--no-install', 'jitguard', 'gateway', '--help'], { cwd: consumer, env: sandboxEnv() }), 'npx jitguard gateway --help');
    for (const flag of ['--interface', '--db', '--resolver', '--metrics', '--admin', '--websocket', '--config']) assert.match(gateway, new RegExp(`${flag} `));
  });

  it("import('jitguard') loads the prebuild, and its netlink and packet sockets work", () => {
    copyFileSync(fileURLToPath(new URL('consumer-checks.mjs', import.meta.url)), join(consumer, 'consumer-checks.mjs'));
    const output = ok(run('node', ['consumer-checks.mjs', work], { cwd: consumer, env: sandboxEnv(), timeout: 60_000 }), 'consumer-checks.mjs');
    const report = JSON.parse(output) as {
      exports: string[]; devices: unknown; getDevice: unknown; capture: Record<string, unknown>; storePeers: number; nativeObjects: string[];
    };
    for (const name of ['WireGuard', 'HandshakeCapture', 'Gateway', 'SqliteStore', 'Responder', 'WebSocketRelay', 'handshakeFilter']) {
      assert.ok(report.exports.includes(name), `jitguard exports no ${name}`);
    }
    assert.ok(Array.isArray(report.devices), `listDevices() gave ${JSON.stringify(report.devices)}`);
    // ENOENT: this kernel has no WireGuard family; ENODEV: it has, and no such device.
    assert.ok(
      ['ENOENT', 'ENODEV'].includes((report.getDevice as { code?: string }).code ?? '') && (report.getDevice as { name: string }).name === 'WireGuardError',
      `getDevice of a missing device gave ${JSON.stringify(report.getDevice)}`,
    );
    assert.equal(report.capture.error, undefined, String(report.capture.error));
    assert.equal(report.capture.length, 148);
    assert.ok(Number(report.capture.kernelPackets) >= 1, `capture stats ${JSON.stringify(report.capture)}`);
    assert.equal(report.storePeers, 0);
    const addon = report.nativeObjects.filter((path) => path.endsWith('/jitguard.node'));
    assert.deepEqual(addon, [join(consumer, 'node_modules/jitguard', PREBUILD)]);
  });

  it('jitguard gateway opens its store, then refuses a missing interface with exit code 2', () => {
    const db = join(work, 'daemon.db');
    const result = run('npx', ['--no-install', 'jitguard', 'gateway', '--interface', 'jgpkg-none0', '--db', db, '--log-level', 'silent'], { cwd: consumer, env: sandboxEnv(), timeout: 60_000 });
    assert.equal(result.status, 2, `status ${result.status}:\n${result.stdout}\n${result.stderr}`);
    assert.match(result.stderr, /^jitguard: interface jgpkg-none0 does not exist/m);
    assert.equal(statSync(db).mode & 0o777, 0o600, 'the store was not created with mode 0600');
  });
});
