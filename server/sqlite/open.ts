import Database from 'better-sqlite3';
import { storeOpenError, type OpenFailure } from './errors.js';
import { migrateSchema } from './schema.js';

/** Why a store's file could not be used: LOCKED (another process has it open), CORRUPT (not a usable SQLite database), NEWER_SCHEMA, OPEN (anything else). */
export type StoreFailure = OpenFailure | 'NEWER_SCHEMA';

/** A store's error; the message starts with what the file is and its path ("events database /var/lib/…: …"). */
export class StoreDatabaseError extends Error {
  constructor(
    readonly file: string,
    readonly code: StoreFailure,
    what: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${what} ${file}: ${message}`, options);
  }
}

/** How a store names what went wrong with its file. */
export interface StoreErrors<E extends Error> {
  make(code: StoreFailure, message: string, cause?: unknown): E;
  isOwn(error: unknown): error is E;
  /** What to do with a file that is not a usable database ("move it aside to …"). */
  whenCorrupt: string;
}

/**
 * A store's SQLite file, opened for this process alone: WAL, a write lock
 * held from the migration until close (locking_mode=EXCLUSIVE, so a second
 * server on the same state folder fails at once with LOCKED), `synchronous`
 * as the store's durability asks, and the schema brought up to date.
 * Failures come back as the store's own error, naming the file.
 */
export function openExclusiveStore<E extends Error>(
  file: string,
  options: { synchronous: 'NORMAL' | 'FULL'; migrations: readonly (readonly string[])[]; errors: StoreErrors<E> },
): Database.Database {
  const { errors } = options;
  let db: Database.Database | undefined;
  try {
    db = new Database(file);
    db.pragma('busy_timeout = 2000');
    db.pragma('locking_mode = EXCLUSIVE');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw errors.make('OPEN', `cannot switch to WAL mode (journal_mode is ${mode})`);
    db.pragma(`synchronous = ${options.synchronous}`);
    // IMMEDIATE takes the write lock now: with locking_mode=EXCLUSIVE it is
    // then held until close.
    migrateSchema(db, options.migrations, (message) => errors.make('NEWER_SCHEMA', message));
    return db;
  } catch (error) {
    db?.close();
    throw storeError(error, errors);
  }
}

/** What better-sqlite3 threw, as the store's error. */
export function storeError<E extends Error>(error: unknown, errors: StoreErrors<E>): E {
  return storeOpenError(error, errors.isOwn, (code, message, cause) => errors.make(code, message, cause), errors.whenCorrupt);
}
