/**
 * The command line, as commander parses it: which command, and the flags given (strings, as
 * typed; settings.ts validates them). Nothing here has defaults, so a flag that is present was
 * typed, and it overrides the config file's value.
 *
 * A bad command line is a `Refusal` (one line, exit 2), never commander's own exit: the daemon
 * promises one stderr line and code 2 for every refusal, and commander would print help and
 * exit 1.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Refusal } from './refusal.js';

/** The gateway's settings as flags or config-file keys give them, before validation. */
export interface RawGatewaySettings {
  interface?: unknown;
  privateKeyFile?: unknown;
  listenPort?: unknown;
  captureInterface?: unknown;
  resolver?: unknown;
  resolverHeader?: unknown;
  resolverTokenFile?: unknown;
  db?: unknown;
  idleTimeout?: unknown;
  evictInterval?: unknown;
  handshakeGrace?: unknown;
  metrics?: unknown;
  admin?: unknown;
  adminTokenFile?: unknown;
  websocket?: unknown;
  tlsCert?: unknown;
  tlsKey?: unknown;
  logLevel?: unknown;
}

/** Every key a config file may hold: the gateway's long flags in camelCase. */
export const GATEWAY_SETTING_KEYS: readonly (keyof RawGatewaySettings)[] = [
  'interface', 'privateKeyFile', 'listenPort', 'captureInterface', 'resolver', 'resolverHeader', 'resolverTokenFile',
  'db', 'idleTimeout', 'evictInterval', 'handshakeGrace', 'metrics', 'admin', 'adminTokenFile', 'websocket',
  'tlsCert', 'tlsKey', 'logLevel',
];

export interface RawBridgeSettings {
  url?: unknown;
  listen?: unknown;
  insecure?: unknown;
  pinSha256?: unknown;
  logLevel?: unknown;
}

export type ParsedArguments =
  /** `--help` or `--version`: print `output` to stdout and exit 0. */
  | { command: 'exit'; output: string }
  | { command: 'gateway'; flags: RawGatewaySettings; configFile: string | undefined }
  | { command: 'ws-connect'; flags: RawBridgeSettings };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

export function parseArguments(argv: readonly string[]): ParsedArguments {
  let parsed: ParsedArguments | undefined;
  let output = '';
  const program = new Command('jitguard')
    .description('Just-in-time kernel WireGuard peers: the gateway daemon and a WebSocket bridge for clients without UDP.')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (text) => { output += text; }, writeErr: () => undefined, outputError: () => undefined })
    .showHelpAfterError(false);

  program.command('gateway')
    .description('Run a JIT WireGuard gateway on an interface: capture initiations, install peers from the store or the resolver, evict idle ones.')
    .option('--interface <name>', 'the WireGuard interface, required (created and configured if missing when --private-key-file and --listen-port are given, otherwise used as it is)')
    .option('--private-key-file <file>', 'private key (base64, as wg genkey writes it) for an interface the daemon creates')
    .option('--listen-port <port>', 'UDP listen port for an interface the daemon creates')
    .option('--capture-interface <name>', 'where to sniff initiations (default: every interface)')
    .option('--resolver <url>', 'the HTTP resolver contract base URL (GET {url}/{key})')
    .option('--resolver-header <header>', "a header sent to the resolver, 'Name: value', or @FILE for header lines read from FILE (repeatable; FILE re-read on SIGHUP)", collect)
    .option('--resolver-token-file <file>', 'a Bearer token for the resolver, read from FILE (re-read on SIGHUP)')
    .option('--db <path>', 'the SQLite store (created with mode 0600)')
    .option('--idle-timeout <seconds>', 'evict a peer idle this long (default 600)')
    .option('--evict-interval <seconds>', 'seconds between eviction scans (default 30)')
    .option('--handshake-grace <seconds>', 'seconds an installed peer may take to handshake (default 30)')
    .option('--metrics <host:port>', 'serve GET /metrics, /healthz, /readyz')
    .option('--admin <host:port>', 'serve the admin API (PUT, DELETE, GET /v1/peers/{key}); needs --admin-token-file')
    .option('--admin-token-file <file>', 'the admin API Bearer token, read from FILE (re-read on SIGHUP)')
    .option('--websocket <host:port>', 'serve WireGuard over WebSocket (flyctl-compatible)')
    .option('--tls-cert <file>', 'PEM certificate chain for --websocket (wss://)')
    .option('--tls-key <file>', 'PEM private key for --websocket (wss://)')
    .option('--config <file>', 'the same settings as a JSON object (keys: the flags in camelCase); flags override it')
    .addOption(new Option('--log-level <level>', 'log level (JSON lines on stdout; default info)').choices(LOG_LEVELS))
    .action((options: RawGatewaySettings & { config?: string }) => {
      const { config, ...flags } = options;
      parsed = { command: 'gateway', flags, configFile: config };
    });

  program.command('ws-connect')
    .description('Bridge a local UDP port to a gateway\'s WireGuard-over-WebSocket relay, for a client whose network blocks UDP: point the peer\'s endpoint at --listen.')
    .requiredOption('--url <url>', 'the relay, e.g. wss://gateway.example:443/')
    .requiredOption('--listen <host:port>', 'the local UDP address the WireGuard client sends to, e.g. 127.0.0.1:51821')
    .option('--insecure', 'accept any TLS certificate (as flyctl does)')
    .option('--pin-sha256 <hash>', 'accept only the certificate with this SHA-256 fingerprint (64 hex digits, colons optional: openssl x509 -noout -fingerprint -sha256)')
    .addOption(new Option('--log-level <level>', 'log level (default info)').choices(LOG_LEVELS))
    .action((options: RawBridgeSettings) => {
      parsed = { command: 'ws-connect', flags: options };
    });

  try {
    program.parse([...argv], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return { command: 'exit', output };
      if (error.code === 'commander.help' || error.code === 'commander.executeSubCommandAsync') {
        throw new Refusal('expected a command: gateway or ws-connect (see jitguard --help)');
      }
      throw new Refusal(error.message.replace(/^error: /, ''));
    }
    throw error;
  }
  if (!parsed) throw new Refusal('expected a command: gateway or ws-connect (see jitguard --help)');
  return parsed;
}

/** The version in package.json, found from here in the source tree and in dist/ alike. */
function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'jitguard' && typeof pkg.version === 'string') return pkg.version;
    } catch { /* not here: look one level up */ }
    dir = dirname(dir);
  }
  return 'unknown';
}
