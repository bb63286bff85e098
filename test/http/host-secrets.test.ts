import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AssetStore, type BuildManifest } from '../../server/assets/builds.js';
import { HostTokens } from '../../server/boot/host-token.js';
import { createHttpApp } from '../../server/http/app.js';
import { silentLogger } from '../../server/log.js';
import { makeProfile } from '../helpers/profiles.js';

const mac = '52:54:00:12:34:56';
const other = '52:54:00:12:34:57';
const tokens = new HostTokens(randomBytes(32));
let leased: string | undefined;
let dir: string;
let server: Server;
let base: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rackboot-secrets-'));
  const build = path.join(dir, 'builds', 'b1');
  await mkdir(build, { recursive: true });
  const manifest: BuildManifest = { id: 'b1', created: '2026-11-25T18:00:00Z', release: 'bookworm', files: [] };
  for (const name of ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'guest.initrd.gz']) {
    const data = Buffer.from(name);
    await writeFile(path.join(build, name), data);
    manifest.files.push({ name, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), package: 'test', version: '1' });
  }
  await writeFile(path.join(build, 'manifest.json'), JSON.stringify(manifest));
  await symlink(path.join('builds', 'b1'), path.join(dir, 'current'));
  const profile = makeProfile({
    mac,
    domains: [{ name: 'web', memory: 128, vcpus: 1, kernel: 'vmlinuz', ramdisk: 'guest.initrd.gz', extraArgs: '', bridge: 'xenbr0', autostart: true, restart: false }],
  } as never);
  const app = createHttpApp({
    assets: new AssetStore(dir),
    lookupProfile: (wanted) => (wanted === mac ? profile : { ...profile, mac: wanted, hostname: 'other' }),
    profileProblems: () => [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log: silentLogger(),
    secrets: { tokens, addressOf: (wanted) => (wanted === mac ? leased : undefined) },
  });
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const get = async (url: string, headers: Record<string, string> = {}) => {
  const response = await fetch(base + url, { headers });
  return { status: response.status, body: await response.text() };
};

test('the boot script carries a fresh token for its host; runtime.env and domain configs need it', async () => {
  const script = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios');
  const token = /rackboot\.token=(\S+)/.exec(script.body)?.[1];
  assert.ok(token, script.body);
  assert.equal(tokens.verify(mac, token), true);
  const again = /rackboot\.token=(\S+)/.exec((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)?.[1];
  assert.notEqual(again, token, 'each boot script mints its own token');
  const xenCfg = await get('/hosts/52-54-00-12-34-56/builds/b1/xen.cfg');
  assert.match(xenCfg.body, /rackboot\.token=\S+/);

  const env = await get(`/hosts/52-54-00-12-34-56/runtime.env?token=${token}`);
  assert.equal(env.status, 200);
  assert.match(env.body, /^RACKBOOT_ROOT_HASH=/m);
  assert.equal((await get('/hosts/52-54-00-12-34-56/runtime.env', { 'x-rackboot-token': token! })).status, 200);
  assert.equal((await get(`/hosts/52-54-00-12-34-56/domains/web.cfg?token=${token}`)).status, 200);
});

test('anyone else gets 403, naming what was refused and why; the secrets stay out of the answer', async () => {
  const otherToken = tokens.mint(other);
  for (const url of [
    '/hosts/52-54-00-12-34-56/runtime.env',
    `/hosts/52-54-00-12-34-56/runtime.env?token=${otherToken}`,
    '/hosts/52-54-00-12-34-56/runtime.env?token=forged',
    '/hosts/52-54-00-12-34-56/domains/web.cfg',
    `/hosts/52-54-00-12-34-56/domains/web.cfg?token=${otherToken}`,
  ]) {
    const refused = await get(url);
    assert.equal(refused.status, 403, url);
    assert.match(refused.body, /is served only to that host/);
    assert.doesNotMatch(refused.body, /\$6\$/);
  }
});

test('the address rackboot leased the host is enough, without a token', async () => {
  leased = '198.18.0.50';
  assert.equal((await get('/hosts/52-54-00-12-34-56/runtime.env')).status, 403, 'the request comes from 127.0.0.1, not the lease');
  leased = '127.0.0.1';
  assert.equal((await get('/hosts/52-54-00-12-34-56/runtime.env')).status, 200);
  assert.equal((await get('/hosts/52-54-00-12-34-57/runtime.env')).status, 403, 'the lease of one host opens no other host');
  leased = undefined;
});
