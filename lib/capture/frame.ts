/**
 * One frame of a batch the packet socket read, turned into what the capture delivers: the
 * VLAN check, the parse (packet.ts), the payload copied out of the batch's buffer, and on a
 * socket bound to every interface the test for a stacked device's second copy (duplicates.ts).
 *
 * A module of its own so that {@link frameDecodeWarmUp} runs exactly this code on synthetic
 * frames before the first real one arrives. Code that has never run costs 10–30× its hot cost
 * the first times (lazy compilation, the interpreter), far more under emulation: in the TCG
 * bench VM the first wake-up of a burst held the event loop for 42–55 ms for its first packet
 * alone, against a few hundred microseconds hot (bench/gateway parts, 2026-12-03).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { HandshakeInitiation } from './capture.js';
import { RecentPackets } from './duplicates.js';
import { INITIATION_UDP_LENGTH } from './filter.js';
import {
  META_CAPTURED, META_IFINDEX, META_LENGTH, META_NANOS, META_OFFSET, META_SECONDS, META_STRIDE, META_VLAN,
  META_VLAN_PRESENT,
} from './native.js';
import { parseInitiation } from './packet.js';

/** A copy that owns its memory: never a view into the caller's (or a batch's) buffer. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

/** An initiation, or why the frame is not delivered. */
export type DecodedFrame = HandshakeInitiation | 'rejected' | 'duplicate';

/**
 * The frame described at `meta[at ..]` (the addon's layout, native.ts) of the batch in `data`.
 * 'rejected': not a handshake initiation the capture may deliver (a replacement filter let it
 * through); 'duplicate': a second copy `recent` recognised.
 */
export function decodeFrame(data: Buffer, meta: Uint32Array, at: number, recent: RecentPackets | undefined): DecodedFrame {
  const vlan = meta[at + META_VLAN]!;
  // A replacement filter let a tagged copy through: the stack delivers the frame on the VLAN device, or not at all.
  if ((vlan & META_VLAN_PRESENT) !== 0 && (vlan & 0x0fff) !== 0) return 'rejected';
  const offset = meta[at + META_OFFSET]!;
  const packet = data.subarray(offset, offset + meta[at + META_CAPTURED]!);
  const parsed = parseInitiation(packet, Math.max(meta[at + META_LENGTH]!, packet.length));
  if (parsed === null) return 'rejected';
  const seconds = meta[at + META_SECONDS]!;
  const nanos = meta[at + META_NANOS]!;
  const packetCopy = copyBytes(parsed.payload);
  if (recent !== undefined) {
    const tuple = `${parsed.source.address}:${parsed.source.port}>${parsed.destination.address}:${parsed.destination.port}`;
    if (recent.isCopy(packetCopy, tuple, seconds * 1000 + nanos / 1e6)) return 'duplicate';
  }
  return {
    packet: packetCopy,
    source: parsed.source,
    destination: parsed.destination,
    ifindex: meta[at + META_IFINDEX]!,
    receivedAt: new Date(seconds * 1000 + Math.floor(nanos / 1e6)),
    timestamp: BigInt(seconds) * 1_000_000_000n + BigInt(nanos),
    injected: false,
  };
}

/** Rounds of {@link frameDecodeWarmUp} by default: enough for V8 to have compiled what they run. */
export const FRAME_DECODE_WARM_UP_ROUNDS = 8;

/**
 * Yields after each call: an IPv4 and an IPv6 frame carrying a synthetic initiation
 * (documentation addresses, random bytes), each decoded twice through {@link decodeFrame} with a
 * throwaway duplicate table (the second time it is a copy), `rounds` times. Nothing is delivered.
 */
export function* frameDecodeWarmUp(rounds = FRAME_DECODE_WARM_UP_ROUNDS): Generator<void, void, void> {
  const recent = new RecentPackets();
  for (let round = 0; round < rounds; round++) {
    for (const family of [4, 6] as const) {
      const { data, meta } = syntheticFrameBatch(family, round);
      for (let copy = 0; copy < 2; copy++) {
        decodeFrame(data, meta, 0, recent);
        yield;
      }
    }
  }
}

/**
 * A one-frame batch as the addon hands it over: an initiation (random bytes after its type)
 * over UDP from 192.0.2.x or 2001:db8::x (x = 1 + round % 254), port 40000 + round, to port 51820.
 */
export function syntheticFrameBatch(family: 4 | 6, round: number): { data: Buffer; meta: Uint32Array } {
  const header = family === 4 ? 20 : 40;
  const frame = Buffer.alloc(header + INITIATION_UDP_LENGTH);
  if (family === 4) {
    frame[0] = 0x45;
    frame.writeUInt16BE(frame.length, 2);
    frame[8] = 64;
    frame[9] = 17;
    frame.set([192, 0, 2, 1 + (round % 254)], 12);
    frame.set([192, 0, 2, 255], 16);
  } else {
    frame[0] = 0x60;
    frame.writeUInt16BE(INITIATION_UDP_LENGTH, 4);
    frame[6] = 17;
    frame[7] = 64;
    frame.set([0x20, 0x01, 0x0d, 0xb8], 8);
    frame[23] = 1 + (round % 254);
    frame.set([0x20, 0x01, 0x0d, 0xb8], 24);
    frame[39] = 0xff;
  }
  frame.writeUInt16BE(40000 + round, header);
  frame.writeUInt16BE(51820, header + 2);
  frame.writeUInt16BE(INITIATION_UDP_LENGTH, header + 4);
  const payload = frame.subarray(header + 8);
  randomBytes(payload.length).copy(payload);
  payload.set([1, 0, 0, 0], 0);
  const meta = new Uint32Array(META_STRIDE);
  meta[META_OFFSET] = 0;
  meta[META_CAPTURED] = frame.length;
  meta[META_LENGTH] = frame.length;
  meta[META_IFINDEX] = 1;
  const ms = Date.now();
  meta[META_SECONDS] = Math.floor(ms / 1000);
  meta[META_NANOS] = (ms % 1000) * 1e6;
  return { data: frame, meta };
}
