/**
 * A gateway in its own process, for the test that SIGKILLs one mid-burst.
 *
 *   node --import tsx test/kernel/support/gateway-child.ts
 *
 * Prints one JSON object a line on stdout: {"event":"loaded"} once its modules are loaded (a
 * start costs tens of seconds in the TCG VM, so a test starts spares early), then, after a
 * "start <GatewayChildConfig as JSON>" line on stdin, {"event":"ready"} and every gateway event
 * ({"event":"installed",...}, "rejected", "evicted", "error"). Other commands: "stats" (answers
 * {"event":"stats"}), "stop" (a clean stop, then {"event":"stopped"} and exit 0). Nothing is
 * opened before "start": neither the store nor the interface.
 */
import { createInterface } from 'node:readline';
import { Gateway, type GatewayOptions } from '../../../lib/gateway/gateway.js';
import { SqliteStore } from '../../../lib/gateway/sqlite-store.js';
import { warmUpFetch } from './gateway-control-plane.js';
import { httpResolver } from '../../../lib/gateway/http-resolver.js';

export interface GatewayChildConfig {
  interface: string;
  netns: string;
  storePath: string;
  resolverUrl: string;
  resolverTimeoutMs: number;
  captureInterface: string;
  /** Any other Gateway options (numbers and plain objects). */
  options?: Partial<Omit<GatewayOptions, 'interface' | 'netns' | 'store' | 'resolve' | 'capture' | 'wireguard'>>;
}

const print = (event: string, fields: object = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
let gateway: Gateway | null = null;

async function start(config: GatewayChildConfig): Promise<void> {
  gateway = new Gateway({
    ...config.options,
    interface: config.interface,
    netns: config.netns,
    store: new SqliteStore(config.storePath),
    resolve: httpResolver({ url: config.resolverUrl, timeoutMs: config.resolverTimeoutMs }),
    capture: { interface: config.captureInterface },
  });
  gateway.on('installed', (e) => print('installed', e));
  gateway.on('rejected', (e) => print('rejected', e));
  gateway.on('evicted', (e) => print('evicted', e));
  gateway.on('error', (e) => print('error', { code: e.code, stage: e.stage, message: e.message }));
  await gateway.start();
  print('ready', { publicKey: gateway.publicKey });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, argument] = splitOnce(line.trim());
  const run = async () => {
    if (command === 'start') await start(JSON.parse(argument) as GatewayChildConfig);
    else if (command === 'stats') print('stats', { stats: gateway?.stats() ?? null });
    else if (command === 'stop') {
      await gateway?.stop();
      print('stopped');
      process.exit(0);
    }
  };
  run().catch((error: unknown) => {
    print('failed', { command, message: String(error), code: (error as { code?: unknown })?.code });
    process.exit(1);
  });
});
// fetch is loaded before "loaded" (see warmUpFetch): natively its first load is milliseconds,
// in the VM seconds, longer than the resolver timeout a restarted gateway's first lookups get.
void warmUpFetch().then(() => print('loaded'));

function splitOnce(line: string): [string, string] {
  const at = line.indexOf(' ');
  return at < 0 ? [line, ''] : [line.slice(0, at), line.slice(at + 1)];
}
