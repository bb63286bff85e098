/**
 * Hosts' logs in the PostgreSQL database several servers share (`serve
 * --database`): the same three tables as logs.sqlite (sqlite-store.ts),
 * with ids from a sequence. A host may fetch its boot script from one
 * server and send its syslog to another; both number its boots from the
 * same log_hosts row and read one log.
 *
 * Nothing is kept in memory: every call is a query, one at a time over one
 * connection (a transaction's statements must not interleave with another
 * call's), which comes back by itself after a lost connection
 * (connection.ts). The receiver appends lines in batches, so a round trip
 * is paid per batch, not per line.
 *
 * Every write holds one advisory lock, 'rackboot logs', until it commits,
 * across all the servers. That is what makes ids safe to follow: ids are
 * taken from the sequence under the lock, so they are committed in the
 * order they were taken, and a reader that has seen id N can never later
 * find a line below N appear. It also keeps writes from deadlocking on
 * each other's rows. Appends are short; prune goes in steps of at most
 * `pruneStep` lines, each its own transaction, so no append waits long
 * for it (a query waits at most 5 s, database.ts), and a prune cut short
 * is finished by the next one.
 */
import { DatabaseConnection } from '../postgres/connection.js';
import { asDatabaseError, migrateDatabase } from '../postgres/database.js';
import { lineColumns, lineFromRow, logTables, type LogLineRow } from './sqlite-store.js';
import {
  bootTotals,
  checkLogLines,
  checkLogQuery,
  checkLogRetention,
  newestByHost,
  textBytes,
  type HostLogStore,
  type LoggedBoot,
  type LogLine,
  type LogQuery,
  type LogRetention,
  type LogStats,
  type NewLogLine,
} from './store.js';

const migrations: readonly (readonly string[])[] = [['CREATE SEQUENCE log_line_ids', ...logTables('BIGINT')]];

export const postgresLogSchemaVersion = migrations.length;

/** Lines one step of prune() deletes at most. */
const pruneStep = 5000;

/** Takes what a DELETE ... RETURNING removed off its boots' counts, and answers how many lines went. */
const uncounted = (deleted: string) => `WITH gone AS (${deleted} RETURNING mac, boot, bytes),
  counted AS (SELECT mac, boot, COUNT(*) AS lines, SUM(bytes) AS bytes FROM gone GROUP BY mac, boot),
  uncount AS (UPDATE log_boots b SET lines = b.lines - c.lines, bytes = b.bytes - c.bytes FROM counted c WHERE b.mac = c.mac AND b.boot = c.boot)
  SELECT COALESCE(SUM(lines), 0) AS removed FROM counted`;

export class PostgresLogStore implements HostLogStore {
  private tail: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  private constructor(private readonly client: DatabaseConnection) {}

  /** The database's URL without its password. */
  get database(): string {
    return this.client.database;
  }

  /** Connects and brings the tables to the newest schema. Throws PostgresDatabaseError. */
  static async open(url: string): Promise<PostgresLogStore> {
    const client = new DatabaseConnection(url, 'rackboot logs');
    try {
      await migrateDatabase(client, client.database, 'logs', migrations);
      return new PostgresLogStore(client);
    } catch (error) {
      await client.end();
      throw asDatabaseError(client.database, error);
    }
  }

  startBoot(mac: string, at: number): Promise<number> {
    if (!Number.isSafeInteger(at)) return Promise.reject(new RangeError(`startBoot ${mac}: ${at} is not a time in whole milliseconds`));
    return this.writing(async () => {
      const row = await this.client.query<{ boot: number }>(
        `WITH host AS (
           INSERT INTO log_hosts (mac, boot, newest_line) VALUES ($1, 1, NULL)
           ON CONFLICT (mac) DO UPDATE SET boot = log_hosts.boot + 1 RETURNING boot)
         INSERT INTO log_boots (mac, boot, started_at, lines, bytes) SELECT $1, boot, $2, 0, 0 FROM host RETURNING boot`,
        [mac, at],
      );
      return row.rows[0]!.boot;
    });
  }

  currentBoot(mac: string): Promise<number | undefined> {
    return this.inTurn(async () => {
      const row = await this.client.query<{ boot: number }>('SELECT boot FROM log_hosts WHERE mac = $1', [mac]);
      return row.rows[0]?.boot;
    });
  }

  append(lines: readonly NewLogLine[]): Promise<LogLine[]> {
    try {
      checkLogLines(lines);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    if (lines.length === 0) return this.inTurn(() => Promise.resolve([]));
    return this.writing(async () => {
      const ids = await this.client.query<{ id: string }>("SELECT nextval('log_line_ids') AS id FROM generate_series(1, $1)", [lines.length]);
      const sorted = ids.rows.map((row) => Number(row.id)).sort((a, b) => a - b);
      const stored = lines.map((line, i): LogLine => ({ ...line, id: sorted[i]! }));
      const boots = bootTotals(stored);
      const hosts = newestByHost(stored);
      // One statement: every line, its boots' counts and its hosts' newest line and boot.
      await this.client.query(
        `WITH written AS (
           INSERT INTO log_lines (${lineColumns}, bytes)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[], $5::text[], $6::smallint[], $7::text[], $8::text[], $9::int[])),
         counted AS (
           INSERT INTO log_boots (mac, boot, started_at, lines, bytes)
           SELECT * FROM unnest($10::text[], $11::int[], $12::bigint[], $13::bigint[], $14::bigint[])
           ON CONFLICT (mac, boot) DO UPDATE SET lines = log_boots.lines + EXCLUDED.lines, bytes = log_boots.bytes + EXCLUDED.bytes)
         INSERT INTO log_hosts (mac, boot, newest_line)
         SELECT * FROM unnest($15::text[], $16::int[], $17::bigint[])
         ON CONFLICT (mac) DO UPDATE SET newest_line = EXCLUDED.newest_line,
           boot = CASE WHEN EXCLUDED.boot > log_hosts.boot THEN EXCLUDED.boot ELSE log_hosts.boot END`,
        [
          stored.map((line) => line.id),
          stored.map((line) => line.mac),
          stored.map((line) => line.boot),
          stored.map((line) => line.receivedAt),
          stored.map((line) => line.source),
          stored.map((line) => line.severity ?? null),
          stored.map((line) => line.app ?? null),
          stored.map((line) => line.text),
          stored.map((line) => textBytes(line.text)),
          boots.map((boot) => boot.mac),
          boots.map((boot) => boot.boot),
          boots.map((boot) => boot.firstAt),
          boots.map((boot) => boot.lines),
          boots.map((boot) => boot.bytes),
          hosts.map((host) => host.mac),
          hosts.map((host) => host.boot),
          hosts.map((host) => host.id),
        ],
      );
      return stored;
    });
  }

  list(mac: string, query: LogQuery = {}): Promise<LogLine[]> {
    try {
      checkLogQuery(query);
    } catch (error) {
      return Promise.reject(error as Error);
    }
    const values: Array<string | number> = [mac];
    const where = ['mac = $1'];
    for (const [value, condition] of [
      [query.boot, 'boot ='],
      [query.sinceId, 'id >'],
      [query.since, 'received_at >='],
    ] as const) {
      if (value === undefined) continue;
      values.push(value);
      where.push(`${condition} $${values.length}`);
    }
    const select = `SELECT ${lineColumns} FROM log_lines WHERE ${where.join(' AND ')}`;
    let sql = `${select} ORDER BY id`;
    if (query.limit !== undefined) {
      values.push(query.limit);
      const limit = `LIMIT $${values.length}`;
      sql = query.sinceId !== undefined ? `${select} ORDER BY id ${limit}` : `SELECT * FROM (${select} ORDER BY id DESC ${limit}) newest ORDER BY id`;
    }
    return this.inTurn(async () => (await this.client.query<LogLineRow>(sql, values)).rows.map(lineFromRow));
  }

  boots(mac: string): Promise<LoggedBoot[]> {
    return this.inTurn(async () => {
      const rows = await this.client.query<{ boot: number; started_at: string; lines: string; bytes: string }>(
        'SELECT boot, started_at, lines, bytes FROM log_boots WHERE mac = $1 ORDER BY boot',
        [mac],
      );
      return rows.rows.map((row) => ({ boot: row.boot, startedAt: Number(row.started_at), lines: Number(row.lines), bytes: Number(row.bytes) }));
    });
  }

  async prune(retention: LogRetention): Promise<number> {
    checkLogRetention(retention);
    const { before, maxBytesPerHost } = retention;
    let removed = 0;
    /** Runs a step's DELETE again until a step finds fewer than pruneStep lines to delete. */
    const inSteps = async (sql: string, values: unknown[]): Promise<void> => {
      let gone: number;
      do {
        gone = await this.writing(async () => Number((await this.client.query<{ removed: string }>(sql, values)).rows[0]!.removed));
        removed += gone;
      } while (gone === pruneStep);
    };
    if (before !== undefined) {
      const oldest = uncounted(`DELETE FROM log_lines WHERE id IN (
        SELECT id FROM log_lines WHERE received_at < $1
          AND id NOT IN (SELECT newest_line FROM log_hosts WHERE newest_line IS NOT NULL) LIMIT $2)`);
      await inSteps(oldest, [before, pruneStep]);
    }
    if (maxBytesPerHost !== undefined) {
      const over = await this.inTurn(() =>
        this.client.query<{ mac: string }>('SELECT mac FROM log_boots GROUP BY mac HAVING SUM(bytes) > $1 ORDER BY mac', [maxBytesPerHost]),
      );
      // Newest first, the bytes of each line and every newer one: the oldest past the budget go, never the newest.
      const pastBudget = uncounted(`DELETE FROM log_lines WHERE id IN (
        SELECT id FROM (
          SELECT id, ROW_NUMBER() OVER (ORDER BY id DESC) AS newer, SUM(bytes) OVER (ORDER BY id DESC ROWS UNBOUNDED PRECEDING) AS kept
          FROM log_lines WHERE mac = $1) ranked
        WHERE newer > 1 AND kept > $2 ORDER BY id LIMIT $3)`);
      for (const { mac } of over.rows) await inSteps(pastBudget, [mac, maxBytesPerHost, pruneStep]);
    }
    if (before !== undefined) {
      await this.writing(() =>
        this.client.query(
          `DELETE FROM log_boots WHERE lines = 0 AND started_at < $1
             AND boot < (SELECT h.boot FROM log_hosts h WHERE h.mac = log_boots.mac)`,
          [before],
        ),
      );
    }
    return removed;
  }

  stats(): Promise<LogStats> {
    return this.inTurn(async () => {
      const row = await this.client.query<{ hosts: string; lines: string; bytes: string }>(
        `SELECT COUNT(*) AS hosts, COALESCE(SUM(lines), 0) AS lines, COALESCE(SUM(bytes), 0) AS bytes
         FROM (SELECT SUM(lines) AS lines, SUM(bytes) AS bytes FROM log_boots GROUP BY mac HAVING SUM(lines) > 0) hosts`,
      );
      const { hosts, lines, bytes } = row.rows[0]!;
      return { hosts: Number(hosts), lines: Number(lines), bytes: Number(bytes) };
    });
  }

  /** Waits for the calls made so far, then disconnects. */
  close(): Promise<void> {
    this.closing ??= this.tail.then(() => this.client.end());
    return this.closing;
  }

  /** Runs `work` once every call before it has settled; after close(), fails at once. */
  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined) return Promise.reject(new Error(`logs in ${this.database}: the store is closed`));
    const result = this.tail.then(work);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** `work` in a transaction holding the logs' advisory lock (see the top of this file). */
  private writing<T>(work: () => Promise<T>): Promise<T> {
    return this.inTurn(async () => {
      try {
        await this.client.query("BEGIN; SELECT pg_advisory_xact_lock(hashtext('rackboot logs'))");
        const result = await work();
        await this.client.query('COMMIT');
        return result;
      } catch (error) {
        const failure = asDatabaseError(this.database, error);
        // A lost connection took its transaction with it; ROLLBACK would only connect again to say so.
        if (failure.code !== 'UNREACHABLE') await this.client.query('ROLLBACK').catch(() => undefined);
        throw failure;
      }
    });
  }
}
