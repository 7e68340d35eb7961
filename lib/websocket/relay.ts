/**
 * `WebSocketRelay`: WireGuard over WebSocket for clients whose network blocks UDP, compatible
 * with flyctl's client transport (see stream.ts for the framing). Each connection gets its own
 * UDP socket on loopback connected to the WireGuard interface's listen port (connection.ts);
 * an initiation from a client is handed to `onInitiation` (wire it to `Gateway.inject`) with
 * that socket's address as the source, so the peer the gateway installs has the relay's socket
 * as its endpoint and the kernel's handshake back reaches the client.
 *
 * The relay must run in the network namespace where the interface's UDP socket lives (the
 * gateway's), since it sends to 127.0.0.1:listenPort.
 *
 * flyctl's client dials `wss://host:443/` with any certificate, sends an Origin header and no
 * authorization (WireGuard authenticates), and writes WebSocket text frames carrying binary: the
 * relay does not UTF-8-validate them and answers with text frames, since that client closes
 * with 1003 on a binary frame. A client that offers the `wswg-binary` subprotocol (flyctl's
 * browser build) gets binary frames and may send either kind; for any other client a binary
 * frame is a protocol error that closes that connection (1003).
 */
import { EventEmitter } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type Socket as NetSocket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Registry } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import { ValidationError } from '../errors.js';
import { integerOption, secondsOption } from '../gateway/options.js';
import type { Address } from '../gateway/types.js';
import { parseAddress } from '../net/ip.js';
import { RelayConnection } from './connection.js';
import { emptyRelayStats, registerRelayMetrics, type CloseReason, type RefuseReason, type WebSocketRelayStats } from './metrics.js';
import { LENGTH_PREFIX_BYTES, MAX_DATAGRAM_LENGTH } from './stream.js';

/** The subprotocol a client offers to get binary frames back (flyctl's browser build needs it). */
export const BINARY_SUBPROTOCOL = 'wswg-binary';

export interface WebSocketRelayOptions {
  /** Address to listen on (default '0.0.0.0'; '::' for both families). */
  host?: string;
  /** TCP port (0: any free port; see `address` once listening). */
  port: number;
  /** The WireGuard interface's listen port (`gateway.listenPort`). */
  wireguardPort: number;
  /** Where that interface is reached from the relay (default '127.0.0.1'). */
  wireguardAddress?: string;
  /**
   * Called with every initiation-shaped datagram (148 bytes starting 01 00 00 00) a client
   * sends, and the loopback address the kernel sees that client at; the datagram also goes to
   * the kernel. Wire it to `gateway.inject`. A throw is counted (`initiationErrors`), not raised.
   */
  onInitiation?: (payload: Uint8Array, source: Address) => void;
  /** PEM certificate chain and key: serve wss:// (else plain ws://, for use behind a TLS terminator). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Connections at once, upgrades in progress included (default 1024); beyond: HTTP 503. */
  maxConnections?: number;
  /**
   * Connections at once from one client address (default 16; IPv4-mapped IPv6 counted as IPv4).
   * Behind a TLS terminator every client has the terminator's address: raise it there.
   */
  maxConnectionsPerAddress?: number;
  /** Bytes one connection may queue toward its client, and toward the kernel (default 262,144); beyond, datagrams are dropped and counted. */
  maxBufferedBytes?: number;
  /** Seconds without a byte from the client before its connection is closed (default 60; flyctl sends a keepalive after 1 s of silence). */
  idleTimeout?: number;
  /** Longest datagram accepted (default and ceiling 65,535, see `MAX_DATAGRAM_LENGTH`). */
  maxDatagramLength?: number;
  /** Register the `jitguard_websocket_*` metrics here (default: a registry of the relay's own, `relay.metrics`). */
  registry?: Registry;
}

export interface RelayDisconnectEvent {
  client: Address;
  reason: CloseReason;
}

export interface WebSocketRelayEvents {
  connection: [{ client: Address }];
  disconnect: [RelayDisconnectEvent];
  /** The listening server failed (e.g. EADDRINUSE after `listen`); connections are unaffected. */
  error: [Error];
}

type RelayState = 'new' | 'listening' | 'stopping' | 'stopped';

export class WebSocketRelay extends EventEmitter<WebSocketRelayEvents> {
  /** The `jitguard_websocket_*` metrics (the registry passed in, or the relay's own). */
  readonly metrics: Registry;
  private readonly host: string;
  private readonly port: number;
  private readonly wireguard: Address;
  private readonly onInitiation: WebSocketRelayOptions['onInitiation'];
  private readonly maxConnections: number;
  private readonly maxPerAddress: number;
  private readonly maxBufferedBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly maxDatagramLength: number;
  private readonly counts = emptyRelayStats();
  private readonly server: HttpServer;
  private readonly wss: WebSocketServer;
  /** Upgrades in progress and open connections, in total and per client address. */
  private reserved = 0;
  private readonly reservedPerAddress = new Map<string, number>();
  private readonly connections = new Set<RelayConnection>();
  private readonly closedWaiters = new Set<() => void>();
  /** Every TCP connection, upgraded or not (the raw sockets under TLS), for `close()`. */
  private readonly sockets = new Set<NetSocket>();
  private idleTimer: NodeJS.Timeout | null = null;
  private state: RelayState = 'new';
  private boundAddress: Address | null = null;

  constructor(options: WebSocketRelayOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'expected an object');
    this.host = options.host ?? '0.0.0.0';
    if (typeof this.host !== 'string' || isIP(this.host) === 0) throw new ValidationError('options.host', 'expected a numeric IPv4 or IPv6 address');
    this.port = integerOption(options.port, -1, 0, 65535, 'options.port');
    if (this.port < 0) throw new ValidationError('options.port', 'expected an integer from 0 to 65535');
    const wireguardAddress = options.wireguardAddress ?? '127.0.0.1';
    if (typeof wireguardAddress !== 'string' || isIP(wireguardAddress) === 0) throw new ValidationError('options.wireguardAddress', 'expected a numeric IPv4 or IPv6 address');
    const wireguardPort = integerOption(options.wireguardPort, 0, 1, 65535, 'options.wireguardPort');
    if (wireguardPort === 0) throw new ValidationError('options.wireguardPort', 'expected an integer from 1 to 65535 (the interface\'s listen port)');
    this.wireguard = { address: wireguardAddress, port: wireguardPort };
    if (options.onInitiation !== undefined && typeof options.onInitiation !== 'function') throw new ValidationError('options.onInitiation', 'expected a function');
    this.onInitiation = options.onInitiation;
    this.maxConnections = integerOption(options.maxConnections, 1024, 1, 1_000_000, 'options.maxConnections');
    this.maxPerAddress = integerOption(options.maxConnectionsPerAddress, 16, 1, 1_000_000, 'options.maxConnectionsPerAddress');
    this.maxBufferedBytes = integerOption(options.maxBufferedBytes, 262_144, LENGTH_PREFIX_BYTES + MAX_DATAGRAM_LENGTH, 1 << 30, 'options.maxBufferedBytes');
    const idleSeconds = secondsOption(options.idleTimeout, 60, 'options.idleTimeout');
    if (idleSeconds === 0) throw new ValidationError('options.idleTimeout', 'expected a positive number of seconds');
    this.idleTimeoutMs = idleSeconds * 1000;
    this.maxDatagramLength = integerOption(options.maxDatagramLength, MAX_DATAGRAM_LENGTH, 1, MAX_DATAGRAM_LENGTH, 'options.maxDatagramLength');
    if (options.registry !== undefined && !(options.registry instanceof Registry)) throw new ValidationError('options.registry', 'expected a prom-client Registry');
    this.metrics = options.registry ?? new Registry();
    registerRelayMetrics(this.metrics, this.counts);

    if (options.tls !== undefined) {
      const { cert, key } = options.tls ?? {};
      if (!isPem(cert)) throw new ValidationError('options.tls.cert', 'expected a PEM certificate (string or Buffer)');
      if (!isPem(key)) throw new ValidationError('options.tls.key', 'expected a PEM private key (string or Buffer)');
      this.server = createHttpsServer({ cert, key, handshakeTimeout: 10_000 });
    } else {
      this.server = createHttpServer();
    }
    // An upgrade must complete its headers promptly, and TCP connections that have not
    // upgraded (yet) are bounded too: at most as many again as the connections allowed.
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
    this.server.maxConnections = 2 * this.maxConnections;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      skipUTF8Validation: true,
      // The magic, a length and a datagram in one message is the most a client sends at once.
      maxPayload: 2 * LENGTH_PREFIX_BYTES + this.maxDatagramLength,
      handleProtocols: (protocols) => (protocols.has(BINARY_SUBPROTOCOL) ? BINARY_SUBPROTOCOL : false),
    });
    this.server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(request, socket, head));
    this.server.on('request', (_request, response) => {
      response.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close', Upgrade: 'websocket' });
      response.end('WireGuard over WebSocket: upgrade required\n');
    });
    this.server.on('clientError', (_error, socket) => socket.destroy());
    this.server.on('connection', (socket: NetSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Where the relay listens, once `listen` resolved. */
  get address(): Address | null {
    return this.boundAddress;
  }

  /** Plain-object counters (the same figures as `metrics`). */
  stats(): WebSocketRelayStats {
    return structuredClone(this.counts);
  }

  /** Starts listening; rejects with the server's error (EADDRINUSE, EACCES, …). */
  async listen(): Promise<Address> {
    if (this.state !== 'new') throw new ValidationError('listen', `the relay is already ${this.state}`);
    this.state = 'listening';
    await new Promise<void>((resolve, reject) => {
      const failed = (error: Error) => reject(error);
      this.server.once('error', failed);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', failed);
        resolve();
      });
    }).catch((error: unknown) => {
      this.state = 'stopped';
      throw error;
    });
    this.server.on('error', (error) => { if (this.listenerCount('error') > 0) this.emit('error', error); });
    const bound = this.server.address();
    if (bound === null || typeof bound === 'string') throw new Error('the relay is not listening on TCP');
    this.boundAddress = { address: bound.address, port: bound.port };
    const sweepMs = Math.min(5000, Math.max(50, this.idleTimeoutMs / 4));
    this.idleTimer = setInterval(() => this.closeIdle(), sweepMs);
    this.idleTimer.unref();
    return this.boundAddress;
  }

  /**
   * Stops accepting, closes every connection (1001, then drops those that did not finish the
   * closing handshake within `graceMs`) and every UDP socket, and closes the server.
   */
  async close(graceMs = 1000): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    const wasListening = this.state === 'listening';
    this.state = 'stopping';
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = null;
    const serverClosed = wasListening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    for (const connection of this.connections) connection.close('shutdown');
    if (this.connections.size > 0) {
      const allClosed = new Promise<void>((resolve) => this.closedWaiters.add(resolve));
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); });
      await Promise.race([allClosed, grace]);
      clearTimeout(timer);
      for (const connection of this.connections) connection.terminate();
      await allClosed;
    }
    // What is left has not upgraded (a TLS handshake, an upgrade's headers): server.close()
    // would wait for each to time out.
    for (const socket of this.sockets) socket.destroy();
    await serverClosed;
    this.wss.close();
    this.state = 'stopped';
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const remote = request.socket as NetSocket;
    const client = { address: normaliseAddress(remote.remoteAddress ?? ''), port: remote.remotePort ?? 0 };
    if (this.state !== 'listening') return this.refuse(socket, 'stopping');
    if (this.reserved >= this.maxConnections) return this.refuse(socket, 'max-connections');
    const held = this.reservedPerAddress.get(client.address) ?? 0;
    if (held >= this.maxPerAddress) return this.refuse(socket, 'max-per-address');
    this.reserve(client.address, +1);
    let upgraded = false;
    // ws answers a malformed upgrade itself (400) and never calls back: free the slot then.
    socket.once('close', () => { if (!upgraded) this.reserve(client.address, -1); });
    this.wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      upgraded = true;
      if (this.state !== 'listening') {
        this.reserve(client.address, -1);
        ws.terminate();
        return;
      }
      this.counts.accepted++;
      this.counts.connections++;
      const connection = new RelayConnection(ws, client.address, {
        wireguard: this.wireguard,
        maxDatagramLength: this.maxDatagramLength,
        maxBufferedBytes: this.maxBufferedBytes,
        binary: ws.protocol === BINARY_SUBPROTOCOL,
        counts: this.counts,
        onInitiation: this.onInitiation,
        onClosed: (closed, reason) => this.closed(closed, client, reason),
      });
      this.connections.add(connection);
      this.emit('connection', { client });
    });
  }

  private closed(connection: RelayConnection, client: Address, reason: CloseReason): void {
    if (!this.connections.delete(connection)) return;
    this.counts.connections--;
    this.counts.closed[reason]++;
    this.reserve(connection.clientKey, -1);
    this.emit('disconnect', { client, reason });
    if (this.connections.size === 0) {
      for (const resolve of this.closedWaiters) resolve();
      this.closedWaiters.clear();
    }
  }

  private refuse(socket: Duplex, reason: RefuseReason): void {
    this.counts.refused[reason]++;
    socket.write('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', () => socket.destroy());
  }

  private reserve(address: string, delta: 1 | -1): void {
    this.reserved += delta;
    const held = (this.reservedPerAddress.get(address) ?? 0) + delta;
    if (held <= 0) this.reservedPerAddress.delete(address);
    else this.reservedPerAddress.set(address, held);
  }

  private closeIdle(): void {
    const now = performance.now();
    for (const connection of this.connections) {
      if (now - connection.lastActivity > this.idleTimeoutMs) connection.close('idle');
    }
  }
}

/** '::ffff:192.0.2.1' → '192.0.2.1', so one client counts once whatever the listening family. */
function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && parseAddress(address.slice(7))?.family === 4 ? address.slice(7) : address;
}

function isPem(value: unknown): value is string | Buffer {
  return (typeof value === 'string' || Buffer.isBuffer(value)) && value.includes('-----BEGIN');
}
