/**
 * The GET_DEVICE decoder as it was before lib/wireguard/decode.ts walked attributes by offset
 * (issue 9): one `policed()` generator and one value view per attribute. Kept as the reference
 * the differential test compares the fast decoder with, on recorded and mutated replies.
 *
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
 */
import { NetlinkDecodeError, attributes, readString } from '../../lib/netlink/attributes.js';
import { policed } from '../../lib/netlink/policy.js';
import type { AttributePolicy } from '../../lib/netlink/policy.js';
import { AF_INET, AF_INET6 } from '../../lib/netlink/constants.js';
import { genlPayload } from '../../lib/netlink/genl.js';
import type { NetlinkMessage } from '../../lib/netlink/message.js';
import { encodeKey } from '../../lib/keys.js';
import { formatEndpoint, formatPrefix } from '../../lib/net/ip.js';
import type { Device, Peer } from '../../lib/wireguard/types.js';
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
} from '../../lib/wireguard/uapi.js';

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
function decodeEndpoint(value: Buffer): string {
  const family = value.readUInt16LE(0);
  if (family === AF_INET && value.length === 16) {
    return formatEndpoint({ family: 4, bytes: value.subarray(4, 8), port: value.readUInt16BE(2), scopeId: 0 });
  }
  if (family === AF_INET6 && value.length === 28) {
    return formatEndpoint({ family: 6, bytes: value.subarray(8, 24), port: value.readUInt16BE(2), scopeId: value.readUInt32LE(24) });
  }
  throw new NetlinkDecodeError(`peer endpoint of family ${family} and ${value.length} bytes (expected AF_INET in 16 or AF_INET6 in 28)`);
}

function decodeAllowedIp(value: Buffer): string {
  let family = 0;
  let address: Buffer | undefined;
  let length = -1;
  for (const attr of policed(value, ALLOWEDIP_POLICY)) {
    if (attr.type === WGALLOWEDIP_A_FAMILY) family = attr.value.readUInt16LE(0);
    else if (attr.type === WGALLOWEDIP_A_IPADDR) address = attr.value;
    else if (attr.type === WGALLOWEDIP_A_CIDR_MASK) length = attr.value.readUInt8(0);
  }
  const expected = family === AF_INET ? 4 : family === AF_INET6 ? 16 : 0;
  if (!address || expected === 0 || address.length !== expected || length < 0 || length > expected * 8) {
    throw new NetlinkDecodeError(`allowed IP with family ${family}, ${address?.length ?? 0} address bytes, mask ${length}`);
  }
  return formatPrefix({ family: expected === 4 ? 4 : 6, bytes: address, length });
}

/** The latest Date a JavaScript Date can hold, in seconds since the epoch. */
const MAX_DATE_SECONDS = 8.64e12 / 1000;

function decodeHandshakeTime(value: Buffer): Date | null {
  const seconds = value.readBigInt64LE(0);
  const nanoseconds = value.readBigInt64LE(8);
  if (seconds === 0n && nanoseconds === 0n) return null;
  if (seconds < 0n || seconds > BigInt(MAX_DATE_SECONDS) || nanoseconds < 0n || nanoseconds >= 1_000_000_000n) {
    throw new NetlinkDecodeError(`peer last-handshake time out of range (${seconds} s, ${nanoseconds} ns)`);
  }
  return new Date(Number(seconds) * 1000 + Math.floor(Number(nanoseconds) / 1e6));
}

function decodePeer(value: Buffer): Peer {
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
  for (const attr of policed(value, PEER_POLICY)) {
    switch (attr.type) {
      case WGPEER_A_PUBLIC_KEY:
        peer.publicKey = encodeKey(attr.value);
        break;
      case WGPEER_A_PRESHARED_KEY:
        peer.hasPresharedKey = attr.value.some((byte) => byte !== 0);
        attr.value.fill(0);
        break;
      case WGPEER_A_ENDPOINT:
        peer.endpoint = decodeEndpoint(attr.value);
        break;
      case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
        peer.persistentKeepalive = attr.value.readUInt16LE(0);
        break;
      case WGPEER_A_LAST_HANDSHAKE_TIME:
        peer.lastHandshake = decodeHandshakeTime(attr.value);
        break;
      case WGPEER_A_RX_BYTES:
        peer.rxBytes = attr.value.readBigUInt64LE(0);
        break;
      case WGPEER_A_TX_BYTES:
        peer.txBytes = attr.value.readBigUInt64LE(0);
        break;
      case WGPEER_A_PROTOCOL_VERSION:
        peer.protocolVersion = attr.value.readUInt32LE(0);
        break;
      case WGPEER_A_ALLOWEDIPS:
        for (const entry of attributes(attr.value)) peer.allowedIps.push(decodeAllowedIp(entry.value));
        break;
      default:
        break; // attributes added by newer kernels are ignored
    }
  }
  if (peer.publicKey === '') throw new NetlinkDecodeError('peer without a public key in dump');
  return peer;
}

/**
 * Decodes the messages of one GET_DEVICE dump. `onPrivateKey` receives the interface private
 * key bytes (a view into the reply, zeroed right after the callback returns).
 */
export function referenceDecodeDevice(messages: NetlinkMessage[], onPrivateKey?: (key: Buffer) => void): Device {
  const device: Device = { name: '', ifindex: 0, publicKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let last: Peer | undefined;
  for (const message of messages) {
    for (const attr of policed(genlPayload(message.payload), DEVICE_POLICY)) {
      switch (attr.type) {
        case WGDEVICE_A_IFINDEX:
          device.ifindex = attr.value.readUInt32LE(0);
          break;
        case WGDEVICE_A_IFNAME:
          device.name = readString(attr.value);
          break;
        case WGDEVICE_A_PRIVATE_KEY:
          try {
            onPrivateKey?.(attr.value);
          } finally {
            attr.value.fill(0);
          }
          break;
        case WGDEVICE_A_PUBLIC_KEY:
          device.publicKey = encodeKey(attr.value);
          break;
        case WGDEVICE_A_LISTEN_PORT:
          device.listenPort = attr.value.readUInt16LE(0);
          break;
        case WGDEVICE_A_FWMARK:
          device.fwmark = attr.value.readUInt32LE(0);
          break;
        case WGDEVICE_A_PEERS:
          for (const entry of attributes(attr.value)) {
            const peer = decodePeer(entry.value);
            if (last !== undefined && last.publicKey === peer.publicKey) {
              for (const ip of peer.allowedIps) last.allowedIps.push(ip);
            } else {
              device.peers.push(peer);
              last = peer;
            }
          }
          break;
        default:
          break;
      }
    }
  }
  return device;
}
