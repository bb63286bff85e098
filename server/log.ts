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
 * Summary log lines for floods: the first event of each reason is written
 * at once (a new kind of trouble is never held back behind an old one's
 * flood), the rest are counted by reason and written as one line per
 * `windowMs` (with the fields of the last one), so a flood costs a few
 * lines rather than one per packet or connection. A reason that stays
 * quiet for a whole window is written at once again when it comes back.
 */
export class RateLimitedLog {
  private counts = new Map<string, number>();
  private last: Record<string, unknown> = {};
  private timer: NodeJS.Timeout | undefined;
  /** Reasons written or counted in this window or the one before: their next events are summed. */
  private recent = new Set<string>();
  private previous = new Set<string>();

  constructor(
    private readonly write: (counts: Record<string, number>, last: Record<string, unknown>) => void,
    private readonly windowMs = 10_000,
  ) {}

  note(reason: string, fields: Record<string, unknown> = {}): void {
    if (!this.recent.has(reason) && !this.previous.has(reason)) {
      this.recent.add(reason);
      this.write({ [reason]: 1 }, fields);
      if (this.timer === undefined) this.arm();
      return;
    }
    this.recent.add(reason);
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.last = fields;
    if (this.timer === undefined) this.arm();
  }

  private arm(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.counts.size > 0) this.flush();
      this.previous = this.recent;
      this.recent = new Set();
      if (this.previous.size > 0) this.arm();
    }, this.windowMs);
    this.timer.unref();
  }

  private flush(): void {
    this.write(Object.fromEntries(this.counts), this.last);
    this.counts = new Map();
  }

  /** Forget everything counted (unwritten counts are dropped): the next event of any reason is written at once. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.counts = new Map();
    this.recent = new Set();
    this.previous = new Set();
  }
}

/** A logger that drops everything, for unit tests of the I/O shells. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
