/**
 * `jitguard gateway` as one object: the pieces of this folder put together around a `Gateway`,
 * in the order that makes a refusal cheap (nothing half-configured is left behind) and readiness
 * honest (`/readyz` answers 503 from the moment the metrics port is up until every listener is):
 *
 *   capabilities → credential files → TLS files → store → interface → metrics server
 *   → gateway.start() (reconcile, capture) → WebSocket relay → admin API → ready
 *
 * `stop()` goes the other way: stop accepting (admin, relay), drain (`gateway.stop()`, which
 * stops the capture, lets in-flight initiations finish and closes the store), then the metrics
 * server and the netlink sockets.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { DestinationStream } from 'pino';
import { ValidationError } from '../errors.js';
import { Gateway, type GatewayKernel } from '../gateway/gateway.js';
import { GatewayError } from '../gateway/errors.js';
import type { SqliteStore } from '../gateway/sqlite-store.js';
import { WebSocketRelay } from '../websocket/relay.js';
import { WireGuard } from '../wireguard/client.js';
import { createAdminServer } from './admin-api.js';
import { requireCapabilities } from './capabilities.js';
import { logGatewayEvents } from './gateway-log.js';
import { closeServer, listen } from './http-server.js';
import { prepareInterface, type InterfaceSetupDeps, type SetupKernel } from './interface-setup.js';
import { formatListenAddress, type ListenAddress } from './listen-address.js';
import { createLogger, type Logger } from './logger.js';
import { createMetricsServer } from './metrics-server.js';
import { peerStatus } from './peer-status.js';
import { codeOf, messageOf, Refusal } from './refusal.js';
import { settingsResolver } from './resolver.js';
import { SecretFiles } from './secret-files.js';
import type { GatewaySettings } from './settings.js';
import { openStore } from './store-open.js';

/** What the daemon asks of the kernel: a `WireGuard` has it all; tests pass a fake. */
export type DaemonKernel = GatewayKernel & SetupKernel & { close?(): Promise<void> };

export interface DaemonDeps extends InterfaceSetupDeps {
  /** Default: a new `WireGuard`, closed by `stop()`. A given one is not closed. */
  kernel?: DaemonKernel;
  /** /proc/self/status text to check capabilities against (default: read it). */
  capabilityStatus?: string;
  /** `false`: no AF_PACKET capture (initiations only through the relay); for tests. */
  capture?: false;
  logger?: Logger;
  logDestination?: DestinationStream;
}

export interface DaemonAddresses {
  metrics: ListenAddress | null;
  admin: ListenAddress | null;
  websocket: ListenAddress | null;
}

export class Daemon {
  readonly addresses: DaemonAddresses = { metrics: null, admin: null, websocket: null };
  private stopping: Promise<void> | null = null;
  private listening = false;
  private metricsServer: Server | null = null;
  private adminServer: Server | null = null;
  private relay: WebSocketRelay | null = null;
  private gateway: Gateway | null = null;
  /** The store while no gateway owns it yet (closed by release() if start fails before). */
  private unownedStore: SqliteStore | null = null;

  private constructor(
    readonly settings: GatewaySettings,
    readonly logger: Logger,
    private readonly secrets: SecretFiles,
    private readonly kernel: DaemonKernel,
    private readonly ownsKernel: boolean,
  ) {}

  /** Starts everything or refuses (`Refusal`) or fails, having released what it opened. */
  static async start(settings: GatewaySettings, deps: DaemonDeps = {}): Promise<Daemon> {
    const logger = deps.logger ?? createLogger(settings.logLevel, deps.logDestination);
    requireCapabilities(['CAP_NET_ADMIN', 'CAP_NET_RAW'], deps.capabilityStatus);
    const secrets = SecretFiles.load({
      adminTokenFile: settings.admin?.tokenFile ?? null,
      resolverTokenFile: settings.resolver?.tokenFile ?? null,
      resolverHeaders: settings.resolver?.headers ?? [],
    });
    const tls = settings.websocket?.tls ? { cert: readPem(settings.websocket.tls.certFile, '--tls-cert'), key: readPem(settings.websocket.tls.keyFile, '--tls-key') } : undefined;
    const kernel = deps.kernel ?? new WireGuard();
    const daemon = new Daemon(settings, logger, secrets, kernel, deps.kernel === undefined);
    try {
      await daemon.run(deps, tls);
    } catch (error) {
      await daemon.release().catch(() => undefined);
      throw error;
    }
    return daemon;
  }

  /** Reconciled, capturing, and every configured listener up; false again once stopping. */
  get ready(): boolean {
    return this.listening && this.stopping === null && (this.gateway?.ready ?? false);
  }

  /** The running gateway (for tests and embedding). */
  get running(): Gateway {
    if (!this.gateway) throw new Error('the daemon has no gateway');
    return this.gateway;
  }

  /** SIGHUP: re-reads the token and header files; a file that fails keeps its old value. */
  reload(): void {
    const result = this.secrets.reload();
    for (const failure of result.failed) {
      this.logger.error({ event: 'reload-failed', file: failure.file, reason: failure.reason }, 'a credential file could not be re-read; keeping its previous value');
    }
    this.logger.info({ event: 'reloaded', files: result.reloaded, failed: result.failed.length }, 'credential files re-read');
  }

  /** Stops accepting, drains, closes. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.release();
    return this.stopping;
  }

  private async run(deps: DaemonDeps, tls: { cert: Buffer; key: Buffer } | undefined): Promise<void> {
    const { settings, logger } = this;
    logger.info({
      event: 'starting', interface: settings.interface, db: settings.db, resolver: settings.resolver?.url ?? null,
      resolverHeaders: settings.resolver?.headers.map((h) => (h.kind === 'value' ? h.name : `@${h.path}`)) ?? [],
      captureInterface: settings.captureInterface,
    }, 'starting');
    // The store first: a database that cannot be written must not leave a created interface behind.
    const store = openStore(settings.db);
    this.unownedStore = store;
    const setup = await prepareInterface(this.kernel, settings, deps);
    if (setup.created) logger.info({ event: 'interface-created', interface: settings.interface, publicKey: setup.device.publicKey, listenPort: setup.device.listenPort }, 'interface created');

    let gateway: Gateway;
    try {
      gateway = new Gateway({
        interface: settings.interface,
        store,
        resolve: settingsResolver(settings, this.secrets),
        idleTimeout: settings.idleTimeout,
        evictInterval: settings.evictInterval,
        handshakeGrace: settings.handshakeGrace,
        capture: deps.capture === false ? false : settings.captureInterface !== null ? { interface: settings.captureInterface } : undefined,
        wireguard: this.kernel,
      });
    } catch (error) {
      if (error instanceof ValidationError) throw new Refusal(messageOf(error));
      throw error;
    }
    // From here the gateway owns the store: its stop() closes it.
    this.unownedStore = null;
    this.gateway = gateway;
    logGatewayEvents(gateway, logger);

    if (settings.metrics) {
      this.metricsServer = createMetricsServer({ registry: gateway.metrics, ready: () => this.ready, logger });
      this.addresses.metrics = await listen(this.metricsServer, settings.metrics, '--metrics');
    }

    try {
      await gateway.start();
    } catch (error) {
      throw startRefusal(error, settings) ?? error;
    }

    if (settings.websocket) {
      let relay: WebSocketRelay;
      try {
        relay = new WebSocketRelay({
          host: settings.websocket.listen.host,
          port: settings.websocket.listen.port,
          wireguardPort: gateway.listenPort,
          // A capture of every interface (or of lo) sees the relay's datagrams on loopback
          // already, with the same source; handing them over again would count each one a
          // second time, as a replayed packet. Without such a capture they are handed over.
          ...(deps.capture === false || (settings.captureInterface !== null && settings.captureInterface !== 'lo')
            ? { onInitiation: (payload: Uint8Array, source: { address: string; port: number }) => { gateway.inject(payload, source); } }
            : {}),
          registry: gateway.metrics,
          ...(tls ? { tls } : {}),
        });
      } catch (error) {
        // A certificate and key that do not parse or do not match fail here.
        throw new Refusal(`--websocket: ${messageOf(error)}`);
      }
      relay.on('error', (error) => logger.warn({ event: 'websocket-error', err: error }, 'WebSocket relay server error'));
      relay.on('connection', ({ client }) => logger.debug({ event: 'websocket-connected', client: `${client.address}:${client.port}` }, 'WebSocket client connected'));
      relay.on('disconnect', ({ client, reason }) => logger.debug({ event: 'websocket-disconnected', client: `${client.address}:${client.port}`, reason }, 'WebSocket client disconnected'));
      this.relay = relay;
      try {
        const bound = await relay.listen();
        this.addresses.websocket = { host: bound.address, port: bound.port };
      } catch (error) {
        const code = codeOf(error);
        const hint = code === 'EACCES' && settings.websocket.listen.port < 1024 ? ' (ports below 1024 need CAP_NET_BIND_SERVICE)' : '';
        throw new Refusal(`--websocket ${formatListenAddress(settings.websocket.listen)}: cannot listen (${code ?? messageOf(error)})${hint}`);
      }
    }

    if (settings.admin) {
      this.adminServer = createAdminServer({
        peers: gateway,
        status: (key) => peerStatus(key, { store, kernel: this.kernel, interfaceName: settings.interface }),
        tokenDigest: () => this.secrets.adminTokenDigest(),
        logger,
      });
      this.addresses.admin = await listen(this.adminServer, settings.admin.listen, '--admin');
    }

    this.listening = true;
    const stats = gateway.stats();
    logger.info({
      event: 'ready', interface: settings.interface, publicKey: gateway.publicKey, listenPort: gateway.listenPort,
      kernelPeers: stats.kernelPeers, storePeers: await store.countPeers(),
      metrics: this.addresses.metrics && formatListenAddress(this.addresses.metrics),
      admin: this.addresses.admin && formatListenAddress(this.addresses.admin),
      websocket: this.addresses.websocket && formatListenAddress(this.addresses.websocket),
    }, 'ready');
  }

  private async release(): Promise<void> {
    this.listening = false;
    await Promise.all([
      this.adminServer ? closeServer(this.adminServer) : undefined,
      this.relay?.close(1000),
    ]);
    await this.gateway?.stop();
    this.unownedStore?.close();
    if (this.metricsServer) await closeServer(this.metricsServer);
    if (this.ownsKernel) await this.kernel.close?.();
  }
}

function readPem(path: string, flag: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Refusal(`${flag} ${path}: cannot read it (${codeOf(error) ?? messageOf(error)})`);
  }
}

/** The start failures that are the operator's to fix, as refusals; null for the rest. */
function startRefusal(error: unknown, settings: GatewaySettings): Refusal | null {
  const code = codeOf(error);
  if (error instanceof GatewayError && (code === 'ERR_JITGUARD_NO_PRIVATE_KEY' || code === 'ERR_JITGUARD_NO_LISTEN_PORT')) return new Refusal(error.message.replace(/^start: /, ''));
  if (code === 'EPERM' || code === 'EACCES') {
    const capture = (error as Error).name === 'CaptureError';
    return new Refusal(`missing capability ${capture ? 'CAP_NET_RAW' : 'CAP_NET_ADMIN'} (${messageOf(error)})`);
  }
  if (code === 'ENODEV') {
    return (error as Error).name === 'CaptureError'
      ? new Refusal(`--capture-interface ${settings.captureInterface ?? ''}: no such interface`)
      : new Refusal(`interface ${settings.interface} disappeared while starting`);
  }
  return null;
}
