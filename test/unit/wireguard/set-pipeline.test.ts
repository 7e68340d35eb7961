/**
 * A large setDevice goes out as a pipeline (lib/wireguard/set-pipeline.ts): validated in
 * slices, encoded a batch at a time while the kernel applies the batch before, with partial
 * failures still reported exactly. The kernel here is a fake that acknowledges each message it
 * is sent (or refuses the k-th), the way the native transport reports them: it stops at the
 * first rejection and says how many it completed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WireGuard, WireGuardError, ValidationError } from '../../../lib/index.js';
import { CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, GENL_ID_CTRL } from '../../../lib/netlink/constants.js';
import type { ExchangeResult, NetlinkTransport } from '../../../lib/netlink/transport.js';
import { encodeSetDevice } from '../../../lib/wireguard/encode.js';
import { PIPELINE_MIN_PEERS } from '../../../lib/wireguard/set-pipeline.js';
import { validateConfig } from '../../../lib/wireguard/validate.js';
import { ack, concat, errorReply, genlReply } from '../../support/kernel-replies.js';
import { restamp } from '../../support/replay-transport.js';
import { key, keyBytes } from '../../support/keys.js';

const FAMILY = 0x1e;
const PEERS = 3000;

/** Answers the family lookup, then acknowledges SET messages one by one, refusing message `rejectAt` (counted over all exchanges). */
class AckingKernel implements NetlinkTransport {
  /** Messages per SET exchange, in order. */
  readonly exchanges: number[] = [];
  /** Copies of every SET message the kernel accepted or refused, in order. */
  readonly received: Buffer[] = [];
  /** What `ticks` said when the first SET arrived. */
  ticksAtFirstSet: number | undefined;

  /** Fail the n-th SET exchange (0-based) as a system call, after its first message was accepted. */
  failExchange = -1;

  constructor(private readonly rejectAt = -1, private readonly errno = 22, private readonly ticks = () => 0) {}

  async exchange(messages: Buffer[]): Promise<ExchangeResult> {
    const seq = messages[0]!.readUInt32LE(8);
    if (messages[0]!.readUInt16LE(4) === GENL_ID_CTRL) {
      const reply = concat(genlReply(GENL_ID_CTRL, 1, (w) => {
        w.attrU16(CTRL_ATTR_FAMILY_ID, FAMILY);
        w.attrString(CTRL_ATTR_FAMILY_NAME, 'wireguard');
      }, 0), ack());
      restamp(reply, seq);
      return { replies: [reply], completed: 1 };
    }
    this.ticksAtFirstSet ??= this.ticks();
    // The kernel's work takes a while: long enough for JavaScript to encode the next batch.
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (this.exchanges.length === this.failExchange) {
      this.received.push(Buffer.from(messages[0]!));
      this.exchanges.push(1);
      throw Object.assign(new Error('recvmsg failed'), { errno: 105, code: 'ENOBUFS', syscall: 'recvmsg', completed: 1 });
    }
    this.exchanges.push(messages.length);
    const replies: Buffer[] = [];
    let completed = 0;
    for (const message of messages) {
      this.received.push(Buffer.from(message));
      const reply = this.received.length - 1 === this.rejectAt ? errorReply(this.errno, 'no') : ack();
      restamp(reply, message.readUInt32LE(8));
      replies.push(reply);
      if (this.received.length - 1 === this.rejectAt) break;
      completed++;
    }
    return { replies, completed };
  }

  close(): void {}
}

/** Runs `body` with a WireGuard instance over `kernel`, closing it afterwards. */
async function over(kernel: AckingKernel, body: (wg: WireGuard) => Promise<void>): Promise<void> {
  const wg = new WireGuard({ transports: { generic: kernel } });
  try {
    await body(wg);
  } finally {
    await wg.close();
  }
}

function bigConfig(peers = PEERS) {
  return {
    privateKey: key(1, 'device'),
    peers: Array.from({ length: peers }, (_, i) => ({ publicKey: key(i + 10), endpoint: `192.0.2.${i % 250}:${1000 + i}`, allowedIps: [`10.${i >> 8}.${i & 255}.0/24`, `fd00::${i.toString(16)}/128`] })),
  };
}

describe('setDevice of a large config: a pipeline', () => {
  it('sends the same messages, in order, as the one-request encoding, in several exchanges', async () => {
    const kernel = new AckingKernel();
    await over(kernel, async (wg) => {
      const config = bigConfig();
      await wg.setDevice('wg0', config);
      const expected = encodeSetDevice(FAMILY, 'wg0', validateConfig(config, undefined)).messages;
      assert.equal(kernel.received.length, expected.length);
      // Sequence numbers differ (assigned per request); everything else is byte for byte the same.
      kernel.received.forEach((m, i) => {
        const e = expected[i]!;
        assert.equal(m.length, e.length, `message ${i}`);
        assert.ok(m.subarray(12).equals(e.subarray(12)) && m.subarray(0, 8).equals(e.subarray(0, 8)), `message ${i} differs`);
      });
      assert.ok(kernel.exchanges.length > 1, `one exchange of ${kernel.exchanges[0]} messages`);
      assert.equal(kernel.exchanges.reduce((a, b) => a + b, 0), expected.length);
    });
  });

  it('validates a large config in slices: timers run before its first message is sent', async () => {
    let ticks = 0;
    const kernel = new AckingKernel(-1, 22, () => ticks);
    const wg = new WireGuard({ transports: { generic: kernel } });
    const timer = setInterval(() => ticks++, 1);
    try {
      await wg.setDevice('wg0', bigConfig(20_000));
    } finally {
      clearInterval(timer);
      await wg.close();
    }
    // Validated in one piece, the config would reach the kernel in the same task: no timer
    // could run between the call and the first SET.
    assert.ok(kernel.ticksAtFirstSet! > 0, `timer ticks before the first SET: ${kernel.ticksAtFirstSet}`);
    assert.ok(kernel.exchanges.length > 1);
  });

  it('reports progress over the whole config when the kernel refuses a message part-way', async () => {
    const config = bigConfig();
    const expected = encodeSetDevice(FAMILY, 'wg0', validateConfig(config, undefined));
    const rejectAt = Math.floor(expected.messages.length / 2) + 1; // in a later exchange than the first
    const kernel = new AckingKernel(rejectAt);
    await over(kernel, async (wg) => {
      await assert.rejects(wg.setDevice('wg0', config), (e: unknown) => {
        assert.ok(e instanceof WireGuardError, String(e));
        assert.equal(e.code, 'EINVAL');
        assert.equal(e.kernelMessage, 'no');
        assert.deepEqual(e.progress, {
          completedMessages: rejectAt,
          totalMessages: expected.messages.length,
          appliedPeers: expected.boundaries[rejectAt - 1]!.completedPeers,
          partialPeer: expected.boundaries[rejectAt - 1]!.partialPeer,
          uncertainPeers: expected.boundaries[rejectAt]!.completedPeers - expected.boundaries[rejectAt - 1]!.completedPeers,
        });
        return true;
      });
      // Nothing after the rejected message was sent.
      assert.equal(kernel.received.length, rejectAt + 1);
      assert.ok(kernel.exchanges.length > 1);
    });
  });

  it('reports progress over the whole config when a system call fails in a later batch', async () => {
    const config = bigConfig();
    const expected = encodeSetDevice(FAMILY, 'wg0', validateConfig(config, undefined));
    const kernel = new AckingKernel();
    kernel.failExchange = 1;
    await over(kernel, async (wg) => {
      await assert.rejects(wg.setDevice('wg0', config), (e: unknown) => {
        assert.ok(e instanceof WireGuardError, String(e));
        assert.equal(e.code, 'ENOBUFS');
        assert.equal(e.syscall, 'recvmsg');
        const completed = kernel.exchanges[0]! + 1;
        assert.equal(e.progress?.completedMessages, completed);
        assert.equal(e.progress?.totalMessages, expected.messages.length);
        assert.equal(e.progress?.appliedPeers, expected.boundaries[completed - 1]!.completedPeers);
        return true;
      });
      assert.equal(kernel.exchanges.length, 2);
    });
  });

  it('refuses an invalid peer anywhere in the config before sending anything', async () => {
    const kernel = new AckingKernel();
    await over(kernel, async (wg) => {
      const config = bigConfig();
      config.peers[PEERS - 1]!.allowedIps = ['10.0.0.0/33'];
      await assert.rejects(wg.setDevice('wg0', config), (e: unknown) => e instanceof ValidationError && e.path === `config.peers[${PEERS - 1}].allowedIps[0]`);
      const duplicate = bigConfig();
      duplicate.peers[PEERS - 1]!.publicKey = duplicate.peers[3]!.publicKey;
      await assert.rejects(wg.setDevice('wg0', duplicate), /the same public key as config.peers\[3\]/);
      assert.equal(kernel.received.length, 0);
    });
  });

  it('keeps call order: a small call made after a large one reaches the kernel after it', async () => {
    const kernel = new AckingKernel();
    await over(kernel, async (wg) => {
      const large = wg.setDevice('wg0', bigConfig());
      const small = wg.setDevice('wg0', { listenPort: 4242 });
      await Promise.all([large, small]);
      // The last message is the small call's: it names the port, the large one's messages do not.
      const lastExchange = kernel.exchanges[kernel.exchanges.length - 1];
      assert.equal(lastExchange, 1);
      const last = kernel.received[kernel.received.length - 1]!;
      assert.ok(last.length < 100, `last message is ${last.length} bytes`);
    });
  });

  it('takes the one-request path at the threshold and the pipeline above it', async () => {
    const at = new AckingKernel();
    const above = new AckingKernel();
    const wgAt = new WireGuard({ transports: { generic: at } });
    const wgAbove = new WireGuard({ transports: { generic: above } });
    try {
      const peers = (n: number) => ({ privateKey: keyBytes(2, 'device'), peers: bigConfig(n).peers });
      await wgAt.setDevice('wg0', peers(PIPELINE_MIN_PEERS));
      await wgAbove.setDevice('wg0', peers(PIPELINE_MIN_PEERS + 1));
      assert.equal(at.exchanges.length, 1);
      assert.ok(above.exchanges.length >= 1);
      assert.equal(above.received.length, encodeSetDevice(FAMILY, 'wg0', validateConfig(peers(PIPELINE_MIN_PEERS + 1), undefined)).messages.length);
    } finally {
      await wgAt.close();
      await wgAbove.close();
    }
  });
});
