/**
 * Records real kernel WireGuard netlink exchanges into test/fixtures/netlink/, so the unit
 * tier replays bytes a kernel actually sent (multipart dumps with continued peers, extended
 * acks, interrupted dumps) rather than bytes our own encoder imagined.
 *
 *   bash test/kernel/vm/run-in-vm.sh -- node --import tsx test/kernel/record-fixtures.ts
 *
 * Writes to .cache/vm-rw/fixtures/ (the VM's read-write share); copy the files into
 * test/fixtures/netlink/ and commit them. Keys are fixed test keys, not secrets.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { WireGuard } from '../../lib/index.js';
import { MessageWriter } from '../../lib/netlink/attributes.js';
import { NETLINK_GENERIC, NLM_F_ACK, NLM_F_REQUEST } from '../../lib/netlink/constants.js';
import { beginGenlMessage } from '../../lib/netlink/genl.js';
import { endMessage } from '../../lib/netlink/message.js';
import { NativeTransport } from '../../lib/netlink/transport.js';
import type { ExchangeResult, NetlinkTransport } from '../../lib/netlink/transport.js';
import { encodeKey, derivePublicKey } from '../../lib/keys.js';
import * as uapi from '../../lib/wireguard/uapi.js';
import { key, privateKeyBytes } from '../support/keys.js';

interface Exchange {
  sent: string[];
  replies: string[];
  completed: number;
  error?: { errno: number; syscall: string };
}

class RecordingTransport implements NetlinkTransport {
  exchanges: Exchange[] = [];
  constructor(private readonly inner: NetlinkTransport) {}
  async exchange(messages: Buffer[]): Promise<ExchangeResult> {
    const sent = messages.map((m) => m.toString('hex'));
    const result = await this.inner.exchange(messages);
    // Copy before the library zeroes secrets in the reply buffers.
    this.exchanges.push({ sent, replies: result.replies.map((r) => r.toString('hex')), completed: result.completed });
    return result;
  }
  close(): void {
    this.inner.close();
  }
}

const out = join(process.cwd(), '.cache/vm-rw/fixtures');
mkdirSync(out, { recursive: true });
const ns = `jg-rec-${process.pid}`;
execFileSync('ip', ['netns', 'add', ns]);
const netns = `/run/netns/${ns}`;
const kernel = execFileSync('uname', ['-r']).toString().trim();

function save(name: string, description: string, recorder: RecordingTransport, extra: object = {}) {
  writeFileSync(join(out, `${name}.json`), `${JSON.stringify({ description, kernel, ...extra, exchanges: recorder.exchanges }, null, 1)}\n`);
  console.log(`recorded ${name}: ${recorder.exchanges.length} exchanges`);
}

async function session<T>(body: (wg: WireGuard, recorder: RecordingTransport) => Promise<T>): Promise<T> {
  const recorder = new RecordingTransport(new NativeTransport(NETLINK_GENERIC, netns));
  const wg = new WireGuard({ netns, transports: { generic: recorder } });
  try {
    return await body(wg, recorder);
  } finally {
    wg.close();
  }
}

try {
  const admin = new WireGuard({ netns });
  await admin.createDevice('wg0');
  const devicePrivate = privateKeyBytes(1);
  // A device whose dump spans several messages: peer 1 has enough allowed IPs to be
  // continued across messages, followed by two small peers.
  const config = {
    privateKey: encodeKey(devicePrivate),
    listenPort: 51820,
    fwmark: 0x2a,
    peers: [
      { publicKey: key(1), presharedKey: key(1, 'psk'), endpoint: '192.0.2.7:40001', persistentKeepalive: 25, allowedIps: Array.from({ length: 1500 }, (_, j) => `10.${j >> 8}.${j & 0xff}.0/24`) },
      { publicKey: key(2), endpoint: '[2001:db8::2]:51821', allowedIps: ['fd00::2/128', '10.200.0.2/32'] },
      { publicKey: key(3) },
    ],
  };
  await admin.setDevice('wg0', config);

  await session(async (wg, recorder) => {
    await wg.getDevice('wg0');
    save('get-device-multipart', 'family lookup, then a GET_DEVICE dump of wg0 whose first peer (1500 allowed IPs) continues across messages', recorder, {
      config: { ...config, privateKey: undefined, devicePublicKey: encodeKey(derivePublicKey(devicePrivate)) },
    });
  });

  await session(async (wg, recorder) => {
    await wg.getDevice('nope0').catch(() => undefined);
    save('get-device-enodev', 'family lookup, then GET_DEVICE of a missing interface: NLMSG_ERROR -ENODEV', recorder);
  });

  await session(async (wg, recorder) => {
    await wg.getDevice('lo').catch(() => undefined);
    save('get-device-not-wireguard', 'family lookup, then GET_DEVICE of lo: NLMSG_ERROR -EOPNOTSUPP', recorder);
  });

  await session(async (wg, recorder) => {
    await wg.getDevice('wg0'); // resolves the family through the recorder
    recorder.exchanges = [];
    // A SET whose private key attribute has the wrong length: the kernel's policy check
    // answers EINVAL with an extended-ack message and offset.
    const family = await familyOf(wg);
    const writer = new MessageWriter(128);
    const start = beginGenlMessage(writer, family, uapi.WG_CMD_SET_DEVICE, uapi.WG_GENL_VERSION, NLM_F_REQUEST | NLM_F_ACK);
    writer.attrString(uapi.WGDEVICE_A_IFNAME, 'wg0');
    writer.attr(uapi.WGDEVICE_A_PRIVATE_KEY, new Uint8Array(31));
    endMessage(writer, start);
    const message = writer.take();
    message.writeUInt32LE(4242, 8);
    await recorder.exchange([message]);
    save('set-device-extack', 'SET_DEVICE with a 31-byte private key: ERANGE with extended ack', recorder);
  });

  // Interrupted dumps: keep changing peers from another socket while dumping a big device.
  await admin.setDevice('wg0', { peers: Array.from({ length: 2000 }, (_, i) => ({ publicKey: key(i, 'bulk'), allowedIps: [`10.250.${i >> 8}.${i & 0xff}/32`] })) });
  await session(async (wg, recorder) => {
    const churn = new WireGuard({ netns });
    let stop = false;
    const churning = (async () => {
      for (let n = 0; !stop; n++) await churn.setDevice('wg0', { peers: [{ publicKey: key(n % 10, 'churn'), remove: n % 2 === 1 }] });
    })();
    let interrupted: Exchange | undefined;
    for (let attempt = 0; attempt < 50 && !interrupted; attempt++) {
      recorder.exchanges = [];
      await wg.getDevice('wg0');
      interrupted = recorder.exchanges.find((e) => e.replies.some((hex) => hasDumpIntr(Buffer.from(hex, 'hex'))));
    }
    stop = true;
    await churning;
    churn.close();
    if (!interrupted) throw new Error('no interrupted dump in 50 attempts');
    recorder.exchanges = [interrupted];
    save('get-device-dump-intr', 'a GET_DEVICE dump of wg0 (2000+ peers) raced by peer changes on another socket: messages flagged NLM_F_DUMP_INTR', recorder);
  });
  admin.close();
} finally {
  execFileSync('ip', ['netns', 'del', ns]);
}

function hasDumpIntr(datagram: Buffer): boolean {
  for (let offset = 0; offset + 16 <= datagram.length; ) {
    const length = datagram.readUInt32LE(offset);
    if ((datagram.readUInt16LE(offset + 6) & 0x10) !== 0) return true;
    offset += (length + 3) & ~3;
    if (length < 16) break;
  }
  return false;
}

async function familyOf(wg: WireGuard): Promise<number> {
  return (wg as unknown as { resolveFamily(): Promise<number> }).resolveFamily();
}
