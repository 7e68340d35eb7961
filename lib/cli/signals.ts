/**
 * The daemon's signals:
 *
 * - SIGTERM, SIGINT: stop (stop accepting, drain, close) and exit 0 once stopped; if stopping
 *   takes more than 5 s, or a second SIGTERM/SIGINT arrives, log it and exit 1 without waiting:
 *   a supervisor must be able to count on the process going away, and a drain cut short is
 *   worth a non-zero status.
 * - SIGHUP: re-read the credential files (token and header files); nothing else restarts.
 */
import type { Logger } from './logger.js';

export interface SignalSource {
  on(signal: NodeJS.Signals, listener: () => void): unknown;
  off(signal: NodeJS.Signals, listener: () => void): unknown;
}

export interface SignalHandling {
  signals: SignalSource;
  stop: () => Promise<void>;
  reload: () => void;
  logger: Logger;
  /** Default 5000. */
  forceAfterMs?: number;
}

export const DRAIN_LIMIT_MS = 5000;

/** Installs the handlers; resolves with the exit code once a stop signal has been dealt with. */
export function untilStopped(handling: SignalHandling): Promise<number> {
  const forceAfterMs = handling.forceAfterMs ?? DRAIN_LIMIT_MS;
  const { logger } = handling;
  return new Promise((resolve) => {
    let stopping = false;
    let done = false;
    let force: NodeJS.Timeout | undefined;
    const onTerm = () => onStopSignal('SIGTERM');
    const onInt = () => onStopSignal('SIGINT');
    const onHup = () => { if (!stopping) handling.reload(); };
    const finish = (code: number) => {
      if (done) return;
      done = true;
      clearTimeout(force);
      handling.signals.off('SIGTERM', onTerm);
      handling.signals.off('SIGINT', onInt);
      handling.signals.off('SIGHUP', onHup);
      resolve(code);
    };
    function onStopSignal(signal: NodeJS.Signals): void {
      if (stopping) {
        logger.warn({ event: 'forced-exit', signal }, `second ${signal} while stopping: exiting without waiting for the drain`);
        finish(1);
        return;
      }
      stopping = true;
      logger.info({ event: 'stopping', signal }, 'stopping: no new connections, draining');
      force = setTimeout(() => {
        logger.warn({ event: 'forced-exit', afterMs: forceAfterMs }, `drain did not finish within ${forceAfterMs} ms: exiting anyway`);
        finish(1);
      }, forceAfterMs);
      handling.stop().then(
        () => {
          if (done) return;
          logger.info({ event: 'stopped' }, 'stopped');
          finish(0);
        },
        (error: unknown) => {
          if (done) return;
          logger.error({ event: 'stop-failed', err: error }, 'stopping failed');
          finish(1);
        },
      );
    }
    handling.signals.on('SIGTERM', onTerm);
    handling.signals.on('SIGINT', onInt);
    handling.signals.on('SIGHUP', onHup);
  });
}
