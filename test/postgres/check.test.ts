import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { PostgresLeaseStore } from '../../server/dhcp/leases/postgres.js';
import { POSTGRES_PASSWORD, startPostgres, type TestPostgres } from '../support/postgres.js';
import { runRackboot } from '../support/run.js';

/** `serve --check --database`: the database reached as serve would, its schema compared, nothing made. Needs postgresql-15 (a real 15, started here). */

let server: TestPostgres;
let dir: string;

before(async () => {
  server = await startPostgres();
  await server.createDatabase('site');
  dir = await mkdtemp(path.join(tmpdir(), 'rackboot-check-db-'));
  await mkdir(path.join(dir, 'profiles'));
  await writeFile(path.join(dir, 'profiles', 'a.yaml'), 'mac: 02:00:00:00:0c:01\nhostname: a\n');
});

after(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const check = (database: string) =>
  runRackboot(
    [
      'serve',
      '--check',
      '--interface',
      'lo',
      '--dhcp',
      'proxy',
      '--profiles',
      path.join(dir, 'profiles'),
      '--assets',
      path.join(dir, 'assets'),
      '--state',
      path.join(dir, 'state'),
      '--database',
      database,
    ],
    {
      timeoutMs: 30_000,
    },
  );

test('serve --check --database: a refused login, an unreachable server and a newer schema are problems naming the database; a good one is named in the summary', async () => {
  const named = `postgres://rackboot@127.0.0.1:${server.port}/site`;
  const refused = await check(server.url('site', 'not-the-password'));
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`^database ${named.replace(/[.]/g, '\\.')}: refused the credentials`, 'm'));
  assert.ok(!refused.stderr.includes('not-the-password'));
  const unreachable = await check(`postgres://rackboot:${POSTGRES_PASSWORD}@127.0.0.1:1/site`);
  assert.equal(unreachable.code, 1);
  assert.match(unreachable.stderr, /database postgres:\/\/rackboot@127\.0\.0\.1:1\/site: unreachable/);

  const ok = await check(server.url('site'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, new RegExp(`; state in ${named.replace(/[.]/g, '\\.')}\\n$`));
  assert.equal(await server.psql('site', "SELECT to_regclass('schema_versions') IS NULL"), 't', 'the check made no table');

  const store = await PostgresLeaseStore.open(server.url('site'));
  await store.close();
  await server.psql('site', "UPDATE schema_versions SET version = 99 WHERE store = 'leases'");
  const newer = await check(server.url('site'));
  assert.equal(newer.code, 1);
  assert.match(newer.stderr, /the leases tables are at schema version 99, written by a newer rackboot/);
});
