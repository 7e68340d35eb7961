/** Netlink message headers: writing a request's header, walking a reply datagram. */
import { NetlinkDecodeError, readString } from './attributes.js';
import { policed } from './policy.js';
import type { AttributePolicy } from './policy.js';
import {
  NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
  NLMSG_HDRLEN,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
} from './constants.js';
import type { MessageWriter } from './attributes.js';
import { align4 } from './attributes.js';

/** Writes a header whose length is filled in by `endMessage`; seq is set when sent. */
export function beginMessage(writer: MessageWriter, type: number, flags: number): number {
  const start = writer.space(NLMSG_HDRLEN);
  writer.u16At(start + 4, type);
  writer.u16At(start + 6, flags);
  return start;
}

export function endMessage(writer: MessageWriter, start: number): void {
  writer.u32At(start, writer.size - start);
}

export function setSequence(message: Buffer, seq: number): void {
  message.writeUInt32LE(seq >>> 0, 8);
}

export function sequenceOf(message: Buffer): number {
  return message.readUInt32LE(8);
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  /** The payload after the 16-byte header (a view into the datagram). */
  payload: Buffer;
}

/** Walks the messages packed into one datagram. */
export function* messagesIn(datagram: Buffer): Generator<NetlinkMessage> {
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= datagram.length) {
    const length = datagram.readUInt32LE(offset);
    if (length < NLMSG_HDRLEN || offset + length > datagram.length) {
      throw new NetlinkDecodeError(`message at offset ${offset} claims ${length} bytes, ${datagram.length - offset} remain`);
    }
    yield {
      type: datagram.readUInt16LE(offset + 4),
      flags: datagram.readUInt16LE(offset + 6),
      seq: datagram.readUInt32LE(offset + 8),
      payload: datagram.subarray(offset + NLMSG_HDRLEN, offset + length),
    };
    offset += align4(length);
  }
}

/** An NLMSG_ERROR decoded: errno 0 is an acknowledgement. */
export interface NetlinkAck {
  /** Positive errno, 0 for success. */
  errno: number;
  /** The kernel's extended-ack message, if any. */
  kernelMessage?: string;
  /** Offset into the request of the attribute the kernel blamed, if it said. */
  offset?: number;
}

/** The status an NLMSG_DONE carries: the dump's final errno, and extended-ack TLVs after it. */
export function decodeDone(message: NetlinkMessage): NetlinkAck {
  const { payload } = message;
  if (payload.length < 4) return { errno: 0 };
  const ack: NetlinkAck = { errno: -payload.readInt32LE(0) };
  if ((message.flags & NLM_F_ACK_TLVS) !== 0) readAckAttributes(payload.subarray(4), ack);
  return ack;
}

const EXTENDED_ACK_POLICY: AttributePolicy = {
  name: 'NLMSGERR_ATTR',
  rules: {
    [NLMSGERR_ATTR_MSG]: { kind: 'string', max: 0xffff },
    [NLMSGERR_ATTR_OFFS]: { kind: 'u32' },
  },
};

function readAckAttributes(data: Buffer, ack: NetlinkAck): void {
  for (const attr of policed(data, EXTENDED_ACK_POLICY)) {
    if (attr.type === NLMSGERR_ATTR_MSG) ack.kernelMessage = readString(attr.value);
    else if (attr.type === NLMSGERR_ATTR_OFFS) ack.offset = attr.value.readUInt32LE(0);
  }
}

export function decodeAck(message: NetlinkMessage): NetlinkAck {
  const { payload } = message;
  if (payload.length < 4 + NLMSG_HDRLEN) throw new NetlinkDecodeError(`NLMSG_ERROR of ${payload.length} bytes is too short`);
  const error = payload.readInt32LE(0);
  const ack: NetlinkAck = { errno: -error };
  if ((message.flags & NLM_F_ACK_TLVS) === 0) return ack;
  // The echoed request: only its header when capped, else the whole original message, whose
  // length field is the kernel's word only as far as this payload reaches.
  const echoed = (message.flags & NLM_F_CAPPED) !== 0 ? NLMSG_HDRLEN : payload.readUInt32LE(4);
  if (echoed < NLMSG_HDRLEN || echoed > payload.length - 4) {
    throw new NetlinkDecodeError(`NLMSG_ERROR echoes a request of ${echoed} bytes in a payload of ${payload.length}`);
  }
  readAckAttributes(payload.subarray(Math.min(payload.length, 4 + align4(echoed))), ack);
  return ack;
}
