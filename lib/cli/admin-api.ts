/**
 * `--admin HOST:PORT --admin-token-file F`: the push path over HTTP.
 *
 *   PUT    /v1/peers/{key}   upsert; body as the resolver contract's JSON (`publicKey` may be
 *                            left out; if present it must be the key in the URL)
 *   DELETE /v1/peers/{key}   revoke: out of the store and the kernel at once
 *   GET    /v1/peers/{key}   in store / in kernel / last handshake (peer-status.ts)
 *
 * `{key}` is base64url without padding, as in the resolver contract. Every request needs
 * `Authorization: Bearer <token>`, checked in constant time (bearer.ts) before the body is
 * read. Bodies go through `validatePeerConfig`, the validator every other entry uses, so the
 * admin API cannot store what the resolver path would refuse. Replies and log lines never carry
 * a preshared key.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ValidationError } from '../errors.js';
import { GatewayError } from '../gateway/errors.js';
import { keyFromUrl, validatePeerConfig } from '../gateway/peer-config.js';
import type { ResolvedPeer, StoredPeer } from '../gateway/types.js';
import { bearerMatches } from './bearer.js';
import { BodyError, readJsonBody, sendJson } from './http-server.js';
import { errorFields, type Logger } from './logger.js';
import type { PeerStatus } from './peer-status.js';
import { codeOf } from './refusal.js';

/** Larger than any valid body (1,024 prefixes), small enough that nobody can fill memory with one. */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export interface AdminApiOptions {
  peers: {
    upsertPeer(peer: ResolvedPeer): Promise<StoredPeer>;
    revokePeer(publicKey: string): Promise<void>;
  };
  status(publicKey: string): Promise<PeerStatus>;
  /** SHA-256 of the current token (re-read on SIGHUP). */
  tokenDigest(): Buffer | null;
  logger: Logger;
}

const PEER_PATH = /^\/v1\/peers\/([^/]*)$/;

export function createAdminServer(options: AdminApiOptions): Server {
  return createServer((req, res) => {
    handle(req, res, options).catch((error: unknown) => fail(res, error, options.logger));
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AdminApiOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0]!;
  const match = PEER_PATH.exec(path);
  if (!bearerMatches(req.headers.authorization, options.tokenDigest())) {
    options.logger.info({ event: 'admin-unauthorized', remote: req.socket.remoteAddress, method: req.method }, 'admin request without a valid token');
    sendJson(res, 401, { error: 'a valid Authorization: Bearer token is required' }, { 'www-authenticate': 'Bearer realm="jitguard"', connection: 'close' });
    return;
  }
  if (!match) {
    sendJson(res, 404, { error: 'not found: the admin API is /v1/peers/{key}' });
    return;
  }
  const publicKey = keyFromUrl(match[1]!, 'key');
  switch (req.method) {
    case 'GET': {
      sendJson(res, 200, await options.status(publicKey));
      return;
    }
    case 'PUT': {
      const body = await readJsonBody(req, MAX_ADMIN_BODY_BYTES);
      const withKey = typeof body === 'object' && body !== null && !Array.isArray(body) && !('publicKey' in body) ? { ...body, publicKey } : body;
      const peer = validatePeerConfig(withKey, 'body');
      if (peer.publicKey !== publicKey) throw new ValidationError('body.publicKey', 'differs from the key in the URL');
      const stored = await options.peers.upsertPeer(peer);
      options.logger.info({ event: 'admin-upsert', publicKey, allowedIps: stored.allowedIps, persistentKeepalive: stored.persistentKeepalive, hasPresharedKey: stored.presharedKey !== null }, 'peer upserted');
      sendJson(res, 200, {
        publicKey: stored.publicKey, allowedIps: stored.allowedIps, persistentKeepalive: stored.persistentKeepalive,
        hasPresharedKey: stored.presharedKey !== null, origin: stored.origin, fetchedAt: new Date(stored.fetchedAt).toISOString(),
      });
      return;
    }
    case 'DELETE': {
      await options.peers.revokePeer(publicKey);
      options.logger.info({ event: 'admin-revoke', publicKey }, 'peer revoked');
      res.writeHead(204, { 'cache-control': 'no-store' }).end();
      return;
    }
    default:
      sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, PUT, DELETE' });
  }
}

function fail(res: ServerResponse, error: unknown, logger: Logger): void {
  if (res.headersSent) { res.destroy(); return; }
  if (error instanceof BodyError) {
    sendJson(res, error.status, { error: error.message }, { connection: 'close' });
  } else if (error instanceof ValidationError) {
    sendJson(res, 400, { error: error.message, path: error.path });
  } else if (error instanceof GatewayError && error.code === 'ERR_JITGUARD_GATEWAY_STATE') {
    sendJson(res, 503, { error: 'the gateway is not running' });
  } else {
    logger.error({ event: 'admin-error', err: error }, 'admin request failed');
    const code = codeOf(error);
    sendJson(res, 500, { error: 'the request failed', ...(code !== undefined ? { code } : {}), message: errorFields(error).message });
  }
}
