import { watch as watchDirectory, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { compareProfileErrors, firstProblems, formatProfileError, type ProfileError } from './error.js';
import { normaliseMac } from './mac.js';
import { parseProfileFile, type FieldLocation, type FileParseResult, type NamedInFile } from './parse.js';
import { groupMembers, isDefaultProfile, isGroupProfile, profileForHost, type NetworkConfig, type Profile, type ProfileFileContent } from './profile.js';
import { formatSlot, selectSlotProfile, slotKey, type RelaySlot } from './slot.js';

/** A static address handed to one host by its profile (the DHCP server's Reservation is made from it). */
export interface StaticAddress {
  mac: string;
  address: string;
  prefixLength: number;
  gateway?: string;
  dns: string[];
  hostname: string;
  /** The profile file it comes from. */
  source: string;
  /** Set when the address is the slot's (a slot profile's), not the MAC's own: whoever sits in the slot gets it. */
  slot?: RelaySlot;
}

/** The outcome of ProfileDirectory.check. */
export type ProfileCheck = { ok: true; profile: ProfileFileContent } | { ok: false; errors: ProfileError[] };

/** One profile file as the directory sees it. */
export interface ProfileFileStatus {
  name: string;
  path: string;
  /** The version being served, if any (the last good one when the file has problems): a profile, or a group. */
  served: ProfileFileContent | undefined;
  problems: ProfileError[];
}

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
  infrastructure?: ReadonlyArray<{ address: string; what: string }>;
}

/**
 * Profile files are a few hundred bytes (a few kB with SSH keys); anything
 * larger is a mistake (a log, an image) or an attempt to make the parser
 * and its error list eat memory.
 */
export const maxProfileBytes = 64 * 1024;

/** A parsed version of one file. */
interface Version {
  text: string;
  profile: ProfileFileContent;
  /** The profiles it serves: a group's one per hosts: entry, else the profile itself. */
  members: Profile[];
  locations: ReadonlyMap<string, FieldLocation>;
}

/** Everything known about one file of the directory. */
interface FileState {
  name: string;
  path: string;
  /** The text last read and its problems (parse errors or a read error); empty when it parsed. */
  text: string | undefined;
  problems: ProfileError[];
  /** The newest version that parsed, if it is the file's current text. */
  latest: Version | undefined;
  /** The version being served: the last one that parsed and did not conflict with another file. */
  served: Version | undefined;
  /** Why `latest` is not served, when it conflicts with another file. */
  conflicts: ProfileError[];
  /** What the current text names (its mac:, a group's hosts: MACs, its relay: slot), even when the file as a whole does not parse. */
  named: NamedInFile;
}

/**
 * A claim only one file may hold: a MAC (a host's or a guest's), a static
 * address, a slot, or being the default profile. One exception: a host's
 * own file and a group's entry for the same MAC may hold that MAC and its
 * address both, because the own file overrides the entry (see lookup).
 */
interface FileClaim {
  key: string;
  /** The host MAC the claim is made for, when it is a host's. */
  mac?: string;
  /** Whether it comes from a host's own file (or slot, or default) or from a group's hosts: entry. */
  layer: 'file' | 'group';
  /** Who makes it, for another file's error: the file, and for a group's claim its entry. */
  holder: string;
  error: (holder: string) => ProfileError;
}

/** Whether `claim` may not be taken while `holder` holds its key. */
function clashes(holder: FileClaim, claim: FileClaim): boolean {
  return !(holder.mac !== undefined && holder.mac === claim.mac && holder.layer !== claim.layer);
}

/** Record the claims a served version makes; where a host's own file and a group entry share a key, the own file holds it. */
function hold(held: Map<string, FileClaim>, claims: readonly FileClaim[]): void {
  for (const claim of claims) if (!held.has(claim.key) || claim.layer === 'file') held.set(claim.key, claim);
}

/**
 * The profiles of one directory: every *.yaml and *.yml file in it (not in
 * subfolders, and not hidden files such as editors' ".#name.yaml" locks).
 *
 * A file that fails to parse, or that claims a MAC or static address another
 * file holds, never replaces what was served from it before: the last good
 * version stays, and the problem is logged and listed by errors(). A file
 * that is deleted stops being served.
 *
 * Conflicts: files are taken in order of name, so on the first load
 * "a.yaml" wins over "b.yaml". On later reloads, files serving unchanged
 * keep their claims first, then changed and new files are tried in order of
 * name. So copying node01.yaml to node00.yaml and forgetting to change the
 * MAC does not take node01's MAC away from a running rack; after a restart
 * the name order decides again, and the conflict is still reported.
 */
export class ProfileDirectory {
  private files = new Map<string, FileState>();
  /** Hosts' own files by MAC. */
  private byMac = new Map<string, Profile>();
  /** Group entries by MAC, those a host's own file overrides left out. */
  private byGroupMac = new Map<string, Profile>();
  /** Every profile served (a group's one per entry), in order of file name. */
  private served: Profile[] = [];
  /** MACs whose own file is broken and never parsed: they wait instead of booting the default. */
  private brokenByMac = new Map<string, ProfileError[]>();
  /** Likewise for MACs in the hosts: table of a group file that is not served. */
  private brokenByGroupMac = new Map<string, ProfileError[]>();
  /** Static address -> who holds it: the profile's MAC, or its slot for a slot-only profile. */
  private byStaticAddress = new Map<string, string>();
  /** Profiles that name a slot (relay:), in order of file name. */
  private bySlot: Profile[] = [];
  /** Slots named by files that are not served (they never parsed, or conflict), with the files' problems. */
  private brokenBySlot: Array<{ relay: RelaySlot; problems: ProfileError[] }> = [];
  private defaultVersion: Profile | undefined;
  private listeners = new Set<(change: ProfileChange) => void>();
  private loggedProblems = new Map<string, string>();
  private queue: Promise<void> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly debounceMs: number;
  private readonly infrastructure: ReadonlyArray<{ address: string; what: string }>;

  private constructor(
    readonly dir: string,
    private readonly log: Logger,
    options: ProfileDirectoryOptions,
  ) {
    this.debounceMs = options.debounceMs ?? 200;
    this.infrastructure = options.infrastructure ?? [];
  }

  /** Load every profile in `dir`. Fails if the directory cannot be read; bad files are only reported. */
  static async open(dir: string, log: Logger, options: ProfileDirectoryOptions = {}): Promise<ProfileDirectory> {
    const directory = new ProfileDirectory(dir, log.child({ component: 'profiles' }), options);
    await directory.reload();
    return directory;
  }

  /**
   * The profile for a MAC (any accepted spelling) seen in `slot` (option 82,
   * if it came through a relay agent). Precedence, most specific first:
   * the MAC's own file; then its entry in a group's hosts: table; then the
   * slot's profile (one naming circuit-id and remote-id before one naming
   * the circuit-id only); then the default one filled in for the MAC; else
   * undefined. A MAC's own profile wins even over its slot's, so a machine
   * can be pinned to its profile wherever it is plugged in.
   */
  lookup(mac: string, slot?: RelaySlot): Profile | undefined {
    const normalised = normaliseMac(mac);
    if (normalised === undefined) return undefined;
    const own = this.byMac.get(normalised);
    if (own !== undefined) return own;
    // A host whose own file (or group file) is broken must not boot as a
    // generic default node (wrong hostname, no reservation): it waits until
    // the file is fixed.
    if (this.brokenByMac.has(normalised)) return undefined;
    const member = this.byGroupMac.get(normalised);
    if (member !== undefined) return member;
    if (this.brokenByGroupMac.has(normalised)) return undefined;
    if (slot !== undefined) {
      const bySlot = this.slotChoice(slot);
      // Likewise a machine in a slot whose file is broken (and would have won) waits.
      if (bySlot !== undefined) return 'problems' in bySlot ? undefined : bySlot;
    }
    return this.defaultVersion === undefined ? undefined : profileForHost(this.defaultVersion, normalised);
  }

  /** Whether a MAC (seen in `slot`) is served a profile of its own or its slot's, rather than the default one. */
  hasOwnProfile(mac: string, slot?: RelaySlot): boolean {
    const profile = this.lookup(mac, slot);
    return profile !== undefined && !isDefaultProfile(profile);
  }

  /** Why a MAC (seen in `slot`) has no profile although a file names it or its slot (the file never parsed), or [] if none. */
  problemsFor(mac: string, slot?: RelaySlot): ProfileError[] {
    const normalised = normaliseMac(mac);
    if (normalised === undefined || this.byMac.has(normalised) || this.byGroupMac.has(normalised)) return [];
    const own = this.brokenByMac.get(normalised) ?? this.brokenByGroupMac.get(normalised);
    if (own !== undefined) return own;
    const bySlot = slot === undefined ? undefined : this.slotChoice(slot);
    return bySlot !== undefined && 'problems' in bySlot ? bySlot.problems : [];
  }

  /** The slot profile for `slot`, or the broken file that would be it, most specific first (see selectSlotProfile). */
  private slotChoice(slot: RelaySlot): Profile | { relay: RelaySlot; problems: ProfileError[] } | undefined {
    return selectSlotProfile<Profile | { relay: RelaySlot; problems: ProfileError[] }>([...this.bySlot, ...this.brokenBySlot], slot);
  }

  /** The profile of default.yaml, with "{mac}" still in its hostname. */
  get defaultProfile(): Profile | undefined {
    return this.defaultVersion;
  }

  /** Every profile served, in order of file name: a group's one per hosts: entry, those a host's own file overrides left out. */
  all(): Profile[] {
    return [...this.served];
  }

  /** The current problems of every file, in order of file and line. */
  errors(): ProfileError[] {
    return [...this.files.values()].flatMap((file) => [...file.problems, ...file.conflicts]).sort(compareProfileErrors);
  }

  /** Static addresses by MAC, for the DHCP server to keep out of its pool. */
  reservations(): Map<string, StaticAddress> {
    const reservations = new Map<string, StaticAddress>();
    for (const profile of this.all()) {
      // Slot-only profiles are left out: their address belongs to whichever MAC is in the slot.
      if (profile.mac === null || profile.network.mode !== 'static') continue;
      reservations.set(profile.mac, reservationOf(profile.mac, profile, profile.network));
    }
    return reservations;
  }

  /** Who a static address is reserved for, if any profile holds it: a MAC, or a slot ("slot circuit-id ..."). */
  reservationOwner(address: string): string | undefined {
    return this.byStaticAddress.get(address);
  }

  /**
   * The static address of one MAC (any accepted spelling) seen in `slot`, by
   * the same precedence as lookup(): the MAC's own profile decides when it
   * has one (static or not), else the slot's profile.
   */
  reservationFor(mac: string, slot?: RelaySlot): StaticAddress | undefined {
    const normalised = normaliseMac(mac);
    if (normalised === undefined) return undefined;
    const profile = this.lookup(normalised, slot);
    if (profile === undefined || isDefaultProfile(profile) || profile.network.mode !== 'static') return undefined;
    const reservation = reservationOf(normalised, profile, profile.network);
    if (profile.mac !== normalised && profile.relay !== undefined) reservation.slot = { ...profile.relay };
    return reservation;
  }

  /**
   * What serving `text` as the file `name` would give, without touching the
   * directory: the parse errors, or the claims (MAC, static address, default
   * role) that another served file holds already. The admin API checks an
   * edit with this before writing it, so a rejected edit never reaches disk.
   */
  check(name: string, text: string): ProfileCheck {
    const result = this.parse(text, join(this.dir, name));
    if (!result.ok) return { ok: false, errors: result.errors };
    const held = new Map<string, FileClaim>();
    for (const file of this.files.values()) if (file.name !== name && file.served !== undefined) hold(held, claimsOf(file.served));
    const errors = claimsOf(versionOf(text, result)).flatMap((claim) => {
      const holder = held.get(claim.key);
      return holder === undefined || !clashes(holder, claim) ? [] : [claim.error(holder.holder)];
    });
    return errors.length > 0 ? { ok: false, errors } : { ok: true, profile: result.profile };
  }

  /** Every profile file with what is served from it and its problems, in order of name. */
  fileStatuses(): ProfileFileStatus[] {
    return [...this.files.values()].map((file) => ({
      name: file.name,
      path: file.path,
      served: file.served?.profile,
      problems: [...file.problems, ...file.conflicts].sort(compareProfileErrors),
    }));
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
    const before = this.snapshot();

    const files = new Map<string, FileState>();
    for (const name of names) {
      const file = this.files.get(name) ?? {
        name,
        path: join(this.dir, name),
        text: undefined,
        problems: [],
        latest: undefined,
        served: undefined,
        conflicts: [],
        named: { macs: [], groupMacs: [] },
      };
      if (await this.read(file)) files.set(name, file);
    }
    for (const name of this.files.keys()) {
      if (!files.has(name)) this.log.info({ file: join(this.dir, name) }, 'profile file removed');
    }
    this.files = files;
    this.resolveClaims();
    this.logProblems();

    const after = this.snapshot();
    if (after.key !== before.key) {
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

  /** Read and parse one file; false when it has gone since the directory was listed. */
  private async read(file: FileState): Promise<boolean> {
    let text: string;
    try {
      const info = await stat(file.path);
      if (info.size > maxProfileBytes) {
        file.text = undefined;
        file.latest = undefined;
        file.problems = [fileProblem(file.path, `is ${info.size} bytes; a profile is at most ${maxProfileBytes}`)];
        return true;
      }
      text = await readFile(file.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      file.text = undefined;
      file.latest = undefined;
      file.problems = [fileProblem(file.path, `cannot be read: ${(error as Error).message}`)];
      return true;
    }
    if (text === file.text) return true;
    file.text = text;
    const result = this.parse(text, file.path);
    file.named = result.named;
    if (result.ok) {
      file.latest = versionOf(text, result);
      file.problems = [];
    } else {
      file.latest = undefined;
      file.problems = result.errors;
    }
    return true;
  }

  /** parseProfileFile, then the rules of this server: the size of a file, and the addresses no profile may take. */
  private parse(text: string, path: string): FileParseResult {
    const bytes = Buffer.byteLength(text);
    if (bytes > maxProfileBytes) {
      return { ok: false, errors: [fileProblem(path, `is ${bytes} bytes; a profile is at most ${maxProfileBytes}`)], named: { macs: [], groupMacs: [] } };
    }
    const result = parseProfileFile(text, path);
    if (!result.ok) return result;
    const errors: ProfileError[] = [];
    for (const member of groupMembers(result.profile)) {
      const { network } = member;
      if (network.mode !== 'static') continue;
      const taken = this.infrastructure.find((entry) => entry.address === network.address);
      if (taken === undefined) continue;
      const field = addressField(member);
      const location = result.locations.get(field) ?? { line: 1, column: 1 };
      errors.push({ file: path, ...location, field, message: `${network.address} is ${taken.what}; a host cannot have it as its static address` });
    }
    return errors.length > 0 ? { ok: false, errors, named: result.named } : result;
  }

  /** Decide which version of each file is served; see the class comment for the order. */
  private resolveClaims(): void {
    const held = new Map<string, FileClaim>();
    const take = (version: Version): ProfileError[] => {
      const claims = claimsOf(version);
      const conflicts = claims.flatMap((claim) => {
        const holder = held.get(claim.key);
        return holder === undefined || !clashes(holder, claim) ? [] : [claim.error(holder.holder)];
      });
      if (conflicts.length === 0) hold(held, claims);
      return conflicts;
    };

    const ordered = [...this.files.values()];
    const unchanged = (file: FileState) => file.served !== undefined && (file.latest === undefined || file.latest.text === file.served.text);
    for (const file of ordered.filter(unchanged)) {
      file.conflicts = [];
      // Files served together before cannot conflict with each other; this
      // only guards the invariant.
      const conflicts = take(file.served!);
      if (conflicts.length > 0) {
        file.served = undefined;
        file.conflicts = conflicts;
      }
    }
    for (const file of ordered.filter((candidate) => !unchanged(candidate))) {
      file.conflicts = [];
      if (file.latest === undefined) {
        file.served = undefined;
        continue;
      }
      const conflicts = take(file.latest);
      if (conflicts.length === 0) {
        file.served = file.latest;
        continue;
      }
      file.conflicts = conflicts;
      if (file.served !== undefined && take(file.served).length > 0) file.served = undefined;
    }

    this.byMac = new Map();
    this.byGroupMac = new Map();
    this.byStaticAddress = new Map();
    this.bySlot = [];
    this.brokenBySlot = [];
    this.brokenByMac = new Map();
    this.brokenByGroupMac = new Map();
    this.defaultVersion = undefined;
    for (const file of this.files.values()) {
      if (file.served !== undefined) continue;
      const problems = [...file.problems, ...file.conflicts];
      for (const [macs, broken] of [
        [file.named.macs, this.brokenByMac],
        [file.named.groupMacs, this.brokenByGroupMac],
      ] as const) {
        for (const mac of macs) broken.set(mac, [...(broken.get(mac) ?? []), ...problems].sort(compareProfileErrors));
      }
    }
    // Own files first: a group entry for a MAC that has its own file is overridden, and the own file says so.
    const overridden = new Map<string, Array<{ source: string; line: number }>>();
    const versions = [...this.files.values()].flatMap((file) => (file.served === undefined ? [] : [file.served]));
    const ownMacs = new Set(versions.flatMap((version) => (isGroupProfile(version.profile) || version.profile.mac === null ? [] : [version.profile.mac])));
    for (const version of versions) {
      if (!isGroupProfile(version.profile)) continue;
      for (const member of version.members) {
        if (!ownMacs.has(member.mac!)) continue;
        overridden.set(member.mac!, [...(overridden.get(member.mac!) ?? []), { source: member.source, line: member.groupEntry!.line }]);
      }
    }
    this.served = versions.flatMap((version) =>
      version.members.flatMap((member) => {
        if (member.groupEntry !== undefined) return ownMacs.has(member.mac!) ? [] : [member];
        const overrides = member.mac === null ? undefined : overridden.get(member.mac);
        return [overrides === undefined ? member : { ...member, overrides }];
      }),
    );
    for (const file of this.files.values()) {
      // A slot file refused for a conflict leaves the slot to the file that holds it.
      if (file.served === undefined && file.named.slot !== undefined && file.conflicts.length === 0) {
        this.brokenBySlot.push({ relay: file.named.slot, problems: [...file.problems].sort(compareProfileErrors) });
      }
    }
    for (const profile of this.served) {
      if (isDefaultProfile(profile)) this.defaultVersion = profile;
      if (profile.mac !== null) (profile.groupEntry === undefined ? this.byMac : this.byGroupMac).set(profile.mac, profile);
      if (profile.relay !== undefined) this.bySlot.push(profile);
      if (profile.network.mode === 'static') {
        const owner = profile.mac ?? (profile.relay === undefined ? undefined : `slot ${formatSlot(profile.relay)}`);
        if (owner !== undefined) this.byStaticAddress.set(profile.network.address, owner);
      }
    }
  }

  /** Log each file's problems once, when they change, with what happens to the file meanwhile. */
  private logProblems(): void {
    const seen = new Set<string>();
    for (const file of this.files.values()) {
      seen.add(file.name);
      const problems = [...file.problems, ...file.conflicts];
      const servedKey = file.served === undefined ? '' : file.served.text;
      const key = JSON.stringify([problems.map(formatProfileError), servedKey]);
      if (this.loggedProblems.get(file.name) === key) continue;
      this.loggedProblems.set(file.name, key);
      if (problems.length === 0) {
        const profile = file.served?.profile;
        if (profile !== undefined && isGroupProfile(profile)) {
          this.log.info({ file: file.path, hosts: profile.hosts.length }, 'group profile loaded');
        } else if (profile !== undefined) {
          const slot = profile.relay === undefined ? {} : { slot: formatSlot(profile.relay) };
          this.log.info({ file: file.path, mac: profile.mac, ...slot, hostname: profile.hostname }, 'profile loaded');
        }
        continue;
      }
      const outcome = file.served === undefined ? 'this file is not served' : 'still serving the last good version of this file';
      const { shown, more } = firstProblems(problems.sort(compareProfileErrors));
      for (const problem of shown) {
        this.log.error({ file: problem.file, line: problem.line, column: problem.column, field: problem.field }, `${formatProfileError(problem)} (${outcome})`);
      }
      if (more > 0) this.log.error({ file: file.path, more }, `${file.path}: ${more} more problems not listed (${outcome})`);
    }
    for (const name of [...this.loggedProblems.keys()]) if (!seen.has(name)) this.loggedProblems.delete(name);
  }

  /** What onChange compares: which versions are served, and the problems. */
  private snapshot(): { key: string } {
    const served = [...this.files.values()].map((file) => [file.name, file.served?.text ?? null]);
    return { key: JSON.stringify([served, this.errors().map(formatProfileError)]) };
  }
}

function reservationOf(mac: string, profile: Profile, network: Extract<NetworkConfig, { mode: 'static' }>): StaticAddress {
  const { address, prefixLength, gateway, dns } = network;
  const reservation: StaticAddress = { mac, address, prefixLength, dns: [...dns], hostname: profile.hostname, source: profile.source };
  if (gateway !== undefined) reservation.gateway = gateway;
  return reservation;
}

function fileProblem(path: string, message: string): ProfileError {
  return { file: path, line: 1, column: 1, field: '', message };
}

function versionOf(text: string, result: Extract<FileParseResult, { ok: true }>): Version {
  return { text, profile: result.profile, members: groupMembers(result.profile), locations: result.locations };
}

/** The field a member's static address was written in: network.address, or its group entry's address. */
function addressField(member: Profile): string {
  return member.groupEntry === undefined ? 'network.address' : `hosts[${member.groupEntry.index}].address`;
}

/** The MACs, static addresses, slot and default role a version would hold, each with the error if another file has it. */
function claimsOf(version: Version): FileClaim[] {
  const { locations } = version;
  const claims: FileClaim[] = [];
  for (const profile of version.members) {
    const at = (field: string, message: string): ProfileError => {
      const location = locations.get(field) ?? { line: 1, column: 1 };
      return { file: profile.source, line: location.line, column: location.column, field, message };
    };
    const layer: FileClaim['layer'] = profile.groupEntry === undefined ? 'file' : 'group';
    const prefix = profile.groupEntry === undefined ? '' : `hosts[${profile.groupEntry.index}].`;
    const holder = profile.groupEntry === undefined ? profile.source : `${profile.source} (hosts[${profile.groupEntry.index}])`;
    const owner = profile.mac === null ? {} : { mac: profile.mac };
    if (isDefaultProfile(profile)) {
      claims.push({ key: 'default', layer, holder, error: (holder) => at('', `a second default profile; ${holder} is the default profile already`) });
    }
    if (profile.mac !== null) {
      const mac = profile.mac;
      claims.push({ key: `mac ${mac}`, ...owner, layer, holder, error: (holder) => at(`${prefix}mac`, `${mac} is already the MAC of ${holder}`) });
    }
    if (profile.relay !== undefined) {
      const slot = formatSlot(profile.relay);
      claims.push({
        key: `slot ${slotKey(profile.relay)}`,
        layer,
        holder,
        error: (holder) => at('relay.circuitId', `${slot} is already the slot of ${holder}`),
      });
    }
    if (profile.network.mode === 'static') {
      const { address } = profile.network;
      claims.push({
        key: `address ${address}`,
        ...owner,
        layer,
        holder,
        error: (holder) => at(addressField(profile), `${address} is already the static address of ${holder}`),
      });
    }
    // A guest's written MAC is a NIC on the same network as every host: it
    // shares the MAC namespace with them and with other files' guests.
    // (Derived guest MACs are locally administered hashes; default.yaml and
    // groups may not write one.)
    profile.domains.forEach((domain, index) => {
      if (domain.mac === undefined) return;
      const mac = domain.mac;
      claims.push({
        key: `mac ${mac}`,
        layer,
        holder,
        error: (holder) => at(`domains[${index}].mac`, `${mac} is already a MAC in ${holder}; two NICs never share one`),
      });
    });
  }
  return claims;
}
