/**
 * The GET_DEVICE decoder walks attributes by offset and runs in slices (issue 9): it must
 * decode exactly what the generator-based decoder it replaced decoded, fail exactly where it
 * failed, let the event loop run while a large dump decodes, and give the device and its
 * private key from one dump.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { NetlinkDecodeError, ValidationError, WireGuard } from '../../../lib/index.js';
import { CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, GENL_ID_CTRL } from '../../../lib/netlink/constants.js';
import { messagesIn } from '../../../lib/netlink/message.js';
import type { NetlinkMessage } from '../../../lib/netlink/message.js';
import type { ExchangeResult, NetlinkTransport } from '../../../lib/netlink/transport.js';
import { SliceClock } from '../../../lib/slices.js';
import { decodeDevice, decodeDeviceInSlices } from '../../../lib/wireguard/decode.js';
import { ack, concat, genlReply } from '../../support/kernel-replies.js';
import { privateKeyBytes } from '../../support/keys.js';
import { LARGE_DUMP_FAMILY, largeDump, largeDumpKey } from '../../support/large-dump.js';
import { referenceDecodeDevice } from '../../support/reference-device-decoder.js';
import { restamp } from '../../support/replay-transport.js';

const familyReply = concat(genlReply(GENL_ID_CTRL, 1, (w) => {
  w.attrU16(CTRL_ATTR_FAMILY_ID, LARGE_DUMP_FAMILY);
  w.attrString(CTRL_ATTR_FAMILY_NAME, 'wireguard');
}, 0), ack());

/** Answers the family lookup, then every GET with `dump` and every SET with an ack; counts both. */
class DumpingKernel implements NetlinkTransport {
  dumps = 0;
  sets = 0;
  constructor(private readonly dump: Buffer[]) {}
  async exchange(messages: Buffer[]): Promise<ExchangeResult> {
    const request = messages[0]!;
    const seq = request.readUInt32LE(8);
    const command = request[16];
    let replies: Buffer[];
    if (request.readUInt16LE(4) === GENL_ID_CTRL) replies = [Buffer.from(familyReply)];
    else if (command === 0 /* WG_CMD_GET_DEVICE */) {
      this.dumps++;
      replies = this.dump.map((d) => Buffer.from(d));
    } else {
      this.sets++;
      replies = messages.map(() => ack());
    }
    for (const reply of replies) restamp(reply, seq);
    return { replies, completed: messages.length };
  }
  close(): void {}
}

function messagesOf(datagrams: Buffer[]): NetlinkMessage[] {
  return datagrams.flatMap((d) => [...messagesIn(d)]).filter((m) => m.type === LARGE_DUMP_FAMILY);
}

const copies = (datagrams: Buffer[]) => datagrams.map((d) => Buffer.from(d));

/** The decoder's outcome: the device, or the error's class and message. */
function outcome(decode: () => unknown): unknown {
  try {
    return { device: decode() };
  } catch (error) {
    return { error: (error as Error).name, message: (error as Error).message };
  }
}

describe('GET_DEVICE decoding by offset (issue 9)', () => {
  it('decodes a synthetic dump of 2,000 peers exactly as the previous decoder did', () => {
    const dump = largeDump(2000, { handshakeAt: (i) => (i % 7 === 0 ? 1_700_000_000 + i : null) });
    const device = decodeDevice(messagesOf(copies(dump)));
    assert.deepEqual(device, referenceDecodeDevice(messagesOf(copies(dump))));
    assert.equal(device.peers.length, 2000);
    assert.equal(device.peers[1999]!.publicKey, largeDumpKey(1999).toString('base64'));
    assert.deepEqual(device.peers[258]!.allowedIps, ['10.0.1.2/32']);
    assert.equal(device.peers[7]!.lastHandshake?.getTime(), 1_700_000_007_000);
    assert.equal(device.peers[3]!.endpoint, '192.0.2.3:40003');
  });

  it('fails exactly where the previous decoder failed, with the same message, on mutated replies (2,000 cases)', () => {
    const recorded = JSON.parse(readFileSync(new URL('../../fixtures/netlink/get-device-multipart.json', import.meta.url), 'utf8')) as { exchanges: Array<{ replies: string[] }> };
    const sources = [recorded.exchanges[1]!.replies.map((hex) => Buffer.from(hex, 'hex')), largeDump(40)];
    let failures = 0;
    fc.assert(fc.property(
      fc.nat(1), fc.nat(), fc.array(fc.record({ at: fc.nat(), value: fc.nat(0xffff), wide: fc.boolean() }), { minLength: 1, maxLength: 3 }),
      (source, which, mutations) => {
        const datagrams = copies(sources[source]!);
        const target = datagrams[which % datagrams.length]!;
        for (const m of mutations) {
          const at = m.at % Math.max(1, target.length - 1);
          if (m.wide && at + 2 <= target.length) target.writeUInt16LE(m.value, at);
          else target[at] = m.value & 0xff;
        }
        let messages: NetlinkMessage[];
        try {
          messages = messagesOf(datagrams);
        } catch {
          return; // the connection refuses such a datagram before any decoder sees it
        }
        const theirs = outcome(() => referenceDecodeDevice(messagesOf(copies(datagrams))));
        const ours = outcome(() => decodeDevice(messages));
        if ('error' in (ours as object)) failures++;
        assert.deepEqual(ours, theirs);
      },
    ), { seed: 0x9e3779b9, numRuns: 2000 });
    assert.ok(failures > 200, `only ${failures} of the mutations reached a decode error`);
  });

  it('decodes in slices: pauses between them, and the same device as in one pass', async () => {
    const dump = largeDump(20_000);
    const clock = new SliceClock(1);
    const sliced = await decodeDeviceInSlices(messagesOf(copies(dump)), { clock });
    assert.ok(clock.pauses >= 3, `${clock.pauses} pauses`);
    assert.deepEqual(sliced, decodeDevice(messagesOf(copies(dump))));
  });

  it('a small dump decodes within its first slice, with no pause', async () => {
    const clock = new SliceClock(1000);
    const device = await decodeDeviceInSlices(messagesOf(largeDump(10)), { clock });
    assert.equal(device.peers.length, 10);
    assert.equal(clock.pauses, 0);
  });

  it('a decode error in a later slice rejects with NetlinkDecodeError', async () => {
    const dump = largeDump(5000);
    const last = dump[dump.length - 1]!;
    last.writeUInt16LE(0xfff0, 16 + 4); // the first device attribute of the last message overruns
    await assert.rejects(decodeDeviceInSlices(messagesOf(dump), { clock: new SliceClock(0) }), NetlinkDecodeError);
  });

  it('getDevice of 100,000 peers lets the event loop run: longest stall far below one pass', async () => {
    const dump = largeDump(100_000);
    const t0 = performance.now();
    decodeDevice(messagesOf(copies(dump)));
    const onePass = performance.now() - t0;
    const wg = new WireGuard({ transports: { generic: new DumpingKernel(dump) } });
    await wg.getDevice('wg0'); // the family lookup, and a first decode that warms up
    let longest = 0;
    let last = performance.now();
    let probing = true;
    const probe = () => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      last = now;
      if (probing) setImmediate(probe);
    };
    setImmediate(probe);
    const device = await wg.getDevice('wg0');
    probing = false;
    assert.equal(device.peers.length, 100_000);
    // The slices are 8 ms; garbage collection of 10^5 fresh peers adds to some of them.
    assert.ok(longest < Math.max(60, onePass / 3), `longest stall ${longest.toFixed(1)} ms (one pass: ${onePass.toFixed(1)} ms)`);
    await wg.close();
  });
});

describe('getDevice(name, { privateKey: true }) (issue 9)', () => {
  const privateKey = privateKeyBytes(5);

  it('returns the device and the private key as a KeyObject from one dump, and wipes the replies', async () => {
    const kernel = new DumpingKernel(largeDump(300, { privateKey }));
    const seen: Buffer[] = [];
    const exchange = kernel.exchange.bind(kernel);
    kernel.exchange = async (m) => {
      const result = await exchange(m);
      seen.push(...result.replies);
      return result;
    };
    const wg = new WireGuard({ transports: { generic: kernel } });
    const device = await wg.getDevice('wg0', { privateKey: true });
    assert.equal(kernel.dumps, 1);
    assert.equal(device.peers.length, 300);
    assert.ok(device.privateKey instanceof KeyObject);
    assert.equal(device.privateKey.asymmetricKeyType, 'x25519');
    const raw = createPublicKey(device.privateKey).export({ format: 'der', type: 'spki' });
    assert.ok(raw.length > 0);
    assert.equal(Buffer.concat(seen).indexOf(Buffer.from(privateKey)), -1, 'private key bytes left in a reply buffer');
    await wg.close();
  });

  it('privateKey is null on an interface without one; without the option there is no privateKey field', async () => {
    const wg = new WireGuard({ transports: { generic: new DumpingKernel(largeDump(2)) } });
    assert.equal((await wg.getDevice('wg0', { privateKey: true })).privateKey, null);
    assert.ok(!('privateKey' in (await wg.getDevice('wg0'))));
    assert.ok(!('privateKey' in (await wg.getDevice('wg0', { privateKey: false }))));
    await wg.close();
  });

  it('getPrivateKey still reads the key, in one dump', async () => {
    const kernel = new DumpingKernel(largeDump(3, { privateKey }));
    const wg = new WireGuard({ transports: { generic: kernel } });
    const key = await wg.getPrivateKey('wg0');
    assert.ok(key instanceof KeyObject);
    assert.equal(kernel.dumps, 1);
    await wg.close();
  });

  it('refuses bad options with a ValidationError naming them, before any exchange', async () => {
    const kernel = new DumpingKernel(largeDump(1));
    const wg = new WireGuard({ transports: { generic: kernel } });
    await assert.rejects(wg.getDevice('wg0', { privateKey: 'yes' } as never), (e: unknown) => e instanceof ValidationError && e.path === 'options.privateKey');
    await assert.rejects(wg.getDevice('wg0', { privatekey: true } as never), (e: unknown) => e instanceof ValidationError && e.path === 'options.privatekey');
    await assert.rejects(wg.getDevice('wg0', null as never), (e: unknown) => e instanceof ValidationError && e.path === 'options');
    assert.equal(kernel.dumps, 0);
    await wg.close();
  });

  it('a dump whose decoding ends after a key change does not bring back the old key', async () => {
    // The interface's own key guards setDevice from a peer equal to it. A key set while a large
    // dump decodes in slices must stay the remembered one when that decoding ends.
    const kernel = new DumpingKernel(largeDump(30_000, { privateKey }));
    const wg = new WireGuard({ transports: { generic: kernel } });
    const next = privateKeyBytes(6);
    const nextPublic = createPublicKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), next]), format: 'der', type: 'pkcs8' })
      .export({ format: 'der', type: 'spki' }).subarray(12).toString('base64');
    const reading = wg.getDevice('wg0');
    let decoded = false;
    void reading.then(() => { decoded = true; });
    await wg.setDevice('wg0', { privateKey: Buffer.from(next) });
    assert.equal(decoded, false, 'the dump should still be decoding when the SET returns');
    await reading;
    await assert.rejects(wg.setDevice('wg0', { peers: [{ publicKey: nextPublic }] }), ValidationError);
    await wg.close();
  });
});
