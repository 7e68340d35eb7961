/**
 * The demo's control plane: the HTTP resolver contract (README, "The HTTP resolver contract")
 * over a JSON file of peers, written against the contract and not against jitguard's code (it
 * imports nothing from lib/): any control plane a gateway operator already has would do the same.
 *
 *   GET {base}/{key}   key = the public key in base64url without padding (43 characters)
 *   200 {"publicKey","allowedIps","persistentKeepalive"?}   the peer, from the file
 *   404                                                     a key the file does not list
 *   401                                                     a missing or wrong Bearer token
 *
 * The file is re-read on every request, so editing it is how an operator adds or removes a peer.
 * Every request is recorded: the demo's claims about who asked the control plane what are
 * counted here, on the server side, not taken from the gateway.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One entry of the peers file. `name` is the file's own label and is not sent. */
export interface PeerFileEntry {
  name: string;
  publicKey: string;
  allowedIps: string[];
  persistentKeepalive?: number;
}

export interface PeersFile {
  peers: PeerFileEntry[];
}

export interface ControlPlaneRequest {
  /** The key asked for (base64), or null when the path held none. */
  publicKey: string | null;
  status: number;
  at: number;
}

export interface ControlPlaneOptions {
  peersFile: string;
  host: string;
  port: number;
  /** Path prefix of the resolver URL, e.g. /v1/wireguard/peers. */
  basePath: string;
  bearerToken: string;
  onRequest?: (request: ControlPlaneRequest) => void;
}

const URL_KEY = /^[A-Za-z0-9_-]{43}$/;

export class ControlPlane {
  readonly requests: ControlPlaneRequest[] = [];
  private constructor(private readonly server: Server, private readonly options: ControlPlaneOptions) {}

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const server = createServer();
    const plane = new ControlPlane(server, options);
    server.on('request', (req, res) => void plane.answer(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => resolve());
    });
    return plane;
  }

  /** The base URL to give `jitguard gateway --resolver`. */
  get url(): string {
    const { address, port } = this.server.address() as AddressInfo;
    return `http://${address}:${port}${this.options.basePath}`;
  }

  /** Requests for `publicKey` (base64), whatever they were answered. */
  requestsFor(publicKey: string): number {
    return this.requests.filter((r) => r.publicKey === publicKey).length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0]!;
    const prefix = `${this.options.basePath}/`;
    const urlKey = path.startsWith(prefix) ? path.slice(prefix.length) : '';
    const publicKey = URL_KEY.test(urlKey) ? fromBase64Url(urlKey) : null;
    const reply = (status: number, body: unknown) => {
      const request = { publicKey, status, at: Date.now() };
      this.requests.push(request);
      this.options.onRequest?.(request);
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.headers.authorization !== `Bearer ${this.options.bearerToken}`) return reply(401, { error: 'a Bearer token is required' });
    if (req.method !== 'GET' || publicKey === null) return reply(400, { error: `expected GET ${prefix}{base64url key}` });
    let file: PeersFile;
    try {
      file = JSON.parse(await readFile(this.options.peersFile, 'utf8')) as PeersFile;
    } catch (error) {
      return reply(500, { error: `the peers file cannot be read: ${(error as Error).message}` });
    }
    const entry = file.peers.find((p) => p.publicKey === publicKey);
    if (!entry) return reply(404, { error: 'unknown key' });
    reply(200, {
      publicKey: entry.publicKey,
      allowedIps: entry.allowedIps,
      ...(entry.persistentKeepalive !== undefined ? { persistentKeepalive: entry.persistentKeepalive } : {}),
    });
  }
}

export function toBase64Url(publicKey: string): string {
  return publicKey.replace(/=+$/, '').replaceAll('+', '-').replaceAll('/', '_');
}

function fromBase64Url(key: string): string {
  return `${key.replaceAll('-', '+').replaceAll('_', '/')}=`;
}
