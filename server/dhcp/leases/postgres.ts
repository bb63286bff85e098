/**
 * Leases in a PostgreSQL database that several rackboot servers share.
 *
 * The LeaseStore interface is synchronous (decide() reads leases while it
 * decides), and a database across a network is not. So each server keeps a
 * view of the table in memory (a MemoryLeaseStore) and decides against it,
 * and every transaction's changes go to the database as one call of
 * rackboot_lease_units(), in the order they were made, over one connection.
 * The database is the authority:
 * - rackboot_lease_units() checks each change against the rows as they
 *   are when it runs (INSERT ... ON CONFLICT DO UPDATE ... WHERE, which
 *   locks the row and sees the newest version of it), so two servers can
 *   never give one address to two clients, nor one client two addresses
 *   (the partial unique index on mac), whatever their views said. The
 *   changes of each transaction nested directly in the outermost one (the
 *   group commit's requests) are a unit: a unit with a change that breaks
 *   that is undone alone (a subtransaction) and reported; a change outside
 *   any unit that breaks it fails the whole call.
 * - transactionSyncedLater()'s `synced` resolves once the call has
 *   committed (PostgreSQL's commit is durable: synchronous_commit is on by
 *   default), rejects with PartialCommitError naming the units refused,
 *   and rejects with the call's error when nothing was kept: the server's
 *   group commit sends no reply of what was not kept, offers included, so
 *   nothing is promised that the database does not hold.
 * - Every call notifies (pg_notify on rackboot_leases) the addresses it
 *   touched; each server reads those rows again and puts them in its view.
 *   A call that failed has its addresses read again the same way. Whatever
 *   a server's own later transactions have touched and not yet committed is
 *   left as the view has it until they settle.
 * - When the connection is lost, calls fail (no replies) until it is back;
 *   then the whole table is read again, since notifications were missed.
 *
 * transaction() returns once the view holds the changes and the call is
 * queued; `flush()` resolves once every queued call has settled.
 */
import pg from 'pg';
import { DatabaseConnection, DatabaseListener } from '../../postgres/connection.js';
import { asDatabaseError, migrateDatabase, PostgresDatabaseError, withDatabase } from '../../postgres/database.js';
import { leaseTables } from './tables.js';
import { LeaseConflictError, MemoryLeaseStore, PartialCommitError, type Lease, type LeaseState, type LeaseStore, type TransactionOptions } from './leases.js';

const CHANNEL = 'rackboot_leases';

/**
 * One change applied, checked against the row as it is now: the body shared
 * by version 2's loop and version 3's rackboot_lease_op(). Reads `op` and
 * `server_id`; sets `now_ms`, `addresses`, `changed`, `holder`; appends to
 * `touched`. A change another client's lease forbids raises RB001 with the
 * holder as its detail.
 */
const applyLeaseOp = `
       now_ms := (op->>'n')::bigint;
       IF op->>'k' = 'u' THEN
         IF op->>'s' <> 'declined' THEN
           WITH gone AS (DELETE FROM leases WHERE mac = op->>'m' AND state <> 'declined' AND address <> op->>'a' RETURNING address)
           SELECT coalesce(array_agg(address), '{}') INTO addresses FROM gone;
           touched := touched || addresses;
         END IF;
         INSERT INTO leases AS l (address, mac, state, expires_at, hostname, server, changed_at)
         VALUES (op->>'a', op->>'m', op->>'s', (op->>'e')::bigint, op->>'h', server_id, now())
         ON CONFLICT (address) DO UPDATE SET mac = EXCLUDED.mac, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, hostname = EXCLUDED.hostname,
                                             server = EXCLUDED.server, changed_at = EXCLUDED.changed_at
         WHERE NOT (l.state IN ('offered', 'bound', 'declined') AND l.expires_at > now_ms
                    AND (l.mac <> EXCLUDED.mac OR (l.state = 'declined' AND EXCLUDED.state <> 'declined')));
         GET DIAGNOSTICS changed = ROW_COUNT;
         IF changed = 0 THEN
           SELECT * INTO holder FROM leases WHERE address = op->>'a';
           RAISE EXCEPTION 'lease conflict' USING ERRCODE = 'RB001',
             DETAIL = json_build_object('address', holder.address, 'mac', holder.mac, 'state', holder.state,
                                        'expiresAt', holder.expires_at, 'wantedBy', op->>'m')::text;
         END IF;
         touched := touched || (op->>'a');
       ELSIF op->>'k' = 'r' THEN
         WITH done AS (UPDATE leases SET state = 'released', expires_at = now_ms, server = server_id, changed_at = now()
                       WHERE mac = op->>'m' AND state IN ('offered', 'bound') RETURNING address)
         SELECT coalesce(array_agg(address), '{}') INTO addresses FROM done;
         touched := touched || addresses;
       ELSIF op->>'k' = 'd' THEN
         -- Only the record the deciding server saw: an offer it reclaims may be bound by now, through another server.
         DELETE FROM leases WHERE address = op->>'a' AND mac = op->>'m' AND state = op->>'s' AND expires_at = (op->>'e')::bigint;
         touched := touched || (op->>'a');
       ELSIF op->>'k' = 'x' THEN
         WITH gone AS (DELETE FROM leases WHERE expires_at <= now_ms AND state IN ('offered', 'declined') RETURNING address)
         SELECT coalesce(array_agg(address), '{}') INTO addresses FROM gone;
         touched := touched || addresses;
         WITH ended AS (UPDATE leases SET state = 'expired', server = server_id, changed_at = now() WHERE expires_at <= now_ms AND state = 'bound' RETURNING address)
         SELECT coalesce(array_agg(address), '{}') INTO addresses FROM ended;
         touched := touched || addresses;
       ELSE
         RAISE EXCEPTION 'unknown lease change %', op->>'k';
       END IF;
`;

/** Schema migrations of the lease tables: entry i takes them from version i to i + 1. Append only. */
export const postgresLeaseMigrations: readonly (readonly string[])[] = [
  [
    ...leaseTables,
    // One transaction's changes, applied with the same rules as MemoryLeaseStore,
    // checked against the rows as they are now. Returns the addresses it touched
    // and notifies them. ops: [{k:'u',a,m,s,e,h,n} | {k:'r',m,n} | {k:'d',a,m,s,e} | {k:'x',n}]
    // (upsert, release, remove, expire; n is the change's "now" in ms).
    `CREATE FUNCTION rackboot_lease_ops(ops jsonb) RETURNS text[] LANGUAGE plpgsql AS $$
     DECLARE
       op jsonb;
       now_ms bigint;
       touched text[] := '{}';
       addresses text[];
       changed integer;
       holder leases%ROWTYPE;
       payload text;
     BEGIN
       FOR op IN SELECT value FROM jsonb_array_elements(ops) LOOP
         now_ms := (op->>'n')::bigint;
         IF op->>'k' = 'u' THEN
           IF op->>'s' <> 'declined' THEN
             WITH gone AS (DELETE FROM leases WHERE mac = op->>'m' AND state <> 'declined' AND address <> op->>'a' RETURNING address)
             SELECT coalesce(array_agg(address), '{}') INTO addresses FROM gone;
             touched := touched || addresses;
           END IF;
           INSERT INTO leases AS l (address, mac, state, expires_at, hostname)
           VALUES (op->>'a', op->>'m', op->>'s', (op->>'e')::bigint, op->>'h')
           ON CONFLICT (address) DO UPDATE SET mac = EXCLUDED.mac, state = EXCLUDED.state, expires_at = EXCLUDED.expires_at, hostname = EXCLUDED.hostname
           WHERE NOT (l.state IN ('offered', 'bound', 'declined') AND l.expires_at > now_ms
                      AND (l.mac <> EXCLUDED.mac OR (l.state = 'declined' AND EXCLUDED.state <> 'declined')));
           GET DIAGNOSTICS changed = ROW_COUNT;
           IF changed = 0 THEN
             SELECT * INTO holder FROM leases WHERE address = op->>'a';
             RAISE EXCEPTION 'lease conflict' USING ERRCODE = 'RB001',
               DETAIL = json_build_object('address', holder.address, 'mac', holder.mac, 'state', holder.state,
                                          'expiresAt', holder.expires_at, 'wantedBy', op->>'m')::text;
           END IF;
           touched := touched || (op->>'a');
         ELSIF op->>'k' = 'r' THEN
           WITH done AS (UPDATE leases SET state = 'released', expires_at = now_ms
                         WHERE mac = op->>'m' AND state IN ('offered', 'bound') RETURNING address)
           SELECT coalesce(array_agg(address), '{}') INTO addresses FROM done;
           touched := touched || addresses;
         ELSIF op->>'k' = 'd' THEN
           -- Only the record the deciding server saw: an offer it reclaims may be bound by now, through another server.
           DELETE FROM leases WHERE address = op->>'a' AND mac = op->>'m' AND state = op->>'s' AND expires_at = (op->>'e')::bigint;
           touched := touched || (op->>'a');
         ELSIF op->>'k' = 'x' THEN
           WITH gone AS (DELETE FROM leases WHERE expires_at <= now_ms AND state IN ('offered', 'declined') RETURNING address)
           SELECT coalesce(array_agg(address), '{}') INTO addresses FROM gone;
           touched := touched || addresses;
           WITH ended AS (UPDATE leases SET state = 'expired' WHERE expires_at <= now_ms AND state = 'bound' RETURNING address)
           SELECT coalesce(array_agg(address), '{}') INTO addresses FROM ended;
           touched := touched || addresses;
         ELSE
           RAISE EXCEPTION 'unknown lease change %', op->>'k';
         END IF;
       END LOOP;
       IF cardinality(touched) > 0 THEN
         payload := array_to_json(touched)::text;
         -- A notification carries at most 8000 bytes: past that, "*" (read everything).
         IF length(payload) > 7000 THEN payload := '*'; END IF;
         PERFORM pg_notify('${CHANNEL}', payload);
       END IF;
       RETURN touched;
     END
     $$`,
  ],
  // Version 2: which server made each record's last change, and when (by
  // the database's clock), for `rackboot leases --database`. The one-argument
  // call stays, for servers of the previous version during an upgrade.
  [
    'ALTER TABLE leases ADD COLUMN server TEXT',
    'ALTER TABLE leases ADD COLUMN changed_at TIMESTAMPTZ',
    `CREATE FUNCTION rackboot_lease_ops(ops jsonb, server_id text) RETURNS text[] LANGUAGE plpgsql AS $$
     DECLARE
       op jsonb;
       now_ms bigint;
       touched text[] := '{}';
       addresses text[];
       changed integer;
       holder leases%ROWTYPE;
       payload text;
     BEGIN
       FOR op IN SELECT value FROM jsonb_array_elements(ops) LOOP
${applyLeaseOp}       END LOOP;
       IF cardinality(touched) > 0 THEN
         payload := array_to_json(touched)::text;
         -- A notification carries at most 8000 bytes: past that, "*" (read everything).
         IF length(payload) > 7000 THEN payload := '*'; END IF;
         PERFORM pg_notify('${CHANNEL}', payload);
       END IF;
       RETURN touched;
     END
     $$`,
    `CREATE OR REPLACE FUNCTION rackboot_lease_ops(ops jsonb) RETURNS text[] LANGUAGE sql SET search_path FROM CURRENT
     AS $$ SELECT rackboot_lease_ops(ops, NULL::text) $$`,
  ],
  // Version 3: a batch's changes in units (op field g: the DHCP request that
  // made them), each kept or refused on its own. A unit another server's
  // change conflicts with is undone alone (a subtransaction) and reported;
  // the rest of the batch is kept. Ops without g are kept all or nothing,
  // with the call. The older calls stay, for servers of the previous
  // versions during an upgrade.
  [
    // One change, checked and applied as in version 2's loop, without notifying: the caller notifies once.
    `CREATE FUNCTION rackboot_lease_op(op jsonb, server_id text) RETURNS text[] LANGUAGE plpgsql AS $$
     DECLARE
       now_ms bigint;
       touched text[] := '{}';
       addresses text[];
       changed integer;
       holder leases%ROWTYPE;
     BEGIN
${applyLeaseOp}       RETURN touched;
     END
     $$`,
    `CREATE FUNCTION rackboot_lease_units(ops jsonb, server_id text) RETURNS jsonb LANGUAGE plpgsql AS $$
     DECLARE
       n integer := jsonb_array_length(ops);
       i integer := 0;
       unit integer;
       touched text[] := '{}';
       unit_touched text[];
       failed jsonb := '[]';
       detail text;
       payload text;
     BEGIN
       WHILE i < n LOOP
         unit := coalesce((ops->i->>'g')::integer, 0);
         IF unit = 0 THEN
           touched := touched || rackboot_lease_op(ops->i, server_id);
           i := i + 1;
         ELSE
           unit_touched := '{}';
           BEGIN
             WHILE i < n AND coalesce((ops->i->>'g')::integer, 0) = unit LOOP
               unit_touched := unit_touched || rackboot_lease_op(ops->i, server_id);
               i := i + 1;
             END LOOP;
             touched := touched || unit_touched;
           EXCEPTION WHEN SQLSTATE 'RB001' OR unique_violation THEN
             GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
             failed := failed || jsonb_build_array(jsonb_build_object('g', unit, 'code', SQLSTATE, 'message', SQLERRM, 'detail', detail));
             -- Variables keep their values past the rollback: skip the rest of the unit.
             WHILE i < n AND coalesce((ops->i->>'g')::integer, 0) = unit LOOP
               i := i + 1;
             END LOOP;
           END;
         END IF;
       END LOOP;
       IF cardinality(touched) > 0 THEN
         payload := array_to_json(touched)::text;
         -- A notification carries at most 8000 bytes: past that, "*" (read everything).
         IF length(payload) > 7000 THEN payload := '*'; END IF;
         PERFORM pg_notify('${CHANNEL}', payload);
       END IF;
       RETURN jsonb_build_object('failed', failed);
     END
     $$`,
  ],
];

export const postgresLeaseSchemaVersion = postgresLeaseMigrations.length;

/** One change as rackboot_lease_units() takes it; g: the unit (the nested transaction of the batch) it belongs to. */
type LeaseOp = (
  | { k: 'u'; a: string; m: string; s: LeaseState; e: number; h: string | null; n: number }
  | { k: 'r'; m: string; n: number }
  | { k: 'd'; a: string; m: string; s: LeaseState; e: number }
  | { k: 'x'; n: number }
) & { g?: number };

/** A unit rackboot_lease_units() refused: its number, and the refusal's SQLSTATE, message and detail. */
interface RefusedUnit {
  g: number;
  code: string;
  message: string;
  detail: string | null;
}

interface LeaseRow {
  address: string;
  mac: string;
  state: LeaseState;
  expires_at: string;
  hostname: string | null;
}

/** A record as `rackboot leases --database` shows it: with the server that made its last change, and when (schema version 2 on). */
export type DatabaseLease = Lease & { server: string | null; changedAt: string | null };

function fromRow(row: LeaseRow): Lease {
  const lease: Lease = { mac: row.mac, address: row.address, state: row.state, expiresAt: Number(row.expires_at) };
  if (row.hostname !== null) lease.hostname = row.hostname;
  return lease;
}

/** Every lease record in the database, for `rackboot leases --database` (reads only; makes no table). Throws PostgresDatabaseError. */
export async function readLeaseDatabase(url: string): Promise<DatabaseLease[]> {
  return withDatabase(
    url,
    'rackboot leases',
    // SELECT *: a table still at version 1 (no server yet) reads too.
    async (client) =>
      (await client.query<LeaseRow & { server?: string | null; changed_at?: Date | null }>('SELECT * FROM leases ORDER BY address')).rows.map((row) => ({
        ...fromRow(row),
        server: row.server ?? null,
        changedAt: row.changed_at?.toISOString() ?? null,
      })),
    (database, error) => {
      throw new PostgresDatabaseError(database, 'QUERY', 'holds no rackboot leases (no leases table): has a server run with --database on it?', {
        cause: error,
      });
    },
  );
}

/** A transaction's changes on their way to the database. */
interface QueuedCall {
  seq: number;
  /** Addresses the changes may touch, as the view saw them. */
  addresses: readonly string[];
}

export interface PostgresLeaseStoreOptions {
  /** Told about what the server cannot do itself: a call that failed, a connection lost and found. */
  onProblem?: (message: string, error?: unknown) => void;
  onRecovered?: (message: string) => void;
  connectTimeoutMs?: number;
  /** This server's name in the records it changes (its address on the segment). */
  server?: string;
}

export class PostgresLeaseStore implements LeaseStore {
  /** Commits go across a network: the server waits for `synced` before any reply, offers included. */
  readonly commitsRemotely = true;
  private readonly view = new MemoryLeaseStore();
  /** The changes of the open outermost transaction. */
  private ops: LeaseOp[] | undefined;
  /** The addresses those changes may touch (a nested transaction that fails drops what it added). */
  private opAddresses: string[] | undefined;
  /** The depth of nested transactions inside the open outermost one, and how many began at depth 1 (each a unit). */
  private depth = 0;
  private units = 0;
  private tail: Promise<void> = Promise.resolve();
  private seq = 0;
  private readonly queued = new Map<number, QueuedCall>();
  private listener: DatabaseListener | undefined;
  private closed = false;
  /** Set when the view may have missed changes (a lost connection): the whole table is read again once the database answers. */
  private stale = false;
  private refreshing: Promise<void> | undefined;
  private readonly wanted = new Set<string>();
  private wantAll = false;
  /** Connected and in step: false while the database cannot be reached. */
  healthy = true;

  private constructor(
    /** Calls and reads, one at a time (inTurn); connected again on the next one when it was lost. */
    private readonly client: DatabaseConnection,
    private readonly options: PostgresLeaseStoreOptions,
  ) {}

  /** The database's URL without its password. */
  get database(): string {
    return this.client.database;
  }

  /** Connects, brings the tables to the newest schema, reads every lease and listens for other servers' changes. Throws PostgresDatabaseError. */
  static async open(url: string, options: PostgresLeaseStoreOptions = {}): Promise<PostgresLeaseStore> {
    const client = new DatabaseConnection(url, 'rackboot leases', options.connectTimeoutMs);
    try {
      await migrateDatabase(client, client.database, 'leases', postgresLeaseMigrations);
      const store = new PostgresLeaseStore(client, options);
      store.listener = await DatabaseListener.open(url, CHANNEL, {
        applicationName: 'rackboot lease changes',
        onNotification: (payload, processId) => {
          if (processId === client.processId) return; // our own call: the view has it already
          if (payload === '*') store.wantEverything();
          else store.want(JSON.parse(payload) as string[]);
        },
        // Changes made while it was not listening were not notified.
        onReconnected: () => store.wantEverything(),
        onProblem: (message, error) => {
          options.onProblem?.(message, error);
          store.lost();
        },
      });
      await store.inTurn(() => store.readAll());
      return store;
    } catch (error) {
      await client.end();
      throw asDatabaseError(client.database, error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    await Promise.all([this.client.end(), this.listener?.end()]);
  }

  /** Resolves once every transaction so far has reached the database or failed. */
  async flush(): Promise<void> {
    await this.tail;
    await this.refreshing;
  }

  byMac(mac: string): Lease | undefined {
    return this.view.byMac(mac);
  }

  byAddress(address: string): Lease | undefined {
    return this.view.byAddress(address);
  }

  all(): Lease[] {
    return this.view.all();
  }

  upsert(lease: Lease, now: number): void {
    if (this.ops === undefined) return this.transaction(() => this.upsert(lease, now), { durable: lease.state === 'bound' });
    const before = lease.state === 'declined' ? undefined : this.view.byMac(lease.mac)?.address;
    this.view.upsert(lease, now);
    this.ops.push({ k: 'u', a: lease.address, m: lease.mac, s: lease.state, e: lease.expiresAt, h: lease.hostname ?? null, n: now });
    this.opAddresses!.push(lease.address);
    if (before !== undefined) this.opAddresses!.push(before);
  }

  release(mac: string, now: number): Lease | undefined {
    if (this.ops === undefined) return this.transaction(() => this.release(mac, now));
    const released = this.view.release(mac, now);
    if (released !== undefined) {
      this.ops.push({ k: 'r', m: mac, n: now });
      this.opAddresses!.push(released.address);
    }
    return released;
  }

  remove(address: string): void {
    if (this.ops === undefined) return this.transaction(() => this.remove(address));
    const record = this.view.byAddress(address);
    if (record === undefined) return;
    this.view.remove(address);
    this.ops.push({ k: 'd', a: address, m: record.mac, s: record.state, e: record.expiresAt });
    this.opAddresses!.push(address);
  }

  expire(now: number): Lease[] {
    if (this.ops === undefined) return this.transaction(() => this.expire(now));
    const ended = this.view.expire(now);
    this.ops.push({ k: 'x', n: now });
    for (const record of ended) this.opAddresses!.push(record.address);
    return ended;
  }

  transaction<T>(work: () => T, options: TransactionOptions = {}): T {
    return this.run(work, options).result;
  }

  transactionSyncedLater<T>(work: () => T): { result: T; synced: Promise<void> } {
    if (this.ops !== undefined) throw new Error('transactionSyncedLater cannot be nested');
    return this.run(work, { durable: true, callerWaits: true });
  }

  private run<T>(work: () => T, options: TransactionOptions & { callerWaits?: boolean }): { result: T; synced: Promise<void> } {
    if (this.ops !== undefined) {
      const mark = this.ops.length;
      const addressMark = this.opAddresses!.length;
      // A transaction nested directly in the outermost one is a unit, kept or refused on its own.
      const unit = this.depth === 0 ? ++this.units : undefined;
      this.depth += 1;
      try {
        const result = this.view.transaction(work, options);
        if (unit !== undefined) for (let i = mark; i < this.ops.length; i += 1) this.ops[i]!.g = unit;
        return { result, synced: Promise.resolve() };
      } catch (error) {
        this.ops.length = mark;
        this.opAddresses!.length = addressMark;
        throw error;
      } finally {
        this.depth -= 1;
      }
    }
    this.ops = [];
    this.opAddresses = [];
    this.depth = 0;
    this.units = 0;
    let result: T;
    try {
      result = this.view.transaction(work, options);
    } catch (error) {
      this.ops = undefined;
      this.opAddresses = undefined;
      throw error;
    }
    const ops = this.ops;
    const addresses = this.opAddresses;
    this.ops = undefined;
    this.opAddresses = undefined;
    // A caller that waits for `synced` (transactionSyncedLater: the DHCP
    // server's group commit) hears of a failure from it and says so itself;
    // one that does not (transaction()) is told through onProblem.
    const synced = ops.length === 0 ? Promise.resolve() : this.enqueue(ops, addresses, options.callerWaits === true);
    synced.catch(() => undefined);
    return { result, synced };
  }

  /** Sends one transaction's changes after those before it. */
  private enqueue(ops: LeaseOp[], addresses: readonly string[], callerWaits: boolean): Promise<void> {
    const call: QueuedCall = { seq: ++this.seq, addresses };
    this.queued.set(call.seq, call);
    return this.inTurn(() => this.send(call, ops, callerWaits));
  }

  /** Runs `work` on the connection once everything queued before it has ended: calls and reads, one at a time, in order. */
  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const done = this.tail.then(work);
    this.tail = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  private async send(call: QueuedCall, ops: LeaseOp[], callerWaits: boolean): Promise<void> {
    try {
      if (this.stale) await this.readAll();
      const answer = await this.client.query<{ r: { failed: RefusedUnit[] } }>('SELECT rackboot_lease_units($1::jsonb, $2::text) AS r', [
        JSON.stringify(ops),
        this.options.server ?? null,
      ]);
      this.queued.delete(call.seq);
      const refused = answer.rows[0]?.r.failed ?? [];
      if (refused.length > 0) {
        // The view holds the refused units' changes: read those rows again.
        this.want(call.addresses);
        const partial = new PartialCommitError(new Map(refused.map((unit) => [unit.g, this.unitError(unit)])));
        if (!callerWaits) this.options.onProblem?.(`lease changes not kept: ${partial.message}`, partial);
        throw partial;
      }
    } catch (error) {
      if (error instanceof PartialCommitError) throw error;
      this.queued.delete(call.seq);
      const failure = this.callError(error);
      if (!callerWaits) this.options.onProblem?.(`lease changes not kept: ${failure.message}`, failure);
      // The view holds changes the database refused: read those rows again.
      this.want(call.addresses);
      throw failure;
    }
  }

  /** Why one unit was refused, as callError says it of a whole call. */
  private unitError(unit: RefusedUnit): Error {
    return this.callError(Object.assign(new Error(unit.message), { code: unit.code, detail: unit.detail }));
  }

  /** What a failed call threw, as a LeaseConflictError (another server holds the address) or a PostgresDatabaseError. */
  private callError(error: unknown): Error {
    // DatabaseConnection wraps pg's error; the refusal's SQLSTATE and detail are on the original.
    const original = error instanceof PostgresDatabaseError && error.cause !== undefined ? error.cause : error;
    const code = (original as { code?: unknown }).code;
    if (code === 'RB001') {
      const detail = JSON.parse(String((original as { detail?: unknown }).detail)) as {
        address: string;
        mac: string;
        state: LeaseState;
        expiresAt: number;
        wantedBy: string;
      };
      return new LeaseConflictError(
        detail.address,
        { address: detail.address, mac: detail.mac, state: detail.state, expiresAt: Number(detail.expiresAt) },
        detail.wantedBy,
      );
    }
    if (code === '23505') {
      return new PostgresDatabaseError(
        this.database,
        'QUERY',
        `another server changed the same client's lease at the same time (${(original as Error).message})`,
        { cause: original },
      );
    }
    const failure = asDatabaseError(this.database, error);
    if (failure.code === 'UNREACHABLE') this.lost();
    return failure;
  }

  /** The database could not be reached: read the whole table again once it can. */
  private lost(): void {
    this.stale = true;
    this.healthy = false;
  }

  private want(addresses: Iterable<string>): void {
    for (const address of addresses) this.wanted.add(address);
    this.refreshSoon();
  }

  private wantEverything(): void {
    this.wantAll = true;
    this.refreshSoon();
  }

  /** One read at a time; what is asked for meanwhile is read by the next. */
  private refreshSoon(): void {
    if (this.refreshing !== undefined || this.closed) return;
    this.refreshing = (async () => {
      try {
        while ((this.wantAll || this.wanted.size > 0) && !this.closed) {
          if (this.wantAll) {
            this.wantAll = false;
            this.wanted.clear();
            await this.inTurn(() => this.readAll());
          } else {
            const addresses = [...this.wanted];
            this.wanted.clear();
            await this.inTurn(() => this.readSome(addresses));
          }
        }
      } catch (error) {
        this.options.onProblem?.(`leases not read again from ${this.database}: ${(error as Error).message}`, error);
        this.stale = true;
      } finally {
        this.refreshing = undefined;
      }
    })();
  }

  /**
   * Addresses that transactions not yet kept may change: the view keeps them
   * as they are until those settle. Calls and reads run one at a time, in
   * order (inTurn), so a read's rows hold every call that ended before it.
   */
  private pendingAddresses(): Set<string> {
    return new Set([...this.queued.values()].flatMap((call) => call.addresses));
  }

  private async readSome(addresses: string[]): Promise<void> {
    const rows = await this.client.query<LeaseRow>('SELECT address, mac, state, expires_at, hostname FROM leases WHERE address = ANY($1)', [addresses]);
    const keep = this.pendingAddresses();
    this.view.adopt(
      addresses.filter((address) => !keep.has(address)),
      rows.rows.map(fromRow).filter((lease) => !keep.has(lease.address)),
    );
  }

  private async readAll(): Promise<void> {
    let rows: pg.QueryResult<LeaseRow>;
    try {
      rows = await this.client.query<LeaseRow>('SELECT address, mac, state, expires_at, hostname FROM leases');
    } catch (error) {
      throw this.callError(error);
    }
    this.view.adoptAll(rows.rows.map(fromRow), this.pendingAddresses());
    const wasStale = this.stale || !this.healthy;
    this.stale = false;
    this.healthy = true;
    if (wasStale) this.options.onRecovered?.(`leases read again from ${this.database}: ${rows.rowCount ?? 0} records`);
  }
}
