import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../server/log.js';
import { BuildStepError } from './errors.js';
import { CommandError, runCommand, type CommandRunner } from './exec.js';

/**
 * Debian packages through the machine's own apt configuration (its sources
 * decide the mirror; rackboot never names one). `apt-get download
 * --print-uris` tells the exact .deb, its size and SHA256 without fetching
 * it, so the local cache is keyed by file name and checked by hash, and a
 * second build downloads nothing.
 */

/** One line of `apt-get download --print-uris`: what apt would fetch. */
export interface AptFile {
  package: string;
  version: string;
  /** The name apt saves the .deb under, e.g. "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb". */
  fileName: string;
  size: number;
  sha256: string;
  uri: string;
}

/**
 * Parse `apt-get download --print-uris` output:
 * `'URI' FILENAME SIZE SHA256:HEX`. The package and version come from the
 * file name ("name_version_arch.deb", the epoch's ":" written as "%3a").
 */
export function parsePrintUris(text: string): AptFile[] {
  const files: AptFile[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^'([^']+)'\s+(\S+)\s+(\d+)\s+(?:SHA256:)?([0-9a-f]{64})\s*$/.exec(line.trim());
    if (m === null) throw new Error(`apt-get --print-uris line not understood: "${line.trim()}"`);
    const [, uri, fileName, size, sha256] = m as unknown as [string, string, string, string, string];
    const parts = decodeURIComponent(fileName)
      .replace(/\.deb$/, '')
      .split('_');
    if (parts.length !== 3) throw new Error(`apt file name "${fileName}" is not name_version_arch.deb`);
    files.push({ package: parts[0]!, version: parts[1]!, fileName, size: Number(size), sha256, uri });
  }
  return files;
}

/**
 * `apt-cache policy A B ...`: each package's "Candidate:" line ("(none)"
 * when no source offers it); a package apt does not know at all is left
 * out of its output, and null here too.
 */
export function parsePolicy(text: string, pkgs: readonly string[]): Map<string, string | null> {
  const found = new Map<string, string | null>(pkgs.map((pkg) => [pkg, null]));
  let current: string | undefined;
  for (const line of text.split('\n')) {
    const header = /^(\S+?)(?::amd64)?:$/.exec(line);
    if (header) {
      current = header[1];
      continue;
    }
    const candidate = /^\s+Candidate:\s*(\S+)/.exec(line);
    if (candidate && current !== undefined && found.has(current)) found.set(current, candidate[1] === '(none)' ? null : candidate[1]!);
  }
  return found;
}

/** The fields of one control paragraph (`apt-cache show`, `dpkg-deb -f`); continuation lines are joined. */
export function parseControlParagraph(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (fields.size > 0) break; // only the first paragraph
      continue;
    }
    if (/^\s/.test(line) && last !== undefined) {
      fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon < 1) continue;
    last = line.slice(0, colon);
    fields.set(last, line.slice(colon + 1).trim());
  }
  return fields;
}

/** Package names in a Depends field, alternatives flattened, version constraints dropped. */
export function dependencyNames(depends: string): string[] {
  return depends
    .split(/[,|]/)
    .map((d) => d.trim().split(/[\s(:]/)[0] ?? '')
    .filter(Boolean);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface FetchedPackage {
  file: AptFile;
  /** Where the verified .deb is, inside the cache. */
  path: string;
  /** True when the cache already held it and nothing was downloaded. */
  cached: boolean;
}

export class AptClient {
  private readonly debDir: string;
  private readonly log: Logger;
  private readonly run: CommandRunner;
  private updated = false;

  constructor(options: { cacheDir: string; log: Logger; run?: CommandRunner }) {
    this.debDir = join(options.cacheDir, 'debs');
    this.log = options.log;
    this.run = options.run ?? runCommand;
  }

  /**
   * apt-get refuses to fetch as the _apt sandbox user into a folder that user
   * cannot write (our cache is the invoking user's); as root, say so up front
   * instead of letting apt warn on every download.
   */
  private aptOptions(): string[] {
    return process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  }

  /**
   * Run an apt step; when it fails (unknown package, stale lists after a
   * mirror update, missing lists on a fresh machine), run `apt-get update`
   * once per client and try again, then fail naming the step and package.
   */
  private async withUpdate<T>(step: string, pkg: string, attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (first) {
      if (this.updated) throw this.stepError(step, pkg, first);
      this.log.warn({ step, package: pkg, reason: reasonOf(first) }, 'apt step failed; running apt-get update once and retrying');
      this.updated = true;
      try {
        await this.run('apt-get', ['-q', 'update']);
      } catch (error) {
        throw new BuildStepError('apt-get update', pkg, reasonOf(error), { cause: error });
      }
      try {
        return await attempt();
      } catch (second) {
        throw this.stepError(step, pkg, second);
      }
    }
  }

  private stepError(step: string, pkg: string, error: unknown): BuildStepError {
    if (error instanceof BuildStepError) return error;
    const reason = reasonOf(error);
    // "E: Unable to locate package foo": when several were asked for, name the one apt did not know.
    const words = reason.split(/\s+/);
    const named = pkg.split(', ').find((p) => words.includes(p));
    return new BuildStepError(step, named ?? pkg, reason, { cause: error });
  }

  /** The .deb apt would fetch for a package (its candidate version). */
  async resolve(pkg: string): Promise<AptFile> {
    return (await this.resolveAll([pkg]))[0]!;
  }

  /**
   * The .debs for several packages, in one apt-get run (each run costs apt a
   * few hundred ms to load its cache). A package is a name (its candidate
   * version) or "name=version".
   */
  async resolveAll(pkgs: string[]): Promise<AptFile[]> {
    const label = pkgs.join(', ');
    return this.withUpdate('resolve', label, async () => {
      const { stdout } = await this.run('apt-get', [...this.aptOptions(), 'download', '--print-uris', ...pkgs]);
      const listed = parsePrintUris(stdout);
      return pkgs.map((spec) => {
        const [pkg, version] = spec.split('=') as [string, string | undefined];
        const files = listed.filter((f) => f.package === pkg);
        if (files.length !== 1) throw new Error(`apt-get download --print-uris listed ${files.length} files for ${pkg}, want 1`);
        if (version !== undefined && files[0]!.version !== version) throw new Error(`apt-get offered ${pkg} ${files[0]!.version} for ${spec}`);
        return files[0]!;
      });
    });
  }

  /**
   * Refresh apt's package lists from the machine's sources (`apt-get
   * update`), so that candidates() sees what the mirrors publish now: a
   * security update reaches the lists only this way. Needs root (apt's
   * lists and their lock are root's). A source that cannot be reached is
   * an error (--error-on=any), not a warning over the old lists.
   */
  async update(): Promise<void> {
    try {
      await this.run('apt-get', [...this.aptOptions(), '-q', '--error-on=any', 'update']);
      this.updated = true;
    } catch (error) {
      const reason = error instanceof CommandError ? updateFailure(error.stderr) : undefined;
      throw new BuildStepError('apt-get update', undefined, reason ?? reasonOf(error), { cause: error });
    }
  }

  /**
   * The version apt would install of each package now (its candidate), in
   * one apt-cache run; null for a package the sources do not offer.
   */
  async candidates(pkgs: readonly string[]): Promise<Map<string, string | null>> {
    if (pkgs.length === 0) return new Map();
    const { stdout } = await this.run('apt-cache', ['policy', ...pkgs]);
    return parsePolicy(stdout, pkgs);
  }

  /** The Depends field of a package's candidate version. */
  async depends(pkg: string): Promise<string[]> {
    return dependencyNames((await this.control(pkg)).get('Depends') ?? '');
  }

  /**
   * The control fields of a package's candidate version, or of "name=version".
   * apt-cache prints nothing and exits 0 for a version it does not know; that
   * is an error here, worded as apt-get words it.
   */
  async control(spec: string): Promise<Map<string, string>> {
    return this.withUpdate('resolve', spec, async () => {
      const { stdout } = await this.run('apt-cache', ['show', '--no-all-versions', spec]);
      const fields = parseControlParagraph(stdout);
      const [pkg, version] = spec.split('=') as [string, string | undefined];
      if (fields.size === 0 || (version !== undefined && fields.get('Version') !== version)) {
        throw new Error(version === undefined ? `E: Unable to locate package ${pkg}` : `E: Version '${version}' for '${pkg}' was not found`);
      }
      return fields;
    });
  }

  /** The verified .deb in the cache, downloading it only when the cache lacks it or holds a bad copy. */
  async fetch(file: AptFile): Promise<FetchedPackage> {
    return (await this.fetchAll([file]))[0]!;
  }

  /**
   * Like fetch for several packages; whatever is missing comes down in one
   * apt-get run. `onBytes` hears how many of the files' bytes are here so
   * far (cached ones count from the start), a few times a second.
   */
  async fetchAll(files: AptFile[], options: { onBytes?: (bytes: number) => void } = {}): Promise<FetchedPackage[]> {
    const results = await Promise.all(
      files.map(async (file): Promise<FetchedPackage> => {
        const path = join(this.debDir, file.fileName);
        return { file, path, cached: await this.verified(path, file) };
      }),
    );
    for (const r of results.filter((r) => r.cached)) this.log.info({ package: r.file.package, version: r.file.version }, 'package in cache');
    const missing = results.filter((r) => !r.cached).map((r) => r.file);
    const cachedBytes = results.filter((r) => r.cached).reduce((n, r) => n + r.file.size, 0);
    options.onBytes?.(cachedBytes);
    if (missing.length === 0) return results;

    await mkdir(this.debDir, { recursive: true });
    const tmp = join(this.debDir, `.download-${randomBytes(6).toString('hex')}`);
    await mkdir(tmp, { mode: 0o755 });
    try {
      const started = Date.now();
      const label = missing.map((f) => f.package).join(', ');
      // apt-get writes each .deb into the folder as it arrives: its size is
      // the progress. One look at a time, none reported after the download
      // ends, so the amounts only grow and the last one is the total.
      let looking = false;
      let stopped = false;
      const poll =
        options.onBytes === undefined
          ? undefined
          : setInterval(() => {
              if (looking) return;
              looking = true;
              void folderBytes(tmp).then((n) => {
                looking = false;
                if (!stopped) options.onBytes!(cachedBytes + n);
              });
            }, 250);
      try {
        await this.withUpdate('download', label, async () => {
          const specs = missing.map((f) => `${f.package}=${f.version}`);
          await this.run('apt-get', [...this.aptOptions(), '-q', 'download', ...specs], { cwd: tmp });
        });
      } finally {
        stopped = true;
        if (poll !== undefined) clearInterval(poll);
      }
      options.onBytes?.(cachedBytes + missing.reduce((n, f) => n + f.size, 0));
      const got = await readdir(tmp);
      for (const file of missing) {
        if (!got.includes(file.fileName)) {
          throw new BuildStepError('download', file.package, `apt-get saved ${got.join(', ') || 'nothing'}, expected ${file.fileName}`);
        }
        const downloaded = join(tmp, file.fileName);
        if (!(await this.verified(downloaded, file))) {
          throw new BuildStepError('verify', file.package, `${file.fileName} does not match size ${file.size} and sha256 ${file.sha256}`);
        }
        await rename(downloaded, join(this.debDir, file.fileName));
        this.log.info({ package: file.package, version: file.version, size: file.size }, 'package downloaded');
      }
      this.log.info({ packages: missing.length, bytes: missing.reduce((n, f) => n + f.size, 0), ms: Date.now() - started }, 'downloads done');
      return results;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private async verified(path: string, file: AptFile): Promise<boolean> {
    try {
      const s = await stat(path);
      if (s.size !== file.size) return false;
    } catch {
      return false;
    }
    const actual = await sha256File(path);
    if (actual === file.sha256) return true;
    this.log.warn({ path, want: file.sha256, actual }, 'cached package has the wrong sha256; fetching it again');
    return false;
  }
}

/** Bytes of the files in a folder and its subfolders (apt keeps a partial/ folder); 0 when it is gone. */
async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  try {
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      // Dirent.parentPath is Node 20.12's name for what 20.0 called path.
      const parent = entry.parentPath ?? (entry as { path?: string }).path ?? dir;
      if (entry.isFile())
        total += await stat(join(parent, entry.name)).then(
          (s) => s.size,
          () => 0,
        );
    }
  } catch {
    return 0;
  }
  return total;
}

/**
 * Why `apt-get update` failed, from its stderr: the sources it could not
 * fetch ("E: Failed to fetch URL  REASON"), the first with its reason and
 * how many more; apt's closing summary line says nothing of which.
 */
export function updateFailure(stderr: string): string | undefined {
  const errors = stderr
    .split('\n')
    .filter((line) => line.startsWith('E: ') && !line.startsWith('E: Some index files failed'))
    .map((line) => line.slice(3).replace(/\s{2,}/g, ': '));
  if (errors.length === 0) return undefined;
  return errors.length === 1 ? errors[0] : `${errors[0]} (and ${errors.length - 1} more)`;
}

function reasonOf(error: unknown): string {
  if (error instanceof CommandError) return error.detail;
  return error instanceof Error ? error.message : String(error);
}
