/**
 * The byte stream flyctl's WireGuard-over-WebSocket transport carries, as a pure incremental
 * parser and an encoder (no sockets here: the relay and the bridge own those).
 *
 * The stream, as flyctl's client writes it (wg/ws.go):
 *
 *   client → gateway:  magic 0x2FACED77 (4 bytes, big-endian), then frames
 *   either direction:  frame = length (4 bytes, big-endian) ‖ datagram (length bytes)
 *
 * A zero-length frame is a keepalive (the client sends one after 1 s of silence). WebSocket
 * message boundaries mean nothing: older clients write the length and the datagram as two
 * messages, newer ones as one, so the parser takes the messages as a byte stream; a message may
 * hold several frames or part of one.
 *
 * @module
 */
import { ValidationError } from '../errors.js';

/** The first 4 bytes a client writes (big-endian). */
export const WSWG_MAGIC = 0x2faced77;

/** Bytes of the length in front of every datagram. */
export const LENGTH_PREFIX_BYTES = 4;

/**
 * The largest datagram a frame may carry: 65,535 bytes. It is the bound flyctl's own client
 * enforces (wireguard-go's `MaxMessageSize`, the largest UDP payload its device handles), so
 * nothing a conforming client sends is refused, and it is the most one length-prefixed UDP
 * payload can be. WireGuard messages are at most MTU + 32 bytes (a 16-byte header and a 16-byte
 * tag around a padded packet), so the tighter MTU-based bound would do for a 1420-MTU client but
 * would refuse jumbo-MTU clients; memory is bounded per connection anyway (one partial frame,
 * see `FrameParser.bufferedBytes`) and by the relay's connection limits. A datagram this large
 * may still not fit one IPv4 UDP datagram (65,507): the relay counts that as a send drop.
 */
export const MAX_DATAGRAM_LENGTH = 65_535;

/** Why a stream was refused. */
export type RelayProtocolErrorReason =
  /** The first 4 bytes from the client were not 0x2FACED77. */
  | 'bad-magic'
  /** A length above the parser's maximum datagram length. */
  | 'oversize-length'
  /** A binary WebSocket frame on a connection that did not negotiate binary framing. */
  | 'binary-frame';

/** A stream that does not follow the framing; the connection that sent it is closed. */
export class RelayProtocolError extends Error {
  override name = 'RelayProtocolError';
  readonly code = 'ERR_JITGUARD_WEBSOCKET_PROTOCOL';
  readonly reason: RelayProtocolErrorReason;

  constructor(reason: RelayProtocolErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface FrameParserOptions {
  /** The stream starts with the client's magic (true on the gateway side, false on the client side). */
  expectMagic: boolean;
  /** Lengths above this are a protocol error (default and ceiling: `MAX_DATAGRAM_LENGTH`). */
  maxDatagramLength?: number;
}

/**
 * Turns the stream's bytes, pushed in chunks of any size, into datagrams. Holds at most one
 * incomplete magic, length or datagram: `bufferedBytes` never exceeds maxDatagramLength − 1,
 * nor what was received. After a protocol error every further `push` throws the same error.
 */
export class FrameParser {
  private readonly maxDatagramLength: number;
  private magicPending: boolean;
  /** The length prefix (or the magic) being read. */
  private readonly header = new Uint8Array(LENGTH_PREFIX_BYTES);
  private headerBytes = 0;
  /** The length of the datagram being read; -1 while reading a length. */
  private bodyLength = -1;
  private bodyParts: Uint8Array[] = [];
  private bodyBytes = 0;
  private failure: RelayProtocolError | null = null;
  private keepaliveCount = 0;

  constructor(options: FrameParserOptions) {
    if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'expected an object');
    if (typeof options.expectMagic !== 'boolean') throw new ValidationError('options.expectMagic', 'expected a boolean');
    const max = options.maxDatagramLength ?? MAX_DATAGRAM_LENGTH;
    if (!Number.isInteger(max) || max < 1 || max > MAX_DATAGRAM_LENGTH) {
      throw new ValidationError('options.maxDatagramLength', `expected an integer from 1 to ${MAX_DATAGRAM_LENGTH}`);
    }
    this.maxDatagramLength = max;
    this.magicPending = options.expectMagic;
  }

  /** Keepalive (zero-length) frames seen and dropped. */
  get keepalives(): number {
    return this.keepaliveCount;
  }

  /** Bytes held for an incomplete magic, length or datagram. */
  get bufferedBytes(): number {
    return this.headerBytes + this.bodyBytes;
  }

  /** Whether the magic has been read (always true when none was expected). */
  get magicSeen(): boolean {
    return !this.magicPending;
  }

  /**
   * Consumes `chunk` and returns the datagrams it completed, in order (keepalives left out).
   * A returned datagram may share memory with `chunk`.
   * @throws RelayProtocolError 'bad-magic' or 'oversize-length'; datagrams completed earlier in
   *   the same chunk are not returned (the stream is refused as a whole).
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.failure) throw this.failure;
    if (!(chunk instanceof Uint8Array)) throw new ValidationError('chunk', 'expected a Uint8Array');
    const datagrams: Uint8Array[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.bodyLength < 0) {
        const take = Math.min(LENGTH_PREFIX_BYTES - this.headerBytes, chunk.length - at);
        this.header.set(chunk.subarray(at, at + take), this.headerBytes);
        this.headerBytes += take;
        at += take;
        if (this.headerBytes < LENGTH_PREFIX_BYTES) break;
        const value = readUint32(this.header);
        this.headerBytes = 0;
        if (this.magicPending) {
          if (value !== WSWG_MAGIC) throw this.fail('bad-magic', `expected the magic 0x2faced77, got 0x${value.toString(16).padStart(8, '0')}`);
          this.magicPending = false;
          continue;
        }
        if (value > this.maxDatagramLength) throw this.fail('oversize-length', `a frame of ${value} bytes is longer than ${this.maxDatagramLength}`);
        if (value === 0) {
          this.keepaliveCount++;
          continue;
        }
        this.bodyLength = value;
        continue;
      }
      const take = Math.min(this.bodyLength - this.bodyBytes, chunk.length - at);
      const part = chunk.subarray(at, at + take);
      at += take;
      if (this.bodyBytes === 0 && take === this.bodyLength) {
        datagrams.push(part);
      } else {
        this.bodyParts.push(part.slice());
        this.bodyBytes += take;
        if (this.bodyBytes < this.bodyLength) break;
        datagrams.push(concat(this.bodyParts, this.bodyLength));
        this.bodyParts = [];
        this.bodyBytes = 0;
      }
      this.bodyLength = -1;
    }
    return datagrams;
  }

  private fail(reason: RelayProtocolErrorReason, message: string): RelayProtocolError {
    this.failure = new RelayProtocolError(reason, message);
    this.bodyParts = [];
    this.bodyBytes = 0;
    this.headerBytes = 0;
    return this.failure;
  }
}

/** The 4 bytes a client writes first. */
export function encodeMagic(): Buffer {
  const out = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES);
  out.writeUInt32BE(WSWG_MAGIC);
  return out;
}

/** length ‖ datagram, as one buffer (the newer clients' one-message form). */
export function encodeFrame(datagram: Uint8Array): Buffer {
  if (!(datagram instanceof Uint8Array)) throw new ValidationError('datagram', 'expected a Uint8Array');
  if (datagram.length > MAX_DATAGRAM_LENGTH) throw new ValidationError('datagram', `expected at most ${MAX_DATAGRAM_LENGTH} bytes, got ${datagram.length}`);
  const out = Buffer.allocUnsafe(LENGTH_PREFIX_BYTES + datagram.length);
  out.writeUInt32BE(datagram.length);
  out.set(datagram, LENGTH_PREFIX_BYTES);
  return out;
}

/** A zero-length frame. */
export function encodeKeepalive(): Buffer {
  return Buffer.alloc(LENGTH_PREFIX_BYTES);
}

function readUint32(bytes: Uint8Array): number {
  return ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
}

function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
