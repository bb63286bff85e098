import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { FileCache } from '../../server/http/file-cache.js';

let dir: string;
const file = (name: string) => path.join(dir, name);

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rackboot-file-cache-'));
  for (const [name, size] of [
    ['a', 400],
    ['b', 400],
    ['c', 400],
    ['big', 2000],
  ] as const)
    await writeFile(file(name), Buffer.alloc(size, name));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('files are loaded once, shared, and the least recently used one leaves when the budget is full', async () => {
  const cache = new FileCache(1000);
  const a = await cache.get(file('a'), 400, 'sha-a');
  assert.equal(a?.toString('latin1', 0, 1), 'a');
  assert.equal(await cache.get(file('a'), 400, 'sha-a'), a, 'the same Buffer for every client');
  await cache.get(file('b'), 400, 'sha-b');
  await cache.get(file('a'), 400, 'sha-a'); // a is now the most recent
  await cache.get(file('c'), 400, 'sha-c'); // b goes
  assert.equal(cache.cachedBytes, 800);
  assert.equal(await cache.get(file('a'), 400, 'sha-a'), a, 'a stayed');
  const [loadA, loadB] = await Promise.all([cache.get(file('b'), 400, 'sha-b'), cache.get(file('b'), 400, 'sha-b')]);
  assert.equal(loadA, loadB, 'concurrent first requests share one read');
});

test('a file larger than the budget, a size other than the manifest says, or a missing file is not cached', async () => {
  const cache = new FileCache(1000);
  assert.equal(await cache.get(file('big'), 2000, 'sha-big'), undefined);
  assert.equal(await cache.get(file('a'), 399, 'sha-a'), undefined);
  assert.equal(await cache.get(file('missing'), 10, 'sha-m'), undefined);
  assert.equal(cache.cachedBytes, 0);
  assert.equal(await new FileCache(0).get(file('a'), 400, 'sha-a'), undefined, 'budget 0: every file streams from disk');
});
