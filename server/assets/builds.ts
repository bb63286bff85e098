import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, realpath, rename, rm, stat, symlink } from 'node:fs/promises';
import path from 'node:path';
import { CHANNEL_NAME, DEFAULT_CHANNEL, MANIFEST_NAME, parseManifest, type Manifest, type ManifestFile } from './manifest.js';

export interface Build {
  id: string;
  /** Real path of the build folder (not through the `current` link). */
  dir: string;
  manifest: Manifest;
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
 *
 * Channels (`rackboot build --channel NAME`) each have a current build of
 * their own, `ASSETS/channels/NAME`, a symlink switched the same way;
 * `current` is the default channel's.
 */
export class AssetStore {
  readonly dir: string;
  private readonly manifests = new Map<string, Build>();

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  /** The build `current` (or the channel's link) points at, or undefined when there is none yet. */
  async current(channel?: string): Promise<Build | undefined> {
    const link = channelLink(this.dir, channel);
    if (link === undefined) return undefined;
    let target: string;
    try {
      target = await realpath(link);
    } catch {
      return undefined;
    }
    return this.load(target);
  }

  /** The named channels that have a current build, by name; the default channel is not among them. */
  async channels(): Promise<Map<string, Build>> {
    const names = await readdir(path.join(this.dir, 'channels')).catch(() => [] as string[]);
    const found = new Map<string, Build>();
    for (const name of names.sort()) {
      const build = await this.current(name).catch(() => undefined);
      if (build !== undefined) found.set(name, build);
    }
    return found;
  }

  /** Which channels (the default one as "default") each build is current for, by build id. */
  async currentFor(): Promise<Map<string, string[]>> {
    const current = await this.current();
    const byBuild = new Map<string, string[]>();
    for (const [name, build] of [...(current === undefined ? [] : [[DEFAULT_CHANNEL, current] as const]), ...(await this.channels())]) {
      byBuild.set(build.id, [...(byBuild.get(build.id) ?? []), name]);
    }
    return byBuild;
  }

  /** A build by id, current or not, or undefined; an error naming the file when its manifest is malformed. */
  async build(id: string): Promise<Build | undefined> {
    if (!/^[A-Za-z0-9._-]+$/.test(id) || id.startsWith('.')) return undefined;
    const dir = await realpath(path.join(this.dir, 'builds', id)).catch(() => undefined);
    return dir === undefined ? undefined : this.load(dir);
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
    const id = names
      .filter((name) => name.endsWith(`-${digest}`))
      .sort()
      .at(-1);
    return id === undefined ? undefined : this.build(id);
  }

  /**
   * Every build with a readable manifest, in order of id (which is the order
   * of time). Folders under a dot name (a build being written or removed)
   * and folders without a manifest are not builds.
   */
  async list(): Promise<Build[]> {
    const ids = await readdir(path.join(this.dir, 'builds')).catch(() => [] as string[]);
    const builds: Build[] = [];
    for (const id of ids.sort()) {
      const build = await this.build(id).catch(() => undefined);
      if (build !== undefined) builds.push(build);
    }
    return builds;
  }

  /** Make `id` the current build, of the default channel or the one named (see switchCurrent); throws when there is no such build. */
  async switchTo(id: string, channel?: string): Promise<Build> {
    const build = await this.build(id);
    if (build === undefined) throw new Error(`no build "${id}" in ${path.join(this.dir, 'builds')}`);
    await switchCurrent(this.dir, build.id, channel);
    return build;
  }

  /** A named file of a build (the current one when buildId is omitted). */
  async file(name: string, buildId?: string): Promise<BuildFile | undefined> {
    const build = buildId === undefined ? await this.current() : await this.build(buildId);
    if (!build) return undefined;
    const entry = build.manifest.files.find((file) => file.name === name);
    if (!entry) return undefined;
    return { build, entry, path: path.join(build.dir, entry.name) };
  }

  /** The build in `dir`: undefined without a manifest, an error naming the file when its manifest is malformed. */
  private async load(dir: string): Promise<Build | undefined> {
    const cached = this.manifests.get(dir);
    if (cached) return cached;
    const manifestPath = path.join(dir, MANIFEST_NAME);
    try {
      await stat(manifestPath);
    } catch {
      return undefined;
    }
    let manifest: Manifest;
    try {
      manifest = parseManifest(JSON.parse(await readFile(manifestPath, 'utf8')));
    } catch (error) {
      throw new Error(`${manifestPath}: ${(error as Error).message}`, { cause: error });
    }
    const build: Build = { id: manifest.id, dir, manifest };
    this.manifests.set(dir, build);
    return build;
  }
}

/** ASSETS/current for the default channel (none named, or "default"), ASSETS/channels/NAME for another; undefined for a name that is none. */
function channelLink(assets: string, channel: string | undefined): string | undefined {
  if (channel === undefined || channel === DEFAULT_CHANNEL) return path.join(assets, 'current');
  return CHANNEL_NAME.test(channel) ? path.join(assets, 'channels', channel) : undefined;
}

/**
 * Point ASSETS/current (or the channel's link) at builds/<id>: a new
 * symlink under a temporary name, renamed over the old one (rename(2)
 * replaces atomically, so a reader sees the old build or the new one,
 * never neither).
 */
export async function switchCurrent(assets: string, id: string, channel?: string): Promise<void> {
  const link = channelLink(assets, channel);
  if (link === undefined) throw new Error(`cannot switch channel ${JSON.stringify(channel)}: not a channel name`);
  const folder = path.dirname(link);
  const temp = path.join(folder, `.current-${randomBytes(6).toString('hex')}`);
  try {
    // Readable by all, as the builds are, whatever the umask of the process that makes it (a server's is 077).
    if (folder !== assets && (await mkdir(folder, { recursive: true })) !== undefined) await chmod(folder, 0o755);
    await symlink(path.relative(folder, path.join(assets, 'builds', id)), temp);
    await rename(temp, link);
  } catch (error) {
    await rm(temp, { force: true });
    throw new Error(`cannot switch ${link}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
