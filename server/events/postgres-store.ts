/**
 * The boot timeline in the PostgreSQL database several servers share
 * (`serve --database`): a host's DHCP events from one server, its HTTP
 * events from another and its runtime's reports to a third make one
 * timeline, which every server's status page, host list and admin API
 * read.
 *
 * EventStore is synchronous, so each server keeps the timeline in memory
 * and writes behind: append() returns at once, and the events of one turn
 * of the event loop go to the database in one INSERT, then are notified
 * (rackboot_events, the id ranges written) so the other servers read them
 * into their copies. Ids come in blocks from a sequence (a million per
 * block, the next one fetched long before it is needed), so they never
 * collide across servers and need no round trip per event. A server's own
 * ids increase; a host's events are in time order (then id), which is the
 * order they happened in whichever server saw them.
 *
 * Durability: an event is in the database a few milliseconds after
 * append(), not before; one lost with its server is an observation the
 * next boot makes again (the same bargain as events.sqlite's). Pruning
 * runs on every server with the same rule; each deletes from the database
 * and from its own copy.
 */
import { DatabaseConnection, DatabaseListener } from '../postgres/connection.js';
import { asDatabaseError, migrateDatabase, PostgresDatabaseError, withDatabase } from '../postgres/database.js';
import { eventsTable, hostReportsTable } from './tables.js';
import type { BootEvent, EventSource, NewBootEvent } from './event.js';
import type { EventRetention, EventStore, HostReport, HostReportKind } from './store.js';

const CHANNEL = 'rackboot_events';
const BLOCK = 1_000_000;

const migrations: readonly string[][] = [
  [`CREATE SEQUENCE event_id_blocks START 1 INCREMENT ${BLOCK}`, eventsTable, `CREATE INDEX events_mac_time ON events (mac, time, id)`, hostReportsTable],
];

export const postgresEventSchemaVersion = migrations.length;

/** The whole timeline and every host report in the database, for `rackboot hosts --database` (reads only; makes no table). Throws PostgresDatabaseError. */
export async function readTimelineDatabase(url: string): Promise<{ events: BootEvent[]; reports: HostReport[] }> {
  return withDatabase(
    url,
    'rackboot hosts',
    async (client) => {
      const events = await client.query<EventRow>(`SELECT ${columns} FROM events ORDER BY mac, time, id`);
      const reports = await client.query<ReportRow>('SELECT mac, kind, time, body FROM host_reports');
      return { events: events.rows.map(fromRow), reports: reports.rows.map(reportFromRow) };
    },
    (database, error) => {
      throw new PostgresDatabaseError(database, 'QUERY', 'holds no rackboot timeline (no events table): has a server run with --database on it?', {
        cause: error,
      });
    },
  );
}

interface EventRow {
  id: string;
  time: string;
  mac: string;
  source: EventSource;
  stage: string;
  detail: string | null;
  domain: string | null;
}

interface ReportRow {
  mac: string;
  kind: HostReportKind;
  time: string;
  body: string;
}

const reportFromRow = (row: ReportRow): HostReport => ({ mac: row.mac, kind: row.kind, time: Number(row.time), body: row.body });

function fromRow(row: EventRow): BootEvent {
  const event: BootEvent = { id: Number(row.id), time: Number(row.time), mac: row.mac, source: row.source, stage: row.stage };
  if (row.detail !== null) event.detail = row.detail;
  if (row.domain !== null) event.domain = row.domain;
  return event;
}

const before = (a: BootEvent, b: BootEvent) => a.time - b.time || a.id - b.id;
const columns = 'id, time, mac, source, stage, detail, domain';

export interface PostgresEventStoreOptions {
  onProblem?: (message: string, error: unknown) => void;
}

export class PostgresEventStore implements EventStore {
  /** Each host's events, oldest first. */
  private readonly byHost = new Map<string, BootEvent[]>();
  private readonly reports = new Map<string, HostReport>();
  private nextId: number;
  private blockEnd: number;
  private nextBlock: Promise<number> | undefined;
  private fetchedBlock: number | undefined;
  private unwritten: BootEvent[] = [];
  private unwrittenReports: HostReport[] = [];
  private writeScheduled = false;
  private tail: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  private listener: DatabaseListener | undefined;

  private constructor(
    private readonly client: DatabaseConnection,
    firstBlock: number,
    private readonly options: PostgresEventStoreOptions,
  ) {
    this.nextId = firstBlock;
    this.blockEnd = firstBlock + BLOCK;
  }

  /** The database's URL without its password. */
  get database(): string {
    return this.client.database;
  }

  /** Connects, brings the tables to the newest schema, reads the timeline and listens for other servers' events. Throws PostgresDatabaseError. */
  static async open(url: string, options: PostgresEventStoreOptions = {}): Promise<PostgresEventStore> {
    const client = new DatabaseConnection(url, 'rackboot timeline');
    try {
      await migrateDatabase(client, client.database, 'events', migrations);
      const block = await client.query<{ start: string }>("SELECT nextval('event_id_blocks') AS start");
      const store = new PostgresEventStore(client, Number(block.rows[0]!.start), options);
      store.listener = await DatabaseListener.open(url, CHANNEL, {
        applicationName: 'rackboot timeline changes',
        onNotification: (payload, processId) => {
          if (processId !== client.processId) store.readNotified(payload);
        },
        onReconnected: () => store.inTurn(() => store.readEverything()),
        ...(options.onProblem ? { onProblem: options.onProblem } : {}),
      });
      await store.readEverything();
      return store;
    } catch (error) {
      await client.end();
      throw asDatabaseError(client.database, error);
    }
  }

  append(event: NewBootEvent): BootEvent {
    const stored: BootEvent = { ...event, id: this.takeId() };
    this.place(stored);
    this.unwritten.push(stored);
    this.scheduleWrite();
    return { ...stored };
  }

  appendAll(events: readonly NewBootEvent[]): BootEvent[] {
    return events.map((event) => this.append(event));
  }

  listByHost(mac: string, options: { limit?: number } = {}): BootEvent[] {
    const all = this.byHost.get(mac) ?? [];
    const limited = options.limit === undefined ? all : all.slice(Math.max(0, all.length - options.limit));
    return limited.map((event) => ({ ...event }));
  }

  latestByHost(): BootEvent[] {
    return [...this.byHost.keys()]
      .sort()
      .map((mac) => this.byHost.get(mac)!.at(-1)!)
      .map((event) => ({ ...event }));
  }

  prune(retention: EventRetention): number {
    let removed = 0;
    for (const [mac, events] of this.byHost) {
      const kept = events.filter((event, index) => {
        const newer = events.length - 1 - index;
        if (newer === 0) return true;
        if (retention.before !== undefined && event.time < retention.before) return false;
        return retention.keepPerHost === undefined || newer < Math.max(1, retention.keepPerHost);
      });
      removed += events.length - kept.length;
      this.byHost.set(mac, kept);
    }
    // What was appended before the prune is written before the database's prune, and nothing after it.
    const written = this.writeUnwritten();
    this.inTurn(async () => {
      await written;
      await this.client.query(
        `DELETE FROM events WHERE id IN (
           SELECT id FROM (SELECT id, time, ROW_NUMBER() OVER (PARTITION BY mac ORDER BY time DESC, id DESC) - 1 AS newer FROM events) ranked
           WHERE newer > 0 AND (($1::bigint IS NOT NULL AND time < $1::bigint) OR ($2::bigint IS NOT NULL AND newer >= $2::bigint)))`,
        [retention.before ?? null, retention.keepPerHost === undefined ? null : Math.max(1, retention.keepPerHost)],
      );
    });
    return removed;
  }

  putHostReport(report: HostReport): void {
    this.reports.set(`${report.mac} ${report.kind}`, { ...report });
    this.unwrittenReports.push({ ...report });
    this.scheduleWrite();
  }

  hostReport(mac: string, kind: HostReportKind): HostReport | undefined {
    const report = this.reports.get(`${mac} ${kind}`);
    return report === undefined ? undefined : { ...report };
  }

  /** Resolves once everything appended so far is in the database (or failed) and every notification so far is read. */
  async flush(): Promise<void> {
    void this.writeUnwritten();
    await this.tail;
  }

  /** Writes what is left, then disconnects. */
  close(): Promise<void> {
    this.closing ??= this.flush().then(async () => {
      await Promise.all([this.client.end(), this.listener?.end()]);
    });
    return this.closing;
  }

  /** Puts an event in its host's list, in time order; `read` (from the database) may be one the list holds already. */
  private place(event: BootEvent, read = false): void {
    const events = this.byHost.get(event.mac);
    if (events === undefined) {
      this.byHost.set(event.mac, [event]);
      return;
    }
    if (read && events.some((known) => known.id === event.id)) return;
    let at = events.length;
    while (at > 0 && before(events[at - 1]!, event) > 0) at--;
    events.splice(at, 0, event);
  }

  private takeId(): number {
    if (this.nextId >= this.blockEnd) {
      if (this.fetchedBlock === undefined) throw new Error(`timeline ids: the next block of ${BLOCK} has not come from ${this.database} yet`);
      this.nextId = this.fetchedBlock;
      this.blockEnd = this.fetchedBlock + BLOCK;
      this.fetchedBlock = undefined;
      this.nextBlock = undefined;
    }
    // A tenth used: fetch the next block, long before it is needed.
    if (this.nextBlock === undefined && this.blockEnd - this.nextId < BLOCK * 0.9) {
      this.nextBlock = this.client.query<{ start: string }>("SELECT nextval('event_id_blocks') AS start").then((result) => {
        this.fetchedBlock = Number(result.rows[0]!.start);
        return this.fetchedBlock;
      });
      this.nextBlock.catch((error: unknown) => {
        this.nextBlock = undefined;
        this.options.onProblem?.(`timeline ids not fetched from ${this.database}`, error);
      });
    }
    return this.nextId++;
  }

  private scheduleWrite(): void {
    if (this.writeScheduled || this.closing !== undefined) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      void this.writeUnwritten();
    });
  }

  /** Queues the write of everything appended so far; resolves when it has run. */
  private writeUnwritten(): Promise<void> {
    const events = this.unwritten;
    const reports = this.unwrittenReports;
    this.unwritten = [];
    this.unwrittenReports = [];
    const write = this.tail.then(() => this.write(events, reports));
    this.tail = write;
    return write;
  }

  private async write(events: BootEvent[], reports: HostReport[]): Promise<void> {
    if (events.length === 0 && reports.length === 0) return;
    // One statement each, the notification in it: atomic whichever connection it goes over.
    const latest = new Map(reports.map((report) => [`${report.mac} ${report.kind}`, report]));
    try {
      if (events.length > 0) {
        await this.client.query(
          `WITH written AS (
             INSERT INTO events (${columns})
             SELECT id, time, mac, source, stage, detail, domain
             FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, time bigint, mac text, source text, stage text, detail text, domain text)
             ON CONFLICT (id) DO NOTHING RETURNING id)
           SELECT pg_notify($2, $3)`,
          [JSON.stringify(events), CHANNEL, noticeOf({ ids: idRanges(events) })],
        );
      }
      if (latest.size > 0) {
        await this.client.query(
          `WITH written AS (
             INSERT INTO host_reports (mac, kind, time, body)
             SELECT mac, kind, time, body FROM jsonb_to_recordset($1::jsonb) AS x(mac text, kind text, time bigint, body text)
             ON CONFLICT (mac, kind) DO UPDATE SET time = EXCLUDED.time, body = EXCLUDED.body RETURNING 1)
           SELECT pg_notify($2, $3)`,
          [JSON.stringify([...latest.values()]), CHANNEL, noticeOf({ reports: [...latest.values()].map((r) => [r.mac, r.kind]) })],
        );
      }
    } catch (error) {
      // Kept in memory; tried again with the next write.
      this.unwritten.unshift(...events);
      this.unwrittenReports.unshift(...reports);
      this.options.onProblem?.(
        `${events.length} timeline events not written to ${this.database}; kept in memory and tried again`,
        asDatabaseError(this.database, error),
      );
    }
  }

  /** The whole timeline and every report, read into the copy (at open, and after a lost connection to the database). */
  private async readEverything(): Promise<void> {
    const rows = await this.client.query<EventRow>(`SELECT ${columns} FROM events ORDER BY time, id`);
    for (const row of rows.rows) this.place(fromRow(row), true);
    const reports = await this.client.query<ReportRow>('SELECT mac, kind, time, body FROM host_reports');
    for (const row of reports.rows) this.reports.set(`${row.mac} ${row.kind}`, reportFromRow(row));
  }

  /** Another server wrote events or reports: read them into the copy. */
  private readNotified(payload: string): void {
    if (payload === '*') {
      this.inTurn(() => this.readEverything());
      return;
    }
    const notice = JSON.parse(payload) as { ids?: Array<[number, number]>; reports?: Array<[string, HostReportKind]> };
    this.inTurn(async () => {
      try {
        for (const [first, last] of notice.ids ?? []) {
          const rows = await this.client.query<EventRow>(`SELECT ${columns} FROM events WHERE id BETWEEN $1 AND $2`, [first, last]);
          for (const row of rows.rows) this.place(fromRow(row), true);
        }
        for (const [mac, kind] of notice.reports ?? []) {
          const rows = await this.client.query<{ time: string; body: string }>('SELECT time, body FROM host_reports WHERE mac = $1 AND kind = $2', [mac, kind]);
          const row = rows.rows[0];
          if (row !== undefined) this.reports.set(`${mac} ${kind}`, { mac, kind, time: Number(row.time), body: row.body });
        }
      } catch (error) {
        this.options.onProblem?.(`timeline changes not read from ${this.database}`, asDatabaseError(this.database, error));
      }
    });
  }

  private inTurn(work: () => Promise<void>): void {
    this.tail = this.tail.then(work).catch((error: unknown) => this.options.onProblem?.(`timeline in ${this.database}: ${(error as Error).message}`, error));
  }
}

/** A notification's payload: what was written, or "*" (read everything) past the 8000 bytes a notification carries. */
function noticeOf(notice: { ids?: Array<[number, number]>; reports?: Array<[string, string]> }): string {
  const text = JSON.stringify(notice);
  return text.length > 7000 ? '*' : text;
}

/** Ids as [first, last] runs of consecutive ids (a server's ids mostly are). */
function idRanges(events: readonly BootEvent[]): Array<[number, number]> {
  const ids = events.map((event) => event.id).sort((a, b) => a - b);
  const ranges: Array<[number, number]> = [];
  for (const id of ids) {
    const last = ranges.at(-1);
    if (last !== undefined && id === last[1] + 1) last[1] = id;
    else ranges.push([id, id]);
  }
  return ranges;
}
