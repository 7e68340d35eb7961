/**
 * `jitguard gateway` as the demo runs it: a separate process in the gateway's namespace, as the
 * user `nobody` holding only CAP_NET_ADMIN and CAP_NET_RAW (ambient, under capsh, as systemd's
 * AmbientCapabilities= gives them; root when nobody cannot read the project), configured by
 * flags alone. The demo reads nothing of it but
 * what an operator can: its JSON log lines on stdout, /metrics, the admin API, its exit code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { LogLine } from './clients.js';
import { toBase64Url } from './control-plane.js';
import { run, sleep } from './exec.js';
import { GATEWAY } from './topology.js';

export interface DaemonFiles {
  privateKey: string;
  db: string;
  adminToken: string;
  tlsCert: string;
  tlsKey: string;
}

export interface DaemonOptions {
  /** The command that runs the jitguard executable, e.g. [process.execPath, 'jitguard.mjs']. */
  jitguard: readonly string[];
  files: DaemonFiles;
  resolverUrl: string;
  resolverTokenFile: string;
  /** Seconds: short, so that eviction happens within the demo (production: 600, see README). */
  idleTimeout: number;
  evictInterval: number;
  /** false: run as root (the project is not readable by nobody; see `nobodyCanRun`). */
  asNobody: boolean;
  onLine: (line: LogLine) => void;
}

/**
 * Whether `nobody` can load the executable: a clone under /root (mode 0700) cannot be read by
 * it, and the demo then runs its processes as root rather than fail.
 */
export async function nobodyCanRun(jitguard: readonly string[]): Promise<boolean> {
  try {
    await run('capsh', ['--user=nobody', '--', '-c', 'test -r "$0" && test -r "$1"', jitguard.at(-1)!, resolve('node_modules/better-sqlite3/package.json')]);
    return true;
  } catch {
    return false;
  }
}

/** The command prefix that runs `command` as nobody, holding `capabilities` as ambient ones (none: no capability). */
export function asNobody(capabilities: readonly string[]): string[] {
  if (capabilities.length === 0) return ['capsh', '--user=nobody', '--', '-c', 'exec "$0" "$@"'];
  const caps = capabilities.join(',');
  // capsh as root: keep these as ambient across the switch to nobody, then exec the command.
  return ['capsh', `--caps=${caps}+eip cap_setpcap,cap_setuid,cap_setgid+ep`, '--keep=1', '--user=nobody', `--addamb=${caps}`, '--', '-c', 'exec "$0" "$@"'];
}

/** What GET /v1/peers/{key} answers (README, the admin API). */
export interface PeerView {
  inStore: 'configured' | 'revoked' | 'absent';
  inKernel: boolean;
  lastHandshake: string | null;
}

export class GatewayDaemon {
  readonly lines: LogLine[] = [];
  readonly spawnedAt = Date.now();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  private constructor(private readonly child: ChildProcess, private readonly adminToken: string, onLine: (line: LogLine) => void) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line: LogLine;
      try {
        line = { ...(JSON.parse(text) as object), at: Date.now() };
      } catch {
        line = { event: 'output', msg: text, at: Date.now() };
      }
      this.lines.push(line);
      onLine(line);
    });
  }

  static start(options: DaemonOptions): GatewayDaemon {
    const { files } = options;
    const flags = [
      'gateway',
      '--interface', 'wg0', '--private-key-file', files.privateKey, '--listen-port', String(GATEWAY.listenPort),
      '--capture-interface', 'eth0',
      '--db', files.db,
      '--resolver', options.resolverUrl, '--resolver-token-file', options.resolverTokenFile,
      '--metrics', `${GATEWAY.control}:${GATEWAY.metricsPort}`,
      '--admin', `${GATEWAY.control}:${GATEWAY.adminPort}`, '--admin-token-file', files.adminToken,
      '--websocket', `${GATEWAY.v4}:${GATEWAY.websocketPort}`, '--tls-cert', files.tlsCert, '--tls-key', files.tlsKey,
      '--idle-timeout', String(options.idleTimeout), '--evict-interval', String(options.evictInterval),
      // debug: refusals of forged or replayed packets are logged at debug (a flood must not flood the log).
      '--log-level', 'debug',
    ];
    // ip netns exec → capsh → bash → node: each step execs, so the child's pid is the daemon's.
    const child = spawn('ip', [
      'netns', 'exec', GATEWAY.namespace,
      ...(options.asNobody ? asNobody(['cap_net_admin', 'cap_net_raw']) : []),
      ...options.jitguard, ...flags,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    return new GatewayDaemon(child, readFileSync(files.adminToken, 'utf8').trim(), options.onLine);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  of(event: string): LogLine[] {
    return this.lines.filter((l) => l.event === event);
  }

  /** Waits for a log line; rejects (naming `what`) on timeout or if the daemon exits first. */
  async waitForLine(predicate: (line: LogLine) => boolean, timeoutMs: number, what: string): Promise<LogLine> {
    let found: LogLine | undefined;
    await this.until(() => (found = this.lines.find(predicate)) !== undefined, timeoutMs, what);
    return found!;
  }

  /** Waits for `condition` (checked every 50 ms); rejects on timeout or if the daemon exits first. */
  async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (!this.running) throw new Error(`the daemon exited before ${what}: ${this.stderr.trim() || '(nothing on stderr)'}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs / 1000} s`);
      await sleep(50);
    }
  }

  /** /proc/PID/status: the user and capabilities the daemon really holds. */
  credentials(): { uid: string; capEff: string } {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return { uid: /^Uid:\t(\d+)/m.exec(status)?.[1] ?? '?', capEff: /^CapEff:\t([0-9a-f]+)/m.exec(status)?.[1] ?? '?' };
  }

  async metrics(): Promise<string> {
    const res = await fetch(`http://${GATEWAY.control}:${GATEWAY.metricsPort}/metrics`);
    if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
    return res.text();
  }

  async peer(publicKey: string): Promise<PeerView> {
    const res = await fetch(`http://${GATEWAY.control}:${GATEWAY.adminPort}/v1/peers/${toBase64Url(publicKey)}`, {
      headers: { authorization: `Bearer ${this.adminToken}` },
    });
    if (res.status !== 200) throw new Error(`GET /v1/peers answered ${res.status}`);
    return (await res.json()) as PeerView;
  }

  /** SIGTERM, as systemd stops it; resolves with the exit code and how long the stop took. */
  async stop(): Promise<{ code: number | null; ms: number }> {
    const started = performance.now();
    this.child.kill('SIGTERM');
    const { code } = await this.exited;
    return { code, ms: performance.now() - started };
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** A sample of /metrics: the value of one series (labels as written, e.g. '{via="store"}'), or null. */
export function metricValue(text: string, name: string, labels = ''): number | null {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}${labels} `)) return Number(line.slice(name.length + labels.length + 1));
  }
  return null;
}

/** The lines of /metrics for these metric names (every label set), as the endpoint wrote them. */
export function metricLines(text: string, names: readonly string[]): string[] {
  return text.split('\n').filter((line) => names.some((n) => line.startsWith(`${n} `) || line.startsWith(`${n}{`)));
}
