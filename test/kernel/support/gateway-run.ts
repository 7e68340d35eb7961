/**
 * A `Gateway` on a lab's wg0, in the test process, with every event it emits recorded (and
 * time-stamped) for the assertions; and the same for a gateway in a child process
 * (gateway-child.ts), which a test can SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { Gateway, type GatewayOptions } from '../../../lib/gateway/gateway.js';
import { SqliteStore } from '../../../lib/gateway/sqlite-store.js';
import type { GatewayError } from '../../../lib/gateway/errors.js';
import type { EvictedEvent, InstalledEvent, RejectedEvent } from '../../../lib/gateway/types.js';
import type { GatewayChildConfig } from './gateway-child.js';
import type { ControlPlane } from './gateway-control-plane.js';
import type { GatewayLab } from './gateway-lab.js';
import { httpResolver } from '../../../lib/gateway/http-resolver.js';
import { trace } from './gateway-trace.js';

export type Stamped<T> = T & { at: number };

/** Generous for the TCG VM, where 20 concurrent lookups share one slow event loop. */
export const DEFAULT_RESOLVER_TIMEOUT_MS = 3000;


export interface RunOptions extends Partial<Omit<GatewayOptions, 'interface' | 'store' | 'resolve' | 'netns' | 'capture'>> {
  /** The SQLite file (default: peers.db in the lab's directory). */
  storePath?: string;
  /** The resolver's own timeout (default {@link DEFAULT_RESOLVER_TIMEOUT_MS}). */
  resolverTimeoutMs?: number;
}

export class GatewayRun {
  readonly installed: Array<Stamped<InstalledEvent>> = [];
  readonly rejected: Array<Stamped<RejectedEvent>> = [];
  readonly evicted: Array<Stamped<EvictedEvent>> = [];
  readonly errors: GatewayError[] = [];

  private constructor(readonly gateway: Gateway) {
    gateway.on('installed', (e) => { this.installed.push({ ...e, at: Date.now() }); trace(`installed ${e.publicKey.slice(0, 8)} via ${e.via} ${e.knockToInstallMs.toFixed(1)} ms`); });
    gateway.on('rejected', (e) => { this.rejected.push({ ...e, at: Date.now() }); trace(`rejected ${e.publicKey?.slice(0, 8) ?? '-'} ${e.reason} ${e.detail ?? ''}`); });
    gateway.on('evicted', (e) => { this.evicted.push({ ...e, at: Date.now() }); trace(`evicted ${e.publicKey.slice(0, 8)} ${e.reason}`); });
    gateway.on('error', (e) => { this.errors.push(e); trace(`error ${e.stage} ${e.code}`); });
  }

  static async start(lab: GatewayLab, plane: ControlPlane, options: RunOptions = {}): Promise<GatewayRun> {
    const { storePath, resolverTimeoutMs, ...rest } = options;
    const gateway = new Gateway({
      ...rest,
      interface: 'wg0',
      netns: lab.gateway.path,
      store: new SqliteStore(storePath ?? join(lab.dir, 'peers.db')),
      resolve: httpResolver({ url: plane.url, timeoutMs: resolverTimeoutMs ?? DEFAULT_RESOLVER_TIMEOUT_MS }),
      capture: { interface: 'veth-gw' },
    });
    const run = new GatewayRun(gateway);
    await gateway.start();
    return run;
  }

  installedFor(publicKey: string): Array<Stamped<InstalledEvent>> {
    return this.installed.filter((e) => e.publicKey === publicKey);
  }

  rejectedFor(publicKey: string): Array<Stamped<RejectedEvent>> {
    return this.rejected.filter((e) => e.publicKey === publicKey);
  }

  /** One line for t.diagnostic: the errors the gateway reported and survived. */
  describeErrors(): string {
    return this.errors.map((e) => `${e.stage}: ${e.code}`).join(', ') || 'none';
  }

  async stop(): Promise<void> {
    await this.gateway.stop();
  }
}

export interface ChildEvent {
  event: string;
  [field: string]: unknown;
}

let bundled: Promise<string[]> | null = null;

/**
 * How to run gateway-child.ts: bundled once by esbuild (tsx's own transpiler) into one ES module
 * that plain node runs, because a `node --import tsx` start, transpiling or cache-reading each
 * of lib/'s modules, took one to two minutes in the VM (two at once, on a busy host). The bundle lives under
 * node_modules/.cache so that its bare imports (better-sqlite3, prom-client, node-gyp-build)
 * resolve from the project, and the addon is found by walking up to binding.gyp as usual.
 * Falls back to tsx when esbuild cannot be loaded.
 */
function childCommand(): Promise<string[]> {
  bundled ??= (async () => {
    const source = fileURLToPath(new URL('./gateway-child.ts', import.meta.url));
    try {
      const esbuild = await import('esbuild');
      const dir = fileURLToPath(new URL('../../../node_modules/.cache/jitguard-kernel-tests/', import.meta.url));
      mkdirSync(dir, { recursive: true });
      const outfile = join(dir, `gateway-child-${process.pid}.mjs`);
      await esbuild.build({ entryPoints: [source], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error' });
      process.once('exit', () => rmSync(outfile, { force: true }));
      // The gateway's verification threads start from verify-worker.mjs beside the bundle
      // (lib/gateway/verify-worker-entry.ts). Shared by the test files' bundles in this folder:
      // written under a temporary name and renamed, so no process ever starts a half-written one.
      const worker = await esbuild.build({
        entryPoints: [fileURLToPath(new URL('../../../lib/gateway/verify-worker.ts', import.meta.url))], outfile: join(dir, 'verify-worker.mjs'),
        bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error', write: false,
      });
      const partial = join(dir, `verify-worker-${process.pid}.mjs.partial`);
      writeFileSync(partial, worker.outputFiles[0]!.contents);
      renameSync(partial, join(dir, 'verify-worker.mjs'));
      return [outfile];
    } catch (error) {
      console.warn(`# bundling gateway-child.ts failed (${String(error)}); starting it with tsx (slow in the VM)`);
      return ['--import', 'tsx', source];
    }
  })();
  return bundled;
}

/**
 * A gateway-child.ts process: spawned (and loading its modules) by `spawn()`, started with a
 * configuration (store and interface opened) by `start()`.
 */
export class ChildGateway {
  readonly events: Array<ChildEvent & { at: number }> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  static async spawn(): Promise<ChildGateway> {
    return new ChildGateway(await childCommand());
  }

  private constructor(args: string[]) {
    this.child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const event = JSON.parse(line) as ChildEvent;
      this.events.push({ ...event, at: Date.now() });
      trace(`child ${this.child.pid}: ${event.event} ${typeof event.publicKey === 'string' ? event.publicKey.slice(0, 8) : ''} ${String(event.reason ?? '')}`);
    });
  }

  of(event: string): Array<ChildEvent & { at: number }> {
    return this.events.filter((e) => e.event === event);
  }

  /** Opens the store and the interface and starts the gateway (see `of('ready')`). */
  start(config: GatewayChildConfig): void {
    this.child.stdin!.write(`start ${JSON.stringify(config)}\n`);
  }

  command(line: 'stats' | 'stop'): void {
    this.child.stdin!.write(line + '\n');
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}
