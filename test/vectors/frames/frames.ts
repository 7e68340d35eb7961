/**
 * The packet vectors for the handshake filter: the recorded packets in ./recorded/ (see
 * README.md for their provenance) and packets derived from them by editing headers, each with
 * the verdict the filter must reach for ports [51820]. Used by the unit tests (run through the
 * cBPF interpreter) and by the privileged tests (sent over a real veth to a real socket).
 *
 * Every packet is an IP packet from its network header on: what an AF_PACKET SOCK_DGRAM socket
 * sees at offset 0.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;
export const PACKET_HOST = 0;
export const PACKET_BROADCAST = 1;
export const PACKET_MULTICAST = 2;
export const PACKET_OTHERHOST = 3;
export const PACKET_OUTGOING = 4;

export interface Frame {
  name: string;
  /** The IP packet. */
  bytes: Uint8Array;
  /** The ethertype it travels under. */
  protocol: number;
  /** skb->pkt_type it arrives with (PACKET_HOST unless the vector is about that). */
  pktType: number;
  /** Whether the filter (ports [51820]) must accept it. */
  accept: boolean;
  /** Why, in a few words. */
  why: string;
}

const here = dirname(fileURLToPath(import.meta.url));
const recordedDir = join(here, 'recorded');

export function readHex(path: string): Uint8Array {
  return Uint8Array.from(Buffer.from(readFileSync(path, 'utf8').replace(/\s+/g, ''), 'hex'));
}

/** A recorded packet by file-name prefix ('01', '10', …). */
export function recorded(prefix: string): Uint8Array {
  const name = readdirSync(recordedDir).find((n) => n.startsWith(`${prefix}-`));
  if (name === undefined) throw new Error(`no recorded frame ${prefix}`);
  return readHex(join(recordedDir, name));
}

const protocolOf = (bytes: Uint8Array) => ((bytes[0]! >> 4) === 6 ? ETH_P_IPV6 : ETH_P_IP);

// ---- header arithmetic -------------------------------------------------------------------

const get16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const put16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
};

function onesComplement(chunks: Uint8Array[]): number {
  let sum = 0;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i += 2) sum += (c[i]! << 8) | (c[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Recomputes the IPv4 header checksum in place. */
export function fixIpv4Checksum(p: Uint8Array): Uint8Array {
  const ihl = (p[0]! & 0xf) * 4;
  put16(p, 10, 0);
  put16(p, 10, onesComplement([p.subarray(0, ihl)]));
  return p;
}

/** Recomputes the UDP checksum (IPv4 or IPv6 without extension headers) in place. */
export function fixUdpChecksum(p: Uint8Array): Uint8Array {
  const v6 = p[0]! >> 4 === 6;
  const header = v6 ? 40 : (p[0]! & 0xf) * 4;
  const udpLength = get16(p, header + 4);
  const udp = p.subarray(header, header + udpLength);
  put16(udp, 6, 0);
  const pseudo = new Uint8Array(v6 ? 40 : 12);
  if (v6) {
    pseudo.set(p.subarray(8, 40), 0);
    pseudo[34] = (udpLength >> 8) & 0xff;
    pseudo[35] = udpLength & 0xff;
    pseudo[39] = 17;
  } else {
    pseudo.set(p.subarray(12, 20), 0);
    pseudo[9] = 17;
    put16(pseudo, 10, udpLength);
  }
  let sum = onesComplement([pseudo, udp]);
  if (sum === 0) sum = 0xffff;
  put16(udp, 6, sum);
  return p;
}

/** Fixes every checksum of an IPv4 or IPv6 UDP packet. */
function fixUdp(p: Uint8Array): Uint8Array {
  if (p[0]! >> 4 === 4) fixIpv4Checksum(p);
  return fixUdpChecksum(p);
}

/** Inserts IPv4 options (a multiple of 4 bytes) after the fixed header, fixing IHL and lengths. */
export function withIpv4Options(p: Uint8Array, options: Uint8Array): Uint8Array {
  const ihl = (p[0]! & 0xf) * 4;
  const out = new Uint8Array(p.length + options.length);
  out.set(p.subarray(0, ihl), 0);
  out.set(options, ihl);
  out.set(p.subarray(ihl), ihl + options.length);
  out[0] = 0x40 | ((ihl + options.length) / 4);
  put16(out, 2, get16(p, 2) + options.length);
  return fixUdp(out);
}

/** Resizes the UDP payload to `length` bytes (cut, or padded with zeros), fixing every length field. */
export function withPayloadLength(p: Uint8Array, length: number): Uint8Array {
  const v6 = p[0]! >> 4 === 6;
  const header = v6 ? 40 : (p[0]! & 0xf) * 4;
  const out = new Uint8Array(header + 8 + length);
  out.set(p.subarray(0, Math.min(p.length, out.length)), 0);
  put16(out, header + 4, 8 + length);
  if (v6) put16(out, 4, 8 + length);
  else put16(out, 2, header + 8 + length);
  return fixUdp(out);
}

/** Sets the UDP destination (and optionally source) port. */
export function withPorts(p: Uint8Array, destination: number, source?: number): Uint8Array {
  const out = Uint8Array.from(p);
  const header = out[0]! >> 4 === 6 ? 40 : (out[0]! & 0xf) * 4;
  put16(out, header + 2, destination);
  if (source !== undefined) put16(out, header, source);
  return fixUdp(out);
}

/** Replaces payload bytes starting at `at` (offset within the UDP payload). */
export function withPayloadBytes(p: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const out = Uint8Array.from(p);
  const header = out[0]! >> 4 === 6 ? 40 : (out[0]! & 0xf) * 4;
  out.set(bytes, header + 8 + at);
  return fixUdp(out);
}

/** Sets the IPv4 flags/fragment-offset word (MF = 0x2000, offset in 8-byte units). */
function withFragment(p: Uint8Array, word: number): Uint8Array {
  const out = Uint8Array.from(p);
  put16(out, 6, word);
  return fixIpv4Checksum(out);
}

/** Inserts an IPv6 extension header (8 bytes: next header, length 0, 6 bytes of PadN) before UDP. */
function withIpv6Extension(p: Uint8Array, type: number): Uint8Array {
  const out = new Uint8Array(p.length + 8);
  out.set(p.subarray(0, 40), 0);
  const ext = type === 44
    ? [17, 0, 0, 0, 0x12, 0x34, 0x56, 0x78] // fragment header: offset 0, M 0 (an atomic fragment)
    : [17, 0, 1, 4, 0, 0, 0, 0]; // hop-by-hop / destination options: PadN of 4
  out.set(ext, 40);
  out.set(p.subarray(40), 48);
  out[6] = type;
  put16(out, 4, get16(p, 4) + 8);
  return out;
}

function withIpv4Header(p: Uint8Array, edit: (q: Uint8Array) => void): Uint8Array {
  const out = Uint8Array.from(p);
  edit(out);
  return fixIpv4Checksum(out);
}

// ---- the vectors ------------------------------------------------------------------------

/** Every recorded packet, with its verdict: only the three initiations to 51820 pass. */
export function recordedFrames(): Frame[] {
  return readdirSync(recordedDir)
    .filter((n) => n.endsWith('.hex'))
    .sort()
    .map((name) => {
      const bytes = readHex(join(recordedDir, name));
      const accept = /udp51820-len156-type1/.test(name);
      return {
        name: `recorded/${name}`,
        bytes,
        protocol: protocolOf(bytes),
        pktType: PACKET_HOST,
        accept,
        why: accept ? 'a real initiation' : 'recorded non-initiation traffic',
      };
    });
}

/** Packets derived from recorded ones by header edits, with their verdicts. */
export function derivedFrames(): Frame[] {
  const v4 = recorded('01');
  const v6 = recorded('10');
  const response4 = recorded('02');
  const response6 = recorded('11');
  const data4 = recorded('03');
  const frames: Frame[] = [];
  const add = (name: string, bytes: Uint8Array, accept: boolean, why: string, extra: Partial<Frame> = {}) =>
    frames.push({ name, bytes, protocol: protocolOf(bytes), pktType: PACKET_HOST, accept, why, ...extra });

  // Accepted variants.
  add('ipv4-options-router-alert', withIpv4Options(v4, Uint8Array.of(0x94, 0x04, 0x00, 0x00)), true, 'IHL 6 (Router Alert option)');
  add('ipv4-options-max', withIpv4Options(v4, new Uint8Array(40).fill(1)), true, 'IHL 15 (40 bytes of NOP options)');
  add('ipv4-initiation-other-source', withPorts(v4, 51820, 12345), true, 'another source port');
  add('ipv4-initiation-no-df', withFragment(v4, 0x0000), true, 'DF clear, not a fragment');
  add('ipv6-initiation-other-source', withPorts(v6, 51820, 1), true, 'source port 1');

  // Wrong length.
  for (const [name, p] of [['ipv4', v4], ['ipv6', v6]] as const) {
    add(`${name}-payload-147`, withPayloadLength(p, 147), false, '147-byte payload');
    add(`${name}-payload-149`, withPayloadLength(p, 149), false, '149-byte payload');
    add(`${name}-payload-0`, withPayloadLength(p, 0), false, 'empty payload');
    add(`${name}-payload-4`, withPayloadLength(p, 4), false, 'just 01 00 00 00');
  }
  {
    // UDP length 156 in a longer IP packet: the stack trims the extra bytes and delivers the
    // datagram (udp_rcv), so the filter accepts it too.
    const padded = withPayloadLength(v4, 152);
    put16(padded, 24, 156);
    add('ipv4-udp156-in-longer-ip', fixUdp(padded), true, 'IP payload 4 bytes longer than the UDP datagram');
    const padded6 = withPayloadLength(v6, 152);
    put16(padded6, 44, 156);
    add('ipv6-udp156-in-longer-ip', fixUdp(padded6), true, 'IPv6 payload 4 bytes longer than the UDP datagram');
    // IP length beyond the end of the packet: the stack drops it.
    add('ipv4-total-length-beyond-packet', withIpv4Header(v4, (q) => put16(q, 2, get16(v4, 2) + 4)), false, 'IP total length 4 bytes past the end');
    const long6 = Uint8Array.from(v6);
    put16(long6, 4, 160);
    add('ipv6-payload-length-beyond-packet', long6, false, 'IPv6 payload length 4 bytes past the end');
  }
  {
    // Headers claim a whole initiation but the packet is cut short: not really there.
    add('ipv4-truncated', v4.slice(0, v4.length - 1), false, 'one byte missing at the end');
    add('ipv4-truncated-after-type', v4.slice(0, 20 + 8 + 4), false, 'only headers and the type word');
    add('ipv6-truncated', v6.slice(0, v6.length - 10), false, 'ten bytes missing at the end');
  }

  // Other ports and other message types.
  add('ipv4-initiation-port-51821', withPorts(v4, 51821), false, 'destination port 51821');
  add('ipv4-initiation-port-53', withPorts(v4, 53), false, 'destination port 53');
  add('ipv6-initiation-port-51821', withPorts(v6, 51821), false, 'destination port 51821');
  add('ipv4-initiation-from-51820-to-40404', withPorts(v4, 40404, 51820), false, 'source port 51820 is not the destination');
  add('ipv4-response-to-51820', withPorts(response4, 51820), false, 'type 2 (response) to 51820');
  add('ipv6-response-to-51820', withPorts(response6, 51820), false, 'type 2 (response) to 51820');
  add('ipv4-response-as-156', withPayloadBytes(v4, 0, [2, 0, 0, 0]), false, 'type 2 in an initiation-sized packet');
  add('ipv4-cookie-reply', withPayloadBytes(withPayloadLength(withPorts(response4, 51820), 64), 0, [3, 0, 0, 0]), false, 'type 3 (cookie reply), 64 bytes');
  add('ipv4-cookie-as-156', withPayloadBytes(v4, 0, [3, 0, 0, 0]), false, 'type 3 in an initiation-sized packet');
  add('ipv4-data-as-156', withPayloadBytes(v4, 0, [4, 0, 0, 0]), false, 'type 4 in an initiation-sized packet');
  add('ipv4-keepalive', withPayloadLength(data4, 32), false, 'type 4 keepalive (32 bytes)');
  add('ipv4-reserved-nonzero', withPayloadBytes(v4, 3, [1]), false, 'reserved bytes not zero (01 00 00 01)');
  add('ipv4-type-0x0101', withPayloadBytes(v4, 1, [1]), false, 'reserved bytes not zero (01 01 00 00)');
  add('ipv6-reserved-nonzero', withPayloadBytes(v6, 1, [0xff]), false, 'reserved bytes not zero');

  // Fragments.
  add('ipv4-first-fragment', withFragment(v4, 0x2000), false, 'first fragment (MF set, offset 0)');
  add('ipv4-first-fragment-df', withFragment(v4, 0x6000), false, 'MF and DF set');
  add('ipv4-nonfirst-fragment', withFragment(v4, 0x0001), false, 'non-first fragment (offset 8) that looks like an initiation');
  add('ipv4-last-fragment', withFragment(v4, 0x00b9), false, 'last fragment (offset 1480)');
  add('ipv4-middle-fragment', withFragment(v4, 0x2010), false, 'middle fragment (MF, offset 128)');

  // IPv6 extension headers.
  add('ipv6-hop-by-hop', withIpv6Extension(v6, 0), false, 'hop-by-hop options before UDP');
  add('ipv6-destination-options', withIpv6Extension(v6, 60), false, 'destination options before UDP');
  add('ipv6-fragment-header', withIpv6Extension(v6, 44), false, 'fragment header (atomic) before UDP');

  // Broken IP headers.
  add('ipv4-ihl-4', withIpv4Header(v4, (q) => { q[0] = 0x44; }), false, 'IHL 4 (< 5)');
  add('ipv4-total-length-short', withIpv4Header(v4, (q) => put16(q, 2, get16(v4, 2) - 1)), false, 'IP total length one short');
  add('ipv4-protocol-tcp', withIpv4Header(v4, (q) => { q[9] = 6; }), false, 'protocol 6 with a UDP-looking body');
  add('ipv4-version-6-nibble', withIpv4Header(v4, (q) => { q[0] = 0x65; }), false, 'ethertype IPv4 but version 6');
  {
    const v6AsV4 = Uint8Array.from(v6);
    add('ipv6-under-ipv4-ethertype', v6AsV4, false, 'an IPv6 packet under ethertype 0x0800', { protocol: ETH_P_IP });
    const v4AsV6 = Uint8Array.from(v4);
    add('ipv4-under-ipv6-ethertype', v4AsV6, false, 'an IPv4 packet under ethertype 0x86dd', { protocol: ETH_P_IPV6 });
  }

  // Right packet, wrong packet type: not addressed to this host.
  add('ipv4-initiation-otherhost', Uint8Array.from(v4), false, 'PACKET_OTHERHOST (promiscuous)', { pktType: PACKET_OTHERHOST });
  add('ipv4-initiation-broadcast', Uint8Array.from(v4), false, 'PACKET_BROADCAST', { pktType: PACKET_BROADCAST });
  add('ipv6-initiation-multicast', Uint8Array.from(v6), false, 'PACKET_MULTICAST', { pktType: PACKET_MULTICAST });
  add('ipv4-initiation-outgoing', Uint8Array.from(v4), false, 'PACKET_OUTGOING (our own transmission)', { pktType: PACKET_OUTGOING });
  return frames;
}

export function allFrames(): Frame[] {
  return [...recordedFrames(), ...derivedFrames()];
}
