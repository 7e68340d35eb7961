import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { encodeSetDevice } from '../../../lib/wireguard/encode.js';
import { validateConfig } from '../../../lib/wireguard/validate.js';
import type { DeviceConfig } from '../../../lib/wireguard/types.js';
import { genlAttributes } from '../../../lib/netlink/genl.js';
import { messagesIn } from '../../../lib/netlink/message.js';
import * as uapi from '../../../lib/wireguard/uapi.js';
import { KernelModel } from '../../support/kernel-model.js';
import { key } from '../../support/keys.js';

const FAMILY = 0x1b;

function encode(config: DeviceConfig, max = 32 * 1024, existing?: KernelModel) {
  const normalized = validateConfig(config, undefined);
  const encoded = encodeSetDevice(FAMILY, 'wg-test', normalized, max);
  const model = existing ?? new KernelModel();
  for (const m of encoded.messages) model.apply(m);
  return { ...encoded, model };
}

function ipv4(i: number, j: number) {
  return `10.${i}.${j >> 8}.${j & 0xff}/32`;
}

function topLevelAttributes(message: Buffer): number[] {
  const [msg] = [...messagesIn(message)];
  return [...genlAttributes(msg!.payload)].map((a) => a.type);
}

describe('SET_DEVICE encoding split by size', () => {
  it('fits a small config in one message with every device field', () => {
    const { messages, model } = encode({
      privateKey: key(0, 'dev'),
      listenPort: 51820,
      fwmark: 7,
      replacePeers: true,
      peers: [{ publicKey: key(1), endpoint: '192.0.2.7:40001', persistentKeepalive: 25, allowedIps: ['10.0.0.7/32', 'fd00::7/128'] }],
    });
    assert.equal(messages.length, 1);
    assert.deepEqual(topLevelAttributes(messages[0]!), [
      uapi.WGDEVICE_A_IFNAME, uapi.WGDEVICE_A_PRIVATE_KEY, uapi.WGDEVICE_A_LISTEN_PORT, uapi.WGDEVICE_A_FWMARK,
      uapi.WGDEVICE_A_FLAGS, uapi.WGDEVICE_A_PEERS,
    ]);
    assert.equal(model.listenPort, 51820);
    assert.equal(model.fwmark, 7);
    assert.deepEqual(model.peers.get(key(1))?.allowedIps, ['10.0.0.7/32', 'fd00::7/128']);
    assert.equal(model.peers.get(key(1))?.keepalive, 25);
  });

  it('splits 40 peers x 52 allowed IPs so that every message fits and the effect is the same', () => {
    const peers = Array.from({ length: 40 }, (_, i) => ({
      publicKey: key(i),
      replaceAllowedIps: true,
      allowedIps: Array.from({ length: 52 }, (_, j) => ipv4(i, j)),
    }));
    const max = 1024;
    const { messages, boundaries, model } = encode({ replacePeers: true, listenPort: 1, peers }, max);
    assert.ok(messages.length > 40, `expected many messages, got ${messages.length}`);
    for (const m of messages) assert.ok(m.length <= max, `message of ${m.length} bytes exceeds ${max}`);
    // Device fields and REPLACE_PEERS only in the first message.
    for (const m of messages.slice(1)) {
      const attrs = topLevelAttributes(m);
      assert.deepEqual(attrs, [uapi.WGDEVICE_A_IFNAME, uapi.WGDEVICE_A_PEERS]);
    }
    assert.equal(model.peers.size, 40);
    for (let i = 0; i < 40; i++) {
      assert.deepEqual(model.peers.get(key(i))?.allowedIps, Array.from({ length: 52 }, (_, j) => ipv4(i, j)));
    }
    assert.equal(boundaries.at(-1)?.completedPeers, 40);
    assert.ok(boundaries.some((b) => b.partialPeer !== undefined));
  });

  it('splits one peer with 130,560 allowed IPs at the default size', () => {
    const allowedIps = Array.from({ length: 130_560 }, (_, j) => `10.${j >> 16}.${(j >> 8) & 0xff}.${j & 0xff}/32`);
    const { messages, model } = encode({ peers: [{ publicKey: key(1), allowedIps }] });
    assert.ok(messages.length > 1);
    for (const m of messages) assert.ok(m.length <= 32 * 1024);
    assert.equal(model.peers.get(key(1))?.allowedIps.length, 130_560);
  });

  it('never creates an update-only peer through a continuation message', () => {
    const allowedIps = Array.from({ length: 300 }, (_, j) => ipv4(1, j));
    const { messages, model } = encode({ peers: [{ publicKey: key(1), updateOnly: true, allowedIps }] }, 1024);
    assert.ok(messages.length > 1);
    assert.equal(model.peers.size, 0, 'the continuation must carry WGPEER_F_UPDATE_ONLY too');
  });

  it('does not repeat replace-allowed-ips in a continuation (it would drop the IPs already sent)', () => {
    const existing = new KernelModel();
    existing.peers.set(key(1), { allowedIps: ['192.168.0.0/16'] });
    const allowedIps = Array.from({ length: 300 }, (_, j) => ipv4(1, j));
    const { model } = encode({ peers: [{ publicKey: key(1), replaceAllowedIps: true, allowedIps }] }, 1024, existing);
    assert.deepEqual(model.peers.get(key(1))?.allowedIps, allowedIps);
  });

  it('puts 10,000 peers in a few hundred messages, not 10,000', () => {
    const peers = Array.from({ length: 10_000 }, (_, i) => ({ publicKey: key(i), allowedIps: [ipv4(0, i)] }));
    const { messages, model } = encode({ peers });
    assert.ok(messages.length < 200, `${messages.length} messages`);
    assert.equal(model.peers.size, 10_000);
  });

  it('clears keys with zeros and leaves undefined fields out', () => {
    const { messages, model } = encode({ privateKey: null, peers: [{ publicKey: key(1), presharedKey: null }] });
    assert.equal(model.privateKey, '00'.repeat(32));
    assert.equal(model.peers.get(key(1))?.presharedKey, '00'.repeat(32));
    assert.deepEqual(topLevelAttributes(messages[0]!), [uapi.WGDEVICE_A_IFNAME, uapi.WGDEVICE_A_PRIVATE_KEY, uapi.WGDEVICE_A_PEERS]);
    const unchanged = encode({ peers: [{ publicKey: key(2) }] }).model.peers.get(key(2));
    assert.deepEqual(unchanged, { allowedIps: [] });
  });

  it('encodes endpoints as struct sockaddr_in / sockaddr_in6', () => {
    const { model } = encode({
      peers: [
        { publicKey: key(1), endpoint: '192.0.2.7:40001' },
        { publicKey: key(2), endpoint: '[fe80::1%3]:51820' },
      ],
    });
    assert.equal(model.peers.get(key(1))?.endpoint, '0200' + '9c41' + 'c0000207' + '00'.repeat(8));
    assert.equal(model.peers.get(key(2))?.endpoint, '0a00' + 'ca6c' + '00000000' + 'fe800000000000000000000000000001' + '03000000');
  });
});
