/**
 * The build manifest: what is in ASSETS/builds/<id>/ and where each file
 * came from. The one type and parser for it: the builder writes it
 * (createManifest), the server reads it (parseManifest). The file names are
 * a contract between the two: the server serves files by these names. Pure.
 */

/** Files every build folder holds, besides manifest.json. */
export const BUILD_FILES = ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const;
/** The iPXE loaders firmware fetches by bare name (TFTP, or HTTP Boot's /ipxe.efi) before any boot script. */
export const LOADER_FILES: ReadonlySet<string> = new Set(['undionly.kpxe', 'ipxe.efi', 'snponly.efi']);
/**
 * Files a build may hold besides those: the demo guest's userland (booted
 * with the same vmlinuz as a PV domU) and memtest86+ for BIOS and EFI. The
 * server offers a menu entry only for what a build has, so older builds
 * without them stay valid. rackboot.iso is the CD/USB image, made unless
 * `--no-iso`. debian-guest.squashfs is the Debian guest image, made with
 * `--debian-guest`.
 */
export const OPTIONAL_BUILD_FILES = ['guest.initrd.gz', 'debian-guest.squashfs', 'memtest86+x64.bin', 'memtest86+x64.efi', 'rackboot.iso'] as const;
export type BuildFileName = (typeof BUILD_FILES)[number] | (typeof OPTIONAL_BUILD_FILES)[number];
const ALL_BUILD_FILES: readonly string[] = [...BUILD_FILES, ...OPTIONAL_BUILD_FILES];

/**
 * What initrd.gz boots into: "debian", a pruned Debian dom0 with the Xen
 * toolstack and sshd, or "tiny", busybox only (quick to build and boot, for
 * tests of everything before the runtime).
 */
export const RUNTIME_VARIANTS = ['debian', 'tiny'] as const;
export type RuntimeVariant = (typeof RUNTIME_VARIANTS)[number];

export const MANIFEST_NAME = 'manifest.json';
export const RELEASE = 'bookworm';
/** The runtime initrd is rackboot's own product; its version is rackboot's. */
export const RUNTIME_PACKAGE = 'rackboot-runtime';

export interface PackageRef {
  package: string;
  version: string;
}

export interface ManifestFile extends PackageRef {
  name: BuildFileName;
  size: number;
  /** Lower-case hex. */
  sha256: string;
  /** For initrd.gz: the Debian packages it was made from. */
  contains?: PackageRef[];
}

export interface Manifest {
  id: string;
  /** ISO 8601, UTC. */
  created: string;
  release: typeof RELEASE;
  variant: RuntimeVariant;
  /** builderRecipe() of the source tree that made it; absent in builds made before it was recorded. */
  recipe?: string;
  /** The channel it was built for (`rackboot build --channel`); absent for the default channel. */
  channel?: string;
  /** The extra Debian packages its runtime carries (build settings' `packages`), as installed, with dpkg's Installed-Size. */
  extraPackages?: ExtraPackage[];
  /** What changed since the build it followed (`rackboot build --if-changed`). */
  changes?: ManifestChanges;
  files: ManifestFile[];
}

export interface ManifestChanges {
  /** The channel's current build it was compared with. */
  since: string;
  packages: PackageChange[];
  /** What else changed: the builder, the variant, the parts, the extra packages. */
  reasons: string[];
}

/** What createManifest records beside the files, when there is something to record. */
export interface ManifestExtras {
  extraPackages?: ExtraPackage[];
  changes?: ManifestChanges;
}

/** A package whose version differs from the build before (`rackboot build --if-changed`); null: not there. */
export interface PackageChange {
  package: string;
  from: string | null;
  to: string | null;
}

export interface ExtraPackage extends PackageRef {
  /** KiB, as dpkg records it (Installed-Size): what the package adds to the runtime's tree before pruning. */
  installedKiB: number;
  /** Not asked for: installed because an extra package depends on it. */
  dependency?: true;
}

/** A channel's name in a manifest or a link: a lower-case word (builder/config.ts checks it with its reasons). */
export const CHANNEL_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** What buildId() makes: the form a profile's boot.build must have. */
export const BUILD_ID = /^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$/;

/** The channel of builds made without --channel; its current build is ASSETS/current, and its manifests name no channel. */
export const DEFAULT_CHANNEL = 'default';

/**
 * A build id that sorts by time: "20250520T101500.123Z-1a2b3c4d" (UTC, with
 * milliseconds so two builds in one second differ) plus the first 8 hex digits
 * of a hash over the files' names and sha256s.
 */
export function buildId(created: Date, contentHash: string): string {
  if (!/^[0-9a-f]{8,}$/.test(contentHash)) throw new Error(`content hash "${contentHash}" is not lower-case hex`);
  const stamp = created.toISOString().replace(/[-:]/g, '');
  return `${stamp}-${contentHash.slice(0, 8)}`;
}

/** The text hashed into the build id: one "name sha256" line per file, sorted by name. */
export function contentDigestInput(files: Array<{ name: string; sha256: string }>): string {
  return [...files]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => `${f.name} ${f.sha256}\n`)
    .join('');
}

/**
 * A manifest with files in BUILD_FILES then OPTIONAL_BUILD_FILES order, as
 * the builder writes it; throws when a required file is missing or a name
 * is unknown or repeated.
 */
export function createManifest(
  id: string,
  created: Date,
  files: ManifestFile[],
  variant: RuntimeVariant,
  recipe?: string,
  channel?: string,
  extras: ManifestExtras = {},
): Manifest {
  const manifest = orderedManifest(id, created.toISOString(), files, variant, recipe, channel, extras);
  const missing = BUILD_FILES.filter((name) => !manifest.files.some((file) => file.name === name));
  if (missing.length > 0) throw new Error(`manifest is missing ${missing.join(', ')}`);
  return manifest;
}

/** The fields in order, with the checks every manifest passes, complete or not. */
function orderedManifest(
  id: string,
  created: string,
  files: ManifestFile[],
  variant: RuntimeVariant,
  recipe: string | undefined,
  channel: string | undefined,
  extras: ManifestExtras = {},
): Manifest {
  const { extraPackages, changes } = extras;
  const byName = new Map(files.map((f) => [f.name, f]));
  const extra = files.filter((f) => !ALL_BUILD_FILES.includes(f.name));
  if (extra.length > 0 || byName.size !== files.length) {
    throw new Error(`manifest files must be distinct names from ${ALL_BUILD_FILES.join(', ')}; got ${files.map((f) => f.name).join(', ')}`);
  }
  if (!(RUNTIME_VARIANTS as readonly string[]).includes(variant)) throw new Error(`manifest variant "${variant}" is not one of ${RUNTIME_VARIANTS.join(', ')}`);
  const ordered = [...BUILD_FILES, ...OPTIONAL_BUILD_FILES].filter((name) => byName.has(name)).map((name) => byName.get(name)!);
  if (recipe !== undefined && !/^[0-9a-f]{64}$/.test(recipe)) throw new Error(`manifest recipe "${recipe}" is not 64 lower-case hex digits`);
  if (channel !== undefined && !CHANNEL_NAME.test(channel)) throw new Error(`manifest channel ${JSON.stringify(channel)} is not a channel name`);
  return {
    id,
    created,
    release: RELEASE,
    variant,
    ...(recipe === undefined ? {} : { recipe }),
    ...(channel === undefined ? {} : { channel }),
    ...(extraPackages === undefined || extraPackages.length === 0 ? {} : { extraPackages }),
    ...(changes === undefined ? {} : { changes }),
    files: ordered,
  };
}

function fail(what: string): never {
  throw new Error(`manifest: ${what}`);
}

function asString(value: unknown, what: string): string {
  if (typeof value !== 'string' || value === '') fail(`${what} must be a non-empty string`);
  return value;
}

function asPackageRef(value: unknown, what: string): PackageRef {
  if (typeof value !== 'object' || value === null) fail(`${what} must be an object`);
  const v = value as Record<string, unknown>;
  return { package: asString(v.package, `${what}.package`), version: asString(v.version, `${what}.version`) };
}

/**
 * Check parsed JSON against the manifest shape; errors name the offending
 * field. A build without some of BUILD_FILES is still a build (an older
 * one, or a hand-made one): the server offers what it has, so completeness
 * is createManifest's rule, not this one's.
 */
export function parseManifest(json: unknown): Manifest {
  if (typeof json !== 'object' || json === null) fail('must be an object');
  const m = json as Record<string, unknown>;
  const id = asString(m.id, 'id');
  const created = asString(m.created, 'created');
  if (Number.isNaN(Date.parse(created))) fail(`created "${created}" is not a date`);
  if (m.release !== RELEASE) fail(`release is ${JSON.stringify(m.release)}, want "${RELEASE}"`);
  if (!Array.isArray(m.files)) fail('files must be an array');
  const files = m.files.map((raw, i): ManifestFile => {
    const what = `files[${i}]`;
    if (typeof raw !== 'object' || raw === null) fail(`${what} must be an object`);
    const f = raw as Record<string, unknown>;
    const name = asString(f.name, `${what}.name`);
    if (!ALL_BUILD_FILES.includes(name)) fail(`${what}.name "${name}" is not a build file`);
    if (typeof f.size !== 'number' || !Number.isInteger(f.size) || f.size < 0) fail(`${what}.size must be a whole number`);
    const sha256 = asString(f.sha256, `${what}.sha256`);
    if (!/^[0-9a-f]{64}$/.test(sha256)) fail(`${what}.sha256 is not 64 lower-case hex digits`);
    const file: ManifestFile = { name: name as BuildFileName, size: f.size, sha256, ...asPackageRef(f, what) };
    if (f.contains !== undefined) {
      if (!Array.isArray(f.contains)) fail(`${what}.contains must be an array`);
      file.contains = f.contains.map((c, j) => asPackageRef(c, `${what}.contains[${j}]`));
    }
    return file;
  });
  // Builds made before there were variants hold the busybox runtime.
  const variant = m.variant === undefined ? 'tiny' : m.variant;
  if (typeof variant !== 'string' || !(RUNTIME_VARIANTS as readonly string[]).includes(variant)) {
    fail(`variant is ${JSON.stringify(m.variant)}, want one of ${RUNTIME_VARIANTS.map((v) => `"${v}"`).join(', ')}`);
  }
  if (m.recipe !== undefined && (typeof m.recipe !== 'string' || !/^[0-9a-f]{64}$/.test(m.recipe))) fail('recipe is not 64 lower-case hex digits');
  if (m.channel !== undefined && (typeof m.channel !== 'string' || !CHANNEL_NAME.test(m.channel)))
    fail(`channel is ${JSON.stringify(m.channel)}, not a channel name`);
  let extraPackages: ExtraPackage[] | undefined;
  if (m.extraPackages !== undefined) {
    if (!Array.isArray(m.extraPackages)) fail('extraPackages must be an array');
    extraPackages = m.extraPackages.map((raw, i) => {
      const ref = asPackageRef(raw, `extraPackages[${i}]`);
      const size = (raw as Record<string, unknown>).installedKiB;
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) fail(`extraPackages[${i}].installedKiB must be a whole number`);
      const dependency = (raw as Record<string, unknown>).dependency;
      if (dependency !== undefined && dependency !== true) fail(`extraPackages[${i}].dependency must be true or absent`);
      return { ...ref, installedKiB: size, ...(dependency === true ? { dependency: true as const } : {}) };
    });
  }
  let changes: ManifestChanges | undefined;
  if (m.changes !== undefined) {
    const c = m.changes as Record<string, unknown>;
    if (typeof c !== 'object' || c === null || !Array.isArray(c.packages) || !Array.isArray(c.reasons)) fail('changes must be {since, packages, reasons}');
    const text = (value: unknown, what: string): string | null => (value === null ? null : asString(value, what));
    changes = {
      since: asString(c.since, 'changes.since'),
      packages: c.packages.map((raw: unknown, i: number) => {
        const p = raw as Record<string, unknown>;
        return {
          package: asString(p.package, `changes.packages[${i}].package`),
          from: text(p.from, `changes.packages[${i}].from`),
          to: text(p.to, `changes.packages[${i}].to`),
        };
      }),
      reasons: c.reasons.map((reason: unknown, i: number) => asString(reason, `changes.reasons[${i}]`)),
    };
  }
  return orderedManifest(id, created, files, variant as RuntimeVariant, m.recipe as string | undefined, m.channel as string | undefined, {
    ...(extraPackages === undefined ? {} : { extraPackages }),
    ...(changes === undefined ? {} : { changes }),
  });
}
