/**
 * The daemon's log: JSON lines on stdout (pino), one line per event, `event` naming it.
 *
 * Public keys may appear; private keys, preshared keys, tokens and header values never do.
 * Nothing that could hold one is passed to the logger (the events and errors of the gateway
 * carry none, by design), and the redaction below is a second fence for fields with those names
 * should one ever be logged by mistake. Errors are logged through `errorFields`, which keeps
 * names, codes and messages and drops everything else an error object may carry.
 */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './settings.js';

export type { Logger };

const REDACTED_FIELDS = ['presharedKey', 'privateKey', 'token', 'authorization', 'headers', 'password', 'secret'];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    redact: { paths: [...REDACTED_FIELDS, ...REDACTED_FIELDS.map((f) => `*.${f}`)], censor: '[redacted]' },
    serializers: { err: errorFields },
  };
  // Synchronous writes: a line logged just before exit must not be lost with the process.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
}

/** What of an error reaches a log line: its name, code, stage and message, and its cause's. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const fields: Record<string, unknown> = { type: error.name, message: error.message };
  const { code, stage } = error as { code?: unknown; stage?: unknown };
  if (typeof code === 'string' || typeof code === 'number') fields.code = code;
  if (typeof stage === 'string') fields.stage = stage;
  if (error.cause instanceof Error) {
    const causeCode = (error.cause as { code?: unknown }).code;
    fields.cause = { type: error.cause.name, message: error.cause.message, ...(typeof causeCode === 'string' ? { code: causeCode } : {}) };
  }
  return fields;
}
