import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MessageWriter, NetlinkDecodeError, align4, attributes, readString } from '../../../lib/netlink/attributes.js';
import { NLMSG_ERROR, NLM_F_ACK_TLVS } from '../../../lib/netlink/constants.js';
import { decodeAck, messagesIn } from '../../../lib/netlink/message.js';
import { policed } from '../../../lib/netlink/policy.js';
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

describe('align4 and the echoed request length (issue 8, item 10)', () => {
  it('rounds up with unsigned arithmetic over the whole u32 range', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 16, 17].map(align4), [0, 4, 4, 4, 4, 8, 16, 20]);
    assert.equal(align4(0x7ffffffd), 0x80000000);
    assert.equal(align4(0x80000000), 0x80000000, 'positive, not -2147483648');
    assert.equal(align4(0xfffffffc), 0xfffffffc);
    assert.equal(align4(0xfffffffd), 0x100000000, 'does not wrap to 0');
    assert.throws(() => align4(-1), RangeError);
    assert.throws(() => align4(1.5), RangeError);
  });

  /** An uncapped NLMSG_ERROR whose echoed header claims `echoed` bytes, then an ext-ack message. */
  function uncappedError(echoed: number): Buffer {
    const w = new MessageWriter(128);
    const start = w.space(16);
    w.u16At(start + 4, NLMSG_ERROR);
    w.u16At(start + 6, NLM_F_ACK_TLVS);
    const body = w.space(4 + 16);
    w.u32At(body, (-22) >>> 0);
    w.u32At(body + 4, echoed);
    w.attrString(1, 'Attribute failed policy validation');
    w.u32At(start, w.size - start);
    return w.take();
  }

  it('reads the extended ack after an echoed request of a sane length', () => {
    const [message] = [...messagesIn(uncappedError(16))];
    assert.deepEqual(decodeAck(message!), { errno: 22, kernelMessage: 'Attribute failed policy validation' });
  });

  it('refuses an echoed length beyond the payload (0x80000000 used to slice from the tail)', () => {
    for (const echoed of [0x80000000, 0xfffffffd, 200, 15]) {
      const [message] = [...messagesIn(uncappedError(echoed))];
      assert.throws(() => decodeAck(message!), (e: unknown) => e instanceof NetlinkDecodeError && /echoes a request of/.test(e.message), String(echoed));
    }
  });
});

describe('attribute policies (issue 8, item 9)', () => {
  const policy = { name: 'TEST_A', rules: { 1: { kind: 'u16' }, 2: { kind: 'binary', length: 32 }, 3: { kind: 'string', max: 16 }, 4: { kind: 'binary', min: 16 } } } as const;
  const write = (build: (w: MessageWriter) => void) => {
    const w = new MessageWriter(64);
    build(w);
    return w.take();
  };

  it('passes values of the lengths in the policy, and types it does not name', () => {
    const data = write((w) => {
      w.attrU16(1, 7);
      w.attr(2, new Uint8Array(32));
      w.attrString(3, 'wg0');
      w.attr(4, new Uint8Array(28));
      w.attr(9, new Uint8Array(3)); // unknown: newer kernels add attributes
    });
    assert.deepEqual([...policed(data, policy)].map((a) => a.type), [1, 2, 3, 4, 9]);
  });

  it('refuses each wrong length with a NetlinkDecodeError naming type and length, never the value', () => {
    const cases: Array<[(w: MessageWriter) => void, RegExp]> = [
      [(w) => w.attrU8(1, 7), /TEST_A attribute 1 has 1 bytes; expected 2 bytes \(u16\)/],
      [(w) => w.attr(2, new Uint8Array(31).fill(0xab)), /attribute 2 has 31 bytes; expected 32 bytes/],
      [(w) => w.attr(3, new Uint8Array(0)), /attribute 3 has 0 bytes; expected a string of 1 to 16 bytes/],
      [(w) => w.attrString(3, 'x'.repeat(16)), /attribute 3 has 17 bytes/],
      [(w) => w.attr(4, new Uint8Array(15)), /attribute 4 has 15 bytes; expected at least 16 bytes/],
    ];
    for (const [build, pattern] of cases) {
      assert.throws(() => [...policed(write(build), policy)], (e: unknown) => e instanceof NetlinkDecodeError && pattern.test(e.message) && !/ab/.test(e.message));
    }
  });
});
