/**
 * (a) A client's first initiation → first ping reply: just in time (the gateway's kernel does not
 * know the client; the gateway learns it from the initiation and installs it from the store)
 * against a peer installed beforehand (the kernel answers the initiation itself). Real kernel
 * WireGuard clients, a fresh interface and key for every sample, so every sample is a first
 * handshake; the two variants alternate so drift in the shared host hits both alike.
 */
import { fileExists, latencyFigures, quantile, sh, INSTALL_FLOOR, INTERFACE, type Row } from '../netlink/common.js';
import { freshStorePath, type GatewayMeasurement, type GatewaySizeResult } from './context.js';
import type { InstalledRecord, Measured } from './gateway-process.js';
import { clientDown, clientUp, createTopology, destroyTopology, firstPing, newKernelClient, tunnelAddress, type Topology } from './topology.js';

type Variant = 'jit' | 'preinstalled';

export const measurement: GatewayMeasurement = {
  id: 'jit-latency',
  title: 'First initiation → first ping reply: JIT vs a peer installed beforehand',
  figure: 'p50 of ping\'s RTT for the first packet of a fresh kernel WireGuard client',
  notes: [
    'Each sample is a new kernel WireGuard interface with a new key in the clients\' namespace (so a first handshake), configured with only the gateway\'s key and endpoint; `ping -c 1 -I wgcN` measures from the moment its first packet enters the interface, which holds it and sends the first initiation, to the reply: process start-up is not counted.',
    'JIT: the client\'s configuration is pushed to the gateway (`upsertPeer`) before the sample, so the install comes from the store; the gateway\'s kernel does not know the client until the gateway installs it (initiator role: the kernel handshakes back at once).',
    'Pre-installed: the peer is added to wg0 with wg(8) beforehand, as a push-model gateway has it, with the same gateway process capturing (it verifies the initiation, finds the key in no store, and leaves it alone); the kernel answers the client\'s initiation itself.',
    'Variants alternate sample by sample; warm-up samples of both run first and are not counted.',
    'Install floor: bench/gateway/install-floor.c sends the same one-peer SET the gateway sends (endpoint, one allowed IP, keepalive 25 so the kernel initiates) from one long-running C process to the same wg0, one every 300 ms, and times sendmsg to ack; each peer is removed again untimed. It is what any user-space install must wait for in this VM.',
    'JIT floor: the pre-installed p50 plus the install floor\'s p50 plus two X25519 (a verification\'s DH, measured in the gateway process): no just-in-time path can answer a first initiation faster here, because it must authenticate the initiation and then install the peer before the kernel answers. Its ratio to the pre-installed p50 says whether the 1.5× goal is reachable in this VM at all.',
  ],
  async run(ctx) {
    const { jitSamples, jitWarmup } = ctx.config;
    const t = await createTopology('jit');
    const storePath = freshStorePath('jit');
    const gateway = await ctx.startGateway(t, { storePath, evictInterval: 3600 });
    try {
      await gateway.call('start');
      await gateway.call('mark');
      const samples: Record<Variant, number[]> = { jit: [], preinstalled: [] };
      const failures: string[] = [];
      let k = 0;
      const order: Variant[] = [];
      for (let i = 0; i < jitWarmup + jitSamples; i++) order.push(...((i % 2 === 0 ? ['jit', 'preinstalled'] : ['preinstalled', 'jit']) as Variant[]));
      const jitKeys = new Set<string>();
      for (const [index, variant] of order.entries()) {
        const warm = index < 2 * jitWarmup;
        const client = newKernelClient(`wgc${k}`, tunnelAddress(k));
        k++;
        if (variant === 'jit') {
          await gateway.call('upsert', { peers: [{ publicKey: client.publicKey, allowedIps: [`${client.address}/32`] }] });
          if (!warm) jitKeys.add(client.publicKey);
        } else {
          await sh('ip', ['netns', 'exec', t.gatewayNs, 'wg', 'set', INTERFACE, 'peer', client.publicKey, 'allowed-ips', `${client.address}/32`]);
        }
        await clientUp(t, client);
        const ping = await firstPing(t, client);
        await clientDown(t, client);
        if (!ping.ok) {
          failures.push(`${variant} sample ${index}: ${ping.output.trim().slice(-200)}`);
          continue;
        }
        if (!warm) samples[variant].push(ping.rttMs! / 1000);
      }
      const measured = await gateway.call<Measured>('measure');
      const installed = (await gateway.call<InstalledRecord[]>('installed')).filter((r) => jitKeys.has(r.publicKey));
      const knock = installed.map((r) => r.knockToInstallMs / 1000).sort((a, b) => a - b);
      for (const f of failures) ctx.fail(`jit-latency: ${f}`);
      const row = (variant: Variant, impl: string, how: string, extra: Record<string, number> = {}): Row => {
        const s = samples[variant];
        const figures = { ...latencyFigures(s), ...extra };
        return s.length ? { impl, how, ok: true, seconds: figures.p50Seconds, figures } : { impl, how, ok: false, error: 'no successful sample' };
      };
      const rows = [
        row('preinstalled', 'kernel', 'peer added with wg(8) before the client starts; the kernel answers'),
        row('jit', 'jitguard', 'Gateway: capture → verify → store → install as initiator; the kernel handshakes back', {
          knockToInstallP50Seconds: quantile(knock, 0.5),
          knockToInstallMaxSeconds: knock[knock.length - 1] ?? NaN,
          maxStallMs: measured.stall.maxStallMs,
          stallsOver50Ms: measured.stall.stallsOver50Ms,
          installNetlinkCalls: measured.stats.installNetlinkCalls,
          rejectedUnknown: measured.stats.rejected.unknown,
        }),
      ];
      const floor = await installFloor(t.gatewayNs, jitSamples);
      if (floor.length) {
        const dh = measured.dhSeconds ?? NaN;
        const jitFloor = quantile(samples.preinstalled.slice().sort((a, b) => a - b), 0.5) + quantile(floor, 0.5) + 2 * dh;
        rows.push({
          impl: 'c-floor', how: 'one-peer SET as initiator from C (bench/gateway/install-floor.c), one every 300 ms: sendmsg → ack',
          ok: true, seconds: quantile(floor, 0.5), figures: { ...latencyFigures(floor), x25519Seconds: dh, jitFloorSeconds: jitFloor },
        });
      }
      const series = Object.fromEntries((['jit', 'preinstalled'] as Variant[]).map((v) => [v, samples[v].map((s, i) => ({ t: i + 1, value: s }))]));
      return [{ n: jitSamples, reference: 'kernel', rows, series, context: { failedSamples: failures.length, warmupSamples: jitWarmup } } satisfies GatewaySizeResult];
    } finally {
      await ctx.stopGateway(gateway, `jit-latency`);
      await destroyTopology(t as Topology);
    }
  },
};

/** Install latencies from the C floor program in the gateway's namespace (seconds, sorted); empty when it is not built. */
async function installFloor(namespace: string, count: number): Promise<number[]> {
  if (!fileExists(INSTALL_FLOOR)) return [];
  const output = await sh('ip', ['netns', 'exec', namespace, INSTALL_FLOOR, INTERFACE, String(Math.max(8, count)), '300', '--keepalive']);
  return output.trim().split('\n').map((line) => Number(line) / 1e9).sort((a, b) => a - b);
}
