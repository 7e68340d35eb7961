/**
 * Request/response between the bench's orchestrator and its child processes (the gateway, the
 * synthetic initiator), over Node's IPC channel. A child runs inside a network namespace: it is
 * started through `ip netns exec`, which keeps the IPC descriptor and the environment that tell
 * Node where the channel is.
 */
import { spawn, type ChildProcess } from 'node:child_process';

interface Request {
  id: number;
  method: string;
  params: unknown;
}

interface Response {
  id: number;
  result?: unknown;
  error?: string;
}

export type Handlers = Record<string, (params: any) => unknown>;

/** Child side: answers requests with `handlers` until the parent disconnects. */
export function serve(handlers: Handlers): void {
  if (!process.send) throw new Error('bench child started without an IPC channel');
  process.on('message', (message: Request) => {
    const reply = (response: Omit<Response, 'id'>) => process.send!({ id: message.id, ...response });
    const handler = handlers[message.method];
    if (!handler) {
      reply({ error: `unknown method ${message.method}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.params))
      .then(
        (result) => reply({ result }),
        (error: unknown) => reply({ error: (error as Error)?.stack ?? String(error) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Parent side: one child process and its pending calls. */
export class ChildRpc {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private exited: string | null = null;
  private readonly stderr: string[] = [];
  readonly child: ChildProcess;

  /**
   * Starts `command` inside network namespace `ns` with a raised descriptor limit (the
   * initiator holds a socket per source address).
   */
  constructor(readonly name: string, ns: string, command: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn('ip', ['netns', 'exec', ns, 'bash', '-c', 'ulimit -n 65536 && exec "$@"', 'bash', ...command], {
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
      env: { ...process.env, ...env },
    });
    this.child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.stderr.push(text);
      if (this.stderr.length > 50) this.stderr.shift();
      if (process.env.JITGUARD_BENCH_VERBOSE) process.stderr.write(`[${name}] ${text}`);
    });
    this.child.on('message', (message: Response) => {
      const call = this.pending.get(message.id);
      if (!call) return;
      this.pending.delete(message.id);
      if (message.error !== undefined) call.reject(new Error(`${name}: ${message.error}`));
      else call.resolve(message.result);
    });
    this.child.on('exit', (code, signal) => {
      this.exited = `exited with ${signal ?? code}`;
      for (const call of this.pending.values()) call.reject(new Error(`${name} ${this.exited}: ${this.stderr.join('').slice(-1500)}`));
      this.pending.clear();
    });
  }

  call<T = unknown>(method: string, params: unknown = {}, timeoutMs = 600_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} ${this.exited}: ${this.stderr.join('').slice(-1500)}`));
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${method} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(timer); resolve(v as T); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.child.send({ id, method, params });
    });
  }

  /** Disconnects (the child exits on disconnect) and waits for the exit; SIGKILL after `graceMs`. */
  async close(graceMs = 30_000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
