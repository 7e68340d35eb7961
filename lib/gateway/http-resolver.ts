/**
 * `httpResolver`: the control-plane lookup over HTTP, with Node's own `fetch` (undici's global
 * dispatcher, which pools keep-alive connections). The contract, for any control plane:
 *
 * - `GET {url}/{key}`, key = the public key in base64url without padding (43 characters),
 *   `Accept: application/json`, plus the configured headers.
 * - `200` with `{"publicKey","allowedIps",("presharedKey"),("persistentKeepalive")}`: `publicKey`
 *   must be the key asked for; every field goes through `validatePeerConfig` (the `setDevice`
 *   rules). Any content type is accepted as long as the body is JSON: control planes are sloppy
 *   about headers, and the body is validated field by field anyway.
 * - `404` or `410`: the key is unknown (`null`).
 * - Anything else is a `ResolverError` with a `reason`: the gateway drops the initiation and
 *   caches the failure briefly. Redirects are never followed (`redirect: 'manual'`).
 *
 * Messages never include the response body (it may hold a preshared key) or the request headers
 * (they hold the bearer token); they may include the status code and a validator's path.
 */
import { ValidationError } from '../errors.js';
import { keyToUrl, validatePeerConfig } from './peer-config.js';
import type { ResolvedPeer, Resolver } from './types.js';

export type ResolverFailure =
  | 'timeout' | 'aborted' | 'network' | 'status' | 'redirect' | 'body-too-large' | 'invalid-json' | 'invalid-peer' | 'wrong-key';

export class ResolverError extends Error {
  override name = 'ResolverError';
  readonly code = 'ERR_JITGUARD_RESOLVER';
  readonly reason: ResolverFailure;
  readonly status: number | undefined;

  constructor(reason: ResolverFailure, message: string, status?: number) {
    super(message);
    this.reason = reason;
    this.status = status;
  }
}

export interface HttpResolverOptions {
  /** Base URL, http: or https:; the key is appended as one more path segment. */
  url: string;
  /** Whole exchange, body included (default 2000 ms). */
  timeoutMs?: number;
  /** Extra request headers, or a function returning them per request (to re-read a token file). */
  headers?: Record<string, string> | (() => Record<string, string>);
  /** Largest body read (default 64 KiB); a longer one is cut off and refused. */
  maxBodyBytes?: number;
}

export function httpResolver(options: HttpResolverOptions): Resolver {
  if (typeof options !== 'object' || options === null) throw new ValidationError('options', 'expected an object');
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new ValidationError('options.url', 'expected an absolute http: or https: URL');
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new ValidationError('options.url', `expected http: or https:, got ${base.protocol}`);
  const prefix = base.href.replace(/\/+$/, '');
  const timeoutMs = positiveInteger(options.timeoutMs, 2000, 'options.timeoutMs');
  const maxBodyBytes = positiveInteger(options.maxBodyBytes, 64 * 1024, 'options.maxBodyBytes');
  const headers = options.headers ?? {};
  if (typeof headers !== 'function' && (typeof headers !== 'object' || headers === null)) {
    throw new ValidationError('options.headers', 'expected a record of header values or a function returning one');
  }

  return async (publicKey: string, signal: AbortSignal): Promise<ResolvedPeer | null> => {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs);
    const onAbort = () => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) controller.abort();
    const failure = (error: unknown): ResolverError => {
      if (error instanceof ResolverError) return error;
      if (timedOut) return new ResolverError('timeout', `resolver: no answer within ${timeoutMs} ms`);
      if (signal.aborted) return new ResolverError('aborted', 'resolver: lookup aborted');
      const code = (error as { cause?: { code?: unknown } })?.cause?.code;
      return new ResolverError('network', `resolver: request failed${typeof code === 'string' ? ` (${code})` : ''}`);
    };
    try {
      const response = await fetch(`${prefix}/${keyToUrl(publicKey)}`, {
        method: 'GET',
        redirect: 'manual',
        signal: controller.signal,
        headers: { ...(typeof headers === 'function' ? headers() : headers), accept: 'application/json' },
      });
      if (response.status === 404 || response.status === 410) {
        await response.body?.cancel();
        return null;
      }
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        throw new ResolverError('redirect', `resolver: answered with a redirect (HTTP ${response.status}); redirects are not followed`, response.status);
      }
      if (response.status !== 200) {
        await response.body?.cancel();
        throw new ResolverError('status', `resolver: answered HTTP ${response.status}`, response.status);
      }
      const text = await readBounded(response, maxBodyBytes);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ResolverError('invalid-json', 'resolver: the body is not JSON', 200);
      }
      let peer;
      try {
        peer = validatePeerConfig(body, 'answer');
      } catch (error) {
        const path = error instanceof ValidationError ? error.path : 'answer';
        throw new ResolverError('invalid-peer', `resolver: invalid answer at ${path}`, 200);
      }
      if (peer.publicKey !== publicKey) throw new ResolverError('wrong-key', 'resolver: the answer is for another key', 200);
      return peer;
    } catch (error) {
      throw failure(error);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  };
}

/** Reads at most `limit` bytes of the body as UTF-8; cancels the stream as soon as it is over. */
async function readBounded(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new ResolverError('body-too-large', `resolver: body over ${limit} bytes`, 200);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function positiveInteger(value: unknown, fallback: number, path: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new ValidationError(path, `expected a positive integer, got ${String(value)}`);
  return value;
}
