/**
 * Hosts' logs in a SQLite file of their own in the state folder
 * (logs.sqlite), beside events.sqlite: the log is the bulkiest thing
 * rackboot keeps, and a busy log must not make the timeline or the leases
 * wait for a lock.
 *
 * Durability: synchronous=NORMAL in WAL mode, as events.sqlite. An append
 * is one transaction and survives kill -9 once its promise settles; a power
 * cut may lose the last few, never corrupt the file. A host logs again on
 * its next boot.
 *
 * Three tables, the same in PostgreSQL (postgres-store.ts):
 * - log_lines: one row per line, with its text's UTF-8 length (`bytes`),
 *   so a budget is summed the same way by both databases (SQLite's
 *   length() counts characters). Indexed by (mac, boot, id) for a boot's
 *   lines and a follower's next page, and by received_at for retention.
 * - log_boots: each boot's start and its lines' count and bytes, kept by
 *   every append and prune, so boots(), stats() and finding the hosts over
 *   budget read a row per boot instead of every line.
 * - log_hosts: each host's newest boot (startBoot() numbers from it, even
 *   once that boot's lines are gone) and newest line (which prune keeps).
 *
 * Ids are given by this process (one writer per file, locking_mode=EXCLUSIVE),
 * as in events.sqlite. The newest line of its host is never pruned, so the
 * greatest id stays in the file and ids are never given twice.
 */
import Database from 'better-sqlite3';
import { openExclusiveStore, StoreDatabaseError, storeError, type StoreErrors, type StoreFailure } from '../sqlite/open.js';
import {
  bootTotals,
  newestByHost,
  checkLogLines,
  checkLogQuery,
  checkLogRetention,
  textBytes,
  type HostLogStore,
  type LoggedBoot,
  type LogLine,
  type LogLineSource,
  type LogQuery,
  type LogRetention,
  type LogStats,
  type NewLogLine,
} from './store.js';

/**
 * The tables, in SQL that SQLite and PostgreSQL run alike but for the id's
 * type: in SQLite an INTEGER PRIMARY KEY is the 64-bit rowid itself (no
 * second index to write per line), in PostgreSQL INTEGER is 32 bits.
 * Never edited once released.
 */
export function logTables(idType: 'INTEGER' | 'BIGINT'): string[] {
  return [
    `CREATE TABLE log_hosts (
       mac TEXT NOT NULL PRIMARY KEY,
       boot INTEGER NOT NULL,
       newest_line BIGINT
     )`,
    `CREATE TABLE log_boots (
       mac TEXT NOT NULL,
       boot INTEGER NOT NULL CHECK (boot >= 0),
       started_at BIGINT NOT NULL,
       lines BIGINT NOT NULL,
       bytes BIGINT NOT NULL,
       PRIMARY KEY (mac, boot)
     )`,
    `CREATE TABLE log_lines (
       id ${idType} NOT NULL PRIMARY KEY,
       mac TEXT NOT NULL,
       boot INTEGER NOT NULL CHECK (boot >= 0),
       received_at BIGINT NOT NULL,
       source TEXT NOT NULL CHECK (source IN ('syslog', 'netconsole', 'ipxe', 'runtime', 'guest')),
       severity SMALLINT CHECK (severity BETWEEN 0 AND 7),
       app TEXT,
       text TEXT NOT NULL,
       bytes INTEGER NOT NULL
     )`,
    `CREATE INDEX log_lines_mac_boot_id ON log_lines (mac, boot, id)`,
    `CREATE INDEX log_lines_received_at ON log_lines (received_at)`,
  ];
}

/** Schema migrations: entry i takes the file from version i to i + 1. Append only. */
const migrations: readonly (readonly string[])[] = [logTables('INTEGER')];

export const logSchemaVersion = migrations.length;

/** Why a logs database could not be used; the message names the file. */
export class LogDatabaseError extends StoreDatabaseError {
  override readonly name = 'LogDatabaseError';
  constructor(file: string, code: StoreFailure, message: string, options?: { cause?: unknown }) {
    super(file, code, 'logs database', message, options);
  }
}

function logErrors(file: string): StoreErrors<LogDatabaseError> {
  return {
    make: (code, message, cause) => new LogDatabaseError(file, code, message, { cause }),
    isOwn: (e): e is LogDatabaseError => e instanceof LogDatabaseError,
    whenCorrupt: "move it aside to start with no host logs (the hosts' timelines are in events.sqlite, apart)",
  };
}

export interface LogLineRow {
  id: number;
  mac: string;
  boot: number;
  received_at: number;
  source: LogLineSource;
  severity: number | null;
  app: string | null;
  text: string;
}

export function lineFromRow(row: LogLineRow): LogLine {
  const line: LogLine = { id: Number(row.id), mac: row.mac, boot: row.boot, receivedAt: Number(row.received_at), source: row.source, text: row.text };
  if (row.severity !== null) line.severity = row.severity;
  if (row.app !== null) line.app = row.app;
  return line;
}

export const lineColumns = 'id, mac, boot, received_at, source, severity, app, text';

/** Rows one INSERT of append() writes. */
const rowsPerInsert = 16;
const placeholders = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';

/** The column values of `count` lines from `at`, in the order of the INSERT: lineColumns, then bytes. */
function rowValues(lines: readonly LogLine[], at: number, count: number): Array<number | string | null> {
  const values: Array<number | string | null> = [];
  for (let i = at; i < at + count; i++) {
    const line = lines[i]!;
    values.push(line.id, line.mac, line.boot, line.receivedAt, line.source, line.severity ?? null, line.app ?? null, line.text, textBytes(line.text));
  }
  return values;
}

/** What a DELETE ... RETURNING took from each boot, to take off its counts. */
class Removed {
  readonly byBoot = new Map<string, { mac: string; boot: number; lines: number; bytes: number }>();
  total = 0;

  add(row: { mac: string; boot: number; bytes: number }): void {
    const key = `${row.mac} ${row.boot}`;
    const counted = this.byBoot.get(key);
    if (counted === undefined) this.byBoot.set(key, { mac: row.mac, boot: row.boot, lines: 1, bytes: row.bytes });
    else {
      counted.lines += 1;
      counted.bytes += row.bytes;
    }
    this.total += 1;
  }
}

export class SqliteLogStore implements HostLogStore {
  private readonly statements: ReturnType<SqliteLogStore['prepare']>;
  private readonly listStatements = new Map<string, Database.Statement<unknown[], LogLineRow>>();
  private nextId: number;

  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
  ) {
    this.statements = this.prepare();
    this.nextId = (this.statements.maxId.get()?.id ?? 0) + 1;
  }

  /** Opens (creating or migrating) the database at `file`; throws LogDatabaseError. */
  static open(file: string): SqliteLogStore {
    const db = openExclusiveStore(file, { synchronous: 'NORMAL', migrations, errors: logErrors(file) });
    try {
      return new SqliteLogStore(file, db);
    } catch (error) {
      db.close();
      throw storeError(error, logErrors(file));
    }
  }

  private prepare() {
    const db = this.db;
    return {
      maxId: db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM log_lines'),
      insert: db.prepare<Array<number | string | null>>(`INSERT INTO log_lines (${lineColumns}, bytes) VALUES ${placeholders}`),
      insertMany: db.prepare<[Array<number | string | null>]>(
        `INSERT INTO log_lines (${lineColumns}, bytes) VALUES ${Array.from({ length: rowsPerInsert }, () => placeholders).join(', ')}`,
      ),
      countBoot: db.prepare<[string, number, number, number, number]>(
        `INSERT INTO log_boots (mac, boot, started_at, lines, bytes) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (mac, boot) DO UPDATE SET lines = log_boots.lines + excluded.lines, bytes = log_boots.bytes + excluded.bytes`,
      ),
      noteHost: db.prepare<[string, number, number]>(
        `INSERT INTO log_hosts (mac, boot, newest_line) VALUES (?, ?, ?)
         ON CONFLICT (mac) DO UPDATE SET newest_line = excluded.newest_line,
           boot = CASE WHEN excluded.boot > log_hosts.boot THEN excluded.boot ELSE log_hosts.boot END`,
      ),
      nextBoot: db.prepare<[string], { boot: number }>(
        `INSERT INTO log_hosts (mac, boot, newest_line) VALUES (?, 1, NULL)
         ON CONFLICT (mac) DO UPDATE SET boot = log_hosts.boot + 1 RETURNING boot`,
      ),
      startBoot: db.prepare<[string, number, number]>('INSERT INTO log_boots (mac, boot, started_at, lines, bytes) VALUES (?, ?, ?, 0, 0)'),
      currentBoot: db.prepare<[string], { boot: number }>('SELECT boot FROM log_hosts WHERE mac = ?'),
      boots: db.prepare<[string], LoggedBoot>('SELECT boot, started_at AS startedAt, lines, bytes FROM log_boots WHERE mac = ? ORDER BY boot'),
      stats: db.prepare<[], LogStats>(
        `SELECT COUNT(*) AS hosts, COALESCE(SUM(lines), 0) AS lines, COALESCE(SUM(bytes), 0) AS bytes
         FROM (SELECT SUM(lines) AS lines, SUM(bytes) AS bytes FROM log_boots GROUP BY mac HAVING SUM(lines) > 0) hosts`,
      ),
      // NOT IN over a list with NULL in it keeps everything: hosts without a line yet are left out of it.
      pruneBefore: db.prepare<[number], { mac: string; boot: number; bytes: number }>(
        `DELETE FROM log_lines WHERE received_at < ? AND id NOT IN (SELECT newest_line FROM log_hosts WHERE newest_line IS NOT NULL)
         RETURNING mac, boot, bytes`,
      ),
      overBudget: db.prepare<[number], { mac: string }>('SELECT mac FROM log_boots GROUP BY mac HAVING SUM(bytes) > ? ORDER BY mac'),
      // Newest first, the bytes of each line and every newer one: those past the budget go, but never the newest.
      pruneHost: db.prepare<[string, number], { mac: string; boot: number; bytes: number }>(
        `DELETE FROM log_lines WHERE id IN (
           SELECT id FROM (
             SELECT id, ROW_NUMBER() OVER (ORDER BY id DESC) AS newer, SUM(bytes) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS kept
             FROM log_lines WHERE mac = ?) ranked
           WHERE newer > 1 AND kept > ?)
         RETURNING mac, boot, bytes`,
      ),
      uncount: db.prepare<[number, number, string, number]>('UPDATE log_boots SET lines = lines - ?, bytes = bytes - ? WHERE mac = ? AND boot = ?'),
      forgetBoots: db.prepare<[number]>(
        `DELETE FROM log_boots WHERE lines = 0 AND started_at < ?
           AND boot < (SELECT h.boot FROM log_hosts h WHERE h.mac = log_boots.mac)`,
      ),
    };
  }

  startBoot(mac: string, at: number): Promise<number> {
    return this.answer(() => {
      if (!Number.isSafeInteger(at)) throw new RangeError(`startBoot ${mac}: ${at} is not a time in whole milliseconds`);
      return this.db.transaction(() => {
        const { boot } = this.statements.nextBoot.get(mac)!;
        this.statements.startBoot.run(mac, boot, at);
        return boot;
      })();
    });
  }

  currentBoot(mac: string): Promise<number | undefined> {
    return this.answer(() => this.statements.currentBoot.get(mac)?.boot);
  }

  append(lines: readonly NewLogLine[]): Promise<LogLine[]> {
    return this.answer(() => {
      checkLogLines(lines);
      if (lines.length === 0) return [];
      // One commit for the lot; if it fails, none is kept and nextId is put back.
      const first = this.nextId;
      const stored = lines.map((line, i): LogLine => ({ ...line, id: first + i }));
      try {
        this.db.transaction(() => {
          // Rows a statement at a time: each call into SQLite costs more than a row.
          let at = 0;
          for (; at + rowsPerInsert <= stored.length; at += rowsPerInsert) this.statements.insertMany.run(rowValues(stored, at, rowsPerInsert));
          for (; at < stored.length; at++) this.statements.insert.run(...rowValues(stored, at, 1));
          for (const total of bootTotals(stored)) this.statements.countBoot.run(total.mac, total.boot, total.firstAt, total.lines, total.bytes);
          for (const host of newestByHost(stored)) this.statements.noteHost.run(host.mac, host.boot, host.id);
        })();
        this.nextId = first + stored.length;
        return stored;
      } catch (error) {
        this.nextId = first;
        throw error;
      }
    });
  }

  list(mac: string, query: LogQuery = {}): Promise<LogLine[]> {
    return this.answer(() => {
      checkLogQuery(query);
      const where = ['mac = ?'];
      const values: number[] = [];
      for (const [value, condition] of [
        [query.boot, 'boot = ?'],
        [query.sinceId, 'id > ?'],
        [query.since, 'received_at >= ?'],
      ] as const) {
        if (value === undefined) continue;
        where.push(condition);
        values.push(value);
      }
      const select = `SELECT ${lineColumns} FROM log_lines WHERE ${where.join(' AND ')}`;
      let sql = `${select} ORDER BY id`;
      if (query.limit !== undefined) {
        values.push(query.limit);
        sql = query.sinceId !== undefined ? `${select} ORDER BY id LIMIT ?` : `SELECT * FROM (${select} ORDER BY id DESC LIMIT ?) newest ORDER BY id`;
      }
      let statement = this.listStatements.get(sql);
      if (statement === undefined) {
        statement = this.db.prepare<unknown[], LogLineRow>(sql);
        this.listStatements.set(sql, statement);
      }
      return statement.all(mac, ...values).map(lineFromRow);
    });
  }

  boots(mac: string): Promise<LoggedBoot[]> {
    return this.answer(() => this.statements.boots.all(mac));
  }

  prune(retention: LogRetention): Promise<number> {
    return this.answer(() => {
      checkLogRetention(retention);
      return this.db.transaction(() => {
        const removed = new Removed();
        if (retention.before !== undefined) for (const row of this.statements.pruneBefore.iterate(retention.before)) removed.add(row);
        if (retention.maxBytesPerHost !== undefined) {
          for (const { mac } of this.statements.overBudget.all(retention.maxBytesPerHost)) {
            for (const row of this.statements.pruneHost.iterate(mac, retention.maxBytesPerHost)) removed.add(row);
          }
        }
        for (const boot of removed.byBoot.values()) this.statements.uncount.run(boot.lines, boot.bytes, boot.mac, boot.boot);
        if (retention.before !== undefined) this.statements.forgetBoots.run(retention.before);
        return removed.total;
      })();
    });
  }

  stats(): Promise<LogStats> {
    return this.answer(() => this.statements.stats.get()!);
  }

  close(): Promise<void> {
    if (this.db.open) this.db.close();
    return Promise.resolve();
  }

  /** A synchronous answer as a promise: what it throws rejects it, as the same call to PostgreSQL would. */
  private answer<T>(work: () => T): Promise<T> {
    try {
      if (!this.db.open) throw new Error(`logs database ${this.file}: the store is closed`);
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
