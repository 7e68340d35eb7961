/**
 * Host-privileged tests of the handshake capture: the addon's AF_PACKET socket with the real
 * filter attached, on this machine's kernel, in network namespaces each test creates and
 * deletes. Needs root, iproute2, wireguard-go, wireguard-tools, capsh and a C compiler.
 * Without them: a failure when CI=true, a skip (with the reason) otherwise.
 *
 * The capture runs in a child process inside namespace B (capture-agent.ts); packets come from
 * namespace A over a veth pair: from a real wireguard-go client, and from capture-sender.c,
 * which writes prepared IP packets straight onto the veth.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseInitiation } from '../../lib/capture/index.js';
import { allFrames, recorded, withPorts, ETH_P_IP, ETH_P_IPV6, PACKET_HOST } from '../vectors/frames/frames.js';
import {
  Agent, MAC_A, MAC_B, V4_A, V4_B, V6_A, V6_B, WireGuardClient, pairsForThisFile, privilegeProblem, run, sendPackets,
  type AgentMessage, type OutgoingPacket,
} from './capture-harness.js';

const problem = privilegeProblem();
if (problem !== null && process.env.CI === 'true') {
  it('has what the privileged capture tests need', () => assert.fail(problem));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Every vector the filter must reject that arrives as PACKET_HOST: the flood. */
const floodFrames: OutgoingPacket[] = allFrames()
  .filter((f) => !f.accept && f.pktType === PACKET_HOST)
  .map((f) => ({ protocol: f.protocol, bytes: f.bytes }));
const acceptedFrames = allFrames().filter((f) => f.accept);

const newPair = pairsForThisFile();

/** Sorted "payload source destination" keys, to compare multisets of initiations. */
function keys(messages: AgentMessage[], withDestination = true): string[] {
  return messages
    .map((m) => {
      const s = m.source as { address: string; port: number };
      const d = m.destination as { address: string; port: number } | undefined;
      return `${m.packet as string} ${s.address}:${s.port}${withDestination && d ? ` ${d.address}:${d.port}` : ''}`;
    })
    .sort();
}

/** Fails with a short report of what differs (the full lists are thousands of hex bytes). */
function assertSameInitiations(actual: string[], expected: string[], what: string): void {
  const count = (list: string[]) => list.reduce((m, k) => m.set(k, (m.get(k) ?? 0) + 1), new Map<string, number>());
  const a = count(actual);
  const e = count(expected);
  const diff: string[] = [];
  for (const key of new Set([...a.keys(), ...e.keys()])) {
    if ((a.get(key) ?? 0) !== (e.get(key) ?? 0)) {
      diff.push(`${key.slice(0, 24)}…${key.slice(296)} captured ${a.get(key) ?? 0}, expected ${e.get(key) ?? 0}`);
    }
  }
  assert.equal(diff.length, 0, `${what}: ${actual.length} captured, ${expected.length} expected\n${diff.slice(0, 10).join('\n')}`);
}

describe('HandshakeCapture on a real AF_PACKET socket', { skip: problem ?? false }, () => {
  it('delivers every wireguard-go initiation (IPv4 and IPv6) with its 4-tuple, and nothing else during a mixed flood', async (t) => {
    const pair = newPair();
    try {
      const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb', ports: [51820] }, observe: [51820] });
      const ifindex = pair.ifindex(pair.b, 'vb');
      const client = await WireGuardClient.start(pair, pair.a, 40404);
      // The flood: every rejected vector (data-sized and other-type UDP to 51820, other ports,
      // ICMP/ICMPv6, TCP, fragments, IPv6 extension headers, wrong lengths), cycling.
      const flood = sendPackets(pair, pair.a, 'va', MAC_B, floodFrames, { durationMs: 4000, rate: 20_000 });
      await sleep(300);
      for (let i = 0; i < 3; i++) {
        client.initiate(`${V4_B}:51820`);
        await sleep(250);
        client.initiate(`[${V6_B}]:51820`);
        await sleep(250);
      }
      const sent = await flood;
      await sleep(300);
      client.stop();
      const stats = await agent.request({ cmd: 'stats' }, 'stats');
      const captured = agent.ofType('initiation');
      const observed = agent.ofType('udp');
      await agent.stop();

      t.diagnostic(`flood: ${sent} packets; wireguard-go initiations: ${observed.length}; captured: ${captured.length}; stats: ${JSON.stringify(stats)}`);
      assert.ok(sent > 40_000, `the flood sent only ${sent} packets`);
      const v4 = observed.filter((m) => (m.source as { family: number }).family === 4);
      const v6 = observed.filter((m) => (m.source as { family: number }).family === 6);
      assert.ok(v4.length >= 3 && v6.length >= 3, `wireguard-go sent ${v4.length} IPv4 and ${v6.length} IPv6 initiations`);
      // Exactly the initiations the UDP socket received: same bytes, same sources.
      assertSameInitiations(keys(captured, false), keys(observed, false), 'capture vs the UDP socket');
      for (const m of captured) {
        const family = (m.source as { family: number }).family;
        assert.deepEqual(m.source, { address: family === 4 ? V4_A : V6_A, port: 40404, family });
        assert.deepEqual(m.destination, { address: family === 4 ? V4_B : V6_B, port: 51820, family });
        assert.equal(m.ifindex, ifindex);
        assert.equal(m.injected, false);
      }
      // Nothing else crossed into JavaScript, and the kernel counters say the same.
      assert.equal(stats.delivered, captured.length);
      assert.equal(stats.rejected, 0);
      assert.equal(stats.kernelPackets, captured.length, 'PACKET_STATISTICS: only initiations passed the filter');
      assert.equal(stats.kernelDrops, 0);
      assert.ok((stats.wakeups as number) <= captured.length, `${String(stats.wakeups)} wake-ups for ${captured.length} initiations`);
    } finally {
      pair.destroy();
    }
  });

  it('lets exactly the accepted vectors through the kernel filter', async () => {
    const pair = newPair();
    try {
      const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' } });
      const ifindex = pair.ifindex(pair.b, 'vb');
      const start = Date.now();
      const packets: OutgoingPacket[] = allFrames()
        .filter((f) => f.pktType === PACKET_HOST)
        .map((f) => ({ protocol: f.protocol, bytes: f.bytes }));
      await sendPackets(pair, pair.a, 'va', MAC_B, packets, { count: packets.length, rate: 5000 });
      // The right packets to the wrong link-layer destinations: broadcast, another host
      // (promiscuous would be needed to... no: taps see PACKET_OTHERHOST frames anyway), multicast.
      const v4 = { protocol: ETH_P_IP, bytes: recorded('01') };
      const v6 = { protocol: ETH_P_IPV6, bytes: recorded('10') };
      await sendPackets(pair, pair.a, 'va', 'ff:ff:ff:ff:ff:ff', [v4, v6], { count: 2 });
      await sendPackets(pair, pair.a, 'va', '02:6a:67:00:00:99', [v4, v6], { count: 2 });
      await sendPackets(pair, pair.a, 'va', '33:33:00:00:00:01', [v6], { count: 1 });
      await sleep(300);
      const stats = await agent.request({ cmd: 'stats' }, 'stats');
      const captured = agent.ofType('initiation');
      await agent.stop();

      const expected = acceptedFrames.map((f) => {
        const p = parseInitiation(f.bytes)!;
        return { packet: hex(p.payload), source: p.source, destination: p.destination };
      });
      assert.ok(expected.length >= 8);
      assertSameInitiations(keys(captured), keys(expected as unknown as AgentMessage[]), 'capture vs accepted vectors');
      for (const m of captured) {
        assert.equal(m.ifindex, ifindex);
        const at = m.receivedAt as number;
        assert.ok(at >= start - 1000 && at <= Date.now() + 1000, `kernel timestamp ${at} outside the test`);
      }
      assert.equal(stats.kernelPackets, expected.length);
      assert.equal(stats.rejected, 0);
    } finally {
      pair.destroy();
    }
  });

  it('captures on every interface, for several ports, and ignores its own outgoing packets', async () => {
    const pair = newPair();
    try {
      const agent = await Agent.startReady(pair, pair.b, { capture: { ports: [51820, 443] } });
      assert.equal(agent.messages[0]!.ifindex, 0);
      const base = recorded('01');
      await sendPackets(pair, pair.a, 'va', MAC_B, [443, 51820, 51821].map((port) => ({ protocol: ETH_P_IP, bytes: withPorts(base, port, 1000 + port) })), { count: 3 });
      // From B itself: over loopback (received once: the outgoing copy is ignored), and out of
      // vb towards A (only ever outgoing here: not delivered).
      await sendPackets(pair, pair.b, 'lo', '00:00:00:00:00:00', [{ protocol: ETH_P_IP, bytes: withPorts(base, 51820, 7) }], { count: 1 });
      await sendPackets(pair, pair.b, 'vb', MAC_A, [{ protocol: ETH_P_IP, bytes: withPorts(base, 443, 8) }], { count: 1 });
      await sleep(300);
      const captured = agent.ofType('initiation');
      await agent.stop();
      const vb = pair.ifindex(pair.b, 'vb');
      const lo = pair.ifindex(pair.b, 'lo');
      const seen = captured.map((m) => `${(m.source as { port: number }).port}>${(m.destination as { port: number }).port}@${String(m.ifindex)}`).sort();
      assert.deepEqual(seen, [`1443>443@${vb}`, `52820>51820@${vb}`, `7>51820@${lo}`].sort());
    } finally {
      pair.destroy();
    }
  });

  it('closes and reopens 200 times under load without leaking a descriptor or an unfiltered packet', async (t) => {
    const pair = newPair();
    try {
      const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' }, quietEvents: true });
      const load: OutgoingPacket[] = [...floodFrames, ...acceptedFrames.map((f) => ({ protocol: f.protocol, bytes: f.bytes }))];
      const flood = sendPackets(pair, pair.a, 'va', MAC_B, load, { durationMs: 6000, rate: 30_000 });
      await sleep(200);
      const churn = await agent.request({ cmd: 'churn', count: 200, options: { interface: 'vb' } }, 'churn', 60_000);
      const churnAll = await agent.request({ cmd: 'churn', count: 50, options: {} }, 'churn', 60_000);
      await flood;
      const stats = await agent.request({ cmd: 'stats' }, 'stats');
      await agent.stop();
      t.diagnostic(`churn: ${JSON.stringify(churn)}; all interfaces: ${JSON.stringify(churnAll)}`);
      for (const c of [churn, churnAll]) {
        assert.equal(c.after, c.before, `descriptors before ${String(c.before)}, after ${String(c.after)}`);
        assert.equal(c.rejected, 0, 'a packet that the filter would reject reached a socket');
        assert.equal(c.eventsAfterClose, 0);
      }
      assert.ok((churn.delivered as number) > 0, 'the reopened captures saw initiations while open');
      assert.ok((stats.delivered as number) > 1000, `the long-lived capture delivered ${String(stats.delivered)}`);
      assert.equal(stats.rejected, 0);
    } finally {
      pair.destroy();
    }
  });

  it('delivers a batch a slow listener cannot finish within its budget over several turns, losing nothing', async () => {
    const pair = newPair();
    try {
      // 3 ms of listener work a packet against the capture's 8 ms budget a turn: at most three a
      // turn (the budget is looked at after each packet), however slow the machine.
      const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' }, slowListenerMs: 3 });
      const base = recorded('01');
      const count = 40;
      const packets = Array.from({ length: count }, (_, i) => ({ protocol: ETH_P_IP, bytes: withPorts(base, 51820, 2000 + i) }));
      // The agent holds its event loop while the packets arrive, so they wait in the socket
      // and one read takes them all (a batch is up to 64).
      await agent.request({ cmd: 'block', ms: 1500 }, 'blocking');
      await sendPackets(pair, pair.a, 'va', MAC_B, packets, { count });
      await agent.waitFor(() => agent.ofType('initiation').length >= count, 20_000);
      const stats = await agent.request({ cmd: 'stats' }, 'stats');
      await agent.stop();
      const captured = agent.ofType('initiation');
      assert.deepEqual(captured.map((m) => (m.source as { port: number }).port), packets.map((_, i) => 2000 + i), 'every packet, once, in order');
      const perTurn = new Map<number, number>();
      for (const m of captured) perTurn.set(m.turn as number, (perTurn.get(m.turn as number) ?? 0) + 1);
      const most = Math.max(...perTurn.values());
      assert.ok(most <= 3, `at most three 3-ms deliveries a turn, got ${most} (${JSON.stringify([...perTurn])})`);
      assert.ok(perTurn.size >= Math.ceil(count / 3), `${count} packets over ${perTurn.size} turns`);
      assert.ok((stats.wakeups as number) < count, `fewer reads than packets: the batch was read at once (${String(stats.wakeups)} wake-ups)`);
      assert.equal(stats.kernelDrops, 0);
    } finally {
      pair.destroy();
    }
  });

  it('emits a typed error and closes cleanly when its interface is deleted', async () => {
    const pair = newPair();
    try {
      const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' } });
      const ready = agent.messages[0]!;
      await sendPackets(pair, pair.a, 'va', MAC_B, [{ protocol: ETH_P_IP, bytes: recorded('01') }], { count: 1 });
      await agent.waitFor((m) => m.type === 'initiation');
      run('ip', ['-n', pair.b, 'link', 'del', 'vb']);
      const error = await agent.waitFor((m) => m.type === 'error');
      assert.equal(error.name, 'CaptureError');
      assert.equal(error.code, 'ENETDOWN');
      assert.equal(error.interface, 'vb');
      assert.match(error.message as string, /vb.*(down|removed)/);
      await agent.waitFor((m) => m.type === 'close');
      const stats = await agent.request({ cmd: 'stats' }, 'stats');
      assert.equal(stats.closed, true);
      assert.equal(stats.delivered, 1);
      const fds = await agent.request({ cmd: 'fds' }, 'fds');
      assert.equal(fds.fds, (ready.fds as number) - 1, 'the socket descriptor was released');
      assert.equal(agent.ofType('error').length, 1);
      await agent.stop();
      assert.equal(await agent.exited, 0);
    } finally {
      pair.destroy();
    }
  });

  it('ends an async iterator with the typed error when the interface goes down', async () => {
    const pair = newPair();
    try {
      const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' }, iterate: true });
      await sendPackets(pair, pair.a, 'va', MAC_B, [{ protocol: ETH_P_IPV6, bytes: recorded('10') }], { count: 1 });
      const first = await agent.waitFor((m) => m.type === 'initiation');
      assert.deepEqual(first.destination, { address: V6_B, port: 51820, family: 6 });
      run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'down']);
      const error = await agent.waitFor((m) => m.type === 'iterator-error');
      assert.equal(error.code, 'ENETDOWN');
      await agent.stop();
    } finally {
      pair.destroy();
    }
  });

  it('fails with EPERM naming CAP_NET_RAW without the capability', async () => {
    const pair = newPair();
    try {
      const agent = await Agent.start(pair, pair.b, { capture: { interface: 'vb' } }, ['capsh', '--drop=cap_net_raw', '--', '-c']);
      const error = agent.messages[0]!;
      assert.equal(error.type, 'open-error', JSON.stringify(error));
      assert.equal(error.name, 'CaptureError');
      assert.equal(error.code, 'EPERM');
      assert.equal(error.syscall, 'socket');
      assert.match(error.message as string, /CAP_NET_RAW/);
      await agent.exited;
    } finally {
      pair.destroy();
    }
  });

  it('lets the process exit when unref()ed, and keeps it alive when ref()ed again', async () => {
    const pair = newPair();
    try {
      const unrefed = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' }, unref: true, listenStdin: false });
      const code = await Promise.race([unrefed.exited, sleep(5000).then(() => 'still running')]);
      assert.equal(code, 0);
      const refed = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' }, unref: true, ref: true, listenStdin: false });
      const state = await Promise.race([refed.exited, sleep(1500).then(() => 'still running')]);
      assert.equal(state, 'still running');
      // Still capturing while it waits.
      await sendPackets(pair, pair.a, 'va', MAC_B, [{ protocol: ETH_P_IP, bytes: recorded('17') }], { count: 1 });
      await refed.waitFor((m) => m.type === 'initiation');
      refed.child.kill('SIGTERM');
      await refed.exited;
    } finally {
      pair.destroy();
    }
  });
});
