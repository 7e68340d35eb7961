/**
 * The relay's counters: plain numbers on the datagram path (an increment per datagram, nothing
 * more), read into prom-client metrics (prefix `jitguard_websocket_`) only when scraped. Labels
 * carry reasons, never an address: one series per client would be a cardinality bomb.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { RelayProtocolErrorReason } from './stream.js';

/** Why an upgrade was refused (HTTP 503 before any WebSocket exists). */
export type RefuseReason = 'max-connections' | 'max-per-address' | 'stopping';
export const REFUSE_REASONS: readonly RefuseReason[] = ['max-connections', 'max-per-address', 'stopping'];

/** Why the relay closed a connection, or `client` when the client (or its TCP) did. */
export type CloseReason =
  | 'client'
  | 'idle'
  | RelayProtocolErrorReason
  /** A message above `maxPayload` (ws closes with 1009). */
  | 'message-too-big'
  /** Any other WebSocket protocol violation ws detected (bad opcode, unmasked frame, …). */
  | 'websocket-error'
  /** Its UDP socket could not be opened. */
  | 'udp-error'
  /** The relay is stopping. */
  | 'shutdown';
export const CLOSE_REASONS: readonly CloseReason[] = [
  'client', 'idle', 'bad-magic', 'oversize-length', 'binary-frame', 'message-too-big', 'websocket-error', 'udp-error', 'shutdown',
];

/** Why a datagram was not delivered. */
export type DropReason =
  /** Toward a client whose WebSocket already buffers `maxBufferedBytes`. */
  | 'client-backpressure'
  /** Toward the kernel while the UDP socket's send queue holds `maxBufferedBytes`. */
  | 'udp-backpressure'
  /** The UDP send failed (EMSGSIZE for a datagram above 65,507 bytes, ECONNREFUSED, …). */
  | 'udp-send'
  /** From the kernel, longer than the relay's `maxDatagramLength` (the client would refuse it). */
  | 'oversize';
export const DROP_REASONS: readonly DropReason[] = ['client-backpressure', 'udp-backpressure', 'udp-send', 'oversize'];

export interface WebSocketRelayStats {
  /** Open WebSocket connections. */
  connections: number;
  /** Open UDP sockets (one per connection; equal to `connections` except while one opens or closes). */
  udpSockets: number;
  accepted: number;
  refused: Record<RefuseReason, number>;
  closed: Record<CloseReason, number>;
  /** Datagrams and their bytes (without the framing) from clients to the kernel. */
  datagramsIn: number;
  bytesIn: number;
  /** Datagrams and their bytes from the kernel to clients. */
  datagramsOut: number;
  bytesOut: number;
  /** Zero-length frames received and dropped. */
  keepalives: number;
  /** Initiation-shaped datagrams handed to `onInitiation`. */
  initiations: number;
  /** `onInitiation` calls that threw (the datagram still went to the kernel). */
  initiationErrors: number;
  dropped: Record<DropReason, number>;
}

const zeros = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;

export function emptyRelayStats(): WebSocketRelayStats {
  return {
    connections: 0, udpSockets: 0, accepted: 0, refused: zeros(REFUSE_REASONS), closed: zeros(CLOSE_REASONS),
    datagramsIn: 0, bytesIn: 0, datagramsOut: 0, bytesOut: 0, keepalives: 0, initiations: 0, initiationErrors: 0,
    dropped: zeros(DROP_REASONS),
  };
}

/** Registers the relay's metrics in `registry`, each read from `counts` at scrape time. */
export function registerRelayMetrics(registry: Registry, counts: WebSocketRelayStats): void {
  const registers = [registry];
  const total = (name: string, help: string, read: () => number) => new Counter({
    name, help, registers,
    collect() { this.reset(); this.inc(read()); },
  });
  const byReason = <K extends string>(name: string, help: string, reasons: readonly K[], read: () => Record<K, number>) => new Counter({
    name, help, labelNames: ['reason'], registers,
    collect() {
      this.reset();
      const values = read();
      for (const reason of reasons) this.inc({ reason }, values[reason]);
    },
  });
  new Gauge({ name: 'jitguard_websocket_connections', help: 'Open WebSocket relay connections.', registers, collect() { this.set(counts.connections); } });
  new Gauge({ name: 'jitguard_websocket_udp_sockets', help: 'Open relay UDP sockets toward the WireGuard interface (one per connection).', registers, collect() { this.set(counts.udpSockets); } });
  total('jitguard_websocket_connections_accepted_total', 'WebSocket connections accepted.', () => counts.accepted);
  byReason('jitguard_websocket_connections_refused_total', 'WebSocket upgrades refused (HTTP 503), by reason.', REFUSE_REASONS, () => counts.refused);
  byReason('jitguard_websocket_connections_closed_total', 'WebSocket connections closed, by reason (client: the client or its TCP ended it).', CLOSE_REASONS, () => counts.closed);
  total('jitguard_websocket_received_bytes_total', 'Datagram bytes received from clients (framing excluded).', () => counts.bytesIn);
  total('jitguard_websocket_sent_bytes_total', 'Datagram bytes sent to clients (framing excluded).', () => counts.bytesOut);
  total('jitguard_websocket_received_datagrams_total', 'Datagrams received from clients.', () => counts.datagramsIn);
  total('jitguard_websocket_sent_datagrams_total', 'Datagrams sent to clients.', () => counts.datagramsOut);
  total('jitguard_websocket_keepalives_total', 'Zero-length keepalive frames received (dropped).', () => counts.keepalives);
  total('jitguard_websocket_initiations_total', 'Handshake initiations handed to the gateway.', () => counts.initiations);
  byReason('jitguard_websocket_dropped_datagrams_total', 'Datagrams dropped, by reason.', DROP_REASONS, () => counts.dropped);
}
