/** The library against bytes a real kernel sent (test/fixtures/netlink/README.md). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WireGuard, WireGuardError, isNotFound } from '../../../lib/index.js';
import { messagesIn } from '../../../lib/netlink/message.js';
import { NLM_F_DUMP_INTR } from '../../../lib/netlink/constants.js';
import { decodeDevice } from '../../../lib/wireguard/decode.js';
import { ReplayTransport } from '../../support/replay-transport.js';
import type { ReplayStep } from '../../support/replay-transport.js';
import { formatPrefix, maskHostBits, parsePrefix } from '../../../lib/net/ip.js';
import type { Prefix } from '../../../lib/net/ip.js';

interface Fixture {
  kernel: string;
  config?: { listenPort: number; fwmark: number; devicePublicKey: string; peers: Array<{ publicKey: string; endpoint?: string; persistentKeepalive?: number; allowedIps?: string[]; presharedKey?: string }> };
  exchanges: Array<{ sent: string[]; replies: string[]; completed: number }>;
}

function load(name: string): Fixture {
  return JSON.parse(readFileSync(new URL(`../../fixtures/netlink/${name}.json`, import.meta.url), 'utf8')) as Fixture;
}

function steps(fixture: Fixture): ReplayStep[] {
  return fixture.exchanges.map((e) => ({ replies: e.replies.map((hex) => Buffer.from(hex, 'hex')), completed: e.completed }));
}

const canonical = (cidr: string) => {
  const p = parsePrefix(cidr) as Prefix;
  maskHostBits(p.bytes, p.length);
  return formatPrefix(p);
};

describe('replaying recorded kernel exchanges', () => {
  it('decodes a multipart dump with a continued peer into exactly the config that was set', async () => {
    const fixture = load('get-device-multipart');
    const replies = fixture.exchanges[1]!.replies.map((hex) => Buffer.from(hex, 'hex'));
    assert.ok(replies.length >= 2, 'the recording spans several datagrams');
    const wg = new WireGuard({ transports: { generic: new ReplayTransport(steps(fixture)) } });
    const device = await wg.getDevice('wg0');
    const config = fixture.config!;
    assert.equal(device.name, 'wg0');
    assert.equal(device.listenPort, config.listenPort);
    assert.equal(device.fwmark, config.fwmark);
    assert.equal(device.publicKey, config.devicePublicKey);
    assert.deepEqual(device.peers.map((p) => p.publicKey), config.peers.map((p) => p.publicKey));
    device.peers.forEach((peer, i) => {
      const expected = config.peers[i]!;
      assert.deepEqual(new Set(peer.allowedIps), new Set((expected.allowedIps ?? []).map(canonical)));
      assert.equal(peer.allowedIps.length, (expected.allowedIps ?? []).length);
      assert.equal(peer.endpoint, expected.endpoint ?? null);
      assert.equal(peer.persistentKeepalive, expected.persistentKeepalive ?? 0);
      assert.equal(peer.hasPresharedKey, expected.presharedKey !== undefined);
    });
  });

  it('the continued peer really is split across datagrams in the recording', () => {
    const fixture = load('get-device-multipart');
    const perDatagram = fixture.exchanges[1]!.replies.map((hex) => {
      const messages = [...messagesIn(Buffer.from(hex, 'hex'))].filter((m) => m.type !== 3);
      return decodeDevice(messages).peers;
    });
    const firstKey = fixture.config!.peers[0]!.publicKey;
    assert.ok(perDatagram.filter((peers) => peers.some((p) => p.publicKey === firstKey)).length >= 2);
  });

  it('maps the recorded ENODEV to the documented not-found error', async () => {
    const wg = new WireGuard({ transports: { generic: new ReplayTransport(steps(load('get-device-enodev'))) } });
    await assert.rejects(wg.getDevice('nope0'), (e: unknown) => isNotFound(e) && (e as WireGuardError).errno === 19);
  });

  it('maps the recorded EOPNOTSUPP to "not a WireGuard interface"', async () => {
    const wg = new WireGuard({ transports: { generic: new ReplayTransport(steps(load('get-device-not-wireguard'))) } });
    await assert.rejects(wg.getDevice('lo'), (e: unknown) => e instanceof WireGuardError && e.code === 'EOPNOTSUPP' && /not a WireGuard interface/.test(e.message));
  });

  it('carries the kernel extended-ack text of a recorded policy rejection', async () => {
    const fixture = load('set-device-extack');
    const family = Buffer.from(fixture.exchanges[0]!.sent[0]!, 'hex').readUInt16LE(4);
    const familyReply = load('get-device-multipart').exchanges[0]!;
    const transport = new ReplayTransport([
      { replies: familyReply.replies.map((h) => Buffer.from(h, 'hex')) },
      { replies: fixture.exchanges[0]!.replies.map((h) => Buffer.from(h, 'hex')), completed: 0 },
    ]);
    const wg = new WireGuard({ transports: { generic: transport } });
    // Drive the connection directly with the recorded (deliberately invalid) request.
    const connection = (wg as unknown as { generic: { request(m: Buffer[], c: object): Promise<unknown> } }).generic;
    await (wg as unknown as { resolveFamily(): Promise<number> }).resolveFamily().then((id) => assert.equal(id, family));
    await assert.rejects(connection.request([Buffer.from(fixture.exchanges[0]!.sent[0]!, 'hex')], { operation: 'setDevice', interface: 'wg0' }), (e: unknown) => {
      assert.ok(e instanceof WireGuardError);
      assert.equal(e.code, 'ERANGE');
      assert.equal(e.kernelMessage, 'binary attribute size out of range');
      return true;
    });
  });

  it('retries a recorded interrupted dump and accepts the clean one after it', async () => {
    const intr = load('get-device-dump-intr');
    const flagged = intr.exchanges[0]!.replies.some((hex) => [...messagesIn(Buffer.from(hex, 'hex'))].some((m) => (m.flags & NLM_F_DUMP_INTR) !== 0));
    assert.ok(flagged, 'the recording carries NLM_F_DUMP_INTR');
    const multipart = load('get-device-multipart');
    const transport = new ReplayTransport([...steps(multipart).slice(0, 1), ...steps(intr), steps(multipart)[1]!]);
    const wg = new WireGuard({ transports: { generic: transport } });
    const device = await wg.getDevice('wg0');
    assert.equal(device.peers.length, 3, 'the result comes from the clean dump, not the interrupted one');
    assert.equal(transport.remaining, 0);
  });
});
