/**
 * The main job, as a test: demo/gateway.ts runs a `Gateway` on an empty wg0 and checks each of
 * its claims against real kernel WireGuard clients: first-try tunnel through an empty gateway,
 * a stranger refused for one control-plane request, idle eviction and reinstall from the store,
 * revocation. The demo exits non-zero if any check fails; the test also reads its lines.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

it('the demo gateway: JIT install, stranger refused, eviction and reinstall, revocation', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'demo/gateway.ts'], { timeout: 300_000 });
  assert.match(stdout, /ok {3}first ping answered in \d+ ms/);
  assert.match(stdout, /ok {3}reinstalled from the store, without asking the control plane/);
  assert.match(stdout, /ok {3}no tunnel after revocation/);
  assert.doesNotMatch(stdout, /FAIL/);
  assert.match(stdout, /^demo OK$/m);
});
