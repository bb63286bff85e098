import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build, type BuildResult } from '../../builder/build.js';
import { DEFAULT_BUILD_SETTINGS, type BuildSettings } from '../../builder/config.js';
import { builderRecipe } from '../../builder/recipe.js';
import { silentLogger } from '../../server/log.js';
import { lock, repoRoot } from './build.js';

/**
 * The Debian runtime the QEMU tests build: the defaults plus one extra
 * package, so the extra-package path (installed after the runtime's own,
 * recorded with its size) is part of every Debian boot. Every test that
 * builds the Debian runtime uses these packages, so one debootstrap'd tree
 * in the cache serves them all.
 */
export const testDebianSettings: BuildSettings = { ...DEFAULT_BUILD_SETTINGS, packages: ['less'] };

/** The shared Debian builds: testDebianSettings with the Debian guest image, which the guests test boots. */
const sharedSettings: BuildSettings = { ...testDebianSettings, parts: { ...testDebianSettings.parts, debianGuest: true } };

/** Where the shared Debian builds are kept between test processes (and runs), like the tiny one in test/.work/boot-assets. */
export const debianTestAssets = path.join(repoRoot, 'test/.work/debian-assets');

/** What made the builds in the folder: a build of another builder or with other settings is not reused. */
const stampFile = path.join(debianTestAssets, 'made-by.json');

async function stamp(): Promise<string> {
  return JSON.stringify({ recipe: await builderRecipe(repoRoot), settings: sharedSettings });
}

/** Makes `count` fresh builds in the folder (its lock held); the builds an earlier run left go first. */
async function buildFresh(count: number): Promise<BuildResult[]> {
  await rm(path.join(debianTestAssets, 'builds'), { recursive: true, force: true });
  await rm(stampFile, { force: true });
  const results: BuildResult[] = [];
  for (let i = 0; i < count; i++) results.push(await build({ out: debianTestAssets, variant: 'debian', settings: sharedSettings, log: silentLogger() }));
  await writeFile(stampFile, await stamp());
  return results;
}

async function withLock<T>(work: () => Promise<T>): Promise<T> {
  const release = await lock(`${debianTestAssets}.lock`);
  try {
    return await work();
  } finally {
    await release();
  }
}

/**
 * Two Debian builds made now, one after the other from the same cached
 * debootstrap tree (the Debian tests compare them), in the shared folder,
 * whose current build is then the second. Tests that only boot the Debian
 * runtime reuse them through ensureDebianTestBuild.
 */
export function freshDebianTestBuilds(): Promise<[BuildResult, BuildResult]> {
  return withLock(async () => {
    const [first, second] = await buildFresh(2);
    return [first!, second!];
  });
}

/**
 * The shared folder, with a current Debian build made by this builder with
 * these settings: the one the Debian tests made, or one built now. Copy it
 * (cp -al) before serving it: the Debian tests may build there again.
 */
export function ensureDebianTestBuild(): Promise<string> {
  return withLock(async () => {
    const made = await readFile(stampFile, 'utf8').catch(() => undefined);
    const current = await readFile(path.join(debianTestAssets, 'current', 'manifest.json')).catch(() => undefined);
    if (made !== (await stamp()) || current === undefined) await buildFresh(1);
    return debianTestAssets;
  });
}
