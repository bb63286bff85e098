import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCommand } from './run.js';
import { until } from './until.js';

/**
 * A real PostgreSQL server (Debian's postgresql-15) for the tests: a cluster
 * of its own in a temporary folder, run as the `postgres` user (the server
 * refuses root), listening on a Unix socket in that folder and on one TCP
 * address (loopback unless the test gives a namespace's). Every login needs
 * the password (scram-sha-256), so a test can also be refused.
 */

const BIN = '/usr/lib/postgresql/15/bin';
const USER = 'postgres';
export const POSTGRES_PASSWORD = 'rackboot-test-password';

export interface TestPostgres {
  readonly dir: string;
  readonly host: string;
  readonly port: number;
  /** postgres://rackboot:…@host:port/NAME */
  url(database?: string, password?: string): string;
  /** The same through the server's Unix socket, which reaches it from any network namespace. */
  socketUrl(database?: string): string;
  /** Makes an empty database owned by rackboot; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL in a database with psql; returns its output (tuples only, unaligned). */
  psql(database: string, sql: string): Promise<string>;
  /** Stops the server (fast shutdown) and starts it again on the same folder and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** The server's process (for kill -9). */
  readonly process: ChildProcess | undefined;
  close(): Promise<void>;
}

function asPostgres(netns: string | undefined, command: string, args: string[]): { command: string; args: string[] } {
  const become = ['--reuid', USER, '--regid', USER, '--init-groups', command, ...args];
  return netns === undefined ? { command: 'setpriv', args: become } : { command: 'ip', args: ['netns', 'exec', netns, 'setpriv', ...become] };
}

export function assertPostgres(): void {
  if (!existsSync(join(BIN, 'postgres')))
    throw new Error(`PostgreSQL 15 is not installed (${BIN}/postgres): bash builder/install-deps.sh --test installs postgresql-15`);
}

/**
 * Starts a cluster; `host` is the TCP address it listens on (default
 * 127.0.0.1) and URLs name, `listen` every address it listens on (default
 * `host`), inside `netns` when given. psql and socketUrl() reach it through
 * its Unix socket from any namespace.
 */
export async function startPostgres(options: { host?: string; listen?: string; port?: number; netns?: string } = {}): Promise<TestPostgres> {
  assertPostgres();
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-pg-'));
  const host = options.host ?? '127.0.0.1';
  // Below Linux's ephemeral range (32768-60999), where the tests' own outgoing connections take their ports.
  const pickPort = () => 20000 + Math.floor(Math.random() * 12000);
  let port = options.port ?? pickPort();
  const data = join(dir, 'data');
  const { uid, gid } = await idsOf(USER);
  await chown(dir, uid, gid);
  await writeFile(join(dir, 'pwfile'), `${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
  await chown(join(dir, 'pwfile'), uid, gid);
  const init = asPostgres(undefined, join(BIN, 'initdb'), [
    '-D',
    data,
    '-U',
    'rackboot',
    `--pwfile=${join(dir, 'pwfile')}`,
    '--auth=scram-sha-256',
    '--encoding=UTF8',
    '--locale=C',
    '--no-instructions',
  ]);
  const made = await runCommand(init.command, init.args, { timeoutMs: 120_000, what: 'initdb' });
  if (made.code !== 0) throw new Error(`initdb failed (${made.code}): ${made.stderr}${made.stdout}`);
  // Logins over TCP from the tests' namespaces too (198.18.0.0/15), with the password.
  await appendFile(join(data, 'pg_hba.conf'), 'host all all 198.18.0.0/15 scram-sha-256\n');

  let server: ChildProcess | undefined;
  let log = '';
  const start = async (): Promise<void> => {
    const run = asPostgres(options.netns, join(BIN, 'postgres'), [
      '-D',
      data,
      '-k',
      dir,
      '-p',
      String(port),
      '-c',
      `listen_addresses=${options.listen ?? host}`,
      '-c',
      'max_connections=200',
    ]);
    log = '';
    const child = spawn(run.command, run.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
    server = child;
    await until(
      `PostgreSQL on ${host}:${port} accepting connections`,
      60_000,
      async () => {
        if (child.exitCode !== null) throw new Error(`postgres exited (${child.exitCode}): ${log}`);
        const ready = await runCommand(join(BIN, 'pg_isready'), ['-q', '-h', dir, '-p', String(port)]);
        return ready.code === 0 ? true : undefined;
      },
      () => log,
    );
  };
  const stop = async (): Promise<void> => {
    const child = server;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGINT');
    await exited;
  };
  // A port some other process holds (another test's server) is no failure of
  // PostgreSQL's: the first start tries again on another, unless one was asked for.
  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (error) {
      if (options.port !== undefined || attempt === 5 || !log.includes('Address already in use')) throw error;
      port = pickPort();
    }
  }

  const url = (database = 'rackboot', password = POSTGRES_PASSWORD) =>
    `postgres://rackboot:${encodeURIComponent(password)}@${host}:${port}/${encodeURIComponent(database)}`;
  const psql = async (database: string, sql: string): Promise<string> => {
    const result = await runCommand(
      'psql',
      ['-X', '-q', '-t', '-A', '-v', 'ON_ERROR_STOP=1', '-h', dir, '-p', String(port), '-U', 'rackboot', '-d', database, '-c', sql],
      {
        env: { PGPASSWORD: POSTGRES_PASSWORD },
        timeoutMs: 60_000,
      },
    );
    if (result.code !== 0) throw new Error(`psql ${database}: ${sql}: ${result.stderr}`);
    return result.stdout.trim();
  };
  return {
    dir,
    host,
    port,
    url,
    socketUrl: (database = 'rackboot') => `${url(database).replace(/@[^/]*\//, `@localhost:${port}/`)}?host=${encodeURIComponent(dir)}`,
    get process() {
      return server;
    },
    async createDatabase(name: string) {
      await psql('postgres', `CREATE DATABASE "${name}"`);
      return url(name);
    },
    psql,
    async restart() {
      await stop();
      await start();
    },
    stop,
    start,
    async close() {
      server?.kill('SIGKILL');
      if (server !== undefined && server.exitCode === null && server.signalCode === null) await new Promise((resolve) => server!.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function idsOf(user: string): Promise<{ uid: number; gid: number }> {
  const uid = await runCommand('id', ['-u', user]);
  const gid = await runCommand('id', ['-g', user]);
  if (uid.code !== 0 || gid.code !== 0) throw new Error(`no user ${user}: PostgreSQL's package makes it (${uid.stderr.trim()})`);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** A test file's PostgreSQL with one database, in which each store gets a schema of its own (so each starts empty). */
export interface SchemaDatabase {
  readonly server: TestPostgres;
  readonly url: string;
  /** The test's own connection, for reading and writing behind the stores' backs. */
  readonly admin: pg.Client;
  /** A new empty schema, and the database's URL with it as the search path. */
  schema(prefix: string): Promise<{ schema: string; url: string }>;
  /** Stops PostgreSQL (the test's connection first); start() brings both back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startSchemaDatabase(name: string): Promise<SchemaDatabase> {
  const server = await startPostgres();
  const url = await server.createDatabase(name);
  const connect = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return client;
  };
  let admin = await connect();
  let schemas = 0;
  return {
    server,
    url,
    get admin() {
      return admin;
    },
    async schema(prefix: string) {
      const schema = `${prefix}_${++schemas}`;
      await admin.query(`CREATE SCHEMA ${schema}`);
      return { schema, url: `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}` };
    },
    async stop() {
      await admin.end();
      await server.stop();
    },
    async start() {
      await server.start();
      admin = await connect();
    },
    async close() {
      await admin.end().catch(() => undefined);
      await server.close();
    },
  };
}
