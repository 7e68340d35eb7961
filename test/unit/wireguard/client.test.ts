import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import {
  CaptureError, NetlinkDecodeError, SystemError, ValidationError, WireGuard, WireGuardError, isCaptureNotFound, isNotFound,
} from '../../../lib/index.js';
import { CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, GENL_ID_CTRL, NLM_F_DUMP_INTR, NLM_F_MULTI } from '../../../lib/netlink/constants.js';
import * as uapi from '../../../lib/wireguard/uapi.js';
import { derivePublicKey } from '../../../lib/keys.js';
import { ReplayTransport } from '../../support/replay-transport.js';
import type { ReplayStep } from '../../support/replay-transport.js';
import { ack, concat, done, errorReply, genlReply } from '../../support/kernel-replies.js';
import { key, keyBytes } from '../../support/keys.js';
import type { MessageWriter } from '../../../lib/netlink/attributes.js';

const FAMILY = 0x1e;
const familyStep: ReplayStep = {
  replies: [concat(genlReply(GENL_ID_CTRL, 1, (w) => {
    w.attrU16(CTRL_ATTR_FAMILY_ID, FAMILY);
    w.attrString(CTRL_ATTR_FAMILY_NAME, 'wireguard');
  }, 0), ack())],
};

const devicePrivate = keyBytes(1, 'device');
const devicePublic = derivePublicKey(devicePrivate);

function deviceAttributes(w: MessageWriter) {
  w.attrU16(uapi.WGDEVICE_A_LISTEN_PORT, 51820);
  w.attrU32(uapi.WGDEVICE_A_FWMARK, 0);
  w.attrU32(uapi.WGDEVICE_A_IFINDEX, 7);
  w.attrString(uapi.WGDEVICE_A_IFNAME, 'wg0');
  w.attr(uapi.WGDEVICE_A_PRIVATE_KEY, devicePrivate);
  w.attr(uapi.WGDEVICE_A_PUBLIC_KEY, devicePublic);
}

function allowedIp(w: MessageWriter, a: number, mask = 32) {
  const n = w.beginNest(0);
  w.attrU16(uapi.WGALLOWEDIP_A_FAMILY, 2);
  w.attr(uapi.WGALLOWEDIP_A_IPADDR, Uint8Array.of(10, 0, 0, a));
  w.attrU8(uapi.WGALLOWEDIP_A_CIDR_MASK, mask);
  w.endNest(n);
}

/** A dump split the way the kernel splits it: peer 1's allowed IPs continue in message 2. */
function splitDump(flags = NLM_F_MULTI): Buffer[] {
  const first = genlReply(FAMILY, uapi.WG_CMD_GET_DEVICE, (w) => {
    deviceAttributes(w);
    const peers = w.beginNest(uapi.WGDEVICE_A_PEERS);
    const p = w.beginNest(0);
    w.attr(uapi.WGPEER_A_PUBLIC_KEY, keyBytes(1));
    w.attr(uapi.WGPEER_A_PRESHARED_KEY, keyBytes(99, 'psk'));
    const ts = Buffer.alloc(16);
    ts.writeBigInt64LE(1_700_000_000n, 0);
    ts.writeBigInt64LE(500_000_000n, 8);
    w.attr(uapi.WGPEER_A_LAST_HANDSHAKE_TIME, ts);
    w.attrU16(uapi.WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 25);
    const rx = Buffer.alloc(8);
    rx.writeBigUInt64LE(2n ** 40n);
    w.attr(uapi.WGPEER_A_RX_BYTES, rx);
    w.attr(uapi.WGPEER_A_TX_BYTES, Buffer.alloc(8));
    w.attrU32(uapi.WGPEER_A_PROTOCOL_VERSION, 1);
    const ep = Buffer.alloc(16);
    ep.writeUInt16LE(2);
    ep.writeUInt16BE(40001, 2);
    ep.set([192, 0, 2, 7], 4);
    w.attr(uapi.WGPEER_A_ENDPOINT, ep);
    const ips = w.beginNest(uapi.WGPEER_A_ALLOWEDIPS);
    allowedIp(w, 1);
    allowedIp(w, 2);
    w.endNest(ips);
    w.endNest(p);
    w.endNest(peers);
  }, flags);
  const second = genlReply(FAMILY, uapi.WG_CMD_GET_DEVICE, (w) => {
    const peers = w.beginNest(uapi.WGDEVICE_A_PEERS);
    let p = w.beginNest(0);
    w.attr(uapi.WGPEER_A_PUBLIC_KEY, keyBytes(1));
    let ips = w.beginNest(uapi.WGPEER_A_ALLOWEDIPS);
    allowedIp(w, 3);
    w.endNest(ips);
    w.endNest(p);
    p = w.beginNest(0);
    w.attr(uapi.WGPEER_A_PUBLIC_KEY, keyBytes(2));
    w.attr(uapi.WGPEER_A_PRESHARED_KEY, new Uint8Array(32));
    ips = w.beginNest(uapi.WGPEER_A_ALLOWEDIPS);
    allowedIp(w, 0, 24);
    w.endNest(ips);
    w.endNest(p);
    w.endNest(peers);
  }, flags);
  return [first, concat(second, done())];
}

describe('WireGuard over a replayed kernel', () => {
  it('merges a peer continued across dump messages and returns no secrets', async () => {
    const transport = new ReplayTransport([familyStep, { replies: splitDump() }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    const device = await wg.getDevice('wg0');
    assert.equal(device.name, 'wg0');
    assert.equal(device.ifindex, 7);
    assert.equal(device.listenPort, 51820);
    assert.equal(device.publicKey, Buffer.from(devicePublic).toString('base64'));
    assert.equal(device.peers.length, 2);
    const [p1, p2] = device.peers;
    assert.deepEqual(p1!.allowedIps, ['10.0.0.1/32', '10.0.0.2/32', '10.0.0.3/32']);
    assert.equal(p1!.hasPresharedKey, true);
    assert.equal(p1!.endpoint, '192.0.2.7:40001');
    assert.equal(p1!.persistentKeepalive, 25);
    assert.equal(p1!.rxBytes, 2n ** 40n);
    assert.equal(p1!.lastHandshake?.getTime(), 1_700_000_000_500);
    assert.equal(p2!.hasPresharedKey, false);
    assert.equal(p2!.lastHandshake, null);
    assert.deepEqual(p2!.allowedIps, ['10.0.0.0/24']);
    assert.ok(!('privateKey' in device));
    assert.equal(JSON.stringify(device, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).includes(Buffer.from(devicePrivate).toString('base64')), false);
    assert.equal(transport.remaining, 0);
  });

  it('zeroes the private and preshared keys in the reply buffers it decoded', async () => {
    const replies = splitDump();
    const transport = new ReplayTransport([familyStep, { replies }]);
    const seen: Buffer[] = [];
    const original = transport.exchange.bind(transport);
    transport.exchange = async (m) => {
      const r = await original(m);
      seen.push(...r.replies);
      return r;
    };
    const wg = new WireGuard({ transports: { generic: transport } });
    const key = await wg.getPrivateKey('wg0');
    assert.ok(key instanceof KeyObject);
    assert.equal(key.asymmetricKeyType, 'x25519');
    const all = Buffer.concat(seen);
    assert.equal(all.indexOf(Buffer.from(devicePrivate)), -1, 'private key bytes left in a reply buffer');
    assert.equal(all.indexOf(Buffer.from(keyBytes(99, 'psk'))), -1, 'preshared key bytes left in a reply buffer');
  });

  it('retries a dump the kernel marks as interrupted', async () => {
    const transport = new ReplayTransport([familyStep, { replies: splitDump(NLM_F_MULTI | NLM_F_DUMP_INTR) }, { replies: splitDump() }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    assert.equal((await wg.getDevice('wg0')).peers.length, 2);
    assert.equal(transport.sent.length, 3);
  });

  it('gives up with EAGAIN after maxDumpAttempts interrupted dumps', async () => {
    const interrupted = () => ({ replies: splitDump(NLM_F_MULTI | NLM_F_DUMP_INTR) });
    const transport = new ReplayTransport([familyStep, interrupted(), interrupted()]);
    const wg = new WireGuard({ transports: { generic: transport }, maxDumpAttempts: 2 });
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof WireGuardError && e.code === 'EAGAIN');
  });

  it('reports a missing interface as ENODEV, the documented not-found', async () => {
    const transport = new ReplayTransport([familyStep, { replies: [errorReply(19)] }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.getDevice('nope0'), (e: unknown) => {
      assert.ok(e instanceof WireGuardError);
      assert.equal(e.code, 'ENODEV');
      assert.equal(e.errno, 19);
      assert.equal(e.syscall, 'netlink');
      assert.equal(e.interface, 'nope0');
      assert.equal(e.operation, 'getDevice');
      assert.ok(isNotFound(e));
      assert.match(e.message, /getDevice nope0: no such interface/);
      return true;
    });
  });

  it('carries the kernel extended-ack text', async () => {
    const transport = new ReplayTransport([familyStep, { replies: [errorReply(22, 'Attribute failed policy validation', 24)], completed: 0 }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.setDevice('wg0', { privateKey: keyBytes(3, 'x'), listenPort: 1 }), (e: unknown) => {
      assert.ok(e instanceof WireGuardError);
      assert.equal(e.code, 'EINVAL');
      assert.equal(e.kernelMessage, 'Attribute failed policy validation');
      assert.match(e.message, /kernel: Attribute failed policy validation/);
      return true;
    });
  });

  it('reports exactly which peers a split SET applied before the kernel refused', async () => {
    const peers = Array.from({ length: 30 }, (_, i) => ({ publicKey: key(i), allowedIps: Array.from({ length: 20 }, (_, j) => `10.${i}.0.${j}/32`) }));
    // The native transport stops at the first rejected message: replies are the acks of the
    // accepted ones and the error of the rejected one.
    const transport = new ReplayTransport([
      familyStep,
      {
        check: (messages) => assert.ok(messages.length > 4, `${messages.length} messages`),
        replies: [ack(), ack(), errorReply(12)],
        answers: [0, 1, 2],
        completed: 2,
      },
    ]);
    const wg = new WireGuard({ transports: { generic: transport }, maxMessageBytes: 1024 });
    await assert.rejects(wg.setDevice('wg0', { privateKey: keyBytes(3, 'x'), peers }), (e: unknown) => {
      assert.ok(e instanceof WireGuardError);
      assert.equal(e.code, 'ENOMEM');
      assert.ok(e.progress);
      assert.equal(e.progress.completedMessages, 2);
      assert.ok(e.progress.totalMessages > 4);
      assert.ok(e.progress.appliedPeers >= 1 && e.progress.appliedPeers < 30);
      return true;
    });
  });

  it('names CAP_NET_ADMIN when the kernel says EPERM', async () => {
    const transport = new ReplayTransport([familyStep, { replies: [errorReply(1)] }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof WireGuardError && e.code === 'EPERM' && /CAP_NET_ADMIN/.test(e.message));
  });

  it('turns a failed system call into a WireGuardError with errno and syscall', async () => {
    const transport = new ReplayTransport([familyStep, { fail: { errno: 105, code: 'ENOBUFS', syscall: 'recvmsg' } }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof WireGuardError && e.code === 'ENOBUFS' && e.syscall === 'recvmsg');
  });

  it('validates before sending anything', async () => {
    const transport = new ReplayTransport([]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.setDevice('wg0', { privateKey: key(1), peers: [{ publicKey: 'short' }] }), /config.peers\[0\].publicKey/);
    await assert.rejects(async () => wg.getDevice('x'.repeat(16)), /1 to 15 bytes/);
    assert.equal(transport.sent.length, 0);
  });

  it('runs overlapping calls one at a time, in call order', async () => {
    const order: string[] = [];
    const transport = new ReplayTransport([
      familyStep,
      { replies: [ack()], check: () => order.push('set') },
      { replies: splitDump(), check: () => order.push('get') },
    ]);
    const wg = new WireGuard({ transports: { generic: transport } });
    const [, device] = await Promise.all([wg.setDevice('wg0', { listenPort: 1 }), wg.getDevice('wg0')]);
    assert.deepEqual(order, ['set', 'get']);
    assert.equal(device.peers.length, 2);
  });

  it('fails calls after close with a typed error and closes the transport', async () => {
    const transport = new ReplayTransport([familyStep]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.setDevice('wg0', { listenPort: 1 }));
    wg.close();
    assert.equal(transport.closed, true);
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof WireGuardError && e.code === 'ERR_JITGUARD_CLOSED');
  });
});

describe('review fixes: dumps, validation order, progress, close', () => {
  it('fails a dump whose NLMSG_DONE carries an error, instead of returning an empty device', async () => {
    const doneWithError = Buffer.from(done());
    doneWithError.writeInt32LE(-90, 16); // -EMSGSIZE
    const transport = new ReplayTransport([familyStep, { replies: [doneWithError] }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof WireGuardError && e.code === 'EMSGSIZE');
  });

  it('retries when only the NLMSG_DONE is flagged as interrupted', async () => {
    const [first, second] = splitDump();
    const lastDone = Buffer.from(second!);
    lastDone.writeUInt16LE(NLM_F_MULTI | NLM_F_DUMP_INTR, lastDone.length - 20 + 6);
    const transport = new ReplayTransport([familyStep, { replies: [first!, lastDone] }, { replies: splitDump() }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    assert.equal((await wg.getDevice('wg0')).peers.length, 2);
    assert.equal(transport.remaining, 0);
  });

  it('refuses a bad config before any exchange, even for an interface it has never seen', async () => {
    const transport = new ReplayTransport([]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.setDevice('nope0', { peers: [{ publicKey: key(1), allowedIps: ['10.0.0.0/33'] }] }), /allowedIps\[0\]/);
    assert.equal(transport.sent.length, 0);
  });

  it('does not read the device for calls that cannot create a peer', async () => {
    const transport = new ReplayTransport([familyStep, { replies: [ack()] }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await wg.removePeers('wg0', [key(1), key(2)]);
    await assert.rejects(wg.setDevice('wg0', { peers: [{ publicKey: key(3), updateOnly: true }] })); // no step left: proves no dump was queued before
    assert.equal(transport.sent.length, 3);
  });

  it('reports the peers of the rejected message as uncertain', async () => {
    const peers = Array.from({ length: 30 }, (_, i) => ({ publicKey: key(i), allowedIps: Array.from({ length: 20 }, (_, j) => `10.${i}.0.${j}/32`) }));
    const transport = new ReplayTransport([familyStep, { replies: [ack(), errorReply(7)], answers: [0, 1], completed: 1 }]);
    const wg = new WireGuard({ transports: { generic: transport }, maxMessageBytes: 1024 });
    await assert.rejects(wg.setDevice('wg0', { privateKey: keyBytes(3, 'x'), peers }), (e: unknown) => {
      assert.ok(e instanceof WireGuardError && e.progress);
      assert.equal(e.progress.completedMessages, 1);
      assert.ok(e.progress.uncertainPeers >= 1, `uncertain ${e.progress.uncertainPeers}`);
      assert.ok(e.progress.appliedPeers + e.progress.uncertainPeers <= 30);
      return true;
    });
  });

  it('lets calls already made finish when closed, and refuses later ones', async () => {
    const transport = new ReplayTransport([familyStep, { replies: splitDump() }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    const pending = wg.getDevice('wg0');
    wg.close();
    assert.equal((await pending).peers.length, 2);
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof WireGuardError && e.code === 'ERR_JITGUARD_CLOSED');
    await new Promise((r) => setImmediate(r));
    assert.equal(transport.closed, true);
  });
});

describe('issue 11: the own key from the head of a dump, not a whole dump', () => {
  const devicePeer = { publicKey: Buffer.from(devicePublic).toString('base64'), allowedIps: ['10.9.0.1/32'] };

  it('reads only the first datagram of the dump, replaces the socket, and refuses a peer equal to the own key', async () => {
    const transport = new ReplayTransport([familyStep, { replies: splitDump() }, { replies: [ack()] }], { firstReply: true });
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.setDevice('wg0', { peers: [devicePeer] }), (e: unknown) => e instanceof ValidationError && /own public key/.test(e.message));
    assert.equal(transport.firstReplies, 1, 'the head was read with exchangeFirstReply');
    assert.equal(transport.closed, true, 'the socket holding the rest of the dump was closed');
    assert.equal(transport.sent.length, 2, 'nothing was SET');
    // The key is known now: another peer goes straight to its SET, with no second read.
    await wg.setDevice('wg0', { peers: [{ publicKey: key(5), allowedIps: ['10.9.0.2/32'] }] });
    assert.equal(transport.firstReplies, 1);
    assert.equal(transport.remaining, 0);
  });

  it('zeroes the head datagram it read (it carries the private key)', async () => {
    const head = splitDump()[0]!;
    let handedOut: Buffer | undefined;
    const transport = new ReplayTransport([familyStep, { replies: [head] }, { replies: [ack()] }], { firstReply: true });
    const read = transport.exchangeFirstReply!;
    transport.exchangeFirstReply = (message) => {
      const result = read(message);
      handedOut = result.replies[0];
      return result;
    };
    const wg = new WireGuard({ transports: { generic: transport } });
    await wg.setDevice('wg0', { peers: [{ publicKey: key(5) }] });
    assert.ok(handedOut && handedOut.length > 0);
    assert.ok(handedOut.every((b) => b === 0), 'the head datagram was wiped');
  });

  it('fails with the kernel\'s error when the head is an error (no such interface), and sends no SET', async () => {
    const transport = new ReplayTransport([familyStep, { replies: [errorReply(19)] }], { firstReply: true });
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.setDevice('nope0', { peers: [{ publicKey: key(5) }] }), (e: unknown) => e instanceof WireGuardError && e.code === 'ENODEV');
    assert.equal(transport.sent.length, 2);
  });

  it('falls back to a whole dump with a transport that cannot read just the head', async () => {
    const transport = new ReplayTransport([familyStep, { replies: splitDump() }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.setDevice('wg0', { peers: [devicePeer] }), /own public key/);
    assert.equal(transport.remaining, 0, 'the whole dump was read');
  });
});

describe('issue 8: options, typed decode errors, close()', () => {
  it('validates maxDumpAttempts: a positive integer up to 1000 (NaN or Infinity retried forever)', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 1001, '8']) {
      assert.throws(() => new WireGuard({ maxDumpAttempts: bad as number }), (e: unknown) => e instanceof ValidationError && e.path === 'options.maxDumpAttempts', String(bad));
    }
    assert.doesNotThrow(() => new WireGuard({ maxDumpAttempts: 1 }));
    assert.doesNotThrow(() => new WireGuard({ maxDumpAttempts: 1000 }));
  });

  it('maxDumpAttempts: 1 gives up after one interrupted dump', async () => {
    const transport = new ReplayTransport([familyStep, { replies: splitDump(NLM_F_MULTI | NLM_F_DUMP_INTR) }]);
    const wg = new WireGuard({ transports: { generic: transport }, maxDumpAttempts: 1 });
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof WireGuardError && e.code === 'EAGAIN' && /each of 1 dump attempts/.test(e.message));
  });

  it('an attribute of the wrong length is a NetlinkDecodeError naming the call, not a RangeError', async () => {
    const dump = genlReply(FAMILY, uapi.WG_CMD_GET_DEVICE, (w) => {
      w.attrString(uapi.WGDEVICE_A_IFNAME, 'wg0');
      const peers = w.beginNest(uapi.WGDEVICE_A_PEERS);
      const p = w.beginNest(0);
      w.attr(uapi.WGPEER_A_PUBLIC_KEY, keyBytes(1));
      w.attrU8(uapi.WGPEER_A_RX_BYTES, 1); // a u64 in one byte
      w.endNest(p);
      w.endNest(peers);
    });
    const transport = new ReplayTransport([familyStep, { replies: [concat(dump, done())] }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => {
      assert.ok(e instanceof NetlinkDecodeError, String(e));
      assert.equal(e.code, 'ERR_JITGUARD_NETLINK_DECODE');
      assert.equal(e.operation, 'getDevice');
      assert.equal(e.interface, 'wg0');
      assert.match(e.message, /^getDevice wg0: the kernel's reply does not parse: WGPEER_A attribute 7 has 1 bytes; expected 8 bytes/);
      return true;
    });
  });

  it('resolveFamily: a controller reply without an id is a NetlinkDecodeError', async () => {
    const noId: ReplayStep = { replies: [concat(genlReply(GENL_ID_CTRL, 1, (w) => w.attrString(CTRL_ATTR_FAMILY_NAME, 'wireguard'), 0), ack())] };
    const wg = new WireGuard({ transports: { generic: new ReplayTransport([noId]) } });
    await assert.rejects(wg.getDevice('wg0'), (e: unknown) => e instanceof NetlinkDecodeError && e.operation === 'resolveFamily' && /without an id for family "wireguard"/.test(e.message));
  });

  it('listDevices: an RTM_NEWLINK shorter than its ifinfomsg is a NetlinkDecodeError', async () => {
    const link = Buffer.alloc(16 + 8);
    link.writeUInt32LE(link.length, 0);
    link.writeUInt16LE(16, 4); // RTM_NEWLINK
    link.writeUInt16LE(NLM_F_MULTI, 6);
    const wg = new WireGuard({ transports: { route: new ReplayTransport([{ replies: [concat(link, done())] }]) } });
    await assert.rejects(wg.listDevices(), (e: unknown) => e instanceof NetlinkDecodeError && /has no ifinfomsg/.test(e.message));
  });

  it('close() returns a Promise that resolves once the sockets are closed, and never rejects', async () => {
    const transport = new ReplayTransport([familyStep, { replies: splitDump() }]);
    const wg = new WireGuard({ transports: { generic: transport } });
    const pending = wg.getDevice('wg0');
    const closing = wg.close();
    assert.ok(closing instanceof Promise);
    assert.equal(transport.closed, false, 'the call made before close() still has the socket');
    assert.equal((await pending).peers.length, 2);
    await closing;
    assert.equal(transport.closed, true);
    // Callable without await: even a failing call in flight does not make it reject.
    const failing = new WireGuard({ transports: { generic: new ReplayTransport([]) } });
    const call = failing.getDevice('wg0');
    await failing.close();
    await assert.rejects(call);
  });
});

describe('issue 8: one error family', () => {
  it('WireGuardError and CaptureError share SystemError, and isNotFound covers both', () => {
    const wgError = new WireGuardError('x', { code: 'ENODEV', errno: 19, syscall: 'netlink', operation: 'getDevice', interface: 'wg0' });
    const captureError = new CaptureError('y', { code: 'ENODEV', errno: 19, syscall: 'if_nametoindex', interface: 'eth9' });
    for (const e of [wgError, captureError]) {
      assert.ok(e instanceof SystemError && e instanceof Error);
      assert.equal(e.code, 'ENODEV');
      assert.equal(e.errno, 19);
      assert.ok(isNotFound(e));
      assert.ok(isCaptureNotFound(e), 'the deprecated alias is the same test');
    }
    assert.equal(wgError.name, 'WireGuardError');
    assert.equal(captureError.name, 'CaptureError');
    assert.equal(captureError.interface, 'eth9');
    assert.equal(isNotFound(new CaptureError('z', { code: 'ENETDOWN' })), false);
    assert.equal(isNotFound(new ValidationError('name', 'bad')), false);
    assert.equal(isNotFound(Object.assign(new Error('plain'), { code: 'ENODEV' })), false);
  });
});
