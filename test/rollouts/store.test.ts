import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RolloutDatabaseError, SqliteRolloutStore } from '../../server/rollouts/sqlite-store.js';
import { MemoryRolloutStore } from '../../server/rollouts/store.js';
import { rolloutStoreContract } from './store-contract.js';

let dir: string;
let files = 0;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rackboot-rollouts-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

rolloutStoreContract('memory', async () => new MemoryRolloutStore());
rolloutStoreContract(
  'SQLite',
  async () => SqliteRolloutStore.open(path.join(dir, `rollouts-${++files}.sqlite`)),
  async (store) => {
    const file = (store as SqliteRolloutStore).file;
    await store.close();
    return SqliteRolloutStore.open(file);
  },
);

test('SQLite: a second server on the same file, or a file that is no database, is refused naming the file', async () => {
  const file = path.join(dir, 'held.sqlite');
  const store = SqliteRolloutStore.open(file);
  try {
    assert.throws(
      () => SqliteRolloutStore.open(file),
      (error: unknown) => error instanceof RolloutDatabaseError && error.code === 'LOCKED' && error.message.includes(file),
    );
  } finally {
    store.close();
  }
  const junk = path.join(dir, 'junk.sqlite');
  await writeFile(junk, 'not a database at all, just text that is long enough to be looked at by SQLite as a header');
  assert.throws(
    () => SqliteRolloutStore.open(junk),
    (error: unknown) => error instanceof RolloutDatabaseError && error.message.includes(junk) && /move it aside/.test(error.message),
  );
});
