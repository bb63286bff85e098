import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LeaseConflictError, PartialCommitError, type Lease } from '../../server/dhcp/leases/leases.js';
import { PostgresLeaseStore, postgresLeaseMigrations, postgresLeaseSchemaVersion, readLeaseDatabase } from '../../server/dhcp/leases/postgres.js';
import { renderLeaseTable } from '../../server/dhcp/leases/table.js';
import { DatabaseConnection } from '../../server/postgres/connection.js';
import { migrateDatabase, PostgresDatabaseError } from '../../server/postgres/database.js';
import { POSTGRES_PASSWORD, startSchemaDatabase, type SchemaDatabase } from '../support/postgres.js';
import { until } from '../support/until.js';
import { leaseStoreContract } from './lease-store-contract.js';

/**
 * PostgresLeaseStore against a real PostgreSQL 15 started for this file:
 * the LeaseStore contract (each store in a schema of its own, the database's
 * rows checked against the store's view after every test), two stores on
 * one table as two servers, and what an admin sees when the database is
 * unreachable, refuses the login or is newer. Needs root and Debian's
 * postgresql-15; without them the tests fail.
 */

const t0 = 1_700_000_000_000;
let db: SchemaDatabase;

before(async () => {
  db = await startSchemaDatabase('leases');
});

after(async () => {
  await db?.close();
});

interface SchemaStore extends PostgresLeaseStore {
  schema?: string;
}

/** A store in a new schema of the test database (search_path), so each starts empty. */
async function openInSchema(): Promise<SchemaStore> {
  const { schema, url } = await db.schema('contract');
  const store: SchemaStore = await PostgresLeaseStore.open(url);
  store.schema = schema;
  return store;
}

async function rowsOf(schema: string): Promise<Lease[]> {
  const result = await db.admin.query<{ address: string; mac: string; state: Lease['state']; expires_at: string; hostname: string | null }>(
    `SELECT address, mac, state, expires_at, hostname FROM ${schema}.leases ORDER BY address`,
  );
  return result.rows.map((row) => ({
    mac: row.mac,
    address: row.address,
    state: row.state,
    expiresAt: Number(row.expires_at),
    ...(row.hostname === null ? {} : { hostname: row.hostname }),
  }));
}

leaseStoreContract('PostgresLeaseStore', openInSchema, {
  verify: async (store) => {
    await store.flush();
    assert.deepEqual(await rowsOf(store.schema!), store.all(), "the database's rows are the store's view");
  },
  close: (store) => store.close(),
  propertyRuns: (runs) => Math.ceil(runs / 10),
});

const lease = (mac: string, address: string, state: Lease['state'], expiresAt: number): Lease => ({ mac, address, state, expiresAt });

describe('PostgresLeaseStore: two servers on one table', () => {
  test("one server's changes reach the other's view; the database refuses an address the other holds even when the view did not know", async () => {
    const { schema, url: shared } = await db.schema('shared');
    const a = await PostgresLeaseStore.open(shared);
    const b = await PostgresLeaseStore.open(shared);
    try {
      await a.transactionSyncedLater(() => a.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0)).synced;
      await until(
        "server B's view holding A's lease",
        5000,
        () => (b.byAddress('198.18.0.100')?.mac === '02:00:00:00:00:01' ? true : undefined),
        () => JSON.stringify(b.all()),
      );

      // Written behind both views' backs: B offers the address anyway, and the database says no.
      await db.admin.query(`INSERT INTO ${schema}.leases (address, mac, state, expires_at) VALUES ('198.18.0.101', '02:00:00:00:00:02', 'bound', $1)`, [
        t0 + 3_600_000,
      ]);
      const { synced } = b.transactionSyncedLater(() => b.upsert(lease('02:00:00:00:00:03', '198.18.0.101', 'offered', t0 + 60_000), t0));
      await assert.rejects(
        synced,
        (error: unknown) => error instanceof LeaseConflictError && error.heldBy.mac === '02:00:00:00:00:02',
        'refused by the database',
      );
      await b.flush();
      assert.equal(b.byAddress('198.18.0.101')?.mac, '02:00:00:00:00:02', 'the refused change is replaced by what the database holds');
      assert.equal(b.byMac('02:00:00:00:00:03'), undefined);

      // B reclaims what it saw as an offer, but the database has it bound since (behind B's back): the bound lease stays.
      await db.admin.query(`INSERT INTO ${schema}.leases (address, mac, state, expires_at) VALUES ('198.18.0.102', '02:00:00:00:00:04', 'offered', $1)`, [
        t0 + 60_000,
      ]);
      await db.admin.query(`SELECT pg_notify('rackboot_leases', '["198.18.0.102"]')`);
      await until(
        "the offer in B's view",
        5000,
        () => (b.byAddress('198.18.0.102')?.state === 'offered' ? true : undefined),
        () => JSON.stringify(b.all()),
      );
      await db.admin.query(`UPDATE ${schema}.leases SET state = 'bound', expires_at = $1 WHERE address = '198.18.0.102'`, [t0 + 3_600_000]);
      const reclaim = b.transactionSyncedLater(() => {
        b.remove('198.18.0.102');
        b.upsert(lease('02:00:00:00:00:05', '198.18.0.102', 'offered', t0 + 60_000), t0);
      }).synced;
      await assert.rejects(reclaim, LeaseConflictError);
      assert.equal(
        await db.admin.query(`SELECT mac, state FROM ${schema}.leases WHERE address = '198.18.0.102'`).then((r) => `${r.rows[0].mac} ${r.rows[0].state}`),
        '02:00:00:00:00:04 bound',
      );
      // Told now, both views can follow the table again.
      await db.admin.query(`SELECT pg_notify('rackboot_leases', '["198.18.0.102"]')`);

      // Both at once, for 40 addresses: each address ends with exactly the one client whose change committed.
      const outcomes = await Promise.all(
        Array.from({ length: 40 }, (_, i) => {
          const address = `198.18.1.${i + 1}`;
          const fromA = a.transactionSyncedLater(() =>
            a.upsert(lease(`02:00:00:00:0a:${(i + 1).toString(16).padStart(2, '0')}`, address, 'bound', t0 + 3_600_000), t0),
          ).synced;
          const fromB = b.transactionSyncedLater(() =>
            b.upsert(lease(`02:00:00:00:0b:${(i + 1).toString(16).padStart(2, '0')}`, address, 'bound', t0 + 3_600_000), t0),
          ).synced;
          return Promise.allSettled([fromA, fromB]).then((settled) => ({ address, settled }));
        }),
      );
      const rows = new Map((await rowsOf(schema)).map((row) => [row.address, row]));
      for (const { address, settled } of outcomes) {
        const kept = settled.map((result) => result.status === 'fulfilled');
        assert.equal(
          kept.filter(Boolean).length,
          1,
          `${address}: exactly one of the two servers kept its change (${JSON.stringify(settled.map((r) => r.status))})`,
        );
        const winner = kept[0] ? 'a' : 'b';
        assert.match(rows.get(address)?.mac ?? '', new RegExp(`^02:00:00:00:0${winner}:`), address);
      }
      await a.flush();
      await b.flush();
      await until(
        'both views equal to the table',
        5000,
        async () => {
          // A never heard of the row written behind its back; every other change it did.
          const table = await rowsOf(schema);
          const withoutHidden = table.filter((row) => row.address !== '198.18.0.101');
          return JSON.stringify(a.all()) === JSON.stringify(withoutHidden) && JSON.stringify(b.all()) === JSON.stringify(table) ? true : undefined;
        },
        () => `A ${a.all().length} records, B ${b.all().length}`,
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('PostgresLeaseStore: what goes wrong, said by name', () => {
  test('an unreachable database, a refused login and a newer schema each name the database, never the password', async () => {
    const unreachable = `postgres://rackboot:${POSTGRES_PASSWORD}@127.0.0.1:1/leases`;
    await assert.rejects(PostgresLeaseStore.open(unreachable), (error: unknown) => {
      assert.ok(error instanceof PostgresDatabaseError);
      assert.equal(error.code, 'UNREACHABLE');
      assert.match(error.message, /^database postgres:\/\/rackboot@127\.0\.0\.1:1\/leases: unreachable/);
      assert.ok(!error.message.includes(POSTGRES_PASSWORD));
      return true;
    });
    await assert.rejects(PostgresLeaseStore.open(db.server.url('leases', 'not-the-password')), (error: unknown) => {
      assert.ok(error instanceof PostgresDatabaseError);
      assert.equal(error.code, 'CREDENTIALS');
      assert.match(error.message, /refused the credentials/);
      assert.ok(!error.message.includes('not-the-password'));
      return true;
    });
    // No password in the URL: the pgpass file's; a file without a line for it, or one others may read, is named.
    const withoutPassword = db.server.url('leases').replace(`:${POSTGRES_PASSWORD}@`, '@');
    assert.ok(!withoutPassword.includes(POSTGRES_PASSWORD));
    const pgpassDir = mkdtempSync(join(tmpdir(), 'rackboot-pgpass-'));
    const savedPgpass = process.env.PGPASSFILE;
    try {
      process.env.PGPASSFILE = join(pgpassDir, 'pgpass');
      writeFileSync(process.env.PGPASSFILE, `*:*:other-database:rackboot:${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
      await assert.rejects(PostgresLeaseStore.open(withoutPassword), (error: unknown) => {
        assert.ok(error instanceof PostgresDatabaseError);
        assert.equal(error.code, 'CREDENTIALS');
        assert.match(error.message, /the URL has none and .*pgpass has no line for it/);
        return true;
      });
      writeFileSync(process.env.PGPASSFILE, `*:*:leases:rackboot:${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
      await (await PostgresLeaseStore.open(withoutPassword)).close();
      chmodSync(process.env.PGPASSFILE, 0o644);
      await assert.rejects(PostgresLeaseStore.open(withoutPassword), /pgpass may be read by group or others/);
    } finally {
      if (savedPgpass === undefined) delete process.env.PGPASSFILE;
      else process.env.PGPASSFILE = savedPgpass;
      rmSync(pgpassDir, { recursive: true, force: true });
    }
    await assert.rejects(
      PostgresLeaseStore.open(db.server.url('no-such-database')),
      (error: unknown) => error instanceof PostgresDatabaseError && error.code === 'NO_DATABASE',
    );

    const { schema, url: inSchema } = await db.schema('newer');
    const first = await PostgresLeaseStore.open(inSchema);
    await first.close();
    assert.equal(
      Number((await db.admin.query(`SELECT version FROM ${schema}.schema_versions WHERE store = 'leases'`)).rows[0].version),
      postgresLeaseSchemaVersion,
    );
    await db.admin.query(`UPDATE ${schema}.schema_versions SET version = 99 WHERE store = 'leases'`);
    await assert.rejects(PostgresLeaseStore.open(inSchema), (error: unknown) => {
      assert.ok(error instanceof PostgresDatabaseError);
      assert.equal(error.code, 'NEWER_SCHEMA');
      assert.match(error.message, /schema version 99, written by a newer rackboot/);
      return true;
    });
  });

  test('a table at the first schema (version 1) is brought to the newest with its leases; each change then names its server, and servers of the previous versions still write', async () => {
    const { schema, url } = await db.schema('previous');
    // The database as the previous rackboot left it: version 1 and a lease it wrote.
    const previous = new DatabaseConnection(url, 'rackboot test');
    try {
      await migrateDatabase(previous, previous.database, 'leases', postgresLeaseMigrations.slice(0, 1));
      const op = { k: 'u', a: '198.18.0.100', m: '02:00:00:00:00:01', s: 'bound', e: t0 + 3_600_000, h: 'old', n: t0 };
      await previous.query('SELECT rackboot_lease_ops($1::jsonb)', [JSON.stringify([op])]);
    } finally {
      await previous.end();
    }
    const version = async () => Number((await db.admin.query(`SELECT version FROM ${schema}.schema_versions WHERE store = 'leases'`)).rows[0].version);
    assert.equal(await version(), 1);

    const store = await PostgresLeaseStore.open(url, { server: '198.18.0.1' });
    try {
      assert.equal(await version(), 3);
      assert.equal(postgresLeaseSchemaVersion, 3);
      assert.deepEqual(store.byAddress('198.18.0.100'), { ...lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), hostname: 'old' });
      await store.transactionSyncedLater(() => store.upsert(lease('02:00:00:00:00:02', '198.18.0.101', 'bound', t0 + 3_600_000), t0)).synced;
      // Servers of the previous versions, during an upgrade, still call with one argument (version 1) or two (version 2).
      const op = { k: 'u', a: '198.18.0.102', m: '02:00:00:00:00:03', s: 'bound', e: t0 + 3_600_000, h: null, n: t0 };
      await db.admin.query(`SELECT ${schema}.rackboot_lease_ops($1::jsonb)`, [JSON.stringify([op])]);
      const op2 = { k: 'u', a: '198.18.0.103', m: '02:00:00:00:00:04', s: 'bound', e: t0 + 3_600_000, h: null, n: t0 };
      const secondVersion = new DatabaseConnection(url, 'rackboot test');
      try {
        await secondVersion.query('SELECT rackboot_lease_ops($1::jsonb, $2::text)', [JSON.stringify([op2]), '198.18.0.2']);
      } finally {
        await secondVersion.end();
      }
    } finally {
      await store.close();
    }
    const read = await readLeaseDatabase(url);
    assert.deepEqual(
      read.map((record) => [record.address, record.server, record.changedAt === null]),
      [
        ['198.18.0.100', null, true],
        ['198.18.0.101', '198.18.0.1', false],
        ['198.18.0.102', null, false],
        ['198.18.0.103', '198.18.0.2', false],
      ],
    );
    assert.match(
      renderLeaseTable(read, t0),
      /^MAC +ADDRESS +STATE +EXPIRES \(UTC\) +ENDS +SERVER +HOSTNAME\n.*\n02:00:00:00:00:02 +198\.18\.0\.101 +bound .* 198\.18\.0\.1 +-\n/m,
    );
  });

  test('a batch whose one request conflicts with another server’s change: that request’s changes are refused alone, the rest are kept', async () => {
    const { schema, url } = await db.schema('units');
    const store = await PostgresLeaseStore.open(url, { server: '198.18.0.1' });
    try {
      // Another server's lease, written without a notification: this store's view does not know it.
      await db.admin.query(`INSERT INTO ${schema}.leases (address, mac, state, expires_at) VALUES ('198.18.0.101', '02:00:00:00:00:99', 'bound', $1)`, [
        t0 + 3_600_000,
      ]);
      const { synced } = store.transactionSyncedLater(() => {
        store.transaction(() => store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 60_000), t0));
        store.transaction(() => {
          store.upsert(lease('02:00:00:00:00:05', '198.18.0.102', 'offered', t0 + 60_000), t0);
          store.upsert(lease('02:00:00:00:00:02', '198.18.0.101', 'bound', t0 + 3_600_000), t0);
        });
        store.transaction(() => store.upsert(lease('02:00:00:00:00:03', '198.18.0.103', 'bound', t0 + 3_600_000), t0));
      });
      await assert.rejects(synced, (error: unknown) => {
        assert.ok(error instanceof PartialCommitError, String(error));
        assert.deepEqual([...error.refused.keys()], [2]);
        const refusal = error.refused.get(2);
        assert.ok(refusal instanceof LeaseConflictError);
        assert.equal(refusal.heldBy.mac, '02:00:00:00:00:99');
        return true;
      });
      assert.deepEqual(
        (await rowsOf(schema)).map((row) => [row.address, row.mac]),
        [
          ['198.18.0.100', '02:00:00:00:00:01'],
          ['198.18.0.101', '02:00:00:00:00:99'],
          ['198.18.0.103', '02:00:00:00:00:03'],
        ],
        'the second unit is undone whole (198.18.0.102 too), the first and third are kept',
      );
      await until(
        "the view reads the refused unit's rows again",
        10_000,
        async () => (store.byAddress('198.18.0.101')?.mac === '02:00:00:00:00:99' && store.byAddress('198.18.0.102') === undefined) || undefined,
        () => JSON.stringify(store.all()),
      );
    } finally {
      await store.close();
    }
  });

  test('while PostgreSQL restarts nothing is kept and the caller is told; afterwards the store carries on by itself', async () => {
    const { schema, url } = await db.schema('restart');
    const problems: string[] = [];
    const recovered: string[] = [];
    const store = await PostgresLeaseStore.open(url, {
      connectTimeoutMs: 1000,
      onProblem: (message) => problems.push(message),
      onRecovered: (message) => recovered.push(message),
    });
    try {
      await store.transactionSyncedLater(() => store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0)).synced;
      await db.stop();
      const { synced } = store.transactionSyncedLater(() => store.upsert(lease('02:00:00:00:00:02', '198.18.0.101', 'bound', t0 + 3_600_000), t0));
      await assert.rejects(synced, (error: unknown) => error instanceof PostgresDatabaseError && error.code === 'UNREACHABLE');
      // The group commit waiting on `synced` says so itself; onProblem is for callers that do not wait.
      assert.ok(!problems.some((message) => message.includes('not kept')), problems.join('\n'));
      store.transaction(() => store.upsert(lease('02:00:00:00:00:04', '198.18.0.103', 'offered', t0 + 60_000), t0));
      await store.flush();
      assert.ok(
        problems.some((message) => /not kept: database postgres:\/\/rackboot@127\.0\.0\.1:\d+\/leases/.test(message)),
        problems.join('\n'),
      );
      assert.equal(store.healthy, false);
      await db.start();
      await until(
        'a change kept after the restart',
        30_000,
        async () => {
          const { synced: again } = store.transactionSyncedLater(() => store.upsert(lease('02:00:00:00:00:03', '198.18.0.102', 'bound', t0 + 3_600_000), t0));
          return (await again.then(
            () => true,
            () => undefined,
          )) as true | undefined;
        },
        () => problems.join('\n'),
      );
      assert.equal(store.healthy, true);
      assert.ok(recovered.length > 0, 'recovery is said');
      assert.deepEqual(
        (await rowsOf(schema)).map((row) => row.address),
        ['198.18.0.100', '198.18.0.102'],
        'the change made while the database was down is not in it',
      );
      await store.flush();
      assert.deepEqual(
        store.all().map((row) => row.address),
        ['198.18.0.100', '198.18.0.102'],
        "and not in the store's view either",
      );
    } finally {
      await store.close();
    }
  });
});
