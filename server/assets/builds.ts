import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** One file of a build, as recorded in its manifest.json by `rackboot build`. */
export interface ManifestFile {
  name: string;
  size: number;
  sha256: string;
  package: string;
  version: string;
}

export interface BuildManifest {
  id: string;
  created: string;
  release: string;
  /** The builder's recipe (builder/recipe.ts); absent in older builds. */
  recipe?: string;
  files: ManifestFile[];
}

export interface Build {
  id: string;
  /** Real path of the build folder (not through the `current` link). */
  dir: string;
  manifest: BuildManifest;
}

/** A file of a build resolved to its place on disk. */
export interface BuildFile {
  build: Build;
  entry: ManifestFile;
  path: string;
}

/**
 * The boot parts that `rackboot build` wrote: `ASSETS/builds/<id>/` folders
 * and `ASSETS/current`, a symlink switched atomically to the newest one.
 *
 * The server follows `current` on every lookup (one readlink; the manifest is
 * cached per build), so a new build is served without a restart, and boot
 * scripts pin the build id so a machine that booted half-way through a switch
 * still gets parts that belong together. Only files named in a manifest are
 * ever served, which leaves nothing to traverse.
 */
export class AssetStore {
  readonly dir: string;
  private readonly manifests = new Map<string, Build>();

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** The build `current` points at, or undefined when there is none yet. */
  async current(): Promise<Build | undefined> {
    let target: string;
    try {
      target = await realpath(path.join(this.dir, 'current'));
    } catch {
      return undefined;
    }
    return this.load(target);
  }

  /** A build by id, current or not, or undefined. */
  async build(id: string): Promise<Build | undefined> {
    if (!/^[A-Za-z0-9._-]+$/.test(id) || id.startsWith('.')) return undefined;
    try {
      return await this.load(await realpath(path.join(this.dir, 'builds', id)));
    } catch {
      return undefined;
    }
  }

  /**
   * A build by the content digest its id ends with ("<time>-<digest>"): the
   * short name BIOS boot scripts use (see resolve.ts). Builds with the same
   * digest hold the same files; the newest is taken.
   */
  async byDigest(digest: string): Promise<Build | undefined> {
    if (!/^[0-9a-f]{8}$/.test(digest)) return undefined;
    let names: string[];
    try {
      names = await readdir(path.join(this.dir, 'builds'));
    } catch {
      return undefined;
    }
    const id = names.filter((name) => name.endsWith(`-${digest}`)).sort().at(-1);
    return id === undefined ? undefined : this.build(id);
  }

  /** A named file of a build (the current one when buildId is omitted). */
  async file(name: string, buildId?: string): Promise<BuildFile | undefined> {
    const build = buildId === undefined ? await this.current() : await this.build(buildId);
    if (!build) return undefined;
    const entry = build.manifest.files.find((file) => file.name === name);
    if (!entry) return undefined;
    return { build, entry, path: path.join(build.dir, entry.name) };
  }

  private async load(dir: string): Promise<Build | undefined> {
    const cached = this.manifests.get(dir);
    if (cached) return cached;
    const manifestPath = path.join(dir, 'manifest.json');
    try {
      await stat(manifestPath);
    } catch {
      return undefined;
    }
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as BuildManifest;
    const build: Build = { id: manifest.id, dir, manifest };
    this.manifests.set(dir, build);
    return build;
  }
}
