/**
 * The demo's verdict and the readings it takes from /metrics (demo/report.ts,
 * demo/gateway-daemon.ts): the exit code is 0 only when every expectation held, and each failed
 * one is named on its own `FAILED:` line (what test/kernel/demo.test.ts and a newcomer read).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Expectations, verdict } from '../../../demo/report.js';
import { metricLines, metricValue } from '../../../demo/gateway-daemon.js';

describe('the demo verdict', () => {
  const quietly = <T>(body: () => T): T => {
    const log = console.log;
    console.log = () => {};
    try {
      return body();
    } finally {
      console.log = log;
    }
  };

  it('exits 0 with one OK line when every expectation held', () => {
    const expectations = new Expectations();
    quietly(() => {
      expectations.expect('ipv4: answered at its first try', true, 'first reply 900 ms');
      expectations.expect('the kernel is back to zero peers', true);
    });
    const { lines, exitCode } = verdict(expectations.checked, null, 31.24, 'inside a TCG VM');
    assert.equal(exitCode, 0);
    assert.deepEqual(lines, ['demo OK: all 2 expectations held (31.2 s; inside a TCG VM)']);
  });

  it('exits 1 naming each failed expectation, with its detail', () => {
    const expectations = new Expectations();
    quietly(() => {
      expectations.expect('ipv4: answered at its first try', false, 'first reply - ms');
      expectations.expect('the kernel is back to zero peers', true);
      expectations.expect('the store still holds all 4', false);
    });
    const { lines, exitCode } = verdict(expectations.checked, null, 40, null);
    assert.equal(exitCode, 1);
    assert.deepEqual(lines, [
      'FAILED: ipv4: answered at its first try (first reply - ms)',
      'FAILED: the store still holds all 4',
      'demo FAILED: 2 of 3 expectations failed (40.0 s)',
    ]);
  });

  it('exits 1 when the demo stopped early, even with every checked expectation held, or with none checked', () => {
    const expectations = new Expectations();
    quietly(() => expectations.expect('the gateway starts with no kernel peers', true));
    const stopped = verdict(expectations.checked, "no the daemon's ready line within 120 s", 125, null);
    assert.equal(stopped.exitCode, 1);
    assert.equal(stopped.lines[0], "FAILED: the demo could not go on: no the daemon's ready line within 120 s");
    assert.match(stopped.lines.at(-1)!, /^demo FAILED: 0 of 1 expectations failed, and it stopped early/);
    assert.equal(verdict([], null, 1, null).exitCode, 1, 'nothing checked is not a pass');
  });

  it('prints ok or FAIL per expectation as it is checked', () => {
    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => printed.push(line);
    try {
      const expectations = new Expectations();
      assert.equal(expectations.expect('a', true), true);
      assert.equal(expectations.expect('b', false, 'why'), false);
    } finally {
      console.log = log;
    }
    assert.deepEqual(printed, ['  ok   a', '  FAIL b (why)']);
  });
});

describe('reading /metrics', () => {
  const text = [
    '# HELP jitguard_kernel_peers Peers in the kernel at the last scan or change.',
    '# TYPE jitguard_kernel_peers gauge',
    'jitguard_kernel_peers 1',
    'jitguard_kernel_peers_extra 7',
    'jitguard_installs_total{via="store"} 1',
    'jitguard_installs_total{via="resolver"} 4',
    '',
  ].join('\n');

  it('takes one series by name and labels, and not a longer name that starts the same', () => {
    assert.equal(metricValue(text, 'jitguard_kernel_peers'), 1);
    assert.equal(metricValue(text, 'jitguard_installs_total', '{via="resolver"}'), 4);
    assert.equal(metricValue(text, 'jitguard_installs_total'), null, 'a labelled series needs its labels');
    assert.equal(metricValue(text, 'jitguard_store_peers'), null);
  });

  it('lists every series of the named metrics as written, without comments', () => {
    assert.deepEqual(metricLines(text, ['jitguard_kernel_peers', 'jitguard_installs_total']), [
      'jitguard_kernel_peers 1',
      'jitguard_installs_total{via="store"} 1',
      'jitguard_installs_total{via="resolver"} 4',
    ]);
  });
});
