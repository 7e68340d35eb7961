/**
 * The gateway's events as log lines. Installs, evictions and errors are `info`/`warn`; a
 * rejection is `info` when it concerns an authenticated key (something an operator acts on:
 * revoked, unknown, a failed lookup) and `debug` when it is the cheap refusal of a flood
 * (rate-limited, replayed, unauthenticated, overloaded), so a flood cannot flood the log.
 */
import type { Gateway } from '../gateway/gateway.js';
import type { RejectReason } from '../gateway/types.js';
import { errorFields, type Logger } from './logger.js';

const FLOOD_REASONS: ReadonlySet<RejectReason> = new Set(['rate-limited', 'replayed-packet', 'unauthenticated', 'overloaded', 'stopping']);

export function logGatewayEvents(gateway: Gateway, logger: Logger): void {
  gateway.on('installed', (e) => {
    logger.info({ event: 'installed', publicKey: e.publicKey, source: `${e.source.address}:${e.source.port}`, via: e.via, allowedIps: e.allowedIps, knockToInstallMs: Math.round(e.knockToInstallMs * 10) / 10 }, 'peer installed');
  });
  gateway.on('rejected', (e) => {
    const fields = { event: 'rejected', reason: e.reason, source: `${e.source.address}:${e.source.port}`, ...(e.publicKey !== undefined ? { publicKey: e.publicKey } : {}), ...(e.detail !== undefined ? { detail: e.detail } : {}) };
    if (FLOOD_REASONS.has(e.reason)) logger.debug(fields, 'initiation rejected');
    else logger.info(fields, 'initiation rejected');
  });
  gateway.on('evicted', (e) => {
    logger.info({ event: 'evicted', publicKey: e.publicKey, reason: e.reason, idleSeconds: e.idleSeconds }, 'peer evicted');
  });
  gateway.on('error', (error) => {
    logger.warn({ event: 'gateway-error', code: error.code, stage: error.stage, err: error }, 'gateway error (survived)');
  });
}
