/**
 * The classic-BPF program that lets WireGuard handshake initiations through to the capture
 * socket. It runs in the kernel on every packet of the bound interface(s), so it decides what
 * ever wakes the process up.
 *
 * The socket is AF_PACKET/SOCK_DGRAM: offset 0 is the network (IP) header, and the ethertype,
 * packet type and VLAN tag come from ancillary loads.
 *
 * Accepted, and nothing else:
 * - packet type PACKET_HOST: addressed to this host. Frames seen only because the interface
 *   is promiscuous (PACKET_OTHERHOST), broadcast/multicast frames and our own transmissions
 *   (PACKET_OUTGOING; the socket also sets PACKET_IGNORE_OUTGOING) are not handshakes sent
 *   to this gateway.
 * - no VLAN tag, or a priority tag (VLAN id 0). A packet socket sees a tagged frame on the
 *   device it arrived on, with the tag already taken off (SKF_AD_VLAN_TAG_PRESENT), before the
 *   stack looks for the VLAN device. If that device exists, the frame is seen again on it,
 *   untagged, and accepted there; if it does not, the stack drops the frame, so the tagged
 *   copy must not count. A VLAN id 0 frame is delivered untagged by the stack (802.1p).
 * - IPv4 (ethertype 0x0800, version 4) with any header length (IHL 5..15, options allowed),
 *   protocol UDP, and **not a fragment at all**: MF clear and fragment offset 0. Non-first
 *   fragments carry no UDP header; a first fragment (MF set) cannot carry the whole datagram,
 *   and an initiation is a 176..216-byte IP packet that no real path fragments (the IPv4
 *   minimum MTU is 576). Reassembly happens after the packet-socket tap, so a fragmented
 *   initiation is invisible here by construction; accepting a first fragment would only hand
 *   user space a datagram whose last bytes it does not have.
 *   The IPv4 total length must leave room for the whole 156-byte datagram after the header,
 *   and the packet as received must be as long as its total length says.
 * - IPv6 (ethertype 0x86dd, version 6) whose next header is UDP directly. Extension headers
 *   (hop-by-hop, routing, fragment, destination options) are rejected: WireGuard peers do not
 *   send them, and walking a header chain in cBPF needs a loop it does not have. The payload
 *   length must be at least 156 and the packet as long as it says.
 * - UDP destination port in `ports`, UDP length exactly 156 (8 + 148), and the first four
 *   payload bytes 01 00 00 00 (message type 1, three reserved zero bytes).
 * - when `destinations` is given, an IP destination address in that list (checked last, so
 *   only initiation-shaped packets pay for the list).
 *
 * The length rules are those of the kernel's own IP and UDP receive path: an IP packet longer
 * than its UDP datagram is accepted (the stack trims the extra bytes, ip_rcv/udp_rcv), one
 * shorter than its headers claim is not (the stack drops it). The filter does NOT know what
 * the stack decides after the packet-socket tap: the IPv4 header and UDP checksums (cBPF
 * cannot compute them), whether the destination is local (unless `destinations` says),
 * routing and rp_filter, and every netfilter or tc verdict (those all run after the tap). So
 * it accepts some initiations the stack would drop; the README says what an operator does
 * about that.
 *
 * Accepted packets are returned with a snap length of 216 bytes (the largest IPv4 header, 60,
 * plus the 156-byte datagram): everything up to the end of the initiation, never the padding
 * after it.
 */
import { ValidationError } from '../errors.js';
import { formatAddress, parseAddress, type Address } from '../net/ip.js';
import { INITIATION_LENGTH, MESSAGE_TYPE_INITIATION } from '../protocol/initiation.js';
import {
  BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JMP,
  BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_MISC, BPF_MSH, BPF_RET, BPF_TAX, BPF_TXA, BPF_W,
  BPF_X, BpfAssembler, type BpfProgram, bpfProgram, PACKET_HOST, SKF_AD_OFF, SKF_AD_PKTTYPE,
  SKF_AD_PROTOCOL, SKF_AD_VLAN_TAG, SKF_AD_VLAN_TAG_PRESENT,
} from './bpf.js';

export { INITIATION_LENGTH } from '../protocol/initiation.js';
/** UDP length (header + payload) of a handshake initiation. */
export const INITIATION_UDP_LENGTH = 8 + INITIATION_LENGTH;
/** The snap length the filter returns: the largest accepted packet (60-byte IPv4 header + 156). */
export const HANDSHAKE_SNAP_LENGTH = 60 + INITIATION_UDP_LENGTH;
/** WireGuard's default listen port. */
export const DEFAULT_PORT = 51820;
/** Most ports one filter may match (each costs one instruction; cBPF jumps reach 255). */
export const MAX_PORTS = 128;
/** Most destination addresses one filter may match (an IPv6 address costs 9 instructions). */
export const MAX_DESTINATIONS = 256;

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const IPPROTO_UDP = 17;
const VLAN_ID_MASK = 0x0fff;
/** `01 00 00 00` read as a big-endian word: message type 1, reserved zero. */
const INITIATION_HEAD = (MESSAGE_TYPE_INITIATION << 24) >>> 0;

export interface HandshakeFilterOptions {
  /** UDP destination ports to accept (default [51820]): integers 1..65535, unique, 1..128 of them. */
  ports?: readonly number[];
  /**
   * IP destination addresses to accept (numeric IPv4/IPv6, unique, 1..256); default: any.
   * A packet to any other address is refused in the kernel.
   */
  destinations?: readonly string[];
}

export interface HandshakeFilter extends BpfProgram {
  /** The ports the program accepts, in the order given. */
  readonly ports: readonly number[];
  /** The destination addresses it accepts (normalised), or undefined for any. */
  readonly destinations: readonly string[] | undefined;
  /** What the program returns for an accepted packet. */
  readonly snapLength: number;
}

/** Validates a port list the way {@link handshakeFilter} and the capture take it. */
export function validatePorts(ports: unknown, path = 'ports'): number[] {
  if (!Array.isArray(ports)) throw new ValidationError(path, 'must be an array of UDP port numbers');
  if (ports.length === 0) throw new ValidationError(path, 'must not be empty');
  if (ports.length > MAX_PORTS) throw new ValidationError(path, `must have at most ${MAX_PORTS} ports`);
  const seen = new Set<number>();
  ports.forEach((port: unknown, i) => {
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new ValidationError(`${path}[${i}]`, 'must be an integer 1..65535');
    }
    if (seen.has(port)) throw new ValidationError(`${path}[${i}]`, `duplicate port ${port}`);
    seen.add(port);
  });
  return [...ports] as number[];
}

/** Validates a destination-address list; returns the addresses parsed, in the order given. */
export function validateDestinations(destinations: unknown, path = 'destinations'): Address[] {
  if (!Array.isArray(destinations)) throw new ValidationError(path, "must be an array of IP addresses (or 'local' for the capture)");
  if (destinations.length === 0) throw new ValidationError(path, 'must not be empty');
  if (destinations.length > MAX_DESTINATIONS) {
    throw new ValidationError(path, `must have at most ${MAX_DESTINATIONS} addresses (has ${destinations.length})`);
  }
  const seen = new Set<string>();
  return destinations.map((text: unknown, i) => {
    const parsed = typeof text === 'string' ? parseAddress(text) : null;
    if (parsed === null) throw new ValidationError(`${path}[${i}]`, 'must be a numeric IPv4 or IPv6 address (no zone)');
    const key = formatAddress(parsed.bytes);
    if (seen.has(key)) throw new ValidationError(`${path}[${i}]`, `duplicate address ${key}`);
    seen.add(key);
    return parsed;
  });
}

/** Builds the handshake-initiation filter for the given UDP destination ports (and addresses). */
export function handshakeFilter(options: HandshakeFilterOptions = {}): HandshakeFilter {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  const ports = validatePorts(options.ports ?? [DEFAULT_PORT]);
  const destinations = options.destinations === undefined ? undefined : validateDestinations(options.destinations);
  return build(ports, destinations);
}

const word = (bytes: Uint8Array, at: number) => ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;

function build(ports: readonly number[], destinations: readonly Address[] | undefined): HandshakeFilter {
  const a = new BpfAssembler();
  const ld = (size: number, mode: number, k: number) => a.op(BPF_LD | size | mode, k);
  const jeq = (k: number, jt: string | number, jf: string | number) => a.jump(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);

  ld(BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE);
  jeq(PACKET_HOST, 0, 'reject');
  ld(BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT);
  jeq(0, 'untagged', 0);
  ld(BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_VLAN_TAG);
  a.op(BPF_ALU | BPF_AND | BPF_K, VLAN_ID_MASK);
  jeq(0, 0, 'reject'); // a VLAN id: seen again on the VLAN device if there is one
  a.label('untagged');
  ld(BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL);
  jeq(ETH_P_IP, 'ipv4', 0);
  jeq(ETH_P_IPV6, 'ipv6', 'reject');

  a.label('ipv4');
  ld(BPF_B, BPF_ABS, 0);
  a.op(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  jeq(0x40, 0, 'reject'); // version 4
  ld(BPF_B, BPF_ABS, 9);
  jeq(IPPROTO_UDP, 0, 'reject');
  ld(BPF_H, BPF_ABS, 6);
  a.jump(BPF_JMP | BPF_JSET | BPF_K, 0x3fff, 'reject', 0); // MF or an offset: a fragment
  a.op(BPF_LDX | BPF_B | BPF_MSH, 0); // X = 4 * IHL
  a.op(BPF_MISC | BPF_TXA);
  a.jump(BPF_JMP | BPF_JGE | BPF_K, 20, 0, 'reject'); // IHL >= 5
  a.op(BPF_ALU | BPF_ADD | BPF_K, INITIATION_UDP_LENGTH);
  a.op(BPF_MISC | BPF_TAX); // X = header length + 156
  ld(BPF_H, BPF_ABS, 2); // total length
  a.jump(BPF_JMP | BPF_JGE | BPF_X, 0, 0, 'reject'); // room for the whole datagram
  a.op(BPF_MISC | BPF_TAX); // X = total length
  a.op(BPF_LD | BPF_W | BPF_LEN);
  a.jump(BPF_JMP | BPF_JGE | BPF_X, 0, 0, 'reject'); // and the packet really is that long
  a.op(BPF_LDX | BPF_B | BPF_MSH, 0); // X = header length again
  a.ja('udp');

  a.label('ipv6');
  ld(BPF_B, BPF_ABS, 0);
  a.op(BPF_ALU | BPF_AND | BPF_K, 0xf0);
  jeq(0x60, 0, 'reject'); // version 6
  ld(BPF_B, BPF_ABS, 6);
  jeq(IPPROTO_UDP, 0, 'reject'); // next header UDP: no extension headers
  ld(BPF_H, BPF_ABS, 4); // payload length
  a.jump(BPF_JMP | BPF_JGE | BPF_K, INITIATION_UDP_LENGTH, 0, 'reject');
  a.op(BPF_ALU | BPF_ADD | BPF_K, 40);
  a.op(BPF_MISC | BPF_TAX); // X = 40 + payload length
  a.op(BPF_LD | BPF_W | BPF_LEN);
  a.jump(BPF_JMP | BPF_JGE | BPF_X, 0, 0, 'reject'); // the packet really is that long
  a.op(BPF_LDX | BPF_W | BPF_IMM, 40); // X = header length

  a.label('udp'); // X = IP header length
  ld(BPF_H, BPF_IND, 4);
  jeq(INITIATION_UDP_LENGTH, 0, 'reject');
  ld(BPF_W, BPF_IND, 8);
  jeq(INITIATION_HEAD, 0, 'reject');
  ld(BPF_H, BPF_IND, 2); // destination port: one comparison per port
  const matched = destinations === undefined ? 'accept' : 'destination';
  ports.forEach((port, i) => jeq(port, matched, i === ports.length - 1 ? 'reject' : 0));

  a.label('reject');
  a.op(BPF_RET | BPF_K, 0);
  if (destinations !== undefined) {
    // After the reject, so that every check above stays within a conditional jump's reach;
    // each match leaves with an unconditional jump, which has no range limit.
    a.label('destination');
    ld(BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL);
    jeq(ETH_P_IP, 0, 1);
    a.ja('destination4');
    a.ja('destination6');
    a.label('destination4');
    ld(BPF_W, BPF_ABS, 16);
    for (const d of destinations.filter((x) => x.family === 4)) {
      jeq(word(d.bytes, 0), 0, 1);
      a.ja('accept');
    }
    a.op(BPF_RET | BPF_K, 0);
    a.label('destination6');
    destinations.filter((x) => x.family === 6).forEach((d, n) => {
      const next = `destination6-${n + 1}`;
      for (let w = 0; w < 4; w++) {
        ld(BPF_W, BPF_ABS, 24 + 4 * w);
        jeq(word(d.bytes, 4 * w), 0, next);
      }
      a.ja('accept');
      a.label(next);
    });
    a.op(BPF_RET | BPF_K, 0);
  }
  a.label('accept');
  a.op(BPF_RET | BPF_K, HANDSHAKE_SNAP_LENGTH);

  const program = bpfProgram(a.assemble());
  return Object.freeze({
    ...program,
    ports: Object.freeze([...ports]),
    destinations: destinations === undefined ? undefined : Object.freeze(destinations.map((d) => formatAddress(d.bytes))),
    snapLength: HANDSHAKE_SNAP_LENGTH,
  });
}
