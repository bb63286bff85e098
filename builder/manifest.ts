/**
 * The build manifest: what is in OUT/builds/<id>/ and where each file came
 * from. The file names are a contract with the server, which serves them by
 * these names.
 */

/** Files every build folder holds, besides manifest.json. */
export const BUILD_FILES = ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const;
/** Files a build holds when it was asked to make them (the CD/USB image unless `--no-iso`). */
export const OPTIONAL_BUILD_FILES = ['rackboot.iso'] as const;
export type BuildFileName = (typeof BUILD_FILES)[number] | (typeof OPTIONAL_BUILD_FILES)[number];
const KNOWN_FILES: readonly string[] = [...BUILD_FILES, ...OPTIONAL_BUILD_FILES];

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
  files: ManifestFile[];
}

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

/** A manifest with files in BUILD_FILES then OPTIONAL_BUILD_FILES order; throws when a file is missing or unknown. */
export function createManifest(id: string, created: Date, files: ManifestFile[]): Manifest {
  const byName = new Map(files.map((f) => [f.name, f]));
  const extra = files.filter((f) => !KNOWN_FILES.includes(f.name));
  if (extra.length > 0 || byName.size !== files.length) {
    throw new Error(`manifest files must be distinct names from ${KNOWN_FILES.join(', ')}; got ${files.map((f) => f.name).join(', ')}`);
  }
  const missing = BUILD_FILES.filter((name) => !byName.has(name));
  if (missing.length > 0) throw new Error(`manifest is missing ${missing.join(', ')}`);
  const optional = OPTIONAL_BUILD_FILES.filter((name) => byName.has(name)).map((name) => byName.get(name)!);
  return { id, created: created.toISOString(), release: RELEASE, files: [...BUILD_FILES.map((name) => byName.get(name)!), ...optional] };
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

/** Check parsed JSON against the manifest shape; errors name the offending field. */
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
    if (!KNOWN_FILES.includes(name)) fail(`${what}.name "${name}" is not a build file`);
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
  return createManifest(id, new Date(created), files);
}
