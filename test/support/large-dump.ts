/**
 * A kernel-shaped GET_DEVICE dump of many peers, for tests of how long decoding holds the event
 * loop. Laid out as the kernel lays out a dump to a socket that reads 64 KiB at a time: one
 * generic-netlink message per datagram of about 32 KiB (netlink_dump caps an skb at 32 KiB),
 * the device's own attributes in the first, every peer as wg(8)'s `addconf` leaves it (a
 * preshared-key attribute of zeros, no handshake, zero counters, one /32 and, for every third
 * peer, an endpoint).
 */
import { createHash } from 'node:crypto';
import type { MessageWriter } from '../../lib/netlink/attributes.js';
import * as uapi from '../../lib/wireguard/uapi.js';
import { concat, done, genlReply } from './kernel-replies.js';

export const LARGE_DUMP_FAMILY = 0x1e;
const DATAGRAM_BYTES = 32_000;

/** The public key of peer `i` of a large dump (its base64 is what getDevice returns). */
export function largeDumpKey(i: number): Buffer {
  return createHash('sha256').update(`large-dump:${i}`).digest();
}

export interface LargeDumpOptions {
  /** The interface's private key (written into the first message). */
  privateKey?: Uint8Array;
  /** Peers whose last handshake is this Unix second (default none). */
  handshakeAt?: (i: number) => number | null;
}

/** `peers` peers; the last datagram ends with NLMSG_DONE. Sequence numbers are 0 (restamp them). */
export function largeDump(peers: number, options: LargeDumpOptions = {}): Buffer[] {
  const datagrams: Buffer[] = [];
  let next = 0;
  do {
    const first = datagrams.length === 0;
    datagrams.push(genlReply(LARGE_DUMP_FAMILY, uapi.WG_CMD_GET_DEVICE, (w) => {
      w.attrU32(uapi.WGDEVICE_A_IFINDEX, 7);
      w.attrString(uapi.WGDEVICE_A_IFNAME, 'wg0');
      if (first) {
        w.attr(uapi.WGDEVICE_A_PRIVATE_KEY, options.privateKey ?? new Uint8Array(32));
        w.attr(uapi.WGDEVICE_A_PUBLIC_KEY, new Uint8Array(32).fill(8));
        w.attrU16(uapi.WGDEVICE_A_LISTEN_PORT, 51820);
        w.attrU32(uapi.WGDEVICE_A_FWMARK, 0);
      }
      const nest = w.beginNest(uapi.WGDEVICE_A_PEERS);
      while (next < peers && w.size < DATAGRAM_BYTES) writePeer(w, next++, options);
      w.endNest(nest);
    }));
  } while (next < peers);
  datagrams[datagrams.length - 1] = concat(datagrams[datagrams.length - 1]!, done());
  return datagrams;
}

function writePeer(w: MessageWriter, i: number, options: LargeDumpOptions): void {
  const peer = w.beginNest(0);
  w.attr(uapi.WGPEER_A_PUBLIC_KEY, largeDumpKey(i));
  w.attr(uapi.WGPEER_A_PRESHARED_KEY, new Uint8Array(32));
  const handshake = Buffer.alloc(16);
  const at = options.handshakeAt?.(i) ?? null;
  if (at !== null) handshake.writeBigInt64LE(BigInt(at), 0);
  w.attr(uapi.WGPEER_A_LAST_HANDSHAKE_TIME, handshake);
  w.attrU16(uapi.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 0);
  w.attr(uapi.WGPEER_A_RX_BYTES, Buffer.alloc(8));
  w.attr(uapi.WGPEER_A_TX_BYTES, Buffer.alloc(8));
  w.attrU32(uapi.WGPEER_A_PROTOCOL_VERSION, 1);
  if (i % 3 === 0) {
    const endpoint = Buffer.alloc(16);
    endpoint.writeUInt16LE(2, 0);
    endpoint.writeUInt16BE(40_000 + (i % 20_000), 2);
    endpoint.set([192, 0, 2, i % 250], 4);
    w.attr(uapi.WGPEER_A_ENDPOINT, endpoint);
  }
  const ips = w.beginNest(uapi.WGPEER_A_ALLOWEDIPS);
  const ip = w.beginNest(0);
  w.attrU16(uapi.WGALLOWEDIP_A_FAMILY, 2);
  w.attr(uapi.WGALLOWEDIP_A_IPADDR, Uint8Array.of(10, (i >> 16) & 255, (i >> 8) & 255, i & 255));
  w.attrU8(uapi.WGALLOWEDIP_A_CIDR_MASK, 32);
  w.endNest(ip);
  w.endNest(ips);
  w.endNest(peer);
}
