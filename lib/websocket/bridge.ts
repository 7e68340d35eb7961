/**
 * `WebSocketBridge`: the client side of WireGuard over WebSocket. It listens on a local UDP
 * port (the peer endpoint a stock kernel or wireguard-go client is given, e.g.
 * 127.0.0.1:51821) and carries each datagram to a `WebSocketRelay` (or a flyctl-compatible
 * gateway) with the same framing as flyctl's client: the magic once per connection, then
 * length-prefixed datagrams in text frames, a zero-length keepalive after 1 s of silence, and a
 * new connection 5 s after one fails. Datagrams from the gateway go to the local address that
 * last sent one (the WireGuard client's socket).
 *
 * Certificates: verified against the system's (or `ca`) roots by default; `insecure` accepts
 * any (as flyctl does: WireGuard authenticates the gateway anyway); `pinSha256` accepts exactly
 * the certificate whose SHA-256 over its DER encoding is given: what
 * `openssl x509 -noout -fingerprint -sha256 -in cert.pem` prints, colons optional. The pin is
 * over the whole certificate, not its SPKI: a self-signed gateway certificate is the thing an
 * operator has in hand, and renewing it means handing out the new fingerprint.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { ValidationError } from '../errors.js';
import { integerOption, secondsOption } from '../gateway/options.js';
import type { Address } from '../gateway/types.js';
import { BINARY_SUBPROTOCOL } from './relay.js';
import { encodeFrame, encodeKeepalive, encodeMagic, FrameParser, LENGTH_PREFIX_BYTES, MAX_DATAGRAM_LENGTH, RelayProtocolError } from './stream.js';

export interface WebSocketBridgeOptions {
  /** The gateway's relay: `wss://host:443/` (or `ws://` behind nothing, for tests). */
  url: string;
  /** The local UDP address to listen on (the WireGuard client's peer endpoint). */
  listen: Address;
  /** Accept any server certificate. */
  insecure?: boolean;
  /** Accept only the certificate with this SHA-256 fingerprint (64 hex digits, colons optional). */
  pinSha256?: string;
  /** PEM roots to verify the server certificate against instead of the system's. */
  ca?: string | Buffer;
  /** Seconds between a failed or lost connection and the next attempt (default 5, as flyctl). */
  reconnectDelay?: number;
  /** Seconds of silence toward the gateway before a keepalive frame (default 1, as flyctl). */
  keepaliveInterval?: number;
  /** Bytes queued toward the gateway before datagrams are dropped (default 262,144). */
  maxBufferedBytes?: number;
  /** The Origin header (default: the URL, as flyctl sends). */
  origin?: string;
  /** Offer the `wswg-binary` subprotocol and use binary frames if the gateway accepts it (default false: text frames). */
  binary?: boolean;
}

export type BridgeDropReason = 'not-connected' | 'backpressure' | 'no-local-peer' | 'oversize';

export interface WebSocketBridgeStats {
  connected: boolean;
  /** Connections opened (the first and every reconnect). */
  connects: number;
  /** Connections that closed or failed to open. */
  disconnects: number;
  /** Datagrams and bytes from the local client to the gateway. */
  datagramsOut: number;
  bytesOut: number;
  /** Datagrams and bytes from the gateway to the local client. */
  datagramsIn: number;
  bytesIn: number;
  keepalivesSent: number;
  keepalivesReceived: number;
  /** Gateway streams refused for their framing (each closes that connection). */
  protocolErrors: number;
  dropped: Record<BridgeDropReason, number>;
}

export interface BridgeDisconnectEvent {
  /** The WebSocket close code (1006 when the connection failed or dropped). */
  code: number;
  reason: string;
  /** Why it failed, when it did (DNS, TCP, TLS, pin, HTTP status, framing). */
  error?: Error;
  /** Milliseconds until the next attempt. */
  retryInMs: number;
}

export interface WebSocketBridgeEvents {
  connected: [];
  disconnected: [BridgeDisconnectEvent];
}

/** A failure of the bridge's own (pin mismatch); other failures are ws's and Node's errors. */
export class BridgeError extends Error {
  override name = 'BridgeError';
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}

export class WebSocketBridge extends EventEmitter<WebSocketBridgeEvents> {
  private readonly url: URL;
  private readonly listenAddress: Address;
  private readonly clientOptions: ClientOptions;
  private readonly reconnectDelayMs: number;
  private readonly keepaliveMs: number;
  private readonly maxBufferedBytes: number;
  private readonly offerBinary: boolean;
  private readonly counts: WebSocketBridgeStats = {
    connected: false, connects: 0, disconnects: 0, datagramsOut: 0, bytesOut: 0, datagramsIn: 0, bytesIn: 0,
    keepalivesSent: 0, keepalivesReceived: 0, protocolErrors: 0,
    dropped: { 'not-connected': 0, 'backpressure': 0, 'no-local-peer': 0, 'oversize': 0 },
  };
  private udp: Socket | null = null;
  private boundAddress: Address | null = null;
  private localPeer: Address | null = null;
  private ws: WebSocket | null = null;
  private binary = false;
  private lastSendAt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private closing = false;

  constructor(options: WebSocketBridgeOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'expected an object');
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new ValidationError('options.url', 'expected a ws:// or wss:// URL');
    }
    if (url.protocol !== 'wss:' && url.protocol !== 'ws:') throw new ValidationError('options.url', `expected a ws:// or wss:// URL, got ${url.protocol}`);
    this.url = url;
    this.listenAddress = checkAddress(options.listen, 'options.listen');
    if (options.insecure !== undefined && typeof options.insecure !== 'boolean') throw new ValidationError('options.insecure', 'expected a boolean');
    const pin = options.pinSha256 === undefined ? null : parsePinSha256(options.pinSha256);
    if (pin !== null && options.insecure === true) throw new ValidationError('options.pinSha256', 'a pin and insecure exclude each other');
    if ((pin !== null || options.insecure === true || options.ca !== undefined) && url.protocol !== 'wss:') {
      throw new ValidationError('options.url', 'certificate options need a wss:// URL');
    }
    if (options.ca !== undefined && !(typeof options.ca === 'string' || Buffer.isBuffer(options.ca))) throw new ValidationError('options.ca', 'expected PEM (string or Buffer)');
    if (options.origin !== undefined && typeof options.origin !== 'string') throw new ValidationError('options.origin', 'expected a string');
    if (options.binary !== undefined && typeof options.binary !== 'boolean') throw new ValidationError('options.binary', 'expected a boolean');
    this.reconnectDelayMs = secondsOption(options.reconnectDelay, 5, 'options.reconnectDelay') * 1000;
    const keepaliveSeconds = secondsOption(options.keepaliveInterval, 1, 'options.keepaliveInterval');
    if (keepaliveSeconds === 0) throw new ValidationError('options.keepaliveInterval', 'expected a positive number of seconds');
    this.keepaliveMs = keepaliveSeconds * 1000;
    this.maxBufferedBytes = integerOption(options.maxBufferedBytes, 262_144, LENGTH_PREFIX_BYTES + MAX_DATAGRAM_LENGTH, 1 << 30, 'options.maxBufferedBytes');
    this.offerBinary = options.binary ?? false;
    this.clientOptions = {
      origin: options.origin ?? url.href,
      perMessageDeflate: false,
      skipUTF8Validation: true,
      maxPayload: 2 * LENGTH_PREFIX_BYTES + MAX_DATAGRAM_LENGTH,
      handshakeTimeout: 10_000,
      followRedirects: false,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.insecure === true || pin !== null ? { rejectUnauthorized: false } : {}),
      ...(pin !== null ? { createConnection: pinnedConnect(pin) as unknown as ClientOptions['createConnection'] } : {}),
    };
  }

  /** The local UDP address, once started. */
  get address(): Address | null {
    return this.boundAddress;
  }

  get connected(): boolean {
    return this.counts.connected;
  }

  stats(): WebSocketBridgeStats {
    return structuredClone(this.counts);
  }

  /** Binds the local UDP port and starts connecting (resolves once bound, not once connected; see 'connected'). */
  async start(): Promise<Address> {
    if (this.udp !== null || this.closing) throw new ValidationError('start', 'the bridge was already started');
    const udp = createSocket({ type: this.listenAddress.address.includes(':') ? 'udp6' : 'udp4' });
    this.udp = udp;
    udp.on('message', (datagram, from) => this.fromLocal(datagram, from));
    // ICMP errors toward a local client that went away: a lost datagram, nothing more.
    udp.on('error', () => { this.counts.dropped['no-local-peer']++; });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: this.listenAddress.address, port: this.listenAddress.port }, () => {
        udp.off('error', reject);
        resolve();
      });
    }).catch((error: unknown) => {
      this.udp = null;
      udp.close();
      throw error;
    });
    const bound = udp.address();
    this.boundAddress = { address: bound.address, port: bound.port };
    this.keepaliveTimer = setInterval(() => this.keepalive(), Math.min(this.keepaliveMs, 1000) / 2);
    this.connect();
    return this.boundAddress;
  }

  /** Closes the WebSocket and the UDP socket; no reconnect follows. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.reconnectTimer = this.keepaliveTimer = null;
    const ws = this.ws;
    if (ws !== null && ws.readyState !== ws.CLOSED) {
      const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
      ws.close(1000);
      const timer = setTimeout(() => ws.terminate(), 1000);
      await closed;
      clearTimeout(timer);
    }
    const udp = this.udp;
    this.udp = null;
    if (udp !== null) await new Promise<void>((resolve) => udp.close(() => resolve()));
  }

  private connect(): void {
    this.reconnectTimer = null;
    if (this.closing) return;
    const ws = new WebSocket(this.url, this.offerBinary ? [BINARY_SUBPROTOCOL] : [], this.clientOptions);
    this.ws = ws;
    const parser = new FrameParser({ expectMagic: false });
    let failure: Error | undefined;
    ws.on('open', () => {
      this.binary = ws.protocol === BINARY_SUBPROTOCOL;
      ws.send(encodeMagic(), { binary: this.binary });
      this.lastSendAt = performance.now();
      this.counts.connected = true;
      this.counts.connects++;
      this.emit('connected');
    });
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary && !this.binary) {
        // As flyctl's client: a binary frame on a text connection is unsupported data.
        this.counts.protocolErrors++;
        failure = new RelayProtocolError('binary-frame', 'the gateway sent a binary frame on a text-framed connection');
        ws.close(1003, 'binary-frame');
        return;
      }
      const before = parser.keepalives;
      try {
        for (const datagram of parser.push(data)) this.toLocal(datagram);
      } catch (error) {
        if (!(error instanceof RelayProtocolError)) throw error;
        this.counts.protocolErrors++;
        failure = error;
        ws.close(1002, error.reason);
      } finally {
        this.counts.keepalivesReceived += parser.keepalives - before;
      }
    });
    ws.on('error', (error) => { failure ??= error; });
    ws.on('close', (code, reason) => {
      if (this.ws === ws) this.ws = null;
      this.counts.connected = false;
      this.counts.disconnects++;
      if (this.closing) return;
      this.reconnectTimer = setTimeout(() => this.connect(), this.reconnectDelayMs);
      this.emit('disconnected', {
        code, reason: reason.toString('utf8'), retryInMs: this.reconnectDelayMs,
        ...(failure !== undefined ? { error: failure } : {}),
      });
    });
  }

  private fromLocal(datagram: Buffer, from: RemoteInfo): void {
    this.localPeer = { address: from.address, port: from.port };
    const ws = this.ws;
    if (ws === null || ws.readyState !== ws.OPEN) {
      this.counts.dropped['not-connected']++;
      return;
    }
    if (datagram.length > MAX_DATAGRAM_LENGTH) {
      this.counts.dropped['oversize']++;
      return;
    }
    if (ws.bufferedAmount + datagram.length > this.maxBufferedBytes) {
      this.counts.dropped['backpressure']++;
      return;
    }
    this.counts.datagramsOut++;
    this.counts.bytesOut += datagram.length;
    ws.send(encodeFrame(datagram), { binary: this.binary });
    this.lastSendAt = performance.now();
  }

  private toLocal(datagram: Uint8Array): void {
    const peer = this.localPeer;
    const udp = this.udp;
    if (peer === null || udp === null) {
      this.counts.dropped['no-local-peer']++;
      return;
    }
    this.counts.datagramsIn++;
    this.counts.bytesIn += datagram.length;
    udp.send(datagram, peer.port, peer.address);
  }

  private keepalive(): void {
    const ws = this.ws;
    if (ws === null || ws.readyState !== ws.OPEN) return;
    if (performance.now() - this.lastSendAt < this.keepaliveMs) return;
    ws.send(encodeKeepalive(), { binary: this.binary });
    this.lastSendAt = performance.now();
    this.counts.keepalivesSent++;
  }
}

/**
 * Starts a bridge (binds, begins connecting) for `jitguard ws-connect`; the caller closes it
 * (`await bridge.close()`) on SIGINT/SIGTERM.
 */
export async function startWebSocketBridge(options: WebSocketBridgeOptions): Promise<WebSocketBridge> {
  const bridge = new WebSocketBridge(options);
  await bridge.start();
  return bridge;
}

/** '3A:0F:…' or '3a0f…' (64 hex digits) → the colon-separated upper-case form Node's `fingerprint256` uses. */
export function parsePinSha256(value: unknown): string {
  if (typeof value !== 'string') throw new ValidationError('pinSha256', 'expected 64 hex digits');
  const hex = value.replaceAll(':', '').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new ValidationError('pinSha256', 'expected a SHA-256 fingerprint: 64 hex digits, colons optional');
  return hex.toUpperCase().match(/../g)!.join(':');
}

/** A TLS connect that refuses any certificate but the pinned one, before the upgrade request leaves. */
function pinnedConnect(fingerprint: string): (options: ConnectionOptions & { host?: string; path?: string }) => TLSSocket {
  return (options) => {
    const socket = tlsConnect({
      ...options,
      path: undefined,
      servername: options.servername ?? (isIP(options.host ?? '') ? '' : options.host),
      rejectUnauthorized: false,
    } as ConnectionOptions);
    socket.once('secureConnect', () => {
      if (socket.getPeerCertificate().fingerprint256 !== fingerprint) {
        socket.destroy(new BridgeError('the server certificate does not match the pinned SHA-256', 'ERR_JITGUARD_WEBSOCKET_PIN'));
      }
    });
    return socket;
  };
}

function checkAddress(value: unknown, path: string): Address {
  if (typeof value !== 'object' || value === null) throw new ValidationError(path, 'expected { address, port }');
  const { address, port } = value as Partial<Address>;
  if (typeof address !== 'string' || isIP(address) === 0) throw new ValidationError(`${path}.address`, 'expected a numeric IPv4 or IPv6 address');
  if (!Number.isInteger(port) || port! < 0 || port! > 65535) throw new ValidationError(`${path}.port`, 'expected an integer from 0 to 65535');
  return { address, port: port! };
}
