/**
 * The main job, as a test: demo/gateway.ts brings a client up through a gateway that had no
 * peer for it (capture → Noise unwrap → control-plane lookup → initiator-role install →
 * kernel handshake → ping), and refuses a client the control plane does not know.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

it('the demo gateway brings up a just-in-time peer end to end', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'demo/gateway.ts'], { timeout: 300_000 });
  assert.match(stdout, /peers installed: 1; unknown keys refused: [1-9]/);
  assert.match(stdout, /handshake=\d{4}-/);
  assert.match(stdout, /^demo OK$/m);
});
