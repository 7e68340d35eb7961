/**
 * The command line end to end, with the process's edges passed in (output, signals, the
 * daemon's dependencies) so tests run it in-process: parse → settings → run → exit code.
 * 0: done (or help); 2: refused (one line on stderr); 1: failed.
 */
import type { DestinationStream } from 'pino';
import { parseArguments, type ParsedArguments } from './arguments.js';
import { bridgeSettings, startBridge } from './bridge-command.js';
import { mergeSettings, readConfigFile } from './config-file.js';
import { Daemon, type DaemonDeps } from './daemon.js';
import { createLogger } from './logger.js';
import { messageOf, Refusal, REFUSAL_EXIT_CODE, stderrLine } from './refusal.js';
import { gatewaySettings } from './settings.js';
import { untilStopped, type SignalSource } from './signals.js';

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
  const logger = createLogger(settings.logLevel, io.logDestination);
  const daemon = await Daemon.start(settings, { ...io.daemon, logger });
  io.onDaemon?.(daemon);
  return untilStopped({ signals: io.signals, stop: () => daemon.stop(), reload: () => daemon.reload(), logger, ...(io.forceAfterMs !== undefined ? { forceAfterMs: io.forceAfterMs } : {}) });
}

async function runBridge(parsed: Extract<ParsedArguments, { command: 'ws-connect' }>, io: CliIo): Promise<number> {
  const settings = bridgeSettings(parsed.flags);
  const logger = createLogger(settings.logLevel, io.logDestination);
  const bridge = await startBridge(settings, logger);
  return untilStopped({
    signals: io.signals, stop: () => bridge.close(), logger,
    reload: () => logger.info({ event: 'reloaded' }, 'nothing to re-read'),
    ...(io.forceAfterMs !== undefined ? { forceAfterMs: io.forceAfterMs } : {}),
  });
}
