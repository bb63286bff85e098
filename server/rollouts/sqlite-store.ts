/**
 * Rollouts in a SQLite file of the state folder, rollouts.sqlite: one row
 * per channel (its newest rollout, as JSON). A rollout changes a few times
 * per host it moves, so every change is written with synchronous=FULL: a
 * host counted healthy stays counted after a crash.
 */
import Database from 'better-sqlite3';
import { openExclusiveStore, storeError, StoreDatabaseError, type StoreErrors, type StoreFailure } from '../sqlite/open.js';
import type { Rollout } from './rollout.js';
import { parseStoredRollout, type RolloutStore } from './store.js';

export const rolloutTables = [
  `CREATE TABLE rollouts (
     channel TEXT NOT NULL PRIMARY KEY,
     body TEXT NOT NULL,
     updated_at BIGINT NOT NULL
   )`,
];

/** Schema migrations: entry i takes the file from version i to i + 1. Append only. */
const migrations: readonly (readonly string[])[] = [rolloutTables];

export const rolloutSchemaVersion = migrations.length;

/** Why a rollouts database could not be used; the message names the file. */
export class RolloutDatabaseError extends StoreDatabaseError {
  override readonly name = 'RolloutDatabaseError';
  constructor(file: string, code: StoreFailure, message: string, options?: { cause?: unknown }) {
    super(file, code, 'rollouts database', message, options);
  }
}

function rolloutErrors(file: string): StoreErrors<RolloutDatabaseError> {
  return {
    make: (code, message, cause) => new RolloutDatabaseError(file, code, message, { cause }),
    isOwn: (e): e is RolloutDatabaseError => e instanceof RolloutDatabaseError,
    whenCorrupt: 'move it aside to start with no rollouts (every host then boots its channel’s current build)',
  };
}

export class SqliteRolloutStore implements RolloutStore {
  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
  ) {}

  /** Opens (creating or migrating) the file; throws RolloutDatabaseError. */
  static open(file: string): SqliteRolloutStore {
    return new SqliteRolloutStore(file, openExclusiveStore(file, { synchronous: 'FULL', migrations, errors: rolloutErrors(file) }));
  }

  list(): Promise<Rollout[]> {
    const rows = this.db.prepare<[], { channel: string; body: string }>('SELECT channel, body FROM rollouts ORDER BY channel').all();
    return Promise.resolve(rows.map((row) => parseStoredRollout(row.body, row.channel)));
  }

  update(channel: string, change: (current: Rollout | undefined) => Rollout | undefined): Promise<Rollout | undefined> {
    try {
      const run = this.db.transaction(() => {
        const row = this.db.prepare<[string], { body: string }>('SELECT body FROM rollouts WHERE channel = ?').get(channel);
        const current = row === undefined ? undefined : parseStoredRollout(row.body, channel);
        const given = current === undefined ? undefined : structuredClone(current);
        const next = change(given);
        if (next === undefined || next === given) return current;
        const body = JSON.stringify(next);
        parseStoredRollout(body, channel);
        this.db
          .prepare(
            'INSERT INTO rollouts (channel, body, updated_at) VALUES (?, ?, ?) ON CONFLICT (channel) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at',
          )
          .run(channel, body, next.updatedAt);
        return next;
      });
      return Promise.resolve(run.immediate());
    } catch (error) {
      return Promise.reject(
        error instanceof Error && !(error as { code?: string }).code?.startsWith('SQLITE') ? error : storeError(error, rolloutErrors(this.file)),
      );
    }
  }

  close(): void {
    this.db.close();
  }
}
