/**
 * The main job, as a test: `npm run demo` (demo/run.sh, which runs it directly on this kernel)
 * must exit 0, and its outcome lines must say what the demo claims: every known client's tunnel
 * up (IPv4, IPv6, behind NAT, over WebSocket), the stranger and the forgery refused for the
 * right reasons, the kernel emptied by idle eviction with the store still full, the reconnect
 * re-installed from the store, and the /metrics lines that count it all. The demo checks each
 * of these itself (that is its exit code); the test reads the lines so that a demo that stopped
 * claiming something cannot pass.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['demo/run.sh'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGTERM'), 240_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

it('npm run demo: every expectation holds, and the outcome lines say so', { timeout: 300_000 }, async (t) => {
  const { code, stdout, stderr, ms } = await runDemo();
  const context = `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
  assert.equal(code, 0, `the demo exited ${code}${context}`);
  assert.doesNotMatch(stdout, /^FAILED/m, context);
  assert.match(stdout, /^demo OK: all \d+ expectations held/m, context);

  // The table: a first reply measured for each known client, and each refusal's reason.
  for (const client of ['ipv4', 'ipv6', 'nat', 'websocket']) {
    assert.match(stdout, new RegExp(`^\\| ${client} +\\| [^|]+\\| \\d+(\\.\\d+)? ms +\\| [\\d.]+ ms +\\| tunnel up \\(installed via resolver\\)`, 'm'), `${client}'s row${context}`);
  }
  assert.match(stdout, /^\| ipv4 +\| [^|]*seen as 192\.0\.2\.11:40011 /m, 'the IPv4 client is seen at its own address and port');
  assert.match(stdout, /^\| ipv6 +\| [^|]*seen as \[2001:db8:1::12\]:40012 /m, 'the IPv6 client is seen at its own address and port');
  assert.match(stdout, /^\| nat +\| [^|]*seen as 192\.0\.2\.13:10(?:0\d\d|100)\b/m, 'the NAT client is seen at its translated address');
  assert.match(stdout, /^\| websocket +\| [^|]*seen as 127\.0\.0\.1:\d+/m, 'the WebSocket client is seen at the relay\'s socket');
  assert.match(stdout, /^\| forger +\| .*\| refused: unauthenticated \(timestamp\), 0 control-plane requests/m, context);
  assert.match(stdout, /^\| stranger +\| .*\| no reply \(waited 3 s\) +\| - +\| refused: unknown \(1 control-plane request\)/m, context);

  // Eviction, the store, the reconnect, as checked expectations.
  for (const line of [
    'the gateway starts with no kernel peers',
    'all 4 evicted as idle',
    'the kernel is back to zero peers',
    'the store still holds all 4',
    'ipv4: re-installed from the store, without asking the control plane',
    'the daemon runs as nobody holding CAP_NET_ADMIN and CAP_NET_RAW only',
    'the daemon drains and exits 0 on SIGTERM',
  ]) assert.match(stdout, new RegExp(`^ {2}ok {3}${line.replace(/[()]/g, '\\$&')}`, 'm'), `"${line}"${context}`);
  assert.match(stdout, /^\[ *[\d.]+ s\] wg show +wg0 peers: \(none\)$/m, 'wg show printed no peers after eviction');

  // The /metrics excerpt, as the daemon wrote it.
  for (const line of [
    'jitguard_kernel_peers 1',
    'jitguard_kernel_stale_peers 0',
    'jitguard_store_peers 4',
    'jitguard_installs_total{via="resolver"} 4',
    'jitguard_installs_total{via="store"} 1',
    'jitguard_rejected_initiations_total{reason="unauthenticated"} 1',
    'jitguard_evictions_total{reason="idle"} 4',
  ]) assert.ok(stdout.includes(`\n  ${line}\n`), `/metrics line "${line}"${context}`);
  assert.match(stdout, /^ {2}jitguard_rejected_initiations_total\{reason="unknown"\} [1-9]\d*$/m, context);

  const table = stdout.split('\n').filter((l) => l.startsWith('|')).join('\n');
  const verdict = /^demo OK: .*$/m.exec(stdout)![0];
  t.diagnostic(`demo: ${(ms / 1000).toFixed(1)} s including the bundle; ${verdict}\n${table}`);
});
