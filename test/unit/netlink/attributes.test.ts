import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageWriter, NetlinkDecodeError, attributes, readString } from '../../../lib/netlink/attributes.js';
import { decodeAck, messagesIn } from '../../../lib/netlink/message.js';
import { errorReply } from '../../support/kernel-replies.js';

describe('netlink attributes', () => {
  it('writes aligned TLVs and nests that read back', () => {
    const w = new MessageWriter(8); // grows
    w.attrString(1, 'wg0');
    const nest = w.beginNest(2);
    w.attrU16(3, 0xbeef);
    w.attrU8(4, 7);
    w.endNest(nest);
    const bytes = w.take();
    assert.equal(bytes.length % 4, 0);
    const [name, nested] = [...attributes(bytes)];
    assert.equal(name!.type, 1);
    assert.equal(readString(name!.value), 'wg0');
    assert.equal(nested!.type, 2, 'NLA_F_NESTED is masked off the type');
    assert.equal(bytes.readUInt16LE(8 + 2), 0x8002, 'the nest header carries NLA_F_NESTED on the wire');
    const inner = [...attributes(nested!.value)];
    assert.deepEqual(inner.map((a) => a.type), [3, 4]);
    assert.equal(inner[0]!.value.readUInt16LE(0), 0xbeef);
  });

  it('refuses a nest larger than a u16 length can describe', () => {
    const w = new MessageWriter();
    const nest = w.beginNest(1);
    for (let i = 0; i < 3; i++) w.attr(2, new Uint8Array(30_000));
    assert.throws(() => w.endNest(nest), /exceeds the 65535-byte netlink limit/);
    assert.throws(() => w.attr(3, new Uint8Array(70_000)), /exceeds the 65535-byte netlink limit/);
  });

  it('wipes its backing store', () => {
    const w = new MessageWriter(64);
    w.attr(1, new Uint8Array(32).fill(0xaa));
    w.wipe();
    assert.equal(w.size, 0);
    assert.equal((w as unknown as { buffer: Buffer }).buffer.every((b) => b === 0), true);
  });

  it('throws a typed decode error on truncated attributes and messages, never reads past the end', () => {
    assert.throws(() => [...attributes(Buffer.from([0x08, 0x00, 0x01, 0x00, 0x01]))], NetlinkDecodeError);
    assert.throws(() => [...attributes(Buffer.from([0x02, 0x00, 0x01, 0x00]))], NetlinkDecodeError);
    const message = errorReply(19);
    assert.throws(() => [...messagesIn(message.subarray(0, message.length - 4))], NetlinkDecodeError);
    const [m] = [...messagesIn(message)];
    assert.throws(() => decodeAck({ ...m!, payload: m!.payload.subarray(0, 10) }), NetlinkDecodeError);
  });
});
