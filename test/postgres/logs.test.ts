import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { PostgresLogStore, postgresLogSchemaVersion } from '../../server/logs/postgres-store.js';
import type { LogLine, NewLogLine } from '../../server/logs/store.js';
import { checkDatabase, PostgresDatabaseError } from '../../server/postgres/database.js';
import { logStoreContract } from '../logs/log-store-contract.js';
import { startSchemaDatabase, type SchemaDatabase } from '../support/postgres.js';
import { until } from '../support/until.js';

/**
 * PostgresLogStore against a real PostgreSQL 15 started for this file: the
 * HostLogStore contract (each store in a schema of its own, the tables'
 * counts checked against their lines after every test), and two servers
 * on one log. Needs root and postgresql-15; fails without them.
 */

let db: SchemaDatabase;

before(async () => {
  db = await startSchemaDatabase('logs');
});

after(async () => {
  await db?.close();
});

const schemas = new WeakMap<PostgresLogStore, { schema: string; url: string }>();

async function openInSchema(): Promise<PostgresLogStore> {
  const where = await db.schema('l');
  const store = await PostgresLogStore.open(where.url);
  schemas.set(store, where);
  return store;
}

/** Rows of `sql` (with SCHEMA for the store's schema) that should not be there. */
async function strays(store: PostgresLogStore, sql: string): Promise<unknown[]> {
  return (await db.admin.query(sql.replaceAll('SCHEMA', schemas.get(store)!.schema))).rows;
}

logStoreContract('PostgresLogStore', openInSchema, {
  verify: async (store) => {
    assert.deepEqual(
      await strays(
        store,
        `SELECT b.mac, b.boot, b.lines, b.bytes, COUNT(l.id) AS counted, COALESCE(SUM(l.bytes), 0) AS summed
         FROM SCHEMA.log_boots b LEFT JOIN SCHEMA.log_lines l ON l.mac = b.mac AND l.boot = b.boot
         GROUP BY b.mac, b.boot, b.lines, b.bytes HAVING b.lines <> COUNT(l.id) OR b.bytes <> COALESCE(SUM(l.bytes), 0)`,
      ),
      [],
      "each boot's counts are its lines'",
    );
    assert.deepEqual(
      await strays(
        store,
        `SELECT h.mac, h.newest_line, l.id FROM SCHEMA.log_hosts h LEFT JOIN (SELECT mac, MAX(id) AS id FROM SCHEMA.log_lines GROUP BY mac) l ON l.mac = h.mac
         WHERE h.newest_line IS DISTINCT FROM l.id`,
      ),
      [],
      "each host's newest line is its line with the greatest id",
    );
    assert.deepEqual(
      await strays(store, 'SELECT id, bytes, octet_length(text) FROM SCHEMA.log_lines WHERE bytes <> octet_length(text)'),
      [],
      'bytes as PostgreSQL counts them',
    );
    assert.deepEqual(await strays(store, "SELECT version FROM SCHEMA.schema_versions WHERE store = 'logs'"), [{ version: postgresLogSchemaVersion }]);
  },
  reopen: async (store) => PostgresLogStore.open(schemas.get(store)!.url),
  propertyRuns: (runs) => Math.ceil(runs / 5),
});

const host = '52:54:00:12:34:56';
const t0 = 1_700_000_000_000;

test('two servers on one log: boots numbered once for the site, and a follower on one misses none of the lines both commit at once', async () => {
  const { url } = await db.schema('l');
  const a = await PostgresLogStore.open(url);
  const b = await PostgresLogStore.open(url);
  try {
    assert.equal(await a.startBoot(host, t0), 1);
    assert.equal(await b.startBoot(host, t0 + 1), 2);
    const numbers = await Promise.all([a, b, a, b, a, b].map((store, i) => store.startBoot(host, t0 + 2 + i)));
    assert.deepEqual(
      [...numbers].sort((x, y) => x - y),
      [3, 4, 5, 6, 7, 8],
      'each boot number given once',
    );
    assert.equal(await a.currentBoot(host), 8);

    const batch = (server: string, round: number): NewLogLine[] =>
      Array.from({ length: 1 + (round % 4) }, (_, i) => ({ mac: host, boot: 8, receivedAt: t0 + round, source: 'syslog', text: `${server} ${round}.${i}` }));
    const read: LogLine[] = [];
    // Ids start at 1: a follower from the start asks for what is after 0.
    const follow = async () => {
      for (;;) {
        const page = await a.list(host, { sinceId: read.at(-1)?.id ?? 0, limit: 5 });
        read.push(...page);
        if (page.length < 5) return;
      }
    };
    for (let round = 0; round < 20; round++) await Promise.all([a.append(batch('a', round)), b.append(batch('b', round)), follow()]);
    await follow();
    const all = await b.list(host);
    assert.equal(all.length, 2 * [...Array(20).keys()].reduce((sum, round) => sum + 1 + (round % 4), 0));
    assert.deepEqual(read, all, "the follower on A read B's lines and its own, each once, in id order");
    assert.equal(new Set(all.map((line) => line.id)).size, all.length, 'ids never collide across servers');
  } finally {
    await a.close();
    await b.close();
  }
});

test("an append waits while another server's write holds the logs' lock, so ids commit in order and a follower skips none", async () => {
  const store = await openInSchema();
  const follower = await PostgresLogStore.open(schemas.get(store)!.url);
  const { schema } = schemas.get(store)!;
  try {
    const [first] = await store.append([{ mac: host, boot: 1, receivedAt: t0, source: 'syslog', text: 'first' }]);
    // Another server beginning an append: it holds the lock, and takes its id only after this server has asked for one.
    await db.admin.query('BEGIN');
    let taken: number;
    try {
      await db.admin.query("SELECT pg_advisory_xact_lock(hashtext('rackboot logs'))");
      let mine: LogLine[] | undefined;
      const appending = store.append([{ mac: host, boot: 1, receivedAt: t0 + 2, source: 'syslog', text: 'mine' }]).then((lines) => (mine = lines));
      await delay(500);
      assert.equal(mine, undefined, 'the append waits for the lock');
      taken = Number((await db.admin.query<{ id: string }>(`SELECT nextval('${schema}.log_line_ids') AS id`)).rows[0]!.id);
      await db.admin.query(
        `INSERT INTO ${schema}.log_lines (id, mac, boot, received_at, source, text, bytes) VALUES ($1, $2, 1, $3, 'syslog', 'from the other server', 21)`,
        [taken, host, t0 + 1],
      );
      await db.admin.query(`UPDATE ${schema}.log_boots SET lines = lines + 1, bytes = bytes + 21 WHERE mac = $1 AND boot = 1`, [host]);
      await db.admin.query(`UPDATE ${schema}.log_hosts SET newest_line = $1 WHERE mac = $2`, [taken, host]);
      assert.deepEqual(await follower.list(host, { sinceId: first!.id }), [], 'nothing committed after the first line yet');
      await db.admin.query('COMMIT');
      await appending;
      assert.ok(mine![0]!.id > taken, `the id taken after the lock (${mine![0]!.id}) is above the other server's (${taken})`);
    } catch (error) {
      await db.admin.query('ROLLBACK');
      throw error;
    }
    assert.deepEqual(
      (await follower.list(host, { sinceId: first!.id })).map((line) => line.text),
      ['from the other server', 'mine'],
    );
  } finally {
    await store.close();
    await follower.close();
  }
});

test('a prune of more lines than one step deletes them all, in steps', async () => {
  const store = await openInSchema();
  try {
    const count = 12_345;
    const lines = await store.append(
      Array.from({ length: count }, (_, i) => ({ mac: host, boot: 1, receivedAt: t0 + i, source: 'guest', text: 'ten bytes!' })),
    );
    await store.append([{ mac: '52:54:00:00:00:02', boot: 1, receivedAt: t0, source: 'guest', text: 'other' }]);
    assert.equal(await store.prune({ maxBytesPerHost: 100 }), count - 10);
    assert.deepEqual(await store.list(host), lines.slice(-10));
    assert.equal(await store.prune({ before: t0 + count }), 9, "all but the host's newest; the other host's only line stays");
    assert.deepEqual(await store.stats(), { hosts: 2, lines: 2, bytes: 15 });
  } finally {
    await store.close();
  }
});

test('tables a newer rackboot made are refused by open and named by serve --check', async () => {
  const store = await openInSchema();
  const { schema, url } = schemas.get(store)!;
  await store.close();
  await db.admin.query(`UPDATE ${schema}.schema_versions SET version = $1 WHERE store = 'logs'`, [postgresLogSchemaVersion + 1]);
  await assert.rejects(PostgresLogStore.open(url), (error: unknown) => {
    assert.ok(error instanceof PostgresDatabaseError);
    assert.equal(error.code, 'NEWER_SCHEMA');
    assert.match(error.message, new RegExp(`the logs tables are at schema version ${postgresLogSchemaVersion + 1}, written by a newer rackboot`));
    return true;
  });
  const problems = await checkDatabase(url, { logs: postgresLogSchemaVersion });
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /the logs tables are at schema version/);
});

test('calls while PostgreSQL is down fail naming the database; once it is back the same store answers again', async () => {
  const store = await openInSchema();
  try {
    const boot = await store.startBoot(host, t0);
    const kept = await store.append([{ mac: host, boot, receivedAt: t0, source: 'syslog', text: 'before the restart' }]);
    await db.stop();
    await assert.rejects(store.append([{ mac: host, boot, receivedAt: t0 + 1, source: 'syslog', text: 'lost' }]), (error: unknown) => {
      assert.ok(error instanceof PostgresDatabaseError);
      assert.equal(error.code, 'UNREACHABLE');
      assert.ok(!error.message.includes('rackboot-test-password'), error.message);
      return true;
    });
    await db.start();
    const again = await until(
      'the store answering after the restart',
      30_000,
      async () => store.append([{ mac: host, boot, receivedAt: t0 + 2, source: 'syslog', text: 'after the restart' }]).catch(() => undefined),
      () => '',
    );
    assert.deepEqual(await store.list(host), [...kept, ...again], 'the refused line is not there');
  } finally {
    await store.close();
  }
});
