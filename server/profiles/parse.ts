import { isMap, isScalar, isSeq, Scalar, type LineCounter, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import { BUILD_ID, CHANNEL_NAME, DEFAULT_CHANNEL } from '../assets/manifest.js';
import type { ProfileError } from './error.js';
import { bootArgsProblem, bootEntryNames, hostnameProblem, isBootEntryName, passwordHashProblem, timezoneProblem } from './fields.js';
import { nonUnicastReason, parseIpv4, parseIpv4WithPrefix, reservedInSubnetReason } from './addresses.js';
import { numberToIpv4, Subnet } from '../net/ipv4.js';
import {
  bridgeNameProblem,
  debianGuestMemoryMiB,
  defaultFirstBoot,
  domainDefaults,
  domainNameProblem,
  guestMacProblem,
  maximumDomainMemoryMiB,
  maximumDomainVcpus,
  minimumDebianGuestMemoryMiB,
  minimumDomainMemoryMiB,
  partNameProblem,
} from './domain.js';
import { normaliseMac } from './mac.js';
import type { BmcConfig, BootSettings, DomainConfig, GroupHost, GroupProfile, NetworkConfig, Profile, ProfileFileContent, RoutedBridge } from './profile.js';
import { slotIdFromText, type RelaySlot } from './slot.js';
import { sshPublicKeyProblem } from './ssh-key.js';
import {
  chapSecretProblem,
  chapUserProblem,
  formatDiskRef,
  guestDeviceName,
  iscsiNameProblem,
  type IscsiSession,
  guestDeviceProblem,
  lvmNameProblem,
  parseDiskRef,
  parseDomainConfigSource,
  parseSize,
  diskFilePathProblem,
  runtimeConfigSource,
  type DomainConfigSource,
  type DiskRef,
  type DomainDisk,
  type StorageConfig,
  type VolumeGroupConfig,
} from './storage.js';

import { describe, yamlDocument, YamlReader, type Entry, type FieldLocation } from './yaml-reader.js';

export type { FieldLocation } from './yaml-reader.js';

export type ParseResult = { ok: true; profile: Profile; locations: ReadonlyMap<string, FieldLocation> } | { ok: false; errors: ProfileError[] };

/**
 * What a profile text names clearly, even when it does not parse as a
 * whole: its mac:, the MACs of a group's hosts: table, its relay: slot. A
 * broken file still holds what it names (a machine whose own file is broken
 * waits rather than boot the default).
 */
export interface NamedInFile {
  macs: string[];
  groupMacs: string[];
  slot?: RelaySlot;
}

/** What parseProfileFile gives: any profile file, a group's included, and what it names. */
export type FileParseResult = (
  { ok: true; profile: ProfileFileContent; locations: ReadonlyMap<string, FieldLocation> } | { ok: false; errors: ProfileError[] }
) & { named: NamedInFile };

/** File names of the default profile, the one for hosts without a file of their own. */
export const defaultProfileFileNames = ['default.yaml', 'default.yml'] as const;

/**
 * dom0 gets a fixed 256 MiB (`max:` too, so it never balloons): on a
 * 512 MiB machine that leaves room for the default profile's two 96 MiB
 * demo guests and Xen's own 8 MiB. Less does not boot: Xen's PV dom0
 * builder wants an aligned block for the kernel and the initrd, and the
 * kernel keeps the initramfs in a tmpfs limited to half its memory
 * (docs/performance.md has the measured floors).
 */
export const profileDefaults = {
  ssh: false,
  timezone: 'Etc/UTC',
  aptUpdate: false,
  boot: { entry: 'standard', xenArgs: 'dom0_mem=256M,max:256M', kernelArgs: '', menuTimeout: 5 } satisfies BootSettings,
} as const;

/** The longest boot menu wait a profile may ask for: an hour is already a machine nobody watches. */
const maximumMenuTimeout = 3600;

/** The host name "{mac}" stands for while checking a default profile's hostname. */
const sampleMacText = '525400123456';

/** The most name servers glibc's resolver uses (MAXNS in resolv.h); further ones are ignored silently. */
const maxNameServers = 3;

const topLevelFields = [
  'mac',
  'hostname',
  'network',
  'rootPasswordHash',
  'ssh',
  'sshAuthorizedKeys',
  'timezone',
  'aptUpdate',
  'boot',
  'domains',
  'storage',
  'relay',
  'hosts',
  'bmc',
] as const;
const groupHostFields = ['mac', 'hostname', 'address'] as const;
const networkFields = ['mode', 'address', 'gateway', 'dns'] as const;
const bootFields = ['entry', 'menuTimeout', 'xenArgs', 'kernelArgs', 'channel', 'build', 'allowReboot'] as const;
const domainFields = [
  'name',
  'memory',
  'vcpus',
  'kernel',
  'ramdisk',
  'extraArgs',
  'bridge',
  'network',
  'mac',
  'autostart',
  'restart',
  'disks',
  'image',
  'root',
  'firstBoot',
] as const;
const firstBootFields = ['hostname', 'network', 'rootPasswordHash', 'sshAuthorizedKeys'] as const;
const domainNetworkFields = ['bridge', 'private', 'vlan', 'subnet', 'allow'] as const;
const storageFields = ['volumeGroups', 'iscsi', 'initiator', 'domainConfigs'] as const;
const iscsiFields = ['name', 'portal', 'target', 'chapUser', 'chapSecret'] as const;
const volumeGroupFields = ['name', 'disks', 'initialize'] as const;
const domainDiskFields = ['volume', 'size', 'disk', 'iscsi', 'lun', 'file', 'filesystem', 'device', 'readOnly'] as const;
const relayFields = ['circuitId', 'remoteId'] as const;
const bmcFields = ['address', 'port', 'user', 'passwordFile', 'cipherSuite'] as const;

/**
 * Turn the text of one host's, slot's or the default profile file into a
 * Profile, or into every problem found in it, each with its line, column
 * and field. Pure: `source` is only used for messages, Profile.source and to
 * tell whether this is default.yaml. Never throws, whatever the text. A
 * group file (one with hosts:) is refused; see parseProfileFile.
 */
export function parseProfile(text: string, source: string): ParseResult {
  const { named: _named, ...result } = parseProfileFile(text, source);
  if (!result.ok || !('hosts' in result.profile)) return result as ParseResult;
  const { line, column } = result.locations.get('hosts') ?? { line: 1, column: 1 };
  return { ok: false, errors: [{ file: source, line, column, field: 'hosts', message: 'a table of hosts: this is a group file, not one profile' }] };
}

/** parseProfile for any profile file, a group file (hosts:) included. */
export function parseProfileFile(text: string, source: string): FileParseResult {
  const { document, lineCounter } = yamlDocument(text);
  const reader = new ProfileReader(text, source, lineCounter);
  const named = namedIn(document.contents);
  if (!reader.checkDocument(document, 'profiles')) return { ...reader.failure(), named };
  const profile = reader.readProfile(document.contents);
  if (profile === undefined || reader.errors.length > 0) return { ...reader.failure(), named };
  return { ok: true, profile, locations: reader.locations, named };
}

/** What the root of a profile document names, as far as it reads clearly (see NamedInFile). */
function namedIn(root: unknown): NamedInFile {
  const text = (node: unknown): string | undefined => {
    const source = isScalar(node) ? (node.source ?? String(node.value)) : undefined;
    return typeof source === 'string' ? source : undefined;
  };
  const macOf = (map: unknown): string[] => {
    const mac = isMap(map) ? normaliseMac(text(map.get('mac', true)) ?? '') : undefined;
    return mac === undefined ? [] : [mac];
  };
  const hosts = isMap(root) ? root.get('hosts', true) : undefined;
  const named: NamedInFile = { macs: macOf(root), groupMacs: isSeq(hosts) ? hosts.items.flatMap(macOf) : [] };
  const relay = isMap(root) ? root.get('relay', true) : undefined;
  if (isMap(relay)) {
    const id = (name: string) => {
      const written = text(relay.get(name, true));
      const parsed = written === undefined ? undefined : slotIdFromText(written);
      return parsed !== undefined && 'hex' in parsed ? parsed.hex : undefined;
    };
    const circuitId = id('circuitId');
    const remoteId = id('remoteId');
    if (circuitId !== undefined) named.slot = remoteId === undefined ? { circuitId } : { circuitId, remoteId };
  }
  return named;
}

/** The last part of a path, for either separator (sources are only names here, never opened). */
function baseName(source: string): string {
  return source.slice(Math.max(source.lastIndexOf('/'), source.lastIndexOf('\\')) + 1);
}

export function isDefaultProfileFile(source: string): boolean {
  return (defaultProfileFileNames as readonly string[]).includes(baseName(source));
}

class ProfileReader extends YamlReader {
  constructor(text: string, source: string, lineCounter: LineCounter) {
    super(text, source, lineCounter, 'mac: ..., hostname: ...');
  }

  readProfile(root: Node | null): ProfileFileContent | undefined {
    if (root === null || root === undefined || (isScalar(root) && root.value === null)) {
      this.errorAtOffset(0, '', 'the file holds no profile; want at least mac: and hostname: (see profiles/default.yaml)');
      return undefined;
    }
    const fields = this.mapping({ path: '', key: null, value: root }, topLevelFields);
    if (fields === undefined) return undefined;
    const rootOffset = root.range?.[0] ?? 0;
    const isDefault = isDefaultProfileFile(this.source);

    const hostsEntry = fields.get('hosts');
    if (hostsEntry !== undefined) return this.readGroup(fields, hostsEntry, isDefault);

    let mac: string | null = null;
    const macEntry = fields.get('mac');
    const relayEntry = fields.get('relay');
    if (relayEntry !== undefined && isDefault) {
      this.error(
        relayEntry.key,
        'relay',
        `not allowed in ${baseName(this.source)}, the profile for hosts without a file of their own; give the slot a file of its own`,
      );
    }
    const relay = relayEntry === undefined || isDefault ? undefined : this.relay(relayEntry);
    if (macEntry === undefined) {
      if (!isDefault && relayEntry === undefined) {
        this.errorAtOffset(
          rootOffset,
          'mac',
          'missing; every profile names its host by MAC (or its slot, with relay:), except default.yaml (the profile for hosts without a file of their own)',
        );
      }
    } else if (isDefault) {
      this.error(
        macEntry.key,
        'mac',
        `not allowed in ${baseName(this.source)}, the profile for hosts without a file of their own; give this host a file of its own`,
      );
    } else {
      mac = this.mac(macEntry) ?? null;
    }

    const hostnameEntry = fields.get('hostname');
    let hostname: string | undefined;
    if (hostnameEntry === undefined) {
      this.errorAtOffset(rootOffset, 'hostname', isDefault ? 'missing; want a name such as node-{mac}' : 'missing; want a name such as node01');
    } else {
      hostname = this.hostname(hostnameEntry, isDefault);
    }

    const rootPasswordHash = this.optional(fields.get('rootPasswordHash'), (entry) => this.string(entry, passwordHashProblem));
    const network = this.network(fields.get('network'), isDefault);
    const ssh = this.optional(fields.get('ssh'), (entry) => this.boolean(entry)) ?? profileDefaults.ssh;
    const timezone = this.optional(fields.get('timezone'), (entry) => this.string(entry, timezoneProblem)) ?? profileDefaults.timezone;
    const sshAuthorizedKeys = this.optional(fields.get('sshAuthorizedKeys'), (entry) => this.sshKeys(entry)) ?? [];
    const aptUpdate = this.optional(fields.get('aptUpdate'), (entry) => this.boolean(entry)) ?? profileDefaults.aptUpdate;
    const boot = this.boot(fields.get('boot'), rootPasswordHash);
    const storageEntry = fields.get('storage');
    if (storageEntry !== undefined && isDefault) {
      this.error(
        storageEntry.key,
        'storage',
        `not allowed in ${baseName(this.source)}, the profile for hosts without a file of their own: a volume group names one machine's own disks; put it in that host's file`,
      );
    }
    const storage = storageEntry === undefined || isDefault ? undefined : this.storage(storageEntry);
    const bmcEntry = fields.get('bmc');
    if (bmcEntry !== undefined && isDefault) {
      this.error(
        bmcEntry.key,
        'bmc',
        `not allowed in ${baseName(this.source)}, the profile for hosts without a file of their own: a BMC is one machine's; put it in that host's file`,
      );
    }
    const bmc = bmcEntry === undefined || isDefault ? undefined : this.bmc(bmcEntry);
    const domains =
      this.optional(fields.get('domains'), (entry) =>
        this.domains(
          entry,
          mac,
          isDefault ? `${baseName(this.source)}: every host without a file of its own` : undefined,
          rootPasswordHash,
          storage,
          storageEntry !== undefined && storage === undefined,
        ),
      ) ?? [];

    if (hostname === undefined || network === undefined || boot === undefined || this.errors.length > 0) return undefined;
    const profile: Profile = { source: this.source, mac, hostname, network, ssh, timezone, boot, sshAuthorizedKeys, aptUpdate, domains };
    if (rootPasswordHash !== undefined) profile.rootPasswordHash = rootPasswordHash;
    if (relay !== undefined) profile.relay = relay;
    if (storage !== undefined) profile.storage = storage;
    if (bmc !== undefined) profile.bmc = bmc;
    return profile;
  }

  /**
   * A group file: the settings of a profile, shared by the machines of its
   * hosts: table, which gives each its MAC, hostname and (static mode)
   * address. What would be the same for every machine is refused where a
   * machine needs its own: mac:, hostname:, network.address, a domain's mac:.
   */
  private readGroup(fields: Map<string, Entry>, hostsEntry: Entry, isDefault: boolean): GroupProfile | undefined {
    this.remember(hostsEntry);
    if (isDefault) {
      this.error(
        hostsEntry.key,
        'hosts',
        `not allowed in ${baseName(this.source)}, the profile for hosts without a file of their own; put the group in a file of its own`,
      );
    }
    const elsewhere: Record<string, string> = {
      mac: 'a group names its machines in hosts:, each with its own mac:',
      hostname: 'a group names each machine in its hosts: entry (hostname:)',
      relay: 'a group is for the MACs of its hosts: table; give the slot a file of its own',
      storage: "a volume group names one machine's own disks (by serial or id); put it in that host's own file",
      bmc: "a BMC is one machine's; put it in that host's own file",
    };
    for (const [name, why] of Object.entries(elsewhere)) {
      const entry = fields.get(name);
      if (entry !== undefined) this.error(entry.key, name, `not allowed in a group file (one with hosts:): ${why}`);
    }
    const rootPasswordHash = this.optional(fields.get('rootPasswordHash'), (entry) => this.string(entry, passwordHashProblem));
    const network = this.groupNetwork(fields.get('network'));
    const ssh = this.optional(fields.get('ssh'), (entry) => this.boolean(entry)) ?? profileDefaults.ssh;
    const timezone = this.optional(fields.get('timezone'), (entry) => this.string(entry, timezoneProblem)) ?? profileDefaults.timezone;
    const sshAuthorizedKeys = this.optional(fields.get('sshAuthorizedKeys'), (entry) => this.sshKeys(entry)) ?? [];
    const aptUpdate = this.optional(fields.get('aptUpdate'), (entry) => this.boolean(entry)) ?? profileDefaults.aptUpdate;
    const boot = this.boot(fields.get('boot'), rootPasswordHash);
    const domains =
      this.optional(fields.get('domains'), (entry) => this.domains(entry, null, 'a group file: every machine of its hosts: table', rootPasswordHash)) ?? [];
    const hosts = network === undefined ? undefined : this.groupHosts(hostsEntry, network, fields.get('network'));
    if (network === undefined || hosts === undefined || boot === undefined || this.errors.length > 0) return undefined;
    const group: GroupProfile = { source: this.source, mac: null, network, hosts, ssh, timezone, boot, sshAuthorizedKeys, aptUpdate, domains };
    if (rootPasswordHash !== undefined) group.rootPasswordHash = rootPasswordHash;
    return group;
  }

  /** A group's network: the mode, and in static mode the shared gateway and name servers (each host's address is in hosts:). */
  private groupNetwork(entry: Entry | undefined): GroupProfile['network'] | undefined {
    if (entry === undefined) return { mode: 'dhcp' };
    const fields = this.mapping(entry, networkFields);
    if (fields === undefined) return undefined;
    const addressEntry = fields.get('address');
    if (addressEntry !== undefined) {
      this.error(addressEntry.key, addressEntry.path, "not allowed in a group file: each machine's address is in its hosts: entry (address: 198.18.0.50/24)");
      return undefined;
    }
    const modeEntry = fields.get('mode');
    const mode = modeEntry === undefined ? 'dhcp' : this.string(modeEntry);
    if (mode !== 'dhcp' && mode !== 'static') {
      if (mode !== undefined) this.entryError(modeEntry!, `${JSON.stringify(mode)} is not a network mode (want dhcp or static)`);
      return undefined;
    }
    if (mode === 'dhcp') {
      for (const name of ['gateway', 'dns'] as const) {
        const unused = fields.get(name);
        if (unused !== undefined)
          this.error(
            unused.key,
            unused.path,
            `only used with mode: static (${modeEntry === undefined ? 'network.mode is dhcp when left out' : 'the DHCP server provides it'})`,
          );
      }
      return { mode: 'dhcp' };
    }
    // The gateway is checked against each host's subnet in groupHosts.
    const gatewayEntry = fields.get('gateway');
    const gateway = gatewayEntry === undefined ? undefined : this.gateway(gatewayEntry, undefined);
    const dnsEntry = fields.get('dns');
    const dns = dnsEntry === undefined ? [] : this.nameServers(dnsEntry);
    if ((gatewayEntry !== undefined && gateway === undefined) || dns === undefined) return undefined;
    return gateway === undefined ? { mode: 'static', dns } : { mode: 'static', gateway, dns };
  }

  /** The hosts: table of a group: one mapping of mac, hostname and (static mode) address per machine, each unique in the file. */
  private groupHosts(entry: Entry, network: GroupProfile['network'], networkEntry: Entry | undefined): GroupHost[] | undefined {
    const example =
      network.mode === 'static' ? '- {mac: 52:54:00:12:34:56, hostname: node01, address: 198.18.0.50/24}' : '- {mac: 52:54:00:12:34:56, hostname: node01}';
    if (!isSeq(entry.value)) {
      this.entryError(entry, `want a list of machines (${example}), got ${describe(entry.value)}`);
      return undefined;
    }
    const items = (entry.value as YAMLSeq<Node | null>).items;
    if (items.length === 0) {
      this.entryError(entry, `lists no machines; want at least one (${example})`);
      return undefined;
    }
    const seen = { mac: new Map<string, string>(), hostname: new Map<string, string>(), address: new Map<string, string>() };
    const once = (kind: keyof typeof seen, value: string, itemEntry: Entry, path: string, what: string): boolean => {
      const first = seen[kind].get(value);
      if (first !== undefined) {
        this.entryError(itemEntry, `${value} is already the ${what} of ${first}; every machine of a group has its own`);
        return false;
      }
      seen[kind].set(value, path);
      return true;
    };
    const hosts: GroupHost[] = [];
    const gatewayEntry =
      networkEntry !== undefined && isMap(networkEntry.value) ? (networkEntry.value as YAMLMap<unknown, unknown>).get('gateway', true) : undefined;
    items.forEach((item, index) => {
      const path = `${entry.path}[${index}]`;
      const itemFields = this.mapping({ path, key: null, value: item }, groupHostFields);
      if (itemFields === undefined) return;
      const before = this.errors.length;
      const line = this.position(item?.range?.[0] ?? 0).line;
      const macEntry = itemFields.get('mac');
      const mac = macEntry === undefined ? undefined : this.mac(macEntry);
      if (macEntry === undefined) this.error(item, `${path}.mac`, `missing; every machine of a group is named by its MAC (${example})`);
      else if (mac !== undefined) once('mac', mac, macEntry, path, 'MAC');
      const hostnameEntry = itemFields.get('hostname');
      const hostname = hostnameEntry === undefined ? undefined : this.hostname(hostnameEntry, false);
      if (hostnameEntry === undefined) this.error(item, `${path}.hostname`, "missing; want the machine's name, such as node01");
      else if (hostname !== undefined) once('hostname', hostname.toLowerCase(), hostnameEntry, path, 'hostname');
      const addressEntry = itemFields.get('address');
      let hostNetwork: NetworkConfig = { mode: 'dhcp' };
      if (network.mode === 'dhcp') {
        if (addressEntry !== undefined) this.error(addressEntry.key, addressEntry.path, "only used when the group's network.mode is static");
      } else if (addressEntry === undefined) {
        this.error(
          item,
          `${path}.address`,
          "missing; the group's network.mode is static, so each machine needs its address with its prefix, such as 198.18.0.50/24",
        );
      } else {
        const host = this.hostAddress(addressEntry);
        if (host !== undefined && once('address', numberToIpv4(host.address), addressEntry, path, 'address')) {
          const gatewayProblem = network.gateway === undefined ? undefined : this.gatewayProblem(parseIpv4(network.gateway)!, host);
          if (gatewayProblem !== undefined) {
            this.entryError(addressEntry, `network.gateway ${network.gateway} ${gatewayProblem}`);
            if (gatewayEntry !== undefined)
              this.error(
                gatewayEntry as Node,
                'network.gateway',
                `${network.gateway} ${gatewayProblem} (${path}, ${numberToIpv4(host.address)}/${host.prefixLength})`,
              );
          }
          hostNetwork = { mode: 'static', address: numberToIpv4(host.address), prefixLength: host.prefixLength, dns: [...network.dns] };
          if (network.gateway !== undefined) hostNetwork.gateway = network.gateway;
        }
      }
      if (this.errors.length > before || mac === undefined || hostname === undefined) return;
      hosts.push({ mac, hostname, network: hostNetwork, line });
    });
    return hosts.length === items.length ? hosts : undefined;
  }

  private mac(entry: Entry): string | undefined {
    // An unquoted 525400123456 is a number to YAML, and under %YAML 1.1 even
    // 52:54:00:12:34:56 is one (base 60): read what was written instead.
    const value = entry.value;
    const written = isScalar(value) && typeof value.value === 'number' && value.type === Scalar.PLAIN ? value.source : undefined;
    const text = written ?? this.string(entry);
    if (text === undefined) return undefined;
    this.remember(entry);
    const mac = normaliseMac(text);
    if (mac === undefined) {
      this.entryError(entry, `${JSON.stringify(text)} is not a MAC address (want six hex pairs: 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456)`);
    }
    return mac;
  }

  private hostname(entry: Entry, isDefault: boolean): string | undefined {
    const hostname = this.string(entry);
    if (hostname === undefined) return undefined;
    const placeholders = hostname.match(/\{[^}]*\}?/g) ?? [];
    const unknown = placeholders.find((placeholder) => placeholder !== '{mac}');
    if (unknown !== undefined) {
      this.entryError(entry, `${JSON.stringify(hostname)}: unknown placeholder ${unknown}; only {mac} is filled in`);
      return undefined;
    }
    if (placeholders.length > 0 && !isDefault) {
      this.entryError(entry, `${JSON.stringify(hostname)}: {mac} is only filled in by default.yaml; write this host's name`);
      return undefined;
    }
    const filled = hostname.replaceAll('{mac}', sampleMacText);
    const problem = hostnameProblem(filled);
    if (problem !== undefined) {
      const note = filled === hostname ? '' : ` ({mac} filled in as ${sampleMacText})`;
      this.entryError(entry, problem + note);
      return undefined;
    }
    return hostname;
  }

  private network(entry: Entry | undefined, isDefault: boolean): NetworkConfig | undefined {
    if (entry === undefined) return { mode: 'dhcp' };
    const fields = this.mapping(entry, networkFields);
    if (fields === undefined) return undefined;
    const modeEntry = fields.get('mode');
    let mode: 'dhcp' | 'static' | undefined = 'dhcp';
    if (modeEntry !== undefined) {
      const text = this.string(modeEntry);
      if (text === 'dhcp' || text === 'static') {
        mode = text;
      } else {
        if (text !== undefined) this.entryError(modeEntry, `${JSON.stringify(text)} is not a network mode (want dhcp or static)`);
        mode = undefined;
      }
    }
    if (mode === undefined) return undefined;

    if (mode === 'dhcp') {
      for (const name of ['address', 'gateway', 'dns'] as const) {
        const unused = fields.get(name);
        if (unused === undefined) continue;
        const why = modeEntry === undefined ? 'network.mode is dhcp when left out' : 'the DHCP server provides it';
        this.error(unused.key, unused.path, `only used with mode: static (${why})`);
      }
      return { mode: 'dhcp' };
    }

    if (isDefault) {
      this.entryError(modeEntry!, `static is not allowed in ${baseName(this.source)}: every host without a file of its own would get the same address`);
      return undefined;
    }
    const addressEntry = fields.get('address');
    if (addressEntry === undefined) {
      this.error(modeEntry!.value, `${entry.path}.address`, 'missing; mode static needs the host address with its prefix, such as 198.18.0.50/24');
      return undefined;
    }
    const host = this.hostAddress(addressEntry);
    const gatewayEntry = fields.get('gateway');
    const gateway = gatewayEntry === undefined ? undefined : this.gateway(gatewayEntry, host);
    const dnsEntry = fields.get('dns');
    const dns = dnsEntry === undefined ? [] : this.nameServers(dnsEntry);
    if (host === undefined || (gatewayEntry !== undefined && gateway === undefined) || dns === undefined) return undefined;
    const network: NetworkConfig = { mode: 'static', address: numberToIpv4(host.address), prefixLength: host.prefixLength, dns };
    if (gateway !== undefined) network.gateway = gateway;
    return network;
  }

  private hostAddress(entry: Entry): { address: number; prefixLength: number } | undefined {
    const text = this.string(entry);
    if (text === undefined) return undefined;
    const quoted = JSON.stringify(text);
    const parsed = parseIpv4WithPrefix(text);
    if (parsed === undefined) {
      const hint = parseIpv4(text) !== undefined ? `; add the prefix length, such as ${text}/24` : '';
      this.entryError(entry, `${quoted} is not an IPv4 address with a prefix (want a.b.c.d/n)${hint || ipv4Hint(text)}`);
      return undefined;
    }
    if (parsed.prefixLength === 0) {
      this.entryError(entry, `${quoted} has prefix length 0; want 1 to 32`);
      return undefined;
    }
    const problem = nonUnicastReason(parsed.address) ?? reservedInSubnetReason(parsed.address, parsed.prefixLength);
    if (problem !== undefined) {
      this.entryError(entry, `${quoted} ${problem}`);
      return undefined;
    }
    return parsed;
  }

  /**
   * The gateway must be inside the host's subnet. Linux can reach a gateway
   * outside it through an "onlink" route, but the runtime's network setup
   * adds a plain default route, which the kernel refuses ("Nexthop has
   * invalid gateway"); and a gateway outside the subnet is almost always a
   * typo in the address or the prefix.
   */
  private gateway(entry: Entry, host: { address: number; prefixLength: number } | undefined): string | undefined {
    const text = this.string(entry);
    if (text === undefined) return undefined;
    const quoted = JSON.stringify(text);
    const gateway = parseIpv4(text);
    if (gateway === undefined) {
      this.entryError(entry, `${quoted} is not an IPv4 address (want a.b.c.d)${ipv4Hint(text)}`);
      return undefined;
    }
    const problem = nonUnicastReason(gateway);
    if (problem !== undefined) {
      this.entryError(entry, `${quoted} ${problem}`);
      return undefined;
    }
    const hostProblem = host === undefined ? undefined : this.gatewayProblem(gateway, host);
    if (hostProblem !== undefined) {
      this.entryError(entry, `${quoted} ${hostProblem}`);
      return undefined;
    }
    return numberToIpv4(gateway);
  }

  /** Why `gateway` cannot be the gateway of `host`, if it cannot. */
  private gatewayProblem(gateway: number, host: { address: number; prefixLength: number }): string | undefined {
    const subnet = new Subnet(numberToIpv4(host.address), host.prefixLength);
    if (gateway === host.address) return "is the host's own address";
    if (!subnet.contains(numberToIpv4(gateway))) return `is outside the host's subnet ${subnet}; the gateway must be directly reachable`;
    return reservedInSubnetReason(gateway, host.prefixLength);
  }

  private nameServers(entry: Entry): string[] | undefined {
    if (!isSeq(entry.value)) {
      this.entryError(entry, `want a list of IPv4 addresses, such as [198.18.0.1], got ${describe(entry.value)}`);
      return undefined;
    }
    const items = (entry.value as YAMLSeq<Node | null>).items;
    if (items.length > maxNameServers) {
      this.entryError(entry, `lists ${items.length} name servers; the resolver uses only the first ${maxNameServers}`);
      return undefined;
    }
    const servers: string[] = [];
    let failed = false;
    items.forEach((item, index) => {
      const itemEntry: Entry = { path: `${entry.path}[${index}]`, key: null, value: item };
      const text = this.string(itemEntry);
      if (text === undefined) {
        failed = true;
        return;
      }
      const address = parseIpv4(text);
      const problem = address === undefined ? `is not an IPv4 address (want a.b.c.d)${ipv4Hint(text)}` : nonUnicastReason(address);
      if (address === undefined || problem !== undefined) {
        this.entryError(itemEntry, `${JSON.stringify(text)} ${problem}`);
        failed = true;
        return;
      }
      servers.push(numberToIpv4(address));
    });
    return failed ? undefined : servers;
  }

  private boot(entry: Entry | undefined, passwordHash: string | undefined): BootSettings | undefined {
    const boot: BootSettings = { ...profileDefaults.boot };
    if (entry === undefined) return boot;
    const fields = this.mapping(entry, bootFields);
    if (fields === undefined) return undefined;
    let ok = true;
    const entryEntry = fields.get('entry');
    if (entryEntry !== undefined) {
      const names = `${bootEntryNames.slice(0, -1).join(', ')} or ${bootEntryNames.at(-1)}`;
      const name = this.string(entryEntry, (text) => (isBootEntryName(text) ? undefined : `${JSON.stringify(text)} is not a boot entry (want ${names})`));
      if (name === undefined) ok = false;
      else boot.entry = name;
    }
    const timeoutEntry = fields.get('menuTimeout');
    if (timeoutEntry !== undefined) {
      const timeout = this.integer(timeoutEntry, 0, maximumMenuTimeout, 'seconds', '5, or 0 to boot the entry at once without a menu');
      if (timeout === undefined) ok = false;
      else boot.menuTimeout = timeout;
    }
    for (const name of ['xenArgs', 'kernelArgs'] as const) {
      const argsEntry = fields.get(name);
      if (argsEntry === undefined) continue;
      const args = this.string(argsEntry, (text) => bootArgsProblem(text, passwordHash));
      if (args === undefined) ok = false;
      else boot[name] = args;
    }
    const channelEntry = fields.get('channel');
    if (channelEntry !== undefined) {
      const channel = this.string(channelEntry, (text) =>
        text === DEFAULT_CHANNEL || CHANNEL_NAME.test(text)
          ? undefined
          : `${JSON.stringify(text)} is not a channel name (want "${DEFAULT_CHANNEL}", or a lower-case letter then up to 31 of a-z, 0-9 and -, as in "rackboot build --channel testing")`,
      );
      if (channel === undefined) ok = false;
      else boot.channel = channel;
    }
    const rebootEntry = fields.get('allowReboot');
    if (rebootEntry !== undefined) {
      const allowed = this.boolean(rebootEntry);
      if (allowed === undefined) ok = false;
      else boot.allowReboot = allowed;
    }
    const buildEntry = fields.get('build');
    if (buildEntry !== undefined) {
      const build = this.string(buildEntry, (text) =>
        channelEntry !== undefined
          ? `names a build and a channel (boot.channel); a pinned build is the same whatever the channel, so leave one out`
          : BUILD_ID.test(text)
            ? undefined
            : `${JSON.stringify(text)} is not a build id (want one as "rackboot builds list" prints it, such as 20261206T074500.123Z-1a2b3c4d)`,
      );
      if (build === undefined) ok = false;
      else boot.build = build;
    }
    return ok ? boot : undefined;
  }

  /** relay: the slot (RFC 3046 option 82 circuit-id and remote-id) this profile is for. */
  private relay(entry: Entry): RelaySlot | undefined {
    const fields = this.mapping(entry, relayFields);
    if (fields === undefined) return undefined;
    const circuitEntry = fields.get('circuitId');
    if (circuitEntry === undefined) {
      this.error(entry.key, `${entry.path}.circuitId`, 'missing; a slot is named by the circuit-id its relay agent sends (sub-option 1), such as "r1"');
      return undefined;
    }
    const circuitId = this.slotId(circuitEntry);
    const remoteEntry = fields.get('remoteId');
    const remoteId = remoteEntry === undefined ? undefined : this.slotId(remoteEntry);
    if (circuitId === undefined || (remoteEntry !== undefined && remoteId === undefined)) return undefined;
    return remoteId === undefined ? { circuitId } : { circuitId, remoteId };
  }

  /** bmc: the host's BMC, reached over IPMI (profile.ts's BmcConfig). */
  private bmc(entry: Entry): BmcConfig | undefined {
    const fields = this.mapping(entry, bmcFields);
    if (fields === undefined) return undefined;
    const before = this.errors.length;
    const required = (field: string, example: string): Entry | undefined => {
      const found = fields.get(field);
      if (found === undefined) this.error(entry.key, `${entry.path}.${field}`, `missing; such as ${example}`);
      return found;
    };
    const addressEntry = required('address', '198.18.10.21 or node01-bmc.lab.example');
    const address =
      addressEntry === undefined
        ? undefined
        : this.string(addressEntry, (text) =>
            parseIpv4(text) !== undefined || (/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(text) && /[A-Za-z]/.test(text))
              ? undefined
              : `${JSON.stringify(text)} is not an IPv4 address or a DNS name${ipv4Hint(text)}`,
          );
    const portEntry = fields.get('port');
    const port = portEntry === undefined ? 623 : this.integer(portEntry, 1, 65535, '(a UDP port)', '623');
    const userEntry = required('user', 'admin');
    const user =
      userEntry === undefined
        ? undefined
        : this.string(userEntry, (text) =>
            text.length === 0 || Buffer.byteLength(text) > 16 || /[\x00-\x1f\x7f]/.test(text)
              ? `${JSON.stringify(text)} is not an IPMI user name (1 to 16 bytes, no control characters)`
              : undefined,
          );
    const fileEntry = required('passwordFile', '/etc/rackboot/bmc/node01.password');
    const passwordFile =
      fileEntry === undefined
        ? undefined
        : this.string(fileEntry, (text) =>
            text.startsWith('/') && !text.includes('\0')
              ? undefined
              : `${JSON.stringify(text)} is not an absolute path; want the file that holds the password (never the password itself), such as /etc/rackboot/bmc/node01.password`,
          );
    const suiteEntry = fields.get('cipherSuite');
    let cipherSuite: 3 | 17 | undefined = 17;
    if (suiteEntry !== undefined) {
      const suite = this.integer(suiteEntry, 0, 255, '(an IPMI cipher suite)', '17');
      if (suite !== undefined && suite !== 3 && suite !== 17)
        this.entryError(suiteEntry, `${suite} is not a cipher suite rackboot uses; want 17 (HMAC-SHA256) or 3 (HMAC-SHA1)`);
      cipherSuite = suite === 3 || suite === 17 ? suite : undefined;
    }
    if (
      this.errors.length > before ||
      address === undefined ||
      port === undefined ||
      user === undefined ||
      passwordFile === undefined ||
      cipherSuite === undefined
    )
      return undefined;
    return { address, port, user, passwordFile, cipherSuite };
  }

  /** A circuit-id or remote-id: text, or hex bytes written 0x... (see slot.ts). */
  private slotId(entry: Entry): string | undefined {
    // Unquoted, 0x7231 and 42 are numbers to YAML: read what was written.
    const value = entry.value;
    const written = isScalar(value) && typeof value.value === 'number' && value.type === Scalar.PLAIN ? value.source : undefined;
    const text = written ?? this.string(entry);
    if (text === undefined) return undefined;
    this.remember(entry);
    const parsed = slotIdFromText(text);
    if ('problem' in parsed) {
      this.entryError(entry, parsed.problem);
      return undefined;
    }
    return parsed.hex;
  }

  private sshKeys(entry: Entry): string[] | undefined {
    if (!isSeq(entry.value)) {
      this.entryError(entry, `want a list of public keys, such as ["ssh-ed25519 AAAAC3Nza... user@host"], got ${describe(entry.value)}`);
      return undefined;
    }
    const keys: string[] = [];
    let failed = false;
    (entry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
      const itemEntry: Entry = { path: `${entry.path}[${index}]`, key: null, value: item };
      const key = this.string(itemEntry, sshPublicKeyProblem);
      if (key === undefined) failed = true;
      else keys.push(key.trim());
    });
    return failed ? undefined : keys;
  }

  /** `sharedBy` says whose domains these are when they are many hosts' (default.yaml, a group): then none may write a guest MAC. */
  private domains(
    entry: Entry,
    hostMac: string | null,
    sharedBy: string | undefined,
    passwordHash: string | undefined,
    storage?: StorageConfig,
    /** storage: is there but has errors of its own: names in it are not checked against it. */
    storageBroken = false,
  ): DomainConfig[] | undefined {
    if (!isSeq(entry.value)) {
      this.entryError(entry, `want a list of domains (- name: web1 ...), got ${describe(entry.value)}`);
      return undefined;
    }
    const domains: DomainConfig[] = [];
    const names = new Map<string, string>();
    const macs = new Map<string, string>();
    // Who has each volume and whole disk: no two guests write one.
    const backings = new Map<string, string>();
    // What each of the host's own bridges is, and where it was first said: every guest on it says the same.
    const bridges = new Map<string, { network: DomainConfig['network']; path: string }>();
    let failed = false;
    (entry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
      const path = `${entry.path}[${index}]`;
      const fields = this.mapping({ path, key: null, value: item }, domainFields);
      if (fields === undefined) {
        failed = true;
        return;
      }
      const before = this.errors.length;
      const domain: DomainConfig = { name: '', ...domainDefaults };
      const nameEntry = fields.get('name');
      if (nameEntry === undefined) {
        this.error(item, `${path}.name`, 'missing; every domain needs a name, such as web1');
      } else {
        const name = this.string(nameEntry, domainNameProblem);
        if (name !== undefined) {
          const first = names.get(name);
          if (first !== undefined) this.entryError(nameEntry, `${JSON.stringify(name)} is already the name of ${first}; names are unique within a profile`);
          names.set(name, path);
          domain.name = name;
        }
      }
      const memoryEntry = fields.get('memory');
      if (memoryEntry !== undefined) {
        const memory = this.integer(memoryEntry, minimumDomainMemoryMiB, maximumDomainMemoryMiB, 'MiB', '256');
        if (memory !== undefined) domain.memory = memory;
      }
      const vcpusEntry = fields.get('vcpus');
      if (vcpusEntry !== undefined) {
        const vcpus = this.integer(vcpusEntry, 1, maximumDomainVcpus, 'virtual CPUs', '1');
        if (vcpus !== undefined) domain.vcpus = vcpus;
      }
      for (const part of ['kernel', 'ramdisk'] as const) {
        const partEntry = fields.get(part);
        const value = partEntry === undefined ? undefined : this.string(partEntry, partNameProblem);
        if (value !== undefined) domain[part] = value;
      }
      const argsEntry = fields.get('extraArgs');
      const args = argsEntry === undefined ? undefined : this.string(argsEntry, (text) => bootArgsProblem(text, passwordHash));
      if (args !== undefined) domain.extraArgs = args;
      const bridgeEntry = fields.get('bridge');
      const bridge = bridgeEntry === undefined ? undefined : this.string(bridgeEntry, bridgeNameProblem);
      if (bridge !== undefined) domain.bridge = bridge;
      const networkEntry = fields.get('network');
      if (networkEntry !== undefined) {
        if (bridgeEntry !== undefined) this.error(bridgeEntry.key, bridgeEntry.path, `and ${path}.network together; write the bridge in network.bridge`);
        else this.domainNetwork(networkEntry, domain, bridges);
      }
      for (const flag of ['autostart', 'restart'] as const) {
        const flagEntry = fields.get(flag);
        const value = flagEntry === undefined ? undefined : this.boolean(flagEntry);
        if (value !== undefined) domain[flag] = value;
      }
      const macEntry = fields.get('mac');
      if (macEntry !== undefined) {
        if (sharedBy !== undefined) {
          this.error(macEntry.key, macEntry.path, `not allowed in ${sharedBy} would give this guest the same MAC; leave it out to derive one per host`);
        } else {
          const mac = this.mac(macEntry);
          const problem = mac === undefined ? undefined : guestMacProblem(mac);
          if (problem !== undefined) this.entryError(macEntry, problem);
          else if (mac !== undefined && mac === hostMac) this.entryError(macEntry, `${mac} is the host's own MAC; a guest needs one of its own`);
          else if (mac !== undefined && macs.has(mac)) this.entryError(macEntry, `${mac} is already the MAC of ${macs.get(mac)}; two guests never share one`);
          else if (mac !== undefined) {
            macs.set(mac, path);
            domain.mac = mac;
          }
        }
      }
      const disksEntry = fields.get('disks');
      if (disksEntry !== undefined) {
        const disks = this.domainDisks(disksEntry, storage, backings, storageBroken);
        if (disks !== undefined && disks.length > 0) domain.disks = disks;
      }
      this.domainImage(fields, domain, memoryEntry !== undefined, sharedBy);
      if (this.errors.length > before) failed = true;
      else domains.push(domain);
    });
    return failed ? undefined : domains;
  }

  /**
   * A domain's `image:` (busybox, the default, or debian), and for a Debian
   * guest its `root:` (a device of its own disks, writable; or ram, the
   * default when it has no disks) and `firstBoot:` settings (the host
   * profile's own fields: hostname, network, rootPasswordHash,
   * sshAuthorizedKeys; the hostname defaults to the domain's name).
   */
  private domainImage(fields: Map<string, Entry>, domain: DomainConfig, memoryWritten: boolean, sharedBy: string | undefined): void {
    const imageEntry = fields.get('image');
    const image = imageEntry === undefined ? undefined : this.string(imageEntry);
    if (image !== undefined && image !== 'busybox' && image !== 'debian') {
      this.entryError(imageEntry!, `${JSON.stringify(image)} is not a guest image; want busybox (the demo guest) or debian (the build's Debian guest image)`);
      return;
    }
    const rootEntry = fields.get('root');
    const firstBootEntry = fields.get('firstBoot');
    if (image !== 'debian') {
      for (const unused of [rootEntry, firstBootEntry]) {
        if (unused !== undefined)
          this.error(unused.key, unused.path, 'only with image: debian (the busybox demo guest lives in its ramdisk and takes no settings)');
      }
      return;
    }
    domain.image = 'debian';
    if (!memoryWritten) domain.memory = debianGuestMemoryMiB;
    else if (domain.memory < minimumDebianGuestMemoryMiB) {
      const memoryEntry = fields.get('memory')!;
      this.entryError(
        memoryEntry,
        `${domain.memory} MiB is too little for the Debian guest image; it needs at least ${minimumDebianGuestMemoryMiB} (${debianGuestMemoryMiB} when left out)`,
      );
    }
    const devices = (domain.disks ?? []).map((disk) => disk.device);
    if (rootEntry === undefined) {
      domain.root = domain.disks?.find((disk) => !disk.readOnly)?.device ?? 'ram';
    } else {
      const root = this.string(rootEntry, (text) => {
        if (text === 'ram') return undefined;
        const disk = domain.disks?.find((candidate) => candidate.device === text);
        if (disk === undefined) {
          return `${JSON.stringify(text)} is not a device of this domain's disks (${devices.length > 0 ? devices.join(', ') : 'it has none'}); name one, or ram to run the image from RAM`;
        }
        if (disk.readOnly) return `${JSON.stringify(text)} is read-only; the image is installed on its root disk`;
        return undefined;
      });
      if (root !== undefined) domain.root = root;
    }
    const firstBoot = defaultFirstBoot(domain.name);
    if (firstBootEntry !== undefined) {
      const settings = this.mapping(firstBootEntry, firstBootFields);
      if (settings === undefined) return;
      const hostnameEntry = settings.get('hostname');
      const hostname = hostnameEntry === undefined ? undefined : this.hostname(hostnameEntry, false);
      if (hostname !== undefined) firstBoot.hostname = hostname;
      const networkEntry = settings.get('network');
      const network = this.network(networkEntry, false);
      if (network?.mode === 'static' && sharedBy !== undefined) {
        this.error(
          networkEntry!.key,
          networkEntry!.path,
          `mode static not allowed in ${sharedBy} would give its guest the same address; write it in a host's own file`,
        );
      } else if (network !== undefined) firstBoot.network = network;
      const hashEntry = settings.get('rootPasswordHash');
      const hash = hashEntry === undefined ? undefined : this.string(hashEntry, passwordHashProblem);
      if (hash !== undefined) firstBoot.rootPasswordHash = hash;
      const keysEntry = settings.get('sshAuthorizedKeys');
      const keys = keysEntry === undefined ? undefined : this.sshKeys(keysEntry);
      if (keys !== undefined) firstBoot.sshAuthorizedKeys = keys;
    }
    domain.firstBoot = firstBoot;
  }

  /**
   * A domain's `network:`: its bridge, and for a bridge of the host's own
   * (not xenbr0) what dom0 makes of it when it is missing: `private: true`
   * (no way out: its guests reach each other and nothing else) or `vlan: N`
   * (VLAN N of the host's NIC, tagged on the rack's wire). Every guest on one
   * bridge says the same of it.
   */
  private domainNetwork(entry: Entry, domain: DomainConfig, bridges: Map<string, { network: DomainConfig['network']; path: string }>): void {
    const fields = this.mapping(entry, domainNetworkFields);
    if (fields === undefined) return;
    const before = this.errors.length;
    const bridgeEntry = fields.get('bridge');
    const bridge = bridgeEntry === undefined ? domainDefaults.bridge : this.string(bridgeEntry, bridgeNameProblem);
    const privateEntry = fields.get('private');
    const isPrivate = privateEntry === undefined ? false : this.boolean(privateEntry);
    const vlanEntry = fields.get('vlan');
    const vlan = vlanEntry === undefined ? undefined : this.integer(vlanEntry, 1, 4094, 'VLAN id', '42');
    if (bridge === undefined || isPrivate === undefined || (vlanEntry !== undefined && vlan === undefined)) return;
    if (isPrivate && vlan !== undefined) {
      this.error(vlanEntry!.key, vlanEntry!.path, 'and private: true together; a private bridge has no way out, a VLAN bridge is on the rack');
      return;
    }
    if (bridge === domainDefaults.bridge && (isPrivate || vlan !== undefined)) {
      const [field, entryOf] = isPrivate ? ['private', privateEntry!] : ['vlan', vlanEntry!];
      this.error(
        entryOf.key,
        entryOf.path,
        `not for ${bridge}, the rack's own bridge; name a bridge of the host's, such as ${field === 'vlan' ? `vlan${vlan}` : 'lab0'}`,
      );
      return;
    }
    const subnetEntry = fields.get('subnet');
    const allowEntry = fields.get('allow');
    let routed: RoutedBridge | undefined;
    if (subnetEntry !== undefined || allowEntry !== undefined) {
      if (!isPrivate) {
        const entryOf = (subnetEntry ?? allowEntry)!;
        this.error(entryOf.key, entryOf.path, "only with private: true (a bridge of the host's that dom0 routes out of)");
        return;
      }
      if (subnetEntry === undefined || allowEntry === undefined) {
        const present = (subnetEntry ?? allowEntry)!;
        this.error(
          present.key,
          `${entry.path}.${subnetEntry === undefined ? 'subnet' : 'allow'}`,
          'missing; subnet: and allow: go together (dom0 routes the subnet out to the allowed addresses only)',
        );
        return;
      }
      const subnet = this.string(subnetEntry, (text) => {
        const parsed = parseIpv4WithPrefix(text);
        if (parsed === undefined) return `${JSON.stringify(text)} is not a subnet; want A.B.C.D/N, such as 198.19.7.0/24`;
        if (parsed.prefixLength < 16 || parsed.prefixLength > 29) return `${JSON.stringify(text)}: want a prefix length from 16 to 29`;
        if ((parsed.address & ~new Subnet(numberToIpv4(parsed.address), parsed.prefixLength).mask) >>> 0 !== 0) {
          return `${JSON.stringify(text)} is not the subnet's first address (${new Subnet(numberToIpv4(parsed.address), parsed.prefixLength).toString()})`;
        }
        return undefined;
      });
      let allow: string[] | undefined;
      if (!isSeq(allowEntry.value) || (allowEntry.value as YAMLSeq).items.length === 0) {
        this.entryError(allowEntry, `want a list of rack addresses, such as [198.18.0.1, 198.18.0.0/24], got ${describe(allowEntry.value)}`);
      } else {
        allow = [];
        (allowEntry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
          const itemEntry: Entry = { path: `${allowEntry.path}[${index}]`, key: null, value: item };
          const text = this.string(itemEntry, (written) => {
            const cidr = written.includes('/') ? written : `${written}/32`;
            const parsed = parseIpv4WithPrefix(cidr);
            if (parsed === undefined) return `${JSON.stringify(written)} is not an address or a subnet (198.18.0.1 or 198.18.0.0/24)`;
            return undefined;
          });
          if (text !== undefined) {
            const cidr = text.includes('/') ? text : `${text}/32`;
            const parsed = parseIpv4WithPrefix(cidr)!;
            allow!.push(new Subnet(numberToIpv4(parsed.address), parsed.prefixLength).toString());
          }
        });
      }
      if (subnet === undefined || allow === undefined || this.errors.length > before) return;
      routed = { subnet, allow };
    }
    const network: DomainConfig['network'] = isPrivate
      ? routed === undefined
        ? { kind: 'private' }
        : { kind: 'private', routed }
      : vlan !== undefined
        ? { kind: 'vlan', vlan }
        : undefined;
    if (bridge !== domainDefaults.bridge) {
      const first = bridges.get(bridge);
      const describeNetwork = (n: DomainConfig['network']): string =>
        n === undefined ? 'an existing bridge' : n.kind === 'private' ? 'private' : `VLAN ${n.vlan}`;
      if (first !== undefined && JSON.stringify(first.network) !== JSON.stringify(network)) {
        this.entryError(entry, `${bridge} is ${describeNetwork(first.network)} in ${first.path}; every guest on one bridge says the same of it`);
        return;
      }
      bridges.set(bridge, { network, path: entry.path });
    }
    if (this.errors.length > before) return;
    domain.bridge = bridge;
    if (network !== undefined) domain.network = network;
  }

  /** A disk of the host, written as serial:SERIAL or /dev/disk/by-id/ID. */
  private diskRef(entry: Entry): DiskRef | undefined {
    let ref: DiskRef | undefined;
    this.string(entry, (written) => {
      const parsed = parseDiskRef(written);
      if ('problem' in parsed) return parsed.problem;
      ref = parsed;
      return undefined;
    });
    return ref;
  }

  /** A filesystem of the host (VG/NAME, label:, serial:, by-id); a volume's group must be one of `groups` unless that is undefined (not checked). */
  private configSource(entry: Entry, groups: { has(name: string): boolean } | undefined): DomainConfigSource | undefined {
    let source: DomainConfigSource | undefined;
    this.string(entry, (written) => {
      const parsed = parseDomainConfigSource(written);
      if ('problem' in parsed) return parsed.problem;
      if (parsed.kind === 'volume' && groups !== undefined && !groups.has(parsed.volumeGroup)) {
        return `${JSON.stringify(parsed.volumeGroup)} is not a volume group of this profile (storage.volumeGroups)`;
      }
      source = parsed;
      return undefined;
    });
    return source;
  }

  /** `storage:`: the host's volume groups, each on disks named by serial or id. */
  private storage(entry: Entry): StorageConfig | undefined {
    const fields = this.mapping(entry, storageFields);
    if (fields === undefined) return undefined;
    const before = this.errors.length;
    const volumeGroups: VolumeGroupConfig[] = [];
    const groupsEntry = fields.get('volumeGroups');
    const groupNames = new Map<string, string>();
    const diskOwners = new Map<string, string>();
    if (groupsEntry !== undefined) {
      if (!isSeq(groupsEntry.value)) {
        this.entryError(groupsEntry, `want a list of volume groups (- name: vg0, disks: [serial:...]), got ${describe(groupsEntry.value)}`);
        return undefined;
      }
      (groupsEntry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
        const path = `${groupsEntry.path}[${index}]`;
        const group = this.mapping({ path, key: null, value: item }, volumeGroupFields);
        if (group === undefined) return;
        const nameEntry = group.get('name');
        let name: string | undefined;
        if (nameEntry === undefined) this.error(item, `${path}.name`, 'missing; every volume group needs a name, such as vg0');
        else name = this.string(nameEntry, (text) => lvmNameProblem(text, 'volume group'));
        if (name !== undefined) {
          const first = groupNames.get(name);
          if (first !== undefined) this.entryError(nameEntry!, `${JSON.stringify(name)} is already the name of ${first}`);
          groupNames.set(name, path);
        }
        const disksEntry = group.get('disks');
        let disks: DiskRef[] | undefined;
        if (disksEntry === undefined) this.error(item, `${path}.disks`, 'missing; name the disks it lives on, such as [serial:S3Z1NB0K123456]');
        else disks = this.diskRefs(disksEntry, path, diskOwners);
        const initializeEntry = group.get('initialize');
        const initialize = initializeEntry === undefined ? false : this.boolean(initializeEntry);
        if (name !== undefined && disks !== undefined && initialize !== undefined) volumeGroups.push({ name, disks, initialize });
      });
    }
    const iscsi = this.optional(fields.get('iscsi'), (entry) => this.iscsiSessions(entry)) ?? [];
    const initiator = this.optional(fields.get('initiator'), (entry) => this.string(entry, iscsiNameProblem));
    const domainConfigs: DomainConfigSource[] = [];
    const sourcesEntry = fields.get('domainConfigs');
    if (sourcesEntry !== undefined) {
      if (!isSeq(sourcesEntry.value)) {
        this.entryError(sourcesEntry, `want a list of filesystems, such as [vg0/configs, label:guests], got ${describe(sourcesEntry.value)}`);
      } else {
        (sourcesEntry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
          const itemEntry: Entry = { path: `${sourcesEntry.path}[${index}]`, key: null, value: item };
          const source = this.configSource(itemEntry, groupNames);
          if (source !== undefined) domainConfigs.push(source);
        });
      }
    }
    if (this.errors.length > before) return undefined;
    const storage: StorageConfig = { volumeGroups, iscsi, domainConfigs };
    if (initiator !== undefined) storage.initiator = initiator;
    return storage;
  }

  /** storage.iscsi: sessions by name, each a portal, a target and optional CHAP credentials. */
  private iscsiSessions(entry: Entry): IscsiSession[] | undefined {
    if (!isSeq(entry.value)) {
      this.entryError(entry, `want a list of iSCSI sessions (- name: san1, portal: 198.18.0.9, target: iqn...), got ${describe(entry.value)}`);
      return undefined;
    }
    const before = this.errors.length;
    const sessions: IscsiSession[] = [];
    const names = new Map<string, string>();
    (entry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
      const path = `${entry.path}[${index}]`;
      const fields = this.mapping({ path, key: null, value: item }, iscsiFields);
      if (fields === undefined) return;
      const required = (field: string, example: string): Entry | undefined => {
        const found = fields.get(field);
        if (found === undefined) this.error(item, `${path}.${field}`, `missing; such as ${example}`);
        return found;
      };
      const nameEntry = required('name', 'san1');
      const name =
        nameEntry === undefined ? undefined : this.string(nameEntry, (text) => lvmNameProblem(text, 'volume group')?.replace('volume group', 'session'));
      if (name !== undefined) {
        const first = names.get(name);
        if (first !== undefined) this.entryError(nameEntry!, `${JSON.stringify(name)} is already the name of ${first}`);
        names.set(name, path);
      }
      const portalEntry = required('portal', '198.18.0.9 or 198.18.0.9:3260');
      const portal =
        portalEntry === undefined
          ? undefined
          : this.string(portalEntry, (text) => {
              const match = /^([0-9.]+)(?::([0-9]+))?$/.exec(text);
              const port = match?.[2] === undefined ? 3260 : Number(match[2]);
              if (!match || parseIpv4(match[1]!) === undefined)
                return `${JSON.stringify(text)} is not a portal; want an IPv4 address, and a port if not 3260 (198.18.0.9:3260)`;
              if (port < 1 || port > 65535) return `${JSON.stringify(text)}: port ${port} is not a TCP port`;
              return undefined;
            });
      const targetEntry = required('target', 'iqn.2026-12.lab.example:store1');
      const target = targetEntry === undefined ? undefined : this.string(targetEntry, iscsiNameProblem);
      const userEntry = fields.get('chapUser');
      const secretEntry = fields.get('chapSecret');
      const user = userEntry === undefined ? undefined : this.string(userEntry, chapUserProblem);
      const secret = secretEntry === undefined ? undefined : this.string(secretEntry, chapSecretProblem);
      if ((userEntry === undefined) !== (secretEntry === undefined)) {
        const [present, missing] = userEntry === undefined ? [secretEntry!, 'chapUser'] : [userEntry, 'chapSecret'];
        this.error(present.key, `${path}.${missing}`, 'missing; CHAP takes a user and a secret together');
      }
      if (name === undefined || portal === undefined || target === undefined) return;
      const [address, port] = portal.split(':');
      const session: IscsiSession = { name, address: address!, port: port === undefined ? 3260 : Number(port), target };
      if (user !== undefined && secret !== undefined) session.chap = { user, secret };
      sessions.push(session);
    });
    return this.errors.length > before ? undefined : sessions;
  }

  /** A volume group's disks: a non-empty list, each named by serial or id and in no other group. */
  private diskRefs(entry: Entry, groupPath: string, owners: Map<string, string>): DiskRef[] | undefined {
    if (!isSeq(entry.value) || (entry.value as YAMLSeq).items.length === 0) {
      const got = isSeq(entry.value) ? 'an empty list' : describe(entry.value);
      this.entryError(entry, `want a list of one or more disks, such as [serial:S3Z1NB0K123456], got ${got}`);
      return undefined;
    }
    const refs: DiskRef[] = [];
    let failed = false;
    (entry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
      const itemEntry: Entry = { path: `${entry.path}[${index}]`, key: null, value: item };
      const ref = this.diskRef(itemEntry);
      if (ref === undefined) {
        failed = true;
        return;
      }
      const key = formatDiskRef(ref);
      const owner = owners.get(key);
      if (owner !== undefined) {
        this.entryError(itemEntry, `${key} is already a disk of ${owner}; a disk belongs to one volume group`);
        failed = true;
        return;
      }
      owners.set(key, groupPath);
      refs.push(ref);
    });
    return failed ? undefined : refs;
  }

  /**
   * A domain's `disks:`: each a volume of one of the profile's volume groups
   * (`volume: vg0/web1` with `size:`), or a whole disk of the host
   * (`disk: serial:...`), with its guest device (xvda, xvdb... in order
   * unless written) and readOnly.
   */
  private domainDisks(entry: Entry, storage: StorageConfig | undefined, backings: Map<string, string>, storageBroken: boolean): DomainDisk[] | undefined {
    if (!isSeq(entry.value)) {
      this.entryError(entry, `want a list of disks (- volume: vg0/web1, size: 20G), got ${describe(entry.value)}`);
      return undefined;
    }
    const before = this.errors.length;
    const disks: DomainDisk[] = [];
    const devices = new Map<string, string>();
    const groups = new Set((storage?.volumeGroups ?? []).map((group) => group.name));
    const groupDisks = new Map<string, string>();
    for (const group of storage?.volumeGroups ?? []) for (const ref of group.disks) groupDisks.set(formatDiskRef(ref), group.name);
    (entry.value as YAMLSeq<Node | null>).items.forEach((item, index) => {
      const path = `${entry.path}[${index}]`;
      const fields = this.mapping({ path, key: null, value: item }, domainDiskFields);
      if (fields === undefined) return;
      const volumeEntry = fields.get('volume');
      const diskEntry = fields.get('disk');
      const iscsiEntry = fields.get('iscsi');
      const fileEntry = fields.get('file');
      const filesystemEntry = fields.get('filesystem');
      const sizeEntry = fields.get('size');
      const lunEntry = fields.get('lun');
      const deviceEntry = fields.get('device');
      const device = deviceEntry === undefined ? guestDeviceName(index) : this.string(deviceEntry, guestDeviceProblem);
      if (device !== undefined) {
        const first = devices.get(device);
        if (first !== undefined) this.error(deviceEntry?.value ?? item, `${path}.device`, `${device} is already the device of ${first}`);
        devices.set(device, path);
      }
      const readOnlyEntry = fields.get('readOnly');
      const readOnly = readOnlyEntry === undefined ? false : this.boolean(readOnlyEntry);
      const kinds = [volumeEntry, diskEntry, iscsiEntry, fileEntry].filter((e) => e !== undefined);
      if (kinds.length !== 1) {
        this.error(
          item,
          path,
          kinds.length === 0
            ? 'want volume: VG/NAME (a logical volume, with size:), disk: serial:... (a whole disk of the host), iscsi: SESSION (a LUN, with lun:) or file: PATH (with filesystem: and size:)'
            : 'volume:, disk:, iscsi: and file: are each a guest disk of its own; give one',
        );
        return;
      }
      if (filesystemEntry !== undefined && fileEntry === undefined)
        this.error(filesystemEntry.key, filesystemEntry.path, 'only for file: (the filesystem the file is on)');
      const sizeOf = (missing = 'missing; the size it is created with when it is not there yet, such as 20G'): number | undefined => {
        if (sizeEntry === undefined) {
          this.error(item, `${path}.size`, missing);
          return undefined;
        }
        const written = isScalar(sizeEntry.value) ? String(sizeEntry.value.value) : undefined;
        const parsed = written === undefined ? undefined : parseSize(written);
        if (parsed === undefined) this.entryError(sizeEntry, `want a size such as 512M or 20G, got ${describe(sizeEntry.value)}`);
        else if (typeof parsed !== 'number') this.entryError(sizeEntry, parsed.problem);
        else {
          this.remember(sizeEntry);
          return parsed;
        }
        return undefined;
      };
      if (fileEntry !== undefined) {
        const filePath = this.string(fileEntry, diskFilePathProblem);
        let filesystem: DomainConfigSource | undefined;
        if (filesystemEntry === undefined) this.error(item, `${path}.filesystem`, 'missing; the filesystem the file is on, such as label:guests or vg0/images');
        else filesystem = this.configSource(filesystemEntry, storageBroken ? undefined : groups);
        const size = sizeOf();
        if (filePath === undefined || filesystem === undefined || size === undefined || device === undefined || readOnly === undefined) return;
        const key = `file ${runtimeConfigSource(filesystem)}/${filePath}`;
        const owner = backings.get(key);
        if (owner !== undefined) {
          this.entryError(fileEntry, `${filePath} on ${runtimeConfigSource(filesystem)} is already a disk of ${owner}; two guests never write one file`);
          return;
        }
        backings.set(key, path);
        disks.push({ kind: 'file', filesystem, path: filePath, size, device, readOnly });
        return;
      }
      if (lunEntry !== undefined && iscsiEntry === undefined) this.error(lunEntry.key, lunEntry.path, 'only for iscsi: (the LUN of the session)');
      if (iscsiEntry !== undefined) {
        if (sizeEntry !== undefined) this.error(sizeEntry.key, sizeEntry.path, 'only for volume: (a LUN has the size its target gives it)');
        const sessions = new Set((storage?.iscsi ?? []).map((session) => session.name));
        const session = this.string(iscsiEntry, (text) =>
          sessions.has(text) || storageBroken
            ? undefined
            : `${JSON.stringify(text)} is not an iSCSI session of this profile (storage.iscsi${sessions.size > 0 ? `: ${[...sessions].join(', ')}` : ' names none'})`,
        );
        let lun: number | undefined;
        if (lunEntry === undefined) this.error(item, `${path}.lun`, 'missing; the LUN of the session, such as 1');
        else lun = this.integer(lunEntry, 0, 16383, 'LUN', '1');
        if (session === undefined || lun === undefined || device === undefined || readOnly === undefined) return;
        const owner = backings.get(`iscsi ${session}/${lun}`);
        if (owner !== undefined) {
          this.entryError(lunEntry!, `LUN ${lun} of ${session} is already a disk of ${owner}; two guests never write one LUN`);
          return;
        }
        backings.set(`iscsi ${session}/${lun}`, path);
        disks.push({ kind: 'iscsi', session, lun, device, readOnly });
        return;
      }
      if (volumeEntry !== undefined) {
        const text = this.string(volumeEntry, (written) => {
          const slash = written.indexOf('/');
          if (slash < 0) return `${JSON.stringify(written)}: want VG/NAME, such as vg0/web1`;
          const groupProblem = lvmNameProblem(written.slice(0, slash), 'volume group');
          if (groupProblem !== undefined) return `volume group ${groupProblem}`;
          const volumeProblem = lvmNameProblem(written.slice(slash + 1), 'volume');
          if (volumeProblem !== undefined) return `volume ${volumeProblem}`;
          if (!groups.has(written.slice(0, slash)) && !storageBroken) {
            const known = [...groups];
            return `${JSON.stringify(written.slice(0, slash))} is not a volume group of this profile (storage.volumeGroups${known.length > 0 ? `: ${known.join(', ')}` : ' names none'})`;
          }
          return undefined;
        });
        const size = sizeOf('missing; a volume needs the size it is created with when it is not there yet, such as 20G');
        if (text !== undefined) {
          const owner = backings.get(`volume ${text}`);
          if (owner !== undefined) this.entryError(volumeEntry, `${text} is already a disk of ${owner}; two guests never write one volume`);
          backings.set(`volume ${text}`, path);
        }
        if (text === undefined || size === undefined || device === undefined || readOnly === undefined) return;
        const slash = text.indexOf('/');
        disks.push({ kind: 'volume', volumeGroup: text.slice(0, slash), volume: text.slice(slash + 1), size, device, readOnly });
        return;
      }
      if (sizeEntry !== undefined) this.error(sizeEntry.key, sizeEntry.path, 'only for volume: (a whole disk has the size it has)');
      const ref = this.diskRef(diskEntry!);
      if (ref === undefined) return;
      const key = formatDiskRef(ref);
      const group = groupDisks.get(key);
      if (group !== undefined) {
        this.entryError(diskEntry!, `${key} is a disk of volume group ${group}; give the guest a volume of it instead`);
        return;
      }
      const owner = backings.get(`disk ${key}`);
      if (owner !== undefined) {
        this.entryError(diskEntry!, `${key} is already a disk of ${owner}; two guests never write one disk`);
        return;
      }
      backings.set(`disk ${key}`, path);
      if (device === undefined || readOnly === undefined) return;
      disks.push({ kind: 'disk', disk: ref, device, readOnly });
    });
    return this.errors.length > before ? undefined : disks;
  }
}

/** Why a dotted quad was refused, when the reason is not obvious. */
function ipv4Hint(text: string): string {
  return /(^|[./])0\d/.test(text) ? '; leading zeros are not allowed (some tools read them as octal)' : '';
}
