import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { AssetStore, switchCurrent, type Build } from '../../server/assets/builds.js';
import { createHttpApp } from '../../server/http/app.js';
import { decideRange, etagOf, isoSanbootUrl, listImages, notModified, renderImageList, renderSha256Sums } from '../../server/http/downloads.js';
import { silentLogger } from '../../server/log.js';
import type { Profile } from '../../server/profiles/profile.js';
import { ensureTestBuild } from '../support/build.js';
import { writeTestBuild } from '../support/assets.js';
import { makeProfile } from '../support/profiles.js';

/**
 * The download area on loopback, with the shared test build's real image,
 * driven by real curl: listing, SHA256SUMS, HEAD, ranges, revalidation, a
 * download killed half-way and resumed with `curl -C -`, and per-host images.
 */

const exec = promisify(execFile);
let server: Server;
let base: string;
let work: string;
let build: Build;
let iso: { path: string; size: number; sha256: string };
const profiles = new Map<string, Profile>();
/** Per-host images are admin downloads. */
const adminToken = 'downloads-test-admin-token';
const bearer = ['-H', `Authorization: Bearer ${adminToken}`];

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

before(async () => {
  const assets = await ensureTestBuild();
  work = await mkdtemp(path.join(tmpdir(), 'rackboot-downloads-'));
  const store = new AssetStore(assets);
  build = (await store.current())!;
  const entry = build.manifest.files.find((f) => f.name === 'rackboot.iso')!;
  iso = { path: path.join(build.dir, 'rackboot.iso'), size: entry.size, sha256: entry.sha256 };
  const app = createHttpApp({
    assets: store,
    lookupProfile: (mac) => profiles.get(mac),
    profileProblems: () => [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log: silentLogger(),
    hostImages: { token: { matches: (presented) => presented === adminToken } },
  });
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  if (server) await new Promise((resolve) => server.close(resolve));
  if (work) await rm(work, { recursive: true, force: true });
});

/** Real curl; returns the status and headers (lower-case names) of its last response. */
async function curl(args: string[]): Promise<{ status: number; headers: Map<string, string> }> {
  const headerFile = path.join(work, `headers-${Math.random().toString(16).slice(2)}`);
  await exec('curl', ['-s', '-D', headerFile, ...(args.includes('-o') ? [] : ['-o', '/dev/null']), ...args]);
  const blocks = (await readFile(headerFile, 'latin1')).split('\r\n\r\n').filter(Boolean);
  const [statusLine, ...lines] = blocks[blocks.length - 1]!.split('\r\n');
  const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as [string, string]));
  return { status: Number(statusLine!.split(' ')[1]), headers };
}

test('ranges: one range, suffix, open end, clamped end; 416 past the end; anything odd means the whole file', () => {
  assert.deepEqual(decideRange(undefined, 100), { kind: 'full' });
  assert.deepEqual(decideRange('bytes=0-9', 100), { kind: 'partial', start: 0, end: 9 });
  assert.deepEqual(decideRange('bytes=90-', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(decideRange('bytes=90-500', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(decideRange('bytes=-10', 100), { kind: 'partial', start: 90, end: 99 });
  assert.deepEqual(decideRange('bytes=-500', 100), { kind: 'partial', start: 0, end: 99 });
  assert.deepEqual(decideRange('bytes=100-', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(decideRange('bytes=-0', 100), { kind: 'unsatisfiable' });
  assert.deepEqual(decideRange('bytes=0-1,5-6', 100), { kind: 'full' });
  assert.deepEqual(decideRange('bytes=9-3', 100), { kind: 'full' });
  assert.deepEqual(decideRange('items=0-1', 100), { kind: 'full' });
  assert.deepEqual(decideRange('bytes=0-9', 100, '"other"', '"mine"'), { kind: 'full' }, 'If-Range with a stale tag');
  assert.deepEqual(decideRange('bytes=0-9', 100, '"mine"', '"mine"'), { kind: 'partial', start: 0, end: 9 });
});

test('revalidation: If-None-Match (any of a list, weak or strong), else If-Modified-Since', () => {
  const tag = etagOf('ab'.repeat(32));
  const mtime = new Date('2026-01-01T00:00:00Z');
  assert.ok(notModified({ 'if-none-match': `"x", W/${tag}` }, tag, mtime));
  assert.ok(notModified({ 'if-none-match': '*' }, tag, mtime));
  assert.ok(!notModified({ 'if-none-match': '"x"', 'if-modified-since': mtime.toUTCString() }, tag, mtime), 'If-None-Match wins');
  assert.ok(notModified({ 'if-modified-since': mtime.toUTCString() }, tag, mtime));
  assert.ok(!notModified({ 'if-modified-since': new Date('2025-01-01').toUTCString() }, tag, mtime));
  assert.ok(!notModified({}, tag, mtime));
  // RFC 9110 section 13.1.3: a date in the future is invalid and ignored.
  const now = mtime.getTime() + 60_000;
  assert.ok(notModified({ 'if-modified-since': new Date(now).toUTCString() }, tag, mtime, now));
  assert.ok(!notModified({ 'if-modified-since': new Date(now + 1000).toUTCString() }, tag, mtime, now));
});

test('GET /iso/ lists the images as JSON and HTML; SHA256SUMS checks a real download', async () => {
  const list = (await (await fetch(`${base}/iso/`, { headers: { accept: 'application/json' } })).json()) as Array<Record<string, unknown>>;
  const name = `rackboot-${build.id}.iso`;
  assert.deepEqual(
    list.find((i) => i.build === build.id),
    { name, size: iso.size, sha256: iso.sha256, build: build.id, current: true, channel: 'default', currentFor: ['default'], changes: [] },
  );
  const html = await (await fetch(`${base}/iso`)).text();
  assert.match(html, new RegExp(`<a href="/iso/${name.replace(/[.+]/g, '\\$&')}">`));
  const sums = await (await fetch(`${base}/iso/SHA256SUMS`)).text();
  assert.equal(sums, renderSha256Sums(list as never));
  await exec('curl', ['-sf', '-o', path.join(work, name), `${base}/iso/${name}`]);
  await exec('curl', ['-sf', '-o', path.join(work, 'SHA256SUMS'), `${base}/iso/SHA256SUMS`]);
  execFileSync('sha256sum', ['-c', '--ignore-missing', '--strict', 'SHA256SUMS'], { cwd: work, stdio: 'pipe' });
  const unknown = await fetch(`${base}/iso/rackboot-nope.iso`);
  assert.equal(unknown.status, 404);
  assert.match(await unknown.text(), /no image "rackboot-nope.iso"/);
});

test("the image list: each build's channel, and the channels whose current build it is", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-iso-channels-'));
  try {
    await writeTestBuild(dir, 'd1', { 'rackboot.iso': Buffer.from('default one') }, '2026-11-20T10:00:00Z');
    await writeTestBuild(dir, 't1', { 'rackboot.iso': Buffer.from('testing one') }, '2026-11-21T10:00:00Z', 'testing');
    const t2 = await writeTestBuild(dir, 't2', { 'rackboot.iso': Buffer.from('testing two') }, '2026-11-22T10:00:00Z', 'testing');
    // t2 was made by --if-changed, which recorded why.
    const changes = { since: 't1', packages: [{ package: 'xen-hypervisor-4.17-amd64', from: '4.17.7-1', to: '4.17.7-2' }], reasons: ['adds guest.initrd.gz'] };
    await writeFile(path.join(dir, 'builds', 't2', 'manifest.json'), JSON.stringify({ ...t2, changes }));
    await writeTestBuild(dir, 'n1', { vmlinuz: Buffer.from('no image') }, '2026-11-23T10:00:00Z', 'testing');
    await switchCurrent(dir, 'd1');
    await switchCurrent(dir, 't2', 'testing');
    // An admin made d1 the stable channel's too.
    await switchCurrent(dir, 'd1', 'stable');
    const images = await listImages(new AssetStore(dir));
    assert.deepEqual(
      images.map(({ build, current, channel, currentFor }) => ({ build, current, channel, currentFor })),
      [
        { build: 't2', current: false, channel: 'testing', currentFor: ['testing'] },
        { build: 't1', current: false, channel: 'testing', currentFor: [] },
        { build: 'd1', current: true, channel: 'default', currentFor: ['default', 'stable'] },
      ],
    );
    const html = renderImageList(images);
    assert.match(html, /rackboot-t2\.iso<\/a> \(current: testing\)<\/td>/);
    assert.match(html, /rackboot-d1\.iso<\/a> \(current: default, stable\)<\/td>/);
    assert.match(html, /rackboot-t1\.iso<\/a><\/td>/);
    assert.deepEqual(images[0]!.changes, ['adds guest.initrd.gz', 'xen-hypervisor-4.17-amd64: 4.17.7-1 -> 4.17.7-2']);
    assert.match(html, /<td>adds guest\.initrd\.gz<br>xen-hypervisor-4\.17-amd64: 4\.17\.7-1 -&#62; 4\.17\.7-2<\/td><\/tr>/);
    assert.equal(renderSha256Sums(images).split('\n').filter(Boolean).length, 3, 'every image is in SHA256SUMS');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('HEAD, Range (206), a bad range (416), ETag and If-None-Match (304), Last-Modified', async () => {
  const url = `${base}/iso/rackboot-${build.id}.iso`;
  const head = await curl(['-I', url]);
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(iso.size));
  assert.equal(head.headers.get('etag'), `"sha256-${iso.sha256}"`);
  assert.equal(head.headers.get('accept-ranges'), 'bytes');
  assert.equal(head.headers.get('last-modified'), (await stat(iso.path)).mtime.toUTCString());

  const part = path.join(work, 'part');
  const ranged = await curl(['-r', '1000-1999', '-o', part, url]);
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get('content-range'), `bytes 1000-1999/${iso.size}`);
  assert.deepEqual(await readFile(part), (await readFile(iso.path)).subarray(1000, 2000));

  const bad = await curl(['-r', `${iso.size}-`, '-o', part, url]);
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.get('content-range'), `bytes */${iso.size}`);

  const same = await curl(['-H', `If-None-Match: "sha256-${iso.sha256}"`, '-o', part, url]);
  assert.equal(same.status, 304);
  const changed = await curl(['-H', 'If-None-Match: "sha256-0000"', '-I', url]);
  assert.equal(changed.status, 200);
  const modified = (await stat(iso.path)).mtime.toUTCString();
  assert.equal((await curl(['-H', `If-Modified-Since: ${modified}`, '-o', part, url])).status, 304);
  const future = new Date(Date.now() + 365 * 86_400_000).toUTCString();
  assert.equal((await curl(['-H', `If-Modified-Since: ${future}`, '-o', part, url])).status, 200, 'a date in the future is ignored');
});

test('a download killed half-way resumes with curl -C - to the right sha256', async () => {
  const target = path.join(work, 'resumed.iso');
  const url = `${base}/iso/rackboot-${build.id}.iso`;
  const first = spawn('curl', ['-s', '--limit-rate', '4M', '-o', target, url], { stdio: 'ignore' });
  const exited = new Promise((resolve) => first.once('exit', resolve));
  for (let i = 0; i < 100 && ((await stat(target).catch(() => undefined))?.size ?? 0) < 2_000_000; i++) await delay(50);
  first.kill('SIGKILL');
  await exited;
  const partial = (await stat(target)).size;
  assert.ok(partial > 0 && partial < iso.size, `partial download ${partial} of ${iso.size} bytes`);
  const { stderr } = await exec('curl', ['-sS', '-v', '-C', '-', '-o', target, url]);
  assert.match(stderr, new RegExp(`Range: bytes=${partial}-`), 'curl asked for the rest only');
  assert.match(stderr, /< HTTP\/1\.1 206/);
  assert.equal(sha256(await readFile(target)), iso.sha256);
});

test('GET /hosts/<mac>/rackboot.iso: made on demand with the profile on the boot line, cached by build and profile', async () => {
  const mac = '52:54:00:15:0b:01';
  profiles.set(mac, makeProfile({ mac, hostname: 'dl-node', boot: { entry: 'testing', menuTimeout: 5, xenArgs: '', kernelArgs: '' } }));
  const url = `${base}/hosts/52-54-00-15-0b-01/rackboot.iso`;
  const first = await curl([...bearer, '-o', path.join(work, 'host1.iso'), url]);
  assert.equal(first.status, 200);
  const again = await curl([...bearer, '-o', path.join(work, 'host2.iso'), url]);
  assert.equal(again.headers.get('etag'), first.headers.get('etag'));
  const data = await readFile(path.join(work, 'host1.iso'));
  assert.equal(`"sha256-${sha256(data)}"`, first.headers.get('etag'));
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', path.join(work, 'host1.iso'), '-extract', '/boot/grub/grub.cfg', path.join(work, 'host1.cfg')], {
    stdio: 'pipe',
  });
  const cfg = await readFile(path.join(work, 'host1.cfg'), 'utf8');
  assert.match(cfg, /^set default=testing$/m, "the profile's entry is the default");
  assert.match(cfg, / rackboot\.hostname=dl-node rackboot\.net=static rackboot\.ip=198\.18\.0\.50\/24 rackboot\.gw=198\.18\.0\.1 rackboot\.dns=198\.18\.0\.1 /);
  assert.match(cfg, /rackboot\.server=http:\/\/198\.18\.0\.1:8080 rackboot\.mac=52:54:00:15:0b:01/);
  assert.doesNotMatch(cfg, /\$6\$/, 'the root hash never goes on a boot line');

  profiles.set(mac, makeProfile({ mac, hostname: 'dl-node2' }));
  const changed = await curl([...bearer, '-o', path.join(work, 'host3.iso'), url]);
  assert.notEqual(changed.headers.get('etag'), first.headers.get('etag'));
  const kept = await readdir(path.join(path.dirname(path.dirname(iso.path)), '..', 'host-images', '52-54-00-15-0b-01'));
  assert.equal(kept.filter((n) => n.endsWith('.iso')).length, 1, 'the older image of the host is gone');

  const headers = { Authorization: `Bearer ${adminToken}` };
  assert.equal((await fetch(`${base}/hosts/52-54-00-15-0b-02/rackboot.iso`, { headers })).status, 404);
  const bad = await fetch(`${base}/hosts/nonsense/rackboot.iso`, { headers });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /"nonsense" is not a MAC address/);
});

test('the iPXE sanboot entry points at the pinned build image, which answers HEAD and ranges', async () => {
  const url = isoSanbootUrl({ address: '198.18.0.1', httpPort: 8080 }, build.id);
  assert.equal(url, `http://198.18.0.1:8080/builds/${build.id}/rackboot.iso`);
  const local = url.replace('http://198.18.0.1:8080', base);
  const head = await curl(['-I', local]);
  assert.equal(head.headers.get('content-length'), String(iso.size));
  const part = await curl(['-r', '0-511', '-o', path.join(work, 'mbr'), local]);
  assert.equal(part.status, 206);
  assert.equal((await readFile(path.join(work, 'mbr'))).readUInt16LE(510), 0xaa55);
});

test('boot files of a build (sendfile): byte-exact in full and by range, typed by name, with the strong ETag', async () => {
  const entry = build.manifest.files.find((f) => f.name === 'initrd.gz')!;
  const url = `${base}/builds/${build.id}/initrd.gz`;
  for (let i = 0; i < 2; i++) {
    // Twice: the second request finds the file in the page cache.
    const res = await fetch(url);
    assert.equal(res.headers.get('content-type'), 'application/gzip');
    assert.equal(res.headers.get('etag'), `"sha256-${entry.sha256}"`);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), entry.sha256);
  }
  const tail = await fetch(url, { headers: { range: 'bytes=-1000' } });
  assert.equal(tail.status, 206);
  assert.deepEqual(Buffer.from(await tail.arrayBuffer()), (await readFile(path.join(build.dir, 'initrd.gz'))).subarray(entry.size - 1000));
  assert.equal((await fetch(`${base}/builds/${build.id}/xen`, { method: 'HEAD' })).headers.get('content-type'), 'application/octet-stream');
});
