/** rtnetlink link messages: create a WireGuard interface, delete one, list them. */
import { MessageWriter, NetlinkDecodeError, readString } from '../netlink/attributes.js';
import { policed } from '../netlink/policy.js';
import type { AttributePolicy } from '../netlink/policy.js';
import {
  IFINFOMSG_LEN,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_REQUEST,
  RTM_DELLINK,
  RTM_GETLINK,
  RTM_NEWLINK,
} from '../netlink/constants.js';
import { beginMessage, endMessage } from '../netlink/message.js';
import type { NetlinkMessage } from '../netlink/message.js';

function linkMessage(type: number, flags: number, build: (writer: MessageWriter) => void): Buffer {
  const writer = new MessageWriter(128);
  const start = beginMessage(writer, type, flags);
  writer.space(IFINFOMSG_LEN); // struct ifinfomsg, all zero: family AF_UNSPEC, any index
  build(writer);
  endMessage(writer, start);
  return writer.take();
}

/** RTM_NEWLINK that creates `name` of kind "wireguard", failing with EEXIST if it exists. */
export function encodeCreateLink(name: string, kind: string): Buffer {
  return linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, (writer) => {
    writer.attrString(IFLA_IFNAME, name);
    const info = writer.beginNest(IFLA_LINKINFO);
    writer.attrString(IFLA_INFO_KIND, kind);
    writer.endNest(info);
  });
}

export function encodeDeleteLink(name: string): Buffer {
  return linkMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, (writer) => writer.attrString(IFLA_IFNAME, name));
}

export function encodeListLinks(): Buffer {
  return linkMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, () => undefined);
}

export interface LinkSummary {
  name: string;
  ifindex: number;
  kind: string | undefined;
}

/** The attributes read here, with rtnetlink's policy for them (ifla_policy, ifla_info_policy). */
const LINK_POLICY: AttributePolicy = {
  name: 'IFLA',
  rules: {
    [IFLA_IFNAME]: { kind: 'string', max: 16 }, // IFNAMSIZ, NUL included
    [IFLA_LINKINFO]: { kind: 'nested' },
  },
};
const LINK_INFO_POLICY: AttributePolicy = {
  name: 'IFLA_INFO',
  rules: { [IFLA_INFO_KIND]: { kind: 'string', max: 0xffff } },
};

export function decodeLinks(messages: NetlinkMessage[]): LinkSummary[] {
  const links: LinkSummary[] = [];
  for (const message of messages) {
    if (message.type !== RTM_NEWLINK) continue;
    if (message.payload.length < IFINFOMSG_LEN) {
      throw new NetlinkDecodeError(`RTM_NEWLINK of ${message.payload.length} bytes has no ifinfomsg`);
    }
    const link: LinkSummary = { name: '', ifindex: message.payload.readInt32LE(4), kind: undefined };
    for (const attr of policed(message.payload.subarray(IFINFOMSG_LEN), LINK_POLICY)) {
      if (attr.type === IFLA_IFNAME) link.name = readString(attr.value);
      else if (attr.type === IFLA_LINKINFO) {
        for (const info of policed(attr.value, LINK_INFO_POLICY)) {
          if (info.type === IFLA_INFO_KIND) link.kind = readString(info.value);
        }
      }
    }
    links.push(link);
  }
  return links;
}
