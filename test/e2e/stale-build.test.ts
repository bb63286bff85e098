import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ensureTestBuild } from '../support/build.js';
import { startRack } from '../support/boot.js';

/**
 * `serve` on a build made by another version of the builder (its manifest's
 * recipe differs from the sources' own) says so at start: its runtime may
 * not match the profiles, as when dom0's size changed between versions.
 */

const scratch = await mkdtemp(path.join(tmpdir(), 'rackboot-stale-'));
after(() => rm(scratch, { recursive: true, force: true }));

const staleWarning = /the current build was made by another version of the builder/;

test('a build from these sources is served without a warning; one from another builder is served with one', async () => {
  const assets = await ensureTestBuild();
  const fresh = await startRack({});
  try {
    const serving = fresh.events().find((e) => e.msg === 'serving build');
    assert.ok(serving, 'the server names the build it serves');
    assert.ok(!fresh.events().some((e) => staleWarning.test(String(e.msg))), 'no warning for a build of these sources');
  } finally {
    await fresh.close();
  }

  // The same build, as an older builder wrote it: no recipe in its manifest
  // (the files are hard links; the manifest is a new file).
  const older = path.join(scratch, 'assets');
  execFileSync('cp', ['-al', assets, older]);
  const manifestPath = path.join(await realpath(path.join(older, 'current')), 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { id: string; recipe?: string };
  assert.match(manifest.recipe ?? '', /^[0-9a-f]{64}$/, 'the test build records its recipe');
  delete manifest.recipe;
  await rm(manifestPath);
  await writeFile(manifestPath, JSON.stringify(manifest));
  const stale = await startRack({}, { assets: older });
  try {
    const warning = stale.events().find((e) => staleWarning.test(String(e.msg)));
    assert.ok(warning, 'the server warns that the build is from another builder');
    assert.equal(warning.level, 40);
    assert.equal(warning.build, manifest.id);
  } finally {
    await stale.close();
  }
});
