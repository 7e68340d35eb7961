/**
 * `jitguard ws-connect --url wss://gw:443/ --listen 127.0.0.1:51821 [--insecure | --pin-sha256 HASH]`:
 * a thin wrapper over `WebSocketBridge` — flags to options, refusals for bad ones, events to
 * log lines. A client whose network blocks UDP points its peer endpoint at `--listen`.
 */
import { ValidationError } from '../errors.js';
import { startWebSocketBridge, type WebSocketBridge } from '../websocket/bridge.js';
import type { RawBridgeSettings } from './arguments.js';
import { parseListenAddress } from './listen-address.js';
import { type Logger } from './logger.js';
import { codeOf, messageOf, Refusal } from './refusal.js';
import type { LogLevel } from './settings.js';

export interface BridgeSettings {
  url: string;
  listen: { address: string; port: number };
  insecure: boolean;
  pinSha256: string | undefined;
  logLevel: LogLevel;
}

export function bridgeSettings(raw: RawBridgeSettings): BridgeSettings {
  if (typeof raw.url !== 'string') throw new Refusal('--url is required (the relay, e.g. wss://gateway.example:443/)');
  const listen = parseListenAddress(raw.listen, '--listen', { numeric: true });
  if (raw.insecure === true && raw.pinSha256 !== undefined) throw new Refusal('--insecure and --pin-sha256 exclude each other');
  return {
    url: raw.url,
    listen: { address: listen.host, port: listen.port },
    insecure: raw.insecure === true,
    pinSha256: typeof raw.pinSha256 === 'string' ? raw.pinSha256 : undefined,
    logLevel: (typeof raw.logLevel === 'string' ? raw.logLevel : 'info') as LogLevel,
  };
}

export async function startBridge(settings: BridgeSettings, logger: Logger): Promise<WebSocketBridge> {
  let bridge: WebSocketBridge;
  try {
    bridge = await startWebSocketBridge({
      url: settings.url,
      listen: settings.listen,
      ...(settings.insecure ? { insecure: true } : {}),
      ...(settings.pinSha256 !== undefined ? { pinSha256: settings.pinSha256 } : {}),
    });
  } catch (error) {
    if (error instanceof ValidationError) throw new Refusal(messageOf(error).replace(/^options\.(\w+)/, (_, name: string) => `--${name === 'pinSha256' ? 'pin-sha256' : name}`).replace(/^pinSha256/, '--pin-sha256'));
    throw new Refusal(`--listen ${settings.listen.address}:${settings.listen.port}: cannot bind (${codeOf(error) ?? messageOf(error)})`);
  }
  const local = bridge.address!;
  logger.info({ event: 'listening', listen: `${local.address}:${local.port}`, url: settings.url }, 'bridge listening; point the WireGuard peer endpoint here');
  bridge.on('connected', () => logger.info({ event: 'connected', url: settings.url }, 'connected to the relay'));
  bridge.on('disconnected', (e) => {
    logger.warn({ event: 'disconnected', code: e.code, reason: e.reason, retryInMs: e.retryInMs, ...(e.error ? { err: e.error } : {}) }, 'disconnected from the relay');
  });
  return bridge;
}
