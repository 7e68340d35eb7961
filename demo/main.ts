/**
 * `npm run demo`: jitguard's main job as a newcomer sees it (demo/run.sh starts this, inside the
 * test VM when this kernel has no WireGuard; see topology.ts for the network).
 *
 *   node demo.mjs --jitguard jitguard.mjs     (both bundled by run.sh; root; kernel WireGuard)
 *
 * A control plane serving a JSON file of peers, `jitguard gateway` as its own process on an empty
 * wg0, and clients in their own namespaces: kernel WireGuard over IPv4, over IPv6, behind NAT,
 * over WebSocket where UDP is blocked, one the control plane does not know, and a forged
 * initiation claiming a known key. Then idle eviction down to an empty kernel with the store
 * still full, a reconnect that re-installs from the store, and the /metrics that show it.
 *
 * This file is the story only; it is a script over the daemon and the tools, and holds no
 * gateway logic. Every figure printed is measured in this run; every claim is an expectation,
 * and the exit code is 0 only if all of them held.
 */
import { X509Certificate, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  Forger, WebSocketConnect, gatewayKernelPeers, kernelClientSetup, kernelClients, newKeyPair, ping, reconnect,
  type KernelClient, type KeyPair, type LogLine, type PingResult,
} from './clients.js';
import { ControlPlane, toBase64Url, type PeersFile } from './control-plane.js';
import { inNamespace, run, script, sleep } from './exec.js';
import { GatewayDaemon, asNobody, metricLines, metricValue, nobodyCanRun } from './gateway-daemon.js';
import { DemoAborted, Expectations, Narrator, printTable, verdict, type TableRow } from './report.js';
import { GATEWAY, HOSTS, NAMESPACES, OPERATOR, clientSideLines, gatewaySideLines, teardownLines } from './topology.js';

const NOBODY = 65534;
/** Seconds. Production keeps the default 600 (README, "Eviction"): short here so it happens in the demo. */
const IDLE_TIMEOUT = 4;
const EVICT_INTERVAL = 1;
/** A kernel initiator retries an unanswered initiation after 5 s (REKEY_TIMEOUT). */
const CLIENT_RETRY_MS = 5000;

interface Running {
  daemon?: GatewayDaemon;
  bridge?: WebSocketConnect;
  forger?: Forger;
  plane?: ControlPlane;
  dir?: string;
}

function jitguardCommand(argv: readonly string[]): string[] {
  const at = argv.indexOf('--jitguard');
  const executable = at >= 0 ? argv[at + 1] : undefined;
  if (executable === undefined) throw new DemoAborted('usage: node demo.mjs --jitguard <bundled lib/cli/main.ts> (demo/run.sh does this)');
  return [process.execPath, resolve(executable)];
}

/** Files the daemon (as nobody) reads and writes, in a directory only it can enter. */
function writeFiles(dir: string, gatewayPrivateKey: string, clients: readonly KernelClient[]) {
  const own = (path: string) => chownSync(path, NOBODY, NOBODY);
  const gatewayDir = join(dir, 'gateway');
  mkdirSync(gatewayDir, { mode: 0o700 });
  own(gatewayDir);
  const secret = (name: string, content: string) => {
    const path = join(gatewayDir, name);
    writeFileSync(path, content, { mode: 0o600 });
    own(path);
    return path;
  };
  const resolverToken = randomBytes(16).toString('hex');
  const files = {
    privateKey: secret('wg0.key', `${gatewayPrivateKey}\n`),
    adminToken: secret('admin.token', `${randomBytes(16).toString('hex')}\n`),
    resolverToken: secret('resolver.token', `${resolverToken}\n`),
    db: join(gatewayDir, 'peers.db'),
    tlsCert: join(gatewayDir, 'tls-cert.pem'),
    tlsKey: join(gatewayDir, 'tls-key.pem'),
  };
  const clientDir = join(dir, 'clients');
  mkdirSync(clientDir, { mode: 0o700 });
  const clientKeys = new Map(clients.map((c) => {
    const path = join(clientDir, `${c.name}.key`);
    writeFileSync(path, `${c.privateKey}\n`, { mode: 0o600 });
    return [c.name, path] as const;
  }));
  const peersFile = join(dir, 'peers.json');
  const peers: PeersFile = { peers: clients.filter((c) => c.known).map((c) => ({ name: c.name, publicKey: c.publicKey, allowedIps: [`${c.tunnelAddress}/32`] })) };
  writeFileSync(peersFile, `${JSON.stringify(peers, null, 2)}\n`);
  return { files, clientKeys, peersFile, resolverToken };
}

/** A self-signed certificate for the relay, made now with openssl(1); ws-connect pins it. */
async function selfSignedCertificate(certFile: string, keyFile: string): Promise<string> {
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-noenc', '-days', '1',
    '-subj', '/CN=gateway.demo', '-addext', `subjectAltName=IP:${GATEWAY.v4}`, '-keyout', keyFile, '-out', certFile,
  ]);
  chownSync(keyFile, NOBODY, NOBODY);
  chmodSync(keyFile, 0o600);
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

/** What the phases share once the network and the processes are up. */
interface Stage {
  say: Narrator;
  expect: Expectations['expect'];
  gatewayKey: KeyPair;
  clients: KernelClient[];
  known: KernelClient[];
  byName: (name: string) => KernelClient;
  plane: ControlPlane;
  daemon: GatewayDaemon;
  bridge: WebSocketConnect;
  forger: Forger;
  /** The forged initiation, built ahead (see `Forger.forge`). */
  forgery: Uint8Array;
  secrets: string[];
}

/** The network, the control plane, the daemon and ws-connect, up and ready. */
async function setUp(argv: readonly string[], running: Running, say: Narrator, expect: Expectations['expect']): Promise<Stage> {
  const jitguard = jitguardCommand(argv);
  const gatewayKey = newKeyPair();
  const clients = kernelClients();
  const byName = (name: string) => clients.find((c) => c.name === name)!;
  const known = clients.filter((c) => c.known);
  for (const c of clients) say.nameKey(c.publicKey, c.name);
  running.dir = mkdtempSync(join(tmpdir(), 'jitguard-demo-'));
  chmodSync(running.dir, 0o755);
  const { files, clientKeys, peersFile, resolverToken } = writeFiles(running.dir, gatewayKey.privateKey, clients);

  say.heading("the network: namespaces on one bridge, a NAT, a UDP-blocking firewall; wg(8) clients that know only the gateway's key");
  let started = performance.now();
  const [, fingerprint] = await Promise.all([script(gatewaySideLines()), selfSignedCertificate(files.tlsCert, files.tlsKey)]);
  say.say('network', `${NAMESPACES.length} namespaces, ${HOSTS.length} hosts on one bridge, the gateway's side configured (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  say.say('network', `self-signed certificate for wss://${GATEWAY.v4}/ made with openssl, SHA-256 ${fingerprint.slice(0, 23)}…`);
  const plane = running.plane = await ControlPlane.start({
    peersFile, host: OPERATOR.control, port: OPERATOR.controlPlanePort, basePath: '/v1/wireguard/peers', bearerToken: resolverToken,
    onRequest: (r) => say.say('control plane', `GET …/${r.publicKey ? toBase64Url(r.publicKey).slice(0, 8) : '?'}… → ${r.status}${r.publicKey ? ` (${say.nameOf(r.publicKey)})` : ''}`),
  });
  say.say('control plane', `serving ${known.length} peers from ${peersFile} at ${plane.url} (the resolver contract, Bearer token)`);

  const unprivileged = await nobodyCanRun(jitguard);
  say.heading(`jitguard gateway: a separate process, ${unprivileged ? 'as nobody with CAP_NET_ADMIN and CAP_NET_RAW only' : 'as root'} (the clients are set up meanwhile)`);
  if (!unprivileged) say.say('demo', `the user nobody cannot read ${jitguard.at(-1)} (a clone under a private directory?): the daemon and ws-connect run as root`);
  const daemon = running.daemon = GatewayDaemon.start({
    jitguard, files, resolverUrl: plane.url, resolverTokenFile: files.resolverToken, asNobody: unprivileged,
    idleTimeout: IDLE_TIMEOUT, evictInterval: EVICT_INTERVAL, onLine: (line) => say.daemonLine(line),
  });
  started = performance.now();
  const setups = clients.map((c) => kernelClientSetup(c, clientKeys.get(c.name)!, gatewayKey.publicKey));
  await script([...clientSideLines(new Map(clients.map((c, i) => [c.namespace, setups[i]!.batch]))), ...setups.map((s) => s.command)]);
  say.say('network', `${clients.length} kernel WireGuard clients configured, no packet sent yet (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  const forger = running.forger = Forger.start();
  const forgery = forger.forge(gatewayKey.publicKey, byName('ipv4').publicKey);
  // Started once the daemon has loaded its code (its relay is up a moment later), so that the
  // two node starts do not compete for the CPU at once and the first connection finds the relay.
  await daemon.waitForLine((l) => l.event === 'starting', 120_000, "the daemon's starting line");
  const bridge = running.bridge = WebSocketConnect.start(byName('websocket'), jitguard, unprivileged ? asNobody([]) : [], fingerprint, (line) => say.bridgeLine(line));
  const ready = await daemon.waitForLine((l) => l.event === 'ready', 120_000, "the daemon's ready line");
  say.say('gateway', `ready ${((ready.at - daemon.spawnedAt) / 1000).toFixed(1)} s after spawn`);
  const { uid, capEff } = daemon.credentials();
  // 0x3000 = bits 12 (CAP_NET_ADMIN) and 13 (CAP_NET_RAW).
  if (unprivileged) expect('the daemon runs as nobody holding CAP_NET_ADMIN and CAP_NET_RAW only', uid === String(NOBODY) && capEff === '0000000000003000', `/proc: uid ${uid}, CapEff ${capEff}`);
  else say.say('gateway', `runs as uid ${uid}, CapEff ${capEff} (/proc)`);
  const atStart = await gatewayKernelPeers();
  expect('the gateway starts with no kernel peers', atStart.size === 0, `wg show wg0: ${atStart.size} peers`);
  // Addresses stay the operator's (README, the daemon).
  await inNamespace(GATEWAY.namespace, 'ip', ['addr', 'add', `${GATEWAY.tunnel}/24`, 'dev', 'wg0']);
  const deadline = Date.now() + 30_000;
  while (!bridge.connected && Date.now() < deadline && bridge.running) await sleep(100);
  if (!bridge.connected) throw new DemoAborted(`ws-connect did not connect to the relay within 30 s: ${bridge.stderr.trim() || '(nothing on stderr)'}`);
  const secrets = [gatewayKey.privateKey, ...clients.map((c) => c.privateKey), readFileSync(files.adminToken, 'utf8').trim(), resolverToken];
  return { say, expect, gatewayKey, clients, known, byName, plane, daemon, bridge, forger, forgery, secrets };
}

async function pingAndTell(stage: Stage, client: KernelClient, waitSeconds: number): Promise<PingResult> {
  const reply = await ping(client, waitSeconds);
  stage.say.say(client.name, reply.replied ? `ping ${GATEWAY.tunnel} through the tunnel: reply after ${reply.rttMs} ms` : `ping: no reply within ${waitSeconds} s`);
  return reply;
}

/** Five clients at once, then the forgery; the table. */
async function firstContact(stage: Stage): Promise<void> {
  const { say, expect, plane, daemon, known, byName } = stage;
  const [ipv4, stranger] = [byName('ipv4'), byName('stranger')];
  say.heading('five clients ping the gateway at once, each for the first time; its kernel holds none of them');
  const strangerPing = pingAndTell(stage, stranger, 3);
  const replies = await Promise.all(known.map((c) => pingAndTell(stage, c, 10)));
  const endpoints = await gatewayKernelPeers();

  // While ipv4 is in the kernel, a forgery claiming its key: it must neither reach the control
  // plane nor move ipv4's endpoint.
  const from = await stage.forger.send(stage.forgery);
  say.say('forger', `sent an initiation from ${from.address}:${from.port} claiming ipv4's public key (valid mac1; it lacks ipv4's private key)`);
  const forgeryRefusal = await daemon.waitForLine((l) => l.event === 'rejected' && l.source === `${from.address}:${from.port}`, 15_000, 'the refusal of the forged initiation').catch(() => undefined);
  const ipv4AfterForgery = (await gatewayKernelPeers()).get(ipv4.publicKey);
  const refused = await strangerPing;
  const strangerRefusal = await daemon.waitForLine((l) => l.event === 'rejected' && l.publicKey === stranger.publicKey, 5000, "the stranger's refusal").catch(() => undefined);

  const rows: TableRow[] = [];
  for (const [i, client] of known.entries()) {
    const reply = replies[i]!;
    const installed = await installedLine(daemon, client, 1);
    const endpoint = endpoints.get(client.publicKey) ?? '(not in the kernel)';
    expect(`${client.name}: answered at its first try`, firstTry(reply), `first reply ${reply.rttMs ?? '-'} ms; the client's own retry would come at ${CLIENT_RETRY_MS} ms`);
    expect(`${client.name}: installed from the control plane, endpoint ${client.seenAs.describe}`,
      installed?.via === 'resolver' && client.seenAs.matches(endpoint) && plane.requestsFor(client.publicKey) === 1,
      `wg show: ${endpoint}; via ${String(installed?.via ?? '-')}; control-plane requests ${plane.requestsFor(client.publicKey)}`);
    rows.push({
      client: client.name,
      path: `${client.path}, seen as ${endpoint}`,
      firstReply: reply.replied ? `${reply.rttMs} ms` : 'no reply (waited 10 s)',
      knockToInstall: installed ? `${String(installed.knockToInstallMs)} ms` : '-',
      outcome: reply.replied ? `tunnel up (installed via ${String(installed?.via ?? '?')})` : 'NO TUNNEL',
    });
  }
  const strangerInKernel = (await gatewayKernelPeers()).has(stranger.publicKey);
  expect('stranger: authenticated, then refused as unknown to the control plane', !refused.replied && strangerRefusal?.reason === 'unknown' && !strangerInKernel,
    `${strangerRefusal ? String(strangerRefusal.reason) : 'no refusal logged'}; in the kernel: ${strangerInKernel}; control-plane requests ${plane.requestsFor(stranger.publicKey)}`);
  rows.push({
    client: 'stranger', path: `${stranger.path}:${stranger.listenPort}`, firstReply: refused.replied ? `${refused.rttMs} ms` : 'no reply (waited 3 s)', knockToInstall: '-',
    outcome: strangerRefusal ? `refused: ${String(strangerRefusal.reason)} (${plane.requestsFor(stranger.publicKey)} control-plane request)` : 'NOT REFUSED',
  });
  expect('forger: refused as unauthenticated, failing at the timestamp', forgeryRefusal?.reason === 'unauthenticated' && forgeryRefusal.detail === 'timestamp',
    forgeryRefusal ? `${String(forgeryRefusal.reason)} (${String(forgeryRefusal.detail)})` : 'no refusal logged');
  expect("forger: no control-plane request, ipv4's endpoint unchanged", plane.requestsFor(ipv4.publicKey) === 1 && ipv4AfterForgery === endpoints.get(ipv4.publicKey),
    `requests for ipv4's key ${plane.requestsFor(ipv4.publicKey)}; wg show ipv4: ${ipv4AfterForgery ?? '(gone)'}`);
  rows.push({
    client: 'forger', path: `UDP over IPv4 from ${from.address}:${from.port}, claims ipv4's key`, firstReply: 'none expected', knockToInstall: '-',
    outcome: forgeryRefusal ? `refused: ${String(forgeryRefusal.reason)} (${String(forgeryRefusal.detail)}), 0 control-plane requests` : 'NOT REFUSED',
  });

  say.heading("the table: per client, the path, the time from its first packet to its first reply (ping's RTT), the gateway's own knock → install, the outcome");
  printTable(rows);
}

/** Idle eviction down to an empty kernel with the store full; one client back from the store. */
async function evictAndReconnect(stage: Stage): Promise<number> {
  const { say, expect, plane, daemon, known, byName } = stage;
  say.heading(`idle eviction: nothing is sent for ${IDLE_TIMEOUT} s (--idle-timeout ${IDLE_TIMEOUT}; production: 600)`);
  const evicted = await Promise.all(known.map((c) => daemon.waitForLine((l) => l.event === 'evicted' && l.publicKey === c.publicKey, 40_000, `the eviction of ${c.name}`).catch(() => undefined)));
  expect(`all ${known.length} evicted as idle`, evicted.every((e) => e?.reason === 'idle'), evicted.map((e, i) => `${known[i]!.name}: ${String(e?.reason ?? 'not evicted')}`).join(', '));
  const emptied = await gatewayKernelPeers();
  say.say('wg show', `wg0 peers: ${emptied.size === 0 ? '(none)' : [...emptied.keys()].map((k) => say.nameOf(k)).join(', ')}`);
  expect('the kernel is back to zero peers', emptied.size === 0, `wg show wg0: ${emptied.size} peers`);
  const [views, text] = await Promise.all([Promise.all(known.map((c) => daemon.peer(c.publicKey))), daemon.metrics()]);
  say.say('admin API', known.map((c, i) => `${c.name}: ${views[i]!.inStore}${views[i]!.inKernel ? ', in kernel' : ''}`).join('; '));
  const stored = metricValue(text, 'jitguard_store_peers');
  expect(`the store still holds all ${known.length}`, views.every((v) => v.inStore === 'configured' && !v.inKernel) && stored === known.length,
    `GET /v1/peers: ${views.filter((v) => v.inStore === 'configured').length} configured, ${views.filter((v) => v.inKernel).length} in the kernel; jitguard_store_peers ${stored}`);

  const ipv4 = byName('ipv4');
  say.heading('ipv4 reconnects (wg0 down and up, as after a suspend): its first packet re-installs it from the store');
  await reconnect(ipv4);
  const back = await pingAndTell(stage, ipv4, 10);
  const reinstalled = await installedLine(daemon, ipv4, 2);
  const kernelPeers = (await gatewayKernelPeers()).size;
  expect('ipv4: answered at its first try after the reconnect', firstTry(back), `first reply ${back.rttMs ?? '-'} ms`);
  expect('ipv4: re-installed from the store, without asking the control plane', reinstalled?.via === 'store' && plane.requestsFor(ipv4.publicKey) === 1 && kernelPeers === 1,
    `via ${String(reinstalled?.via ?? '-')}; control-plane requests for ipv4 ${plane.requestsFor(ipv4.publicKey)}; wg show: ${kernelPeers} peer`);
  return kernelPeers;
}

/** The /metrics lines that count what happened, checked against what the demo saw. */
async function showMetrics(stage: Stage, kernelPeers: number): Promise<void> {
  const { say, expect, plane, daemon, known, byName } = stage;
  say.heading(`GET http://${GATEWAY.control}:${GATEWAY.metricsPort}/metrics (excerpt; labelled series at 0 left out)`);
  const text = await daemon.metrics();
  for (const line of metricLines(text, [
    'jitguard_kernel_peers', 'jitguard_kernel_stale_peers', 'jitguard_store_peers', 'jitguard_installs_total',
    'jitguard_rejected_initiations_total', 'jitguard_evictions_total', 'jitguard_websocket_connections',
  ])) {
    if (!line.includes('{') || !line.endsWith(' 0')) console.log(`  ${line}`);
  }
  const m = (name: string, labels = '') => metricValue(text, name, labels);
  const stranger = byName('stranger');
  const strangerKnocks = daemon.of('rejected').filter((l) => l.publicKey === stranger.publicKey && l.reason === 'unknown').length;
  expect('/metrics: kernel peers as wg show counts them, none stale', m('jitguard_kernel_peers') === kernelPeers && m('jitguard_kernel_stale_peers') === 0,
    `jitguard_kernel_peers ${m('jitguard_kernel_peers')}, wg show ${kernelPeers}; stale ${m('jitguard_kernel_stale_peers')}`);
  expect(`/metrics: ${known.length} installs from the control plane, 1 from the store`, m('jitguard_installs_total', '{via="resolver"}') === known.length && m('jitguard_installs_total', '{via="store"}') === 1);
  expect("/metrics: rejects by reason match the log (unknown: the stranger's knocks; unauthenticated: the forgery)",
    m('jitguard_rejected_initiations_total', '{reason="unknown"}') === strangerKnocks && m('jitguard_rejected_initiations_total', '{reason="unauthenticated"}') === 1,
    `the stranger knocked ${strangerKnocks} times for ${plane.requestsFor(stranger.publicKey)} control-plane request`);
  expect(`/metrics: ${known.length} idle evictions`, m('jitguard_evictions_total', '{reason="idle"}') === known.length);
}

async function stopProcesses(stage: Stage): Promise<void> {
  const { say, expect, daemon, bridge } = stage;
  say.heading('stop: SIGTERM to ws-connect and to the daemon');
  const bridgeCode = await bridge.stop();
  const stopped = await daemon.stop();
  expect('ws-connect exits 0 on SIGTERM', bridgeCode === 0, `exit ${bridgeCode}`);
  expect('the daemon drains and exits 0 on SIGTERM', stopped.code === 0 && daemon.stderr === '', `exit ${stopped.code} after ${stopped.ms.toFixed(0)} ms${daemon.stderr ? `; stderr: ${daemon.stderr.trim()}` : ''}`);
  const logText = JSON.stringify([...daemon.lines, ...bridge.lines]);
  expect('no private key or token in any log line', stage.secrets.every((s) => !logText.includes(s)), `${daemon.lines.length + bridge.lines.length} lines checked`);
}

async function story(argv: readonly string[], running: Running, say: Narrator, expectations: Expectations): Promise<void> {
  const stage = await setUp(argv, running, say, expectations.expect.bind(expectations));
  await firstContact(stage);
  const kernelPeers = await evictAndReconnect(stage);
  await showMetrics(stage, kernelPeers);
  await stopProcesses(stage);
}

/** A reply before the kernel's own retry: the first initiation was answered. */
function firstTry(reply: PingResult): boolean {
  return reply.replied && reply.rttMs !== null && reply.rttMs < CLIENT_RETRY_MS;
}

/** The daemon's nth installed line for the client (written before the kernel answers it, but read through a pipe). */
async function installedLine(daemon: GatewayDaemon, client: KernelClient, nth: number): Promise<LogLine | undefined> {
  const installs = () => daemon.of('installed').filter((l) => l.publicKey === client.publicKey);
  await daemon.until(() => installs().length >= nth, 3000, `install #${nth} of ${client.name}`).catch(() => undefined);
  return installs()[nth - 1];
}

async function cleanup(running: Running): Promise<void> {
  running.bridge?.kill();
  running.daemon?.kill();
  running.forger?.stop();
  await running.plane?.close();
  await script(teardownLines()).catch((error: Error) => console.error(`cleanup: ${error.message}`));
  if (running.dir) rmSync(running.dir, { recursive: true, force: true });
}

async function main(): Promise<number> {
  const startedAt = Date.now();
  const say = new Narrator(startedAt);
  const expectations = new Expectations();
  const running: Running = {};
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void cleanup(running).finally(() => process.exit(130)));
  }
  console.log('jitguard demo: a WireGuard gateway whose kernel holds only the peers in use, installed on their first packet');
  let aborted: string | null = null;
  try {
    await story(process.argv.slice(2), running, say, expectations);
  } catch (error) {
    aborted = error instanceof Error ? error.message : String(error);
  } finally {
    await cleanup(running);
  }
  const where = process.argv.includes('--in-vm') ? 'inside a TCG VM, whose emulated CPU makes every timing far slower than native' : null;
  const { lines, exitCode } = verdict(expectations.checked, aborted, (Date.now() - startedAt) / 1000, where);
  console.log(`\n${lines.join('\n')}`);
  return exitCode;
}

process.exit(await main());
