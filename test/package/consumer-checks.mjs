// What a consumer of the installed tarball does, run with plain node (no tsx, no repository)
// from inside the project that installed it. Prints one JSON report; test/package/pack.test.ts
// asserts on it, so that each failure names the fact that was wrong.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const jitguard = await import('jitguard');
const { WireGuard, HandshakeCapture, SqliteStore } = jitguard;
const report = { exports: Object.keys(jitguard).sort() };

// Netlink through the addon's NetlinkSocket: an rtnetlink link dump (no privilege, no WireGuard
// module), then a generic-netlink query whose typed error depends on the kernel.
const wg = new WireGuard();
report.devices = await wg.listDevices();
try {
  await wg.getDevice('jgpkg-none0');
  report.getDevice = 'found';
} catch (error) {
  report.getDevice = { name: error.constructor.name, code: error.code };
}
await wg.close();

// AF_PACKET through the addon's PacketSocket, with the kernel running jitguard's BPF filter: an
// initiation-shaped datagram sent to a loopback port must come back as an 'initiation'.
const port = 20000 + (process.pid % 30000);
const capture = HandshakeCapture.open({ interface: 'lo', ports: [port] });
const sender = createSocket('udp4');
try {
  const arrived = new Promise((resolve) => capture.once('initiation', resolve));
  const initiation = Buffer.alloc(148);
  initiation[0] = 1;
  sender.send(initiation, port, '127.0.0.1');
  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no initiation captured within 5 s')), 5000).unref());
  const seen = await Promise.race([arrived, timeout]);
  report.capture = { length: seen.packet.length, destinationPort: seen.destination.port, kernelPackets: capture.stats().kernelPackets };
} catch (error) {
  report.capture = { error: String(error) };
} finally {
  capture.close();
  sender.close();
}

// better-sqlite3 (the store's native dependency) through SqliteStore.
const store = new SqliteStore(join(process.argv[2], 'consumer.db'));
report.storePeers = store.countPeers();
store.close();

// Which native objects this process mapped: the proof of where the addon came from.
const mapped = readFileSync('/proc/self/maps', 'utf8').split('\n').map((line) => line.split(/\s+/)[5] ?? '');
report.nativeObjects = [...new Set(mapped.filter((path) => path.endsWith('.node')))].sort();

process.stdout.write(`${JSON.stringify(report)}\n`);
