/** Requests the kernel would drop without an answer are refused before anything is sent. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../../lib/index.js';
import {
  NETLINK_GENERIC, NETLINK_ROUTE, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST,
  RTM_GETLINK, RTM_NEWLINK,
} from '../../../lib/netlink/constants.js';
import { NetlinkConnection } from '../../../lib/netlink/connection.js';
import { checkRequests } from '../../../lib/netlink/request.js';
import { encodeCreateLink, encodeDeleteLink, encodeListLinks } from '../../../lib/rtnetlink/link.js';
import { ReplayTransport } from '../../support/replay-transport.js';

function header(type: number, flags: number, length = 20, size = length): Buffer {
  const message = Buffer.alloc(size);
  message.writeUInt32LE(length, 0);
  message.writeUInt16LE(type, 4);
  message.writeUInt16LE(flags, 6);
  return message;
}

const refused = (messages: Buffer[], protocol: number, pattern: RegExp) =>
  assert.throws(() => checkRequests(messages, protocol), (e: unknown) => e instanceof ValidationError && pattern.test(e.message));

describe('checkRequests: will the kernel answer?', () => {
  it('accepts what the library sends: acked requests and dumps', () => {
    checkRequests([encodeCreateLink('wg0', 'wireguard'), encodeDeleteLink('wg0'), encodeListLinks()], NETLINK_ROUTE);
    checkRequests([header(0x1e, NLM_F_REQUEST | NLM_F_ACK), header(0x1e, NLM_F_REQUEST | NLM_F_DUMP)], NETLINK_GENERIC);
  });

  it('refuses an nlmsg_len that does not match the buffer, either way', () => {
    refused([header(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 24, 20)], NETLINK_ROUTE, /request.messages\[0\]: nlmsg_len 24 does not match the 20-byte message/);
    refused([encodeListLinks(), header(RTM_GETLINK, NLM_F_REQUEST | NLM_F_ACK, 20, 24)], NETLINK_ROUTE, /request.messages\[1\]: nlmsg_len 20/);
    refused([Buffer.alloc(8)], NETLINK_ROUTE, /shorter than a netlink header/);
  });

  it('refuses a message without NLM_F_REQUEST, and a control-message type', () => {
    refused([header(RTM_GETLINK, NLM_F_DUMP)], NETLINK_ROUTE, /no NLM_F_REQUEST/);
    refused([header(3, NLM_F_REQUEST | NLM_F_ACK)], NETLINK_GENERIC, /control message type/);
  });

  it('refuses a request that is neither acked nor a dump', () => {
    refused([header(0x1e, NLM_F_REQUEST)], NETLINK_GENERIC, /neither NLM_F_ACK nor a dump/);
    refused([header(0x1e, NLM_F_REQUEST | NLM_F_EXCL)], NETLINK_GENERIC, /neither NLM_F_ACK nor a dump/);
  });

  it('refuses REPLACE|EXCL without ACK on a non-GET rtnetlink type (the dump bits, but no dump)', () => {
    assert.equal(NLM_F_REPLACE | NLM_F_EXCL, NLM_F_DUMP);
    refused([header(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | NLM_F_EXCL)], NETLINK_ROUTE, /not a GET, so not a dump/);
    // On generic netlink the same bits are a dump request, answered (DONE, or EOPNOTSUPP).
    checkRequests([header(0x1e, NLM_F_REQUEST | NLM_F_REPLACE | NLM_F_EXCL)], NETLINK_GENERIC);
    checkRequests([header(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_EXCL)], NETLINK_ROUTE);
  });

  it('the connection refuses such a request with nothing sent, and sends the next good one', async () => {
    const transport = new ReplayTransport([{ replies: [] }]);
    const connection = new NetlinkConnection(() => transport, NETLINK_ROUTE);
    await assert.rejects(connection.request([header(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_DUMP)], { operation: 'createDevice' }), ValidationError);
    assert.equal(transport.sent.length, 0);
    await connection.request([encodeListLinks()], { operation: 'listDevices' });
    assert.equal(transport.sent.length, 1);
  });
});
