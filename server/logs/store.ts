/**
 * The boot flight recorder's store: the lines each host logs while it boots
 * and runs (syslog, netconsole, iPXE, the runtime's and its guests'
 * reports), kept per host and per boot, within a byte budget per host and
 * a retention time.
 *
 * Asynchronous, unlike EventStore. EventStore is synchronous, and its
 * PostgreSQL store keeps the whole timeline in memory on every server and
 * writes behind; that suits a few dozen events a boot. A host's log is
 * megabytes, and boot numbers must be handed out once for the whole site
 * (a host may fetch its boot script from one server and send its syslog
 * to another), so the database answers every call and nothing is copied.
 * Nothing on a decision path reads the log; the receiver gathers lines and
 * appends them in batches. SQLite answers at once, with settled promises
 * (as SqliteRolloutStore does).
 */

export const logLineSources = ['syslog', 'netconsole', 'ipxe', 'runtime', 'guest'] as const;
/** What carried a line: a syslog datagram, the kernel's netconsole, iPXE's syslog, the runtime's report, or a guest's console. */
export type LogLineSource = (typeof logLineSources)[number];

export interface LogLine {
  /**
   * Increases in the order lines were committed, across every server of a
   * shared database, so a reader that has seen `id` misses nothing by
   * asking for what is after it (`rackboot logs --follow`).
   */
  id: number;
  mac: string;
  /** Which of the host's boots the line belongs to (startBoot()). */
  boot: number;
  /** When the line arrived, by the receiving server's clock (ms). */
  receivedAt: number;
  source: LogLineSource;
  /** Syslog severity, 0 (emergency) to 7 (debug), RFC 5424 section 6.2.1. */
  severity?: number;
  /** RFC 5424 APP-NAME, or the RFC 3164 TAG. */
  app?: string;
  /** The message, safe to print on one line (syslog.ts escapes control characters); no NUL. */
  text: string;
}

export type NewLogLine = Omit<LogLine, 'id'>;

export interface LogQuery {
  /** Only this boot's lines. */
  boot?: number;
  /** Only lines with a greater id: the ones after the last a follower read. */
  sinceId?: number;
  /** Only lines received at or after this time (ms). */
  since?: number;
  /**
   * At most this many lines: the newest ones (a tail), except with
   * `sinceId`, where it is the ones right after it, so a follower pages
   * forward without a gap however many lines came at once.
   */
  limit?: number;
}

/** One of a host's boots, with what is left of its log. */
export interface LoggedBoot {
  boot: number;
  /** When its boot script was fetched (ms); for a boot only its lines named, when its first line arrived. */
  startedAt: number;
  lines: number;
  /** UTF-8 bytes of the lines' text. */
  bytes: number;
}

/**
 * What prune() lets go. First every line received before `before`; then,
 * of what is left, the oldest lines of each host whose text comes to more
 * than `maxBytesPerHost` bytes. Each host's newest line stays, however old
 * or long: the last thing a host said is what one looks for when it went
 * quiet. A boot is forgotten once it started before `before` and has no
 * line left, never a host's newest (the next boot is numbered from it).
 */
export interface LogRetention {
  maxBytesPerHost?: number;
  before?: number;
}

export interface LogStats {
  /** Hosts with at least one line kept. */
  hosts: number;
  lines: number;
  /** UTF-8 bytes of the lines' text. */
  bytes: number;
}

/** Where hosts' log lines are kept: per host, per boot, oldest first. */
export interface HostLogStore {
  /**
   * A host fetched a boot script at `at` (ms): a new boot begins. Returns
   * its number: 1 for a host's first, then one more than the newest the
   * host has (from this server or any other sharing the database).
   */
  startBoot(mac: string, at: number): Promise<number>;
  /** The host's newest boot, or undefined for a host the store has never heard of. */
  currentBoot(mac: string): Promise<number | undefined>;
  /**
   * Keeps lines, in order, in one transaction: all of them, with increasing
   * ids, or none (a line that breaks the rules of checkLogLines rejects the
   * lot with a RangeError naming it). A line of a boot the host never
   * started begins that boot, at the line's time, and a boot newer than its
   * current one becomes its current one.
   */
  append(lines: readonly NewLogLine[]): Promise<LogLine[]>;
  /** A host's lines, oldest first (by id), as `query` narrows them. */
  list(mac: string, query?: LogQuery): Promise<LogLine[]>;
  /** A host's boots, oldest first, with what is left of each one's log (a boot with no line left too). */
  boots(mac: string): Promise<LoggedBoot[]>;
  /** Lets go what `retention` says (see LogRetention); returns how many lines went. */
  prune(retention: LogRetention): Promise<number>;
  stats(): Promise<LogStats>;
  /** Waits for what was asked before, then closes; calling it again does nothing. */
  close(): Promise<void>;
}

/** The bytes of a line's text that count against a host's budget: UTF-8, as it is stored and sent. */
export function textBytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** What is wrong with a line, or undefined when a store can keep it. */
export function logLineProblem(line: NewLogLine): string | undefined {
  if (typeof line.mac !== 'string' || line.mac === '') return 'mac is empty';
  if (!Number.isSafeInteger(line.boot) || line.boot < 0) return `boot ${line.boot} is not a whole number from 0`;
  if (!Number.isSafeInteger(line.receivedAt)) return `receivedAt ${line.receivedAt} is not a time in whole milliseconds`;
  if (!(logLineSources as readonly string[]).includes(line.source)) return `source "${line.source}" is not one of ${logLineSources.join(', ')}`;
  if (line.severity !== undefined && !(Number.isInteger(line.severity) && line.severity >= 0 && line.severity <= 7)) {
    return `severity ${line.severity} is not 0 to 7`;
  }
  if (typeof line.text !== 'string') return 'text is not a string';
  // PostgreSQL's text cannot hold NUL; SQLite's can. Refused by both, so both keep the same lines.
  const nul = line.text.indexOf('\0');
  if (nul >= 0) return `text has NUL at character ${nul}`;
  if (line.app !== undefined && line.app.includes('\0')) return 'app has NUL';
  return undefined;
}

/** Throws a RangeError naming the first line a store cannot keep ("log line 3 of 10: severity 9 is not 0 to 7"). */
export function checkLogLines(lines: readonly NewLogLine[]): void {
  lines.forEach((line, index) => {
    const problem = logLineProblem(line);
    if (problem !== undefined) throw new RangeError(`log line ${index + 1} of ${lines.length} (${line.mac}): ${problem}`);
  });
}

/** Throws a RangeError for a query no store can answer the same way. */
export function checkLogQuery(query: LogQuery): void {
  for (const key of ['boot', 'sinceId', 'since', 'limit'] as const) {
    const value = query[key];
    if (value !== undefined && !Number.isSafeInteger(value)) throw new RangeError(`log query: ${key} ${value} is not a whole number`);
  }
  if (query.limit !== undefined && query.limit < 0) throw new RangeError(`log query: limit ${query.limit} is below 0`);
}

/** Throws a RangeError for a retention with a bound that is not a whole number from 0. */
export function checkLogRetention(retention: LogRetention): void {
  for (const key of ['maxBytesPerHost', 'before'] as const) {
    const value = retention[key];
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0))
      throw new RangeError(`log retention: ${key} ${value} is not a whole number from 0`);
  }
}

/** What a batch adds to one boot: its lines' count and bytes, and its earliest line's time (the boot's start, when the batch begins it). */
export interface BootTotal {
  mac: string;
  boot: number;
  firstAt: number;
  lines: number;
  bytes: number;
}

/** The boots a batch of lines touches, each with what the batch adds to it. */
export function bootTotals(lines: readonly NewLogLine[]): BootTotal[] {
  const totals = new Map<string, BootTotal>();
  for (const line of lines) {
    const key = `${line.mac} ${line.boot}`;
    const total = totals.get(key);
    if (total === undefined) totals.set(key, { mac: line.mac, boot: line.boot, firstAt: line.receivedAt, lines: 1, bytes: textBytes(line.text) });
    else {
      total.firstAt = Math.min(total.firstAt, line.receivedAt);
      total.lines += 1;
      total.bytes += textBytes(line.text);
    }
  }
  return [...totals.values()];
}

/** Each host of a batch with its newest boot in it and its last line's id (the batch's lines are in id order). */
export function newestByHost(lines: readonly LogLine[]): Array<{ mac: string; boot: number; id: number }> {
  const hosts = new Map<string, { mac: string; boot: number; id: number }>();
  for (const line of lines) {
    const host = hosts.get(line.mac);
    if (host === undefined) hosts.set(line.mac, { mac: line.mac, boot: line.boot, id: line.id });
    else {
      host.boot = Math.max(host.boot, line.boot);
      host.id = line.id;
    }
  }
  return [...hosts.values()];
}
