/**
 * One relayed client: its WebSocket, its own UDP socket on loopback connected to the WireGuard
 * interface's listen port, and the datagrams between them. The kernel sees each client as that
 * socket's address, so its handshake back (to the endpoint the gateway installs) reaches this
 * socket and no other; closing the connection closes the socket.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { WebSocket } from 'ws';
import { isInitiationShape } from '../protocol/initiation.js';
import type { Address } from '../gateway/types.js';
import type { CloseReason, WebSocketRelayStats } from './metrics.js';
import { encodeFrame, FrameParser, RelayProtocolError } from './stream.js';

export interface ConnectionSettings {
  /** Where the WireGuard interface listens (127.0.0.1:listenPort in the relay's namespace). */
  wireguard: Address;
  maxDatagramLength: number;
  /** Bytes a connection may hold queued toward its client, and toward the kernel. */
  maxBufferedBytes: number;
  /** The client negotiated `wswg-binary`: binary frames both ways (text frames still accepted). */
  binary: boolean;
  counts: WebSocketRelayStats;
  onInitiation: ((payload: Uint8Array, source: Address) => void) | undefined;
  onClosed: (connection: RelayConnection, reason: CloseReason) => void;
}

/** RFC 6455 §7.4.1 status codes the relay closes with. */
const CLOSE_CODE: Record<CloseReason, number> = {
  'client': 1000,
  'idle': 1000,
  'bad-magic': 1002,
  'oversize-length': 1002,
  'binary-frame': 1003,
  'message-too-big': 1009,
  'websocket-error': 1002,
  'udp-error': 1011,
  'shutdown': 1001,
};

/** How long a client may take to answer the relay's close frame. */
const CLOSE_HANDSHAKE_MS = 2000;

export class RelayConnection {
  /** performance.now() of the last bytes from the client (keepalives included). */
  lastActivity = performance.now();
  /** The client's address as the relay counts it for its per-address limit. */
  readonly clientKey: string;
  private readonly ws: WebSocket;
  private readonly settings: ConnectionSettings;
  private readonly parser: FrameParser;
  private udp: Socket | null = null;
  private localPort = 0;
  private reason: CloseReason | null = null;
  private finished = false;

  constructor(ws: WebSocket, clientKey: string, settings: ConnectionSettings) {
    this.ws = ws;
    this.clientKey = clientKey;
    this.settings = settings;
    this.parser = new FrameParser({ expectMagic: true, maxDatagramLength: settings.maxDatagramLength });
    // Nothing is read until the UDP socket can send: the client writes its magic at once.
    ws.pause();
    ws.on('message', (data, isBinary) => this.fromClient(data as Buffer, isBinary));
    ws.on('error', (error: Error & { code?: string }) => {
      this.reason ??= error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'message-too-big' : 'websocket-error';
    });
    ws.on('close', () => this.finish());
    this.openSocket();
  }

  /** The loopback address the kernel sees this client at (port 0 until the socket is bound). */
  get source(): Address {
    return { address: this.settings.wireguard.address, port: this.localPort };
  }

  /** Closes the WebSocket (with the reason's status code) and the UDP socket now. */
  close(reason: CloseReason): void {
    if (this.reason === null) this.reason = reason;
    this.closeSocket();
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) {
      this.ws.close(CLOSE_CODE[reason], reason);
      // ws waits 30 s for the client's half of the closing handshake; a dead or hostile client
      // would hold its connection slot that long.
      setTimeout(() => this.ws.terminate(), CLOSE_HANDSHAKE_MS).unref();
    }
  }

  /** Drops the TCP connection without a closing handshake (the relay's last resort at stop). */
  terminate(): void {
    this.reason ??= 'shutdown';
    this.closeSocket();
    this.ws.terminate();
  }

  private openSocket(): void {
    const { counts, wireguard } = this.settings;
    const udp = createSocket({ type: wireguard.address.includes(':') ? 'udp6' : 'udp4' });
    this.udp = udp;
    counts.udpSockets++;
    udp.once('close', () => { counts.udpSockets--; });
    // Before it is connected an error is a bind or connect failure: the connection cannot work.
    // After, it is the kernel's ICMP error (ECONNREFUSED when nothing listens): a lost datagram,
    // as it would be on the wire, not a lost connection.
    udp.on('error', () => {
      if (this.localPort === 0) this.close('udp-error');
      else counts.dropped['udp-send']++;
    });
    udp.on('message', (datagram) => this.fromKernel(datagram));
    udp.bind({ address: wireguard.address, port: 0 }, () => {
      if (this.udp !== udp) return;
      udp.connect(wireguard.port, wireguard.address, (error?: Error) => {
        if (this.udp !== udp) return;
        if (error) {
          this.close('udp-error');
          return;
        }
        this.localPort = udp.address().port;
        this.ws.resume();
      });
    });
  }

  private fromClient(data: Buffer, isBinary: boolean): void {
    if (this.reason !== null) return;
    this.lastActivity = performance.now();
    if (isBinary && !this.settings.binary) {
      this.close('binary-frame');
      return;
    }
    const { counts } = this.settings;
    const keepalivesBefore = this.parser.keepalives;
    let datagrams: Uint8Array[];
    try {
      datagrams = this.parser.push(data);
    } catch (error) {
      if (!(error instanceof RelayProtocolError)) throw error;
      this.close(error.reason);
      return;
    } finally {
      counts.keepalives += this.parser.keepalives - keepalivesBefore;
    }
    for (const datagram of datagrams) this.toKernel(datagram);
  }

  private toKernel(datagram: Uint8Array): void {
    const { counts, onInitiation, maxBufferedBytes } = this.settings;
    const udp = this.udp;
    if (udp === null) return;
    counts.datagramsIn++;
    counts.bytesIn += datagram.length;
    if (onInitiation !== undefined && isInitiationShape(datagram)) {
      counts.initiations++;
      try {
        onInitiation(datagram, this.source);
      } catch {
        counts.initiationErrors++;
      }
    }
    if (udp.getSendQueueSize() >= maxBufferedBytes) {
      counts.dropped['udp-backpressure']++;
      return;
    }
    udp.send(datagram, (error) => { if (error) counts.dropped['udp-send']++; });
  }

  private fromKernel(datagram: Buffer): void {
    const { counts, maxBufferedBytes, binary } = this.settings;
    if (this.reason !== null || this.ws.readyState !== this.ws.OPEN) return;
    if (datagram.length > this.settings.maxDatagramLength) {
      counts.dropped['oversize']++;
      return;
    }
    if (this.ws.bufferedAmount + datagram.length > maxBufferedBytes) {
      counts.dropped['client-backpressure']++;
      return;
    }
    counts.datagramsOut++;
    counts.bytesOut += datagram.length;
    this.ws.send(encodeFrame(datagram), { binary });
  }

  private closeSocket(): void {
    const udp = this.udp;
    if (udp === null) return;
    this.udp = null;
    udp.close();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.closeSocket();
    this.settings.onClosed(this, this.reason ?? 'client');
  }
}
