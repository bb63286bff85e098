/**
 * The profiles of one directory as data: which version of each file is
 * served, who holds each claim (a MAC, a static address, a slot, being the
 * default), and the answers built on them (lookup, reservations, problems,
 * the admin check). Rebuilt from the files' texts on every reload, with the
 * index it replaces as an input; reads no file and keeps no time. Pure:
 * ProfileDirectory (store.ts) reads and watches the folder around it.
 */
import { join } from 'node:path';
import { compareProfileErrors, formatProfileError, type ProfileError } from './error.js';
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

/** The outcome of ProfileIndex.check. */
export type ProfileCheck = { ok: true; profile: ProfileFileContent } | { ok: false; errors: ProfileError[] };

/** One profile file as the directory sees it. */
export interface ProfileFileStatus {
  name: string;
  path: string;
  /** The version being served, if any (the last good one when the file has problems): a profile, or a group. */
  served: ProfileFileContent | undefined;
  problems: ProfileError[];
}

/** An address no profile may take as its static address, with what it is ("this server's address"), for the error. */
export interface InfrastructureAddress {
  address: string;
  what: string;
}

/** One file of the directory as read: its text, or why it could not be read ("cannot be read: ..."). */
export type ProfileFileRead = { text: string } | { problem: string };

export interface ProfileIndexInput {
  /** The directory of the files: a file's path (in errors, and as Profile.source) is the directory joined with its name. */
  dir: string;
  /** Every profile file of the directory by name, as read this time. */
  files: ReadonlyMap<string, ProfileFileRead>;
  /**
   * The index this one replaces: a file keeps serving its last good version
   * from it when its new text is refused, and the claims it held there come
   * before those of changed and new files. Without it (the first load) the
   * order of names alone decides.
   */
  previous?: ProfileIndex | undefined;
  /** Addresses no profile may take as its static address (the server's own, the router's). */
  infrastructure?: readonly InfrastructureAddress[] | undefined;
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
  /** The text last read; undefined when it could not be read. */
  text: string | undefined;
  /** The problems of that text (parse errors, or the read error); empty when it parsed. */
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

/** A slot named by a file that is not served, with the file's problems: machines in it wait rather than boot another profile. */
interface BrokenSlot {
  relay: RelaySlot;
  problems: ProfileError[];
}

/**
 * The profiles of one directory: which version of each file is served, and
 * what each MAC, slot and static address resolves to. Immutable; a reload
 * builds a new one (ProfileIndex.build).
 *
 * A file that fails to parse, or that claims a MAC or static address another
 * file holds, never replaces what was served from it before: the last good
 * version stays, and the problem is listed by errors(). A file that is gone
 * from the input stops being served.
 *
 * Conflicts: files are taken in order of name, so on the first load
 * "a.yaml" wins over "b.yaml". On later builds, files serving unchanged
 * keep their claims first, then changed and new files are tried in order of
 * name. So copying node01.yaml to node00.yaml and forgetting to change the
 * MAC does not take node01's MAC away from a running rack; after a restart
 * the name order decides again, and the conflict is still reported.
 */
export class ProfileIndex {
  /** Hosts' own files by MAC. */
  private readonly byMac = new Map<string, Profile>();
  /** Group entries by MAC, those a host's own file overrides left out. */
  private readonly byGroupMac = new Map<string, Profile>();
  /** Every profile served (a group's one per entry), in order of file name. */
  private readonly served: Profile[];
  /** MACs whose own file is broken and never parsed: they wait instead of booting the default. */
  private readonly brokenByMac = new Map<string, ProfileError[]>();
  /** Likewise for MACs in the hosts: table of a group file that is not served. */
  private readonly brokenByGroupMac = new Map<string, ProfileError[]>();
  /** Static address -> who holds it: the profile's MAC, or its slot for a slot-only profile. */
  private readonly byStaticAddress = new Map<string, string>();
  /** Profiles that name a slot (relay:), in order of file name. */
  private readonly bySlot: Profile[] = [];
  /** Slots named by files that are not served (they never parsed, or conflict), with the files' problems. */
  private readonly brokenBySlot: BrokenSlot[] = [];
  private readonly defaultVersion: Profile | undefined;
  /** What changed() compares: the version served from each file, and the problems. */
  private readonly changeKey: string;

  private constructor(
    private readonly dir: string,
    private readonly infrastructure: readonly InfrastructureAddress[],
    /** By name, in order of name. */
    private readonly files: ReadonlyMap<string, FileState>,
  ) {
    for (const file of files.values()) {
      if (file.served !== undefined) continue;
      const problems = [...file.problems, ...file.conflicts];
      for (const [macs, broken] of [
        [file.named.macs, this.brokenByMac],
        [file.named.groupMacs, this.brokenByGroupMac],
      ] as const) {
        for (const mac of macs) broken.set(mac, [...(broken.get(mac) ?? []), ...problems].sort(compareProfileErrors));
      }
      // A slot file refused for a conflict leaves the slot to the file that holds it.
      if (file.named.slot !== undefined && file.conflicts.length === 0) {
        this.brokenBySlot.push({ relay: file.named.slot, problems: [...file.problems].sort(compareProfileErrors) });
      }
    }
    this.served = servedProfiles([...files.values()].flatMap((file) => file.served ?? []));
    let defaultVersion: Profile | undefined;
    for (const profile of this.served) {
      if (isDefaultProfile(profile)) defaultVersion = profile;
      if (profile.mac !== null) (profile.groupEntry === undefined ? this.byMac : this.byGroupMac).set(profile.mac, profile);
      if (profile.relay !== undefined) this.bySlot.push(profile);
      if (profile.network.mode === 'static') {
        const owner = profile.mac ?? (profile.relay === undefined ? undefined : `slot ${formatSlot(profile.relay)}`);
        if (owner !== undefined) this.byStaticAddress.set(profile.network.address, owner);
      }
    }
    this.defaultVersion = defaultVersion;
    const servedTexts = [...files.values()].map((file) => [file.name, file.served?.text ?? null]);
    this.changeKey = JSON.stringify([servedTexts, this.errors().map(formatProfileError)]);
  }

  /**
   * The index of `input.files`: each text parsed (a text unchanged since
   * `input.previous` is not parsed again), then the claims resolved in the
   * order the class comment gives.
   */
  static build(input: ProfileIndexInput): ProfileIndex {
    const infrastructure = input.infrastructure ?? [];
    const files = new Map<string, FileState>();
    for (const name of [...input.files.keys()].sort()) {
      const read = input.files.get(name)!;
      files.set(name, fileState({ name, path: join(input.dir, name), read, before: input.previous?.files.get(name) }, infrastructure));
    }
    resolveClaims([...files.values()]);
    return new ProfileIndex(input.dir, infrastructure, files);
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
  private slotChoice(slot: RelaySlot): Profile | BrokenSlot | undefined {
    return selectSlotProfile<Profile | BrokenSlot>([...this.bySlot, ...this.brokenBySlot], slot);
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
    for (const profile of this.served) {
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
   * What serving `text` as the file `name` would give: the parse errors, or
   * the claims (MAC, static address, slot, default role) that another served
   * file holds already. The admin API checks an edit with this before
   * writing it, so a rejected edit never reaches disk.
   */
  check(name: string, text: string): ProfileCheck {
    const result = parseFile(text, join(this.dir, name), this.infrastructure);
    if (!result.ok) return { ok: false, errors: result.errors };
    const held = new Map<string, FileClaim>();
    for (const file of this.files.values()) if (file.name !== name && file.served !== undefined) hold(held, claimsOf(file.served));
    const errors = clashesWith(held, claimsOf(versionOf(text, result)));
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

  /** The text of the version served from the file `name`, if any: what tells one served version from another. */
  servedText(name: string): string | undefined {
    return this.files.get(name)?.served?.text;
  }

  /** Whether a file serves another version than in `before`, or the problems differ. */
  changed(before: ProfileIndex): boolean {
    return this.changeKey !== before.changeKey;
  }
}

/**
 * A file's state after this read: the new text parsed, or the last parse
 * kept when the text is the same. The version served carries over from
 * `before` either way, for resolveClaims to keep or replace.
 */
function fileState(
  file: { name: string; path: string; read: ProfileFileRead; before: FileState | undefined },
  infrastructure: readonly InfrastructureAddress[],
): FileState {
  const { name, path, read, before } = file;
  const carried = { name, path, served: before?.served, conflicts: [] };
  if ('problem' in read) {
    // What the last readable text named still holds: its machines keep waiting rather than boot the default.
    const named = before?.named ?? { macs: [], groupMacs: [] };
    return { ...carried, text: undefined, problems: [fileProblem(path, read.problem)], latest: undefined, named };
  }
  if (before !== undefined && before.text === read.text) {
    return { ...carried, text: read.text, problems: before.problems, latest: before.latest, named: before.named };
  }
  const result = parseFile(read.text, path, infrastructure);
  return result.ok
    ? { ...carried, text: read.text, problems: [], latest: versionOf(read.text, result), named: result.named }
    : { ...carried, text: read.text, problems: result.errors, latest: undefined, named: result.named };
}

/** parseProfileFile, then the rules of this server: the size of a file, and the addresses no profile may take. */
function parseFile(text: string, path: string, infrastructure: readonly InfrastructureAddress[]): FileParseResult {
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
    const taken = infrastructure.find((entry) => entry.address === network.address);
    if (taken === undefined) continue;
    const field = addressField(member);
    const location = result.locations.get(field) ?? { line: 1, column: 1 };
    errors.push({ file: path, ...location, field, message: `${network.address} is ${taken.what}; a host cannot have it as its static address` });
  }
  return errors.length > 0 ? { ok: false, errors, named: result.named } : result;
}

/** Whether `claim` may not be taken while `holder` holds its key. */
function clashes(holder: FileClaim, claim: FileClaim): boolean {
  return !(holder.mac !== undefined && holder.mac === claim.mac && holder.layer !== claim.layer);
}

/** Record the claims a served version makes; where a host's own file and a group entry share a key, the own file holds it. */
function hold(held: Map<string, FileClaim>, claims: readonly FileClaim[]): void {
  for (const claim of claims) if (!held.has(claim.key) || claim.layer === 'file') held.set(claim.key, claim);
}

/** The errors of the claims that another file holds already. */
function clashesWith(held: ReadonlyMap<string, FileClaim>, claims: readonly FileClaim[]): ProfileError[] {
  return claims.flatMap((claim) => {
    const holder = held.get(claim.key);
    return holder === undefined || !clashes(holder, claim) ? [] : [claim.error(holder.holder)];
  });
}

/** Decide which version of each file is served (setting `served` and `conflicts`); see the ProfileIndex comment for the order. */
function resolveClaims(files: readonly FileState[]): void {
  const held = new Map<string, FileClaim>();
  const take = (version: Version): ProfileError[] => {
    const claims = claimsOf(version);
    const conflicts = clashesWith(held, claims);
    if (conflicts.length === 0) hold(held, claims);
    return conflicts;
  };

  const unchanged = (file: FileState) => file.served !== undefined && (file.latest === undefined || file.latest.text === file.served.text);
  for (const file of files.filter(unchanged)) {
    // Files served together before cannot conflict with each other; this
    // only guards the invariant.
    const conflicts = take(file.served!);
    if (conflicts.length > 0) {
      file.served = undefined;
      file.conflicts = conflicts;
    }
  }
  for (const file of files.filter((candidate) => !unchanged(candidate))) {
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
}

/**
 * The profiles the served versions give, in order of file name: own files
 * first in that they override a group's entry for the same MAC (the entry
 * is left out, and the own file lists it in `overrides`).
 */
function servedProfiles(versions: readonly Version[]): Profile[] {
  const ownMacs = new Set(versions.flatMap((version) => (isGroupProfile(version.profile) || version.profile.mac === null ? [] : [version.profile.mac])));
  const overridden = new Map<string, Array<{ source: string; line: number }>>();
  for (const version of versions) {
    if (!isGroupProfile(version.profile)) continue;
    for (const member of version.members) {
      if (!ownMacs.has(member.mac!)) continue;
      overridden.set(member.mac!, [...(overridden.get(member.mac!) ?? []), { source: member.source, line: member.groupEntry!.line }]);
    }
  }
  return versions.flatMap((version) =>
    version.members.flatMap((member) => {
      if (member.groupEntry !== undefined) return ownMacs.has(member.mac!) ? [] : [member];
      const overrides = member.mac === null ? undefined : overridden.get(member.mac);
      return [overrides === undefined ? member : { ...member, overrides }];
    }),
  );
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
    if (isDefaultProfile(profile)) {
      claims.push({ key: 'default', layer, holder, error: (holder) => at('', `a second default profile; ${holder} is the default profile already`) });
    }
    if (profile.mac !== null) {
      const mac = profile.mac;
      claims.push({ key: `mac ${mac}`, mac, layer, holder, error: (holder) => at(`${prefix}mac`, `${mac} is already the MAC of ${holder}`) });
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
      // Made for the host's MAC (see clashes); a slot profile's address is nobody's.
      const owner = profile.mac === null ? {} : { mac: profile.mac };
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
