import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { builderRecipe } from '../../builder/recipe.js';
import { parseManifest, type Manifest } from '../../server/assets/manifest.js';
import { createLogger } from '../../server/log.js';
import { repoRoot } from './repo.js';

export { repoRoot };
export const cliPath = path.join(repoRoot, 'dist/server/cli.js');
export const testAssets = path.join(repoRoot, 'test/.work/boot-assets');

async function lock(dir: string): Promise<() => Promise<void>> {
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
 * Runs `work` holding the lock of the assets folder `assets` between test
 * processes (a folder `<assets>.lock` made with mkdir; one older than 30
 * min is a dead holder's).
 */
export async function withAssetsLock<T>(assets: string, work: () => Promise<T>): Promise<T> {
  await mkdir(path.dirname(assets), { recursive: true });
  const release = await lock(`${assets}.lock`);
  try {
    return await work();
  } finally {
    await release();
  }
}

/** The manifest of the assets folder's current build, or undefined when it has none that parses. */
export async function currentManifest(assets: string): Promise<Manifest | undefined> {
  try {
    return parseManifest(JSON.parse(await readFile(path.join(assets, 'current/manifest.json'), 'utf8')));
  } catch {
    return undefined;
  }
}

/**
 * The boot parts the end-to-end tests boot: built once per builder version
 * with the real builder (real Debian packages, shared download cache) and
 * reused by every test process; a lock keeps parallel test files from
 * building twice.
 */
export function ensureTestBuild(): Promise<string> {
  return withAssetsLock(testAssets, async () => {
    // A build made by another builder (its recipe differs) is built again.
    if ((await currentManifest(testAssets))?.recipe !== (await builderRecipe(repoRoot))) {
      const { build } = await import('../../builder/build.js');
      await build({ out: testAssets, variant: 'tiny', log: createLogger({ level: 'warn', pretty: false }) });
    }
    return testAssets;
  });
}
