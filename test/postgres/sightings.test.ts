import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { PostgresSlotSightings } from '../../server/profiles/postgres-sightings.js';
import type { RelaySlot } from '../../server/profiles/slot.js';
import { slotSightingsContract } from '../profiles/sightings-contract.js';
import { startSchemaDatabase, type SchemaDatabase } from '../support/postgres.js';
import { until } from '../support/until.js';

/**
 * PostgresSlotSightings against a real PostgreSQL 15 started for this
 * file: the SlotSightings contract (each store in a schema of its own, the
 * table checked against the store's copy after every test), and two
 * servers on one table. Needs root and postgresql-15; fails without them.
 */

let db: SchemaDatabase;

before(async () => {
  db = await startSchemaDatabase('sightings');
});

after(async () => {
  await db?.close();
});

interface InSchema extends PostgresSlotSightings {
  schema?: string;
}

type Entry = { mac: string; slot: RelaySlot };
const sorted = (entries: Entry[]) => [...entries].sort((a, b) => a.mac.localeCompare(b.mac));

async function tableOf(schema: string): Promise<Entry[]> {
  const rows = await db.admin.query<{ mac: string; circuit_id: string; remote_id: string }>(`SELECT mac, circuit_id, remote_id FROM ${schema}.slot_sightings`);
  return sorted(
    rows.rows.map((row) => ({
      mac: row.mac,
      slot: row.remote_id === '' ? { circuitId: row.circuit_id } : { circuitId: row.circuit_id, remoteId: row.remote_id },
    })),
  );
}

slotSightingsContract(
  'PostgresSlotSightings',
  async () => {
    const { schema, url: inSchema } = await db.schema('s');
    const sightings: InSchema = await PostgresSlotSightings.open(inSchema, {
      onWriteError: (error) => {
        throw error;
      },
    });
    sightings.schema = schema;
    return sightings;
  },
  {
    verify: async (sightings) => {
      await sightings.flush();
      assert.deepEqual(await tableOf(sightings.schema!), sorted(sightings.entries()), "the table holds the store's copy");
    },
    propertyRuns: (runs) => Math.ceil(runs / 5),
  },
);

test('two servers on one table: a sighting at one places the machine at the other; racing for one slot, both end with the one the table kept', async () => {
  const { schema, url: shared } = await db.schema('s');
  const a = await PostgresSlotSightings.open(shared);
  const b = await PostgresSlotSightings.open(shared);
  try {
    a.record('52:54:00:00:00:01', { circuitId: '7231', remoteId: 'rack1' });
    await until(
      'the machine placed at server B',
      5000,
      () => (b.macAt({ circuitId: '7231', remoteId: 'rack1' }) === '52:54:00:00:00:01' ? true : undefined),
      () => JSON.stringify(b.entries()),
    );
    for (let i = 0; i < 20; i++) {
      const slot = { circuitId: `72${40 + i}` };
      a.record(`52:54:00:00:0a:${String(i).padStart(2, '0')}`, slot);
      b.record(`52:54:00:00:0b:${String(i).padStart(2, '0')}`, slot);
    }
    await a.flush();
    await b.flush();
    await until(
      'both copies equal to the table',
      5000,
      async () => {
        const table = JSON.stringify(await tableOf(schema));
        await a.flush();
        await b.flush();
        return JSON.stringify(sorted(a.entries())) === table && JSON.stringify(sorted(b.entries())) === table ? true : undefined;
      },
      () => `A ${JSON.stringify(sorted(a.entries()))}\nB ${JSON.stringify(sorted(b.entries()))}`,
    );
    assert.equal((await tableOf(schema)).length, 21, 'one machine per slot');
  } finally {
    a.close();
    b.close();
  }
});
