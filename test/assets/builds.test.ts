import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AssetStore, switchCurrent } from '../../server/assets/builds.js';
import { writeTestBuild } from '../support/assets.js';

let assets: string;

before(async () => {
  assets = await mkdtemp(path.join(tmpdir(), 'rackboot-assets-'));
  await writeTestBuild(assets, 'b1', { vmlinuz: Buffer.from('one') }, '2026-11-20T10:00:00Z');
  await writeTestBuild(assets, 'b2', { vmlinuz: Buffer.from('two'), 'rackboot.iso': Buffer.from('iso') }, '2026-11-21T10:00:00Z');
  // Not builds: one being written, one without a manifest, one whose manifest is malformed.
  await writeTestBuild(assets, '.partial-abc', { vmlinuz: Buffer.from('half') });
  await mkdir(path.join(assets, 'builds', 'empty'));
  await mkdir(path.join(assets, 'builds', 'broken'));
  await writeFile(path.join(assets, 'builds', 'broken', 'manifest.json'), JSON.stringify({ id: 'broken', created: 'x', release: 'bookworm', files: [] }));
});
after(() => rm(assets, { recursive: true, force: true }));

test('list: every build with a readable manifest, in order of id; folders being written, empty or broken are not builds', async () => {
  const store = new AssetStore(assets);
  assert.deepEqual(
    (await store.list()).map((build) => [build.id, build.manifest.files.map((file) => file.name)]),
    [
      ['b1', ['vmlinuz']],
      ['b2', ['vmlinuz', 'rackboot.iso']],
    ],
  );
});

test('a malformed manifest is an error naming its file and field, not a build with undefined fields', async () => {
  await assert.rejects(new AssetStore(assets).build('broken'), (error: Error) => {
    assert.equal(error.message, `${path.join(assets, 'builds', 'broken', 'manifest.json')}: manifest: created "x" is not a date`);
    return true;
  });
});

test('switchTo points current at a build atomically, and refuses one that does not exist', async () => {
  const store = new AssetStore(assets);
  assert.equal(await store.current(), undefined);
  await store.switchTo('b1');
  assert.equal((await store.current())?.id, 'b1');
  await switchCurrent(assets, 'b2');
  assert.equal(await readlink(path.join(assets, 'current')), path.join('builds', 'b2'));
  assert.equal((await store.current())?.id, 'b2');
  await assert.rejects(store.switchTo('nope'), new RegExp(`^Error: no build "nope" in ${path.join(assets, 'builds').replaceAll('/', '\\/')}$`));
  assert.equal((await store.current())?.id, 'b2');
});

test("each channel has its own current build, switched the same way; the default channel's is current", async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-channels-'));
  try {
    await writeTestBuild(dir, 'c1', { vmlinuz: Buffer.from('one') }, '2026-11-20T10:00:00Z');
    await writeTestBuild(dir, 'c2', { vmlinuz: Buffer.from('two') }, '2026-11-21T10:00:00Z');
    const store = new AssetStore(dir);
    assert.deepEqual([...(await store.channels()).keys()], [], 'no channel before the first build for one');
    assert.equal(await store.current('testing'), undefined);
    await store.switchTo('c1');
    const umask = process.umask(0o077);
    try {
      await store.switchTo('c2', 'testing');
    } finally {
      process.umask(umask);
    }
    assert.equal(await readlink(path.join(dir, 'channels', 'testing')), path.join('..', 'builds', 'c2'));
    assert.equal((await store.current())?.id, 'c1', 'the default channel is untouched');
    assert.equal((await store.current('default'))?.id, 'c1');
    assert.equal((await store.current('testing'))?.id, 'c2');
    await switchCurrent(dir, 'c1', 'stable');
    assert.deepEqual(
      [...(await store.channels())].map(([name, build]) => `${name}=${build.id}`),
      ['stable=c1', 'testing=c2'],
    );
    // A name that is no channel never reaches the file system.
    assert.equal(await store.current('../current'), undefined);
    await assert.rejects(switchCurrent(dir, 'c1', '../x'), /cannot switch channel "\.\.\/x": not a channel name/);
    assert.deepEqual((await readdir(path.join(dir, 'channels'))).sort(), ['stable', 'testing'], 'no temporary link left behind');
    assert.equal((await stat(path.join(dir, 'channels'))).mode & 0o777, 0o755, 'the channels folder is readable by all, whatever the umask');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
