import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadOrCreateSharedSecrets } from '../../server/postgres/secrets.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

/** Secrets servers share through PostgreSQL (a real 15, started for this file). Needs root and postgresql-15; fails without them. */

let server: TestPostgres;
let url: string;

before(async () => {
  server = await startPostgres();
  url = await server.createDatabase('secrets');
});

after(async () => {
  await server?.close();
});

test('servers starting at once agree on each secret: one of them makes it, all read the same value', async () => {
  const starts = await Promise.all(Array.from({ length: 6 }, () => loadOrCreateSharedSecrets(url, ['host-token-key', 'admin-token'])));
  for (const [index, name] of ['host-token-key', 'admin-token'].entries()) {
    const values = new Set(starts.map((secrets) => secrets[index]!.value));
    assert.equal(values.size, 1, `${name}: one value for every server`);
    assert.equal(starts.filter((secrets) => secrets[index]!.created).length, 1, `${name}: made once`);
    assert.match([...values][0]!, /^[A-Za-z0-9_-]{43}$/);
  }
  const later = await loadOrCreateSharedSecrets(url, ['admin-token']);
  assert.deepEqual(later, [{ name: 'admin-token', value: starts[0]![1]!.value, created: false }], 'kept across starts');
});
