/**
 * Kernel tier for the handshake capture: a kernel WireGuard client in one namespace sends real
 * initiations (IPv4 and IPv6) towards a HandshakeCapture in another; every one the gateway's
 * UDP socket receives is delivered, with its 4-tuple, and nothing else. And, because this
 * kernel (Debian's) has the 802.1Q VLAN driver the host's lacks: a frame to an address on a
 * VLAN device is delivered once, from the VLAN device.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, MAC_B, NetnsPair, V4_A, V4_B, V6_A, V6_B, run, sendPackets } from '../privileged/capture-harness.js';
import { fixIpv4Checksum, fixUdpChecksum, recorded, ETH_P_IP } from '../vectors/frames/frames.js';
import { Responder } from '../../lib/index.js';
import { privateKeyBytes } from '../support/keys.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('HandshakeCapture with a kernel WireGuard initiator', () => {
  it('delivers every kernel initiation, IPv4 and IPv6, with its 4-tuple; each unwraps to the client key', async () => {
    const pair = NetnsPair.create();
    const dir = mkdtempSync(join(tmpdir(), 'jg-kcap-'));
    try {
      const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb', ports: [51820] }, observe: [51820] });
      const gatewayPrivate = privateKeyBytes(7, 'gateway');
      const responder = new Responder(gatewayPrivate);
      const clientKey = join(dir, 'client.key');
      writeFileSync(clientKey, run('wg', ['genkey']), { mode: 0o600 });
      const clientPublic = run('wg', ['pubkey'], run('cat', [clientKey])).trim();
      run('ip', ['-n', pair.a, 'link', 'add', 'wgk', 'type', 'wireguard']);
      run('ip', ['netns', 'exec', pair.a, 'wg', 'set', 'wgk', 'private-key', clientKey, 'listen-port', '40404']);
      run('ip', ['-n', pair.a, 'link', 'set', 'wgk', 'up']);
      const initiate = (endpoint: string) => {
        // Re-adding the peer with a keepalive makes the kernel initiate at once.
        run('ip', ['netns', 'exec', pair.a, 'wg', 'set', 'wgk', 'peer', responder.publicKey, 'remove']);
        run('ip', ['netns', 'exec', pair.a, 'wg', 'set', 'wgk', 'peer', responder.publicKey, 'endpoint', endpoint, 'allowed-ips', '10.99.0.0/24', 'persistent-keepalive', '25']);
      };
      for (let i = 0; i < 3; i++) {
        initiate(`${V4_B}:51820`);
        await sleep(300);
        initiate(`[${V6_B}]:51820`);
        await sleep(300);
      }
      await sleep(500);
      const stats = await agent.request({ cmd: 'stats' }, 'stats');
      const captured = agent.ofType('initiation');
      const observed = agent.ofType('udp');
      await agent.stop();

      assert.ok(observed.length >= 6, `the kernel client sent ${observed.length} initiations`);
      assert.deepEqual(captured.map((m) => m.packet).sort(), observed.map((m) => m.packet).sort(), 'exactly what the UDP socket received');
      for (const m of captured) {
        const family = (m.source as { family: number }).family;
        assert.deepEqual(m.source, { address: family === 4 ? V4_A : V6_A, port: 40404, family });
        assert.deepEqual(m.destination, { address: family === 4 ? V4_B : V6_B, port: 51820, family });
        const unwrapped = responder.unwrap(Buffer.from(m.packet as string, 'hex'));
        assert.ok(unwrapped.ok, `rejected: ${unwrapped.ok ? "" : unwrapped.reason}`);
        assert.equal(unwrapped.publicKey, clientPublic);
      }
      assert.equal(stats.kernelPackets, captured.length, 'only initiations passed the kernel filter');
      assert.equal(stats.kernelDrops, 0);
    } finally {
      pair.destroy();
    }
  });

  it('delivers a frame to an address on a VLAN device once (the tagged copy on the parent is refused), as the stack does', async () => {
    const pair = NetnsPair.create();
    try {
      run('ip', ['-n', pair.b, 'link', 'add', 'link', 'vb', 'name', 'vb.100', 'type', 'vlan', 'id', '100']);
      run('ip', ['-n', pair.b, 'addr', 'add', '10.78.0.2/24', 'dev', 'vb.100']);
      run('ip', ['-n', pair.b, 'link', 'set', 'vb.100', 'up']);
      const everywhere = await Agent.startReady(pair, pair.b, { capture: {}, observe: [51820] });
      const parentOnly = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' } });
      const packet = Uint8Array.from(recorded('01'));
      packet.set([10, 78, 0, 2], 16);
      fixUdpChecksum(fixIpv4Checksum(packet));
      const tci = 100;
      const frame = { protocol: 0x8100, bytes: Uint8Array.from([tci >> 8, tci & 0xff, ETH_P_IP >> 8, ETH_P_IP & 0xff, ...packet]) };
      await sendPackets(pair, pair.a, 'va', MAC_B, [frame], { count: 1 });
      await sleep(500);
      const stats = await everywhere.request({ cmd: 'stats' }, 'stats');
      const captured = everywhere.ofType('initiation');
      const observed = everywhere.ofType('udp');
      const onParent = parentOnly.ofType('initiation');
      await everywhere.stop();
      await parentOnly.stop();
      assert.equal(observed.length, 1, 'the stack delivered it through vb.100');
      assert.equal(captured.length, 1, `captured ${captured.length} times`);
      assert.equal(captured[0]!.ifindex, pair.ifindex(pair.b, 'vb.100'));
      assert.equal(stats.kernelPackets, 1, 'the tagged copy on vb was refused in the kernel filter');
      assert.equal(onParent.length, 0, 'a capture bound to the parent does not see the VLAN\'s traffic');
    } finally {
      pair.destroy();
    }
  });
});
