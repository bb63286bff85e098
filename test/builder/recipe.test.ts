import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { builderRecipe, packageRoot } from '../../builder/recipe.js';
import { repoRoot } from '../support/build.js';

const scratch = await mkdtemp(path.join(tmpdir(), 'rackboot-recipe-'));
after(() => rm(scratch, { recursive: true, force: true }));

test('the recipe changes with the runtime scripts, the builder code and its settings, and with nothing else', async () => {
  assert.equal(packageRoot(), repoRoot);
  const tree = path.join(scratch, 'tree');
  await cp(path.join(repoRoot, 'builder'), path.join(tree, 'builder'), { recursive: true });
  const original = await builderRecipe(repoRoot);
  assert.match(original, /^[0-9a-f]{64}$/);
  assert.equal(await builderRecipe(tree), original, 'the same sources give the same recipe wherever they are');

  await writeFile(path.join(tree, 'builder', 'README.md'), 'changed\n');
  await writeFile(path.join(tree, 'builder', 'notes.txt'), 'new\n');
  assert.equal(await builderRecipe(tree), original, 'documentation does not shape the parts');

  const seen = new Set([original]);
  for (const file of ['runtime/init-debian', 'initrd.ts', 'build.yaml']) {
    await appendFile(path.join(tree, 'builder', file), '\n');
    const recipe = await builderRecipe(tree);
    assert.ok(!seen.has(recipe), `a change to builder/${file} gives a new recipe`);
    seen.add(recipe);
  }
});
