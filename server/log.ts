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
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, bufferedStdout());
}

/**
 * stdout through an asynchronous SonicBoom that writes once 4 KiB have
 * gathered, and at least every 100 ms: under DHCP load (a line per packet)
 * that is one write(2) per dozen lines instead of one per line. pino flushes
 * it when the process exits; a SIGKILL loses at most the last 100 ms of
 * lines, never a lease (those are in SQLite before a reply leaves).
 */
function bufferedStdout(): ReturnType<typeof pino.destination> {
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => destination.flush(), 100).unref();
  return destination;
}

/**
 * Summary log lines for floods: the first event of a quiet period is
 * written at once, the rest are counted by reason and written as one line
 * per `windowMs` (with the fields of the last one), so a flood costs a few
 * lines rather than one per packet or connection.
 */
export class RateLimitedLog {
  private counts = new Map<string, number>();
  private last: Record<string, unknown> = {};
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (counts: Record<string, number>, last: Record<string, unknown>) => void,
    private readonly windowMs = 10_000,
  ) {}

  note(reason: string, fields: Record<string, unknown> = {}): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.last = fields;
    if (this.timer === undefined) {
      this.flush();
      this.arm();
    }
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.counts.size > 0) {
        this.flush();
        this.arm();
      }
    }, this.windowMs);
    this.timer.unref();
  }

  private flush(): void {
    this.write(Object.fromEntries(this.counts), this.last);
    this.counts = new Map();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** A logger that drops everything, for unit tests of the I/O shells. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
