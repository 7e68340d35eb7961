/**
 * Shared machinery of the privileged capture tests and bench/capture.ts: network-namespace
 * pairs joined by a veth, the capture agent (a child process inside a namespace), the packet
 * sender (a small C program compiled on first use), and a wireguard-go client.
 *
 * Everything is created under names unique to this process and deleted afterwards; nothing
 * touches the host's own interfaces or addresses.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');

export const MAC_A = '02:6a:67:00:00:0a';
export const MAC_B = '02:6a:67:00:00:0b';
export const V4_A = '10.77.0.1';
export const V4_B = '10.77.0.2';
export const V6_A = 'fd77::1';
export const V6_B = 'fd77::2';

const TOOLS = ['ip', 'wireguard-go', 'wg', 'capsh', 'cc'];

/**
 * Null when this process can run the privileged tests; else why not. The test files turn a
 * reason into a failure when CI=true and into a skip otherwise.
 */
export function privilegeProblem(tools: readonly string[] = TOOLS): string | null {
  if (process.platform !== 'linux') return 'privileged capture tests need Linux';
  if (process.getuid?.() !== 0) {
    return 'privileged capture tests need root (network namespaces, veth, AF_PACKET): run them as root (bash test/privileged/run.sh)';
  }
  const missing = tools.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    return `privileged capture tests need ${missing.join(', ')} (Debian: apt-get install iproute2 wireguard-go wireguard-tools libcap2-bin gcc)`;
  }
  return null;
}

export function run(command: string, args: readonly string[], input?: string): string {
  return execFileSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

let counter = 0;

/** Two namespaces, A and B, joined by veth va (in A) — vb (in B), with fixed MACs and addresses. */
/**
 * A maker of namespace pairs that are all destroyed when the calling test file ends. Call it
 * once at a test file's top level (it registers the file's `after` hook).
 */
export function pairsForThisFile(): () => NetnsPair {
  const pairs: NetnsPair[] = [];
  after(() => {
    for (const pair of pairs) pair.destroy();
  });
  return () => {
    const pair = NetnsPair.create();
    pairs.push(pair);
    return pair;
  };
}

export class NetnsPair {
  readonly a: string;
  readonly b: string;
  private readonly children = new Set<ChildProcess>();

  private constructor(tag: string) {
    this.a = `${tag}a`;
    this.b = `${tag}b`;
  }

  static create(): NetnsPair {
    const pair = new NetnsPair(`jgc${process.pid}x${counter++}`);
    try {
      run('ip', ['netns', 'add', pair.a]);
      run('ip', ['netns', 'add', pair.b]);
      run('ip', ['link', 'add', 'va', 'address', MAC_A, 'netns', pair.a, 'type', 'veth',
        'peer', 'name', 'vb', 'address', MAC_B, 'netns', pair.b]);
      for (const [ns, dev, v4, v6] of [[pair.a, 'va', V4_A, V6_A], [pair.b, 'vb', V4_B, V6_B]] as const) {
        run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        run('ip', ['-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev]);
        run('ip', ['-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
        run('ip', ['-n', ns, 'link', 'set', dev, 'up']);
      }
      // Static neighbours: no ARP/ND traffic to wait for or to confuse counts.
      run('ip', ['-n', pair.a, 'neigh', 'replace', V4_B, 'lladdr', MAC_B, 'dev', 'va', 'nud', 'permanent']);
      run('ip', ['-n', pair.a, 'neigh', 'replace', V6_B, 'lladdr', MAC_B, 'dev', 'va', 'nud', 'permanent']);
    } catch (error) {
      pair.destroy();
      throw error;
    }
    return pair;
  }

  /** Index of a device inside a namespace. */
  ifindex(ns: string, device: string): number {
    const json = JSON.parse(run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', device])) as { ifindex: number }[];
    return json[0]!.ifindex;
  }

  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    return child;
  }

  destroy(): void {
    for (const child of this.children) child.kill('SIGKILL');
    for (const ns of [this.a, this.b]) {
      try {
        const pids = run('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } catch {
        /* namespace missing */
      }
      try {
        run('ip', ['netns', 'del', ns]);
      } catch {
        /* never created */
      }
    }
  }
}

export interface AgentMessage {
  type: string;
  [key: string]: unknown;
}

/** A capture-agent.ts child inside a namespace. */
export class Agent {
  readonly messages: AgentMessage[] = [];
  private waiters: { predicate: (m: AgentMessage) => boolean; resolve: (m: AgentMessage) => void }[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';

  private constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let message: AgentMessage;
      try {
        message = JSON.parse(line) as AgentMessage;
      } catch {
        message = { type: 'noise', line };
      }
      this.messages.push(message);
      this.waiters = this.waiters.filter((w) => {
        if (!w.predicate(message)) return true;
        w.resolve(message);
        return false;
      });
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** Starts the agent with `config` inside `ns`, optionally under a command prefix (capsh). */
  static async start(pair: NetnsPair, ns: string, config: Record<string, unknown>, prefix: string[] = []): Promise<Agent> {
    const nodeArgs = ['--import', 'tsx', join(here, 'capture-agent.ts'), JSON.stringify(config)];
    const command = prefix.length > 0
      ? ['ip', 'netns', 'exec', ns, ...prefix, [process.execPath, ...nodeArgs].map(shellQuote).join(' ')]
      : ['ip', 'netns', 'exec', ns, process.execPath, ...nodeArgs];
    const child = pair.track(spawn(command[0]!, command.slice(1), { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] }));
    const agent = new Agent(child);
    await agent.waitFor((m) => m.type === 'ready' || m.type === 'open-error', 30_000);
    return agent;
  }

  /** Starts the agent and requires its capture to have opened. */
  static async startReady(pair: NetnsPair, ns: string, config: Record<string, unknown>): Promise<Agent> {
    const agent = await Agent.start(pair, ns, config);
    const first = agent.messages[0]!;
    if (first.type !== 'ready') {
      agent.child.kill('SIGKILL');
      throw new Error(`the capture did not open: ${JSON.stringify(first)}`);
    }
    return agent;
  }

  send(command: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** Resolves with the first message (already received or future) that matches. */
  waitFor(predicate: (m: AgentMessage) => boolean, timeoutMs = 10_000): Promise<AgentMessage> {
    const seen = this.messages.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (m: AgentMessage) => {
          clearTimeout(timer);
          void this.exited.then(() => undefined);
          resolve(m);
        },
      };
      const fail = (why: string) => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`agent: ${why}; last messages ${JSON.stringify(this.messages.slice(-5))}; stderr: ${this.stderr.slice(-2000)}`));
      };
      const timer = setTimeout(() => fail('timed out waiting'), timeoutMs);
      this.waiters.push(waiter);
      void this.exited.then((code) => {
        if (this.waiters.includes(waiter)) {
          clearTimeout(timer);
          fail(`exited (${String(code)}) while waiting`);
        }
      });
    });
  }

  /** Sends a command and waits for the reply of the given type (replies come after older messages). */
  async request(command: Record<string, unknown>, replyType: string, timeoutMs = 10_000): Promise<AgentMessage> {
    const from = this.messages.length;
    this.send(command);
    return this.waitFor((m) => m.type === replyType && this.messages.indexOf(m) >= from, timeoutMs);
  }

  ofType(type: string): AgentMessage[] {
    return this.messages.filter((m) => m.type === type);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.send({ cmd: 'exit' });
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

let scratch: string | undefined;

function scratchDir(): string {
  if (scratch === undefined) {
    scratch = mkdtempSync(join(tmpdir(), 'jitguard-capture-'));
    process.on('exit', () => rmSync(scratch!, { recursive: true, force: true }));
  }
  return scratch;
}

const compiled = new Map<string, string>();

/** Compiles test/privileged/<name>.c once per process; returns the executable's path. */
export function compileHelper(name: string): string {
  let path = compiled.get(name);
  if (path === undefined || !existsSync(path)) {
    path = join(scratchDir(), name);
    run('cc', ['-O2', '-Wall', '-o', path, join(here, `${name}.c`)]);
    compiled.set(name, path);
  }
  return path;
}

/** Compiles capture-sender.c once per process. */
export function sender(): string {
  return compileHelper('capture-sender');
}

export interface OutgoingPacket {
  protocol: number;
  bytes: Uint8Array;
}

let packetFiles = 0;

/**
 * Sends `packets` (cycling) out of `device` in `ns` to `mac`. Resolves with the number sent.
 * count/durationMs/rate: 0 = unlimited (at least one of count and durationMs must be set).
 */
export function sendPackets(
  pair: NetnsPair,
  ns: string,
  device: string,
  mac: string,
  packets: readonly OutgoingPacket[],
  limits: { count?: number; durationMs?: number; rate?: number },
): Promise<number> {
  const file = join(scratchDir(), `packets-${packetFiles++}.txt`);
  writeFileSync(file, packets.map((p) => `${p.protocol.toString(16).padStart(4, '0')} ${Buffer.from(p.bytes).toString('hex')}\n`).join(''));
  const child = pair.track(spawn('ip', ['netns', 'exec', ns, sender(), device, mac, file,
    String(limits.count ?? 0), String(limits.durationMs ?? 0), String(limits.rate ?? 0)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('exit', (code) => {
      const match = /sent (\d+)/.exec(stdout);
      if (code === 0 && match) resolve(Number(match[1]));
      else reject(new Error(`capture-sender failed (${code}): ${stderr}`));
    });
  });
}

/** A wireguard-go device in a namespace, used as a real initiator. */
export class WireGuardClient {
  private constructor(
    private readonly pair: NetnsPair,
    private readonly ns: string,
    readonly device: string,
    readonly listenPort: number,
    private readonly peerKey: string,
    private readonly process: ChildProcess,
  ) {}

  static async start(pair: NetnsPair, ns: string, listenPort: number): Promise<WireGuardClient> {
    // wireguard-go keeps its control socket in /var/run/wireguard/<name>.sock, shared by all
    // namespaces: the name must be unique on the host.
    const device = `jgw${process.pid % 100000}${counter++}`.slice(0, 15);
    const child = pair.track(spawn('ip', ['netns', 'exec', ns, 'wireguard-go', '-f', device], {
      stdio: 'ignore',
      env: { ...process.env, WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1', LOG_LEVEL: 'error' },
    }));
    const socket = `/var/run/wireguard/${device}.sock`;
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`wireguard-go ${device} did not start`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const keyFile = join(scratchDir(), `${device}.key`);
    writeFileSync(keyFile, run('wg', ['genkey']));
    chmodSync(keyFile, 0o600);
    const peerKey = run('wg', ['pubkey'], run('wg', ['genkey'])).trim();
    run('ip', ['netns', 'exec', ns, 'wg', 'set', device, 'private-key', keyFile, 'listen-port', String(listenPort)]);
    run('ip', ['-n', ns, 'link', 'set', device, 'up']);
    return new WireGuardClient(pair, ns, device, listenPort, peerKey, child);
  }

  /**
   * Makes the device send one handshake initiation to `endpoint` now: the peer is removed and
   * added again with a persistent keepalive, which makes wireguard-go initiate at once.
   */
  initiate(endpoint: string): void {
    run('ip', ['netns', 'exec', this.ns, 'wg', 'set', this.device, 'peer', this.peerKey, 'remove']);
    run('ip', ['netns', 'exec', this.ns, 'wg', 'set', this.device, 'peer', this.peerKey, 'endpoint', endpoint,
      'allowed-ips', '10.99.0.0/24', 'persistent-keepalive', '25']);
  }

  stop(): void {
    this.process.kill('SIGTERM');
    void this.pair;
  }
}
