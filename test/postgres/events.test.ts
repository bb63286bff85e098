import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { BootEvent } from '../../server/events/event.js';
import { PostgresEventStore } from '../../server/events/postgres-store.js';
import { eventStoreContract } from '../events/event-store-contract.js';
import { startSchemaDatabase, type SchemaDatabase } from '../support/postgres.js';
import { until } from '../support/until.js';

/**
 * PostgresEventStore against a real PostgreSQL 15 started for this file:
 * the EventStore contract (each store in a schema of its own, the tables
 * checked against the store's copy after every test), and two servers
 * writing one host's timeline. Needs root and postgresql-15; fails without them.
 */

let db: SchemaDatabase;

before(async () => {
  db = await startSchemaDatabase('timeline');
});

after(async () => {
  await db?.close();
});

interface InSchema extends PostgresEventStore {
  schema?: string;
}

async function tableOf(schema: string): Promise<BootEvent[]> {
  const rows = await db.admin.query<{
    id: string;
    time: string;
    mac: string;
    source: BootEvent['source'];
    stage: string;
    detail: string | null;
    domain: string | null;
  }>(`SELECT id, time, mac, source, stage, detail, domain FROM ${schema}.events ORDER BY mac, time, id`);
  return rows.rows.map((row) => ({
    id: Number(row.id),
    time: Number(row.time),
    mac: row.mac,
    source: row.source,
    stage: row.stage,
    ...(row.detail === null ? {} : { detail: row.detail }),
    ...(row.domain === null ? {} : { domain: row.domain }),
  }));
}

eventStoreContract(
  'PostgresEventStore',
  async () => {
    const { schema, url: inSchema } = await db.schema('e');
    const store: InSchema = await PostgresEventStore.open(inSchema, {
      onProblem: (message, error) => {
        throw new Error(message, { cause: error });
      },
    });
    store.schema = schema;
    return store;
  },
  {
    verify: async (store) => {
      await store.flush();
      const copy = store
        .latestByHost()
        .map((latest) => latest.mac)
        .flatMap((mac) => store.listByHost(mac));
      assert.deepEqual(await tableOf(store.schema!), copy, "the table holds the store's timeline");
      const reports = await db.admin.query<{ mac: string; kind: 'storage'; time: string; body: string }>(
        `SELECT mac, kind, time, body FROM ${store.schema}.host_reports`,
      );
      for (const row of reports.rows)
        assert.deepEqual(store.hostReport(row.mac, row.kind), { mac: row.mac, kind: row.kind, time: Number(row.time), body: row.body });
    },
    propertyRuns: (runs) => Math.ceil(runs / 5),
  },
);

test("two servers on one timeline: a host's events from both, in the order they happened, at each", async () => {
  const { url: shared } = await db.schema('e');
  const a = await PostgresEventStore.open(shared);
  const b = await PostgresEventStore.open(shared);
  try {
    const host = '52:54:00:12:34:56';
    const t0 = 1_700_000_000_000;
    a.append({ time: t0, mac: host, source: 'dhcp', stage: 'dhcp-offer' });
    b.append({ time: t0 + 1, mac: host, source: 'http', stage: 'boot-script' });
    a.append({ time: t0 + 2, mac: host, source: 'tftp', stage: 'tftp-done' });
    b.putHostReport({ mac: host, kind: 'storage', time: t0 + 3, body: '{"disks":[]}' });
    await a.flush();
    await b.flush();
    const stages = (store: PostgresEventStore) => store.listByHost(host).map((event) => event.stage);
    for (const [name, store] of [
      ['A', a],
      ['B', b],
    ] as const) {
      await until(
        `server ${name} holding the whole timeline`,
        5000,
        async () => {
          await store.flush();
          return stages(store).length === 3 && store.hostReport(host, 'storage') !== undefined ? true : undefined;
        },
        () => JSON.stringify(stages(store)),
      );
      assert.deepEqual(stages(store), ['dhcp-offer', 'boot-script', 'tftp-done']);
    }
    const ids = a.listByHost(host).map((event) => event.id);
    assert.equal(new Set(ids).size, 3, 'ids never collide across servers');
  } finally {
    await a.close();
    await b.close();
  }
});

test('events appended while PostgreSQL restarts are kept in memory and written once it is back; another server hears of them after its listener reconnects', async () => {
  const { schema, url: shared } = await db.schema('e');
  const problems: string[] = [];
  const a = await PostgresEventStore.open(shared, { onProblem: (message) => problems.push(message) });
  const b = await PostgresEventStore.open(shared, { onProblem: (message) => problems.push(message) });
  const host = '52:54:00:12:34:57';
  const t0 = 1_700_000_000_000;
  try {
    a.append({ time: t0, mac: host, source: 'dhcp', stage: 'dhcp-offer' });
    await a.flush();
    await db.stop();
    a.append({ time: t0 + 1, mac: host, source: 'http', stage: 'boot-script' });
    await a.flush();
    assert.ok(
      problems.some((message) => /timeline events not written/.test(message)),
      problems.join('\n'),
    );
    assert.deepEqual(
      a.listByHost(host).map((event) => event.stage),
      ['dhcp-offer', 'boot-script'],
      'served from memory meanwhile',
    );
    await db.start();
    a.append({ time: t0 + 2, mac: host, source: 'runtime', stage: 'ready' });
    await until(
      'every event in the table after the restart',
      30_000,
      async () => {
        await a.flush();
        return (await tableOf(schema)).length === 3 ? true : undefined;
      },
      () => problems.join('\n'),
    );
    await until(
      'the other server holding all three',
      30_000,
      async () => {
        await b.flush();
        return b.listByHost(host).length === 3 ? true : undefined;
      },
      () => JSON.stringify(b.listByHost(host)),
    );
  } finally {
    await a.close();
    await b.close();
  }
});
