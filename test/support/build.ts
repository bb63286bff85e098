import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { builderRecipe } from '../../builder/recipe.js';
import { createLogger } from '../../server/log.js';
import { repoRoot } from './repo.js';

export { repoRoot };
export const cliPath = path.join(repoRoot, 'dist/server/cli.js');
export const testAssets = path.join(repoRoot, 'test/.work/boot-assets');

/** A lock between test processes: a folder made with mkdir, removed by the returned function; one older than 30 min is a dead holder's. */
export async function lock(dir: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      await mkdir(dir);
      return () => rm(dir, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - (await stat(dir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 30 * 60_000) await rm(dir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`waited too long for ${dir}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/**
 * The boot parts the end-to-end tests boot: built once per builder version
 * with the real builder (real Debian packages, shared download cache) and
 * reused by every test process; a lock keeps parallel test files from
 * building twice.
 */
export async function ensureTestBuild(): Promise<string> {
  await mkdir(path.dirname(testAssets), { recursive: true });
  const release = await lock(`${testAssets}.lock`);
  try {
    // A build made by another builder (its recipe differs) is built again.
    const recipe = await builderRecipe(repoRoot);
    const manifest = (await readFile(path.join(testAssets, 'current/manifest.json'), 'utf8').then(JSON.parse, () => undefined)) as
      { recipe?: string } | undefined;
    if (manifest?.recipe !== recipe) {
      const { build } = await import('../../builder/build.js');
      await build({ out: testAssets, variant: 'tiny', log: createLogger({ level: 'warn', pretty: false }) });
    }
    return testAssets;
  } finally {
    await release();
  }
}
