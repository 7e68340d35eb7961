/**
 * A netlink connection: numbers requests, runs one exchange at a time, and turns the
 * kernel's answers into data or a {@link WireGuardError}.
 */
import { WireGuardError, errnoName } from '../errors.js';
import type { Progress } from '../errors.js';
import { NetlinkDecodeError } from './attributes.js';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLM_F_DUMP_INTR } from './constants.js';
import { decodeAck, decodeDone, messagesIn, sequenceOf, setSequence } from './message.js';
import { checkRequests } from './request.js';
import { runAtOnce, runInSlices, SliceClock } from '../slices.js';
import type { NetlinkMessage } from './message.js';
import type { ExchangeResult, NetlinkTransport } from './transport.js';

/** What a failure is about, for the error it produces. */
export interface RequestContext {
  operation: string;
  interface?: string;
  /** Maps a count of completed messages to peer-level progress (multi-message SET). */
  progress?: (completedMessages: number) => Progress;
  /** Explanations of errno names specific to this operation, overriding the generic ones. */
  explain?: Record<string, string>;
  /**
   * The kernel's work for this request is small (a SET creating a few peers, no removal):
   * exchange it on the event loop when the transport can (`exchangeNow`), saving the pool's
   * two thread hops, which cost several times the kernel's work for a one-peer install.
   */
  small?: boolean;
}

/**
 * Where a pipelined request's messages come from, a batch at a time (see `requestPipelined`).
 * Every message handed out belongs to the connection, which wipes it once sent.
 */
export interface MessageSource {
  /** The next batch, or undefined after the last; may take turns of the event loop to encode. */
  next(): Promise<Buffer[] | undefined>;
  /**
   * The request failed: wipe whatever is held, and learn what the whole operation would have
   * been, so the `progress` called right after can count its messages.
   */
  abandon(): Promise<void>;
}

export interface RequestResult {
  /** Data messages (not acks, not DONE), in order; views into `datagrams`. */
  messages: NetlinkMessage[];
  /** True when the kernel flagged the dump as interrupted by a concurrent change. */
  interrupted: boolean;
  /** The reply datagrams themselves, for the caller to wipe once decoded. */
  datagrams: Buffer[];
}

export class NetlinkConnection {
  private sequence = Math.floor(Math.random() * 0x7fffffff);
  private queue: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private cancelled = false;
  private transport: NetlinkTransport | undefined;

  /**
   * `open` creates the socket: lazily, and again after a failed exchange. `protocol` is its
   * netlink protocol (NETLINK_GENERIC, NETLINK_ROUTE), which decides what the kernel answers.
   */
  constructor(private readonly open: () => NetlinkTransport, private readonly protocol: number) {}

  /**
   * Sends `messages` (their sequence numbers are assigned here) and returns the kernel's
   * data replies. Concurrent calls are queued: a netlink socket answers one request at a
   * time, and queueing here keeps waiting callers off the thread pool. A message the kernel
   * would not answer is refused first (ValidationError), and nothing is sent.
   */
  request(messages: Buffer[], context: RequestContext): Promise<RequestResult> {
    if (this.closing) return Promise.reject(closedError(context));
    try {
      checkRequests(messages, this.protocol);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = async (): Promise<RequestResult> => {
      this.transport = this.readyToSend(messages);
      let result;
      try {
        result = context.small && this.transport.exchangeNow
          ? this.transport.exchangeNow(messages)
          : await this.transport.exchange(messages);
      } catch (error) {
        // The socket may hold the rest of a dump or a stray ack now: start afresh next time.
        this.transport.close();
        this.transport = undefined;
        throw fromSystemCallError(error, messages.length, context);
      }
      return readReplies(messages, result, context);
    };
    return this.enqueue(run);
  }

  /** Runs `run` once every request queued before it has finished. */
  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * The first reply datagram of a dump request, and nothing more (see
   * `NetlinkTransport.exchangeFirstReply`): the head of a WireGuard dump carries the
   * interface's own attributes, its keys among them, for one datagram's work whatever the
   * number of peers. The socket is replaced afterwards, since it holds the rest of the dump.
   * Resolves with undefined when the transport cannot do this (the caller then dumps).
   */
  requestFirstReply(message: Buffer, context: RequestContext): Promise<RequestResult | undefined> {
    if (this.closing) return Promise.reject(closedError(context));
    try {
      checkRequests([message], this.protocol);
    } catch (error) {
      return Promise.reject(error);
    }
    const run = async (): Promise<RequestResult | undefined> => {
      const transport = this.readyToSend([message]);
      if (!transport.exchangeFirstReply) return undefined;
      let result;
      try {
        result = transport.exchangeFirstReply(message);
      } catch (error) {
        throw fromSystemCallError(error, 1, context);
      } finally {
        transport.close();
        this.transport = undefined;
      }
      return readReplies([message], result, context);
    };
    return this.enqueue(run);
  }

  /**
   * Sends acknowledged requests (a large SET) batch by batch, each batch to the kernel while
   * `source` encodes the next one on the event loop: the kernel's work per message (a DH per
   * new peer) is many times JavaScript's, so encoding hides behind it, and only two batches
   * exist at a time. The connection is held for the whole request, as for `request`. The first
   * rejection stops it, and nothing after the rejected message is sent; its error's `progress`
   * counts messages over the whole request (`context.progress` gets the overall count, once
   * `source.abandon()` has resolved). `prepare` makes the source when the request's turn
   * comes: it may take turns of the event loop (validating a large config), and if it throws,
   * nothing is sent.
   */
  requestPipelined(prepare: () => Promise<MessageSource>, context: RequestContext): Promise<void> {
    if (this.closing) return Promise.reject(closedError(context));
    const run = async (): Promise<void> => {
      // Prepared (validated, in slices) inside the connection's turn, so that this request
      // still reaches the kernel in call order; a failure here has sent nothing.
      const source = await prepare();
      let completedBefore = 0;
      let failure: { error: unknown; completed: number } | undefined;
      let batch: Buffer[] | undefined;
      let following: Promise<Buffer[] | undefined> | undefined;
      try {
        batch = await source.next();
        while (batch !== undefined) {
          checkRequests(batch, this.protocol);
          this.transport = this.readyToSend(batch);
          const inFlight = this.transport.exchange(batch);
          // Encoded while the kernel works on this batch; it is awaited (or, after a failure,
          // settled) before anything else happens.
          following = source.next();
          following.catch(() => undefined);
          let result;
          try {
            result = await inFlight;
          } catch (error) {
            this.transport.close();
            this.transport = undefined;
            failure = { error, completed: completedBefore + ((error as { completed?: number })?.completed ?? 0) };
            break;
          }
          try {
            const clock = new SliceClock();
            await runInSlices(interpret(batch, result.replies, result.completed, { ...context, progress: undefined }, clock), clock);
          } catch (error) {
            failure = { error, completed: completedBefore + result.completed };
            break;
          } finally {
            for (const datagram of result.replies) datagram.fill(0);
          }
          completedBefore += batch.length;
          for (const message of batch) message.fill(0);
          batch = await following;
          following = undefined;
        }
      } catch (error) {
        // The source failed to encode, or a batch was refused before sending: nothing of it
        // went out.
        failure = { error, completed: completedBefore };
      } finally {
        for (const message of batch ?? []) message.fill(0);
      }
      if (failure === undefined) return;
      const pending = await following?.catch(() => undefined);
      for (const message of pending ?? []) message.fill(0);
      await source.abandon();
      throw overall(failure.error, failure.completed, context);
    };
    return this.enqueue(run);
  }

  /** Numbers `messages` and returns the transport to send them on, opening it if needed. */
  private readyToSend(messages: Buffer[]): NetlinkTransport {
    for (const message of messages) {
      this.sequence = (this.sequence + 1) >>> 0;
      setSequence(message, this.sequence);
    }
    if (!this.transport) {
      this.transport = this.open();
      if (this.cancelled) this.transport.cancel?.();
    }
    return this.transport;
  }

  /**
   * Requests go on, but from now on a wait for an answer that has not come ends at once
   * (ECANCELED): a lost answer cannot hold up closing. A kernel that answers has answered
   * by the time the wait begins, so no real answer is cut off.
   */
  cancelWaits(): void {
    this.cancelled = true;
    this.transport?.cancel?.();
  }

  /** Refuses new requests; resolves once the queued ones have finished and the socket is closed. */
  close(): Promise<void> {
    this.closing ??= this.queue.then(() => {
      this.transport?.close();
      this.transport = undefined;
    });
    return this.closing;
  }
}

/** Reply datagrams looked through in one go, without a clock: far less than a slice's work. */
const FEW_DATAGRAMS = 8;

/**
 * The kernel's answer to `sent`: its data messages, or its error. A dump of 10^5 peers is
 * thousands of datagrams, looked through in slices so that timers and I/O get their turns (one
 * pass held the event loop ~50 ms in the TCG VM); a few (a SET's, whose acks the addon does not
 * even hand over) at once. The datagrams are wiped here if this fails, else by the caller.
 */
async function readReplies(sent: Buffer[], result: ExchangeResult, context: RequestContext): Promise<RequestResult> {
  try {
    const few = result.replies.length <= FEW_DATAGRAMS;
    const clock = few ? new SliceClock(Infinity) : new SliceClock();
    const steps = interpret(sent, result.replies, result.completed, context, clock);
    const interpreted = few ? runAtOnce(steps) : await runInSlices(steps, clock);
    return { ...interpreted, datagrams: result.replies };
  } catch (error) {
    for (const datagram of result.replies) datagram.fill(0);
    throw error instanceof NetlinkDecodeError ? NetlinkDecodeError.inContext(error, context) : error;
  }
}

function closedError(context: RequestContext): WireGuardError {
  return new WireGuardError(`${context.operation}: the WireGuard instance is closed`, {
    code: 'ERR_JITGUARD_CLOSED', syscall: 'netlink', operation: context.operation, interface: context.interface,
  });
}

/**
 * A pipelined request's failure as its caller sees it: a kernel rejection or a failed system
 * call of one batch, with `progress` over the whole request; anything else as it was.
 */
function overall(error: unknown, completed: number, context: RequestContext): unknown {
  const progress = context.progress?.(completed);
  if (error instanceof WireGuardError) {
    return new WireGuardError(error.message, {
      code: error.code, errno: error.errno, syscall: error.syscall, operation: error.operation,
      interface: error.interface, kernelMessage: error.kernelMessage, progress,
    });
  }
  const systemCall = fromSystemCallError(error, 1, context);
  if (systemCall instanceof WireGuardError) {
    return new WireGuardError(systemCall.message, {
      code: systemCall.code, errno: systemCall.errno, syscall: systemCall.syscall, operation: systemCall.operation,
      interface: systemCall.interface, progress,
    });
  }
  return error;
}

/** The replies' data messages, or the kernel's error as a WireGuardError; yields when `clock` is due. */
function* interpret(sent: Buffer[], replies: Buffer[], completed: number, context: RequestContext, clock: SliceClock): Generator<void, Omit<RequestResult, 'datagrams'>, void> {
  const wanted = new Set(sent.map(sequenceOf));
  const messages: NetlinkMessage[] = [];
  let interrupted = false;
  for (const datagram of replies) {
    if (clock.due()) yield;
    for (const message of messagesIn(datagram)) {
      if (!wanted.has(message.seq)) continue;
      // The kernel marks any message of an inconsistent dump, NLMSG_DONE included.
      if ((message.flags & NLM_F_DUMP_INTR) !== 0) interrupted = true;
      if (message.type === NLMSG_ERROR || message.type === NLMSG_DONE) {
        const status = message.type === NLMSG_ERROR ? decodeAck(message) : decodeDone(message);
        if (status.errno !== 0) throw fromKernelError(status.errno, status.kernelMessage, completed, sent.length, context);
        continue;
      }
      if (message.type === NLMSG_NOOP) continue;
      messages.push(message);
    }
  }
  return { messages, interrupted };
}

const explanations: Record<string, string> = {
  ENODEV: 'no such interface',
  EOPNOTSUPP: 'not a WireGuard interface',
  EPERM: 'operation not permitted: configuring WireGuard over netlink needs CAP_NET_ADMIN',
  EEXIST: 'an interface with that name already exists',
};

function subjectOf(context: RequestContext): string {
  return context.interface === undefined ? context.operation : `${context.operation} ${context.interface}`;
}

function fromKernelError(
  errno: number,
  kernelMessage: string | undefined,
  completed: number,
  total: number,
  context: RequestContext,
): WireGuardError {
  const code = errnoName(errno);
  const reason = context.explain?.[code] ?? explanations[code] ?? `kernel answered ${code}`;
  const detail = kernelMessage ? ` (kernel: ${kernelMessage})` : '';
  return new WireGuardError(`${subjectOf(context)}: ${reason}${detail}`, {
    code,
    errno,
    syscall: 'netlink',
    operation: context.operation,
    interface: context.interface,
    kernelMessage,
    progress: total > 1 && context.progress ? context.progress(completed) : undefined,
  });
}

function systemCallReason(code: string, syscall: string | undefined): string {
  if (code === 'EPERM' || code === 'EACCES') return explanations.EPERM!;
  if (code === 'ETIMEDOUT') return 'no answer from the kernel within the reply timeout (replyTimeoutMs); the socket is replaced';
  if (code === 'ECANCELED') return 'the wait for the kernel\'s answer was cancelled: the instance is closing';
  return `${syscall} failed with ${code}`;
}

function fromSystemCallError(error: unknown, total: number, context: RequestContext): unknown {
  const e = error as { errno?: number; syscall?: string; completed?: number; code?: string };
  if (typeof e?.errno !== 'number') return error;
  const code = e.code ?? errnoName(e.errno);
  const reason = systemCallReason(code, e.syscall);
  return new WireGuardError(`${subjectOf(context)}: ${reason}`, {
    code,
    errno: e.errno,
    syscall: e.syscall ?? 'netlink',
    operation: context.operation,
    interface: context.interface,
    progress: total > 1 && context.progress ? context.progress(e.completed ?? 0) : undefined,
  });
}
