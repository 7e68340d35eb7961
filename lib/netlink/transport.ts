/**
 * The seam between the TypeScript netlink code and the kernel. The native transport sends
 * each message and reads until the kernel has finished with it, off the event loop; unit
 * tests substitute a transport that replays recorded kernel replies.
 */
import { loadBinding } from '../native/binding.js';

export interface ExchangeResult {
  /** Every reply datagram that belongs to the messages sent, in arrival order. */
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
  close(): void;
}

interface NativeNetlinkSocket {
  exchange(messages: Buffer[]): Promise<ExchangeResult>;
  close(): void;
}

interface NetlinkBinding {
  NetlinkSocket: new (protocol: number, receiveBufferBytes: number, netnsPath: string) => NativeNetlinkSocket;
}

/**
 * Receive buffer requested for each socket. Dumps are paced by the reader, so this only has
 * to hold one burst of replies; 1 MiB leaves room for acks of a long SET as well.
 */
const RECEIVE_BUFFER_BYTES = 1 << 20;

/**
 * A kernel netlink socket of the given protocol (NETLINK_GENERIC, NETLINK_ROUTE), created in
 * the network namespace at `netnsPath` when given (it stays bound to it for its life).
 */
export class NativeTransport implements NetlinkTransport {
  private readonly socket: NativeNetlinkSocket;

  constructor(protocol: number, netnsPath = '') {
    const { NetlinkSocket } = loadBinding<NetlinkBinding>();
    this.socket = new NetlinkSocket(protocol, RECEIVE_BUFFER_BYTES, netnsPath);
  }

  exchange(messages: Buffer[]): Promise<ExchangeResult> {
    return this.socket.exchange(messages);
  }

  close(): void {
    this.socket.close();
  }
}
