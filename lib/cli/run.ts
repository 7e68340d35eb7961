/**
 * The command line end to end, with the process's edges passed in (output, signals, the
 * daemon's dependencies) so tests run it in-process: parse → settings → run → exit code.
 * 0: done (or help); 2: refused (one line on stderr); 1: failed.
 *
 * Each command's modules are imported only when it runs: `--help`, a bad flag or `ws-connect`
 * should not pay for loading the gateway (the addon, the Noise code, SQLite, prom-client).
 */
import type { DestinationStream } from 'pino';
import { parseArguments, type ParsedArguments } from './arguments.js';
import { mergeSettings, readConfigFile } from './config-file.js';
import type { Daemon, DaemonDeps } from './daemon.js';
import { messageOf, Refusal, REFUSAL_EXIT_CODE, stderrLine } from './refusal.js';
import { gatewaySettings } from './settings.js';
import type { SignalSource } from './signals.js';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  signals: SignalSource;
  /** Where log lines go (default: stdout, synchronously). */
  logDestination?: DestinationStream;
  daemon?: Omit<DaemonDeps, 'logger' | 'logDestination'>;
  /** Milliseconds a stop may take before the process exits anyway (default 5000). */
  forceAfterMs?: number;
  /** Called once the gateway is ready (tests reach the daemon through it). */
  onDaemon?: (daemon: Daemon) => void;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const parsed = parseArguments(argv);
    switch (parsed.command) {
      case 'exit':
        io.stdout(parsed.output);
        return 0;
      case 'gateway':
        return await runGateway(parsed, io);
      case 'ws-connect':
        return await runBridge(parsed, io);
    }
  } catch (error) {
    if (error instanceof Refusal) {
      io.stderr(stderrLine(error.message));
      return REFUSAL_EXIT_CODE;
    }
    io.stderr(stderrLine(`failed: ${messageOf(error)}`));
    return 1;
  }
}

async function runGateway(parsed: Extract<ParsedArguments, { command: 'gateway' }>, io: CliIo): Promise<number> {
  const config = parsed.configFile !== undefined ? readConfigFile(parsed.configFile) : {};
  const settings = gatewaySettings(mergeSettings(config, parsed.flags));
  const [{ Daemon }, { createLogger }, { untilStopped }] = await Promise.all([import('./daemon.js'), import('./logger.js'), import('./signals.js')]);
  const logger = createLogger(settings.logLevel, io.logDestination);
  // Signals are handled from before the start, so a SIGTERM during reconciliation stops the
  // daemon once it has started (or exits at the drain limit) instead of killing it half-started.
  const starting = Daemon.start(settings, { ...io.daemon, logger });
  let daemon: Daemon | null = null;
  const stopped = untilStopped({
    signals: io.signals,
    stop: () => (daemon ? daemon.stop() : starting.then((started) => started.stop(), () => undefined)),
    reload: () => daemon?.reload(),
    logger,
    ...(io.forceAfterMs !== undefined ? { forceAfterMs: io.forceAfterMs } : {}),
  });
  daemon = await starting;
  io.onDaemon?.(daemon);
  return stopped;
}

async function runBridge(parsed: Extract<ParsedArguments, { command: 'ws-connect' }>, io: CliIo): Promise<number> {
  const [{ bridgeSettings, startBridge }, { createLogger }, { untilStopped }] = await Promise.all([import('./bridge-command.js'), import('./logger.js'), import('./signals.js')]);
  const settings = bridgeSettings(parsed.flags);
  const logger = createLogger(settings.logLevel, io.logDestination);
  const bridge = await startBridge(settings, logger);
  return untilStopped({
    signals: io.signals, stop: () => bridge.close(), logger,
    reload: () => logger.info({ event: 'reloaded' }, 'nothing to re-read'),
    ...(io.forceAfterMs !== undefined ? { forceAfterMs: io.forceAfterMs } : {}),
  });
}
