/**
 * The figures behind lib/noise/warm-up.ts's plan: in a fresh process, how long the longest step
 * of `ResponderWarmUp` runs at the event loop's 5 ms budget (that step is an event-loop stall of
 * a gateway with `threads: 0`), against what one whole build and one whole verification cost
 * when they are the process's first.
 *
 *   node --import tsx bench/gateway/warm-up-steps.ts [--out FILE]
 *
 * Each case runs in its own fresh child (cold code is the point). Milliseconds; --out writes JSON.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Responder } from '../../lib/noise/responder.js';
import { buildSyntheticInitiation } from '../../lib/noise/synthetic-initiation.js';
import { ResponderWarmUp } from '../../lib/noise/warm-up.js';

const BUDGET_MS = 5;
const VERIFICATIONS = 40;

type Figures = Record<string, number>;

const cases: Record<string, () => Figures> = {
  /** The warm-up as the event loop runs it: one step a turn, each step timed. */
  staged() {
    const warmUp = new ResponderWarmUp(VERIFICATIONS);
    const steps: number[] = [];
    let finished = false;
    while (!finished) {
      const t = performance.now();
      finished = warmUp.step(BUDGET_MS);
      steps.push(performance.now() - t);
    }
    if (warmUp.failure !== null) throw new Error(warmUp.failure);
    return { steps: steps.length, longestStepMs: Math.max(...steps), firstStepMs: steps[0]!, totalMs: warmUp.spentMs };
  },
  /** What the warm-up's plan avoids: a whole build, then a whole verification, as a process's first. */
  whole() {
    const responder = new Responder(generateKeyPairSync('x25519').privateKey);
    let t = performance.now();
    const packet = buildSyntheticInitiation(responder.publicKeyBytes);
    const firstBuildMs = performance.now() - t;
    t = performance.now();
    if (!responder.unwrap(packet).ok) throw new Error('the synthetic initiation was refused');
    const firstUnwrapMs = performance.now() - t;
    return { firstBuildMs, firstUnwrapMs };
  },
};

const child = process.argv.find((a) => a.startsWith('--child='))?.slice('--child='.length);
if (child !== undefined) {
  process.stdout.write(JSON.stringify(cases[child]!()));
} else {
  const self = fileURLToPath(import.meta.url);
  const figures: Record<string, Figures> = {};
  for (const name of Object.keys(cases)) {
    const runs = [0, 1, 2].map(() => JSON.parse(execFileSync(process.execPath, [...process.execArgv, self, `--child=${name}`], { encoding: 'utf8' })) as Figures);
    figures[name] = Object.fromEntries(Object.keys(runs[0]!).map((k) => [k, Math.max(...runs.map((r) => r[k]!))]));
    console.log(`${name}: ${Object.entries(figures[name]!).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}  (worst of 3 fresh processes)`);
  }
  const outFlag = process.argv.indexOf('--out');
  if (outFlag >= 0) {
    writeFileSync(process.argv[outFlag + 1]!, JSON.stringify({
      schema: 'jitguard-bench-gateway-warm-up/1',
      command: 'node --import tsx bench/gateway/warm-up-steps.ts --out FILE',
      date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cpus: cpus().length,
      budgetMs: BUDGET_MS, verifications: VERIFICATIONS, worstOfThreeFreshProcesses: figures,
    }, null, 2) + '\n');
  }
}
