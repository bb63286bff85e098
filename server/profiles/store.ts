import { watch as watchDirectory, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { firstProblems, formatProfileError, type ProfileError } from './error.js';
import { isGroupProfile, type Profile } from './profile.js';
import {
  maxProfileBytes,
  ProfileIndex,
  type InfrastructureAddress,
  type ProfileCheck,
  type ProfileFileRead,
  type ProfileFileStatus,
  type StaticAddress,
} from './profile-index.js';
import { formatSlot, type RelaySlot } from './slot.js';

export { maxProfileBytes, type ProfileCheck, type ProfileFileStatus, type StaticAddress } from './profile-index.js';

/** What listeners of ProfileDirectory.onChange receive after a reload changed something. */
export interface ProfileChange {
  profiles: Profile[];
  errors: ProfileError[];
}

export interface ProfileDirectoryOptions {
  /** Quiet time after the last file event before watch() reloads; editors write in bursts. */
  debounceMs?: number;
  /**
   * Addresses no profile may take as its static address (the server's own,
   * the router's), each with what it is, for the error: a host given one of
   * them would be ACKed an address that is in use.
   */
  infrastructure?: readonly InfrastructureAddress[];
}

/**
 * The profiles of one directory: every *.yaml and *.yml file in it (not in
 * subfolders, and not hidden files such as editors' ".#name.yaml" locks),
 * read again on reload() and, after watch(), whenever the directory changes.
 *
 * What is served is decided by a ProfileIndex built from the texts read and
 * the index before (see profile-index.ts: a bad or conflicting edit keeps
 * the last good version, and files serving unchanged keep their claims);
 * this class reads, swaps the new index in, logs the problems and tells the
 * onChange listeners.
 */
export class ProfileDirectory {
  private index: ProfileIndex;
  private listeners = new Set<(change: ProfileChange) => void>();
  private loggedProblems = new Map<string, string>();
  private queue: Promise<void> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly debounceMs: number;
  private readonly infrastructure: readonly InfrastructureAddress[];

  private constructor(
    readonly dir: string,
    private readonly log: Logger,
    options: ProfileDirectoryOptions,
  ) {
    this.debounceMs = options.debounceMs ?? 200;
    this.infrastructure = options.infrastructure ?? [];
    this.index = ProfileIndex.build({ dir, files: new Map(), infrastructure: this.infrastructure });
  }

  /** Load every profile in `dir`. Fails if the directory cannot be read; bad files are only reported. */
  static async open(dir: string, log: Logger, options: ProfileDirectoryOptions = {}): Promise<ProfileDirectory> {
    const directory = new ProfileDirectory(dir, log.child({ component: 'profiles' }), options);
    await directory.reload();
    return directory;
  }

  /** The profile for a MAC (any accepted spelling) seen in `slot`; see ProfileIndex.lookup for the precedence. */
  lookup(mac: string, slot?: RelaySlot): Profile | undefined {
    return this.index.lookup(mac, slot);
  }

  /** Whether a MAC (seen in `slot`) is served a profile of its own or its slot's, rather than the default one. */
  hasOwnProfile(mac: string, slot?: RelaySlot): boolean {
    return this.index.hasOwnProfile(mac, slot);
  }

  /** Why a MAC (seen in `slot`) has no profile although a file names it or its slot (the file never parsed), or [] if none. */
  problemsFor(mac: string, slot?: RelaySlot): ProfileError[] {
    return this.index.problemsFor(mac, slot);
  }

  /** The profile of default.yaml, with "{mac}" still in its hostname. */
  get defaultProfile(): Profile | undefined {
    return this.index.defaultProfile;
  }

  /** Every profile served, in order of file name: a group's one per hosts: entry, those a host's own file overrides left out. */
  all(): Profile[] {
    return this.index.all();
  }

  /** The current problems of every file, in order of file and line. */
  errors(): ProfileError[] {
    return this.index.errors();
  }

  /** Static addresses by MAC, for the DHCP server to keep out of its pool. */
  reservations(): Map<string, StaticAddress> {
    return this.index.reservations();
  }

  /** Who a static address is reserved for, if any profile holds it: a MAC, or a slot ("slot circuit-id ..."). */
  reservationOwner(address: string): string | undefined {
    return this.index.reservationOwner(address);
  }

  /** The static address of one MAC (any accepted spelling) seen in `slot`, by the same precedence as lookup(). */
  reservationFor(mac: string, slot?: RelaySlot): StaticAddress | undefined {
    return this.index.reservationFor(mac, slot);
  }

  /**
   * What serving `text` as the file `name` would give, without touching the
   * directory: the parse errors, or the claims another served file holds
   * already. The admin API checks an edit with this before writing it.
   */
  check(name: string, text: string): ProfileCheck {
    return this.index.check(name, text);
  }

  /** Every profile file with what is served from it and its problems, in order of name. */
  fileStatuses(): ProfileFileStatus[] {
    return this.index.fileStatuses();
  }

  /** Call `listener` after every reload that changed a profile or a problem. Returns a function that unsubscribes. */
  onChange(listener: (change: ProfileChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Read the directory again. Reloads run one at a time, in the order asked for. */
  reload(): Promise<void> {
    const run = this.queue.then(() => this.load());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Reload when a file in the directory changes, after `debounceMs` of quiet. */
  watch(): void {
    if (this.watcher !== undefined || this.closed) return;
    // The directory, not each file: editors save by writing a new file and
    // renaming it over the old one, which a watch on the old file misses.
    this.watcher = watchDirectory(this.dir, { persistent: false }, () => this.scheduleReload());
    this.watcher.on('error', (error) => {
      this.log.error({ dir: this.dir, err: error }, 'watching the profile directory failed; profiles are no longer reloaded on change');
    });
  }

  close(): void {
    this.closed = true;
    if (this.debounceTimer !== undefined) clearTimeout(this.debounceTimer);
    this.watcher?.close();
    this.watcher = undefined;
    this.listeners.clear();
  }

  private scheduleReload(): void {
    if (this.closed) return;
    if (this.debounceTimer !== undefined) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      if (this.closed) return;
      this.reload().catch((error: unknown) => {
        this.log.error({ dir: this.dir, err: error }, 'reading the profile directory failed; still serving the profiles loaded before');
      });
    }, this.debounceMs);
  }

  private async load(): Promise<void> {
    const names = await this.profileFileNames();
    const files = new Map<string, ProfileFileRead>();
    for (const name of names) {
      const read = await this.read(join(this.dir, name));
      if (read !== undefined) files.set(name, read);
    }
    const before = this.index;
    for (const { name, path } of before.fileStatuses()) {
      if (!files.has(name)) this.log.info({ file: path }, 'profile file removed');
    }
    this.index = ProfileIndex.build({ dir: this.dir, files, previous: before, infrastructure: this.infrastructure });
    this.logProblems();

    if (this.index.changed(before)) {
      const change: ProfileChange = { profiles: this.all(), errors: this.errors() };
      for (const listener of this.listeners) {
        try {
          listener(change);
        } catch (error) {
          this.log.error({ err: error }, 'a profile change listener failed');
        }
      }
    }
  }

  /** *.yaml and *.yml regular files (or links to them), sorted by name. */
  private async profileFileNames(): Promise<string[]> {
    const entries = await readdir(this.dir, { withFileTypes: true });
    const names: string[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.') || !/\.ya?ml$/.test(entry.name)) continue;
      if (entry.isFile()) {
        names.push(entry.name);
      } else if (entry.isSymbolicLink()) {
        const target = await stat(join(this.dir, entry.name)).catch(() => undefined);
        if (target?.isFile()) names.push(entry.name);
      }
    }
    return names.sort();
  }

  /** One file's text, or why it cannot be read; undefined when it has gone since the directory was listed. */
  private async read(path: string): Promise<ProfileFileRead | undefined> {
    try {
      // Checked before reading: a file too large is refused unread.
      const info = await stat(path);
      if (info.size > maxProfileBytes) return { problem: `is ${info.size} bytes; a profile is at most ${maxProfileBytes}` };
      return { text: await readFile(path, 'utf8') };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      return { problem: `cannot be read: ${(error as Error).message}` };
    }
  }

  /** Log each file's problems once, when they change, with what happens to the file meanwhile. */
  private logProblems(): void {
    const seen = new Set<string>();
    for (const file of this.index.fileStatuses()) {
      seen.add(file.name);
      const { problems } = file;
      const key = JSON.stringify([problems.map(formatProfileError), this.index.servedText(file.name) ?? '']);
      if (this.loggedProblems.get(file.name) === key) continue;
      this.loggedProblems.set(file.name, key);
      if (problems.length === 0) {
        const profile = file.served;
        if (profile !== undefined && isGroupProfile(profile)) {
          this.log.info({ file: file.path, hosts: profile.hosts.length }, 'group profile loaded');
        } else if (profile !== undefined) {
          const slot = profile.relay === undefined ? {} : { slot: formatSlot(profile.relay) };
          this.log.info({ file: file.path, mac: profile.mac, ...slot, hostname: profile.hostname }, 'profile loaded');
        }
        continue;
      }
      const outcome = file.served === undefined ? 'this file is not served' : 'still serving the last good version of this file';
      const { shown, more } = firstProblems(problems);
      for (const problem of shown) {
        this.log.error({ file: problem.file, line: problem.line, column: problem.column, field: problem.field }, `${formatProfileError(problem)} (${outcome})`);
      }
      if (more > 0) this.log.error({ file: file.path, more }, `${file.path}: ${more} more problems not listed (${outcome})`);
    }
    for (const name of [...this.loggedProblems.keys()]) if (!seen.has(name)) this.loggedProblems.delete(name);
  }
}
