/**
 * The errors jitguard throws. Every failure is one of these:
 *
 * - {@link ValidationError}: an argument was rejected in TypeScript before anything reached
 *   the kernel. Nothing was changed.
 * - {@link SystemError}: the kernel or a system call refused. `code` is the errno name
 *   ('ENODEV', 'EPERM', 'ETIMEDOUT', …) or a jitguard code ('ERR_JITGUARD_CLOSED'), `errno`
 *   its positive number, `syscall` the call that failed, `interface` the device. It has two
 *   kinds, one per part of the library:
 *   - {@link WireGuardError} (netlink): `syscall` is 'sendmsg', 'recvmsg', 'poll', 'socket',
 *     or 'netlink' when the kernel answered with an NLMSG_ERROR; adds `operation`,
 *     `kernelMessage` (the kernel's extended-ack text) and `progress`;
 *   - `CaptureError` (lib/capture/errors.ts, AF_PACKET).
 *   A missing interface is always `code === 'ENODEV'`, whichever kind: {@link isNotFound}.
 * - `NetlinkDecodeError` (lib/netlink/attributes.ts): a kernel reply that does not parse.
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

export interface SystemErrorFields {
  code: string;
  errno?: number;
  syscall?: string;
  interface?: string;
}

/**
 * The kernel or a system call refused: the shared base of {@link WireGuardError} and
 * `CaptureError`, so one `instanceof` or one {@link isNotFound} covers both.
 */
export class SystemError extends Error {
  override name = 'SystemError';
  /** The errno name ('ENODEV', 'EPERM', …) or a jitguard code ('ERR_JITGUARD_CLOSED', …). */
  readonly code: string;
  /** Positive errno value, when a system call or the kernel gave one. */
  readonly errno: number | undefined;
  /** The failed call, when there was one. */
  readonly syscall: string | undefined;
  /** The interface concerned, when there is one. */
  readonly interface: string | undefined;

  constructor(message: string, fields: SystemErrorFields) {
    super(message);
    this.code = fields.code;
    this.errno = fields.errno;
    this.syscall = fields.syscall;
    this.interface = fields.interface;
  }
}

export interface WireGuardErrorFields extends SystemErrorFields {
  syscall: string;
  operation: string;
  kernelMessage?: string;
  progress?: Progress;
}

export class WireGuardError extends SystemError {
  override name = 'WireGuardError';
  /** 'netlink' when the kernel answered with an error, else the system call that failed. */
  declare readonly syscall: string;
  /** The jitguard operation: 'getDevice', 'setDevice', 'createDevice', … */
  readonly operation: string;
  readonly kernelMessage: string | undefined;
  /** Present on a multi-message `setDevice` that failed part-way. */
  readonly progress: Progress | undefined;

  constructor(message: string, fields: WireGuardErrorFields) {
    super(message, fields);
    this.operation = fields.operation;
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

/**
 * True for the documented "not found" condition, the interface does not exist, from any
 * part of the library (a {@link WireGuardError} or a `CaptureError`).
 */
export function isNotFound(error: unknown): boolean {
  return error instanceof SystemError && error.code === 'ENODEV';
}
