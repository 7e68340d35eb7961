/**
 * Whether the kernel will answer a request. An exchange ends when the kernel has answered
 * each message (an NLMSG_ERROR, or a dump's NLMSG_DONE); a message it drops without a word
 * would leave the exchange waiting until its timeout. af_netlink.c `netlink_rcv_skb` drops
 * silently a message whose length does not fit the buffer, one without NLM_F_REQUEST, and a
 * control message (type below NLMSG_MIN_TYPE); it acknowledges a success only with NLM_F_ACK.
 * Without NLM_F_ACK the one answered request is therefore a dump, and what counts as a dump
 * differs: generic netlink takes both NLM_F_DUMP bits on any command (one without a dump
 * handler is refused with EOPNOTSUPP, an answer), rtnetlink only on a GET type, where on any
 * other type the same two bits mean NLM_F_REPLACE | NLM_F_EXCL and success stays silent.
 */
import { ValidationError } from '../errors.js';
import { NETLINK_ROUTE, NLMSG_HDRLEN, NLMSG_MIN_TYPE, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from './constants.js';

/** rtnetlink's message kinds are the type's two low bits (RTNL_KIND_MASK); GET is 2. */
const RTNL_KIND_MASK = 3;
const RTNL_KIND_GET = 2;

function problemWith(message: Buffer, protocol: number): string | undefined {
  if (message.length < NLMSG_HDRLEN) return `${message.length} bytes is shorter than a netlink header`;
  const length = message.readUInt32LE(0);
  if (length !== message.length) return `nlmsg_len ${length} does not match the ${message.length}-byte message; the kernel would drop it unanswered`;
  const type = message.readUInt16LE(4);
  const flags = message.readUInt16LE(6);
  if (type < NLMSG_MIN_TYPE) return `type ${type} is a control message type; the kernel would skip it unanswered`;
  if ((flags & NLM_F_REQUEST) === 0) return 'no NLM_F_REQUEST; the kernel would ignore it unanswered';
  if ((flags & NLM_F_ACK) !== 0) return undefined;
  if ((flags & NLM_F_DUMP) !== NLM_F_DUMP) return 'neither NLM_F_ACK nor a dump; the kernel would not answer a success';
  if (protocol === NETLINK_ROUTE && (type & RTNL_KIND_MASK) !== RTNL_KIND_GET) {
    return `NLM_F_REPLACE|NLM_F_EXCL without NLM_F_ACK on rtnetlink type ${type} (not a GET, so not a dump); the kernel would not answer a success`;
  }
  return undefined;
}

/**
 * Refuses, before anything is sent, a message the kernel would not answer (see above).
 * `protocol` is the socket's (NETLINK_GENERIC, NETLINK_ROUTE).
 */
export function checkRequests(messages: Buffer[], protocol: number): void {
  messages.forEach((message, i) => {
    const problem = problemWith(message, protocol);
    if (problem !== undefined) throw new ValidationError(`request.messages[${i}]`, problem);
  });
}
