/**
 * The seam between the TypeScript netlink code and the kernel. The native transport sends
 * each message and reads until the kernel has finished with it, off the event loop; unit
 * tests substitute a transport that replays recorded kernel replies.
 */
import { ValidationError } from '../errors.js';
import { describe } from '../describe.js';
import { loadBinding } from '../native/binding.js';

export interface ExchangeResult {
  /**
   * The reply datagrams that belong to the messages sent, in arrival order. The native
   * transport leaves out datagrams holding only acknowledgements (error 0): `completed`
   * already says which messages succeeded.
   */
  replies: Buffer[];
  /** How many of the messages the kernel finished without error. */
  completed: number;
}

export interface NetlinkTransport {
  /**
   * Sends `messages` in order, one at a time; after each, reads replies until its
   * NLMSG_DONE or NLMSG_ERROR. Stops after the first message the kernel rejects.
   * A failing system call rejects with an Error carrying `errno`, `syscall` and `completed`.
   */
  exchange(messages: Buffer[]): Promise<ExchangeResult>;
  /**
   * Optional. The same exchange done on the calling thread, for small requests whose kernel
   * work (done inside sendmsg) costs less than the thread hops of `exchange`: a one-peer SET
   * took 0.5-1.7 ms from C in the test VM and 6-13 ms through the pool. An answer that is not
   * there within 100 ms (the kernel queues it before sendmsg returns) fails with ETIMEDOUT.
   */
  exchangeNow?(messages: Buffer[]): ExchangeResult;
  /**
   * Optional. Sends one dump request on the calling thread and returns only its first reply
   * datagram (`completed` 1 once it is read): the kernel builds that one inside sendmsg, and
   * builds the others only as they are read, so this costs one datagram whatever the size of
   * the dump. The rest of the dump is left queued: the socket must not be used again.
   */
  exchangeFirstReply?(message: Buffer): ExchangeResult;
  /**
   * Optional. From now on, a wait for an answer that has not come ends at once, failing the
   * exchange with errno ECANCELED (syscall 'poll'); answers that have come are still read.
   * `WireGuard.close()` calls it so that a lost answer cannot hold up closing.
   */
  cancel?(): void;
  /** No new exchanges; the connection calls it once none is in flight. */
  close(): void;
}

interface NativeNetlinkSocket {
  exchange(messages: Buffer[]): Promise<ExchangeResult>;
  exchangeNow(messages: Buffer[], firstReplyOnly?: boolean): ExchangeResult;
  cancel(): void;
  close(): void;
}

interface NetlinkBinding {
  NetlinkSocket: new (protocol: number, receiveBufferBytes: number, netnsPath: string, replyTimeoutMs: number) => NativeNetlinkSocket;
}

/**
 * Receive buffer requested for each socket. Dumps are paced by the reader, so this only has
 * to hold one burst of replies; 1 MiB leaves room for acks of a long SET as well.
 */
const RECEIVE_BUFFER_BYTES = 1 << 20;

/**
 * How long one wait for the kernel's answer may last. The kernel does a request's work inside
 * sendmsg() (and a dump's inside the recvmsg() that drains it) and queues the answer before
 * the call returns, so a kernel that answers has answered when the wait begins: this bounds
 * only a lost answer, never the kernel's work (a SET of 100,000 peers does not come near it).
 */
export const DEFAULT_REPLY_TIMEOUT_MS = 10_000;

/** The longest reply timeout accepted (poll() takes an int of milliseconds; an hour is plenty). */
export const MAX_REPLY_TIMEOUT_MS = 3_600_000;

/** Returns `value` if it is a valid reply timeout: an integer from 1 to MAX_REPLY_TIMEOUT_MS. */
export function validateReplyTimeout(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_REPLY_TIMEOUT_MS) {
    throw new ValidationError(path, `expected an integer number of milliseconds from 1 to ${MAX_REPLY_TIMEOUT_MS}, got ${typeof value === 'number' ? value : describe(value)}`);
  }
  return value;
}

/**
 * Sockets not yet closed, stopped when the process exits. Weakly held: a socket nobody
 * references is collected as before (one with an exchange in flight is kept alive by it).
 */
const openSockets = new Set<WeakRef<NativeNetlinkSocket>>();
const forgetCollected = new FinalizationRegistry<WeakRef<NativeNetlinkSocket>>((ref) => openSockets.delete(ref));
let exitHookInstalled = false;

/**
 * process.exit() joins the libuv pool threads before the process ends, so a thread waiting
 * for an answer would hold the exit up to its timeout; closing the sockets ends the waits.
 * A terminated Worker cannot be helped this way (its JavaScript is stopped first, and Node
 * lets pending pool work finish before an addon could act): it waits for the wait to end,
 * within the reply timeout.
 */
function stopAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const ref of openSockets) ref.deref()?.close();
    openSockets.clear();
  });
}

/**
 * A kernel netlink socket of the given protocol (NETLINK_GENERIC, NETLINK_ROUTE), created in
 * the network namespace at `netnsPath` when given (it stays bound to it for its life).
 * Exchanges on one socket run one at a time, in call order, each on one pool thread.
 * A wait for an answer longer than `replyTimeoutMs` fails the exchange with errno ETIMEDOUT
 * (syscall 'poll'); the socket may then receive the late answer, so replace it.
 */
export class NativeTransport implements NetlinkTransport {
  private readonly socket: NativeNetlinkSocket;
  private readonly registered: WeakRef<NativeNetlinkSocket>;

  constructor(protocol: number, netnsPath = '', replyTimeoutMs = DEFAULT_REPLY_TIMEOUT_MS) {
    validateReplyTimeout(replyTimeoutMs, 'replyTimeoutMs');
    const { NetlinkSocket } = loadBinding<NetlinkBinding>();
    this.socket = new NetlinkSocket(protocol, RECEIVE_BUFFER_BYTES, netnsPath, replyTimeoutMs);
    this.registered = new WeakRef(this.socket);
    openSockets.add(this.registered);
    forgetCollected.register(this.socket, this.registered, this.registered);
    stopAllOnExit();
  }

  exchange(messages: Buffer[]): Promise<ExchangeResult> {
    return this.socket.exchange(messages);
  }

  exchangeNow(messages: Buffer[]): ExchangeResult {
    return this.socket.exchangeNow(messages);
  }

  exchangeFirstReply(message: Buffer): ExchangeResult {
    return this.socket.exchangeNow([message], true);
  }

  cancel(): void {
    this.socket.cancel();
  }

  close(): void {
    openSockets.delete(this.registered);
    forgetCollected.unregister(this.registered);
    this.socket.close();
  }
}
