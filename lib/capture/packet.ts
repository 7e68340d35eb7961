/**
 * Parsing what the capture socket delivers (an IP packet, network header at offset 0) into a
 * handshake initiation and its 4-tuple, with the same checks the kernel filter makes. The
 * kernel filter is the gate; this is the second look that makes the stream's promise hold
 * whatever program is attached (a user may replace the filter).
 */
import { formatAddress } from '../net/ip.js';
import { isInitiationShape } from '../protocol/initiation.js';
import { INITIATION_UDP_LENGTH } from './filter.js';

export interface SocketAddress {
  /** Numeric address as inet_ntop(3) writes it ('192.0.2.7', '2001:db8::7'). */
  address: string;
  port: number;
  family: 4 | 6;
}

export interface ParsedInitiation {
  /** The 148-byte UDP payload (a view into the given packet; copy it to keep it). */
  payload: Uint8Array;
  source: SocketAddress;
  destination: SocketAddress;
}

/**
 * True when `payload` (a UDP payload) is shaped like a handshake initiation: 148 bytes,
 * 01 00 00 00. The same check as the responder's: {@link isInitiationShape}, under the name
 * the capture has always exported.
 */
export const isInitiationPayload: (payload: Uint8Array) => boolean = isInitiationShape;

const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;

/**
 * Parses an IPv4 or IPv6 packet carrying a handshake initiation. Returns null for anything the
 * handshake filter would reject (except the packet-type and port checks, which depend on the
 * socket and the configured ports): not IPv4/IPv6, not UDP (or IPv6 extension headers), an
 * IPv4 fragment, a UDP length other than 156 or an IP length without room for it, not an
 * initiation, or a packet shorter than its headers claim.
 *
 * `length` is the packet's length on the wire when `packet` holds only its first bytes (the
 * capture keeps 216); the initiation itself must be within `packet`.
 */
export function parseInitiation(packet: Uint8Array, length = packet.length): ParsedInitiation | null {
  if (packet.length < 1 || length < packet.length) return null;
  const version = packet[0]! >> 4;
  let header: number;
  let family: 4 | 6;
  let sourceBytes: Uint8Array;
  let destinationBytes: Uint8Array;
  if (version === 4) {
    header = (packet[0]! & 0x0f) * 4;
    if (header < 20 || packet.length < header) return null;
    if (packet[9] !== 17) return null;
    if ((u16(packet, 6) & 0x3fff) !== 0) return null; // a fragment
    const total = u16(packet, 2);
    if (total < header + INITIATION_UDP_LENGTH || length < total) return null;
    family = 4;
    sourceBytes = packet.subarray(12, 16);
    destinationBytes = packet.subarray(16, 20);
  } else if (version === 6) {
    header = 40;
    if (packet.length < header) return null;
    if (packet[6] !== 17) return null;
    const payloadLength = u16(packet, 4);
    if (payloadLength < INITIATION_UDP_LENGTH || length < header + payloadLength) return null;
    family = 6;
    sourceBytes = packet.subarray(8, 24);
    destinationBytes = packet.subarray(24, 40);
  } else {
    return null;
  }
  if (packet.length < header + INITIATION_UDP_LENGTH) return null;
  if (u16(packet, header + 4) !== INITIATION_UDP_LENGTH) return null;
  const payload = packet.subarray(header + 8, header + INITIATION_UDP_LENGTH);
  if (!isInitiationShape(payload)) return null;
  return {
    payload,
    source: { address: formatAddress(sourceBytes), port: u16(packet, header), family },
    destination: { address: formatAddress(destinationBytes), port: u16(packet, header + 2), family },
  };
}
