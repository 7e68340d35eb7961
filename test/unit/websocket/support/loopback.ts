/**
 * Loopback stand-ins for the relay tests: a UDP "kernel" that records and echoes what the relay
 * sends it, a raw flyctl-style WebSocket client (magic, length-prefixed text frames), and a count
 * of this process's UDP sockets from /proc.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { WebSocket } from 'ws';
import { encodeFrame, encodeMagic, FrameParser } from '../../../../lib/websocket/stream.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export interface Received {
  payload: Buffer;
  from: RemoteInfo;
}

/** A UDP socket standing in for the WireGuard interface: records every datagram and, if asked, echoes it. */
export class FakeKernel {
  readonly received: Received[] = [];
  echo = true;
  private constructor(readonly socket: Socket, readonly port: number) {}

  static async start(): Promise<FakeKernel> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const kernel = new FakeKernel(socket, socket.address().port);
    socket.on('message', (payload, from) => {
      kernel.received.push({ payload, from });
      if (kernel.echo) socket.send(payload, from.port, from.address);
    });
    return kernel;
  }

  send(payload: Uint8Array, port: number): void {
    this.socket.send(payload, port, '127.0.0.1');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A local UDP socket standing in for the WireGuard client behind a bridge. */
export class LocalClient {
  readonly received: Buffer[] = [];
  private constructor(readonly socket: Socket) {}

  static async start(): Promise<LocalClient> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const client = new LocalClient(socket);
    socket.on('message', (payload) => client.received.push(payload));
    return client;
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(payload: Uint8Array, port: number): void {
    this.socket.send(payload, port, '127.0.0.1');
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A flyctl-style client written against ws directly, so a test controls every byte and frame type. */
export class RawClient {
  readonly messages: Array<{ data: Buffer; isBinary: boolean }> = [];
  readonly datagrams: Buffer[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<void>;
  private readonly parser = new FrameParser({ expectMagic: false });

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      resolve();
    }));
    ws.on('error', () => {});
    ws.on('message', (data: Buffer, isBinary) => {
      this.messages.push({ data, isBinary });
      for (const d of this.parser.push(data)) this.datagrams.push(Buffer.from(d));
    });
  }

  /** Opens a connection; with `magic` (default) writes the magic first, as its own text message. */
  static async open(url: string, options: { magic?: boolean; protocols?: string[]; rejectUnauthorized?: boolean; localAddress?: string } = {}): Promise<RawClient> {
    const ws = new WebSocket(url, options.protocols ?? [], { skipUTF8Validation: true, perMessageDeflate: false, rejectUnauthorized: options.rejectUnauthorized ?? true,
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
    });
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
      ws.once('error', reject);
    });
    if (options.magic ?? true) client.text(encodeMagic());
    return client;
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  text(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: false });
  }

  binary(bytes: Uint8Array): void {
    this.ws.send(bytes, { binary: true });
  }

  /** One datagram as one message (newer clients). */
  datagram(payload: Uint8Array): void {
    this.text(encodeFrame(payload));
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== this.ws.CLOSED) this.ws.close();
    await this.closed;
  }
}

/** HTTP status of an upgrade the server refused (or 101 when it was accepted, then closed). */
export async function upgradeStatus(url: string, localAddress?: string): Promise<number> {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress !== undefined ? { localAddress } : {}) });
  return new Promise((resolve) => {
    ws.once('open', () => { ws.terminate(); resolve(101); });
    ws.once('unexpected-response', (_request, response) => { resolve(response.statusCode ?? 0); ws.terminate(); });
    ws.once('error', () => resolve(0));
  });
}

/** UDP sockets this process holds, by inode (/proc/self/fd matched against /proc/net/udp{,6}). */
export function udpSocketsOfThisProcess(): number {
  const udpInodes = new Set<string>();
  for (const table of ['/proc/self/net/udp', '/proc/self/net/udp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length > 9) udpInodes.add(fields[9]!);
    }
  }
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match && udpInodes.has(match[1]!)) count++;
  }
  return count;
}

/** Open file descriptors of this process. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}
