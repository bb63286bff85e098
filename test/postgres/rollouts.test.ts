import { after, before } from 'node:test';
import { PostgresRolloutStore } from '../../server/rollouts/postgres-store.js';
import { rolloutStoreContract } from '../rollouts/store-contract.js';
import { startSchemaDatabase, type SchemaDatabase } from '../support/postgres.js';

/**
 * PostgresRolloutStore against a real PostgreSQL 15 started for this file:
 * the RolloutStore contract, each store in a schema of its own, the
 * concurrent changes each on a connection of its own. Needs root and
 * postgresql-15; fails without them.
 */

let db: SchemaDatabase;

before(async () => {
  db = await startSchemaDatabase('rollouts');
});

after(async () => {
  await db?.close();
});

const urls = new WeakMap<PostgresRolloutStore, string>();

rolloutStoreContract(
  'PostgreSQL',
  async () => {
    const { url } = await db.schema('rollouts');
    const store = await PostgresRolloutStore.open(url);
    urls.set(store, url);
    return store;
  },
  async (store) => PostgresRolloutStore.open(urls.get(store as PostgresRolloutStore)!),
);
