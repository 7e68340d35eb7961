/**
 * `--metrics HOST:PORT`: `GET /metrics` (Prometheus text from the gateway's registry, relay
 * metrics included), `GET /healthz` (the process answers) and `GET /readyz` (200 once the
 * gateway has reconciled and every listener is up; 503 before that and while stopping, so a
 * load balancer stops sending clients before the drain).
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { sendJson, sendText } from './http-server.js';
import { errorFields, type Logger } from './logger.js';

export interface MetricsServerOptions {
  registry: Registry;
  ready: () => boolean;
  logger: Logger;
}

export function createMetricsServer(options: MetricsServerOptions): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      return;
    }
    switch (path) {
      case '/metrics':
        options.registry.metrics().then(
          (text) => sendText(res, 200, text, options.registry.contentType),
          (error: unknown) => {
            options.logger.error({ event: 'metrics-error', err: error }, 'collecting metrics failed');
            sendJson(res, 500, { error: 'collecting metrics failed', ...pick(errorFields(error)) });
          },
        );
        return;
      case '/healthz':
        sendJson(res, 200, { status: 'ok' });
        return;
      case '/readyz': {
        const ready = options.ready();
        sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready' });
        return;
      }
      default:
        sendJson(res, 404, { error: 'not found', paths: ['/metrics', '/healthz', '/readyz'] });
    }
  });
}

function pick(fields: Record<string, unknown>): Record<string, unknown> {
  return fields.code !== undefined ? { code: fields.code } : {};
}
