/** A control plane implementing the resolver contract in memory, recording each request's headers. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { keyFromUrl } from '../../../../lib/gateway/peer-config.js';
import type { ResolvedPeer } from '../../../../lib/gateway/types.js';

export class ControlPlane {
  readonly peers = new Map<string, ResolvedPeer>();
  readonly requests: Array<{ key: string; headers: IncomingHttpHeaders }> = [];
  private readonly server: Server = createServer((req, res) => {
    const key = keyFromUrl((req.url ?? '').split('/').pop() ?? '');
    this.requests.push({ key, headers: req.headers });
    const peer = this.peers.get(key);
    res.writeHead(peer ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(peer ?? {}));
  });
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1/peers`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
