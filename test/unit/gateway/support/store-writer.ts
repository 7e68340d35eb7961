/**
 * A second process on a store, for test/unit/gateway/sqlite-store.test.ts. It reports through
 * stdout with synchronous writes (its event loop is blocked inside SQLite at the moments that
 * matter).
 *
 *   kill <path> <committed> <uncommitted>
 *     commits <committed> peers, prints "committed", then prints "writing" and starts one
 *     transaction of <uncommitted> more; the parent SIGKILLs it while that transaction writes.
 *   timestamps <path> <publicKey> <count>
 *     prints "ready", waits for a line on stdin, then offers the key the timestamps 1 … count
 *     in order and prints {"accepted": n} as JSON.
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { SqliteStore } from '../../../../lib/gateway/sqlite-store.js';
import { numberedPeer, timestampOf } from './store-rows.js';

const [mode, path, ...rest] = process.argv.slice(2);
const say = (line: string): void => { writeSync(1, `${line}\n`); };

if (mode === 'kill') {
  const committed = Number(rest[0]);
  const uncommitted = Number(rest[1]);
  const store = new SqliteStore(path!);
  store.putPeers(Array.from({ length: committed }, (_, i) => numberedPeer(1, i)));
  say('committed');
  const batch = Array.from({ length: uncommitted }, (_, i) => numberedPeer(2, i));
  say('writing');
  store.putPeers(batch);
  say('finished');
  store.close();
} else if (mode === 'timestamps') {
  const [publicKey, count] = [rest[0]!, Number(rest[1])];
  const store = new SqliteStore(path!);
  say('ready');
  const lines = createInterface({ input: process.stdin });
  lines.once('line', () => {
    let accepted = 0;
    for (let i = 1; i <= count; i++) if (store.advanceTimestamp(publicKey, timestampOf(i))) accepted++;
    store.close();
    say(JSON.stringify({ accepted }));
    lines.close();
  });
}
