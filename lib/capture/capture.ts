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
 * - 'initiation' listeners are called synchronously as each batch is read, for a few
 *   milliseconds of their work per turn of the event loop; a batch they take longer over is
 *   finished on the next turns, and the socket is not read meanwhile. There is no queue in front
 *   of them: a slow listener shows up as kernel drops.
 * - Each async iterator has its own bounded queue of `queueLimit` initiations. When it is full
 *   the **oldest** queued initiation is dropped to make room (`queueDrops`): a consumer that
 *   falls behind sees the most recent initiations. An initiator that got no answer retries
 *   with a fresh initiation after 5 s (REKEY_TIMEOUT) anyway, so the oldest queued one is the
 *   least likely still to lead to a handshake, and the queue bounds how stale a delivered
 *   initiation can be.
 *
 * - With no interface given, the second copy of a frame that passed through stacked devices
 *   (bridge and port, bond and slave, macvlan and its lower device): `duplicates`
 *   (see duplicates.ts).
 *
 * The bound interface can go down and come back: by default the capture then closes with
 * ENETDOWN; with `linkDown: 'wait'` it stays open, says so ('down', 'up', `linkState`), and
 * follows the interface when it is deleted and created again under the same name.
 *
 * Other transports (a WireGuard-over-WebSocket daemon hooking its receive path) feed the same
 * stream with {@link HandshakeCapture.inject}; {@link HandshakeCapture.detached} makes a stream
 * with no socket at all, for those alone.
 *
 * Needs CAP_NET_RAW (AF_PACKET), and CAP_SYS_ADMIN for `netns`. The socket is opened with the
 * filter attached before it is bound, so no unfiltered packet is ever queued to it.
 */
import { EventEmitter } from 'node:events';
import { ValidationError, errnoName } from '../errors.js';
import { formatAddress, parseAddress } from '../net/ip.js';
import { isInitiationShape } from '../protocol/initiation.js';
import { type BpfProgram, bpfProgram } from './bpf.js';
import { BpfProgramError, checkProgram } from './bpf-interpreter.js';
import { RecentPackets } from './duplicates.js';
import { CaptureError, fromNative } from './errors.js';
import { DEFAULT_PORT, HANDSHAKE_SNAP_LENGTH, MAX_DESTINATIONS, handshakeFilter, validateDestinations, validatePorts } from './filter.js';
import { META_STRIDE, type NativePacketSocket, type PacketSocketClass, packetSocketClass } from './native.js';
import { copyBytes, decodeFrame, frameDecodeWarmUp } from './frame.js';
import type { SocketAddress } from './packet.js';
import { validateInterfaceName } from '../net/interface-name.js';
import { DEFAULT_SLICE_MS, runInSlices, SliceClock } from '../slices.js';

export type { SocketAddress } from './packet.js';

export const DEFAULT_QUEUE_LIMIT = 1024;
export const DEFAULT_BATCH = 64;
/** Milliseconds of 'initiation' listener work per turn of the event loop (see `deliverBatch`). */
const DELIVERY_BUDGET_MS = DEFAULT_SLICE_MS;
export const DEFAULT_RECEIVE_BUFFER = 4 * 1024 * 1024;
/** How often a capture waiting for its link looks at the interface (milliseconds). */
export const LINK_POLL_INTERVAL_MS = 200;

/** What a capture does when its interface goes down (or is deleted). */
export type LinkDownPolicy = 'close' | 'wait';

/** Whether the capture's interface is up. Always 'up' for a capture of every interface. */
export type LinkState = 'up' | 'down';

export interface HandshakeCaptureOptions {
  /** Interface to capture on (name, at most 15 bytes). Default: every interface of the network namespace. */
  interface?: string;
  /**
   * Capture in another network namespace, given as a path such as `/run/netns/gateway` (what
   * `ip netns add gateway` creates) or `/proc/<pid>/ns/net`: the socket is created inside it,
   * `interface` and `destinations: 'local'` are looked up there, and the calling thread is
   * returned to its own namespace at once. Needs CAP_SYS_ADMIN in addition to CAP_NET_RAW.
   */
  netns?: string;
  /** UDP destination ports (default [51820]): integers 1..65535, unique, at most 128. */
  ports?: readonly number[];
  /**
   * Only initiations to these IP destination addresses, checked in the kernel filter:
   * numeric addresses (unique, at most 256), or 'local' for every address the namespace has
   * when the capture opens (an address added later is not matched until the capture is
   * opened again). Default: any destination.
   */
  destinations?: 'local' | readonly string[];
  /**
   * When the interface goes down or is deleted (the kernel reports ENETDOWN): 'close' (the
   * default) emits the error and closes; 'wait' stays open, emits 'down', and when the
   * interface is up again (the same one, or a new one under the same name) resumes and emits
   * 'up'. Recommended for gateways. Only matters with `interface`.
   */
  linkDown?: LinkDownPolicy;
  /**
   * A replacement for the kernel filter (default `handshakeFilter({ ports, destinations })`),
   * checked as the kernel checks it (a ValidationError for what SO_ATTACH_FILTER would refuse).
   * Whatever it lets through, only packets that parse as handshake initiations (and carry no
   * VLAN id) are delivered; the others are counted in `rejected`.
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
  /**
   * Second copies of one frame, not delivered: with no interface given, a frame is seen once
   * per stacked device it passes (a bridge and its port, ...). 0 when bound to one interface.
   */
  duplicates: number;
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
  /** `linkDown: 'wait'`: the interface went down or was deleted; the capture waits for it. */
  down: [];
  /** `linkDown: 'wait'`: the interface is up again (see `ifindex`: it changes if it was created anew). */
  up: [];
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
  const parsed = typeof address === 'string' ? parseAddress(address) : null;
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

interface CaptureInit {
  interface?: string;
  netns?: string;
  ifindex: number;
  ports: readonly number[];
  destinations?: readonly string[];
  filter?: BpfProgram;
  queueLimit: number;
  linkDown?: LinkDownPolicy;
}

function validateFilter(given: unknown): BpfProgram {
  if (typeof given !== 'object' || given === null || !('instructions' in given)) {
    throw new ValidationError('filter', 'must be a BpfProgram (for example from handshakeFilter() or bpfProgram())');
  }
  const program = bpfProgram((given as BpfProgram).instructions);
  try {
    checkProgram(program.instructions);
  } catch (error) {
    if (error instanceof BpfProgramError) {
      throw new ValidationError(`filter[${error.pc}]`, `the kernel would refuse this program (SO_ATTACH_FILTER: EINVAL): ${error.message}`);
    }
    throw error;
  }
  return program;
}

/** Every address of the namespace, once each, for `destinations: 'local'`. */
function localDestinations(PacketSocket: PacketSocketClass, netns: string | undefined): string[] {
  let addresses;
  try {
    addresses = PacketSocket.localAddresses(netns ?? '');
  } catch (error) {
    throw namespaceOrNative(error, netns, undefined, 'listing the local addresses');
  }
  const unique = [...new Set(addresses.map((a) => formatAddress(a.address)))];
  if (unique.length === 0) throw new ValidationError('destinations', "'local': the network namespace has no IP address");
  if (unique.length > MAX_DESTINATIONS) {
    throw new ValidationError('destinations', `'local': the network namespace has ${unique.length} addresses, more than ${MAX_DESTINATIONS}; name the ones to capture`);
  }
  return unique;
}

/** The errno name of an error from the addon (which gives the number; the name may be absent). */
function nativeCode(error: unknown): string | undefined {
  const e = (error ?? {}) as { code?: unknown; errno?: unknown };
  if (typeof e.code === 'string' && e.code !== 'EUNKNOWN') return e.code;
  return typeof e.errno === 'number' ? errnoName(e.errno) : undefined;
}

/** A native error as a CaptureError, saying so when entering the namespace was what failed. */
function namespaceOrNative(error: unknown, netns: string | undefined, name: string | undefined, doing: string): CaptureError {
  const e = (error ?? {}) as { syscall?: unknown; code?: unknown; errno?: unknown; message?: unknown };
  if (netns !== undefined && (e.syscall === 'setns' || e.syscall === 'open')) {
    const code = nativeCode(error) ?? 'EIO';
    const hint = e.syscall === 'setns' && (code === 'EPERM' || code === 'EACCES')
      ? ' (entering a network namespace needs CAP_SYS_ADMIN)'
      : code === 'ENOENT' ? ' (no such file: is the namespace path right?)' : '';
    return new CaptureError(`${doing}: cannot enter network namespace ${netns}: ${String(e.message)}${hint}`, {
      code,
      ...(typeof e.errno === 'number' ? { errno: e.errno } : {}),
      syscall: e.syscall,
      ...(name !== undefined ? { interface: name } : {}),
    });
  }
  const where = netns !== undefined ? ` in network namespace ${netns}` : '';
  return fromNative(error, { ...(name !== undefined ? { interface: name } : {}), doing: `${doing}${where}` });
}

export class HandshakeCapture extends EventEmitter<HandshakeCaptureEvents> {
  /** The interface name, or undefined when capturing on every interface (or detached). */
  readonly interface: string | undefined;
  /** The network namespace path given to open(), if any. */
  readonly netns: string | undefined;
  /** The ports of the built-in filter (empty when a replacement filter or no socket is used). */
  readonly ports: readonly number[];
  /** The destination addresses the built-in filter matches (normalised); undefined for any. */
  readonly destinations: readonly string[] | undefined;
  /** The program attached to the socket (undefined when detached). */
  readonly filter: BpfProgram | undefined;
  /** What happens when the interface goes down: see {@link HandshakeCaptureOptions.linkDown}. */
  readonly linkDown: LinkDownPolicy;

  private socket: NativePacketSocket | undefined;
  private readonly queueLimit: number;
  private readonly queues = new Set<InitiationQueue>();
  private isClosed = false;
  private counters = { delivered: 0, injected: 0, rejected: 0, queueDrops: 0, duplicates: 0, wakeups: 0 };
  private kernel = { packets: 0, drops: 0 };
  private boundIndex: number;
  private link: LinkState = 'up';
  private linkTimer: NodeJS.Timeout | undefined;
  /** The rest of a batch whose delivery ran past its budget (see `deliverBatch`). */
  private rest: NodeJS.Immediate | undefined;
  private readonly recent: RecentPackets | undefined;

  /** @internal use {@link HandshakeCapture.open} or {@link HandshakeCapture.detached}. */
  constructor(key: typeof token, init: CaptureInit) {
    super();
    if (key !== token) throw new TypeError('use HandshakeCapture.open() or HandshakeCapture.detached()');
    this.interface = init.interface;
    this.netns = init.netns;
    this.boundIndex = init.ifindex;
    this.ports = init.ports;
    this.destinations = init.destinations;
    this.filter = init.filter;
    this.queueLimit = init.queueLimit;
    this.linkDown = init.linkDown ?? 'close';
    // Stacked devices only duplicate frames for a socket that sees more than one device.
    this.recent = init.filter !== undefined && init.interface === undefined ? new RecentPackets() : undefined;
  }

  /**
   * Opens the capture: an AF_PACKET socket with the filter attached, bound to `interface` (or
   * every interface). Throws a ValidationError for a bad option, a CaptureError 'ENODEV' for
   * an unknown interface, 'EPERM' without CAP_NET_RAW (or CAP_SYS_ADMIN, for `netns`).
   */
  static open(options: HandshakeCaptureOptions = {}): HandshakeCapture {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
    const name = options.interface === undefined ? undefined : validateInterfaceName(options.interface, 'interface');
    if (options.netns !== undefined && (typeof options.netns !== 'string' || options.netns === '' || options.netns.includes('\0'))) {
      throw new ValidationError('netns', 'must be a path such as /run/netns/NAME or /proc/PID/ns/net');
    }
    const netns = options.netns;
    if (options.linkDown !== undefined && options.linkDown !== 'close' && options.linkDown !== 'wait') {
      throw new ValidationError('linkDown', "must be 'close' or 'wait'");
    }
    const destinationsGiven = options.destinations;
    if (destinationsGiven !== undefined && destinationsGiven !== 'local') validateDestinations(destinationsGiven);
    let filter: BpfProgram;
    let ports: readonly number[];
    if (options.filter !== undefined) {
      if (options.ports !== undefined) throw new ValidationError('ports', 'cannot be given together with filter');
      if (destinationsGiven !== undefined) throw new ValidationError('destinations', 'cannot be given together with filter');
      filter = validateFilter(options.filter);
      ports = [];
    } else {
      ports = validatePorts(options.ports ?? [DEFAULT_PORT]);
    }
    const queueLimit = integerOption(options.queueLimit, 'queueLimit', 1, MAX_QUEUE_LIMIT, DEFAULT_QUEUE_LIMIT);
    const batch = integerOption(options.batch, 'batch', 1, 1024, DEFAULT_BATCH);
    const rcvbuf = integerOption(options.receiveBufferSize, 'receiveBufferSize', 0, 1 << 30, DEFAULT_RECEIVE_BUFFER);

    const PacketSocket = packetSocketClass();
    let ifindex = 0;
    if (name !== undefined) {
      try {
        ifindex = PacketSocket.interfaceIndex(name, netns ?? '');
      } catch (error) {
        throw namespaceOrNative(error, netns, name, 'resolving the capture interface');
      }
    }
    let destinations: readonly string[] | undefined;
    if (options.filter === undefined) {
      destinations = destinationsGiven === 'local' ? localDestinations(PacketSocket, netns) : destinationsGiven;
      const built = handshakeFilter({ ports, ...(destinations !== undefined ? { destinations } : {}) });
      destinations = built.destinations;
      filter = built;
    }
    const capture = new HandshakeCapture(token, {
      ...(name !== undefined ? { interface: name } : {}),
      ...(netns !== undefined ? { netns } : {}),
      ifindex,
      ports: Object.freeze([...ports]),
      ...(destinations !== undefined ? { destinations } : {}),
      filter: filter!,
      queueLimit,
      ...(options.linkDown !== undefined ? { linkDown: options.linkDown } : {}),
    });
    try {
      capture.socket = new PacketSocket(
        ifindex,
        filter!.encode(),
        (error, data, meta) => capture.onPackets(error, data, meta),
        { batch, rcvbuf, slot: HANDSHAKE_SNAP_LENGTH, netns: netns ?? '' },
      );
    } catch (error) {
      throw namespaceOrNative(error, netns, name, 'opening the capture socket (AF_PACKET)');
    }
    if (name !== undefined && capture.linkDown === 'wait') {
      // Bound to an interface that is down, the socket reports ENETDOWN at once: start out
      // 'down' (no event for it) and wait.
      capture.checkLink(false);
    }
    // The delivery path warms up a step a turn from the next one, so that the first real
    // wake-up does not run it cold (frame.ts). It delivers nothing.
    setImmediate(() => void runInSlices(frameDecodeWarmUp(), new SliceClock()));
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

  /** The bound interface index; 0 for every interface (or detached). Changes when `linkDown: 'wait'` follows a re-created interface. */
  get ifindex(): number {
    return this.boundIndex;
  }

  /** 'down' while a `linkDown: 'wait'` capture waits for its interface; else 'up'. */
  get linkState(): LinkState {
    return this.link;
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
   * payload; it gets the same check as captured packets (148 bytes, starting 01 00 00 00) and
   * is copied, so the caller may reuse its buffer at once. Returns true when it was delivered,
   * false when it is not an initiation (counted in `rejected`). Throws a ValidationError for a
   * malformed argument and a CaptureError 'ERR_CAPTURE_CLOSED' once closed.
   */
  inject(packet: Uint8Array, source: EndpointInput, destination?: EndpointInput): boolean {
    if (!(packet instanceof Uint8Array)) throw new ValidationError('packet', 'must be a Uint8Array (the UDP payload)');
    const from = endpoint(source, 'source');
    const to = destination === undefined ? null : endpoint(destination, 'destination');
    if (this.isClosed) throw new CaptureError('inject: the capture is closed', { code: 'ERR_CAPTURE_CLOSED' });
    if (!isInitiationShape(packet)) {
      this.counters.rejected++;
      return false;
    }
    this.counters.injected++;
    this.deliver({ packet: copyBytes(packet), source: from, destination: to, ifindex: 0, ...now(), injected: true });
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
    this.stopWatchingLink();
    if (this.rest !== undefined) clearImmediate(this.rest);
    this.rest = undefined;
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

  private fail(error: unknown, doing: string): void {
    const wrapped = fromNative(error, { ...(this.interface !== undefined ? { interface: this.interface } : {}), doing });
    this.shutdown(wrapped);
  }

  /**
   * `linkDown: 'wait'`: looks at the interface by name in the socket's namespace. Follows it
   * to a new index if it was created anew, and reports the transitions (when `announce`).
   */
  private checkLink(announce = true): void {
    if (this.isClosed || this.socket === undefined || this.interface === undefined) return;
    let state: { ifindex: number; up: boolean } | undefined;
    try {
      state = this.socket.link(this.interface);
    } catch (error) {
      if (nativeCode(error) !== 'ENODEV') return this.fail(error, 'watching the capture interface');
      state = undefined; // deleted: wait for an interface of that name to appear
    }
    if (state !== undefined && state.ifindex !== this.boundIndex) {
      try {
        this.socket.bind(state.ifindex);
      } catch (error) {
        return this.fail(error, 'binding the capture to the re-created interface');
      }
      this.boundIndex = state.ifindex;
    }
    const up = state?.up === true;
    if (up && this.link === 'down') {
      this.link = 'up';
      this.stopWatchingLink();
      if (announce) this.emit('up');
    } else if (!up) {
      if (this.link === 'up') {
        this.link = 'down';
        if (announce) this.emit('down');
      }
      this.watchLink();
    }
  }

  private watchLink(): void {
    if (this.linkTimer !== undefined) return;
    // Unreferenced: the socket's poll handle (still reading) keeps the process alive, or not, as ref()/unref() say.
    this.linkTimer = setInterval(() => this.checkLink(), LINK_POLL_INTERVAL_MS).unref();
  }

  private stopWatchingLink(): void {
    if (this.linkTimer === undefined) return;
    clearInterval(this.linkTimer);
    this.linkTimer = undefined;
  }

  private deliver(initiation: HandshakeInitiation): void {
    this.counters.delivered++;
    this.emit('initiation', initiation);
    for (const queue of this.queues) queue.push(initiation);
  }

  private onPackets(error: Error | null, data?: Buffer, meta?: Uint32Array): void {
    if (this.isClosed) return;
    if (error !== null) return this.onSocketError(error);
    if (data === undefined || meta === undefined) return;
    this.counters.wakeups++;
    this.deliverBatch(data, meta, 0);
  }

  /**
   * Delivers the batch's packets from the one at `from` on, for at most DELIVERY_BUDGET_MS of
   * listener work (at least one packet). What is left waits for the next turn of the event loop,
   * with the socket not read meanwhile (new packets wait in its receive buffer, where kernelDrops
   * counts any that do not fit): a listener that is slow for a while (its code still cold in a
   * fresh process, ~2 ms a packet in the TCG test VM against ~0.1 ms hot) then holds the event
   * loop for a few milliseconds at a time, not for a whole batch.
   */
  private deliverBatch(data: Buffer, meta: Uint32Array, from: number): void {
    const deadline = performance.now() + DELIVERY_BUDGET_MS;
    for (let at = from; at + META_STRIDE <= meta.length; at += META_STRIDE) {
      if (this.isClosed) return; // a listener closed the capture mid-batch
      if (at > from && performance.now() >= deadline) {
        this.socket?.pause();
        this.rest = setImmediate(() => {
          this.rest = undefined;
          if (!this.isClosed) this.deliverBatch(data, meta, at);
        });
        return;
      }
      this.deliverPacket(data, meta, at);
    }
    if (from > 0 && !this.isClosed) this.resumeReading();
  }

  private resumeReading(): void {
    try {
      this.socket?.resume();
    } catch (error) {
      this.fail(error, 'resuming the capture');
    }
  }

  private deliverPacket(data: Buffer, meta: Uint32Array, at: number): void {
    const frame = decodeFrame(data, meta, at, this.recent);
    if (frame === 'rejected') this.counters.rejected++;
    else if (frame === 'duplicate') this.counters.duplicates++;
    else this.deliver(frame);
  }

  private onSocketError(error: Error): void {
    const wrapped = fromNative(error, {
      ...(this.interface !== undefined ? { interface: this.interface } : {}),
      doing: 'capture',
    });
    if (wrapped.code === 'ENETDOWN' && this.linkDown === 'wait' && this.interface !== undefined && this.socket !== undefined) {
      // The kernel detached the socket from the interface; it re-attaches it when the link is
      // up again. Keep reading (nothing arrives meanwhile) and watch the link.
      try {
        this.socket.resume();
      } catch (resumeError) {
        return this.fail(resumeError, 'resuming the capture');
      }
      this.checkLink();
      return;
    }
    if (wrapped.code === 'ENETDOWN') this.link = 'down';
    const reason = wrapped.code === 'ENETDOWN'
      ? "the interface went down or was removed; the capture is closed (linkDown: 'wait' keeps it open)"
      : 'the capture is closed';
    this.shutdown(new CaptureError(`${wrapped.message} (${reason})`, {
      code: wrapped.code,
      ...(wrapped.errno !== undefined ? { errno: wrapped.errno } : {}),
      ...(wrapped.syscall !== undefined ? { syscall: wrapped.syscall } : {}),
      ...(this.interface !== undefined ? { interface: this.interface } : {}),
    }));
  }
}
