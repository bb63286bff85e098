import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AssetStore, type BuildManifest } from '../../server/assets/builds.js';
import { createHttpApp } from '../../server/http/app.js';
import { silentLogger } from '../../server/log.js';
import type { Profile } from '../../server/profiles/profile.js';
import { makeProfile } from '../helpers/profiles.js';

let dir: string;
let server: Server;
let base: string;
const files: Record<string, Buffer> = {};
const profiles = new Map<string, Profile>();
let defaultProfile: Profile | undefined;
const problems = new Map<string, string[]>();

async function writeBuild(id: string, content: Record<string, Buffer>): Promise<void> {
  const buildDir = path.join(dir, 'builds', id);
  await mkdir(buildDir, { recursive: true });
  const manifest: BuildManifest = { id, created: '2026-11-25T18:00:00Z', release: 'bookworm', files: [] };
  for (const [name, data] of Object.entries(content)) {
    await writeFile(path.join(buildDir, name), data);
    manifest.files.push({ name, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), package: 'test', version: '1' });
  }
  await writeFile(path.join(buildDir, 'manifest.json'), JSON.stringify(manifest));
}

async function switchCurrent(id: string): Promise<void> {
  await symlink(path.join('builds', id), path.join(dir, 'current.tmp'));
  await rename(path.join(dir, 'current.tmp'), path.join(dir, 'current'));
}

before(async () => {
  // Below a dot-folder on purpose, like ~/.cache or test/.work.
  dir = path.join(await mkdtemp(path.join(tmpdir(), 'rackboot-http-')), '.assets');
  for (const name of ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'ipxe.efi', 'undionly.kpxe']) files[name] = randomBytes(1000 + name.length * 997);
  await writeBuild('b1', files);
  await switchCurrent('b1');
  profiles.set('52:54:00:12:34:56', makeProfile());
  const app = createHttpApp({
    assets: new AssetStore(dir),
    lookupProfile: (mac) => profiles.get(mac) ?? (defaultProfile && !problems.has(mac) ? { ...defaultProfile } : undefined),
    profileProblems: (mac) => problems.get(mac) ?? [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log: silentLogger(),
  });
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(path.dirname(dir), { recursive: true, force: true });
});

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(base + url, init);
  return { status: response.status, body: await response.text(), headers: response.headers };
}

test('GET /boot.ipxe chains to the per-host script with the MAC and platform', async () => {
  const { status, body } = await get('/boot.ipxe');
  assert.equal(status, 200);
  assert.equal(
    body,
    [
      '#!ipxe',
      '# rackboot: hand this machine over to its own boot script',
      'chain http://198.18.0.1:8080/hosts/${mac:hexhyp}/boot.ipxe?platform=${platform} || goto retry',
      ':retry',
      'echo rackboot: could not load the boot script for ${mac}; trying again in 10 seconds',
      'sleep 10',
      'chain http://198.18.0.1:8080/boot.ipxe',
      '',
    ].join('\n'),
  );
});

test('BIOS host script: multiboot Xen with dom0 kernel and initrd as modules', async () => {
  const { status, body } = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios');
  assert.equal(status, 200);
  assert.equal(
    body,
    [
      '#!ipxe',
      '# rackboot: node01 (52:54:00:12:34:56) from profiles/node01.yaml, build b1, entry standard',
      'echo rackboot: booting node01 (52:54:00:12:34:56): Xen with the rackboot runtime',
      'kernel http://198.18.0.1:8080/builds/b1/xen console=com1,vga com1=115200,8n1 dom0_mem=512M',
      'module http://198.18.0.1:8080/builds/b1/vmlinuz console=tty0 console=hvc0 quiet rackboot.server=http://198.18.0.1:8080 ' +
        'rackboot.mac=52:54:00:12:34:56 rackboot.hostname=node01 rackboot.net=static rackboot.ip=198.18.0.50/24 rackboot.gw=198.18.0.1 rackboot.dns=198.18.0.1',
      'module http://198.18.0.1:8080/builds/b1/initrd.gz',
      'boot',
      '',
    ].join('\n'),
  );
});

test('EFI host script and its xen.cfg', async () => {
  const script = await get('/hosts/52:54:00:12:34:56/boot.ipxe?platform=efi');
  assert.equal(
    script.body,
    [
      '#!ipxe',
      '# rackboot: node01 (52:54:00:12:34:56) from profiles/node01.yaml, build b1, entry standard',
      'echo rackboot: booting node01 (52:54:00:12:34:56): Xen with the rackboot runtime',
      'imgfetch http://198.18.0.1:8080/hosts/52-54-00-12-34-56/builds/b1/xen.cfg',
      'imgfetch http://198.18.0.1:8080/builds/b1/vmlinuz',
      'imgfetch http://198.18.0.1:8080/builds/b1/initrd.gz',
      'chain http://198.18.0.1:8080/builds/b1/xen.efi -cfg=xen.cfg',
      '',
    ].join('\n'),
  );
  const config = await get('/hosts/52-54-00-12-34-56/builds/b1/xen.cfg');
  assert.equal(config.status, 200);
  assert.equal(
    config.body,
    [
      '[global]',
      'default=rackboot',
      '',
      '[rackboot]',
      'options=console=com1,vga com1=115200,8n1 dom0_mem=512M',
      'kernel=vmlinuz console=tty0 console=hvc0 quiet rackboot.server=http://198.18.0.1:8080 rackboot.mac=52:54:00:12:34:56 ' +
        'rackboot.hostname=node01 rackboot.net=static rackboot.ip=198.18.0.50/24 rackboot.gw=198.18.0.1 rackboot.dns=198.18.0.1',
      'ramdisk=initrd.gz',
      '',
    ].join('\n'),
  );
  assert.equal((await get('/hosts/52-54-00-12-34-56/builds/nope/xen.cfg')).status, 404);
});

test('runtime.env carries the hash, shell-quoted', async () => {
  const { status, body } = await get('/hosts/52-54-00-12-34-56/runtime.env');
  assert.equal(status, 200);
  assert.equal(
    body,
    [
      '# rackboot runtime settings',
      "RACKBOOT_HOSTNAME='node01'",
      "RACKBOOT_ROOT_HASH='$6$salt$abc'\\''def'",
      "RACKBOOT_SSH='1'",
      "RACKBOOT_TIMEZONE='Etc/UTC'",
      "RACKBOOT_PROFILE='profiles/node01.yaml'",
      "RACKBOOT_BUILD='b1'",
      '',
    ].join('\n'),
  );
});

test('unknown MAC: a clear no-profile script, then the default profile once there is one', async () => {
  const none = await get('/hosts/aa-bb-cc-dd-ee-ff/boot.ipxe?platform=pcbios');
  assert.equal(none.status, 200);
  assert.equal(
    none.body,
    [
      '#!ipxe',
      'echo rackboot: no profile matches aa:bb:cc:dd:ee:ff and there is no default profile',
      'echo rackboot: add a profile with "mac: aa:bb:cc:dd:ee:ff" (or a default.yaml) on the server; retrying in 30 seconds',
      'sleep 30',
      'chain http://198.18.0.1:8080/boot.ipxe',
      '',
    ].join('\n'),
  );
  assert.equal((await get('/hosts/aa-bb-cc-dd-ee-ff/runtime.env')).status, 404);
  defaultProfile = makeProfile({ mac: null, hostname: 'node-{mac}', network: { mode: 'dhcp' }, source: 'profiles/default.yaml' });
  try {
    const boot = await get('/hosts/aa-bb-cc-dd-ee-ff/boot.ipxe?platform=pcbios');
    assert.match(boot.body, /rackboot\.hostname=node-aabbccddeeff rackboot\.net=dhcp\n/);
  } finally {
    defaultProfile = undefined;
  }
});

test('a broken own profile: its errors on the console, no default boot', async () => {
  problems.set('aa:bb:cc:dd:ee:01', ['profiles/node9.yaml:2:11: hostname: "x_y" contains "_"', 'profiles/node9.yaml:3:1: ${evil}']);
  defaultProfile = makeProfile({ mac: null, hostname: 'node-{mac}', network: { mode: 'dhcp' }, source: 'profiles/default.yaml' });
  try {
    const { status, body } = await get('/hosts/aa-bb-cc-dd-ee-01/boot.ipxe?platform=pcbios');
    assert.equal(status, 200);
    assert.equal(
      body,
      [
        '#!ipxe',
        'echo rackboot: the profile for aa:bb:cc:dd:ee:01 has errors; fix it on the server (retrying in 30 seconds):',
        'echo profiles/node9.yaml:2:11: hostname: "x_y" contains "_"',
        'echo profiles/node9.yaml:3:1: $ {evil}',
        'sleep 30',
        'chain http://198.18.0.1:8080/boot.ipxe',
        '',
      ].join('\n'),
    );
    assert.equal((await get('/hosts/aa-bb-cc-dd-ee-01/runtime.env')).status, 404);
  } finally {
    problems.clear();
    defaultProfile = undefined;
  }
});

test('bad requests name what is wrong', async () => {
  const mac = await get('/hosts/not-a-mac/boot.ipxe');
  assert.equal(mac.status, 400);
  assert.equal(mac.body, 'rackboot: "not-a-mac" is not a MAC address\n');
  const platform = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=arm');
  assert.equal(platform.status, 400);
  assert.match(platform.body, /unknown platform "arm"/);
  const missing = await get('/nothing.bin');
  assert.equal(missing.status, 404);
  assert.equal(missing.body, 'rackboot: no file "nothing.bin" in the current build\n');
  assert.equal((await get('/builds/b1/..%2fmanifest.json')).status, 404);
  assert.equal((await get('/manifest.json')).status, 404, 'only files named in the manifest are served');
});

test('boot files: exact bytes, Content-Length, HEAD and Range', async () => {
  for (const [name, data] of Object.entries(files)) {
    const response = await fetch(`${base}/${name}`);
    assert.equal(response.status, 200, name);
    assert.equal(response.headers.get('content-length'), String(data.length), name);
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), data, name);
  }
  const head = await fetch(`${base}/builds/b1/ipxe.efi`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(files['ipxe.efi']!.length));
  const range = await fetch(`${base}/xen`, { headers: { Range: 'bytes=10-19' } });
  assert.equal(range.status, 206);
  assert.deepEqual(Buffer.from(await range.arrayBuffer()), files.xen!.subarray(10, 20));
});

test('a new build is served at once; pinned URLs keep the old one', async () => {
  const newer = { ...files, xen: randomBytes(4321) };
  await writeBuild('b2', newer);
  await switchCurrent('b2');
  const current = await fetch(`${base}/xen`);
  assert.deepEqual(Buffer.from(await current.arrayBuffer()), newer.xen);
  const pinned = await fetch(`${base}/builds/b1/xen`);
  assert.deepEqual(Buffer.from(await pinned.arrayBuffer()), files.xen);
  assert.match((await get('/hosts/52-54-00-12-34-56/boot.ipxe')).body, /builds\/b2\/xen /);
});
