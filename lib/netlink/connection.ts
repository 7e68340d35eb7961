/**
 * A netlink connection: numbers requests, runs one exchange at a time, and turns the
 * kernel's answers into data or a {@link WireGuardError}.
 */
import { WireGuardError, errnoName } from '../errors.js';
import type { Progress } from '../errors.js';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLM_F_DUMP_INTR } from './constants.js';
import { decodeAck, messagesIn, sequenceOf, setSequence } from './message.js';
import type { NetlinkMessage } from './message.js';
import type { NetlinkTransport } from './transport.js';

/** What a failure is about, for the error it produces. */
export interface RequestContext {
  operation: string;
  interface?: string;
  /** Maps a count of completed messages to peer-level progress (multi-message SET). */
  progress?: (completedMessages: number) => Progress;
}

export interface RequestResult {
  /** Data messages (not acks, not DONE), in order. */
  messages: NetlinkMessage[];
  /** True when the kernel flagged the dump as interrupted by a concurrent change. */
  interrupted: boolean;
}

export class NetlinkConnection {
  private sequence = Math.floor(Math.random() * 0x7fffffff);
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly transport: NetlinkTransport) {}

  /**
   * Sends `messages` (their sequence numbers are assigned here) and returns the kernel's
   * data replies. Concurrent calls are queued: a netlink socket answers one request at a
   * time, and queueing here keeps waiting callers off the thread pool.
   */
  request(messages: Buffer[], context: RequestContext): Promise<RequestResult> {
    const run = async (): Promise<RequestResult> => {
      if (this.closed) {
        throw new WireGuardError(`${context.operation}: the WireGuard connection is closed`, {
          code: 'ERR_JITGUARD_CLOSED',
          syscall: 'netlink',
          operation: context.operation,
          interface: context.interface,
        });
      }
      for (const message of messages) {
        this.sequence = (this.sequence + 1) >>> 0;
        setSequence(message, this.sequence);
      }
      let result;
      try {
        result = await this.transport.exchange(messages);
      } catch (error) {
        throw fromSystemCallError(error, messages.length, context);
      }
      return interpret(messages, result.replies, result.completed, context);
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }
}

function interpret(sent: Buffer[], replies: Buffer[], completed: number, context: RequestContext): RequestResult {
  const wanted = new Set(sent.map(sequenceOf));
  const messages: NetlinkMessage[] = [];
  let interrupted = false;
  for (const datagram of replies) {
    for (const message of messagesIn(datagram)) {
      if (!wanted.has(message.seq)) continue;
      if (message.type === NLMSG_ERROR) {
        const ack = decodeAck(message);
        if (ack.errno !== 0) throw fromKernelError(ack.errno, ack.kernelMessage, completed, sent.length, context);
        continue;
      }
      if (message.type === NLMSG_DONE || message.type === NLMSG_NOOP) continue;
      if ((message.flags & NLM_F_DUMP_INTR) !== 0) interrupted = true;
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

function fromKernelError(
  errno: number,
  kernelMessage: string | undefined,
  completed: number,
  total: number,
  context: RequestContext,
): WireGuardError {
  const code = errnoName(errno);
  const subject = context.interface === undefined ? context.operation : `${context.operation} ${context.interface}`;
  const reason = explanations[code] ?? `kernel answered ${code}`;
  const detail = kernelMessage ? ` (kernel: ${kernelMessage})` : '';
  return new WireGuardError(`${subject}: ${reason}${detail}`, {
    code,
    errno,
    syscall: 'netlink',
    operation: context.operation,
    interface: context.interface,
    kernelMessage,
    progress: total > 1 && context.progress ? context.progress(completed) : undefined,
  });
}

function fromSystemCallError(error: unknown, total: number, context: RequestContext): unknown {
  const e = error as { errno?: number; syscall?: string; completed?: number; code?: string };
  if (typeof e?.errno !== 'number') return error;
  const code = e.code ?? errnoName(e.errno);
  const subject = context.interface === undefined ? context.operation : `${context.operation} ${context.interface}`;
  const reason = code === 'EPERM' || code === 'EACCES' ? explanations.EPERM : `${e.syscall} failed with ${code}`;
  const completed = e.completed ?? 0;
  return new WireGuardError(`${subject}: ${reason}`, {
    code,
    errno: e.errno,
    syscall: e.syscall ?? 'netlink',
    operation: context.operation,
    interface: context.interface,
    progress: total > 1 && context.progress ? context.progress(completed) : undefined,
  });
}
