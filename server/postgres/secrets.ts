/**
 * Secrets several servers must agree on, kept in the database they share:
 * the key host tokens are signed with (a token one server gave a host is
 * good at every server) and the admin API's token. Made once by whichever
 * server comes first (INSERT ... ON CONFLICT DO NOTHING), read by the others.
 */
import { randomBytes } from 'node:crypto';
import { migrateDatabase, withDatabase } from './database.js';

const migrations: readonly string[][] = [
  [
    `CREATE TABLE secrets (
       name TEXT NOT NULL PRIMARY KEY,
       value TEXT NOT NULL,
       created_at BIGINT NOT NULL
     )`,
  ],
];

export const secretsSchemaVersion = migrations.length;

export interface SharedSecret {
  name: string;
  value: string;
  /** True when this call made it. */
  created: boolean;
}

/** The secrets called `names`, each made (32 random bytes, base64url) if the database has none yet. Throws PostgresDatabaseError. */
export async function loadOrCreateSharedSecrets(url: string, names: readonly string[]): Promise<SharedSecret[]> {
  return withDatabase(url, 'rackboot secrets', async (client, database) => {
    await migrateDatabase(client, database, 'secrets', migrations);
    const secrets: SharedSecret[] = [];
    for (const name of names) {
      const made = await client.query('INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [
        name,
        randomBytes(32).toString('base64url'),
        Date.now(),
      ]);
      const row = await client.query<{ value: string }>('SELECT value FROM secrets WHERE name = $1', [name]);
      secrets.push({ name, value: row.rows[0]!.value, created: made.rowCount === 1 });
    }
    return secrets;
  });
}
