import { rm } from 'node:fs/promises';
import path from 'node:path';
import { build, type BuildResult } from '../../builder/build.js';
import { DEFAULT_BUILD_SETTINGS, type BuildSettings } from '../../builder/config.js';
import { builderRecipe } from '../../builder/recipe.js';
import { silentLogger } from '../../server/log.js';
import type { Manifest } from '../../server/assets/manifest.js';
import { debianGuestImage } from '../../server/profiles/domain.js';
import { currentManifest, repoRoot, withAssetsLock } from './build.js';

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

/** Whether a build's manifest says this builder made it with sharedSettings: the Debian variant, the same extra packages, the guest image. */
async function madeWithSharedSettings(manifest: Manifest | undefined): Promise<boolean> {
  if (manifest === undefined || manifest.recipe !== (await builderRecipe(repoRoot)) || manifest.variant !== 'debian') return false;
  const asked = (manifest.extraPackages ?? []).filter((extra) => extra.dependency !== true).map((extra) => extra.package);
  return asked.join(' ') === (sharedSettings.packages ?? []).join(' ') && manifest.files.some((file) => file.name === debianGuestImage);
}

/** Makes `count` fresh builds in the folder (its lock held); the builds an earlier run left go first. */
async function buildFresh(count: number): Promise<BuildResult[]> {
  await rm(path.join(debianTestAssets, 'builds'), { recursive: true, force: true });
  const results: BuildResult[] = [];
  for (let i = 0; i < count; i++) results.push(await build({ out: debianTestAssets, variant: 'debian', settings: sharedSettings, log: silentLogger() }));
  return results;
}

/**
 * Two Debian builds made now, one after the other from the same cached
 * debootstrap tree (the Debian tests compare them), in the shared folder,
 * whose current build is then the second. Tests that only boot the Debian
 * runtime reuse them through ensureDebianTestBuild.
 */
export function freshDebianTestBuilds(): Promise<[BuildResult, BuildResult]> {
  return withAssetsLock(debianTestAssets, async () => {
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
  return withAssetsLock(debianTestAssets, async () => {
    if (!(await madeWithSharedSettings(await currentManifest(debianTestAssets)))) await buildFresh(1);
    return debianTestAssets;
  });
}
