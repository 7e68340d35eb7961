/**
 * The classic-BPF program that lets exactly WireGuard handshake initiations through to the
 * capture socket. It runs in the kernel on every packet of the bound interface(s), so it
 * decides what ever wakes the process up.
 *
 * The socket is AF_PACKET/SOCK_DGRAM: offset 0 is the network (IP) header, and the ethertype
 * and packet type come from the ancillary loads SKF_AD_PROTOCOL and SKF_AD_PKTTYPE.
 *
 * Accepted, and nothing else:
 * - packet type PACKET_HOST: addressed to this host. Frames seen only because the interface
 *   is promiscuous (PACKET_OTHERHOST), broadcast/multicast frames and our own transmissions
 *   (PACKET_OUTGOING; the socket also sets PACKET_IGNORE_OUTGOING) are not handshakes sent
 *   to this gateway.
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
 *
 * These are the length rules of the kernel's own IP and UDP receive path, so the filter
 * accepts a datagram exactly when the stack would hand a 148-byte payload to the WireGuard
 * socket: an IP packet longer than its UDP datagram is accepted (the stack trims the extra
 * bytes, ip_rcv/udp_rcv), one shorter than its headers claim is not (the stack drops it).
 * What cBPF cannot check, and the stack does: the IPv4 header checksum and the UDP checksum.
 *
 * Accepted packets are returned with a snap length of 216 bytes (the largest IPv4 header, 60,
 * plus the 156-byte datagram): everything up to the end of the initiation, never the padding
 * after it.
 */
import { ValidationError } from '../errors.js';
import {
  BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JMP,
  BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_MISC, BPF_MSH, BPF_RET, BPF_TAX, BPF_TXA, BPF_W,
  BPF_X, BpfAssembler, type BpfProgram, bpfProgram, PACKET_HOST, SKF_AD_OFF, SKF_AD_PKTTYPE,
  SKF_AD_PROTOCOL,
} from './bpf.js';

/** UDP payload length of a handshake initiation. */
export const INITIATION_LENGTH = 148;
/** UDP length (header + payload) of a handshake initiation. */
export const INITIATION_UDP_LENGTH = 156;
/** The snap length the filter returns: the largest accepted packet (60-byte IPv4 header + 156). */
export const HANDSHAKE_SNAP_LENGTH = 60 + INITIATION_UDP_LENGTH;
/** WireGuard's default listen port. */
export const DEFAULT_PORT = 51820;
/** Most ports one filter may match (each costs one instruction; cBPF jumps reach 255). */
export const MAX_PORTS = 128;

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const IPPROTO_UDP = 17;
const INITIATION_HEAD = 0x01000000; // 01 00 00 00 read as a big-endian word

export interface HandshakeFilterOptions {
  /** UDP destination ports to accept (default [51820]): integers 1..65535, unique, 1..128 of them. */
  ports?: readonly number[];
}

export interface HandshakeFilter extends BpfProgram {
  /** The ports the program accepts, in the order given. */
  readonly ports: readonly number[];
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

/** Builds the handshake-initiation filter for the given UDP destination ports. */
export function handshakeFilter(options: HandshakeFilterOptions = {}): HandshakeFilter {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'must be an object');
  return build(validatePorts(options.ports ?? [DEFAULT_PORT]));
}

function build(ports: readonly number[]): HandshakeFilter {
  const a = new BpfAssembler();
  const ld = (size: number, mode: number, k: number) => a.op(BPF_LD | size | mode, k);
  const jeq = (k: number, jt: string | number, jf: string | number) => a.jump(BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf);

  ld(BPF_W, BPF_ABS, SKF_AD_OFF + SKF_AD_PKTTYPE);
  jeq(PACKET_HOST, 0, 'reject');
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
  ports.forEach((port, i) => jeq(port, 'accept', i === ports.length - 1 ? 'reject' : 0));

  a.label('reject');
  a.op(BPF_RET | BPF_K, 0);
  a.label('accept');
  a.op(BPF_RET | BPF_K, HANDSHAKE_SNAP_LENGTH);

  const program = bpfProgram(a.assemble());
  return Object.freeze({ ...program, ports: Object.freeze([...ports]), snapLength: HANDSHAKE_SNAP_LENGTH });
}
