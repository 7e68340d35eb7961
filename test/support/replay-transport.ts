/**
 * A NetlinkTransport that replays kernel replies instead of talking to a kernel: each
 * exchange takes the next step of a script, lets the step check what was sent, and answers
 * with its reply datagrams (their sequence numbers rewritten to match the request), or with
 * a system-call failure. Recorded replies come from test/fixtures/netlink/.
 */
import type { ExchangeResult, NetlinkTransport } from '../../lib/netlink/transport.js';

export interface ReplayStep {
  /** Inspect (and assert on) the messages sent. */
  check?: (messages: Buffer[]) => void;
  /** Reply datagrams; every message in them gets the sequence number of request `forMessage` (default: the last one sent). */
  replies?: Buffer[];
  /** Per datagram, which sent message it answers (index into the messages of this exchange). */
  answers?: number[];
  completed?: number;
  /** Reject as a failed system call instead. */
  fail?: { errno: number; code: string; syscall: string; completed?: number };
}

export class ReplayTransport implements NetlinkTransport {
  readonly sent: Buffer[][] = [];
  closed = false;
  /** Calls of `exchangeFirstReply`. */
  firstReplies = 0;
  /** Present only with `{ firstReply: true }`: answers with the first datagram of the next step. */
  exchangeFirstReply?: (message: Buffer) => ExchangeResult;

  constructor(private readonly steps: ReplayStep[], options: { firstReply?: boolean } = {}) {
    if (options.firstReply) {
      this.exchangeFirstReply = (message) => {
        this.firstReplies++;
        this.sent.push([Buffer.from(message)]);
        const step = this.steps.shift();
        if (!step?.replies?.length) throw new Error(`ReplayTransport: unexpected exchangeFirstReply #${this.sent.length}`);
        step.check?.([message]);
        const head = Buffer.from(step.replies[0]!);
        restamp(head, message.readUInt32LE(8));
        return { replies: [head], completed: 1 };
      };
    }
  }

  get remaining(): number {
    return this.steps.length;
  }

  async exchange(messages: Buffer[]): Promise<ExchangeResult> {
    this.sent.push(messages.map((m) => Buffer.from(m)));
    const step = this.steps.shift();
    if (!step) throw new Error(`ReplayTransport: unexpected exchange #${this.sent.length}`);
    step.check?.(messages);
    if (step.fail) {
      const error = Object.assign(new Error(`${step.fail.syscall} failed`), step.fail);
      throw error;
    }
    const replies = (step.replies ?? []).map((datagram, i) => {
      const copy = Buffer.from(datagram);
      const target = messages[step.answers?.[i] ?? messages.length - 1];
      if (target) restamp(copy, target.readUInt32LE(8));
      return copy;
    });
    return { replies, completed: step.completed ?? messages.length };
  }

  close(): void {
    this.closed = true;
  }
}

/** Rewrites the sequence number of every message in a datagram. */
export function restamp(datagram: Buffer, seq: number): void {
  let offset = 0;
  while (offset + 16 <= datagram.length) {
    const length = datagram.readUInt32LE(offset);
    if (length < 16) break;
    datagram.writeUInt32LE(seq, offset + 8);
    offset += (length + 3) & ~3;
  }
}

/** Loads a recorded exchange file written by test/kernel/record-fixtures.ts. */
export interface RecordedExchange {
  description: string;
  sent: string[];
  replies: string[];
  completed: number;
}
