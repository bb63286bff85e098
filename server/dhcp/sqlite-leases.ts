/**
 * Leases in a SQLite file (better-sqlite3, synchronous like the LeaseStore
 * interface), so a restarted server knows whom it has promised what.
 *
 * Durability: the server applies decide()'s lease changes before it sends the
 * reply (server.ts, case 'reply'), and every method here returns only once its
 * transaction has committed. A write that makes a lease 'bound', the one that
 * backs a DHCPACK, commits with synchronous=FULL: the WAL is fsynced before
 * upsert() returns, so the ACK is on disk before it is on the wire and
 * survives kill -9 and power loss alike. Every other write (offers,
 * releases, declines, withdrawn offers, expiry) commits with
 * synchronous=NORMAL: no fsync, still atomic, and in the OS page cache once
 * committed, so it survives kill -9 but may be lost with power. Losing one
 * only errs on the safe side: a lost offer makes the client start over (or
 * the address goes to another client first, and the first is NAKed); a lost
 * release or expiry keeps an address held longer; a lost decline lets the
 * address be offered again and declined again. The WAL is append-only, so
 * the fsync of a FULL commit also covers every NORMAL commit before it.
 *
 * The file is opened with locking_mode=EXCLUSIVE: a second server on the same
 * state folder fails at start with a clear error instead of handing out the
 * same addresses. The price is that nothing else can read the file while the
 * server runs; stop it first (sqlite3 leases.sqlite 'SELECT * FROM leases').
 *
 * Portability: the schema and the statements are meant to run unchanged on
 * PostgreSQL later. SQLite-only parts are the PRAGMAs (open() and write())
 * and nothing else; expires_at is BIGINT because milliseconds since the epoch overflow
 * PostgreSQL's 32-bit INTEGER (SQLite gives BIGINT integer affinity).
 * INSERT ... ON CONFLICT ... DO UPDATE and partial indexes (CREATE INDEX ...
 * WHERE) are the same in both (SQLite 3.24+/3.8, PostgreSQL 9.5+).
 */
import Database from 'better-sqlite3';
import { holdsAddress, LeaseConflictError, type Lease, type LeaseState, type LeaseStore } from './leases.js';

/**
 * Schema migrations: entry i takes the file from version i to i + 1. Append
 * only; never edit a released one. The version lives in a one-row table
 * (portable) rather than PRAGMA user_version.
 */
const migrations: readonly string[][] = [
  [
    `CREATE TABLE leases (
       address TEXT NOT NULL PRIMARY KEY,
       mac TEXT NOT NULL,
       state TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'expired', 'declined')),
       expires_at BIGINT NOT NULL,
       hostname TEXT
     )`,
    // One client record per MAC; declined records (quarantines) are per address only.
    `CREATE UNIQUE INDEX leases_client_mac ON leases (mac) WHERE state <> 'declined'`,
    `CREATE INDEX leases_expires_at ON leases (expires_at)`,
  ],
];

export const leaseSchemaVersion = migrations.length;

/** Why a leases database could not be used; the message names the file. */
export class LeaseDatabaseError extends Error {
  override readonly name = 'LeaseDatabaseError';
  constructor(
    readonly file: string,
    /** LOCKED: another process has it open; CORRUPT: not a usable SQLite database; NEWER_SCHEMA; OPEN: anything else. */
    readonly code: 'LOCKED' | 'CORRUPT' | 'NEWER_SCHEMA' | 'OPEN',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`leases database ${file}: ${message}`, options);
  }
}

interface LeaseRow {
  address: string;
  mac: string;
  state: LeaseState;
  expires_at: number;
  hostname: string | null;
}

function fromRow(row: LeaseRow): Lease {
  const lease: Lease = { mac: row.mac, address: row.address, state: row.state, expiresAt: row.expires_at };
  if (row.hostname !== null) lease.hostname = row.hostname;
  return lease;
}

const columns = 'address, mac, state, expires_at, hostname';

export interface SqliteLeaseStoreOptions {
  /** How long to wait for another connection's lock before failing; default 2000 ms. */
  busyTimeoutMs?: number;
}

export class SqliteLeaseStore implements LeaseStore {
  private readonly db: Database.Database;
  private synchronous: 'FULL' | 'NORMAL' | undefined;
  private readonly statements: ReturnType<SqliteLeaseStore['prepare']>;

  private constructor(
    readonly file: string,
    db: Database.Database,
  ) {
    this.db = db;
    this.statements = this.prepare();
  }

  /** Opens (creating or migrating) the database at `file`; throws LeaseDatabaseError. */
  static open(file: string, options: SqliteLeaseStoreOptions = {}): SqliteLeaseStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 2000}`);
      db.pragma('locking_mode = EXCLUSIVE');
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') throw new LeaseDatabaseError(file, 'OPEN', `cannot switch to WAL mode (journal_mode is ${mode})`);
      db.pragma('synchronous = FULL');
      migrate(db, file);
      // Damaged pages would otherwise surface later as failed DHCP requests;
      // quick_check reads every page once (milliseconds for a leases file).
      const problems = (db.pragma('quick_check(3)') as Array<{ quick_check: string }>).map((row) => row.quick_check);
      if (problems.length !== 1 || problems[0] !== 'ok') {
        const found = problems.join('; ').replace(/\s+/g, ' ').slice(0, 300);
        throw new LeaseDatabaseError(file, 'CORRUPT', `damaged (quick_check: ${found}); move it aside to start with no leases`);
      }
      const store = new SqliteLeaseStore(file, db);
      store.synchronous = 'FULL';
      return store;
    } catch (error) {
      db?.close();
      throw asDatabaseError(file, error);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private prepare() {
    const db = this.db;
    return {
      byAddress: db.prepare<[string], LeaseRow>(`SELECT ${columns} FROM leases WHERE address = ?`),
      byMac: db.prepare<[string], LeaseRow>(`SELECT ${columns} FROM leases WHERE mac = ? AND state <> 'declined'`),
      all: db.prepare<[], LeaseRow>(`SELECT ${columns} FROM leases ORDER BY address`),
      dropOtherClientRecord: db.prepare<[string, string]>(`DELETE FROM leases WHERE mac = ? AND state <> 'declined' AND address <> ?`),
      upsert: db.prepare<[string, string, string, number, string | null]>(
        `INSERT INTO leases (${columns}) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (address) DO UPDATE SET mac = excluded.mac, state = excluded.state,
           expires_at = excluded.expires_at, hostname = excluded.hostname`,
      ),
      setState: db.prepare<[string, number, string]>(`UPDATE leases SET state = ?, expires_at = ? WHERE address = ?`),
      remove: db.prepare<[string]>(`DELETE FROM leases WHERE address = ?`),
      ended: db.prepare<[number], LeaseRow>(
        `SELECT ${columns} FROM leases WHERE expires_at <= ? AND state IN ('offered', 'declined', 'bound') ORDER BY address`,
      ),
      dropEnded: db.prepare<[number]>(`DELETE FROM leases WHERE expires_at <= ? AND state IN ('offered', 'declined')`),
      expireBound: db.prepare<[number]>(`UPDATE leases SET state = 'expired' WHERE expires_at <= ? AND state = 'bound'`),
    };
  }

  /** Runs `change` in one transaction, fsynced before returning when `durable`. */
  private write<T>(durable: boolean, change: () => T): T {
    const wanted = durable ? 'FULL' : 'NORMAL';
    if (this.synchronous !== wanted) {
      // Set before BEGIN, so the COMMIT runs at this level. Not a prepared
      // statement: SQLite applies PRAGMA synchronous when the statement is
      // compiled, and running the compiled statement again changes nothing.
      this.db.pragma(`synchronous = ${wanted}`);
      this.synchronous = wanted;
    }
    return this.db.transaction(change)();
  }

  byMac(mac: string): Lease | undefined {
    const row = this.statements.byMac.get(mac);
    return row && fromRow(row);
  }

  byAddress(address: string): Lease | undefined {
    const row = this.statements.byAddress.get(address);
    return row && fromRow(row);
  }

  upsert(lease: Lease, now: number): void {
    // A bound lease is what a DHCPACK promises: it must be on disk first.
    this.write(lease.state === 'bound', () => {
      const current = this.byAddress(lease.address);
      if (current !== undefined && holdsAddress(current, now)) {
        const quarantined = current.state === 'declined' && lease.state !== 'declined';
        if (current.mac !== lease.mac || quarantined) throw new LeaseConflictError(lease.address, current, lease.mac);
      }
      if (lease.state !== 'declined') this.statements.dropOtherClientRecord.run(lease.mac, lease.address);
      this.statements.upsert.run(lease.address, lease.mac, lease.state, lease.expiresAt, lease.hostname ?? null);
    });
  }

  release(mac: string, now: number): Lease | undefined {
    return this.write(false, () => {
      const record = this.byMac(mac);
      if (record === undefined) return undefined;
      if (record.state === 'offered' || record.state === 'bound') {
        this.statements.setState.run('released', now, record.address);
        return { ...record, state: 'released' as const, expiresAt: now };
      }
      return record;
    });
  }

  remove(address: string): void {
    this.write(false, () => this.statements.remove.run(address));
  }

  all(): Lease[] {
    return this.statements.all.all().map(fromRow);
  }

  expire(now: number): Lease[] {
    return this.write(false, () => {
      const ended = this.statements.ended.all(now).map(fromRow);
      if (ended.length > 0) {
        this.statements.dropEnded.run(now);
        this.statements.expireBound.run(now);
      }
      return ended;
    });
  }
}

function migrate(db: Database.Database, file: string): void {
  // IMMEDIATE takes the write lock now: with locking_mode=EXCLUSIVE it is then
  // held until close, so a second server fails here.
  db.transaction(() => {
    db.prepare('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)').run();
    const row = db.prepare<[], { version: number }>('SELECT version FROM schema_version').get();
    let version = row?.version ?? 0;
    if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
    if (version > migrations.length) {
      throw new LeaseDatabaseError(file, 'NEWER_SCHEMA', `schema version ${version} was written by a newer rackboot (this one knows up to ${migrations.length})`);
    }
    for (; version < migrations.length; version++) {
      for (const statement of migrations[version]!) db.prepare(statement).run();
    }
    db.prepare('UPDATE schema_version SET version = ?').run(version);
  }).immediate();
}

function asDatabaseError(file: string, error: unknown): LeaseDatabaseError {
  if (error instanceof LeaseDatabaseError) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new LeaseDatabaseError(file, 'LOCKED', `locked by another process (is another rackboot serving from this state folder?): ${message}`, { cause: error });
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    return new LeaseDatabaseError(file, 'CORRUPT', `not a usable SQLite database (${message}); move it aside to start with no leases`, { cause: error });
  }
  return new LeaseDatabaseError(file, 'OPEN', message, { cause: error });
}
