import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { adminTokenFileName, loadOrCreateAdminToken, type AdminToken } from '../../server/admin/token.js';
import { AssetStore } from '../../server/assets/builds.js';
import { writeTestBuild } from '../support/assets.js';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { createHttpApp } from '../../server/http/app.js';
import { ProfileDirectory } from '../../server/profiles/store.js';

let root: string;
let profilesDir: string;
let assetsDir: string;
let server: Server;
let base: string;
let token: AdminToken;
let secret: string;
let directory: ProfileDirectory;
const leases = new MemoryLeaseStore();
const logLines: Array<Record<string, unknown>> = [];

const node01 = `mac: 52:54:00:00:00:01
hostname: node01
network:
  mode: static
  address: 198.18.0.51/24
`;

async function writeBuild(id: string): Promise<void> {
  await writeTestBuild(assetsDir, id, { vmlinuz: Buffer.from(`vmlinuz of ${id}`) });
}

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'rackboot-admin-'));
  profilesDir = path.join(root, 'profiles');
  assetsDir = path.join(root, 'assets');
  await mkdir(profilesDir);
  await writeFile(path.join(profilesDir, 'node01.yaml'), node01);
  await writeFile(path.join(profilesDir, 'default.yaml'), 'hostname: node-{mac}\n');
  await writeBuild('b1');
  await writeBuild('b2');
  await symlink(path.join('builds', 'b1'), path.join(assetsDir, 'current'));

  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  directory = await ProfileDirectory.open(profilesDir, log, {
    infrastructure: [
      { address: '198.18.0.1', what: "this server's address" },
      { address: '198.18.0.254', what: "the router's address (--router)" },
    ],
  });
  token = await loadOrCreateAdminToken(path.join(root, 'state'));
  secret = (await readFile(token.file, 'utf8')).trim();
  const assets = new AssetStore(assetsDir);
  const app = createHttpApp({
    assets,
    lookupProfile: (mac) => directory.lookup(mac),
    profileProblems: () => [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log,
    admin: { token, profiles: directory, assets, leases, log, now: () => 1_000_000 },
  });
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  directory.close();
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

async function api(method: string, url: string, body?: { yaml?: string; json?: unknown }, auth: string | null = `Bearer ${secret}`) {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = auth;
  let payload: string | undefined;
  if (body?.yaml !== undefined) {
    headers['content-type'] = 'application/yaml';
    payload = body.yaml;
  } else if (body?.json !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body.json);
  }
  const response = await fetch(base + url, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? (JSON.parse(text) as unknown) : undefined };
}

test('the token file is made once, mode 0600, and survives a reload', async () => {
  const info = await stat(token.file);
  assert.equal(info.mode & 0o777, 0o600);
  assert.equal(path.basename(token.file), adminTokenFileName);
  assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
  const again = await loadOrCreateAdminToken(path.dirname(token.file));
  assert.equal(again.created, false);
  assert.equal(again.matches(secret), true);
  assert.equal(again.matches(`${secret}x`), false);
});

test('a token file readable by others is set back to 0600; a file without a token is refused by name', async () => {
  const dir = path.join(root, 'loose');
  await mkdir(dir);
  await writeFile(path.join(dir, adminTokenFileName), `${'a'.repeat(43)}\n`, { mode: 0o644 });
  const loose = await loadOrCreateAdminToken(dir);
  assert.equal(loose.tightened, true);
  assert.equal((await stat(loose.file)).mode & 0o777, 0o600);
  await writeFile(path.join(dir, adminTokenFileName), 'short\n');
  await assert.rejects(loadOrCreateAdminToken(dir), new RegExp(`${adminTokenFileName}: holds no valid token`));
});

test('every admin call without a valid token gets 401 and is logged; boot endpoints stay open', async () => {
  const calls: Array<[string, string]> = [
    ['GET', '/api/profiles'],
    ['GET', '/api/profiles/node01'],
    ['PUT', '/api/profiles/node09'],
    ['DELETE', '/api/profiles/node01'],
    ['GET', '/api/leases'],
    ['DELETE', '/api/leases/198.18.0.100'],
    ['GET', '/api/builds'],
    ['PUT', '/api/builds/current'],
    ['GET', '/api/nothing-here'],
  ];
  for (const auth of [null, 'Bearer wrong', `Basic ${secret}`, `Bearer ${secret}x`]) {
    for (const [method, url] of calls) {
      const before = logLines.length;
      const response = await api(method, url, undefined, auth);
      assert.equal(response.status, 401, `${method} ${url} with ${String(auth)}`);
      assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="rackboot"');
      // Where to find the token, without the server's paths.
      const error = (response.json as { error: string }).error;
      assert.match(error, /the admin token file in the server's state folder/);
      assert.equal(error.includes(root), false, error);
      const denied = logLines.slice(before).find((line) => line.event === 'admin-denied');
      assert.ok(denied, `${method} ${url} was not logged`);
      assert.equal(denied.path, url);
      assert.equal(denied.remote, '127.0.0.1');
    }
  }
  // Nothing was changed by the refused calls.
  assert.deepEqual((await readdir(profilesDir)).sort(), ['default.yaml', 'node01.yaml']);
  const boot = await fetch(`${base}/boot.ipxe`);
  assert.equal(boot.status, 200);
});

test('profiles are listed and read with their text', async () => {
  const list = await api('GET', '/api/profiles');
  assert.equal(list.status, 200);
  assert.deepEqual(list.json, [
    { name: 'default.yaml', served: true, mac: null, hostname: 'node-{mac}', problems: [] },
    { name: 'node01.yaml', served: true, mac: '52:54:00:00:00:01', hostname: 'node01', problems: [] },
  ]);
  const one = await api('GET', '/api/profiles/node01');
  assert.equal(one.status, 200);
  const body = one.json as { name: string; text: string; profile: { hostname: string } };
  assert.equal(body.name, 'node01.yaml');
  assert.equal(body.text, node01);
  assert.equal(body.profile.hostname, 'node01');
  assert.equal((await api('GET', '/api/profiles/node77')).status, 404);
  assert.equal((await api('GET', '/api/profiles/..%2Fstate%2Fadmin.token')).status, 404);
});

test('a profile is created, served at once, replaced and deleted; the file on disk is exactly what was sent', async () => {
  const text = 'mac: 52-54-00-00-00-02\nhostname: node02\n';
  const created = await api('PUT', '/api/profiles/node02', { yaml: text });
  assert.equal(created.status, 201);
  assert.equal(await readFile(path.join(profilesDir, 'node02.yaml'), 'utf8'), text);
  assert.equal(directory.lookup('52:54:00:00:00:02')?.hostname, 'node02');

  const replaced = await api('PUT', '/api/profiles/node02.yaml', { json: { yaml: 'mac: 52:54:00:00:00:02\nhostname: node02b\n' } });
  assert.equal(replaced.status, 200);
  assert.equal(directory.lookup('52:54:00:00:00:02')?.hostname, 'node02b');

  const posted = await api('POST', '/api/profiles', { json: { name: 'node03', yaml: 'mac: 52:54:00:00:00:03\nhostname: node03\n' } });
  assert.equal(posted.status, 201);
  const again = await api('POST', '/api/profiles', { json: { name: 'node03', yaml: 'mac: 52:54:00:00:00:03\nhostname: node03\n' } });
  assert.equal(again.status, 409);

  assert.equal((await api('DELETE', '/api/profiles/node02')).status, 204);
  assert.equal((await api('DELETE', '/api/profiles/node03')).status, 204);
  assert.equal((await api('DELETE', '/api/profiles/node03')).status, 404);
  // The MAC falls back to the default profile once its file is gone.
  assert.equal(directory.lookup('52:54:00:00:00:02')?.hostname, 'node-525400000002');
  // No temporary files left behind.
  assert.deepEqual((await readdir(profilesDir)).sort(), ['default.yaml', 'node01.yaml']);
});

test('a bad profile is refused with line-precise problems and never reaches disk or replaces the good one', async () => {
  const bad = await api('PUT', '/api/profiles/node01', {
    yaml: 'mac: 52:54:00:00:00:01\nhostname: node01\nnetwork:\n  mode: static\n  address: 198.18.0.500/24\n',
  });
  assert.equal(bad.status, 422);
  const problems = (bad.json as { problems: Array<{ line: number; column: number; field: string; text: string }> }).problems;
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.line, 5);
  assert.equal(problems[0]!.field, 'network.address');
  assert.match(problems[0]!.text, /node01\.yaml:5:\d+: network\.address: /);
  assert.equal(await readFile(path.join(profilesDir, 'node01.yaml'), 'utf8'), node01);

  // Another file's MAC or static address is a conflict, reported at its line.
  const sameMac = await api('PUT', '/api/profiles/copy', { yaml: 'hostname: copy\nmac: 52:54:00:00:00:01\n' });
  assert.equal(sameMac.status, 422);
  const conflict = (sameMac.json as { problems: Array<{ line: number; field: string; message: string }> }).problems[0]!;
  assert.equal(conflict.line, 2);
  assert.equal(conflict.field, 'mac');
  assert.match(conflict.message, /already the MAC of .*node01\.yaml/);
  const sameAddress = await api('PUT', '/api/profiles/copy', {
    yaml: 'mac: 52:54:00:00:00:09\nhostname: copy\nnetwork:\n  mode: static\n  address: 198.18.0.51/24\n',
  });
  assert.equal(sameAddress.status, 422);
  const secondDefault = await api('PUT', '/api/profiles/default.yml', { yaml: 'hostname: other-{mac}\n' });
  assert.equal(secondDefault.status, 422);
  assert.deepEqual((await readdir(profilesDir)).sort(), ['default.yaml', 'node01.yaml']);

  for (const name of ['.hidden', '..', 'a%2Fb', '-x']) {
    assert.equal((await api('PUT', `/api/profiles/${name}`, { yaml: 'hostname: x\nmac: 52:54:00:00:00:0a\n' })).status === 201, false, name);
  }
  assert.equal((await api('PUT', '/api/profiles/node05', { json: { notYaml: 1 } })).status, 400);
});

test('leases are listed and released; a quarantined address is cleared', async () => {
  const now = 1_000_000;
  leases.upsert({ mac: '52:54:00:00:00:21', address: '198.18.0.120', state: 'bound', expiresAt: now + 3_600_000, hostname: 'n21' }, now);
  leases.upsert({ mac: '52:54:00:00:00:22', address: '198.18.0.121', state: 'declined', expiresAt: now + 3_600_000 }, now);
  const list = await api('GET', '/api/leases');
  assert.equal(list.status, 200);
  assert.deepEqual((list.json as Array<{ address: string; state: string }>).map(({ address, state }) => [address, state]).sort(), [
    ['198.18.0.120', 'bound'],
    ['198.18.0.121', 'declined'],
  ]);
  const released = await api('DELETE', '/api/leases/198.18.0.120');
  assert.equal(released.status, 200);
  assert.equal((released.json as { state: string }).state, 'released');
  assert.equal(leases.byAddress('198.18.0.120')?.state, 'released');
  assert.equal((await api('DELETE', '/api/leases/198.18.0.121')).status, 200);
  assert.equal(leases.byAddress('198.18.0.121'), undefined);
  assert.equal((await api('DELETE', '/api/leases/198.18.0.199')).status, 404);
});

test('builds are listed and the current one is switched atomically', async () => {
  const list = await api('GET', '/api/builds');
  assert.deepEqual(
    (list.json as Array<{ id: string; current: boolean }>).map(({ id, current }) => [id, current]),
    [
      ['b1', true],
      ['b2', false],
    ],
  );
  const switched = await api('PUT', '/api/builds/current', { json: { id: 'b2' } });
  assert.equal(switched.status, 200);
  assert.equal(await readlink(path.join(assetsDir, 'current')), path.join('builds', 'b2'));
  assert.equal(await (await fetch(`${base}/vmlinuz`)).text(), 'vmlinuz of b2');
  assert.equal((await api('PUT', '/api/builds/current', { json: { id: 'b9' } })).status, 404);
  assert.equal((await api('PUT', '/api/builds/current', { json: { id: '../../etc' } })).status, 404);
  assert.equal((await api('PUT', '/api/builds/current', { json: {} })).status, 400);
  assert.equal(await readlink(path.join(assetsDir, 'current')), path.join('builds', 'b2'));
  // A channel's current build is switched the same way, and the default channel's stays.
  const testing = await api('PUT', '/api/builds/current', { json: { id: 'b1', channel: 'testing' } });
  assert.deepEqual([testing.status, testing.json], [200, { id: 'b1', channel: 'testing', current: true }]);
  assert.equal(await readlink(path.join(assetsDir, 'channels', 'testing')), path.join('..', 'builds', 'b1'));
  assert.equal(await readlink(path.join(assetsDir, 'current')), path.join('builds', 'b2'));
  const bad = await api('PUT', '/api/builds/current', { json: { id: 'b1', channel: '../current' } });
  assert.equal(bad.status, 400);
  assert.match((bad.json as { error: string }).error, /channel "\.\.\/current" is not a channel name/);
  assert.equal(await readlink(path.join(assetsDir, 'current')), path.join('builds', 'b2'));
  assert.deepEqual(
    ((await api('GET', '/api/builds')).json as Array<{ id: string; channel: string; currentFor: string[] }>).map(({ id, channel, currentFor }) => [
      id,
      channel,
      currentFor,
    ]),
    [
      ['b1', 'default', ['testing']],
      ['b2', 'default', ['default']],
    ],
  );
});

test("a profile claiming the server's or the router's address is refused with 422 naming the field", async () => {
  for (const [address, what] of [
    ['198.18.0.1', "this server's address"],
    ['198.18.0.254', "the router's address (--router)"],
  ] as const) {
    const response = await api('PUT', '/api/profiles/node07', {
      yaml: `mac: 52:54:00:00:00:07\nhostname: node07\nnetwork:\n  mode: static\n  address: ${address}/24\n`,
    });
    assert.equal(response.status, 422);
    const problems = (response.json as { problems: Array<{ line: number; field: string; message: string }> }).problems;
    assert.deepEqual(
      problems.map((problem) => [problem.line, problem.field, problem.message]),
      [[5, 'network.address', `${address} is ${what}; a host cannot have it as its static address`]],
    );
  }
  assert.deepEqual((await readdir(profilesDir)).sort(), ['default.yaml', 'node01.yaml']);
});

test('an alias bomb or an oversized profile gets a short 422 at once; at most 20 problems are listed', async () => {
  // 300,000 aliases in 900 kB: refused by size before the YAML parser sees it.
  const bomb = `mac: 52:54:00:00:00:08\nhostname: node08\na: &a [x]\n${'b: [' + Array.from({ length: 300_000 }, () => '*a').join(',') + ']'}\n`;
  assert.ok(bomb.length > 900_000);
  const big = await api('PUT', '/api/profiles/node08', { yaml: bomb });
  assert.equal(big.status, 422);
  assert.match(JSON.stringify(big.json), /is \d+ bytes; a profile is at most 65536/);
  assert.ok(JSON.stringify(big.json).length < 1000);

  // Under the size limit: one problem for the first alias, not one per alias.
  const small = `mac: 52:54:00:00:00:08\nhostname: node08\na: &a [x]\nb: [${Array.from({ length: 20_000 }, () => '*a').join(',')}]\n`;
  assert.ok(small.length < 64 * 1024);
  const aliases = await api('PUT', '/api/profiles/node08', { yaml: small });
  assert.equal(aliases.status, 422);
  assert.equal((aliases.json as { problems: unknown[] }).problems.length, 1);
  assert.ok(JSON.stringify(aliases.json).length < 1000);

  const many = `mac: 52:54:00:00:00:08\nhostname: node08\n${Array.from({ length: 45 }, (_, index) => `unknown${index}: 1`).join('\n')}\n`;
  const listed = await api('PUT', '/api/profiles/node08', { yaml: many });
  assert.equal(listed.status, 422);
  assert.equal((listed.json as { problems: unknown[] }).problems.length, 20);
  assert.equal((listed.json as { moreProblems: number }).moreProblems, 25);
  assert.deepEqual((await readdir(profilesDir)).sort(), ['default.yaml', 'node01.yaml']);
});
