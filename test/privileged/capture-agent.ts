/**
 * The capture side of the privileged tests and the benchmark, run as a child process inside a
 * network namespace (`ip netns exec NS node --import tsx capture-agent.ts '<json config>'`):
 * a process cannot move one socket into another namespace, so the capture lives where the
 * packets arrive and reports to the test as JSON lines on stdout.
 *
 * Config: { capture: HandshakeCaptureOptions, observe?: number[] (UDP ports to bind as the
 * reference observer), unref?: boolean, ref?: boolean, quietEvents?: boolean, iterate?: boolean,
 * slowListenerMs?: number (the 'initiation' listener busy-waits this long per packet; each
 * initiation line then carries `turn`, the event-loop turn it was delivered in) }
 *
 * Output lines: ready · open-error · initiation · udp (an initiation the observer's UDP socket
 * received) · error · close · down · up · and the replies to commands.
 * Commands (JSON lines on stdin): stats · fds · close · churn {count, interface?} · block {ms}
 * (replies 'blocking', then holds the event loop that long, so packets pile up in the socket) · exit.
 */
import dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { CaptureError, HandshakeCapture, isInitiationPayload, type HandshakeCaptureOptions } from '../../lib/capture/index.js';

interface Config {
  capture: HandshakeCaptureOptions;
  observe?: number[];
  unref?: boolean;
  ref?: boolean;
  quietEvents?: boolean;
  iterate?: boolean;
  listenStdin?: boolean;
  slowListenerMs?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const out = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`);
const fdCount = () => readdirSync('/proc/self/fd').length;
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

let capture: HandshakeCapture;
try {
  capture = HandshakeCapture.open(config.capture);
} catch (error) {
  const e = error as CaptureError;
  out({ type: 'open-error', name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message });
  process.exit(0);
}

let eventsAfterClose = 0;
let events = 0;
// Turns of the event loop, counted by a chain of setImmediate (one step per turn's check phase).
let turn = 0;
if (config.slowListenerMs !== undefined) {
  const step = () => {
    turn++;
    if (!capture.closed) setImmediate(step).unref();
  };
  setImmediate(step).unref();
}
const onInitiation = (i: { packet: Uint8Array; source: unknown; destination: unknown; ifindex: number; receivedAt: Date; injected: boolean }) => {
  events++;
  if (capture.closed) eventsAfterClose++;
  if (config.slowListenerMs !== undefined) {
    const until = performance.now() + config.slowListenerMs;
    while (performance.now() < until);
  }
  if (!config.quietEvents) {
    out({ type: 'initiation', packet: hex(i.packet), source: i.source, destination: i.destination, ifindex: i.ifindex,
      receivedAt: i.receivedAt.getTime(), injected: i.injected, ...(config.slowListenerMs !== undefined ? { turn } : {}) });
  }
};
function attach(c: HandshakeCapture) {
  if (config.iterate) {
    void (async () => {
      try {
        for await (const i of c) onInitiation(i);
        out({ type: 'iterator-done' });
      } catch (error) {
        const e = error as CaptureError;
        out({ type: 'iterator-error', name: e.name, code: e.code, message: e.message });
      }
    })();
  } else {
    c.on('initiation', onInitiation);
    c.on('error', (e) => out({ type: 'error', name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message, interface: e.interface }));
  }
  c.on('close', () => out({ type: 'close' }));
  c.on('down', () => out({ type: 'down', linkState: c.linkState, ifindex: c.ifindex }));
  c.on('up', () => out({ type: 'up', linkState: c.linkState, ifindex: c.ifindex }));
}
attach(capture);
if (config.unref) capture.unref();
if (config.ref) capture.ref();

// The reference observer: ordinary UDP sockets on the same ports see every datagram the
// stack delivers; the initiations among them are what the capture must report.
const observers: dgram.Socket[] = [];
for (const port of config.observe ?? []) {
  for (const type of ['udp4', 'udp6'] as const) {
    const socket = dgram.createSocket({ type, ipv6Only: type === 'udp6', recvBufferSize: 4 << 20 });
    socket.on('message', (message, rinfo) => {
      if (isInitiationPayload(message)) {
        out({ type: 'udp', packet: hex(message), source: { address: rinfo.address, port: rinfo.port, family: rinfo.family === 'IPv6' ? 6 : 4 }, port });
      }
    });
    socket.bind(port, type === 'udp4' ? '0.0.0.0' : '::');
    observers.push(socket);
  }
}

out({ type: 'ready', ifindex: capture.ifindex, linkState: capture.linkState, destinations: capture.destinations, fds: fdCount(), pid: process.pid });

async function churn(count: number, options: HandshakeCaptureOptions) {
  const before = fdCount();
  let rejected = 0;
  let delivered = 0;
  for (let n = 0; n < count; n++) {
    const c = HandshakeCapture.open(options);
    c.on('initiation', () => {
      if (c.closed) eventsAfterClose++;
    });
    // Let the loop poll the socket a little while packets flow, then close.
    await new Promise((r) => setImmediate(r));
    if (n % 10 === 0) await new Promise((r) => setTimeout(r, 2));
    c.close();
    const s = c.stats();
    rejected += s.rejected;
    delivered += s.delivered;
  }
  await new Promise((r) => setTimeout(r, 20)); // uv_close callbacks
  out({ type: 'churn', before, after: fdCount(), rejected, delivered, eventsAfterClose });
}

if (config.listenStdin !== false) {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const command = JSON.parse(line) as { cmd: string; count?: number; ms?: number; options?: HandshakeCaptureOptions };
    switch (command.cmd) {
      case 'stats':
        out({ type: 'stats', ...capture.stats(), closed: capture.closed, linkState: capture.linkState, ifindex: capture.ifindex, events, eventsAfterClose });
        break;
      case 'fds':
        out({ type: 'fds', fds: fdCount() });
        break;
      case 'close':
        capture.close();
        out({ type: 'closed', ...capture.stats() });
        break;
      case 'block': {
        out({ type: 'blocking' });
        const until = performance.now() + (command.ms ?? 0);
        while (performance.now() < until);
        break;
      }
      case 'churn':
        void churn(command.count ?? 1, command.options ?? config.capture);
        break;
      case 'exit':
        capture.close();
        for (const o of observers) o.close();
        lines.close();
        setImmediate(() => process.exit(0));
        break;
      default:
        out({ type: 'unknown-command', command });
    }
  });
}
