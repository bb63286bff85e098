/**
 * Boot events in a SQLite file of their own in the state folder
 * (events.sqlite), beside leases.sqlite: a timeline is not a promise to a
 * client, so it has its own file, its own lock and a cheaper durability.
 *
 * Durability: synchronous=NORMAL in WAL mode. Every append is atomic and
 * survives kill -9 once append() returns; a power cut may lose the last few
 * events, never corrupt the file. Events are observations, and the next boot
 * reports again.
 *
 * Portability: as in sqlite-leases.ts, only the PRAGMAs are SQLite's. Ids are
 * given by this process (one writer per file, locking_mode=EXCLUSIVE) rather
 * than by an autoincrement column, whose spelling differs between databases;
 * time is BIGINT milliseconds.
 */
import Database from 'better-sqlite3';
import { openExclusiveStore, StoreDatabaseError, storeError, type StoreErrors, type StoreFailure } from '../sqlite/open.js';
import { eventsTable, hostReportsTable } from './tables.js';
import type { BootEvent, EventSource, NewBootEvent } from './event.js';
import type { EventRetention, EventStore, HostReport, HostReportKind } from './store.js';

/** Schema migrations: entry i takes the file from version i to i + 1. Append only. */
const migrations: readonly string[][] = [[eventsTable, `CREATE INDEX events_mac_id ON events (mac, id)`], [hostReportsTable]];

export const eventSchemaVersion = migrations.length;

/** Why an events database could not be used; the message names the file. */
export class EventDatabaseError extends StoreDatabaseError {
  override readonly name = 'EventDatabaseError';
  constructor(file: string, code: StoreFailure, message: string, options?: { cause?: unknown }) {
    super(file, code, 'events database', message, options);
  }
}

interface EventRow {
  id: number;
  time: number;
  mac: string;
  source: EventSource;
  stage: string;
  detail: string | null;
  domain: string | null;
}

function fromRow(row: EventRow): BootEvent {
  const event: BootEvent = { id: row.id, time: row.time, mac: row.mac, source: row.source, stage: row.stage };
  if (row.detail !== null) event.detail = row.detail;
  if (row.domain !== null) event.domain = row.domain;
  return event;
}

const columns = 'id, time, mac, source, stage, detail, domain';

/** Rows one INSERT of appendAll() writes. */
const rowsPerInsert = 16;

/** The column values of `count` events from `at`, in the order of `columns`. */
function rowValues(events: readonly BootEvent[], at: number, count: number): Array<number | string | null> {
  const values: Array<number | string | null> = [];
  for (let i = at; i < at + count; i++) {
    const event = events[i]!;
    values.push(event.id, event.time, event.mac, event.source, event.stage, event.detail ?? null, event.domain ?? null);
  }
  return values;
}

export class SqliteEventStore implements EventStore {
  private readonly statements: ReturnType<SqliteEventStore['prepare']>;
  private nextId: number;

  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
  ) {
    this.statements = this.prepare();
    this.nextId = (this.statements.maxId.get()?.id ?? 0) + 1;
  }

  /** Opens (creating or migrating) the database at `file`; throws EventDatabaseError. */
  static open(file: string): SqliteEventStore {
    const db = openExclusiveStore(file, { synchronous: 'NORMAL', migrations, errors: eventErrors(file) });
    try {
      return new SqliteEventStore(file, db);
    } catch (error) {
      db.close();
      throw storeError(error, eventErrors(file));
    }
  }

  private prepare() {
    const db = this.db;
    return {
      maxId: db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM events'),
      insert: db.prepare<[number, number, string, string, string, string | null, string | null]>(
        `INSERT INTO events (${columns}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertMany: db.prepare<[Array<number | string | null>]>(
        `INSERT INTO events (${columns}) VALUES ${Array.from({ length: rowsPerInsert }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      ),
      byHost: db.prepare<[string], EventRow>(`SELECT ${columns} FROM events WHERE mac = ? ORDER BY id`),
      newestByHost: db.prepare<[string, number], EventRow>(
        `SELECT ${columns} FROM (SELECT ${columns} FROM events WHERE mac = ? ORDER BY id DESC LIMIT ?) newest ORDER BY id`,
      ),
      // Window functions and a subquery in NOT IN: standard SQL, the same in PostgreSQL.
      pruneBefore: db.prepare<[number]>(`DELETE FROM events WHERE time < ? AND id NOT IN (SELECT MAX(id) FROM events GROUP BY mac)`),
      prunePerHost: db.prepare<[number]>(
        `DELETE FROM events WHERE id IN (
           SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY mac ORDER BY id DESC) AS newer FROM events) ranked
           WHERE newer > ?)`,
      ),
      // INSERT ... ON CONFLICT DO UPDATE: SQLite 3.24 and PostgreSQL 9.5 spell it the same.
      putReport: db.prepare<[string, string, number, string]>(
        `INSERT INTO host_reports (mac, kind, time, body) VALUES (?, ?, ?, ?)
         ON CONFLICT (mac, kind) DO UPDATE SET time = excluded.time, body = excluded.body`,
      ),
      report: db.prepare<[string, string], HostReport>('SELECT mac, kind, time, body FROM host_reports WHERE mac = ? AND kind = ?'),
      latest: db.prepare<[], EventRow>(
        `SELECT ${columns
          .split(', ')
          .map((column) => `e.${column}`)
          .join(', ')} FROM events e
         JOIN (SELECT mac, MAX(id) AS id FROM events GROUP BY mac) last ON e.id = last.id
         ORDER BY e.mac`,
      ),
    };
  }

  append(event: NewBootEvent): BootEvent {
    const stored: BootEvent = { ...event, id: this.nextId };
    this.insertOne(stored);
    this.nextId++;
    return stored;
  }

  private insertOne(event: BootEvent): void {
    this.statements.insert.run(event.id, event.time, event.mac, event.source, event.stage, event.detail ?? null, event.domain ?? null);
  }

  appendAll(events: readonly NewBootEvent[]): BootEvent[] {
    // One commit for the lot; if it fails, none is kept and nextId is put back.
    const first = this.nextId;
    try {
      return this.db.transaction(() => {
        const stored = events.map((event, i): BootEvent => ({ ...event, id: first + i }));
        // Rows a statement at a time: each call into SQLite costs more than a row.
        let at = 0;
        for (; at + rowsPerInsert <= stored.length; at += rowsPerInsert) this.statements.insertMany.run(rowValues(stored, at, rowsPerInsert));
        for (; at < stored.length; at++) this.insertOne(stored[at]!);
        this.nextId = first + stored.length;
        return stored;
      })();
    } catch (error) {
      this.nextId = first;
      throw error;
    }
  }

  listByHost(mac: string, options: { limit?: number } = {}): BootEvent[] {
    const rows = options.limit === undefined ? this.statements.byHost.all(mac) : this.statements.newestByHost.all(mac, options.limit);
    return rows.map(fromRow);
  }

  latestByHost(): BootEvent[] {
    return this.statements.latest.all().map(fromRow);
  }

  prune(retention: EventRetention): number {
    return this.db.transaction(() => {
      let removed = 0;
      if (retention.before !== undefined) removed += this.statements.pruneBefore.run(retention.before).changes;
      if (retention.keepPerHost !== undefined) removed += this.statements.prunePerHost.run(Math.max(1, retention.keepPerHost)).changes;
      return removed;
    })();
  }

  putHostReport(report: HostReport): void {
    this.statements.putReport.run(report.mac, report.kind, report.time, report.body);
  }

  hostReport(mac: string, kind: HostReportKind): HostReport | undefined {
    const row = this.statements.report.get(mac, kind);
    return row === undefined ? undefined : { ...row };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function eventErrors(file: string): StoreErrors<EventDatabaseError> {
  return {
    make: (code, message, cause) => new EventDatabaseError(file, code, message, { cause }),
    isOwn: (e): e is EventDatabaseError => e instanceof EventDatabaseError,
    whenCorrupt: 'move it aside to start a new timeline',
  };
}

/**
 * Every event of a timeline file, read-only, for `rackboot hosts` when no
 * server runs. A running server holds the file exclusively: then this fails
 * with LOCKED, and the CLI asks the server instead.
 */
export function readEventFile(file: string): BootEvent[] {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 500');
    return db.prepare<[], EventRow>(`SELECT ${columns} FROM events ORDER BY id`).all().map(fromRow);
  } catch (error) {
    throw storeError(error, eventErrors(file));
  } finally {
    db?.close();
  }
}

/** Every host report of a timeline file, read-only (see readEventFile); none from a file older than host reports. */
export function readHostReportFile(file: string): HostReport[] {
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 500');
    const table = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'host_reports'").get();
    if (table === undefined) return [];
    return db.prepare<[], HostReport>('SELECT mac, kind, time, body FROM host_reports ORDER BY mac, kind').all();
  } catch (error) {
    throw storeError(error, eventErrors(file));
  } finally {
    db?.close();
  }
}
