/**
 * (b) A burst of N distinct authenticated initiations into an empty gateway: time from the first
 * packet sent to the N-th peer in the kernel, against the kernel's bulk floor for the same N peers
 * (`wg addconf` onto an interface with a private key, in a fresh namespace, same run).
 *
 * The initiations come over UDP from the clients' namespace, one source address per client,
 * through the gateway's capture: the path real clients' packets take (kernel filter, AF_PACKET
 * ring, batch reads, per-source rate limit). `Gateway.inject` would skip the capture and the
 * link, and it would have to be fed from inside the gateway process, whose CPU is what is measured.
 */
import { availableParallelism } from 'node:os';
import { createFixture, destroyFixture, latencyFigures, median, type PeerSpec, type Row } from '../netlink/common.js';
import { floorFigure } from './bystander.js';
import { freshStorePath, machineCpu, sleep, type GatewayMeasurement, type GatewaySizeResult, type Point } from './context.js';
import type { InstalledRecord, Measured } from './gateway-process.js';
import type { SendReport } from './initiator-process.js';
import { GATEWAY_ADDRESS, LISTEN_PORT, createTopology, destroyTopology, kernelPeerCount, tunnelAddress } from './topology.js';

export const measurement: GatewayMeasurement = {
  id: 'burst',
  title: 'A burst of distinct authenticated initiations into an empty gateway',
  figure: 'wall time from the first initiation sent to the last peer in the kernel',
  notes: [
    'The synthetic initiator (bench/gateway/initiator.ts: node:crypto X25519 and ChaCha20-Poly1305, @noble/hashes BLAKE2s; nothing from lib/noise) builds every initiation before the clock starts, each from a fresh static key, and sends them back to back with dgram, each from its own source address on the clients\' side of the veth link, so they reach the gateway through its capture as real clients\' would.',
    'Every key\'s configuration was pushed to the gateway (`upsertPeer`) beforehand: installs come from the store, no resolver is involved.',
    'The clock stops when the gateway reports the N-th `installed` event (its `setDevice` returned, so the kernel holds the peer); wg(8) then counts the peers.',
    'Verification floor: that `wg addconf` plus two X25519 per initiation (the DH of any verification, with ready keys, measured back to back in the gateway process during the run) on every vCPU of the VM at once: no verifying JIT gateway can install N fresh clients faster here, whatever else it does. Its ratio to `wg addconf` says whether the 1.5× goal is reachable in this VM at all.',
    'Floor: `wg addconf` of the same N keys and allowed IPs (endpoints, no keepalive) onto an interface with a private key in a fresh namespace, median of several runs in this same VM run. The JIT install also sets the keepalive that makes the kernel initiate to each client at once; the floor does not.',
  ],
  async run(ctx) {
    const n = ctx.config.burstSize;
    const rows: Row[] = [];
    const runs: Array<Record<string, number>> = [];
    const seriesOfRuns: Array<Record<string, Point[]>> = [];
    const dhSeconds: number[] = [];
    let keys: string[] = [];
    for (let repeat = 0; repeat < ctx.config.burstRepeats; repeat++) {
      const t = await createTopology('burst', { sources: n });
      const initiator = await ctx.startInitiator(t);
      let gateway;
      try {
        await initiator.call('sockets', { addresses: t.sources });
        const prepared = await initiator.call<{ publicKeys: string[]; prepareMs: number }>('prepare', { name: 'burst', kind: 'honest', count: n, responderPublicKey: t.publicKey });
        keys = prepared.publicKeys;
        ctx.log(`burst ${repeat + 1}/${ctx.config.burstRepeats}: ${n} initiations built in ${(prepared.prepareMs / 1000).toFixed(1)} s`);
        gateway = await ctx.startGateway(t, { storePath: freshStorePath('burst'), evictInterval: 3600 });
        await gateway.call('start');
        await gateway.call('upsert', { peers: keys.map((publicKey, i) => ({ publicKey, allowedIps: [`${tunnelAddress(i)}/32`] })) });
        await sleep(500);
        await gateway.call('mark');
        const reached = gateway.call<number | null>('waitInstalls', { count: n, timeoutMs: 300_000 }, 310_000);
        const cpuBefore = machineCpu();
        const sent = await initiator.call<SendReport>('send', { name: 'burst', target: { address: GATEWAY_ADDRESS, port: LISTEN_PORT }, sources: 'spread' });
        const doneAt = await reached;
        const cpuAfter = machineCpu();
        const measured = await gateway.call<Measured>('measure');
        if (measured.dhSeconds !== undefined) dhSeconds.push(measured.dhSeconds);
        const installed = await gateway.call<InstalledRecord[]>('installed');
        const inKernel = await kernelPeerCount(t);
        await sleep(1000);
        const back = await initiator.call<{ receivedInitiations: number }>('received');
        const s = measured.stats;
        if (doneAt === null || inKernel !== n) {
          ctx.fail(`burst: ${installed.length} of ${n} installed (kernel holds ${inKernel}); capture drops ${s.captureKernelDrops}/${s.captureQueueDrops}, rejects ${JSON.stringify(nonZero(s.rejected))}`);
          continue;
        }
        const arrivals = installed.map((r) => r.at - r.knockToInstallMs).sort((a, b) => a - b);
        runs.push({
          seconds: (doneAt - sent.startedAt) / 1000,
          sendSeconds: (sent.finishedAt - sent.startedAt) / 1000,
          firstArrivalSeconds: (arrivals[0]! - sent.startedAt) / 1000,
          lastArrivalSeconds: (arrivals[arrivals.length - 1]! - sent.startedAt) / 1000,
          firstInstallSeconds: (Math.min(...installed.map((r) => r.at)) - sent.startedAt) / 1000,
          installNetlinkCalls: s.installNetlinkCalls,
          knockToInstallP50Seconds: latencyFigures(installed.map((r) => r.knockToInstallMs / 1000)).p50Seconds!,
          knockToInstallMaxSeconds: Math.max(...installed.map((r) => r.knockToInstallMs)) / 1000,
          gatewayCpuSeconds: (measured.cpuUserMicros + measured.cpuSystemMicros) / 1e6,
          // The whole VM over the same window (both vCPUs): what the kernel and the rest used beside the gateway.
          machineBusySeconds: cpuAfter.busy - cpuBefore.busy,
          machineIdleSeconds: cpuAfter.idle - cpuBefore.idle,
          maxStallMs: measured.stall.maxStallMs,
          maxStallCpuMs: measured.stall.maxStallCpuMs,
          maxBusyStallMs: measured.stall.maxBusyStallMs,
          maxGcPauseMs: measured.stall.maxGcPauseMs,
          stallsOver50Ms: measured.stall.stallsOver50Ms,
          ...floorFigure(ctx.bystander(measured.stall)),
          captureKernelDrops: s.captureKernelDrops,
          captureQueueDrops: s.captureQueueDrops,
          rejected: Object.values(s.rejected).reduce((a, b) => a + b, 0),
          kernelHandshakesBackWithin1s: back.receivedInitiations,
        });
        seriesOfRuns.push({
          installed: installed.map((r) => r.at).sort((a, b) => a - b).map((at, i) => ({ t: (at - sent.startedAt) / 1000, value: i + 1 })),
          arrived: arrivals.map((at, i) => ({ t: (at - sent.startedAt) / 1000, value: i + 1 })),
        });
      } finally {
        await ctx.stopGateway(gateway, `burst`);
        await initiator.close();
        await destroyTopology(t);
      }
    }
    // The floor: the same keys and allowed IPs, loaded by wg(8) in one process.
    const peers: PeerSpec[] = keys.map((publicKey, i) => ({ publicKey, allowedIp: `${tunnelAddress(i)}/32`, endpoint: `198.18.0.1:${1024 + i}` }));
    const floors: number[] = [];
    for (let i = 0; i < ctx.config.floorRepeats && peers.length; i++) {
      const fixture = await createFixture('burst-floor', peers);
      floors.push(fixture.bulkSeconds);
      await destroyFixture(fixture.ns);
    }
    if (floors.length) {
      ctx.bulkLoadSeconds.set(n, median(floors));
      rows.push({ impl: 'kernel', how: `\`wg addconf\` of the same ${n} peers onto an interface with a private key`, ok: true, seconds: median(floors), figures: { runs: floors.length, minSeconds: Math.min(...floors), maxSeconds: Math.max(...floors) } });
      if (dhSeconds.length) {
        const x25519Seconds = median(dhSeconds);
        const cpus = availableParallelism();
        rows.push({
          impl: 'verify-floor', how: `\`wg addconf\` + ${n} × two X25519 with ready keys, spread over the VM's ${cpus} vCPUs`,
          ok: true, seconds: median(floors) + (n * 2 * x25519Seconds) / cpus, figures: { x25519Seconds, cpus },
        });
      }
    }
    if (runs.length) {
      const best = runs.map((r) => r.seconds!).sort((a, b) => a - b);
      const typical = runs.find((r) => r.seconds === median(best)) ?? runs[0]!;
      const figures: Record<string, number> = { ...typical, runs: runs.length, medianSeconds: median(best), minSeconds: best[0]!, maxSeconds: best[best.length - 1]! };
      const stalled = runs.reduce((a, r) => (r.maxStallMs! > a.maxStallMs! ? r : a));
      figures.maxStallMs = stalled.maxStallMs!;
      figures.maxStallCpuMs = stalled.maxStallCpuMs!;
      figures.maxBusyStallMs = Math.max(...runs.map((r) => r.maxBusyStallMs!));
      figures.maxGcPauseMs = Math.max(...runs.map((r) => r.maxGcPauseMs!));
      if (runs.every((r) => r.bystanderMaxStallMs !== undefined)) figures.bystanderMaxStallMs = Math.max(...runs.map((r) => r.bystanderMaxStallMs!));
      rows.push({ impl: 'jitguard', how: 'Gateway: N initiations over UDP through the capture; installs coalesced', ok: true, seconds: median(best), figures });
      // The plot shows the run closest to the median.
      const closest = runs.reduce((k, r, i) => (Math.abs(r.seconds! - median(best)) < Math.abs(runs[k]!.seconds! - median(best)) ? i : k), 0);
      return [{ n, reference: 'kernel', rows, series: seriesOfRuns[closest], context: { plottedRun: closest + 1 } } satisfies GatewaySizeResult];
    } else {
      rows.push({ impl: 'jitguard', how: 'Gateway', ok: false, error: 'no burst completed' });
    }
    return [{ n, reference: 'kernel', rows } satisfies GatewaySizeResult];
  },
};

function nonZero(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, v]) => v > 0));
}
