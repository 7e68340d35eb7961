/**
 * The control plane of the gateway's kernel tests: a real node:http server speaking the
 * resolver contract (README, "The HTTP resolver contract"), which counts every request per key
 * and can be made to misbehave the ways a real one does: down (connection refused), slow (answers
 * after the resolver's timeout), 500, and malformed JSON.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keyFromUrl } from '../../../lib/index.js';
import type { ResolvedPeer } from '../../../lib/index.js';

export type ControlPlaneMode = 'ok' | 'down' | 'slow' | 'error500' | 'malformed';

export class ControlPlane {
  readonly directory = new Map<string, ResolvedPeer>();
  private readonly calls = new Map<string, number>();
  private server: Server;
  private port = 0;
  private modeValue: ControlPlaneMode = 'ok';
  /** How long a 'slow' answer takes. */
  slowMs = 1500;

  private constructor() {
    this.server = this.newServer();
  }

  static async start(): Promise<ControlPlane> {
    const plane = new ControlPlane();
    await plane.listen();
    return plane;
  }

  /** Base URL for `httpResolver({ url })`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/v1/wireguard/peers`;
  }

  get mode(): ControlPlaneMode {
    return this.modeValue;
  }

  /** Switches behaviour; 'down' closes the listening socket (and every connection), leaving it closed until another mode. */
  async setMode(mode: ControlPlaneMode): Promise<void> {
    if (mode === 'down' && this.modeValue !== 'down') {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
    } else if (mode !== 'down' && this.modeValue === 'down') {
      this.server = this.newServer();
      await this.listen(this.port);
    }
    this.modeValue = mode;
  }

  know(publicKey: string, allowedIps: string[]): void {
    this.directory.set(publicKey, { publicKey, allowedIps });
  }

  /** Requests received for the key (every request counts, whatever it was answered). */
  callsFor(publicKey: string): number {
    return this.calls.get(publicKey) ?? 0;
  }

  get totalCalls(): number {
    let total = 0;
    for (const n of this.calls.values()) total += n;
    return total;
  }

  async close(): Promise<void> {
    if (this.modeValue === 'down') return;
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private newServer(): Server {
    return createServer((req, res) => this.answer(req, res));
  }

  private async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    let key: string;
    try {
      key = keyFromUrl(decodeURIComponent((req.url ?? '').split('/').pop() ?? ''));
    } catch {
      res.writeHead(400).end();
      return;
    }
    this.calls.set(key, this.callsFor(key) + 1);
    const peer = this.directory.get(key);
    const json = (status: number, body: string) => {
      if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    };
    switch (this.modeValue) {
      case 'slow':
        setTimeout(() => json(peer ? 200 : 404, peer ? JSON.stringify(peer) : '{}'), this.slowMs);
        return;
      case 'error500':
        json(500, '{"error":"internal"}');
        return;
      case 'malformed':
        json(200, peer ? JSON.stringify(peer).slice(0, -7) : '{"publicKey": ');
        return;
      default:
        json(peer ? 200 : 404, peer ? JSON.stringify(peer) : '{}');
    }
  }
}

/**
 * Node loads fetch's HTTP client (undici) on the first call: seconds in the TCG VM (2.8 s
 * measured), more than a resolver's timeout, so a process's first lookup would fail. One fetch
 * of a data: URL loads it without any network. Returns how long that took.
 */
export async function warmUpFetch(): Promise<number> {
  const started = performance.now();
  await (await fetch('data:application/json,{}')).text();
  return performance.now() - started;
}
