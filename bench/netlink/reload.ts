/**
 * Reload after reboot: N peers into an empty interface (private key already set, as a
 * gateway's boot would leave it), read from the SQLite table a push-model gateway keeps.
 * Wall time from "start reading" to "kernel holds N peers", and the peak RSS of the process
 * doing it (for wg(8): the Node reader that writes the config file, and `wg addconf`).
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import {
  INTERFACE,
  MAXRSS,
  type ChildReport,
  type Measurement,
  type Row,
  type SizeResult,
  destroyFixture,
  inspect,
  newNamespace,
  peersConf,
  runChild,
  scratchPath,
} from './common.js';
import { loadAdapter, openPeerStore } from './implementations.js';
import { startStallProbe } from './stall.js';

const now = () => Number(process.hrtime.bigint()) / 1e9;

interface Variant {
  impl: string;
  how: string;
  /** Whether wg0 (with a private key) exists before the load. */
  interfaceExists: boolean;
  required: boolean;
}

const VARIANTS: Variant[] = [
  { impl: 'wg', how: 'read SQLite → write a config file → `wg addconf`', interfaceExists: true, required: true },
  { impl: 'jitguard', how: 'read SQLite → one `setDevice` with N peers', interfaceExists: true, required: true },
  { impl: 'wireguard-tools.js', how: 'read SQLite → `setConfig` onto the existing interface', interfaceExists: true, required: false },
  { impl: 'wireguard-tools.js', how: 'read SQLite → `setConfig`, letting it create the interface itself', interfaceExists: false, required: false },
  { impl: 'netlink', how: 'read SQLite → `setDevice` with N peers', interfaceExists: true, required: false },
  { impl: 'netlink-raw', how: 'read SQLite → one SET_DEVICE `request()` with N peers', interfaceExists: true, required: false },
];

export const measurement: Measurement = {
  id: 'reload',
  title: 'Reload after reboot: N peers from SQLite into an empty interface',
  figure: 'wall time, SQLite read included',
  notes: [
    'The interface exists with its private key and no peers; each implementation runs in a fresh network namespace and its own process.',
    'Timed from the first SQLite read to the kernel holding N peers; module loading and process start-up are not counted (a booting gateway pays them once either way).',
    'wg(8): a Node process reads the table with better-sqlite3, writes a config file to tmpfs and runs `wg addconf`; its figure includes all three, and `wg addconf` alone is shown as a component.',
    'Peak RSS is the kernel\'s ru_maxrss for the process and the children it waited for.',
  ],
  async run(ctx, n) {
    const db = await ctx.sqlite(n);
    const rows: Row[] = [];
    for (const variant of VARIANTS.filter((v) => !ctx.config.skipImpls.includes(v.impl))) {
      ctx.log(`reload n=${n} ${variant.impl}: ${variant.how}`);
      const { ns, privateKey } = await newNamespace('reload', { bare: !variant.interfaceExists });
      try {
        const outcome = await runChild('reload', variant.impl, { db, n, privateKey }, ns);
        const row: Row = {
          impl: variant.impl,
          how: variant.how,
          ok: outcome.ok,
          seconds: outcome.seconds,
          figures: outcome.figures,
          maxRssKiB: outcome.maxRssKiB,
          error: outcome.error,
          errorCode: outcome.errorCode,
          notes: outcome.notes,
        };
        if (row.ok) {
          // Trust nothing: count the peers with wg(8).
          const state = await inspect(ns);
          if (state.peers !== n || !state.hasPrivateKey) {
            row.ok = false;
            row.error = `reported success, but ${INTERFACE} holds ${state.peers} peers (expected ${n})${state.exists && !state.hasPrivateKey ? ' and no private key' : ''}`;
          }
        }
        if (!row.ok && variant.required) ctx.fail(`reload n=${n} ${variant.impl}: ${row.error}`);
        rows.push(row);
      } finally {
        await destroyFixture(ns);
      }
    }
    return { n, reference: 'wg', rows } satisfies SizeResult;
  },
};

export async function child(impl: string, params: Record<string, unknown>): Promise<ChildReport> {
  const db = params.db as string;
  const n = params.n as number;
  const store = await openPeerStore(db);
  if (impl === 'wg') {
    const conf = scratchPath(`reload-${process.pid}.conf`);
    try {
      const t0 = now();
      const peers = store.read();
      const t1 = now();
      writeFileSync(conf, peersConf(peers));
      const t2 = now();
      const run = spawnSync(MAXRSS, ['--', 'wg', 'addconf', INTERFACE, conf], { encoding: 'utf8', maxBuffer: 1 << 26 });
      const t3 = now();
      const report = /@maxrss (.*)/.exec(run.stderr ?? '');
      const wg = report ? (JSON.parse(report[1]!) as { wallSeconds: number; maxRssKiB: number; status: number }) : undefined;
      if (!wg || wg.status !== 0) return { ok: false, error: `wg addconf failed: ${(run.stderr ?? '').trim().slice(0, 300)}` };
      if (peers.length !== n) return { ok: false, error: `read ${peers.length} rows, expected ${n}` };
      return {
        ok: true,
        seconds: t3 - t0,
        figures: { readSeconds: t1 - t0, writeConfSeconds: t2 - t1, wgAddconfSeconds: wg.wallSeconds, wgAddconfMaxRssKiB: wg.maxRssKiB },
      };
    } finally {
      rmSync(conf, { force: true });
      store.close();
    }
  }
  const adapter = await loadAdapter(impl, { privateKey: params.privateKey as string });
  try {
    const t0 = now();
    const peers = store.read();
    const t1 = now();
    const probe = startStallProbe();
    await adapter.setPeers(peers);
    const t2 = now();
    return { ok: true, seconds: t2 - t0, figures: { readSeconds: t1 - t0, loadSeconds: t2 - t1, maxStallMs: probe.stop() } };
  } finally {
    adapter.close();
    store.close();
  }
}
