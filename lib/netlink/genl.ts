/** Generic netlink: message framing and family-id resolution through the controller. */
import { MessageWriter, NetlinkDecodeError, attributes } from './attributes.js';
import { policed } from './policy.js';
import type { AttributePolicy } from './policy.js';
import {
  CTRL_ATTR_FAMILY_ID,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_CMD_GETFAMILY,
  GENL_HDRLEN,
  GENL_ID_CTRL,
  NLMSG_MIN_TYPE,
  NLM_F_ACK,
  NLM_F_REQUEST,
} from './constants.js';
import { beginMessage } from './message.js';
import type { NetlinkConnection } from './connection.js';

/** Starts a generic-netlink message (nlmsghdr + genlmsghdr); finish it with `endMessage`. */
export function beginGenlMessage(writer: MessageWriter, family: number, command: number, version: number, flags: number): number {
  const start = beginMessage(writer, family, flags);
  const genl = writer.space(GENL_HDRLEN);
  writer.u8At(genl, command);
  writer.u8At(genl + 1, version);
  return start;
}

/** The attribute bytes of a generic-netlink message payload (after the genlmsghdr). */
export function genlPayload(payload: Buffer): Buffer {
  if (payload.length < GENL_HDRLEN) throw new NetlinkDecodeError(`generic netlink message of ${payload.length} bytes has no genlmsghdr`);
  return payload.subarray(GENL_HDRLEN);
}

/** The attributes of a generic-netlink message payload (after the genlmsghdr). */
export function genlAttributes(payload: Buffer) {
  return attributes(genlPayload(payload));
}

const CONTROLLER_POLICY: AttributePolicy = {
  name: 'CTRL_ATTR',
  rules: {
    [CTRL_ATTR_FAMILY_ID]: { kind: 'u16' },
    [CTRL_ATTR_FAMILY_NAME]: { kind: 'string', max: 16 }, // GENL_NAMSIZ
  },
};

/** Asks the controller for a family's numeric id; ENOENT when the family is not registered. */
export async function resolveFamily(connection: NetlinkConnection, name: string, operation: string): Promise<number> {
  const writer = new MessageWriter(64);
  const start = beginGenlMessage(writer, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_REQUEST | NLM_F_ACK);
  writer.attrString(CTRL_ATTR_FAMILY_NAME, name);
  writer.u32At(start, writer.size - start);
  const { messages } = await connection.request([writer.take()], { operation });
  try {
    for (const message of messages) {
      for (const attr of policed(genlPayload(message.payload), CONTROLLER_POLICY)) {
        if (attr.type !== CTRL_ATTR_FAMILY_ID) continue;
        const id = attr.value.readUInt16LE(0);
        // Below NLMSG_MIN_TYPE an id would be a control message type, which the kernel skips.
        if (id < NLMSG_MIN_TYPE) throw new NetlinkDecodeError(`the generic netlink controller answered family id ${id} for "${name}"`);
        return id;
      }
    }
    throw new NetlinkDecodeError(`the generic netlink controller answered without an id for family "${name}"`);
  } catch (error) {
    throw error instanceof NetlinkDecodeError ? NetlinkDecodeError.inContext(error, { operation }) : error;
  }
}
