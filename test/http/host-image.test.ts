import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { loadOrCreateAdminToken } from '../../server/admin/token.js';
import { AssetStore } from '../../server/assets/builds.js';
import type { Browser } from 'playwright-core';
import { createHttpApp } from '../../server/http/app.js';
import { ImageLinks } from '../../server/http/image-links.js';
import { createStatusRouter, type StatusRouter } from '../../server/http/status.js';
import { Metrics } from '../../server/metrics.js';
import { HostIsoCache } from '../../server/iso/host-iso.js';
import { ProfileDirectory } from '../../server/profiles/store.js';
import { launchBrowser } from '../support/browser.js';
import { ensureTestBuild } from '../support/build.js';
import { makeProfile } from '../support/profiles.js';

/**
 * Per-host images are admin downloads: the admin token or a short-lived
 * link signed by the admin API, only for a MAC with a profile of its own,
 * kept under a disk budget. Real HTTP on loopback, the shared test build.
 */

let root: string;
let server: Server;
let base: string;
let secret: string;
let directory: ProfileDirectory;
let assets: AssetStore;
let clock = Date.parse('2026-12-04T12:00:00Z');
let status: StatusRouter;
let browser: Browser | undefined;
const links = new ImageLinks({ now: () => clock, lifetimeSeconds: 600 });
const logLines: Array<Record<string, unknown>> = [];

const node01 = 'mac: 52:54:00:00:00:01\nhostname: node01\n';
const node02 = 'mac: 52:54:00:00:00:02\nhostname: node02\n';

before(async () => {
  assets = new AssetStore(await ensureTestBuild());
  root = await mkdtemp(path.join(tmpdir(), 'rackboot-host-image-'));
  const profilesDir = path.join(root, 'profiles');
  await mkdir(profilesDir);
  await writeFile(path.join(profilesDir, 'node01.yaml'), node01);
  await writeFile(path.join(profilesDir, 'node02.yaml'), node02);
  await writeFile(path.join(profilesDir, 'default.yaml'), 'hostname: node-{mac}\n');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = pino({ level: 'info' }, sink);
  directory = await ProfileDirectory.open(profilesDir, log);
  const token = await loadOrCreateAdminToken(path.join(root, 'state'));
  secret = (await readFile(token.file, 'utf8')).trim();
  admin.authorization = `Bearer ${secret}`;
  const row = (mac: string, hostname: string, profile: string) => ({
    mac,
    hostname,
    profile,
    profileFrom: `${profile} (its own file)`,
    address: null,
    stage: 'ready',
    lastSeen: new Date(clock).toISOString(),
    lastBootSeconds: null,
    failures: 0,
    lastFailure: null,
    alarms: 0,
    lastAlarm: null,
    build: null,
    xen: null,
    kernel: null,
    storage: null,
  });
  status = createStatusRouter({
    log,
    sources: {
      server: { address: '127.0.0.1', interface: 'lo', dhcp: 'off', startedAt: new Date(clock).toISOString(), version: 'test' },
      hosts: () => [row('52:54:00:00:00:01', 'node01', 'node01.yaml'), row('52:54:00:00:00:77', 'node-525400000077', 'default.yaml')],
      build: async () => undefined,
      downloads: async () => [],
      load: () => undefined,
    },
  });
  const app = createHttpApp({
    status: { router: status.router, metrics: new Metrics() },
    assets,
    lookupProfile: (mac) => directory.lookup(mac),
    profileProblems: () => [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log,
    admin: { token, profiles: directory, assets, log },
    hostImages: { links, cache: new HostIsoCache(path.join(root, 'host-images')) },
  });
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await browser?.close();
  status?.close();
  directory?.close();
  if (server) await new Promise((resolve) => server.close(resolve));
  if (root) await rm(root, { recursive: true, force: true });
});

const get = (url: string, headers: Record<string, string> = {}, method = 'GET') => fetch(base + url, { method, headers });
const admin = { authorization: '' };
const makeLink = async (mac: string) => {
  const response = await fetch(`${base}/api/hosts/${mac}/image-link`, { method: 'POST', headers: { authorization: `Bearer ${secret}` } });
  return { status: response.status, body: (await response.json()) as { url?: string; path?: string; expires?: string; error?: string } };
};

test('a host image without the admin token or a link is refused (401), with a wrong token 403, and never made', async () => {
  const bare = await get('/hosts/52-54-00-00-00-01/rackboot.iso');
  assert.equal(bare.status, 401);
  assert.match(bare.headers.get('www-authenticate') ?? '', /^Bearer/);
  assert.match(await bare.text(), /admin download/);
  const wrong = await get('/hosts/52-54-00-00-00-01/rackboot.iso', { authorization: 'Bearer not-the-token' });
  assert.equal(wrong.status, 403);
  assert.match(await wrong.text(), /wrong token/);
  assert.deepEqual(await readdir(path.join(root, 'host-images')).catch(() => []), [], 'no image was made for a refused request');
  const refusals = logLines.filter((line) => line.event === 'host-iso-refused');
  assert.deepEqual(
    refusals.map((line) => line.reason),
    ['no link', 'wrong token'],
  );
});

test('with the admin token the image is made and sent; a MAC with no profile of its own (the default) gets 404', async () => {
  const response = await get('/hosts/52-54-00-00-00-01/rackboot.iso', admin);
  assert.equal(response.status, 200);
  const body = Buffer.from(await response.arrayBuffer());
  assert.equal(body.readUInt16LE(510), 0xaa55, 'a bootable image');
  const stranger = await get('/hosts/52-54-00-00-00-99/rackboot.iso', admin);
  assert.equal(stranger.status, 404);
  assert.match(await stranger.text(), /no profile of its own/);
  const link = await makeLink('52:54:00:00:00:99');
  assert.equal(link.status, 404, 'no link for a MAC without its own profile');
  assert.equal((await readdir(path.join(root, 'host-images'))).length, 1, 'only the one host image');
});

test("a signed link opens its own MAC's image until it expires; other MACs, tampered and expired links are refused", async () => {
  const link = await makeLink('52-54-00-00-00-01');
  assert.equal(link.status, 200);
  assert.match(link.body.url!, /^http:\/\/198\.18\.0\.1:8080\/hosts\/52-54-00-00-00-01\/rackboot\.iso\?expires=\d+&sig=[\w-]{43}$/);
  assert.equal(link.body.expires, new Date(clock + 600_000).toISOString());
  const linkPath = link.body.path!;
  const ok = await get(linkPath);
  assert.equal(ok.status, 200);
  assert.equal(Number(ok.headers.get('content-length')), (await ok.arrayBuffer()).byteLength);
  assert.equal((await get(linkPath, {}, 'HEAD')).status, 200);

  const query = linkPath.slice(linkPath.indexOf('?'));
  const otherMac = await get(`/hosts/52-54-00-00-00-02/rackboot.iso${query}`);
  assert.equal(otherMac.status, 403, "a link does not open another host's image");
  assert.match(await otherMac.text(), /bad signature/);
  const expires = Number(new URL(linkPath, base).searchParams.get('expires'));
  const sig = new URL(linkPath, base).searchParams.get('sig')!;
  const later = await get(`/hosts/52-54-00-00-00-01/rackboot.iso?expires=${expires + 3600}&sig=${sig}`);
  assert.equal(later.status, 403, 'the expiry is signed');
  const flipped = sig.slice(0, -2) + (sig.at(-2) === 'A' ? 'B' : 'A') + sig.at(-1);
  assert.equal((await get(`/hosts/52-54-00-00-00-01/rackboot.iso?expires=${expires}&sig=${flipped}`)).status, 403);
  assert.equal((await get(`/hosts/52-54-00-00-00-01/rackboot.iso?expires=${expires}&sig=short`)).status, 403);

  clock += 601_000;
  const expired = await get(linkPath);
  assert.equal(expired.status, 403);
  assert.match(await expired.text(), /link expired/);
  const reasons = logLines.filter((line) => line.event === 'host-iso-refused').map((line) => line.reason);
  assert.deepEqual(reasons.slice(-5), ['bad signature', 'bad signature', 'bad signature', 'malformed link', 'link expired']);
  assert.ok(!JSON.stringify(logLines.filter((line) => line.event !== 'http')).includes(sig), 'the signature is in no log line of its own');
});

test('the image cache keeps to its disk budget: the least recently used images go, the one just made stays', async () => {
  const dir = path.join(root, 'budget');
  const profiles = new Map(
    ['52:54:00:00:01:01', '52:54:00:00:01:02', '52:54:00:00:01:03', '52:54:00:00:01:04'].map((mac, i) => [mac, makeProfile({ mac, hostname: `b${i + 1}` })]),
  );
  let made = 0;
  // The cache logic only: each "image" is 1000 bytes written by this writer instead of xorriso.
  const write = async (_planned: unknown, output: string) => {
    made += 1;
    await writeFile(output, Buffer.alloc(1000, made));
    return { size: 1000, sha256: String(made).padStart(64, '0') };
  };
  const cache = new HostIsoCache(dir, { budgetBytes: 2500, write });
  const sources = {
    assets,
    lookupProfile: (mac: string) => profiles.get(mac),
    profileProblems: () => [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
  };
  // An image served and let go at once, as a finished download leaves it.
  const served = async (cacheOf: HostIsoCache, mac: string) => {
    const image = await cacheOf.image(sources, mac);
    if (image.kind === 'image') image.release();
    return image;
  };
  const exists = async (mac: string) => (await readdir(path.join(dir, mac.replaceAll(':', '-'))).catch(() => [])).length > 0;

  assert.equal((await served(cache, '52:54:00:00:01:01')).kind, 'image');
  assert.equal((await served(cache, '52:54:00:00:01:02')).kind, 'image');
  const again = await served(cache, '52:54:00:00:01:01'); // 01 is now the most recently used
  assert.ok(again.kind === 'image' && again.cached);
  await served(cache, '52:54:00:00:01:03');
  assert.equal(made, 3);
  assert.deepEqual(await Promise.all(['01', '02', '03'].map((n) => exists(`52:54:00:00:01:${n}`))), [true, false, true], 'the least recently used (02) went');
  assert.equal(cache.cachedBytes, 2000);

  // A new cache on the same folder (a restart) counts what is there.
  const restarted = new HostIsoCache(dir, { budgetBytes: 1500, write });
  await served(restarted, '52:54:00:00:01:04');
  assert.ok(await exists('52:54:00:00:01:04'), 'the image just made stays');
  assert.equal(restarted.cachedBytes, 1000);
  let total = 0;
  for (const host of await readdir(dir)) for (const name of await readdir(path.join(dir, host))) total += (await stat(path.join(dir, host, name))).size;
  assert.equal(total, 1000, 'the folder holds no more than the budget');

  // An image being sent is not deleted under the download, even past the budget.
  const held = await restarted.image(sources, '52:54:00:00:01:04');
  assert.ok(held.kind === 'image');
  await served(restarted, '52:54:00:00:01:01');
  assert.ok(await exists('52:54:00:00:01:04'), 'the image being sent stays');
  held.release();
  held.release(); // a second release changes nothing
  await served(restarted, '52:54:00:00:01:02');
  assert.ok(!(await exists('52:54:00:00:01:04')), 'once sent, it is evicted as the least recently used');
  assert.equal(restarted.cachedBytes, 1000, 'back within the budget');
});

test("the status page gets a host's image through a signed link, asking for the admin token; default-profile hosts have no image button", async () => {
  browser = await launchBrowser();
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/status`);
    await page.waitForSelector('#live.on');
    assert.equal(await page.locator('#hosts tr[data-mac="52:54:00:00:00:77"] button.image-link').count(), 0);
    page.once('dialog', (dialog) => void dialog.accept(secret));
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#hosts tr[data-mac="52:54:00:00:00:01"] button.image-link').click()]);
    assert.match(download.url(), /\/hosts\/52-54-00-00-00-01\/rackboot\.iso\?expires=\d+&sig=[\w-]{43}$/);
    const saved = await download.path();
    assert.equal((await readFile(saved)).readUInt16LE(510), 0xaa55, 'the image itself');
  } finally {
    await page.close();
  }
});
