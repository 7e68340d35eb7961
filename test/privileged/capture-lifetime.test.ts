/**
 * Host-privileged tests of the capture's lifetime: staying open across a link flap and across
 * the interface being deleted and created again (`linkDown: 'wait'`), capturing in another
 * network namespace (`netns`), and the native socket's own lifetime (a constructor that fails
 * after the socket is open, worker threads that end with captures open).
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CaptureError, HandshakeCapture, handshakeFilter, type HandshakeInitiation } from '../../lib/capture/index.js';
import { packetSocketClass } from '../../lib/capture/native.js';
import { recorded, ETH_P_IP } from '../vectors/frames/frames.js';
import {
  Agent, MAC_A, MAC_B, NetnsPair, V4_B, V6_B, pairsForThisFile, privilegeProblem, repoRoot, run, sendPackets,
} from './capture-harness.js';

const problem = privilegeProblem(['ip', 'cc', 'capsh']);
if (problem !== null && process.env.CI === 'true') {
  it('has what the privileged capture tests need', () => assert.fail(problem));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fdCount = () => readdirSync('/proc/self/fd').length;
const initiation = { protocol: ETH_P_IP, bytes: recorded('01') };

const newPair = pairsForThisFile();

const send = (pair: NetnsPair, count = 1) => sendPackets(pair, pair.a, 'va', MAC_B, [initiation], { count });

describe("HandshakeCapture with linkDown: 'wait'", { skip: problem ?? false }, () => {
  it('stays open while its link is down, says so, and delivers again once it is up', async () => {
    const pair = newPair();
    const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb', linkDown: 'wait' } });
    assert.equal(agent.messages[0]!.linkState, 'up');
    await send(pair);
    await agent.waitFor((m) => m.type === 'initiation');
    for (let flap = 1; flap <= 3; flap++) {
      run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'down']);
      await agent.waitFor(() => agent.ofType('down').length === flap);
      const down = agent.ofType('down')[flap - 1]!;
      assert.equal(down.linkState, 'down');
      const during = await agent.request({ cmd: 'stats' }, 'stats');
      assert.equal(during.closed, false);
      assert.equal(during.linkState, 'down');
      run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'up']);
      await agent.waitFor(() => agent.ofType('up').length === flap);
      const up = agent.ofType('up')[flap - 1]!;
      assert.equal(up.linkState, 'up');
      assert.equal(up.ifindex, pair.ifindex(pair.b, 'vb'), 'the same interface');
      await sleep(50);
      await send(pair);
      await agent.waitFor(() => agent.ofType('initiation').length === flap + 1);
    }
    assert.equal(agent.ofType('error').length, 0);
    assert.equal(agent.ofType('close').length, 0);
    const stats = await agent.request({ cmd: 'stats' }, 'stats');
    assert.equal(stats.delivered, 4);
    await agent.stop();
  });

  it('follows its interface when it is deleted and created again under the same name', async () => {
    const pair = newPair();
    const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb', linkDown: 'wait' } });
    const firstIndex = agent.messages[0]!.ifindex as number;
    await send(pair);
    await agent.waitFor((m) => m.type === 'initiation');
    run('ip', ['-n', pair.b, 'link', 'del', 'vb']); // takes va with it
    await agent.waitFor((m) => m.type === 'down');
    await sleep(500); // a few link checks with no interface at all
    run('ip', ['link', 'add', 'va', 'address', MAC_A, 'netns', pair.a, 'type', 'veth', 'peer', 'name', 'vb', 'address', MAC_B, 'netns', pair.b]);
    run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'up']);
    run('ip', ['-n', pair.a, 'link', 'set', 'va', 'up']);
    const up = await agent.waitFor((m) => m.type === 'up');
    const newIndex = pair.ifindex(pair.b, 'vb');
    assert.notEqual(newIndex, firstIndex);
    assert.equal(up.ifindex, newIndex);
    await sleep(50);
    await send(pair);
    await agent.waitFor(() => agent.ofType('initiation').length === 2);
    assert.equal(agent.ofType('initiation')[1]!.ifindex, newIndex);
    assert.equal(agent.ofType('error').length, 0);
    await agent.stop();
  });

  it('opened on an interface that is down, starts out down and delivers once it is up', async () => {
    const pair = newPair();
    run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'down']);
    const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb', linkDown: 'wait' } });
    assert.equal(agent.messages[0]!.linkState, 'down');
    await sleep(300);
    assert.equal(agent.ofType('down').length, 0, 'no event for the state it opened in');
    run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'up']);
    await agent.waitFor((m) => m.type === 'up');
    await sleep(50);
    await send(pair);
    await agent.waitFor((m) => m.type === 'initiation');
    await agent.stop();
  });

  it("without it, still closes with ENETDOWN when the link goes down (the default is 'close')", async () => {
    const pair = newPair();
    const agent = await Agent.startReady(pair, pair.b, { capture: { interface: 'vb' } });
    run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'down']);
    const error = await agent.waitFor((m) => m.type === 'error');
    assert.equal(error.code, 'ENETDOWN');
    assert.match(error.message as string, /linkDown: 'wait'/);
    await agent.waitFor((m) => m.type === 'close');
    assert.equal((await agent.request({ cmd: 'stats' }, 'stats')).linkState, 'down');
    await agent.stop();
  });
});

describe('HandshakeCapture with netns', { skip: problem ?? false }, () => {
  it('captures in the named namespace: the interface and the local addresses are looked up there', async () => {
    const pair = newPair();
    const ownNamespace = readlinkSync('/proc/thread-self/ns/net');
    const capture = HandshakeCapture.open({ netns: `/run/netns/${pair.b}`, interface: 'vb', destinations: 'local', linkDown: 'wait' });
    try {
      assert.equal(readlinkSync('/proc/thread-self/ns/net'), ownNamespace, 'the thread is back in its own namespace');
      assert.equal(capture.ifindex, pair.ifindex(pair.b, 'vb'));
      assert.equal(capture.netns, `/run/netns/${pair.b}`);
      for (const a of [V4_B, V6_B]) assert.ok(capture.destinations!.includes(a), `${a} is local in B`);
      const seen: HandshakeInitiation[] = [];
      capture.on('initiation', (i) => seen.push(i));
      await send(pair);
      await sleep(300);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.destination?.address, V4_B);
      // The link is watched in B as well.
      const down = new Promise((r) => capture.once('down', r));
      run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'down']);
      await down;
      const up = new Promise((r) => capture.once('up', r));
      run('ip', ['-n', pair.b, 'link', 'set', 'vb', 'up']);
      await up;
      await sleep(50);
      await send(pair);
      await sleep(300);
      assert.equal(seen.length, 2);
    } finally {
      capture.close();
    }
  });

  it('reports a namespace path that does not exist, and a missing CAP_SYS_ADMIN, as typed errors', async () => {
    assert.throws(() => HandshakeCapture.open({ netns: '/run/netns/jitguard-no-such-namespace' }), (e: unknown) => {
      assert.ok(e instanceof CaptureError);
      assert.equal(e.code, 'ENOENT');
      assert.equal(e.syscall, 'open');
      assert.match(e.message, /network namespace \/run\/netns\/jitguard-no-such-namespace/);
      return true;
    });
    const pair = newPair();
    const agent = await Agent.start(pair, pair.b, { capture: { netns: `/run/netns/${pair.b}` } }, ['capsh', '--drop=cap_sys_admin', '--', '-c']);
    const error = agent.messages[0]!;
    assert.equal(error.type, 'open-error', JSON.stringify(error));
    assert.equal(error.code, 'EPERM');
    assert.equal(error.syscall, 'setns');
    assert.match(error.message as string, /CAP_SYS_ADMIN/);
    await agent.exited;
  });
});

describe('the native PacketSocket lifetime', { skip: problem ?? false }, () => {
  it('leaves nothing behind when its constructor fails after the socket is open', async () => {
    const pair = newPair();
    const PacketSocket = packetSocketClass();
    const filter = handshakeFilter().encode();
    const ifindex = pair.ifindex(pair.b, 'vb');
    let calls = 0;
    const before = fdCount();
    for (let i = 0; i < 50; i++) {
      assert.throws(() => new PacketSocket(ifindex, filter, () => calls++, {
        batch: 8, rcvbuf: 0, slot: 216, netns: `/run/netns/${pair.b}`, testFailAfterOpen: true,
      }), /failing after open/);
    }
    assert.equal(fdCount(), before, 'no descriptor left open');
    // Had a poll handle survived pointing at the freed object, packets would reach it now.
    await send(pair, 20);
    await sleep(300);
    assert.equal(calls, 0);
  });

  it('closes the sockets of worker threads that end with captures open', async () => {
    const pair = newPair();
    const filter = handshakeFilter().encode();
    const before = fdCount();
    const source = `
      const { createRequire } = require('node:module');
      const { workerData } = require('node:worker_threads');
      const load = createRequire(workerData.root + '/package.json')('node-gyp-build');
      const { PacketSocket } = load(workerData.root);
      const options = { batch: 8, rcvbuf: 0, slot: 216, netns: workerData.netns };
      const open = new PacketSocket(workerData.ifindex, Buffer.from(workerData.filter), () => {}, options);
      const closed = new PacketSocket(0, Buffer.from(workerData.filter), () => {}, options);
      closed.close();
      void open;
      process.exit(0); // ends the worker's environment with one socket still open
    `;
    for (let i = 0; i < 20; i++) {
      const worker = new Worker(source, {
        eval: true,
        workerData: { root: repoRoot, netns: `/run/netns/${pair.b}`, ifindex: pair.ifindex(pair.b, 'vb'), filter },
      });
      const code = await new Promise((resolve, reject) => {
        worker.once('exit', resolve);
        worker.once('error', reject);
      });
      assert.equal(code, 0);
    }
    await sleep(50);
    assert.equal(fdCount(), before, 'every worker socket was closed with its environment');
  });
});
