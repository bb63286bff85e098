/**
 * Rollouts in the PostgreSQL database several servers share: the same
 * table as SQLite's. Each change runs in a transaction under an advisory
 * lock per channel, so a ready report counted on one server and a pause
 * given on another both land. Each call takes a connection of its own:
 * a rollout changes a few times per host, and `list` is cached by its
 * caller (rollouts.ts).
 */
import { migrateDatabase, withDatabase } from '../postgres/database.js';
import type { Rollout } from './rollout.js';
import { rolloutTables } from './sqlite-store.js';
import { parseStoredRollout, type RolloutStore } from './store.js';

const migrations: readonly (readonly string[])[] = [rolloutTables];

export const postgresRolloutSchemaVersion = migrations.length;

export class PostgresRolloutStore implements RolloutStore {
  private constructor(private readonly url: string) {}

  /** Brings the tables up to date; throws PostgresDatabaseError naming the database. */
  static async open(url: string): Promise<PostgresRolloutStore> {
    await withDatabase(url, 'rackboot rollouts', (client, database) => migrateDatabase(client, database, 'rollouts', migrations));
    return new PostgresRolloutStore(url);
  }

  list(): Promise<Rollout[]> {
    return withDatabase(this.url, 'rackboot rollouts', async (client) => {
      const rows = await client.query<{ channel: string; body: string }>('SELECT channel, body FROM rollouts ORDER BY channel');
      return rows.rows.map((row) => parseStoredRollout(row.body, row.channel));
    });
  }

  update(channel: string, change: (current: Rollout | undefined) => Rollout | undefined): Promise<Rollout | undefined> {
    return withDatabase(this.url, 'rackboot rollouts', async (client) => {
      await client.query('BEGIN');
      try {
        await client.query("SELECT pg_advisory_xact_lock(hashtext('rackboot rollout ' || $1))", [channel]);
        const row = await client.query<{ body: string }>('SELECT body FROM rollouts WHERE channel = $1', [channel]);
        const current = row.rows[0] === undefined ? undefined : parseStoredRollout(row.rows[0].body, channel);
        const given = current === undefined ? undefined : structuredClone(current);
        const next = change(given);
        if (next === undefined || next === given) {
          await client.query('COMMIT');
          return current;
        }
        const body = JSON.stringify(next);
        parseStoredRollout(body, channel);
        await client.query(
          'INSERT INTO rollouts (channel, body, updated_at) VALUES ($1, $2, $3) ON CONFLICT (channel) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at',
          [channel, body, next.updatedAt],
        );
        await client.query('COMMIT');
        return next;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  close(): void {}
}
