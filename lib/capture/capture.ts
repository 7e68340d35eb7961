/**
 * HandshakeCapture: every WireGuard handshake initiation that reaches this host, as it
 * arrives, with its 4-tuple, as events and as an async iterator.
 *
 * ```ts
 * const capture = HandshakeCapture.open({ interface: 'eth0', ports: [51820] });
 * capture.on('initiation', (i) => { ... });          // i.packet (148 bytes), i.source, i.destination, ...
 * for await (const i of capture) { ... }             // the same stream, with a bounded queue
 * capture.stats();                                   // { delivered, kernelDrops, kernelPackets, queueDrops, ... }
 * capture.close();
 * ```
 *
 * Where packets can be lost, and how it is counted:
 * - In the kernel, when the socket's receive buffer is full because the process does not read
 *   fast enough: `kernelDrops` (PACKET_STATISTICS). The event loop reads at most `batch`
 *   packets per wake-up, so other work keeps running during a burst.
 * - 'initiation' listeners are called synchronously as each batch is read: there is no queue
 *   in front of them, and a slow listener shows up as kernel drops.
 * - Each async iterator has its own bounded queue of `queueLimit` initiations. When it is full
 *   the **oldest** queued initiation is dropped to make room (`queueDrops`): a consumer that
 *   falls behind sees the most recent initiations. An initiator that got no answer retries
 *   with a fresh initiation after 5 s (REKEY_TIMEOUT) anyway, so the oldest queued one is the
 *   least likely still to lead to a handshake, and the queue bounds how stale a delivered
 *   initiation can be.
 *
 * Other transports (a WireGuard-over-WebSocket daemon hooking its receive path) feed the same
 * stream with {@link HandshakeCapture.inject}; {@link HandshakeCapture.detached} makes a stream
 * with no socket at all, for those alone.
 *
 * Needs CAP_NET_RAW (AF_PACKET). The socket is opened with the filter attached before it is
 * bound, so no unfiltered packet is ever queued to it.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { ValidationError } from '../errors.js';
import { formatAddress, parseAddress } from '../net/ip.js';
import { type BpfProgram, bpfProgram } from './bpf.js';
import { CaptureError, fromNative } from './errors.js';
import { DEFAULT_PORT, HANDSHAKE_SNAP_LENGTH, handshakeFilter, validatePorts } from './filter.js';
import {
  META_CAPTURED, META_IFINDEX, META_LENGTH, META_NANOS, META_OFFSET, META_SECONDS, META_STRIDE,
  type NativePacketSocket, packetSocketClass,
} from './native.js';
import { isInitiationPayload, parseInitiation, type SocketAddress } from './packet.js';
import { validateInterfaceName } from '../net/interface-name.js';

export type { SocketAddress } from './packet.js';

export const DEFAULT_QUEUE_LIMIT = 1024;
export const DEFAULT_BATCH = 64;
export const DEFAULT_RECEIVE_BUFFER = 4 * 1024 * 1024;

export interface HandshakeCaptureOptions {
  /** Interface to capture on (name, at most 15 bytes). Default: every interface of the network namespace. */
  interface?: string;
  /** UDP destination ports (default [51820]): integers 1..65535, unique, at most 128. */
  ports?: readonly number[];
  /**
   * A replacement for the kernel filter (default `handshakeFilter({ ports })`). Whatever it
   * lets through, only packets that parse as handshake initiations are delivered; the others
   * are counted in `rejected`.
   */
  filter?: BpfProgram;
  /** Initiations each async iterator may hold before dropping the oldest (default 1024, 1..1,000,000). */
  queueLimit?: number;
  /** Packets read per event-loop wake-up (default 64, 1..1024). */
  batch?: number;
  /** Socket receive buffer in bytes (default 4 MiB; 0 keeps the system default; at most 1 GiB). */
  receiveBufferSize?: number;
}

export interface DetachedCaptureOptions {
  /** As for {@link HandshakeCaptureOptions.queueLimit}. */
  queueLimit?: number;
}

/** One handshake initiation. */
export interface HandshakeInitiation {
  /** The 148-byte UDP payload: type 1, reserved, sender index, ephemeral, static, timestamp, mac1, mac2. */
  packet: Uint8Array;
  source: SocketAddress;
  /** Where it was sent; null for an injected initiation given without a destination. */
  destination: SocketAddress | null;
  /** Receiving interface index; 0 for an injected initiation. */
  ifindex: number;
  /** Receive time (the kernel's timestamp for captured packets). */
  receivedAt: Date;
  /** The same, in nanoseconds since the Unix epoch. */
  timestamp: bigint;
  /** True when it came through {@link HandshakeCapture.inject}. */
  injected: boolean;
}

export interface CaptureStats {
  /** Initiations delivered to the stream (captured and injected). */
  delivered: number;
  /** Of those, injected. */
  injected: number;
  /** Packets read from the socket or injected that were not handshake initiations (0 with the built-in filter). */
  rejected: number;
  /** Initiations dropped from full iterator queues (oldest first). */
  queueDrops: number;
  /** Packets that passed the kernel filter, including those dropped (PACKET_STATISTICS tp_packets). */
  kernelPackets: number;
  /** Packets that passed the filter but found the receive buffer full (PACKET_STATISTICS tp_drops). */
  kernelDrops: number;
  /** Event-loop wake-ups that delivered packets from the socket. */
  wakeups: number;
}

/** An endpoint as inject() takes it. */
export interface EndpointInput {
  address: string;
  port: number;
}

export interface HandshakeCaptureEvents {
  initiation: [HandshakeInitiation];
  error: [CaptureError];
  close: [];
}

const MAX_QUEUE_LIMIT = 1_000_000;
const token = Symbol('HandshakeCapture');

function integerOption(value: unknown, path: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(path, `must be an integer ${min}..${max}`);
  }
  return value;
}

function endpoint(value: unknown, path: string): SocketAddress {
  if (typeof value !== 'object' || value === null) throw new ValidationError(path, 'must be { address, port }');
  const { address, port } = value as Record<string, unknown>;
  if (typeof address !== 'string' || isIP(address) === 0) {
    throw new ValidationError(`${path}.address`, 'must be a numeric IPv4 or IPv6 address');
  }
  const parsed = parseAddress(address);
  if (parsed === null) throw new ValidationError(`${path}.address`, 'must be a numeric IPv4 or IPv6 address (no zone)');
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ValidationError(`${path}.port`, 'must be an integer 1..65535');
  }
  return { address: formatAddress(parsed.bytes), port, family: parsed.family };
}

function now(): { receivedAt: Date; timestamp: bigint } {
  const ms = Date.now();
  return { receivedAt: new Date(ms), timestamp: BigInt(ms) * 1_000_000n };
}

/** One async iterator's bounded queue. */
class InitiationQueue implements AsyncIterableIterator<HandshakeInitiation> {
  private items: (HandshakeInitiation | undefined)[] = [];
  private head = 0;
  private waiting: ((result: IteratorResult<HandshakeInitiation>) => void) | undefined;
  private waitingReject: ((error: unknown) => void) | undefined;
  private ended = false;
  private failure: CaptureError | undefined;

  constructor(
    private readonly limit: number,
    private readonly onDrop: () => void,
    private readonly detach: (queue: InitiationQueue) => void,
  ) {}

  push(item: HandshakeInitiation): void {
    if (this.ended) return;
    if (this.waiting !== undefined) {
      const resolve = this.waiting;
      this.waiting = undefined;
      this.waitingReject = undefined;
      resolve({ value: item, done: false });
      return;
    }
    if (this.items.length - this.head >= this.limit) {
      this.items[this.head] = undefined;
      this.head++;
      this.onDrop();
    }
    this.items.push(item);
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** No more items will come; queued ones are still delivered, then done (or the error). */
  end(error?: CaptureError): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    if (this.waiting !== undefined) {
      const resolve = this.waiting;
      const reject = this.waitingReject!;
      this.waiting = undefined;
      this.waitingReject = undefined;
      if (error !== undefined) {
        this.failure = undefined;
        reject(error);
      } else resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<HandshakeInitiation>> {
    if (this.head < this.items.length) {
      const item = this.items[this.head]!;
      this.items[this.head] = undefined;
      this.head++;
      return Promise.resolve({ value: item, done: false });
    }
    if (this.ended) {
      const error = this.failure;
      this.failure = undefined;
      return error !== undefined ? Promise.reject(error) : Promise.resolve({ value: undefined, done: true });
    }
    if (this.waiting !== undefined) {
      return Promise.reject(new Error('HandshakeCapture iterator: next() called again before the previous one settled'));
    }
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.waitingReject = reject;
    });
  }

  return(): Promise<IteratorResult<HandshakeInitiation>> {
    this.items = [];
    this.head = 0;
    this.end();
    this.detach(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export class HandshakeCapture extends EventEmitter<HandshakeCaptureEvents> {
  /** The interface name, or undefined when capturing on every interface (or detached). */
  readonly interface: string | undefined;
  /** The bound interface index; 0 for every interface (or detached). */
  readonly ifindex: number;
  /** The ports of the built-in filter (empty when a replacement filter or no socket is used). */
  readonly ports: readonly number[];
  /** The program attached to the socket (undefined when detached). */
  readonly filter: BpfProgram | undefined;

  private socket: NativePacketSocket | undefined;
  private readonly queueLimit: number;
  private readonly queues = new Set<InitiationQueue>();
  private isClosed = false;
  private counters = { delivered: 0, injected: 0, rejected: 0, queueDrops: 0, wakeups: 0 };
  private kernel = { packets: 0, drops: 0 };

  /** @internal use {@link HandshakeCapture.open} or {@link HandshakeCapture.detached}. */
  constructor(
    key: typeof token,
    init: { interface?: string; ifindex: number; ports: readonly number[]; filter?: BpfProgram; queueLimit: number },
  ) {
    super();
    if (key !== token) throw new TypeError('use HandshakeCapture.open() or HandshakeCapture.detached()');
    this.interface = init.interface;
    this.ifindex = init.ifindex;
    this.ports = init.ports;
    this.filter = init.filter;
    this.queueLimit = init.queueLimit;
  }

  /**
   * Opens the capture: an AF_PACKET socket with the filter attached, bound to `interface` (or
   * every interface). Throws a ValidationError for a bad option, a CaptureError 'ENODEV' for
   * an unknown interface, 'EPERM' without CAP_NET_RAW.
   */
  static open(options: HandshakeCaptureOptions = {}): HandshakeCapture {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    const name = options.interface === undefined ? undefined : validateInterfaceName(options.interface, 'interface');
    let filter: BpfProgram;
    let ports: readonly number[];
    if (options.filter !== undefined) {
      if (options.ports !== undefined) throw new ValidationError('ports', 'cannot be given together with filter');
      const given = options.filter as unknown;
      if (typeof given !== 'object' || given === null || !('instructions' in given)) {
        throw new ValidationError('filter', 'must be a BpfProgram (for example from handshakeFilter() or bpfProgram())');
      }
      filter = bpfProgram((given as BpfProgram).instructions);
      ports = [];
    } else {
      ports = validatePorts(options.ports ?? [DEFAULT_PORT]);
      filter = handshakeFilter({ ports });
    }
    const queueLimit = integerOption(options.queueLimit, 'queueLimit', 1, MAX_QUEUE_LIMIT, DEFAULT_QUEUE_LIMIT);
    const batch = integerOption(options.batch, 'batch', 1, 1024, DEFAULT_BATCH);
    const rcvbuf = integerOption(options.receiveBufferSize, 'receiveBufferSize', 0, 1 << 30, DEFAULT_RECEIVE_BUFFER);

    const PacketSocket = packetSocketClass();
    let ifindex = 0;
    if (name !== undefined) {
      try {
        ifindex = PacketSocket.interfaceIndex(name);
      } catch (error) {
        throw fromNative(error, { interface: name, doing: 'resolving the capture interface' });
      }
    }
    const capture = new HandshakeCapture(token, {
      ...(name !== undefined ? { interface: name } : {}),
      ifindex,
      ports: Object.freeze([...ports]),
      filter,
      queueLimit,
    });
    try {
      capture.socket = new PacketSocket(
        ifindex,
        filter.encode(),
        (error, data, meta) => capture.onPackets(error, data, meta),
        { batch, rcvbuf, slot: HANDSHAKE_SNAP_LENGTH },
      );
    } catch (error) {
      throw fromNative(error, { ...(name !== undefined ? { interface: name } : {}), doing: 'opening the capture socket (AF_PACKET)' });
    }
    return capture;
  }

  /** A stream with no socket: only {@link inject} feeds it. Needs no privilege. */
  static detached(options: DetachedCaptureOptions = {}): HandshakeCapture {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    const queueLimit = integerOption(options.queueLimit, 'queueLimit', 1, MAX_QUEUE_LIMIT, DEFAULT_QUEUE_LIMIT);
    return new HandshakeCapture(token, { ifindex: 0, ports: Object.freeze([]), queueLimit });
  }

  get closed(): boolean {
    return this.isClosed;
  }

  stats(): CaptureStats {
    if (this.socket !== undefined) {
      const s = this.socket.stats();
      this.kernel = { packets: s.packets, drops: s.drops };
    }
    return { ...this.counters, kernelPackets: this.kernel.packets, kernelDrops: this.kernel.drops };
  }

  /**
   * Feeds an initiation that arrived by another transport into the stream. `packet` is the UDP
   * payload; it gets the same check as captured packets (148 bytes, starting 01 00 00 00).
   * Returns true when it was delivered, false when it is not an initiation (counted in
   * `rejected`). Throws a ValidationError for a malformed argument and a CaptureError
   * 'ERR_CAPTURE_CLOSED' once closed.
   */
  inject(packet: Uint8Array, source: EndpointInput, destination?: EndpointInput): boolean {
    if (!(packet instanceof Uint8Array)) throw new ValidationError('packet', 'must be a Uint8Array (the UDP payload)');
    const from = endpoint(source, 'source');
    const to = destination === undefined ? null : endpoint(destination, 'destination');
    if (this.isClosed) throw new CaptureError('inject: the capture is closed', { code: 'ERR_CAPTURE_CLOSED' });
    if (!isInitiationPayload(packet)) {
      this.counters.rejected++;
      return false;
    }
    this.counters.injected++;
    this.deliver({ packet: packet.slice(), source: from, destination: to, ifindex: 0, ...now(), injected: true });
    return true;
  }

  /** Keeps the event loop alive while open (the default). */
  ref(): this {
    this.socket?.ref();
    return this;
  }

  /** Lets the process exit while the capture is open. */
  unref(): this {
    this.socket?.unref();
    return this;
  }

  /** Closes the socket; idempotent. Iterators deliver what they hold, then finish. Emits 'close'. */
  close(): void {
    this.shutdown(undefined);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<HandshakeInitiation> {
    const queue = new InitiationQueue(
      this.queueLimit,
      () => this.counters.queueDrops++,
      (q) => this.queues.delete(q),
    );
    if (this.isClosed) queue.end();
    else this.queues.add(queue);
    return queue;
  }

  private shutdown(error: CaptureError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.socket !== undefined) {
      this.socket.close();
      const s = this.socket.stats(); // final, read just before the descriptor was closed
      this.kernel = { packets: s.packets, drops: s.drops };
    }
    for (const queue of this.queues) queue.end(error);
    const hadIterators = this.queues.size > 0;
    this.queues.clear();
    process.nextTick(() => this.emit('close'));
    // An error with neither an 'error' listener nor an iterator to carry it is thrown, as
    // EventEmitter does (an uncaught exception); with an iterator it is that iterator's rejection.
    if (error !== undefined && (this.listenerCount('error') > 0 || !hadIterators)) this.emit('error', error);
  }

  private deliver(initiation: HandshakeInitiation): void {
    this.counters.delivered++;
    this.emit('initiation', initiation);
    for (const queue of this.queues) queue.push(initiation);
  }

  private onPackets(error: Error | null, data?: Buffer, meta?: Uint32Array): void {
    if (this.isClosed) return;
    if (error !== null) {
      const wrapped = fromNative(error, {
        ...(this.interface !== undefined ? { interface: this.interface } : {}),
        doing: 'capture',
      });
      const reason = wrapped.code === 'ENETDOWN' ? 'the interface went down or was removed; the capture is closed' : 'the capture is closed';
      this.shutdown(new CaptureError(`${wrapped.message} (${reason})`, {
        code: wrapped.code,
        ...(wrapped.errno !== undefined ? { errno: wrapped.errno } : {}),
        ...(wrapped.syscall !== undefined ? { syscall: wrapped.syscall } : {}),
        ...(this.interface !== undefined ? { interface: this.interface } : {}),
      }));
      return;
    }
    if (data === undefined || meta === undefined) return;
    this.counters.wakeups++;
    for (let at = 0; at + META_STRIDE <= meta.length; at += META_STRIDE) {
      if (this.isClosed) return; // a listener closed the capture mid-batch
      const offset = meta[at + META_OFFSET]!;
      const packet = data.subarray(offset, offset + meta[at + META_CAPTURED]!);
      const parsed = parseInitiation(packet, Math.max(meta[at + META_LENGTH]!, packet.length));
      if (parsed === null) {
        this.counters.rejected++;
        continue;
      }
      const seconds = meta[at + META_SECONDS]!;
      const nanos = meta[at + META_NANOS]!;
      this.deliver({
        packet: parsed.payload.slice(),
        source: parsed.source,
        destination: parsed.destination,
        ifindex: meta[at + META_IFINDEX]!,
        receivedAt: new Date(seconds * 1000 + Math.floor(nanos / 1e6)),
        timestamp: BigInt(seconds) * 1_000_000_000n + BigInt(nanos),
        injected: false,
      });
    }
  }
}
