/**
 * Leases in a SQLite file (better-sqlite3, synchronous like the LeaseStore
 * interface), so a restarted server knows whom it has promised what.
 *
 * Durability: the server decides a batch of requests inside one
 * transaction and sends the replies only once it is on stable storage
 * (group commit, server.ts). A transaction that may write a bound lease, the
 * record that backs a DHCPACK, is durable; writing a bound lease in one that
 * is not throws. The server's batches use transactionSyncedLater(): the
 * commit runs at synchronous=NORMAL and then one fsync(2) of the WAL runs on
 * the thread pool, shared by every batch that committed meanwhile; the
 * batch's ACKs leave when it ends, so they are on disk before they are on
 * the wire and survive kill -9 and power loss alike. A durable
 * transaction() (a direct upsert of a bound lease) commits with
 * synchronous=FULL: the WAL is fsynced before it returns. Every other write
 * (a batch of DISCOVERs, expiry) commits with synchronous=NORMAL and no
 * fsync: still atomic, and in the OS page cache once committed, so it
 * survives kill -9 but may be lost with power. Losing one only errs on the
 * safe side: a lost offer makes the client start over (or the address goes
 * to another client first, and the first is NAKed); a lost release or
 * expiry keeps an address held longer; a lost decline lets the address be
 * offered again and declined again. The WAL is append-only, so an fsync of
 * it also covers every commit before it.
 *
 * Locking: the lease file uses SQLite's normal locking, so other processes
 * (`rackboot leases`, the sqlite3 CLI, a backup) read it while the server
 * runs; WAL readers never block the server's writes nor wait for them. What
 * keeps a second server off the same file is a separate lock file beside it
 * (leases.sqlite.lock): a one-table SQLite database opened with
 * locking_mode=EXCLUSIVE and written once at open, so its connection holds
 * an exclusive POSIX lock on it until close. A second open() fails with
 * LOCKED, naming both files. The kernel drops the lock when the process
 * dies, kill -9 included, so no stale lock is left to clean up. Why a SQLite
 * database and not flock(2): SQLite's own locks need no native code of ours,
 * and it keeps track of its locks per file within a process, so a second
 * open in the same process is refused too (POSIX record locks alone would
 * not conflict within one process).
 *
 * Portability: the schema and the statements are meant to run unchanged on
 * PostgreSQL later. SQLite-only parts are the PRAGMAs (open() and write())
 * and nothing else; expires_at is BIGINT because milliseconds since the epoch overflow
 * PostgreSQL's 32-bit INTEGER (SQLite gives BIGINT integer affinity).
 * INSERT ... ON CONFLICT ... DO UPDATE and partial indexes (CREATE INDEX ...
 * WHERE) are the same in both (SQLite 3.24+/3.8, PostgreSQL 9.5+).
 *
 * Reads: the whole table is kept in memory as well (a MemoryLeaseStore,
 * read once at open) and every read is answered from there. Only this
 * process writes the file (the lock above), so the copy is exact; each
 * change is made to both inside one transaction, and a transaction that
 * fails undoes it in both. A DHCP exchange then costs only its writes in
 * SQLite: the statements that looked records up were a fifth of the
 * store's time per request.
 */
import { closeSync, existsSync, fsync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import { migrateSchema } from '../../sqlite/schema.js';
import { leaseTables } from './tables.js';
import { storeOpenError } from '../../sqlite/errors.js';
import { MemoryLeaseStore, notDurable, NotDurableError, type Lease, type LeaseState, type LeaseStore, type TransactionOptions } from './leases.js';

/**
 * Schema migrations: entry i takes the file from version i to i + 1. Append
 * only; never edit a released one. The version lives in a one-row table
 * (portable) rather than PRAGMA user_version.
 */
const migrations: readonly (readonly string[])[] = [leaseTables];

export const leaseSchemaVersion = migrations.length;

/** Why a leases database could not be used; the message names the file. */
export class LeaseDatabaseError extends Error {
  override readonly name = 'LeaseDatabaseError';
  constructor(
    readonly file: string,
    /**
     * LOCKED: another server has it open; CORRUPT: not a usable SQLite
     * database; NEWER_SCHEMA; OPEN: anything else at open; COMMIT: a
     * transaction could not begin or commit (nothing of it was kept).
     */
    readonly code: 'LOCKED' | 'CORRUPT' | 'NEWER_SCHEMA' | 'OPEN' | 'COMMIT',
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
  /** The WAL file, opened for fsync(2) once needed. */
  private wal: number | undefined;
  private syncRunning: Promise<void> | undefined;
  /** The fsync that starts when the running one ends; commits since it began wait for this one. */
  private nextSync: Promise<void> | undefined;
  /** The open outermost transaction, if any. */
  private openTransaction: { durable: boolean; broken: boolean } | undefined;
  /** The table as committed, plus the open transaction's changes; what every read answers from. */
  private readonly view = new MemoryLeaseStore();

  private constructor(
    readonly file: string,
    db: Database.Database,
    /** Holds leases.sqlite.lock exclusively while this store is open. */
    private readonly lock: Database.Database,
  ) {
    this.db = db;
    this.statements = this.prepare();
    this.view.adoptAll(this.statements.all.all().map(fromRow));
  }

  /** Opens (creating or migrating) the database at `file`; throws LeaseDatabaseError. */
  static open(file: string, options: SqliteLeaseStoreOptions = {}): SqliteLeaseStore {
    const busyTimeoutMs = options.busyTimeoutMs ?? 2000;
    const lock = takeServerLock(file, busyTimeoutMs);
    let db: Database.Database | undefined;
    try {
      db = new Database(file);
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
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
      const store = new SqliteLeaseStore(file, db, lock);
      store.synchronous = 'FULL';
      return store;
    } catch (error) {
      db?.close();
      lock.close();
      throw asDatabaseError(file, error);
    }
  }

  close(): void {
    if (this.wal !== undefined) closeSync(this.wal);
    this.wal = undefined;
    if (this.db.open) this.db.close();
    if (this.lock.open) this.lock.close();
  }

  private prepare() {
    const db = this.db;
    return {
      all: db.prepare<[], LeaseRow>(`SELECT ${columns} FROM leases ORDER BY address`),
      dropOtherClientRecord: db.prepare<[string, string]>(`DELETE FROM leases WHERE mac = ? AND state <> 'declined' AND address <> ?`),
      upsert: db.prepare<[string, string, string, number, string | null]>(
        `INSERT INTO leases (${columns}) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (address) DO UPDATE SET mac = excluded.mac, state = excluded.state,
           expires_at = excluded.expires_at, hostname = excluded.hostname`,
      ),
      setState: db.prepare<[string, number, string]>(`UPDATE leases SET state = ?, expires_at = ? WHERE address = ?`),
      remove: db.prepare<[string]>(`DELETE FROM leases WHERE address = ?`),
      dropEnded: db.prepare<[number]>(`DELETE FROM leases WHERE expires_at <= ? AND state IN ('offered', 'declined')`),
      expireBound: db.prepare<[number]>(`UPDATE leases SET state = 'expired' WHERE expires_at <= ? AND state = 'bound'`),
      // IMMEDIATE takes the write lock at BEGIN: a batch never fails half-way
      // for want of it. Savepoints give nested transactions (SQL standard,
      // PostgreSQL has them too); one name serves every level, as RELEASE and
      // ROLLBACK TO act on the innermost savepoint of that name.
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT nested'),
      releaseSavepoint: db.prepare('RELEASE nested'),
      rollbackToSavepoint: db.prepare('ROLLBACK TO nested'),
    };
  }

  transaction<T>(work: () => T, options: TransactionOptions = {}): T {
    const durable = options.durable === true;
    const open = this.openTransaction;
    if (open !== undefined) {
      if (durable && !open.durable) throw new NotDurableError('a durable transaction cannot nest inside one that is not durable');
      if (open.broken) throw new LeaseDatabaseError(this.file, 'COMMIT', 'the transaction was rolled back by an earlier error');
      return this.view.transaction(() => this.nested(work, open), options);
    }
    return this.outermost(work, durable, durable ? 'FULL' : 'NORMAL');
  }

  private nested<T>(work: () => T, open: { broken: boolean }): T {
    this.statements.savepoint.run();
    let result: T;
    try {
      result = work();
    } catch (error) {
      // Some errors (disk full, I/O) make SQLite roll back the whole
      // transaction; then there is no savepoint left, and nothing of the
      // outer transaction may be committed.
      if (this.db.inTransaction) {
        this.statements.rollbackToSavepoint.run();
        this.statements.releaseSavepoint.run();
      } else {
        open.broken = true;
      }
      throw error;
    }
    this.statements.releaseSavepoint.run();
    return result;
  }

  transactionSyncedLater<T>(work: () => T): { result: T; synced: Promise<void> } {
    if (this.openTransaction !== undefined) throw new Error('transactionSyncedLater cannot be nested');
    // Committed without an fsync (NORMAL): in the WAL and the page cache.
    const result = this.outermost(work, true, 'NORMAL');
    return { result, synced: this.syncWal() };
  }

  /**
   * Resolves once everything committed before the call is on stable
   * storage. The WAL is append-only, so one fsync(2) of it, begun after a
   * commit, covers that commit and every one before it; fsyncs begun while
   * one is running share the next one (group commit). A checkpoint, which
   * SQLite runs inside a commit, fsyncs the WAL and then the database file
   * itself at synchronous=NORMAL, so frames it copied out of the WAL are
   * durable too. The fsync runs on libuv's thread pool, so the server
   * decides the next batch meanwhile.
   */
  private syncWal(): Promise<void> {
    if (this.nextSync !== undefined) return this.nextSync;
    const start = (): Promise<void> => {
      this.nextSync = undefined;
      const running = new Promise<void>((resolve, reject) => {
        fsync(this.walDescriptor(), (error) => {
          if (this.syncRunning === running) this.syncRunning = undefined;
          if (error) reject(new LeaseDatabaseError(this.file, 'COMMIT', `fsync of ${this.file}-wal failed: ${error.message}`, { cause: error }));
          else resolve();
        });
      });
      this.syncRunning = running;
      return running;
    };
    if (this.syncRunning === undefined) return start();
    // One is running, begun maybe before this commit: the next one starts when it ends.
    const next = this.syncRunning.then(start, start);
    this.nextSync = next;
    return next;
  }

  private walDescriptor(): number {
    // The WAL file exists from the first write in WAL mode and is kept (and
    // reused from its start after a checkpoint) while a connection is open.
    this.wal ??= openSync(`${this.file}-wal`, 'r');
    return this.wal;
  }

  /** A transaction in both SQLite and the view: when SQLite's fails, at any step up to its COMMIT, the view's is undone. */
  private outermost<T>(work: () => T, durable: boolean, synchronous: 'FULL' | 'NORMAL'): T {
    return this.view.transaction(() => this.outermostInSqlite(work, durable, synchronous), { durable });
  }

  private outermostInSqlite<T>(work: () => T, durable: boolean, synchronous: 'FULL' | 'NORMAL'): T {
    this.setSynchronous(synchronous);
    try {
      this.statements.begin.run();
    } catch (error) {
      throw new LeaseDatabaseError(this.file, 'COMMIT', `cannot begin a transaction: ${describe(error)}`, { cause: error });
    }
    const state = { durable, broken: false };
    this.openTransaction = state;
    let result: T;
    try {
      result = work();
      if (state.broken) throw new LeaseDatabaseError(this.file, 'COMMIT', 'the transaction was rolled back by an error inside it');
    } catch (error) {
      this.openTransaction = undefined;
      if (this.db.inTransaction) this.statements.rollback.run();
      throw error;
    }
    this.openTransaction = undefined;
    try {
      this.statements.commit.run();
    } catch (error) {
      if (this.db.inTransaction) this.statements.rollback.run();
      throw new LeaseDatabaseError(this.file, 'COMMIT', `commit failed, nothing of the transaction was kept: ${describe(error)}`, { cause: error });
    }
    return result;
  }

  private setSynchronous(wanted: 'FULL' | 'NORMAL'): void {
    if (this.synchronous === wanted) return;
    // Set before BEGIN (SQLite refuses to change it inside a transaction),
    // so the COMMIT runs at this level. Not a prepared statement: SQLite
    // applies PRAGMA synchronous when the statement is compiled, and running
    // the compiled statement again changes nothing.
    this.db.pragma(`synchronous = ${wanted}`);
    this.synchronous = wanted;
  }

  /** One change as its own transaction, or nested in the open one. */
  private write<T>(durable: boolean, change: () => T): T {
    return this.transaction(change, { durable });
  }

  byMac(mac: string): Lease | undefined {
    return this.view.byMac(mac);
  }

  byAddress(address: string): Lease | undefined {
    return this.view.byAddress(address);
  }

  upsert(lease: Lease, now: number): void {
    // A bound lease is what a DHCPACK promises: it must be on disk first.
    if (lease.state === 'bound' && this.openTransaction !== undefined && !this.openTransaction.durable) throw notDurable(lease);
    this.write(lease.state === 'bound', () => {
      const before = lease.state === 'declined' ? undefined : this.view.byMac(lease.mac)?.address;
      // The view checks for a conflict (the address held by another client, or quarantined) and throws before SQLite is touched.
      this.view.upsert(lease, now);
      // The client's record for another address goes (the unique index on mac would refuse the new one).
      if (before !== undefined && before !== lease.address) this.statements.dropOtherClientRecord.run(lease.mac, lease.address);
      this.statements.upsert.run(lease.address, lease.mac, lease.state, lease.expiresAt, lease.hostname ?? null);
    });
  }

  release(mac: string, now: number): Lease | undefined {
    return this.write(false, () => {
      const record = this.view.byMac(mac);
      if (record === undefined) return undefined;
      const released = this.view.release(mac, now);
      if (record.state === 'offered' || record.state === 'bound') this.statements.setState.run('released', now, record.address);
      return released;
    });
  }

  remove(address: string): void {
    this.write(false, () => {
      this.view.remove(address);
      this.statements.remove.run(address);
    });
  }

  all(): Lease[] {
    return this.view.all();
  }

  expire(now: number): Lease[] {
    return this.write(false, () => {
      const ended = this.view.expire(now);
      if (ended.length > 0) {
        this.statements.dropEnded.run(now);
        this.statements.expireBound.run(now);
      }
      return ended.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    });
  }
}

/**
 * Every record of a lease file, read without taking the server's lock and
 * without writing: for `rackboot leases`, while the server runs or not. WAL
 * readers see the last committed state and never block the server.
 */
export function readLeaseFile(file: string): Lease[] {
  if (!existsSync(file)) throw new LeaseDatabaseError(file, 'OPEN', 'does not exist (has a server run with this state folder?)');
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 2000');
    const version = db.prepare<[], { version: number }>('SELECT version FROM schema_version').get()?.version ?? 0;
    if (version > migrations.length) {
      throw new LeaseDatabaseError(
        file,
        'NEWER_SCHEMA',
        `schema version ${version} was written by a newer rackboot (this one knows up to ${migrations.length})`,
      );
    }
    if (version < migrations.length)
      throw new LeaseDatabaseError(file, 'OPEN', `schema version ${version} is older than ${migrations.length}; start the server once to migrate it`);
    return db.prepare<[], LeaseRow>(`SELECT ${columns} FROM leases ORDER BY address`).all().map(fromRow);
  } catch (error) {
    throw asDatabaseError(file, error);
  } finally {
    db?.close();
  }
}

function migrate(db: Database.Database, file: string): void {
  migrateSchema(db, migrations, (message) => new LeaseDatabaseError(file, 'NEWER_SCHEMA', message));
}

/**
 * Takes the lock that keeps a second server off `file` (see the top of this
 * file): the lock database's connection keeps its exclusive lock until it is
 * closed or the process ends.
 */
function takeServerLock(file: string, busyTimeoutMs: number): Database.Database {
  const lockFile = `${file}.lock`;
  let lock: Database.Database | undefined;
  try {
    lock = new Database(lockFile);
    lock.pragma(`busy_timeout = ${busyTimeoutMs}`);
    lock.pragma('locking_mode = EXCLUSIVE');
    // What the lock file holds does not matter, only that it is locked: no
    // journal and no fsync.
    lock.pragma('journal_mode = OFF');
    lock.pragma('synchronous = OFF');
    lock.exec('BEGIN EXCLUSIVE');
    lock.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, since TEXT NOT NULL)');
    lock.exec('DELETE FROM holder');
    lock.prepare('INSERT INTO holder (pid, since) VALUES (?, ?)').run(process.pid, new Date().toISOString());
    lock.exec('COMMIT');
    return lock;
  } catch (error) {
    lock?.close();
    const code = (error as { code?: unknown }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      return fail(
        new LeaseDatabaseError(file, 'LOCKED', `in use by another rackboot serving from this state folder (it holds ${lockFile}); stop it first`, {
          cause: error,
        }),
      );
    }
    return fail(new LeaseDatabaseError(file, 'OPEN', `cannot take the lock file ${lockFile}: ${describe(error)}`, { cause: error }));
  }
}

function fail(error: Error): never {
  throw error;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function asDatabaseError(file: string, error: unknown): LeaseDatabaseError {
  return storeOpenError(
    error,
    (e): e is LeaseDatabaseError => e instanceof LeaseDatabaseError,
    (code, message, cause) => new LeaseDatabaseError(file, code, message, { cause }),
    'move it aside to start with no leases',
  );
}
