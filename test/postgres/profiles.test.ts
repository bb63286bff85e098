import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DatabaseProfiles } from '../../server/profiles/postgres-profiles.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { runRackboot } from '../support/run.js';
import { until } from '../support/until.js';

/**
 * Profiles in the PostgreSQL database servers share (a real 15, started
 * here): `rackboot profiles import` checks a folder as the server does and
 * imports all or nothing; each server's copy follows the database; export
 * writes the files back. Needs root and postgresql-15; fails without them.
 */

let server: TestPostgres;
let url: string;
let dir: string;

before(async () => {
  server = await startPostgres();
  url = await server.createDatabase('site');
  dir = await mkdtemp(path.join(tmpdir(), 'rackboot-db-profiles-'));
});

after(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('import checks the folder as the server does: a folder with a problem imports nothing, naming file, line and column; a good one imports every file', async () => {
  const folder = path.join(dir, 'git');
  await mkdir(folder);
  await writeFile(path.join(folder, 'default.yaml'), 'hostname: node-{mac}\nboot:\n  menuTimeout: 5\n');
  await writeFile(path.join(folder, 'xen01.yaml'), 'mac: 52:54:00:12:34:56\nhostname: xen01\n');
  await writeFile(path.join(folder, 'bad.yaml'), 'mac: 52:54:00:12:34:57\nhostname: -bad-\n');
  const refused = await runRackboot(['profiles', 'import', folder, '--database', url], { timeoutMs: 30_000 });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /bad\.yaml:2:\d+: hostname/);
  assert.match(refused.stdout, /nothing imported/);
  assert.equal(await server.psql('site', "SELECT to_regclass('profiles') IS NULL"), 't', 'nothing imported: not even the table made');

  await rm(path.join(folder, 'bad.yaml'));
  const imported = await runRackboot(['profiles', 'import', folder], { timeoutMs: 30_000, env: { RACKBOOT_DATABASE: url } });
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, /^2 profile files imported into postgres:\/\/rackboot@127\.0\.0\.1:\d+\/site\n$/);

  const back = path.join(dir, 'exported');
  const exported = await runRackboot(['profiles', 'export', back, '--database', url], { timeoutMs: 30_000 });
  assert.equal(exported.code, 0, exported.stderr);
  assert.deepEqual((await readdir(back)).sort(), ['default.yaml', 'xen01.yaml']);
  assert.equal(await readFile(path.join(back, 'xen01.yaml'), 'utf8'), 'mac: 52:54:00:12:34:56\nhostname: xen01\n');
});

test("two servers' copies follow the database: a save or a removal at one reaches the other's folder, which it reads again", async () => {
  const changed: string[][] = [];
  const a = await DatabaseProfiles.open(url, path.join(dir, 'copy-a'), { onChange: () => undefined });
  const b = await DatabaseProfiles.open(url, path.join(dir, 'copy-b'), { onChange: (names) => void changed.push([...names]) });
  try {
    assert.ok(existsSync(path.join(b.folder, 'xen01.yaml')), 'each copy starts as the database is');
    const started = Date.now();
    await a.save('xen02.yaml', 'mac: 52:54:00:12:34:58\nhostname: xen02\n');
    await until(
      'the other server reading its profiles again after the save',
      10_000,
      () => (changed.some((names) => names.includes('xen02.yaml')) ? true : undefined),
      () => JSON.stringify(changed),
    );
    process.stdout.write(`# a profile saved at one server reached the other's copy in ${Date.now() - started} ms\n`);
    assert.equal(await readFile(path.join(b.folder, 'xen02.yaml'), 'utf8'), 'mac: 52:54:00:12:34:58\nhostname: xen02\n');
    await a.remove('xen01.yaml');
    await until(
      'the removal in the other copy',
      10_000,
      () => (existsSync(path.join(b.folder, 'xen01.yaml')) ? undefined : true),
      () => JSON.stringify(changed),
    );
    assert.deepEqual((await readdir(b.folder)).sort(), ['default.yaml', 'xen02.yaml']);
  } finally {
    await a.close();
    await b.close();
  }
});
