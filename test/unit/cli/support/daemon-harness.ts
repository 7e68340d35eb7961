/**
 * The daemon in-process over fakes: a FakeKernel that can also list and create interfaces,
 * log lines captured from pino, temporary credential files, and `runCli` driven with a fake
 * signal source, so a test sends SIGHUP or SIGTERM without touching the test process.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { DeviceConfig, Device, DeviceWithPrivateKey, GetDeviceOptions } from '../../../../lib/wireguard/types.js';
import type { Daemon } from '../../../../lib/cli/daemon.js';
import { runCli, type CliIo } from '../../../../lib/cli/run.js';
import { FakeKernel } from '../../gateway/support/fakes.js';

/** /proc/self/status lines with every capability (what root has). */
export const ALL_CAPABILITIES = 'Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n';

/** A CapEff of exactly the given bits. */
export function capabilityStatus(...bits: number[]): string {
  const mask = bits.reduce((m, bit) => m | (1n << BigInt(bit)), 0n);
  return `Name:\tnode\nCapEff:\t${mask.toString(16).padStart(16, '0')}\n`;
}

/** FakeKernel plus the interface listing and creation the daemon's setup uses. */
export class DaemonKernel extends FakeKernel {
  exists: boolean;
  hasPrivateKey = true;
  configured: DeviceConfig[] = [];
  createCalls = 0;

  constructor(options: { exists?: boolean; name?: string } = {}) {
    super(options.name ?? 'wg0');
    this.exists = options.exists ?? true;
  }

  async listDevices(): Promise<string[]> {
    return this.exists ? [this.name] : [];
  }

  async createDevice(name: string): Promise<void> {
    if (name !== this.name) throw Object.assign(new Error('fake kernel: one interface'), { code: 'EINVAL' });
    this.createCalls++;
    this.exists = true;
  }

  // As WireGuard.getDevice: the options (the private key from the same dump) go to the fake.
  override getDevice(name: string): Promise<Device>;
  override getDevice(name: string, options: GetDeviceOptions & { privateKey: true }): Promise<DeviceWithPrivateKey>;
  override getDevice(name: string, options?: GetDeviceOptions): Promise<Device | DeviceWithPrivateKey>;
  override async getDevice(name: string, options?: GetDeviceOptions): Promise<Device | DeviceWithPrivateKey> {
    if (!this.exists) throw Object.assign(new Error('no such device'), { code: 'ENODEV' });
    const device = await super.getDevice(name, options);
    if (this.hasPrivateKey) return options?.privateKey ? { ...device, privateKey: device.privateKey ?? null } : device;
    return { ...device, publicKey: null, ...(options?.privateKey ? { privateKey: null } : {}) };
  }

  override async setDevice(name: string, config: DeviceConfig): Promise<void> {
    if (config.privateKey !== undefined || config.listenPort !== undefined) {
      // Copied: the daemon wipes its key bytes once the kernel has them.
      const key = config.privateKey instanceof Uint8Array ? Uint8Array.from(config.privateKey) : config.privateKey;
      this.configured.push({ ...config, privateKey: key });
    }
    await super.setDevice(name, config);
  }
}

/** Collects every log line pino writes, parsed. */
export class LogCapture extends Writable {
  readonly text: string[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text.push(chunk.toString('utf8'));
    callback();
  }

  get all(): string {
    return this.text.join('');
  }

  lines(): Array<Record<string, unknown>> {
    return this.all.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  events(name: string): Array<Record<string, unknown>> {
    return this.lines().filter((l) => l.event === name);
  }
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'jitguard-cli-'));

  file(name: string, content: string, mode = 0o600): string {
    const path = join(this.path, name);
    writeFileSync(path, content, { mode });
    return path;
  }

  join(name: string): string {
    return join(this.path, name);
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface CliRun {
  /** Resolves with the exit code. */
  exit: Promise<number>;
  stdout: string[];
  stderr: string[];
  log: LogCapture;
  signals: EventEmitter;
  /** Resolves once the daemon is ready (never, if it refused). */
  daemon: Promise<Daemon>;
}

/** Runs the CLI in-process; `daemon` overrides the deps (default: a DaemonKernel, no capture, all capabilities). */
export function startCli(argv: string[], options: Partial<Pick<CliIo, 'daemon' | 'forceAfterMs'>> = {}): CliRun {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const log = new LogCapture();
  const signals = new EventEmitter();
  let onDaemon!: (daemon: Daemon) => void;
  const daemon = new Promise<Daemon>((resolve) => { onDaemon = resolve; });
  const exit = runCli(argv, {
    stdout: (t) => stdout.push(t),
    stderr: (t) => stderr.push(t),
    signals,
    logDestination: log,
    daemon: { kernel: new DaemonKernel(), capture: false, capabilityStatus: ALL_CAPABILITIES, ...options.daemon },
    onDaemon,
    ...(options.forceAfterMs !== undefined ? { forceAfterMs: options.forceAfterMs } : {}),
  });
  return { exit, stdout, stderr, log, signals, daemon };
}

/** Starts the CLI and waits until the daemon is ready, or fails with what it wrote to stderr. */
export async function readyCli(argv: string[], options: Parameters<typeof startCli>[1] = {}): Promise<CliRun & { ready: Daemon }> {
  const run = startCli(argv, options);
  const ready = await Promise.race([
    run.daemon,
    run.exit.then((code) => { throw new Error(`the CLI exited ${code} before it was ready: ${run.stderr.join('')}`); }),
  ]);
  return { ...run, ready };
}

/** Stops a running CLI with SIGTERM and returns its exit code. */
export async function terminate(run: CliRun): Promise<number> {
  run.signals.emit('SIGTERM');
  return run.exit;
}
