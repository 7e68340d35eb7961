/**
 * Requests the kernel never answers, for the tests of the native socket's timeout and cancel
 * paths, and a child-process driver for what can only be seen from outside a process (an
 * exit that hangs, a starved thread pool). Run as a script: `node --import tsx unanswered.ts
 * <scenario>`; it prints one JSON line of measurements.
 *
 * RTM_GETLINK dump flags without NLM_F_REQUEST: af_netlink.c `netlink_rcv_skb` skips a
 * message that is not a request and, without NLM_F_ACK, says nothing. Needs no privilege.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { NETLINK_ROUTE, NLM_F_DUMP } from '../../../lib/netlink/constants.js';
import { NativeTransport } from '../../../lib/netlink/transport.js';
import { encodeListLinks } from '../../../lib/rtnetlink/link.js';

export function unansweredRequest(): Buffer {
  const message = encodeListLinks();
  message.writeUInt16LE(NLM_F_DUMP, 6);
  return message;
}

export const answeredRequest = (): Buffer => encodeListLinks();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const scenarios: Record<string, () => Promise<void>> = {
  /** process.exit() while a wait with a 60 s timeout is under way. */
  async exit() {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 60_000);
    void transport.exchange([unansweredRequest()]).catch(() => undefined);
    await sleep(200);
    process.exit(0);
  },

  /**
   * A Worker with a waiting exchange (1 s timeout) is terminated. Node lets pending pool work
   * finish before it tears a Worker's env down, so the termination lasts until the wait ends:
   * it must end (by the timeout), and the completion that then runs in a dying env must not
   * abort the process. (Plain JavaScript in the Worker, which cannot load TypeScript; it
   * drives the addon's socket directly.)
   */
  async worker() {
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { createRequire } = require('node:module');
      const load = createRequire(workerData.root + '/package.json')('node-gyp-build');
      const { NetlinkSocket } = load(workerData.root);
      const socket = new NetlinkSocket(${NETLINK_ROUTE}, 1 << 20, '', 1000);
      socket.exchange([Buffer.from(workerData.request, 'hex')]).catch(() => undefined);
      setTimeout(() => parentPort.postMessage('waiting'), 200);`;
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const worker = new Worker(source, { eval: true, workerData: { root, request: unansweredRequest().toString('hex') } });
    await new Promise((resolve) => worker.once('message', resolve));
    const start = performance.now();
    await worker.terminate();
    console.log(JSON.stringify({ terminateMs: performance.now() - start }));
  },

  /**
   * UV_THREADPOOL_SIZE=2: four exchanges on one socket, the first unanswered (1.5 s
   * timeout). They must all settle, and a file read must not wait for them.
   */
  async pool() {
    const transport = new NativeTransport(NETLINK_ROUTE, '', 1500);
    const start = performance.now();
    const outcomes = [unansweredRequest(), answeredRequest(), answeredRequest(), answeredRequest()].map((message) =>
      transport.exchange([message]).then(
        (result) => ({ ok: true, completed: result.completed, ms: performance.now() - start }),
        (error: { errno?: number }) => ({ ok: false, errno: error.errno, ms: performance.now() - start }),
      ));
    await sleep(100);
    const readStart = performance.now();
    await readFile(fileURLToPath(import.meta.url));
    const readMs = performance.now() - readStart;
    const settled = await Promise.all(outcomes);
    transport.close();
    console.log(JSON.stringify({ readMs, settled }));
  },
};

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const name = process.argv[2] ?? '';
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`unknown scenario ${name}`);
  await scenario();
}
