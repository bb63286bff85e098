/**
 * A PostgreSQL database shared by several rackboot servers (`serve
 * --database postgres://…`): how it is named in messages, how it is
 * reached, and what went wrong in words an admin can act on.
 *
 * The password never appears in a message or a log line: the database is
 * named by its URL with the password left out.
 */
import pg from 'pg';
import { readPgpassPassword } from './pgpass.js';

/** UNREACHABLE: no answer at the address; CREDENTIALS: the login was refused; NO_DATABASE: no such database; NEWER_SCHEMA; QUERY: anything else. */
export type DatabaseFailure = 'UNREACHABLE' | 'CREDENTIALS' | 'NO_DATABASE' | 'NEWER_SCHEMA' | 'QUERY';

export class PostgresDatabaseError extends Error {
  override readonly name = 'PostgresDatabaseError';
  constructor(
    /** The database's URL without its password. */
    readonly database: string,
    readonly code: DatabaseFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`database ${database}: ${message}`, options);
  }
}

/** "postgres://rackboot:secret@db:5432/rackboot" -> "postgres://rackboot@db:5432/rackboot". Throws on what is not a postgres:// URL. */
export function describeDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`--database: "${redactPassword(url)}" is not a URL (want postgres://USER:PASSWORD@HOST:PORT/DATABASE)`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new Error(`--database: "${redactPassword(url)}" is not a postgres:// URL (SQLite in the state folder is the default; leave --database out for it)`);
  }
  parsed.password = '';
  return parsed.toString();
}

/** Leaves the password out of what may not even parse as a URL. */
function redactPassword(text: string): string {
  return text.replace(/^([a-z]+:\/\/[^:/@]*):[^@]*@/i, '$1@');
}

/** The libpq-style codes pg's errors carry, as this module's failures. */
export function databaseFailure(error: unknown): DatabaseFailure {
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'ECONNRESET') {
    return 'UNREACHABLE';
  }
  if (code === 'EAI_AGAIN' || code === '57P01' || code === '57P02' || code === '57P03' || code === '08006' || code === '08001' || code === '08003')
    return 'UNREACHABLE';
  if (code === '28P01' || code === '28000') return 'CREDENTIALS';
  if (code === '3D000') return 'NO_DATABASE';
  const message = error instanceof Error ? error.message : '';
  if (/timeout|Connection terminated|connect ETIMEDOUT/i.test(message)) return 'UNREACHABLE';
  return 'QUERY';
}

/** What pg threw, as an error naming the database and saying what to check. */
export function asDatabaseError(database: string, error: unknown): PostgresDatabaseError {
  if (error instanceof PostgresDatabaseError) return error;
  const failure = databaseFailure(error);
  const message = error instanceof Error ? error.message : String(error);
  const what: Record<DatabaseFailure, string> = {
    UNREACHABLE: `unreachable (${message}); is PostgreSQL running there, and does the network reach it?`,
    CREDENTIALS: `refused the credentials (${message}); check the user, and the password in the URL or the pgpass file (PGPASSFILE)`,
    NO_DATABASE: `does not exist (${message}); create it (createdb) and give the URL's user its ownership`,
    NEWER_SCHEMA: message,
    QUERY: message,
  };
  return new PostgresDatabaseError(database, failure, what[failure], { cause: error });
}

export interface ConnectOptions {
  /** How long a connection attempt may take; default 5000 ms. */
  connectTimeoutMs?: number;
  /** Named in pg_stat_activity. */
  applicationName?: string;
  /**
   * How long a query may wait for its answer; default 5000 ms. A cut link
   * gives no error, only silence: without this a commit would wait for
   * TCP to give up, minutes later, and DHCP with it.
   */
  queryTimeoutMs?: number;
}

/** The password for a client's connection from the pgpass file; an error that names the file and the connection when it has none. */
async function passwordFromFile(client: pg.Client): Promise<string> {
  const { host, port, database, user } = client as unknown as { host: string; port: number; database: string; user: string };
  const { file, password } = await readPgpassPassword({ host, port, database, user });
  if (password !== undefined) return password;
  throw Object.assign(new Error(`the server wants a password for ${user}@${host}:${port}/${database}; the URL has none and ${file} has no line for it`), {
    code: '28P01',
  });
}

/** One connection to the database, or the reason there is none (PostgresDatabaseError). */
export async function connectDatabase(url: string, options: ConnectOptions = {}): Promise<pg.Client> {
  const database = describeDatabaseUrl(url);
  const client: pg.Client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    application_name: options.applicationName ?? 'rackboot',
    query_timeout: options.queryTimeoutMs ?? 5000,
    // Keep-alives notice a peer that vanished without a word (a cut link).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // Without a password in the URL (or PGPASSWORD), the pgpass file's, asked for only when the server wants one.
  const parameters = client as unknown as { password: unknown };
  if (parameters.password === null || parameters.password === undefined || parameters.password === '') {
    parameters.password = async () => passwordFromFile(client);
  }
  try {
    await client.connect();
    return client;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw asDatabaseError(database, error);
  }
}

/**
 * One piece of work on a connection of its own (the commands that read or
 * write the database once: leases, hosts, profiles import and export, the
 * shared secrets), closed after it; what fails comes back naming the
 * database. A table no server has made yet (42P01) gives `whenNoTable`'s
 * answer, when there is one.
 */
export async function withDatabase<T>(
  url: string,
  applicationName: string,
  work: (client: pg.Client, database: string) => Promise<T>,
  whenNoTable?: (database: string, error: unknown) => T,
): Promise<T> {
  const database = describeDatabaseUrl(url);
  const client = await connectDatabase(url, { applicationName });
  try {
    return await work(client, database);
  } catch (error) {
    if (whenNoTable !== undefined && (error as { code?: unknown }).code === '42P01') return whenNoTable(database, error);
    throw asDatabaseError(database, error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * For `serve --check`: connects as serve would, and compares each store's
 * schema version in the database with the versions this rackboot knows
 * (`known`, by store). Makes and changes nothing. Returns the problems,
 * each naming the database (none: it would be used as it is, or set up).
 */
export async function checkDatabase(url: string, known: Readonly<Record<string, number>>): Promise<string[]> {
  try {
    return await withDatabase(url, 'rackboot serve --check', async (client, database) => {
      const exists = await client.query<{ found: string | null }>("SELECT to_regclass('schema_versions') AS found");
      if (exists.rows[0]?.found === null) return [];
      const rows = await client.query<{ store: string; version: number }>('SELECT store, version FROM schema_versions');
      return rows.rows
        .filter((row) => known[row.store] !== undefined && row.version > known[row.store]!)
        .map(
          (row) =>
            `database ${database}: the ${row.store} tables are at schema version ${row.version}, written by a newer rackboot (this one knows up to ${known[row.store]})`,
        );
    });
  } catch (error) {
    return [(error as Error).message];
  }
}

/**
 * Brings one store's tables in the database to the newest schema, the
 * versions kept per store in `schema_versions`. Several servers may start
 * at once: a transaction-scoped advisory lock lets one migrate while the
 * others wait and then find nothing left to do. A database migrated by a
 * newer rackboot is refused.
 */
export async function migrateDatabase(
  client: { query: pg.Client['query'] } | { query(text: string, values?: unknown[]): Promise<pg.QueryResult> },
  database: string,
  store: string,
  migrations: readonly (readonly string[])[],
): Promise<void> {
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('rackboot schema'))");
    await client.query('CREATE TABLE IF NOT EXISTS schema_versions (store TEXT NOT NULL PRIMARY KEY, version INTEGER NOT NULL)');
    const found = await client.query<{ version: number }>('SELECT version FROM schema_versions WHERE store = $1', [store]);
    let version = found.rows[0]?.version ?? 0;
    if (version > migrations.length) {
      throw new PostgresDatabaseError(
        database,
        'NEWER_SCHEMA',
        `the ${store} tables are at schema version ${version}, written by a newer rackboot (this one knows up to ${migrations.length})`,
      );
    }
    for (; version < migrations.length; version++) {
      for (const statement of migrations[version]!) await client.query(statement);
    }
    await client.query('INSERT INTO schema_versions (store, version) VALUES ($1, $2) ON CONFLICT (store) DO UPDATE SET version = EXCLUDED.version', [
      store,
      version,
    ]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw asDatabaseError(database, error);
  }
}
