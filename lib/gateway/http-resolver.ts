/**
 * The control-plane resolver jitguard ships: one HTTP GET per key the store does not know, on
 * Node's own fetch. Everything the control plane can get wrong ends in a {@link ResolverError}
 * with a reason, so the lookup stage can count it and cache the failure; nothing it sends can
 * crash the gateway, hold a connection past the timeout, or make it buffer more than
 * `maxBodyBytes`.
 */
import { ValidationError } from '../errors.js';
import { describe } from '../describe.js';
import { integerOption } from './options.js';
import { canonicalKey, keyToUrl, validatePeerConfig } from './peer-config.js';
import type { ResolvedPeer, Resolver } from './types.js';

/** Why an HTTP lookup failed; see {@link httpResolver} for when each applies. */
export type ResolverErrorReason =
  | 'timeout'
  | 'aborted'
  | 'network'
  | 'redirect'
  | 'status'
  | 'body-too-large'
  | 'invalid-json'
  | 'invalid-peer'
  | 'wrong-key'
  | 'headers';

export const RESOLVER_ERROR_REASONS: readonly ResolverErrorReason[] = [
  'timeout', 'aborted', 'network', 'redirect', 'status', 'body-too-large', 'invalid-json',
  'invalid-peer', 'wrong-key', 'headers',
];

export interface ResolverErrorFields {
  reason: ResolverErrorReason;
  /** The HTTP status, when a response arrived. */
  status?: number;
  /** For 'invalid-peer': where in the answer the validator failed, e.g. `resolved.allowedIps[2]`. */
  path?: string;
  /** For 'network': the socket or TLS error underneath (never one that could carry a header). */
  cause?: unknown;
}

/**
 * A failed lookup. The message names the reason, the status and the validator's path; it never
 * holds the response body (it may carry a preshared key) or a request header (the token).
 */
export class ResolverError extends Error {
  override name = 'ResolverError';
  readonly code = 'ERR_JITGUARD_RESOLVER';
  readonly reason: ResolverErrorReason;
  readonly status: number | undefined;
  readonly path: string | undefined;

  constructor(message: string, fields: ResolverErrorFields) {
    super(message, fields.cause !== undefined ? { cause: fields.cause } : undefined);
    this.reason = fields.reason;
    this.status = fields.status;
    this.path = fields.path;
  }
}

/** Request headers: fixed, or read afresh for every request (a token file re-read on SIGHUP). */
export type HttpResolverHeaders = Record<string, string> | (() => Record<string, string>);

export interface HttpResolverOptions {
  /** Base URL, http: or https:; the key is appended as one more path segment. */
  url: string | URL;
  /** Sent with every request; an `accept` among them is replaced by `application/json`. */
  headers?: HttpResolverHeaders;
  /** The whole exchange, connect to last body byte, in milliseconds (default 2000, at most 600000). */
  timeoutMs?: number;
  /** The largest body read, in bytes (default 65536, at most 16 MiB). */
  maxBodyBytes?: number;
}

const OPTIONS = new Set(['url', 'headers', 'timeoutMs', 'maxBodyBytes']);
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** RFC 9110 field-name: a token. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What fetch would refuse in a field value (and would then quote, token and all, in its message). */
const BAD_HEADER_VALUE = /[\0\r\n\u0100-\uffff]/;

/**
 * A {@link Resolver} that asks a control plane over HTTP. The contract, for whoever implements
 * the server:
 *
 * - Request: `GET {url}/{key}`, `key` being the public key in base64url without padding
 *   (43 characters: `+` → `-`, `/` → `_`, no `=`). Trailing slashes on `url` are dropped, so
 *   `…/peers/` and `…/peers` ask the same path; `url` may have no query, fragment or
 *   credentials (put credentials in `headers`). Headers: the configured `headers` (a record, or a
 *   function called once per request, synchronously, so a daemon can swap a token without
 *   rebuilding the resolver) and always `Accept: application/json`.
 * - `200` with a JSON body `{"publicKey":"<base64>","allowedIps":["10.0.0.7/32",…],
 *   "presharedKey":"<base64>"?,"persistentKeepalive":25?}`: checked by `validatePeerConfig`
 *   (the rules `setDevice` applies; unknown fields are refused) and `publicKey` must be the
 *   key asked for. Resolves to the canonical form (host bits cleared, keys re-encoded,
 *   `presharedKey` null and `persistentKeepalive` 0 when absent). Any `Content-Type` is
 *   accepted: the body must parse as JSON whatever it is labelled, which refuses an HTML
 *   error page as surely as a strict type check would, without failing a control plane that
 *   says `text/plain`.
 * - `404` or `410`: the key is unknown; resolves to null.
 * - Anything else rejects with a {@link ResolverError} whose `reason` is:
 *   - `'timeout'`: the exchange, body included, took longer than `timeoutMs`;
 *   - `'aborted'`: the caller's signal aborted first;
 *   - `'network'`: no response or a broken one (refused, reset, DNS, TLS, a body cut short);
 *     `cause` is the socket error. Note fetch refuses the Fetch standard's "bad ports"
 *     (6000, 6665–6669, …): a `url` on one fails every lookup this way;
 *   - `'redirect'`: a 301, 302, 303, 307 or 308 (never followed: the request carries a token);
 *   - `'status'`: any other status (5xx, 401, 204, …); `status` holds it;
 *   - `'body-too-large'`: a `Content-Length` over `maxBodyBytes`, or more bytes than that
 *     arriving (the body is read as a stream and dropped at the first byte over);
 *   - `'invalid-json'`: an empty body, bytes that are not UTF-8, or text that is not JSON;
 *   - `'invalid-peer'`: JSON that `validatePeerConfig` refuses; `path` names the field;
 *   - `'wrong-key'`: a valid configuration for another key;
 *   - `'headers'`: the headers function threw or returned something that is not a record of
 *     valid header names and values.
 *   A key that is not a WireGuard public key rejects with a `ValidationError`, before any request.
 *
 * Connections come from undici's global dispatcher (the pool behind Node's fetch): idle
 * keep-alive connections are reused, and a connection whose exchange times out, is aborted or
 * sends too much is destroyed, not returned to the pool. (undici then opens one spare idle
 * connection in its place, nodejs/undici#5845, which later lookups reuse: what stays open is
 * bounded by the lookups in flight, not by how many failed.)
 *
 * `signal` gets one listener per call in flight, removed when the call ends; give each call its
 * own signal, as the lookup stage does (Node warns past 10 listeners on one signal).
 *
 * Options are checked here and refused with a `ValidationError`: `url` (http: or https:),
 * `headers` (when a record), `timeoutMs` (an integer from 1 to 600000, default 2000),
 * `maxBodyBytes` (an integer from 1 to 16 MiB, default 65536).
 */
export function httpResolver(options: HttpResolverOptions): Resolver {
  if (typeof options !== 'object' || options === null) {
    throw new ValidationError('options', `expected an object, got ${describe(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!OPTIONS.has(name)) throw new ValidationError(`options.${name.slice(0, 64)}`, 'unknown option');
  }
  const base = baseUrl(options.url);
  const timeoutMs = integerOption(options.timeoutMs, 2000, 1, 600_000, 'options.timeoutMs');
  const maxBodyBytes = integerOption(options.maxBodyBytes, 65_536, 1, 16 * 1024 * 1024, 'options.maxBodyBytes');
  const headers = options.headers;
  if (headers !== undefined && typeof headers !== 'function') checkHeaders(headers, 'options.headers');
  warmUpFetch();

  return async (publicKey: string, signal: AbortSignal): Promise<ResolvedPeer | null> => {
    const asked = canonicalKey(publicKey, 'publicKey');
    const exchange = new Exchange(signal, timeoutMs);
    try {
      exchange.throwIfStopped();
      const response = await fetch(`${base}/${keyToUrl(asked)}`, {
        method: 'GET',
        headers: requestHeaders(headers),
        redirect: 'manual',
        signal: exchange.signal,
      });
      if (response.status === 404 || response.status === 410) {
        discard(response);
        return null;
      }
      if (response.status !== 200) {
        discard(response);
        const redirect = REDIRECT_STATUSES.has(response.status);
        throw new ResolverError(
          redirect ? `resolver answered with a redirect (HTTP ${response.status}), which is never followed` : `resolver answered HTTP ${response.status}`,
          { reason: redirect ? 'redirect' : 'status', status: response.status },
        );
      }
      const answer = parseJson(await readBody(response, maxBodyBytes));
      let peer;
      try {
        peer = validatePeerConfig(answer, 'resolved');
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        throw new ResolverError(`resolver answered an invalid configuration: ${error.message}`, { reason: 'invalid-peer', status: 200, path: error.path });
      }
      if (peer.publicKey !== asked) {
        throw new ResolverError('resolver answered with the configuration of another key', { reason: 'wrong-key', status: 200 });
      }
      return peer;
    } catch (error) {
      throw exchange.explain(error);
    } finally {
      exchange.end();
    }
  };
}

/**
 * One request's deadline and cancellation: a controller aborted by its own timer or by the
 * caller's signal, both released when the exchange ends. Not AbortSignal.any: its composite
 * stays linked to a long-lived source signal (nodejs/node#55351), and a flood makes many calls.
 */
class Exchange {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private timedOut = false;
  private readonly onCallerAbort = () => this.controller.abort(this.caller.reason);

  constructor(private readonly caller: AbortSignal, timeoutMs: number) {
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new ResolverError(`resolver did not answer within ${timeoutMs} ms`, { reason: 'timeout' }));
    }, timeoutMs);
    caller.addEventListener('abort', this.onCallerAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  throwIfStopped(): void {
    if (this.caller.aborted) this.onCallerAbort();
    if (this.controller.signal.aborted) throw this.controller.signal.reason;
  }

  end(): void {
    clearTimeout(this.timer);
    this.caller.removeEventListener('abort', this.onCallerAbort);
  }

  /**
   * The ResolverError for whatever ended the exchange. Which signal fired decides, not the
   * error's shape: fetch and the body stream reject with the abort reason, a DOMException or
   * a TypeError depending on where they were.
   */
  explain(error: unknown): unknown {
    if (this.timedOut) return this.controller.signal.reason;
    if (this.caller.aborted) return new ResolverError('lookup aborted by the caller', { reason: 'aborted' });
    if (error instanceof ResolverError || error instanceof ValidationError) return error;
    return networkError(error);
  }
}

function baseUrl(value: unknown): string {
  let url: URL;
  try {
    url = new URL(value instanceof URL ? value.href : (value as string));
  } catch {
    throw new ValidationError('options.url', typeof value === 'string' || value instanceof URL ? 'expected an absolute http: or https: URL' : `expected a URL string, got ${describe(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError('options.url', `expected an http: or https: URL, got ${url.protocol}`);
  if (url.username !== '' || url.password !== '') throw new ValidationError('options.url', 'must not hold credentials (fetch refuses them; put them in options.headers)');
  if (url.search !== '' || url.hash !== '') throw new ValidationError('options.url', 'must not have a query or a fragment (the key is appended to the path)');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

/** Throws a ValidationError naming the header, never quoting its value (it is likely a token). */
function checkHeaders(value: unknown, path: string): asserts value is Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(path, `expected a record of header names to strings, got ${describe(value)}`);
  }
  const seen = new Set<string>();
  for (const [name, text] of Object.entries(value)) {
    const where = `${path}[${JSON.stringify(name.slice(0, 64))}]`;
    if (!HEADER_NAME.test(name)) throw new ValidationError(where, 'is not a valid header name');
    if (seen.has(name.toLowerCase())) throw new ValidationError(where, 'is given twice (header names are case-insensitive)');
    seen.add(name.toLowerCase());
    if (typeof text !== 'string') throw new ValidationError(where, `expected a string, got ${describe(text)}`);
    if (BAD_HEADER_VALUE.test(text)) throw new ValidationError(where, 'value holds CR, LF, NUL or a character above U+00FF');
  }
}

/** The configured headers with `Accept: application/json`, which they cannot replace (the contract promises it). */
function requestHeaders(headers: HttpResolverHeaders | undefined): Headers {
  const result = new Headers(typeof headers === 'function' ? calledHeaders(headers) : headers);
  result.set('accept', 'application/json');
  return result;
}

function calledHeaders(headers: () => Record<string, string>): Record<string, string> {
  let value: unknown;
  try {
    value = headers();
  } catch (error) {
    // Its message is the user's and may hold what it was reading: name its class only.
    const kind = error instanceof Error ? error.constructor.name : typeof error;
    throw new ResolverError(`the options.headers function threw (${kind})`, { reason: 'headers' });
  }
  try {
    checkHeaders(value, 'options.headers()');
  } catch (error) {
    throw new ResolverError(`the options.headers function returned bad headers: ${(error as Error).message}`, { reason: 'headers' });
  }
  return value;
}

/** Lets go of a body we will not read (cancelling it closes the connection if bytes remain). */
function discard(response: Response): void {
  response.body?.cancel().catch(() => {});
}

/** The body, at most `limit` bytes, read as it arrives; the stream is cancelled at the first byte over. */
async function readBody(response: Response, limit: number): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > limit) {
    discard(response);
    throw new ResolverError(`resolver answered a body of ${declared} bytes, over the ${limit}-byte limit`, { reason: 'body-too-large', status: 200 });
  }
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      length += value.byteLength;
      chunks.push(value);
      if (length > limit) {
        reader.cancel().catch(() => {});
        throw new ResolverError(`resolver answered more than the ${limit}-byte limit`, { reason: 'body-too-large', status: 200 });
      }
    }
    const body = new Uint8Array(length);
    let offset = 0;
    for (const chunk of chunks) {
      body.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return body;
  } finally {
    // The body may hold a preshared key: wipe the copies this function made room for.
    for (const chunk of chunks) chunk.fill(0);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(body: Uint8Array): unknown {
  try {
    if (body.byteLength === 0) throw new ResolverError('resolver answered an empty body', { reason: 'invalid-json', status: 200 });
    // V8's JSON.parse quotes the text around a syntax error in its message: never pass it on.
    return JSON.parse(utf8.decode(body));
  } catch (error) {
    if (error instanceof ResolverError) throw error;
    throw new ResolverError('resolver answered a body that is not JSON in UTF-8', { reason: 'invalid-json', status: 200 });
  } finally {
    body.fill(0);
  }
}

/**
 * fetch rejects with a TypeError whose `cause` is the socket, DNS or TLS error; the TypeError
 * itself is kept out, since a fetch that refused its arguments quotes them.
 */
function networkError(error: unknown): ResolverError {
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const what = typeof code === 'string' ? code : cause.message.slice(0, 120);
    return new ResolverError(`resolver unreachable: ${what}`, { reason: 'network', cause });
  }
  return new ResolverError(`resolver request failed: ${describe(error)}`, { reason: 'network' });
}

let fetchWarmed = false;

/**
 * Node loads its fetch (undici) on first use, synchronously, and the first request also builds
 * its dispatcher: 2.8 s in a loaded test VM, longer than the default `timeoutMs`, so the first
 * lookup of a fresh gateway timed out. Paying it when the resolver is made (before the gateway
 * starts) keeps it off the first client's path. A `data:` URL touches no network.
 */
function warmUpFetch(): void {
  if (fetchWarmed) return;
  fetchWarmed = true;
  fetch('data:,').then((response) => response.arrayBuffer(), () => undefined).catch(() => undefined);
}
