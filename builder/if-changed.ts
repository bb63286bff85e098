import {
  RUNTIME_PACKAGE,
  type BuildFileName,
  type Manifest,
  type ManifestChanges,
  type PackageChange,
  type RuntimeVariant,
} from '../server/assets/manifest.js';
import type { AptClient } from './apt.js';
import { resolveKernel } from './build.js';
import { PINNED_PACKAGES, PINNED_PARTS, type BuildSettings, type OptionalPart } from './config.js';
import { isoToolVersions } from './iso.js';

/**
 * `rackboot build --if-changed`: whether a build made now would differ from
 * a channel's current build, and how, without building. A build is made
 * from Debian packages, the builder's own recipe and the settings; so it
 * differs when a package it holds has another version now (a Debian
 * security update, a new pin), when the builder changed, or when the
 * settings ask for another variant, other parts or other extra packages.
 */

/** What a build made now would be made from. */
export interface BuildNow {
  recipe: string;
  variant: RuntimeVariant;
  parts: Record<OptionalPart, boolean>;
  /** Build settings' packages. */
  extraPackages: readonly string[];
  /** The linux-image-<abi>-amd64 package the kernel (meta package or pin) names now. */
  kernelPackage: string;
  /** Each package the current build holds, at the version a build now would take; null when no source offers it. */
  versions: ReadonlyMap<string, string | null>;
}

export type BuildChanges = ManifestChanges;

/** The file each optional part makes. */
const partFiles: Record<OptionalPart, BuildFileName> = {
  memtest: 'memtest86+x64.bin',
  guest: 'guest.initrd.gz',
  debianGuest: 'debian-guest.squashfs',
  iso: 'rackboot.iso',
};

/** Every Debian package a build holds, with its version (the runtime's own package left out: the recipe stands for it). Pure. */
export function manifestPackages(manifest: Manifest): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of manifest.files) {
    for (const ref of [file, ...(file.contains ?? [])]) if (ref.package !== RUNTIME_PACKAGE) found.set(ref.package, ref.version);
  }
  for (const ref of manifest.extraPackages ?? []) found.set(ref.package, ref.version);
  return found;
}

/** How a build made now would differ from `manifest`'s. Pure. */
export function changesSince(manifest: Manifest, now: BuildNow): BuildChanges {
  const reasons: string[] = [];
  if (manifest.recipe !== now.recipe)
    reasons.push(manifest.recipe === undefined ? 'the builder recorded no recipe then' : 'the builder changed (its recipe differs)');
  if (manifest.variant !== now.variant) reasons.push(`variant ${manifest.variant} -> ${now.variant}`);
  const has = new Set(manifest.files.map((file) => file.name));
  for (const [part, file] of Object.entries(partFiles) as Array<[OptionalPart, BuildFileName]>) {
    if (has.has(file) !== now.parts[part]) reasons.push(`${now.parts[part] ? 'adds' : 'drops'} ${file}`);
  }
  const before = (manifest.extraPackages ?? []).filter((ref) => ref.dependency !== true).map((ref) => ref.package);
  const added = now.extraPackages.filter((name) => !before.includes(name));
  const dropped = before.filter((name) => !now.extraPackages.includes(name));
  if (added.length > 0 || dropped.length > 0) {
    reasons.push(`extra packages: ${[...added.map((name) => `+${name}`), ...dropped.map((name) => `-${name}`)].join(' ')}`);
  }
  const packages: PackageChange[] = [];
  const held = manifestPackages(manifest);
  if (!held.has(now.kernelPackage)) {
    const old = [...held.keys()].find((name) => /^linux-image-\d.*-amd64$/.test(name));
    packages.push({ package: PINNED_PACKAGES.kernel, from: old ?? null, to: now.kernelPackage });
  }
  for (const [name, version] of held) {
    if (/^linux-image-\d.*-amd64$/.test(name) && name !== now.kernelPackage) continue; // the kernel moved to another package: said above
    const wanted = now.versions.get(name);
    if (wanted === undefined || wanted === version) continue;
    packages.push({ package: name, from: version, to: wanted });
  }
  packages.sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : 0));
  return { since: manifest.id, packages, reasons };
}

/** Whether anything changed. */
export function changed(changes: BuildChanges): boolean {
  return changes.packages.length > 0 || changes.reasons.length > 0;
}

/** The shell around changesSince: ask apt (and dpkg, for the image tools this machine has installed) what a build would take now. */
export async function buildNow(manifest: Manifest, settings: BuildSettings, apt: AptClient, recipe: string): Promise<BuildNow> {
  const { kernelPackage } = await resolveKernel(apt, settings.versions.kernel);
  const names = [...manifestPackages(manifest).keys()];
  const versions = new Map(await apt.candidates([...new Set([...names, kernelPackage])]));
  // A pinned part is taken at its pin, whatever apt's candidate is.
  for (const part of PINNED_PARTS) if (settings.versions[part] !== '' && part !== 'kernel') versions.set(PINNED_PACKAGES[part], settings.versions[part]);
  if (settings.versions.kernel !== '') versions.set(kernelPackage, settings.versions.kernel);
  // The image tools are this machine's installed ones, not apt's candidates.
  if (manifest.files.some((file) => file.name === 'rackboot.iso')) for (const tool of await isoToolVersions()) versions.set(tool.package, tool.version);
  return { recipe, variant: settings.variant, parts: settings.parts, extraPackages: settings.packages, kernelPackage, versions };
}
