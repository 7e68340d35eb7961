/**
 * Errors of the handshake capture. Arguments rejected in TypeScript are the library's
 * {@link ValidationError}; everything else is a {@link CaptureError}:
 *
 * | code                 | when                                                                   |
 * | -------------------- | ---------------------------------------------------------------------- |
 * | 'ENODEV'             | the named interface does not exist (see {@link isNotFound})            |
 * | 'EPERM' / 'EACCES'   | no CAP_NET_RAW (the message says so)                                   |
 * | 'ENETDOWN'           | the capture's interface went down or was deleted under it; the capture |
 * |                      | is closed (emitted as 'error', then 'close')                           |
 * | 'ERR_CAPTURE_CLOSED' | inject() or iteration on a closed capture                              |
 * | other errno names    | a system call failed (`syscall` says which)                            |
 */
import { SystemError, errnoName, isNotFound } from '../errors.js';

export interface CaptureErrorFields {
  code: string;
  errno?: number;
  syscall?: string;
  interface?: string;
}

/**
 * A {@link SystemError} of the capture. `code`: the errno name ('ENODEV', 'EPERM',
 * 'ENETDOWN', …) or 'ERR_CAPTURE_CLOSED'; `syscall`: the failed call ('socket', 'bind',
 * 'setsockopt(SO_ATTACH_FILTER)', 'recvmmsg', 'poll', 'if_nametoindex'); `interface`: the
 * interface the capture is bound to, when it is bound to one.
 */
export class CaptureError extends SystemError {
  override name = 'CaptureError';

  constructor(message: string, fields: CaptureErrorFields) {
    super(message, fields);
  }
}

interface NativeErrnoError {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  message?: unknown;
}

/** Wraps an error thrown by (or delivered from) the addon into a CaptureError. */
export function fromNative(error: unknown, context: { interface?: string; doing: string }): CaptureError {
  const e = (error ?? {}) as NativeErrnoError;
  const errno = typeof e.errno === 'number' ? e.errno : undefined;
  const code = typeof e.code === 'string' && e.code !== 'EUNKNOWN' ? e.code : errno !== undefined ? errnoName(errno) : 'EIO';
  const syscall = typeof e.syscall === 'string' ? e.syscall : undefined;
  const detail = typeof e.message === 'string' ? e.message : String(error);
  const where = context.interface !== undefined ? ` on ${context.interface}` : '';
  let message = `${context.doing}${where}: ${detail}`;
  if (code === 'EPERM' || code === 'EACCES') {
    message = `${context.doing}${where} needs CAP_NET_RAW (run as root or grant the capability: setcap cap_net_raw+ep); ${detail}`;
  } else if (code === 'ENODEV' || code === 'ENXIO') {
    message = `${context.doing}: no such interface${context.interface !== undefined ? ` '${context.interface}'` : ''} (${detail})`;
  }
  return new CaptureError(message, {
    code: code === 'ENXIO' && syscall === 'if_nametoindex' ? 'ENODEV' : code,
    ...(errno !== undefined ? { errno } : {}),
    ...(syscall !== undefined ? { syscall } : {}),
    ...(context.interface !== undefined ? { interface: context.interface } : {}),
  });
}

/**
 * @deprecated Use {@link isNotFound}, which covers every part of the library; this is the
 * same function.
 */
export const isCaptureNotFound: (error: unknown) => boolean = isNotFound;
