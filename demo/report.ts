/**
 * What the demo prints: a line for each thing that happens (the daemon's JSON log lines and the
 * clients' results, told in words with the names of the demo's cast), the expectations as they
 * are checked, and the table. Nothing here measures anything: every figure it prints is handed
 * to it from a tool's output or a log line of this run.
 */
import type { LogLine } from './clients.js';

export class Narrator {
  private readonly names = new Map<string, string>();
  constructor(private readonly startedAt: number) {}

  /** Log lines and figures name a key by the demo's name for its holder. */
  nameKey(publicKey: string, name: string): void {
    this.names.set(publicKey, name);
  }

  nameOf(publicKey: unknown): string {
    if (typeof publicKey !== 'string') return 'an unauthenticated sender';
    return this.names.get(publicKey) ?? `${publicKey.slice(0, 8)}…`;
  }

  say(who: string, text: string): void {
    const seconds = ((Date.now() - this.startedAt) / 1000).toFixed(1).padStart(5);
    console.log(`[${seconds} s] ${who.padEnd(13)} ${text}`);
  }

  heading(text: string): void {
    console.log(`\n== ${text}`);
  }

  /** A daemon log line in words; lines with nothing to tell a newcomer are left out. */
  daemonLine(line: LogLine): void {
    const text = this.describeDaemonLine(line);
    if (text !== null) this.say('gateway', text);
  }

  bridgeLine(line: LogLine): void {
    switch (line.event) {
      case 'listening': this.say('ws-connect', `listening on ${String(line.listen)} for the local WireGuard client`); break;
      case 'connected': this.say('ws-connect', `connected to ${String(line.url)} (certificate pinned)`); break;
      case 'disconnected': this.say('ws-connect', `disconnected (${String(line.code ?? '')} ${String(line.reason ?? '')}), retrying in ${String(line.retryInMs)} ms`); break;
      default: if (line.level === 'error' || line.level === 'warn') this.say('ws-connect', `${String(line.event)}: ${String(line.msg)}`);
    }
  }

  private describeDaemonLine(line: LogLine): string | null {
    switch (line.event) {
      case 'starting': return `starting on ${String(line.interface)} (store ${String(line.db)})`;
      case 'interface-created': return `created ${String(line.interface)}: public key ${String(line.publicKey)}, UDP port ${String(line.listenPort)}`;
      case 'ready': return `ready: ${String(line.kernelPeers)} kernel peers, ${String(line.storePeers)} stored; /metrics ${String(line.metrics)}, admin ${String(line.admin)}, WebSocket ${String(line.websocket)}`;
      case 'installed': return `installed ${this.nameOf(line.publicKey)} from ${String(line.source)} via ${String(line.via)} (knock → install ${String(line.knockToInstallMs)} ms)`;
      case 'rejected': return `refused ${this.nameOf(line.publicKey)} from ${String(line.source)}: ${String(line.reason)}${line.detail !== undefined ? ` (${String(line.detail)})` : ''}`;
      case 'evicted': return `evicted ${this.nameOf(line.publicKey)}: ${String(line.reason)}${line.idleSeconds !== undefined && line.idleSeconds !== null ? ` after ${String(line.idleSeconds)} s` : ''}`;
      case 'websocket-connected': return `WebSocket client connected from ${String(line.client)}`;
      case 'websocket-disconnected': return `WebSocket client ${String(line.client)} disconnected (${String(line.reason)})`;
      case 'gateway-error': return `error survived in ${String(line.stage)}: ${String(line.code)}`;
      case 'stopping': return `${String(line.signal)}: stopping (no new connections, draining)`;
      case 'stopped': return 'stopped';
      case 'forced-exit': return 'drain took too long: forced exit';
      default: return line.level === 'error' || line.level === 'warn' || line.level === 'fatal' ? `${String(line.event)}: ${String(line.msg)}` : null;
    }
  }
}

export interface Expectation {
  what: string;
  held: boolean;
  detail: string;
}

/** Each claim the demo makes, checked against what was measured; the exit code is theirs. */
export class Expectations {
  readonly checked: Expectation[] = [];

  /** Records and prints one expectation; returns whether it held. */
  expect(what: string, held: boolean, detail = ''): boolean {
    this.checked.push({ what, held, detail });
    console.log(`  ${held ? 'ok  ' : 'FAIL'} ${what}${detail ? ` (${detail})` : ''}`);
    return held;
  }

  get failed(): Expectation[] {
    return this.checked.filter((e) => !e.held);
  }
}

/**
 * The closing lines and the exit code: 0 only if nothing stopped the demo early and every
 * expectation (at least one) held; otherwise a `FAILED:` line for each failed expectation and
 * for what stopped it.
 */
export function verdict(checked: readonly Expectation[], aborted: string | null, seconds: number, where: string | null): { lines: string[]; exitCode: number } {
  const failed = checked.filter((e) => !e.held);
  const lines = [
    ...(aborted !== null ? [`FAILED: the demo could not go on: ${aborted}`] : []),
    ...failed.map((f) => `FAILED: ${f.what}${f.detail ? ` (${f.detail})` : ''}`),
  ];
  const time = `${seconds.toFixed(1)} s${where !== null ? `; ${where}` : ''}`;
  if (aborted === null && failed.length === 0 && checked.length > 0) {
    return { lines: [...lines, `demo OK: all ${checked.length} expectations held (${time})`], exitCode: 0 };
  }
  lines.push(`demo FAILED: ${failed.length} of ${checked.length} expectations failed${aborted !== null ? ', and it stopped early' : ''} (${time})`);
  return { lines, exitCode: 1 };
}

/** Thrown when the demo cannot go on (the daemon did not start, a tool failed). */
export class DemoAborted extends Error {
  override name = 'DemoAborted';
}

export interface TableRow {
  client: string;
  path: string;
  firstReply: string;
  knockToInstall: string;
  outcome: string;
}

const HEADERS: TableRow = {
  client: 'client',
  path: 'path',
  firstReply: 'first packet → first reply',
  knockToInstall: 'knock → install',
  outcome: 'outcome',
};

export function printTable(rows: readonly TableRow[]): void {
  const columns = Object.keys(HEADERS) as Array<keyof TableRow>;
  const width = (c: keyof TableRow) => Math.max(...[HEADERS, ...rows].map((r) => r[c].length));
  const widths = columns.map(width);
  const line = (r: TableRow) => `| ${columns.map((c, i) => r[c].padEnd(widths[i]!)).join(' | ')} |`;
  console.log(line(HEADERS));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}
