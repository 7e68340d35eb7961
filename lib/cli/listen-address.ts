/** `HOST:PORT` as the daemon's listening flags take it (`--metrics`, `--admin`, `--websocket`). */
import { isIP } from 'node:net';
import { Refusal } from './refusal.js';

export interface ListenAddress {
  host: string;
  /** 0: any free port (the bound one is logged). */
  port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * Parses `127.0.0.1:9100`, `[::1]:9100`, `localhost:9100` or `0.0.0.0:443`. An IPv6 address
 * must be bracketed: `::1:9100` would be ambiguous. `numeric`: no host names (the WebSocket
 * relay and the bridge bind numeric addresses only).
 */
export function parseListenAddress(value: unknown, flag: string, options: { numeric?: boolean } = {}): ListenAddress {
  if (typeof value !== 'string' || value === '') throw new Refusal(`${flag}: expected HOST:PORT`);
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(value);
  const plain = /^([^:[\]]+):(\d{1,5})$/.exec(value);
  const match = bracketed ?? plain;
  if (!match) throw new Refusal(`${flag}: expected HOST:PORT (an IPv6 address in brackets, e.g. [::1]:9100), got '${value.slice(0, 64)}'`);
  const host = match[1]!;
  if (bracketed && isIP(host) !== 6) throw new Refusal(`${flag}: '${host.slice(0, 64)}' in brackets is not an IPv6 address`);
  if (options.numeric === true && isIP(host) === 0) throw new Refusal(`${flag}: expected a numeric IP address, got '${host.slice(0, 64)}'`);
  if (plain && isIP(host) === 0 && !HOSTNAME.test(host)) throw new Refusal(`${flag}: '${host.slice(0, 64)}' is not an IP address or host name`);
  const port = Number(match[2]);
  if (port > 65535) throw new Refusal(`${flag}: port ${port} is above 65535`);
  return { host, port };
}

/** `HOST:PORT` back, brackets around IPv6, as logs print it. */
export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
