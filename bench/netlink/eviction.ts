import { randomBytes } from 'node:crypto';
/**
 * Eviction: remove N/10 stale peers from an interface holding N (every tenth peer), in one
 * call per implementation. Each implementation that can remove gets its own fresh fixture;
 * the ones expected to fail are tried on a fixture first and it is checked to be intact.
 */
import {
  type ChildReport,
  type Fixture,
  type Measurement,
  type Row,
  INTERFACE,
  createFixture,
  destroyFixture,
  measure,
  peerCount,
  runChild,
} from './common.js';
import { loadAdapter } from './implementations.js';
import { startStallProbe } from './stall.js';

const now = () => Number(process.hrtime.bigint()) / 1e9;
/** wg(8) takes the keys as arguments: past this many, the list is split over several calls (ARG_MAX). */
const WG_KEYS_PER_CALL = 20000;

const HOW: Record<string, string> = {
  'wireguard-tools.js': '`setConfig` with N/10 peers `removeMe: true`',
  netlink: '`setDevice` with N/10 peers flagged removeMe',
  'netlink-raw': 'one SET_DEVICE `request()` with N/10 peers flagged removeMe',
};

export const measurement: Measurement = {
  id: 'eviction',
  title: 'Eviction: remove N/10 peers from an interface holding N',
  figure: 'wall time of the removal',
  notes: [
    'wg(8): one `wg set wg0 peer K1 remove peer K2 remove …` process (split only past 20,000 keys, for ARG_MAX).',
    'jitguard: `removePeers` in a process that has already read the device once (untimed `getDevice`; its time is shown) and made two no-op removals (1 key, and 1,000 keys: the large-config path), as a running gateway has: the figure is the steady state, not JavaScript compiling on first use.',
  ],
  async run(ctx, n) {
    const all = ctx.peers(n);
    const keys = all.filter((_, i) => i % 10 === 0).map((p) => p.publicKey);
    const expected = n - keys.length;
    const rows: Row[] = [];

    // wg(8)
    ctx.log(`eviction n=${n} wg: ${keys.length} keys`);
    await withFixture(ctx, 'evict', all, async (fixture) => {
      let seconds = 0;
      let rss = 0;
      let error: string | undefined;
      for (let at = 0; at < keys.length && !error; at += WG_KEYS_PER_CALL) {
        const args = ['wg', 'set', INTERFACE];
        for (const k of keys.slice(at, at + WG_KEYS_PER_CALL)) args.push('peer', k, 'remove');
        const result = await measure(args, { ns: fixture.ns });
        seconds += result.wallSeconds;
        rss = Math.max(rss, result.maxRssKiB);
        if (result.status !== 0) error = `wg set exited ${result.status}: ${result.stderr.trim().slice(0, 300)}`;
      }
      const calls = Math.ceil(keys.length / WG_KEYS_PER_CALL);
      const row: Row = { impl: 'wg', how: '`wg set wg0 peer K remove …` (one process)', ok: !error, error, seconds, maxRssKiB: rss, figures: { calls } };
      if (calls > 1) row.notes = [`${calls} processes (ARG_MAX); times summed`];
      await verify(row, fixture, expected);
      if (!row.ok) ctx.fail(`eviction n=${n} wg: ${row.error}`);
      rows.push(row);
    });

    // Expected failures first, on the fixture jitguard then uses (rebuilt if they touched it).
    let fixture = await createFixture('evict', all);
    try {
      for (const impl of ['wireguard-tools.js', 'netlink', 'netlink-raw'].filter((i) => !ctx.config.skipImpls.includes(i))) {
        ctx.log(`eviction n=${n} ${impl}`);
        const outcome = await runChild('eviction', impl, { keys, privateKey: fixture.privateKey }, fixture.ns);
        const row: Row = {
          impl,
          how: HOW[impl]!,
          ok: outcome.ok,
          seconds: outcome.seconds,
          error: outcome.error,
          errorCode: outcome.errorCode,
          maxRssKiB: outcome.maxRssKiB,
        };
        if (row.ok) await verify(row, fixture, expected);
        rows.push(row);
        const intact = await peerCount(fixture.ns) === n;
        if (!intact) {
          await destroyFixture(fixture.ns);
          fixture = await createFixture('evict', all);
        }
      }
      ctx.log(`eviction n=${n} jitguard`);
      const outcome = await runChild('eviction', 'jitguard', { keys, warm: true }, fixture.ns);
      const row: Row = {
        impl: 'jitguard',
        how: '`removePeers` (one call)',
        ok: outcome.ok,
        seconds: outcome.seconds,
        figures: outcome.figures,
        error: outcome.error,
        errorCode: outcome.errorCode,
        maxRssKiB: outcome.maxRssKiB,
      };
      if (row.ok) await verify(row, fixture, expected);
      if (!row.ok) ctx.fail(`eviction n=${n} jitguard: ${row.error}`);
      rows.push(row);
    } finally {
      await destroyFixture(fixture.ns);
    }

    return { n, reference: 'wg', rows };
  },
};

async function withFixture(ctx: { log(m: string): void }, tag: string, peers: Parameters<typeof createFixture>[1], body: (f: Fixture) => Promise<void>): Promise<void> {
  const fixture = await createFixture(tag, peers);
  try {
    await body(fixture);
  } finally {
    await destroyFixture(fixture.ns);
  }
}

async function verify(row: Row, fixture: Fixture, expected: number): Promise<void> {
  const count = await peerCount(fixture.ns);
  if (count !== expected) {
    row.ok = false;
    row.error = `${row.error ? row.error + '; ' : ''}${INTERFACE} holds ${count} peers afterwards, expected ${expected}`;
  }
}

export async function child(impl: string, params: Record<string, unknown>): Promise<ChildReport> {
  const keys = params.keys as string[];
  const adapter = await loadAdapter(impl, { privateKey: params.privateKey as string | undefined });
  try {
    const figures: Record<string, number> = {};
    if (params.warm) {
      // A running gateway has read its device before (a removal itself reads nothing: it
      // needs no own-key check); the time of this first read is reported beside the row.
      const t0 = now();
      await adapter.dump();
      figures.warmupGetDeviceSeconds = now() - t0;
      // Warm the removal paths once with keys that are not on the device (the kernel ignores
      // them): one key (a gateway's usual eviction) and 1,000 (past jitguard's pipeline
      // threshold, the path a removal of N/10 takes), so the figure is not code compiling.
      await adapter.removePeers([randomBytes(32).toString('base64')]);
      await adapter.removePeers(Array.from({ length: 1000 }, () => randomBytes(32).toString('base64')));
    }
    const t0 = now();
    const probe = startStallProbe();
    await adapter.removePeers(keys);
    const seconds = now() - t0;
    return { ok: true, seconds, figures: { ...figures, maxStallMs: probe.stop() } };
  } finally {
    adapter.close();
  }
}
