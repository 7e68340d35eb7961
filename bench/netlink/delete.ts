/**
 * Deleting an interface that holds N peers. `ip link del` (RTM_DELLINK) makes the kernel tear
 * the peers down inside link deletion, ~17 ms per peer under TCG; jitguard's deleteDevice
 * removes the peers with one SET first. Past config.linkDelMaxN the RTM_DELLINK-with-peers
 * rows are not run (they would take most of the budget); the table says so.
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

export const measurement: Measurement = {
  id: 'delete',
  title: 'Deleting an interface holding N peers',
  figure: 'wall time until the interface is gone',
  notes: [
    'Reference: `ip link del wg0`. Each row gets its own fresh fixture (wireguard-tools.js is tried on jitguard\'s fixture first, which is then checked to be intact).',
    '`ip link del` with many peers keeps the kernel in link deletion ~17 ms per peer under TCG (rtnl held); past the configured N it is not run and its row is marked skipped.',
  ],
  async run(ctx, n) {
    const peers = ctx.peers(n);
    const rows: Row[] = [];
    const cfg = ctx.config;

    const tool = async (impl: string, how: string, commands: string[][]): Promise<void> => {
      ctx.log(`delete n=${n} ${impl}`);
      const fixture = await createFixture('delete', peers);
      try {
        let seconds = 0;
        let rss = 0;
        let error: string | undefined;
        const parts: number[] = [];
        for (const command of commands) {
          const result = await measure(command, { ns: fixture.ns });
          seconds += result.wallSeconds;
          parts.push(result.wallSeconds);
          rss = Math.max(rss, result.maxRssKiB);
          if (result.status !== 0) {
            error = `${command.join(' ')} exited ${result.status}: ${result.stderr.trim().slice(0, 200)}`;
            break;
          }
        }
        const row: Row = { impl, how, ok: !error, error, seconds, maxRssKiB: rss };
        if (parts.length > 1) row.figures = { flushSeconds: parts[0]!, linkDelSeconds: parts[1]! };
        await gone(row, fixture);
        if (!row.ok) ctx.fail(`delete n=${n} ${impl}: ${row.error}`);
        rows.push(row);
      } finally {
        await destroyFixture(fixture.ns);
      }
    };

    if (n <= cfg.linkDelMaxN) {
      await tool('ip', '`ip link del wg0`', [['ip', 'link', 'del', INTERFACE]]);
    } else {
      rows.push({ impl: 'ip', how: '`ip link del wg0`', ok: false, skipped: true, error: `not run above N=${cfg.linkDelMaxN} (budget: ~17 ms per peer under TCG)` });
    }
    await tool('wg-flush', '`wg setconf wg0 /dev/null`, then `ip link del wg0`', [
      ['wg', 'setconf', INTERFACE, '/dev/null'],
      ['ip', 'link', 'del', INTERFACE],
    ]);

    // wireguard-tools.js (expected to do nothing), then jitguard, on one fixture.
    let fixture = await createFixture('delete', peers);
    try {
      ctx.log(`delete n=${n} wireguard-tools.js`);
      const wgt = await runChild('delete', 'wireguard-tools.js', {}, fixture.ns);
      const wgtRow: Row = {
        impl: 'wireguard-tools.js',
        how: '`deleteInterface`',
        ok: wgt.ok,
        seconds: wgt.seconds,
        error: wgt.error,
        errorCode: wgt.errorCode,
        maxRssKiB: wgt.maxRssKiB,
      };
      if (wgtRow.ok) await gone(wgtRow, fixture);
      rows.push(wgtRow);
      if (await peerCount(fixture.ns) !== n) {
        await destroyFixture(fixture.ns);
        fixture = await createFixture('delete', peers);
      }
      ctx.log(`delete n=${n} jitguard`);
      const jg = await runChild('delete', 'jitguard', {}, fixture.ns);
      const row: Row = {
        impl: 'jitguard',
        how: '`deleteDevice` (flushes peers with one SET, then RTM_DELLINK)',
        ok: jg.ok,
        seconds: jg.seconds,
        error: jg.error,
        errorCode: jg.errorCode,
        maxRssKiB: jg.maxRssKiB,
      };
      if (row.ok) await gone(row, fixture);
      if (!row.ok) ctx.fail(`delete n=${n} jitguard: ${row.error}`);
      rows.push(row);
    } finally {
      await destroyFixture(fixture.ns);
    }

    if (n <= cfg.netlinkDelMaxN) {
      ctx.log(`delete n=${n} netlink`);
      const f = await createFixture('delete', peers);
      try {
        const outcome = await runChild('delete', 'netlink', {}, f.ns);
        const row: Row = {
          impl: 'netlink',
          how: 'rtnetlink `delLink` (its WireGuard calls cannot flush peers)',
          ok: outcome.ok,
          seconds: outcome.seconds,
          error: outcome.error,
          errorCode: outcome.errorCode,
          maxRssKiB: outcome.maxRssKiB,
        };
        if (row.ok) await gone(row, f);
        rows.push(row);
      } finally {
        await destroyFixture(f.ns);
      }
    } else {
      rows.push({
        impl: 'netlink',
        how: 'rtnetlink `delLink` (its WireGuard calls cannot flush peers)',
        ok: false,
        skipped: true,
        error: `not run above N=${cfg.netlinkDelMaxN}: the same RTM_DELLINK path as \`ip link del\``,
      });
    }
    return { n, reference: 'ip', rows };
  },
};

async function gone(row: Row, fixture: Fixture): Promise<void> {
  const left = await peerCount(fixture.ns);
  if (left >= 0) {
    row.ok = false;
    row.error = `${row.error ? row.error + '; ' : ''}resolved without an error, but ${INTERFACE} still exists with ${left} peers`;
  }
}

export async function child(impl: string): Promise<ChildReport> {
  const adapter = await loadAdapter(impl, {});
  try {
    const t0 = now();
    const probe = startStallProbe();
    await adapter.deleteInterface();
    const seconds = now() - t0;
    return { ok: true, seconds, figures: { maxStallMs: probe.stop() } };
  } finally {
    adapter.close();
  }
}
