/**
 * WG_CMD_SET_DEVICE encoding, split across messages by size.
 *
 * One message cannot carry an arbitrarily large configuration: the WGDEVICE_A_PEERS nest's
 * length is a u16, and the kernel allocates each request whole. So peers are packed into
 * messages of at most `maxMessageBytes`, and a peer whose allowed IPs do not fit continues in
 * the next message. What repeats in a continuation follows the kernel's rules:
 * - every message names the interface; only the first carries device fields and
 *   WGDEVICE_F_REPLACE_PEERS (repeating it would delete the peers just sent);
 * - a continued peer repeats only its public key, plus WGPEER_F_UPDATE_ONLY if it had it
 *   (without it, the continuation of a skipped update-only peer would create that peer);
 *   WGPEER_F_REPLACE_ALLOWEDIPS is not repeated (it would drop the IPs sent before).
 *
 * Splitting is by bytes, like wg(8), not by count, like wgctrl-go: 100,000 small peers take
 * a few hundred messages, not 100,000 round trips.
 */
import type { Progress } from '../errors.js';
import { MessageWriter } from '../netlink/attributes.js';
import { AF_INET, AF_INET6, NLA_HDRLEN, NLM_F_ACK, NLM_F_REQUEST } from '../netlink/constants.js';
import { beginGenlMessage } from '../netlink/genl.js';
import { endMessage } from '../netlink/message.js';
import type { Endpoint, Prefix } from '../net/ip.js';
import type { NormalizedConfig, NormalizedPeer } from './validate.js';
import {
  WGALLOWEDIP_A_CIDR_MASK,
  WGALLOWEDIP_A_FAMILY,
  WGALLOWEDIP_A_IPADDR,
  WGDEVICE_A_FLAGS,
  WGDEVICE_A_FWMARK,
  WGDEVICE_A_IFNAME,
  WGDEVICE_A_LISTEN_PORT,
  WGDEVICE_A_PEERS,
  WGDEVICE_A_PRIVATE_KEY,
  WGDEVICE_F_REPLACE_PEERS,
  WGPEER_A_ALLOWEDIPS,
  WGPEER_A_ENDPOINT,
  WGPEER_A_FLAGS,
  WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
  WGPEER_A_PRESHARED_KEY,
  WGPEER_A_PUBLIC_KEY,
  WGPEER_F_REMOVE_ME,
  WGPEER_F_REPLACE_ALLOWEDIPS,
  WGPEER_F_UPDATE_ONLY,
  WG_CMD_SET_DEVICE,
  WG_GENL_VERSION,
} from './uapi.js';

/**
 * Default message size. Large enough that the per-message cost vanishes next to the
 * kernel's per-peer work, small enough to stay far below the u16 nest limit.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024;

/** Where each message ends, in peers, so a failure can be reported precisely. */
export interface MessageBoundary {
  /** Peers fully applied once this message (and all before it) is accepted. */
  completedPeers: number;
  /** A peer whose allowed IPs continue in the next message. */
  partialPeer?: number;
}

/**
 * Peer-level progress once the first `completedMessages` of `boundaries` were accepted and the
 * next one (if any) rejected: what a partial failure's `progress` reports.
 */
export function progressAfter(boundaries: MessageBoundary[], totalMessages: number, completedMessages: number): Progress {
  const applied = completedMessages > 0 ? boundaries[completedMessages - 1] : undefined;
  const rejected = boundaries[completedMessages];
  return {
    completedMessages,
    totalMessages,
    appliedPeers: applied?.completedPeers ?? 0,
    partialPeer: applied?.partialPeer,
    uncertainPeers: rejected ? rejected.completedPeers + (rejected.partialPeer !== undefined ? 1 : 0) - (applied?.completedPeers ?? 0) : 0,
  };
}

export interface EncodedSet {
  messages: Buffer[];
  boundaries: MessageBoundary[];
}

const ZERO_KEY = new Uint8Array(32);

/** Writes the endpoint attribute as struct sockaddr_in / sockaddr_in6, in place. */
function writeEndpoint(writer: MessageWriter, endpoint: Endpoint): void {
  if (endpoint.family === 4) {
    const at = writer.attrSpace(WGPEER_A_ENDPOINT, 16); // zero-filled: sin_zero stays 0
    writer.u16At(at, AF_INET);
    writer.u16beAt(at + 2, endpoint.port);
    writer.setAt(at + 4, endpoint.bytes);
    return;
  }
  const at = writer.attrSpace(WGPEER_A_ENDPOINT, 28); // sin6_flowinfo stays 0
  writer.u16At(at, AF_INET6);
  writer.u16beAt(at + 2, endpoint.port);
  writer.setAt(at + 8, endpoint.bytes);
  writer.u32At(at + 24, endpoint.scopeId);
}

function writeAllowedIp(writer: MessageWriter, prefix: Prefix): void {
  const nest = writer.beginNest(0);
  writer.attrU16(WGALLOWEDIP_A_FAMILY, prefix.family === 4 ? AF_INET : AF_INET6);
  writer.attr(WGALLOWEDIP_A_IPADDR, prefix.bytes);
  writer.attrU8(WGALLOWEDIP_A_CIDR_MASK, prefix.length);
  writer.endNest(nest);
}

function peerFlags(peer: NormalizedPeer): number {
  return (peer.remove ? WGPEER_F_REMOVE_ME : 0)
    | (peer.updateOnly ? WGPEER_F_UPDATE_ONLY : 0)
    | (peer.replaceAllowedIps ? WGPEER_F_REPLACE_ALLOWEDIPS : 0);
}

function writePeerHead(writer: MessageWriter, peer: NormalizedPeer): void {
  writer.attr(WGPEER_A_PUBLIC_KEY, peer.publicKey);
  const flags = peerFlags(peer);
  if (flags !== 0) writer.attrU32(WGPEER_A_FLAGS, flags);
  if (peer.presharedKey !== undefined) writer.attr(WGPEER_A_PRESHARED_KEY, peer.presharedKey ?? ZERO_KEY);
  if (peer.endpoint !== undefined) writeEndpoint(writer, peer.endpoint);
  if (peer.persistentKeepalive !== undefined) writer.attrU16(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, peer.persistentKeepalive);
}

/** Bytes a config's encoding needs, about: the writer grows if it needs more. */
function estimateBytes(config: NormalizedConfig): number {
  let bytes = 256;
  for (const peer of config.peers) bytes += 160 + 32 * (peer.allowedIps?.length ?? 0);
  return bytes;
}

/** One SET_DEVICE message and where it ends, in peers. */
export interface EncodedMessage {
  message: Buffer;
  boundary: MessageBoundary;
}

/** Encodes a validated config into SET_DEVICE messages of at most `maxMessageBytes`. */
export function encodeSetDevice(
  family: number,
  interfaceName: string,
  config: NormalizedConfig,
  maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
): EncodedSet {
  const messages: Buffer[] = [];
  const boundaries: MessageBoundary[] = [];
  try {
    for (const { message, boundary } of setDeviceMessages(family, interfaceName, config, maxMessageBytes)) {
      messages.push(message);
      boundaries.push(boundary);
    }
  } catch (error) {
    for (const message of messages) message.fill(0);
    throw error;
  }
  return { messages, boundaries };
}

/**
 * The same messages one at a time, each encoded only when asked for: a pipelined SET sends one
 * batch while the next is being encoded, so that a config of 10^5 peers never exists as ~16 MB
 * of messages at once and its encoding is spread over turns of the event loop. Ending the
 * iteration early (`return()`) wipes the writer; messages already handed out are the caller's.
 */
export function* setDeviceMessages(
  family: number,
  interfaceName: string,
  config: NormalizedConfig,
  maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES,
): Generator<EncodedMessage, void, void> {
  // Sized for what this config needs, not for the largest message: a one-peer install is a
  // couple of hundred bytes, and zeroing 64 KiB twice per install cost more than encoding it.
  const writer = new MessageWriter(Math.min(maxMessageBytes + 1024, estimateBytes(config)));
  // Messages finished while encoding the current peer, handed out once it is done.
  const ready: EncodedMessage[] = [];
  let messageStart = 0;
  let peersNest = -1;

  const startMessage = (first: boolean) => {
    messageStart = beginGenlMessage(writer, family, WG_CMD_SET_DEVICE, WG_GENL_VERSION, NLM_F_REQUEST | NLM_F_ACK);
    writer.attrString(WGDEVICE_A_IFNAME, interfaceName);
    if (first) {
      if (config.privateKey !== undefined) writer.attr(WGDEVICE_A_PRIVATE_KEY, config.privateKey ?? ZERO_KEY);
      if (config.listenPort !== undefined) writer.attrU16(WGDEVICE_A_LISTEN_PORT, config.listenPort);
      if (config.fwmark !== undefined) writer.attrU32(WGDEVICE_A_FWMARK, config.fwmark);
      if (config.replacePeers) writer.attrU32(WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
    }
    peersNest = -1;
  };
  const finishMessage = (boundary: MessageBoundary, last = false) => {
    if (peersNest !== -1) writer.endNest(peersNest);
    endMessage(writer, messageStart);
    if (last) {
      ready.push({ message: writer.release(), boundary }); // the writer's own bytes: nothing copied
      return;
    }
    ready.push({ message: writer.take(), boundary });
    writer.truncate(0);
  };
  const fits = () => writer.size <= maxMessageBytes;

  try {
    startMessage(true);
    for (let index = 0; index < config.peers.length; index++) {
      const peer = config.peers[index]!;
      if (peersNest === -1) peersNest = writer.beginNest(WGDEVICE_A_PEERS);
      const begin = writer.size;
      const hasAllowedIps = peer.allowedIps !== undefined && peer.allowedIps.length > 0;
      let peerNest = writer.beginNest(0);
      writePeerHead(writer, peer);
      let allowedNest = hasAllowedIps ? writer.beginNest(WGPEER_A_ALLOWEDIPS) : -1;
      const othersInMessage = begin > peersNest + NLA_HDRLEN;
      if (!fits() && othersInMessage) {
        // The peer's head does not fit behind the peers already here: start it afresh.
        writer.truncate(begin);
        finishMessage({ completedPeers: index });
        startMessage(false);
        peersNest = writer.beginNest(WGDEVICE_A_PEERS);
        peerNest = writer.beginNest(0);
        writePeerHead(writer, peer);
        allowedNest = hasAllowedIps ? writer.beginNest(WGPEER_A_ALLOWEDIPS) : -1;
      }
      if (hasAllowedIps && peer.allowedIps) {
        for (const prefix of peer.allowedIps) {
          const before = writer.size;
          writeAllowedIp(writer, prefix);
          if (fits()) continue;
          // Close this part of the peer and continue it in a new message.
          writer.truncate(before);
          writer.endNest(allowedNest);
          writer.endNest(peerNest);
          finishMessage({ completedPeers: index, partialPeer: index });
          startMessage(false);
          peersNest = writer.beginNest(WGDEVICE_A_PEERS);
          peerNest = writer.beginNest(0);
          writer.attr(WGPEER_A_PUBLIC_KEY, peer.publicKey);
          if (peer.updateOnly) writer.attrU32(WGPEER_A_FLAGS, WGPEER_F_UPDATE_ONLY);
          allowedNest = writer.beginNest(WGPEER_A_ALLOWEDIPS);
          writeAllowedIp(writer, prefix);
        }
        writer.endNest(allowedNest);
      }
      writer.endNest(peerNest);
      while (ready.length > 0) yield ready.shift()!;
    }
    finishMessage({ completedPeers: config.peers.length }, true);
    yield ready.shift()!;
  } finally {
    // Messages finished but not handed out (the caller stopped early) are wiped with the writer.
    for (const { message } of ready) message.fill(0);
    writer.wipe();
  }
}
