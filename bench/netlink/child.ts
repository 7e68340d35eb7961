/**
 * Child-process entry of the netlink benchmarks: one implementation, one measurement, in its
 * own Node process (so its peak RSS is its own), started by common.ts `runChild` inside the
 * measurement's network namespace.
 *
 *   node --import tsx bench/netlink/child.ts PARAMS.json
 *
 * PARAMS.json: { measurement, impl, params }. Prints one line "@result {ChildReport}".
 */
import { readFileSync } from 'node:fs';
import type { ChildReport } from './common.js';
import { describeError } from './common.js';

export type ChildFunction = (impl: string, params: Record<string, unknown>) => Promise<ChildReport>;

const modules: Record<string, () => Promise<{ child: ChildFunction }>> = {
  'install-latency': () => import('./install-latency.js'),
  reload: () => import('./reload.js'),
  dump: () => import('./dump.js'),
  eviction: () => import('./eviction.js'),
  delete: () => import('./delete.js'),
  baseline: async () => ({ child: baseline }),
};

/** Peak RSS of a process that only loaded the implementation (the floor under its other figures). */
const baseline: ChildFunction = async (impl) => {
  const { loadAdapter } = await import('./implementations.js');
  const adapter = await loadAdapter(impl);
  adapter.close();
  return { ok: true };
};

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: child.ts PARAMS.json');
  const { measurement, impl, params } = JSON.parse(readFileSync(file, 'utf8')) as {
    measurement: string;
    impl: string;
    params: Record<string, unknown>;
  };
  const load = modules[measurement];
  if (!load) throw new Error(`unknown measurement ${measurement}`);
  let report: ChildReport;
  try {
    const { child } = await load();
    report = await child(impl, params);
  } catch (error) {
    report = { ok: false, ...describeError(error) };
  }
  report.selfMaxRssKiB = process.resourceUsage().maxRSS;
  process.stdout.write(`@result ${JSON.stringify(report)}\n`, () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stdout.write(`@result ${JSON.stringify({ ok: false, ...describeError(error) })}\n`, () => process.exit(0));
});
