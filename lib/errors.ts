/**
 * The errors jitguard throws. There are two kinds, and every failure is one of them:
 *
 * - {@link ValidationError}: an argument was rejected in TypeScript before anything reached
 *   the kernel. Nothing was changed.
 * - {@link WireGuardError}: the kernel (or a system call) refused. `code` is the errno name
 *   ('ENODEV', 'EPERM', 'EINVAL', …), `errno` its positive number, `syscall` the call that
 *   failed ('sendmsg', 'recvmsg', 'socket', or 'netlink' when the kernel answered with an
 *   NLMSG_ERROR), `kernelMessage` the kernel's extended-ack text when it gave one, and
 *   `interface` the device name. A missing interface is always `code === 'ENODEV'` (see
 *   {@link isNotFound}).
 *
 * Messages and fields never contain key material: keys are named by their position in the
 * call (`peers[3].publicKey`), never echoed.
 */
import { constants } from 'node:os';

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** The errno name for a positive errno value ('ENODEV' for 19). */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/**
 * How far a multi-message `setDevice` got before it failed. The kernel applies each message
 * in order and does not roll back, so:
 * - everything in the first `completedMessages` messages was applied (device fields come
 *   first, in message 0; then `appliedPeers` peers, in the order given);
 * - the rejected message may have been applied in part: the kernel stops at the peer that
 *   failed, so up to `uncertainPeers` peers after `appliedPeers` may or may not be there
 *   (and, when it was message 0, some device fields: the kernel sets fwmark before the
 *   listen port, and removes peers for `replacePeers` and sets the key before any peer);
 * - nothing after the rejected message was sent.
 */
export interface Progress {
  /** Netlink messages the kernel accepted in full before the failure. */
  completedMessages: number;
  /** Messages the operation was split into. */
  totalMessages: number;
  /** Peers certainly applied in full (with all their allowed IPs), counted from the first. */
  appliedPeers: number;
  /** A peer whose allowed IPs were split across messages and applied only in part, if any. */
  partialPeer?: number;
  /** Peers after `appliedPeers`, in the rejected message, whose state is unknown. */
  uncertainPeers: number;
}

export interface WireGuardErrorFields {
  code: string;
  errno?: number;
  syscall: string;
  operation: string;
  interface?: string;
  kernelMessage?: string;
  progress?: Progress;
}

export class WireGuardError extends Error {
  override name = 'WireGuardError';
  readonly code: string;
  readonly errno: number | undefined;
  readonly syscall: string;
  /** The jitguard operation: 'getDevice', 'setDevice', 'createDevice', … */
  readonly operation: string;
  readonly interface: string | undefined;
  readonly kernelMessage: string | undefined;
  /** Present on a multi-message `setDevice` that failed part-way. */
  readonly progress: Progress | undefined;

  constructor(message: string, fields: WireGuardErrorFields) {
    super(message);
    this.code = fields.code;
    this.errno = fields.errno;
    this.syscall = fields.syscall;
    this.operation = fields.operation;
    this.interface = fields.interface;
    this.kernelMessage = fields.kernelMessage;
    this.progress = fields.progress;
  }
}

/** An argument rejected before anything crossed into native code or the kernel. */
export class ValidationError extends TypeError {
  override name = 'ValidationError';
  readonly code = 'ERR_JITGUARD_INVALID_ARGUMENT';
  /** Where in the argument the problem is, e.g. `peers[2].allowedIps[0]`. */
  readonly path: string;

  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.path = path;
  }
}

/** True for the documented "not found" condition: the interface does not exist. */
export function isNotFound(error: unknown): boolean {
  return error instanceof WireGuardError && error.code === 'ENODEV';
}
