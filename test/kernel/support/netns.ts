/**
 * Fresh network namespaces for kernel tests, and wg(8) as the independent oracle inside them.
 * Runs as root inside the test VM (or on a host whose kernel has WireGuard).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Namespace {
  name: string;
  /** Path for `new WireGuard({ netns })`. */
  path: string;
  /** Runs a command inside the namespace; resolves with stdout, rejects on non-zero exit. */
  exec(command: string, args: string[], input?: string): Promise<string>;
}

export async function exec(command: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    const { stdout } = await run(command, args, { maxBuffer: 1 << 28 });
    return stdout;
  }
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 1 << 28 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(error, { stderr }));
      else resolve(stdout);
    });
    child.stdin!.end(input);
  });
}

/** Creates a namespace with `lo` up, runs `body`, and deletes it whatever happens. */
export async function withNamespace<T>(body: (ns: Namespace) => Promise<T>): Promise<T> {
  const name = `jg-${randomBytes(4).toString('hex')}`;
  await exec('ip', ['netns', 'add', name]);
  const ns: Namespace = {
    name,
    path: `/run/netns/${name}`,
    exec: (command, args, input) => exec('ip', ['netns', 'exec', name, command, ...args], input),
  };
  try {
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return await body(ns);
  } finally {
    await exec('ip', ['netns', 'del', name]);
  }
}

export interface OracleConfig {
  interface: Record<string, string>;
  peers: Array<Record<string, string>>;
}

/** Parses `wg showconf` output into sections of key = value. */
export function parseShowconf(text: string): OracleConfig {
  const config: OracleConfig = { interface: {}, peers: [] };
  let section: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '[Interface]') section = config.interface;
    else if (trimmed === '[Peer]') config.peers.push((section = {}));
    else if (trimmed.includes('=') && section) {
      const at = trimmed.indexOf('=');
      section[trimmed.slice(0, at).trim()] = trimmed.slice(at + 1).trim();
    }
  }
  return config;
}

export async function showconf(ns: Namespace, name: string): Promise<OracleConfig> {
  return parseShowconf(await ns.exec('wg', ['showconf', name]));
}

/** True when this kernel can create WireGuard interfaces. */
export async function kernelHasWireGuard(): Promise<boolean> {
  const probe = `jgprobe${process.pid % 10000}`;
  try {
    await exec('ip', ['link', 'add', probe, 'type', 'wireguard']);
    await exec('ip', ['link', 'del', probe]);
    return true;
  } catch {
    return false;
  }
}
