/** Generic netlink: message framing and family-id resolution through the controller. */
import { MessageWriter, attributes, readString } from './attributes.js';
import {
  CTRL_ATTR_FAMILY_ID,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_CMD_GETFAMILY,
  GENL_HDRLEN,
  GENL_ID_CTRL,
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

/** The attributes of a generic-netlink message payload (after the genlmsghdr). */
export function genlAttributes(payload: Buffer) {
  return attributes(payload.subarray(GENL_HDRLEN));
}

/** Asks the controller for a family's numeric id; ENOENT when the family is not registered. */
export async function resolveFamily(connection: NetlinkConnection, name: string, operation: string): Promise<number> {
  const writer = new MessageWriter(64);
  const start = beginGenlMessage(writer, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_REQUEST | NLM_F_ACK);
  writer.attrString(CTRL_ATTR_FAMILY_NAME, name);
  writer.u32At(start, writer.size - start);
  const { messages } = await connection.request([writer.take()], { operation });
  for (const message of messages) {
    for (const attr of genlAttributes(message.payload)) {
      if (attr.type === CTRL_ATTR_FAMILY_ID) return attr.value.readUInt16LE(0);
    }
  }
  throw new Error(`generic netlink controller answered without an id for family ${readString(Buffer.from(name))}`);
}
