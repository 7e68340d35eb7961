/**
 * Builders for kernel-shaped reply datagrams, for unit tests that need a reply the recorded
 * fixtures do not contain (an interrupted dump, an error at message N of a split SET).
 * Layouts follow include/uapi/linux/netlink.h; recorded fixtures cross-check them.
 */
import { MessageWriter } from '../../lib/netlink/attributes.js';
import {
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_MULTI,
} from '../../lib/netlink/constants.js';

/** One generic-netlink message of a dump: header, genl header, then what `build` writes. */
export function genlReply(family: number, command: number, build: (w: MessageWriter) => void, flags = NLM_F_MULTI): Buffer {
  const w = new MessageWriter(256);
  const start = w.space(16);
  w.u16At(start + 4, family);
  w.u16At(start + 6, flags);
  const genl = w.space(4);
  w.u8At(genl, command);
  w.u8At(genl + 1, 1);
  build(w);
  w.u32At(start, w.size - start);
  return w.take();
}

export function done(): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(20, 0);
  b.writeUInt16LE(NLMSG_DONE, 4);
  b.writeUInt16LE(NLM_F_MULTI, 6);
  return b;
}

/** An NLMSG_ERROR as a socket with NETLINK_CAP_ACK and NETLINK_EXT_ACK receives it. */
export function errorReply(errno: number, kernelMessage?: string, offset?: number): Buffer {
  const w = new MessageWriter(128);
  const start = w.space(16);
  w.u16At(start + 4, NLMSG_ERROR);
  const hasTlvs = kernelMessage !== undefined || offset !== undefined;
  w.u16At(start + 6, NLM_F_CAPPED | (hasTlvs ? NLM_F_ACK_TLVS : 0));
  const body = w.space(4 + 16);
  w.u32At(body, (-errno) >>> 0);
  w.u32At(body + 4, 16); // echoed request header, capped
  if (kernelMessage !== undefined) w.attrString(NLMSGERR_ATTR_MSG, kernelMessage);
  if (offset !== undefined) w.attrU32(NLMSGERR_ATTR_OFFS, offset);
  w.u32At(start, w.size - start);
  return w.take();
}

export const ack = (): Buffer => errorReply(0);

export function concat(...parts: Buffer[]): Buffer {
  return Buffer.concat(parts);
}
