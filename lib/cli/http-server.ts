/**
 * What the daemon's two HTTP servers (metrics, admin) share: listening with refusals that say
 * which flag's address failed, JSON replies, bounded JSON bodies, and closing that does not wait
 * for idle keep-alive connections.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatListenAddress, type ListenAddress } from './listen-address.js';
import { codeOf, messageOf, Refusal } from './refusal.js';

/** Listens; a failure (EADDRINUSE, EACCES below port 1024, EADDRNOTAVAIL) is a `Refusal` naming `flag`. */
export function listen(server: Server, address: ListenAddress, flag: string): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      const code = codeOf(error);
      const hint = code === 'EACCES' && address.port < 1024 ? ' (ports below 1024 need CAP_NET_BIND_SERVICE)' : '';
      reject(new Refusal(`${flag} ${formatListenAddress(address)}: cannot listen (${code ?? messageOf(error)})${hint}`));
    };
    const onListening = () => {
      server.off('error', onError);
      const bound = server.address() as AddressInfo;
      resolve({ host: bound.address, port: bound.port });
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(address.port, address.host);
  });
}

/** Stops accepting, ends idle keep-alive connections, and resolves when the rest are done. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) { resolve(); return; }
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export class BodyError extends Error {
  constructor(readonly status: 400 | 413 | 415, message: string) {
    super(message);
  }
}

/** Reads a JSON body of at most `limit` bytes (read as a stream and cut off, never buffered whole). */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) throw new BodyError(415, 'expected Content-Type: application/json');
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw new BodyError(413, `body larger than ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyError(413, `body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BodyError(400, 'body is not valid JSON');
  }
}
