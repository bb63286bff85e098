import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One logger for the whole process: JSON lines when stdout is not a terminal
 * (journald, files, tests), pino-pretty when a person is watching.
 * RACKBOOT_LOG_LEVEL overrides the level (debug shows every dropped packet).
 */
export function createLogger(options: { level?: string; pretty?: boolean } = {}): Logger {
  const level = options.level ?? process.env.RACKBOOT_LOG_LEVEL ?? 'info';
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that drops everything, for unit tests of the I/O shells. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
