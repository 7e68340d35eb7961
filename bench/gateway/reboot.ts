/**
 * (e) Reboot: the kernel is empty (a fresh wg0 with its key and port), the store holds N peers.
 * A just-in-time gateway is ready as soon as it has read the interface and opened its capture,
 * whatever N is; a push-model gateway must first load all N into the kernel.
 *
 * Each start is a fresh gateway process (what a reboot runs); a kernel WireGuard client then
 * connects, to show the ready gateway serves.
 */
import { INTERFACE, makePeers, median, sh, type Row } from '../netlink/common.js';
import { freshStorePath, type GatewayMeasurement, type GatewaySizeResult } from './context.js';
import type { Measured, StartReport } from './gateway-process.js';
import { floorFigure } from './bystander.js';
import { longestStall, type StallWindow } from './stall.js';
import { writeStore } from './switchover.js';
import { clientDown, clientUp, createTopology, destroyTopology, firstPing, newKernelClient, tunnelAddress } from './topology.js';

export const measurement: GatewayMeasurement = {
  id: 'reboot',
  title: 'Reboot: start to ready with N peers in the store and an empty kernel',
  figure: 'wall time of Gateway.start() (median over fresh processes)',
  notes: [
    'The store (SqliteStore, written with putPeers before the clock) holds N pushed configurations; wg0 exists with its private key and listen port and no peers, as after a reboot.',
    'Figure: from the call of start() to its promise resolving (reconciled, capture open, eviction timer armed) in a fresh gateway process; opening the store (`new SqliteStore` + `new Gateway`) is shown beside it, and so is the whole of it from the process\'s own start (Node start-up and module loading, the same whatever the store holds, included).',
    'Anchor: what a push-model gateway does instead, loading the same N peers into the kernel. For N = 100,000 it is the `wg addconf` of the switchover scenario in this same run; for N = 1,000,000 it is ten times that figure, a lower bound (the kernel\'s per-peer cost does not fall with N): loading 10^6 peers under TCG would take tens of minutes and ~12 GiB, and the point is only its order of magnitude.',
    'After each start a fresh kernel WireGuard client (its configuration in the store) pings through, to show the gateway serves once ready.',
  ],
  async run(ctx) {
    const results: GatewaySizeResult[] = [];
    for (const n of ctx.config.rebootSizes) {
      const peers = makePeers(n);
      const clients = Array.from({ length: ctx.config.rebootRepeats }, (_, i) => newKernelClient(`wgr${i}`, tunnelAddress(10 + i)));
      const storePath = freshStorePath(`reboot-${n}`);
      ctx.log(`reboot n=${n}: writing the store`);
      const storeSeconds = writeStore(storePath, [...peers, ...clients.map((c) => ({ publicKey: c.publicKey, allowedIp: `${c.address}/32`, endpoint: '' }))]);
      peers.length = 0;
      const t = await createTopology('reboot');
      const starts: number[] = [];
      const opens: number[] = [];
      const processes: number[] = [];
      const replies: number[] = [];
      let worst = longestStall();
      const windows: StallWindow[] = [];
      let stallsOver50Ms = 0;
      try {
        for (const client of clients) {
          const gateway = await ctx.startGateway(t, { storePath });
          try {
            const start = await gateway.call<StartReport>('start');
            starts.push(start.startMs / 1000);
            opens.push(start.openMs / 1000);
            processes.push(start.processStartToReadyMs / 1000);
            await clientUp(t, client);
            const ping = await firstPing(t, client);
            await clientDown(t, client);
            if (ping.ok) replies.push(ping.rttMs! / 1000);
            else ctx.fail(`reboot n=${n}: the client after ready got no reply: ${ping.output.slice(-200)}`);
            const measured = await gateway.call<Measured>('measure');
            worst = longestStall(worst, start.stall, measured.stall);
            windows.push(start.stall, measured.stall);
            stallsOver50Ms += start.stall.stallsOver50Ms + measured.stall.stallsOver50Ms;
          } finally {
            await ctx.stopGateway(gateway, `reboot n=${n}`);
          }
          // The next start finds an empty kernel again.
          await sh('ip', ['netns', 'exec', t.gatewayNs, 'wg', 'set', INTERFACE, 'peer', client.publicKey, 'remove']);
        }
      } finally {
        await destroyTopology(t);
      }
      const rows: Row[] = [];
      const measuredLoad = ctx.bulkLoadSeconds.get(n);
      const largestMeasured = [...ctx.bulkLoadSeconds.entries()].filter(([m]) => m <= n && m > 0).sort((a, b) => b[0] - a[0])[0];
      if (n > 0 && (measuredLoad !== undefined || largestMeasured)) {
        const [m, s] = measuredLoad !== undefined ? [n, measuredLoad] : largestMeasured!;
        const extrapolated = m !== n;
        rows.push({
          impl: 'kernel',
          how: extrapolated ? `\`wg addconf\` of ${m.toLocaleString('en-US')} peers in this run × ${n / m} (lower bound)` : `\`wg addconf\` of the ${n.toLocaleString('en-US')} peers (switchover scenario, this run)`,
          ok: true,
          seconds: (s * n) / m,
          figures: { measuredPeers: m, measuredSeconds: s, extrapolated: extrapolated ? 1 : 0 },
        });
      }
      rows.push({
        impl: 'jitguard',
        how: 'Gateway.start(): read wg0, reconcile (nothing to adopt), open the capture',
        ok: starts.length > 0,
        seconds: starts.length ? median(starts) : undefined,
        figures: {
          starts: starts.length,
          maxStartSeconds: Math.max(...starts),
          firstStartSeconds: starts[0] ?? NaN,
          storeOpenSeconds: median(opens),
          processStartToReadySeconds: median(processes),
          firstReplyAfterReadySeconds: median(replies),
          maxStallMs: worst.maxStallMs,
          maxStallCpuMs: worst.maxStallCpuMs,
          maxBusyStallMs: worst.maxBusyStallMs,
          maxGcPauseMs: worst.maxGcPauseMs,
          stallsOver50Ms,
          ...floorFigure(ctx.bystander(...windows)),
          storeWriteSeconds: storeSeconds,
        },
      });
      results.push({ n, reference: 'kernel', rows });
    }
    return results;
  },
};
