/**
 * Profiles kept in the PostgreSQL database several servers share (`serve
 * --database`): one row per profile file, its YAML as written. Each server
 * keeps a copy of them as files in a folder of its own (`<state>/profiles`)
 * and serves that folder as it serves any profile folder, with the same
 * parser, the same line-precise errors and the same rule that a bad file
 * never replaces the last good one. A change (the admin API on any server,
 * `rackboot profiles import`) is written to the database and notified
 * (rackboot_profiles); every server writes the changed file into its copy
 * and reads its profiles again.
 */
import { readdir, readFile, rm, writeFile as writeFileRaw } from 'node:fs/promises';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateProfiles } from './validate.js';
import { writeAtomically } from './write-atomically.js';
import { DatabaseConnection, DatabaseListener } from '../postgres/connection.js';
import { asDatabaseError, describeDatabaseUrl, migrateDatabase, withDatabase } from '../postgres/database.js';

const CHANNEL = 'rackboot_profiles';

const migrations: readonly string[][] = [
  [
    `CREATE TABLE profiles (
       name TEXT NOT NULL PRIMARY KEY,
       text TEXT NOT NULL,
       updated_at BIGINT NOT NULL
     )`,
  ],
];

export const postgresProfilesSchemaVersion = migrations.length;

const isProfileFile = (name: string) => /\.ya?ml$/.test(name);

export interface DatabaseProfilesOptions {
  /** The copy changed (another server's edit, or this one's): read the folder again. */
  onChange: (names: readonly string[]) => Promise<void> | void;
  onProblem?: (message: string, error: unknown) => void;
}

export class DatabaseProfiles {
  private tail: Promise<void> = Promise.resolve();

  private listener: DatabaseListener | undefined;

  private constructor(
    private readonly client: DatabaseConnection,
    /** The folder this server serves its copy from. */
    readonly folder: string,
    private readonly options: DatabaseProfilesOptions,
  ) {}

  /** The database's URL without its password. */
  get database(): string {
    return this.client.database;
  }

  /** Connects, brings the table to the newest schema and makes `folder` hold exactly the database's profiles. Throws PostgresDatabaseError. */
  static async open(url: string, folder: string, options: DatabaseProfilesOptions): Promise<DatabaseProfiles> {
    mkdirSync(folder, { recursive: true, mode: 0o755 });
    const client = new DatabaseConnection(url, 'rackboot profiles');
    try {
      await migrateDatabase(client, client.database, 'profiles', migrations);
      const profiles = new DatabaseProfiles(client, folder, options);
      profiles.listener = await DatabaseListener.open(url, CHANNEL, {
        applicationName: 'rackboot profile changes',
        onNotification: (payload) => void profiles.copyInTurn(payload === '*' ? undefined : [payload]),
        // Changes made while the connection was lost were not notified: copy everything again.
        onReconnected: () => void profiles.copyInTurn(undefined),
        ...(options.onProblem ? { onProblem: options.onProblem } : {}),
      });
      await profiles.copy(undefined);
      return profiles;
    } catch (error) {
      await client.end();
      throw asDatabaseError(client.database, error);
    }
  }

  /** Saves a profile file (already checked by the caller) for every server; resolves once this server's copy has it. */
  async save(name: string, text: string): Promise<void> {
    try {
      await this.client.query(
        `WITH saved AS (
           INSERT INTO profiles (name, text, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (name) DO UPDATE SET text = EXCLUDED.text, updated_at = EXCLUDED.updated_at RETURNING 1)
         SELECT pg_notify($4, $1)`,
        [name, text, Date.now(), CHANNEL],
      );
    } catch (error) {
      throw asDatabaseError(this.database, error);
    }
    await this.copyInTurn([name]);
  }

  /** Deletes a profile file for every server; resolves once this server's copy has lost it. */
  async remove(name: string): Promise<void> {
    try {
      await this.client.query('WITH gone AS (DELETE FROM profiles WHERE name = $1 RETURNING 1) SELECT pg_notify($2, $1)', [name, CHANNEL]);
    } catch (error) {
      throw asDatabaseError(this.database, error);
    }
    await this.copyInTurn([name]);
  }

  async close(): Promise<void> {
    await this.tail;
    await Promise.all([this.client.end(), this.listener?.end()]);
  }

  private copyInTurn(names: readonly string[] | undefined): Promise<void> {
    const done = this.tail.then(() => this.copy(names));
    this.tail = done.catch((error: unknown) => this.options.onProblem?.(`profiles not copied from ${this.database}`, error));
    return done;
  }

  /** The named files (undefined: all of them) as the database has them now, into the folder; then the server reads them. */
  private async copy(names: readonly string[] | undefined): Promise<void> {
    const rows =
      names === undefined
        ? await this.client.query<{ name: string; text: string }>('SELECT name, text FROM profiles')
        : await this.client.query<{ name: string; text: string }>('SELECT name, text FROM profiles WHERE name = ANY($1)', [names]);
    const found = new Map(rows.rows.map((row) => [row.name, row.text]));
    const gone =
      names === undefined ? (await readdir(this.folder)).filter((name) => isProfileFile(name) && !found.has(name)) : names.filter((name) => !found.has(name));
    for (const [name, text] of found) {
      if (!isProfileFile(name) || name.includes('/')) continue;
      await writeAtomically(join(this.folder, name), text);
    }
    for (const name of gone) await rm(join(this.folder, name), { force: true });
    await this.options.onChange([...found.keys(), ...gone]);
  }
}

/**
 * `rackboot profiles import DIR`: the folder checked as the server checks a
 * profile folder (validateProfiles); with no problem, every profile file
 * of it into the database in one transaction, else nothing.
 */
export async function importFolderToDatabase(url: string, dir: string): Promise<{ problems: string[]; summary: string }> {
  const report = await validateProfiles(dir);
  if (report.problems.length > 0) return { problems: report.problems, summary: `${report.summary}; nothing imported` };
  const names = (await readdir(dir)).filter((name) => isProfileFile(name) && !name.startsWith('.')).sort();
  const files = await Promise.all(names.map(async (name) => ({ name, text: await readFile(join(dir, name), 'utf8') })));
  await importProfiles(url, files);
  return { problems: [], summary: `${files.length} profile file${files.length === 1 ? '' : 's'} imported into ${describeDatabaseUrl(url)}` };
}

/** Every profile file given into the database, in one transaction (the caller has checked them). */
export async function importProfiles(url: string, files: ReadonlyArray<{ name: string; text: string }>): Promise<void> {
  await withDatabase(url, 'rackboot profiles import', async (client, database) => {
    await migrateDatabase(client, database, 'profiles', migrations);
    try {
      await client.query('BEGIN');
      for (const file of files) {
        await client.query(
          'INSERT INTO profiles (name, text, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET text = EXCLUDED.text, updated_at = EXCLUDED.updated_at',
          [file.name, file.text, Date.now()],
        );
      }
      await client.query('SELECT pg_notify($1, $2)', [CHANNEL, '*']);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  });
}

/** `rackboot profiles export DIR`: every profile of the database as a file of the folder; returns the names written. */
export async function exportProfiles(url: string, folder: string): Promise<string[]> {
  return withDatabase(
    url,
    'rackboot profiles export',
    async (client) => {
      const rows = await client.query<{ name: string; text: string }>('SELECT name, text FROM profiles ORDER BY name');
      mkdirSync(folder, { recursive: true });
      for (const row of rows.rows) await writeFileRaw(join(folder, row.name), row.text);
      return rows.rows.map((row) => row.name);
    },
    () => [],
  );
}
