/**
 * WG_CMD_GET_DEVICE dump decoding. The kernel splits a large device across messages; a peer
 * continued in the next message repeats only its public key and carries more allowed IPs,
 * so consecutive entries with the same key are merged.
 *
 * The dump carries secrets (the interface private key; each peer's preshared key). They are
 * zeroed in the reply buffers as they are met, so the caller's buffers hold none afterwards;
 * `onPrivateKey` lets `getPrivateKey` take a copy first.
 *
 * Every attribute is checked against the kernel's own policy for it (netlink.c:
 * device_policy, peer_policy, allowedip_policy) before it is read, and every value against
 * what the kernel can put there; anything else is a NetlinkDecodeError.
 *
 * Attributes are walked by offset, with no view or record per attribute: a dump of 10^5 peers
 * holds ~10^6 of them, and one object each was most of the decoding's cost (garbage
 * collection included). The decoding is a generator that stops whenever its `SliceClock` says
 * the slice is up, so `decodeDeviceInSlices` can let the event loop run between slices;
 * `decodeDevice` runs the same steps at once.
 */
import { NetlinkDecodeError, attributeOverrun, readString } from '../netlink/attributes.js';
import { checkAttribute } from '../netlink/policy.js';
import type { AttributePolicy } from '../netlink/policy.js';
import { AF_INET, AF_INET6, NLA_HDRLEN, NLA_TYPE_MASK } from '../netlink/constants.js';
import { genlPayload } from '../netlink/genl.js';
import type { NetlinkMessage } from '../netlink/message.js';
import { formatEndpoint, formatPrefix } from '../net/ip.js';
import { SliceClock, runAtOnce, runInSlices } from '../slices.js';
import type { Device, Peer } from './types.js';
import {
  WGALLOWEDIP_A_CIDR_MASK,
  WGALLOWEDIP_A_FAMILY,
  WGALLOWEDIP_A_IPADDR,
  WGDEVICE_A_FLAGS,
  WGDEVICE_A_FWMARK,
  WGDEVICE_A_IFINDEX,
  WGDEVICE_A_IFNAME,
  WGDEVICE_A_LISTEN_PORT,
  WGDEVICE_A_PEERS,
  WGDEVICE_A_PRIVATE_KEY,
  WGDEVICE_A_PUBLIC_KEY,
  WGPEER_A_ALLOWEDIPS,
  WGPEER_A_ENDPOINT,
  WGPEER_A_FLAGS,
  WGPEER_A_LAST_HANDSHAKE_TIME,
  WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_A_PRESHARED_KEY,
  WGPEER_A_PROTOCOL_VERSION,
  WGPEER_A_PUBLIC_KEY,
  WGPEER_A_RX_BYTES,
  WGPEER_A_TX_BYTES,
} from './uapi.js';

const KEY = { kind: 'binary', length: 32 } as const;

const DEVICE_POLICY: AttributePolicy = {
  name: 'WGDEVICE_A',
  rules: {
    [WGDEVICE_A_IFINDEX]: { kind: 'u32' },
    [WGDEVICE_A_IFNAME]: { kind: 'string', max: 16 }, // IFNAMSIZ, NUL included
    [WGDEVICE_A_PRIVATE_KEY]: KEY,
    [WGDEVICE_A_PUBLIC_KEY]: KEY,
    [WGDEVICE_A_FLAGS]: { kind: 'u32' },
    [WGDEVICE_A_LISTEN_PORT]: { kind: 'u16' },
    [WGDEVICE_A_FWMARK]: { kind: 'u32' },
    [WGDEVICE_A_PEERS]: { kind: 'nested' },
  },
};

const PEER_POLICY: AttributePolicy = {
  name: 'WGPEER_A',
  rules: {
    [WGPEER_A_PUBLIC_KEY]: KEY,
    [WGPEER_A_PRESHARED_KEY]: KEY,
    [WGPEER_A_FLAGS]: { kind: 'u32' },
    [WGPEER_A_ENDPOINT]: { kind: 'binary', min: 16 }, // sizeof(struct sockaddr); checked per family below
    [WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]: { kind: 'u16' },
    [WGPEER_A_LAST_HANDSHAKE_TIME]: { kind: 'binary', length: 16 }, // struct __kernel_timespec
    [WGPEER_A_RX_BYTES]: { kind: 'u64' },
    [WGPEER_A_TX_BYTES]: { kind: 'u64' },
    [WGPEER_A_ALLOWEDIPS]: { kind: 'nested' },
    [WGPEER_A_PROTOCOL_VERSION]: { kind: 'u32' },
  },
};

const ALLOWEDIP_POLICY: AttributePolicy = {
  name: 'WGALLOWEDIP_A',
  rules: {
    [WGALLOWEDIP_A_FAMILY]: { kind: 'u16' },
    [WGALLOWEDIP_A_IPADDR]: { kind: 'binary', min: 4, max: 16 },
    [WGALLOWEDIP_A_CIDR_MASK]: { kind: 'u8' },
  },
};

/** struct sockaddr_in (16 bytes) or sockaddr_in6 (28), as the kernel puts an endpoint. */
export function decodeEndpoint(value: Buffer): string {
  const family = value.readUInt16LE(0);
  if (family === AF_INET && value.length === 16) {
    return formatEndpoint({ family: 4, bytes: value.subarray(4, 8), port: value.readUInt16BE(2), scopeId: 0 });
  }
  if (family === AF_INET6 && value.length === 28) {
    return formatEndpoint({ family: 6, bytes: value.subarray(8, 24), port: value.readUInt16BE(2), scopeId: value.readUInt32LE(24) });
  }
  throw new NetlinkDecodeError(`peer endpoint of family ${family} and ${value.length} bytes (expected AF_INET in 16 or AF_INET6 in 28)`);
}

/**
 * One attribute header at `offset` of `data`, inside a nest (or payload) that ends at `end`
 * and began at `nestStart`: checked as `attributes()` checks it (an overrun names the offset
 * within the nest) and against `policy`. Returns the attribute's length, header included; its
 * type is `data[offset + 2..3] & NLA_TYPE_MASK` (see `typeAt`).
 */
function attributeAt(data: Buffer, offset: number, end: number, nestStart: number, policy: AttributePolicy | null): number {
  const length = data[offset]! | (data[offset + 1]! << 8);
  if (length < NLA_HDRLEN || offset + length > end) throw attributeOverrun(offset - nestStart, length, end - offset);
  if (policy !== null) checkAttribute(policy, typeAt(data, offset), length - NLA_HDRLEN);
  return length;
}

function typeAt(data: Buffer, offset: number): number {
  return (data[offset + 2]! | (data[offset + 3]! << 8)) & NLA_TYPE_MASK;
}

/** The offset of the attribute after one of `length` bytes at `offset` (NLA_ALIGN; length ≤ 0xffff). */
function nextAttribute(offset: number, length: number): number {
  return offset + ((length + 3) & ~3);
}

function decodeAllowedIp(data: Buffer, start: number, end: number): string {
  let family = 0;
  let address = -1;
  let addressLength = 0;
  let length = -1;
  for (let at = start; at + NLA_HDRLEN <= end;) {
    const size = attributeAt(data, at, end, start, ALLOWEDIP_POLICY);
    const type = typeAt(data, at);
    const value = at + NLA_HDRLEN;
    if (type === WGALLOWEDIP_A_FAMILY) family = data[value]! | (data[value + 1]! << 8);
    else if (type === WGALLOWEDIP_A_IPADDR) {
      address = value;
      addressLength = size - NLA_HDRLEN;
    } else if (type === WGALLOWEDIP_A_CIDR_MASK) length = data[value]!;
    at = nextAttribute(at, size);
  }
  const expected = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
  if (address < 0 || expected === 0 || addressLength !== expected || length < 0 || length > expected * 8) {
    throw new NetlinkDecodeError(`allowed IP with family ${family}, ${address < 0 ? 0 : addressLength} address bytes, mask ${length}`);
  }
  if (expected === 4) return formatIPv4Prefix(data, address, length);
  return formatPrefix({ family: 6, bytes: data.subarray(address, address + 16), length });
}

/** Room for "255.255.255.255/32". */
const ipv4Text = Buffer.alloc(18);

function writeDecimal(value: number, at: number): number {
  if (value >= 100) ipv4Text[at++] = 48 + Math.floor(value / 100);
  if (value >= 10) ipv4Text[at++] = 48 + (Math.floor(value / 10) % 10);
  ipv4Text[at++] = 48 + (value % 10);
  return at;
}

/**
 * "a.b.c.d/len", as `formatPrefix` writes it, but as one flat string: a template literal
 * builds a tree of string pieces, which in a dump of 10^5 peers is ~10^6 small objects for the
 * garbage collector to copy.
 */
function formatIPv4Prefix(data: Buffer, address: number, length: number): string {
  let at = 0;
  for (let i = 0; i < 4; i++) {
    if (i > 0) ipv4Text[at++] = 0x2e; // '.'
    at = writeDecimal(data[address + i]!, at);
  }
  ipv4Text[at++] = 0x2f; // '/'
  at = writeDecimal(length, at);
  return ipv4Text.toString('latin1', 0, at);
}

/** A u64 counter; the shared 0n for the common zero (an idle peer's), so it costs no allocation. */
function readCounter(data: Buffer, at: number): bigint {
  if (data.readUInt32LE(at) === 0 && data.readUInt32LE(at + 4) === 0) return 0n;
  return data.readBigUInt64LE(at);
}

/** The latest Date a JavaScript Date can hold, in seconds since the epoch. */
const MAX_DATE_SECONDS = 8.64e12 / 1000;

/** struct __kernel_timespec: two s64, read as numbers (exact: both bounds are far below 2^53). */
function decodeHandshakeTime(data: Buffer, at: number): Date | null {
  const secondsLow = data.readUInt32LE(at);
  const secondsHigh = data.readInt32LE(at + 4);
  const nanosLow = data.readUInt32LE(at + 8);
  const nanosHigh = data.readInt32LE(at + 12);
  if (secondsLow === 0 && secondsHigh === 0 && nanosLow === 0 && nanosHigh === 0) return null;
  const seconds = secondsHigh * 2 ** 32 + secondsLow;
  const nanoseconds = nanosHigh * 2 ** 32 + nanosLow;
  if (secondsHigh < 0 || seconds > MAX_DATE_SECONDS || nanosHigh !== 0 || nanoseconds >= 1e9) {
    // BigInt only here, so the message names the kernel's values exactly.
    throw new NetlinkDecodeError(`peer last-handshake time out of range (${data.readBigInt64LE(at)} s, ${data.readBigInt64LE(at + 8)} ns)`);
  }
  return new Date(seconds * 1000 + Math.floor(nanoseconds / 1e6));
}

function decodePeer(data: Buffer, start: number, end: number): Peer {
  // Collected here and stored at the end: `[]` grown by one push reserves room for 17.
  let allowedIps: string[] | null = null;
  const peer: Peer = {
    publicKey: '',
    hasPresharedKey: false,
    endpoint: null,
    persistentKeepalive: 0,
    lastHandshake: null,
    rxBytes: 0n,
    txBytes: 0n,
    allowedIps: [],
    protocolVersion: 0,
  };
  for (let at = start; at + NLA_HDRLEN <= end;) {
    const size = attributeAt(data, at, end, start, PEER_POLICY);
    const value = at + NLA_HDRLEN;
    const valueEnd = at + size;
    switch (typeAt(data, at)) {
      case WGPEER_A_PUBLIC_KEY:
        peer.publicKey = data.toString('base64', value, valueEnd);
        break;
      case WGPEER_A_PRESHARED_KEY: {
        let any = 0;
        for (let i = value; i < valueEnd; i++) any |= data[i]!;
        peer.hasPresharedKey = any !== 0;
        data.fill(0, value, valueEnd);
        break;
      }
      case WGPEER_A_ENDPOINT:
        peer.endpoint = decodeEndpoint(data.subarray(value, valueEnd));
        break;
      case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
        peer.persistentKeepalive = data[value]! | (data[value + 1]! << 8);
        break;
      case WGPEER_A_LAST_HANDSHAKE_TIME:
        peer.lastHandshake = decodeHandshakeTime(data, value);
        break;
      case WGPEER_A_RX_BYTES:
        peer.rxBytes = readCounter(data, value);
        break;
      case WGPEER_A_TX_BYTES:
        peer.txBytes = readCounter(data, value);
        break;
      case WGPEER_A_PROTOCOL_VERSION:
        peer.protocolVersion = data.readUInt32LE(value);
        break;
      case WGPEER_A_ALLOWEDIPS:
        for (let entry = value; entry + NLA_HDRLEN <= valueEnd;) {
          const entrySize = attributeAt(data, entry, valueEnd, value, null);
          const ip = decodeAllowedIp(data, entry + NLA_HDRLEN, entry + entrySize);
          if (allowedIps === null) allowedIps = [ip];
          else allowedIps.push(ip);
          entry = nextAttribute(entry, entrySize);
        }
        break;
      default:
        break; // attributes added by newer kernels are ignored
    }
    at = nextAttribute(at, size);
  }
  if (peer.publicKey === '') throw new NetlinkDecodeError('peer without a public key in dump');
  if (allowedIps !== null) peer.allowedIps = allowedIps;
  return peer;
}

/** Peers per batch when a dump is streamed (`decodeDeviceInSlices` with `onPeers`). */
export const PEER_BATCH = 256;

/**
 * The decoding of one GET_DEVICE dump, as steps: it yields `undefined` when `clock` says its
 * slice is up (between two peers), and returns the device. With `streamed`, the peers are not
 * collected in `device.peers` but yielded in batches of up to PEER_BATCH, each once it is
 * complete (a peer continued in the next message is held back until the next one begins).
 */
function* deviceSteps(
  messages: NetlinkMessage[],
  onPrivateKey: ((key: Buffer) => void) | undefined,
  clock: SliceClock | null,
  streamed: boolean,
): Generator<Peer[] | undefined, Device, void> {
  const device: Device = { name: '', ifindex: 0, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let last: Peer | undefined;
  let batch: Peer[] = [];
  for (const message of messages) {
    const payload = genlPayload(message.payload);
    for (let at = 0; at + NLA_HDRLEN <= payload.length;) {
      const size = attributeAt(payload, at, payload.length, 0, DEVICE_POLICY);
      const value = at + NLA_HDRLEN;
      const valueEnd = at + size;
      switch (typeAt(payload, at)) {
        case WGDEVICE_A_IFINDEX:
          device.ifindex = payload.readUInt32LE(value);
          break;
        case WGDEVICE_A_IFNAME:
          device.name = readString(payload.subarray(value, valueEnd));
          break;
        case WGDEVICE_A_PRIVATE_KEY:
          try {
            onPrivateKey?.(payload.subarray(value, valueEnd));
          } finally {
            payload.fill(0, value, valueEnd);
          }
          break;
        case WGDEVICE_A_PUBLIC_KEY:
          device.publicKey = payload.toString('base64', value, valueEnd);
          break;
        case WGDEVICE_A_LISTEN_PORT:
          device.listenPort = payload.readUInt16LE(value);
          break;
        case WGDEVICE_A_FWMARK:
          device.fwmark = payload.readUInt32LE(value);
          break;
        case WGDEVICE_A_PEERS:
          for (let entry = value; entry + NLA_HDRLEN <= valueEnd;) {
            const entrySize = attributeAt(payload, entry, valueEnd, value, null);
            const peer = decodePeer(payload, entry + NLA_HDRLEN, entry + entrySize);
            if (last !== undefined && last.publicKey === peer.publicKey) {
              for (const ip of peer.allowedIps) last.allowedIps.push(ip);
            } else if (!streamed) {
              device.peers.push(peer);
              last = peer;
            } else {
              if (last !== undefined) batch.push(last);
              last = peer;
              if (batch.length >= PEER_BATCH) {
                yield batch;
                batch = [];
              }
            }
            entry = nextAttribute(entry, entrySize);
            if (clock?.due()) yield undefined;
          }
          break;
        default:
          break;
      }
      at = nextAttribute(at, size);
    }
  }
  if (streamed) {
    if (last !== undefined) batch.push(last);
    if (batch.length > 0) yield batch;
  }
  return device;
}

/**
 * Decodes the messages of one GET_DEVICE dump. `onPrivateKey` receives the interface private
 * key bytes (a view into the reply, zeroed right after the callback returns).
 */
export function decodeDevice(messages: NetlinkMessage[], onPrivateKey?: (key: Buffer) => void): Device {
  return runAtOnce(deviceSteps(messages, onPrivateKey, null, false) as Generator<void, Device, void>);
}

export interface SlicedDecodeOptions {
  onPrivateKey?: (key: Buffer) => void;
  clock?: SliceClock;
  /**
   * Takes the peers in batches of up to PEER_BATCH, in the kernel's order, instead of
   * `device.peers` (left empty); the next batch is decoded once what it returns has settled.
   * A device of 10^5 peers then never has 10^5 Peer objects alive at once.
   */
  onPeers?: (peers: Peer[]) => void | Promise<void>;
}

/**
 * The same decoding, a few milliseconds at a time (`clock`'s slices), letting the event loop
 * run between slices; a dump that decodes within one slice resolves with no pause. The caller
 * must keep `messages` unchanged until it settles (and wipe them afterwards, as before).
 */
export async function decodeDeviceInSlices(messages: NetlinkMessage[], options: SlicedDecodeOptions = {}): Promise<Device> {
  const clock = options.clock ?? new SliceClock();
  const { onPeers } = options;
  if (onPeers === undefined) return runInSlices(deviceSteps(messages, options.onPrivateKey, clock, false) as Generator<void, Device, void>, clock);
  const steps = deviceSteps(messages, options.onPrivateKey, clock, true);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (step.value === undefined) {
      await clock.pause();
      continue;
    }
    // Its time counts in the slice: a consumer that only awaits resolved promises has not let
    // the event loop run.
    const handled = onPeers(step.value);
    if (handled !== undefined) await handled;
  }
}
