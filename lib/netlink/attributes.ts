/**
 * Netlink attribute (TLV) writing and reading. A writer appends into one growing buffer and
 * can tell how many bytes a message holds, which is what size-based splitting needs; a
 * reader walks attributes without copying.
 */
import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK } from './constants.js';

/**
 * `n` rounded up to a multiple of 4 (NLMSG_ALIGN / NLA_ALIGN), for any length a u32 can
 * hold. Plain arithmetic: `(n + 3) & ~3` is a signed 32-bit operation in JavaScript, which
 * turns 0x80000000 negative and wraps 0xfffffffd to 0.
 */
export function align4(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`align4: expected a length from 0 to 2^32-1, got ${n}`);
  return n + ((4 - (n % 4)) % 4);
}

/** Appends netlink messages and attributes to a single buffer, growing it as needed. */
export class MessageWriter {
  private buffer: Buffer;
  private length = 0;
  /** The most bytes ever written: what `wipe` must overwrite (the rest was never touched). */
  private highWater = 0;

  constructor(initialCapacity = 4096) {
    this.buffer = Buffer.alloc(initialCapacity);
  }

  get size(): number {
    return this.length;
  }

  private reserve(bytes: number): number {
    const start = this.length;
    const needed = start + bytes;
    if (needed > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(needed, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, start);
      this.buffer.fill(0, 0, start); // the old buffer may hold key bytes
      this.buffer = grown;
    }
    this.length = needed;
    if (needed > this.highWater) this.highWater = needed;
    return start;
  }

  /** Raw bytes, padded to 4. Returns the offset they were written at. */
  bytes(data: Uint8Array): number {
    const start = this.reserve(align4(data.length));
    this.buffer.set(data, start);
    return start;
  }

  u8At(offset: number, value: number): void {
    this.buffer.writeUInt8(value, offset);
  }
  u16At(offset: number, value: number): void {
    this.buffer.writeUInt16LE(value, offset);
  }
  u32At(offset: number, value: number): void {
    this.buffer.writeUInt32LE(value, offset);
  }

  /** Zero-filled space, padded to 4; returns its offset. */
  space(bytes: number): number {
    return this.reserve(align4(bytes));
  }

  attr(type: number, data: Uint8Array): void {
    if (NLA_HDRLEN + data.length > 0xffff) throw new RangeError(`attribute of ${NLA_HDRLEN + data.length} bytes exceeds the 65535-byte netlink limit`);
    const start = this.reserve(NLA_HDRLEN + align4(data.length));
    this.buffer.writeUInt16LE(NLA_HDRLEN + data.length, start);
    this.buffer.writeUInt16LE(type, start + 2);
    this.buffer.set(data, start + NLA_HDRLEN);
  }

  /**
   * Starts an attribute of `length` value bytes and returns the offset of its value, for the
   * caller to fill in place (no temporary buffer per attribute).
   */
  attrSpace(type: number, length: number): number {
    const start = this.reserve(NLA_HDRLEN + align4(length));
    this.buffer.writeUInt16LE(NLA_HDRLEN + length, start);
    this.buffer.writeUInt16LE(type, start + 2);
    return start + NLA_HDRLEN;
  }

  // attrSpace() may replace `this.buffer` (growth), so take the offset before the buffer.
  attrU8(type: number, value: number): void {
    const at = this.attrSpace(type, 1);
    this.buffer[at] = value;
  }
  attrU16(type: number, value: number): void {
    const at = this.attrSpace(type, 2);
    this.buffer.writeUInt16LE(value, at);
  }
  attrU32(type: number, value: number): void {
    const at = this.attrSpace(type, 4);
    this.buffer.writeUInt32LE(value >>> 0, at);
  }
  /** A big-endian u16 at `offset` (within an attribute started with `attrSpace`). */
  u16beAt(offset: number, value: number): void {
    this.buffer.writeUInt16BE(value, offset);
  }
  setAt(offset: number, data: Uint8Array): void {
    this.buffer.set(data, offset);
  }

  /** NUL-terminated string attribute (NLA_NUL_STRING / NLA_STRING), written in place. */
  attrString(type: number, value: string): void {
    const length = Buffer.byteLength(value, 'utf8') + 1;
    if (NLA_HDRLEN + length > 0xffff) throw new RangeError(`attribute of ${NLA_HDRLEN + length} bytes exceeds the 65535-byte netlink limit`);
    const at = this.attrSpace(type, length); // zero-filled: the NUL is there already
    this.buffer.write(value, at, 'utf8');
  }

  /** Opens a nested attribute; pass the returned offset to `endNest`. */
  beginNest(type: number): number {
    const start = this.reserve(NLA_HDRLEN);
    this.buffer.writeUInt16LE(type | NLA_F_NESTED, start + 2);
    return start;
  }
  endNest(start: number): void {
    const length = this.length - start;
    if (length > 0xffff) throw new RangeError(`nested attribute of ${length} bytes exceeds the 65535-byte netlink limit`);
    this.buffer.writeUInt16LE(length, start);
  }

  /** Drops everything written after `size` (used to undo a partial peer that did not fit). */
  truncate(size: number): void {
    this.buffer.fill(0, size, this.length);
    this.length = size;
  }

  /** Copies out the bytes written so far. */
  take(): Buffer {
    return Buffer.from(this.buffer.subarray(0, this.length));
  }

  /**
   * Hands over the bytes written so far without copying them, and starts afresh on a new,
   * empty buffer: for the last message of an encoding. The caller owns (and wipes) what it got.
   */
  release(): Buffer {
    const written = this.buffer.subarray(0, this.length);
    this.buffer = Buffer.alloc(0);
    this.length = 0;
    this.highWater = 0;
    return written;
  }

  /** Overwrites every byte ever written; call when the bytes may have held secrets. */
  wipe(): void {
    this.buffer.fill(0, 0, this.highWater);
    this.length = 0;
    this.highWater = 0;
  }
}

/** One attribute seen by `attributes()`: its type (flags masked off) and value bytes. */
export interface Attribute {
  type: number;
  value: Buffer;
}

/** Iterates the attributes in `data` (a subarray view; nothing is copied). */
export function* attributes(data: Buffer): Generator<Attribute> {
  let offset = 0;
  while (offset + NLA_HDRLEN <= data.length) {
    const length = data.readUInt16LE(offset);
    if (length < NLA_HDRLEN || offset + length > data.length) throw attributeOverrun(offset, length, data.length - offset);
    const type = data.readUInt16LE(offset + 2) & NLA_TYPE_MASK;
    yield { type, value: data.subarray(offset + NLA_HDRLEN, offset + length) };
    offset += align4(length);
  }
}

/** The error for an attribute header whose length does not fit (`offset` within its nest). */
export function attributeOverrun(offset: number, length: number, remaining: number): NetlinkDecodeError {
  return new NetlinkDecodeError(`attribute at offset ${offset} claims ${length} bytes, ${remaining} remain`);
}

export function readString(value: Buffer): string {
  const end = value.indexOf(0);
  return value.toString('utf8', 0, end === -1 ? value.length : end);
}

/** What a decode error is about, when known (the call that received the reply). */
export interface DecodeContext {
  operation?: string;
  interface?: string;
}

/**
 * A reply from the kernel that does not parse: a message or attribute whose length does not
 * fit, or an attribute whose length or value breaks the kernel's own policy for it. It means
 * a kernel bug, an incompatible kernel, or a transport that delivers damaged bytes. Every
 * decoding failure of a netlink reply is this class; the message names offsets, types and
 * lengths, never attribute contents (they may be keys).
 */
export class NetlinkDecodeError extends Error {
  override name = 'NetlinkDecodeError';
  readonly code = 'ERR_JITGUARD_NETLINK_DECODE';
  /** The jitguard operation whose reply this was ('getDevice', …), when known. */
  readonly operation: string | undefined;
  readonly interface: string | undefined;

  constructor(message: string, context: DecodeContext = {}) {
    super(message);
    this.operation = context.operation;
    this.interface = context.interface;
  }

  /** The same error, with the operation it happened in named in front. */
  static inContext(error: NetlinkDecodeError, context: DecodeContext): NetlinkDecodeError {
    if (error.operation !== undefined || context.operation === undefined) return error;
    const subject = context.interface === undefined ? context.operation : `${context.operation} ${context.interface}`;
    return new NetlinkDecodeError(`${subject}: the kernel's reply does not parse: ${error.message}`, context);
  }
}
