/**
 * The gateway daemon's settings, validated: every flag (or config key) checked once here and
 * turned into the shape the daemon uses, or a `Refusal` that names the flag. Files are only
 * named here; secret-files.ts and the daemon read them.
 *
 * Refusal messages name flags and say what was expected; they never echo a header value or a
 * file's content (either may be a secret).
 */
import { validateInterfaceName } from '../net/interface-name.js';
import type { RawGatewaySettings } from './arguments.js';
import { parseListenAddress, type ListenAddress } from './listen-address.js';
import { messageOf, Refusal } from './refusal.js';
import { parseHeaderArgument, type HeaderSource } from './headers.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export interface GatewaySettings {
  interface: string;
  /** Create and configure the interface with these when it does not exist. */
  create: { privateKeyFile: string; listenPort: number } | null;
  captureInterface: string | null;
  resolver: { url: string; headers: HeaderSource[]; tokenFile: string | null } | null;
  db: string;
  idleTimeout: number | undefined;
  evictInterval: number | undefined;
  handshakeGrace: number | undefined;
  metrics: ListenAddress | null;
  admin: { listen: ListenAddress; tokenFile: string } | null;
  websocket: { listen: ListenAddress; tls: { certFile: string; keyFile: string } | null } | null;
  logLevel: LogLevel;
}

export function gatewaySettings(raw: RawGatewaySettings): GatewaySettings {
  if (raw.interface === undefined) throw new Refusal('--interface is required (the WireGuard interface to run on)');
  let interfaceName: string;
  try {
    interfaceName = validateInterfaceName(raw.interface, '--interface');
  } catch (error) {
    throw new Refusal(messageOf(error));
  }
  let captureInterface: string | null = null;
  if (raw.captureInterface !== undefined) {
    try {
      captureInterface = validateInterfaceName(raw.captureInterface, '--capture-interface');
    } catch (error) {
      throw new Refusal(messageOf(error));
    }
  }

  const privateKeyFile = optionalPath(raw.privateKeyFile, '--private-key-file');
  const listenPort = raw.listenPort === undefined ? null : port(raw.listenPort, '--listen-port');
  if ((privateKeyFile === null) !== (listenPort === null)) {
    throw new Refusal('--private-key-file and --listen-port go together (they configure an interface the daemon creates)');
  }

  const url = raw.resolver === undefined ? null : resolverUrl(raw.resolver);
  const headerArguments = raw.resolverHeader === undefined ? [] : stringList(raw.resolverHeader, '--resolver-header');
  const headers = headerArguments.map((argument, i) => parseHeaderArgument(argument, `--resolver-header #${i + 1}`));
  const resolverTokenFile = optionalPath(raw.resolverTokenFile, '--resolver-token-file');
  if (url === null && (headers.length > 0 || resolverTokenFile !== null)) {
    throw new Refusal(`${headers.length > 0 ? '--resolver-header' : '--resolver-token-file'} needs --resolver`);
  }
  if (resolverTokenFile !== null && headers.some((h) => h.kind === 'value' && h.name.toLowerCase() === 'authorization')) {
    throw new Refusal('--resolver-token-file and an Authorization --resolver-header both set the Authorization header; give one');
  }

  const db = optionalPath(raw.db, '--db');
  if (db === null) throw new Refusal('--db is required (the SQLite store of peers and replay state)');

  const admin = raw.admin === undefined ? null : parseListenAddress(raw.admin, '--admin');
  const adminTokenFile = optionalPath(raw.adminTokenFile, '--admin-token-file');
  if (admin !== null && adminTokenFile === null) throw new Refusal('--admin needs --admin-token-file (the admin API always requires a Bearer token)');
  if (admin === null && adminTokenFile !== null) throw new Refusal('--admin-token-file needs --admin');

  const websocket = raw.websocket === undefined ? null : parseListenAddress(raw.websocket, '--websocket', { numeric: true });
  const certFile = optionalPath(raw.tlsCert, '--tls-cert');
  const keyFile = optionalPath(raw.tlsKey, '--tls-key');
  if ((certFile === null) !== (keyFile === null)) throw new Refusal('--tls-cert and --tls-key go together');
  if (websocket === null && certFile !== null) throw new Refusal('--tls-cert and --tls-key need --websocket');

  let logLevel: LogLevel = 'info';
  if (raw.logLevel !== undefined) {
    if (typeof raw.logLevel !== 'string' || !LOG_LEVELS.has(raw.logLevel)) throw new Refusal(`--log-level: expected one of ${[...LOG_LEVELS].join(', ')}`);
    logLevel = raw.logLevel as LogLevel;
  }

  return {
    interface: interfaceName,
    create: privateKeyFile !== null && listenPort !== null ? { privateKeyFile, listenPort } : null,
    captureInterface,
    resolver: url === null ? null : { url, headers, tokenFile: resolverTokenFile },
    db,
    idleTimeout: seconds(raw.idleTimeout, '--idle-timeout'),
    evictInterval: seconds(raw.evictInterval, '--evict-interval'),
    handshakeGrace: seconds(raw.handshakeGrace, '--handshake-grace'),
    metrics: raw.metrics === undefined ? null : parseListenAddress(raw.metrics, '--metrics'),
    admin: admin !== null && adminTokenFile !== null ? { listen: admin, tokenFile: adminTokenFile } : null,
    websocket: websocket === null ? null : { listen: websocket, tls: certFile !== null && keyFile !== null ? { certFile, keyFile } : null },
    logLevel,
  };
}

function optionalPath(value: unknown, flag: string): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value === '' || value.includes('\0')) throw new Refusal(`${flag}: expected a file path`);
  return value;
}

function stringList(value: unknown, flag: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) throw new Refusal(`${flag}: expected strings`);
  return list as string[];
}

/** A number of seconds as a flag (text) or a config value (a number): finite, >= 0. */
function seconds(value: unknown, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n < 0) throw new Refusal(`${flag}: expected a non-negative number of seconds`);
  return n;
}

function port(value: unknown, flag: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Refusal(`${flag}: expected a port from 1 to 65535`);
  return n;
}

function resolverUrl(value: unknown): string {
  if (typeof value !== 'string') throw new Refusal('--resolver: expected an http:// or https:// URL');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Refusal('--resolver: expected an http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Refusal(`--resolver: expected an http:// or https:// URL, got ${url.protocol}`);
  // Credentials in the URL would end up in logs of every proxy on the way; headers exist for that.
  if (url.username !== '' || url.password !== '') throw new Refusal('--resolver: put credentials in --resolver-token-file or --resolver-header, not in the URL');
  if (url.search !== '' || url.hash !== '') throw new Refusal('--resolver: expected a base URL without ?query or #fragment (the key is appended as a path segment)');
  return value.replace(/\/+$/, '');
}
