/**
 * A host profile as the rest of rackboot sees it: validated, normalised, and
 * traceable to the file it came from. The YAML contract is documented in the
 * README; see parse.ts for how files become Profiles.
 */

import type { RelaySlot } from './slot.js';
import type { DomainDisk, StorageConfig } from './storage.js';

export type NetworkConfig =
  | { mode: 'dhcp' }
  | {
      mode: 'static';
      /** Dotted quad, without prefix. */
      address: string;
      /** CIDR prefix length, 0-32. */
      prefixLength: number;
      gateway?: string;
      dns: string[];
    };

export interface BootSettings {
  /** Boot menu entry booted by default ("standard", "testing", ...). */
  entry: string;
  /** Extra Xen hypervisor arguments. */
  xenArgs: string;
  /** Extra dom0 kernel arguments. */
  kernelArgs: string;
  /** Seconds the boot menu waits for a key before booting `entry`; 0 boots it at once, without a menu. */
  menuTimeout: number;
  /** The channel whose current build the host boots (`rackboot build --channel`); the default channel's when neither this nor `build` is set. */
  channel?: string;
  /** A build id the host boots whatever the channels' current builds are. */
  build?: string;
  /** false: rackboot never asks the host to reboot (a rollout's --reboot); its guests are not interrupted. Default true. */
  allowReboot?: boolean;
}

/**
 * A private bridge that dom0 routes: it has dom0's address in `subnet` and
 * hands its guests addresses there (DHCP), and forwards (with NAT) only what
 * goes to the rack addresses `allow` names.
 */
export interface RoutedBridge {
  /** The subnet, as written (198.19.7.0/24). */
  subnet: string;
  /** Rack addresses the guests may reach, as CIDRs (198.18.0.1/32). */
  allow: string[];
}

/** A Xen guest (domU) that dom0 starts from the profile. */
export interface DomainConfig {
  /** xl domain name, unique within the profile. */
  name: string;
  /** MiB, at least 32. */
  memory: number;
  vcpus: number;
  /** Part names of the build: the guest's kernel and initrd, downloaded into /run/rackboot/parts/ on dom0. */
  kernel: string;
  ramdisk: string;
  /** Extra arguments for the guest's kernel command line. */
  extraArgs: string;
  /** The dom0 bridge the guest's NIC joins: xenbr0 (the rack's), or one of the host's own (see network). */
  bridge: string;
  /** What dom0 makes of a bridge other than xenbr0 when it is missing: private (no way out) or VLAN N of the host's NIC. */
  network?: { kind: 'private'; routed?: RoutedBridge } | { kind: 'vlan'; vlan: number };
  /** Normalised MAC of the guest's NIC; when absent, derived from the host MAC and the name (see guestMacs). */
  mac?: string;
  /** Started at boot (else only its configuration is served). */
  autostart: boolean;
  /** Restarted by dom0 when it crashes or stops. */
  restart: boolean;
  /** Its disks, in device order; none: a guest that lives in its ramdisk. */
  disks?: DomainDisk[];
  /** What the guest runs: the busybox demo guest's ramdisk (left out: the default), or the build's Debian guest image. */
  image?: 'busybox' | 'debian';
  /** A Debian guest's root: the device of one of its disks (installed there when blank), or "ram" (fetched at each start, run from RAM). */
  root?: string;
  /** A Debian guest's settings, written into its root when the root is new (installed now, or fetched into RAM). */
  firstBoot?: FirstBoot;
}

/** Settings a Debian guest's root gets when it is new: the guest's own hostname, network, root hash and keys. */
export interface FirstBoot {
  hostname: string;
  network: NetworkConfig;
  /** crypt(3) SHA-512 hash; none: root's password stays locked. */
  rootPasswordHash?: string;
  sshAuthorizedKeys: string[];
}

/**
 * The host's BMC, reached over IPMI v2.0 (RMCP+, ipmitool's lanplus): rackboot
 * power-cycles the host through it, with its next boot set to the network,
 * when a rollout's host hangs or an admin asks (rackboot power-cycle).
 */
export interface BmcConfig {
  /** IPv4 address or DNS name of the BMC. */
  address: string;
  /** UDP port, 623 unless written. */
  port: number;
  /** IPMI user name (at most 16 bytes). */
  user: string;
  /** Absolute path of a file holding the user's password, readable by the server (never the password itself: profiles are diffed and shared). */
  passwordFile: string;
  /** RMCP+ cipher suite: 17 (HMAC-SHA256, AES-128; the default) or 3 (HMAC-SHA1, AES-128) for BMCs without 17. */
  cipherSuite: 3 | 17;
}

export interface Profile {
  /** Path of the YAML file this profile came from. */
  source: string;
  /** Only on a profile made from a group's hosts: entry: which entry (index and line in `source`). */
  groupEntry?: { index: number; line: number };
  /** Only on a host's own file: the group entries for the same MAC that it overrides. */
  overrides?: Array<{ source: string; line: number }>;
  /** Normalised MAC (lower case, colon separated); null for the default profile and for a slot-only profile. */
  mac: string | null;
  /**
   * The slot (DHCP relay agent option 82) this profile is for, whatever the
   * MAC of the machine in it; see slot.ts. A MAC's own profile wins over a
   * slot's.
   */
  relay?: RelaySlot;
  /** Hostname; in the default profile "{mac}" is replaced by the MAC without separators. */
  hostname: string;
  network: NetworkConfig;
  /** crypt(3) SHA-512 hash ("$6$..."); never a plain password. */
  rootPasswordHash?: string;
  ssh: boolean;
  timezone: string;
  boot: BootSettings;
  /** authorized_keys lines for root, each a validated OpenSSH public key. */
  sshAuthorizedKeys: string[];
  /** Run apt-get update on dom0 after boot. */
  aptUpdate: boolean;
  /** Xen guests, in the order dom0 starts them. */
  domains: DomainConfig[];
  /** The host's own storage: volume groups found or created at boot (only in a host's or a slot's own file). */
  storage?: StorageConfig;
  /** The host's BMC (only in a host's or a slot's own file); never sent to the host. */
  bmc?: BmcConfig;
}

/** default.yaml's profile: the one that names neither a MAC nor a slot. */
export function isDefaultProfile(profile: Profile): boolean {
  return profile.mac === null && profile.relay === undefined;
}

/** One machine of a group file's `hosts:` table. */
export interface GroupHost {
  /** Normalised MAC. */
  mac: string;
  hostname: string;
  /** Its network: the group's, with the entry's own address in static mode. */
  network: NetworkConfig;
  /** Where the entry starts in the group file (1-based). */
  line: number;
}

/**
 * A group file: the settings many machines share, and the table of those
 * machines (MAC, hostname, address). It serves no profile of its own; each
 * entry is served as a profile of its own (groupMembers).
 */
export interface GroupProfile extends Omit<Profile, 'mac' | 'hostname' | 'network' | 'relay' | 'groupEntry' | 'overrides'> {
  mac: null;
  /** The network settings the hosts share: the mode, and in static mode the gateway and name servers. */
  network: { mode: 'dhcp' } | { mode: 'static'; gateway?: string; dns: string[] };
  hosts: GroupHost[];
}

/** What one profile file holds: a host's, a slot's or the default profile, or a group. */
export type ProfileFileContent = Profile | GroupProfile;

export function isGroupProfile(content: ProfileFileContent): content is GroupProfile {
  return 'hosts' in content && content.hosts !== undefined;
}

/** The profiles a file serves: a group's one per hosts: entry, any other file's its own. Pure. */
export function groupMembers(content: ProfileFileContent): Profile[] {
  if (!isGroupProfile(content)) return [content];
  const { hosts, network: _shared, ...settings } = content;
  return hosts.map((host, index) => ({ ...settings, mac: host.mac, hostname: host.hostname, network: host.network, groupEntry: { index, line: host.line } }));
}

/**
 * Which file made a host's profile, for people: the file, the group entry
 * it comes from, or the group entries its own file overrides. `name` turns
 * a path into what to show (a base name on the status page).
 */
export function profileOrigin(profile: Profile, name: (path: string) => string = (path) => path): string {
  const file = name(profile.source);
  if (profile.groupEntry !== undefined) return `${file} (group entry hosts[${profile.groupEntry.index}], line ${profile.groupEntry.line})`;
  if (isDefaultProfile(profile)) return `${file} (the default profile)`;
  if (profile.mac === null) return `${file} (the slot's profile)`;
  const overrides = (profile.overrides ?? []).map((entry) => `${name(entry.source)} line ${entry.line}`);
  return overrides.length > 0 ? `${file} (its own file, over its group entry in ${overrides.join(', ')})` : `${file} (its own file)`;
}

/** The profile a MAC resolves to, with the default's placeholders filled in. */
export function profileForHost(profile: Profile, mac: string): Profile {
  if (profile.mac !== null) return profile;
  return { ...profile, hostname: profile.hostname.replaceAll('{mac}', mac.replaceAll(':', '')) };
}
