/**
 * A profile's storage (`storage:`) and its domains' disks (`disks:`): the
 * types, and the checks of each written value, each returning the message
 * the user sees, or undefined. Pure.
 *
 * A disk of the host is named so that it is the same disk at every boot:
 * by its serial number (`serial:S3Z1NB0K123456`) or by the name udev gives
 * it under /dev/disk/by-id (`/dev/disk/by-id/ata-Samsung_SSD_860_S3Z1NB0K123456`),
 * never by sdX or vdX, whose order changes with the order disks are probed.
 */

/** A disk of the host as a profile names it. */
export type DiskRef = { kind: 'serial'; value: string } | { kind: 'id'; value: string };

export interface VolumeGroupConfig {
  /** The LVM volume group's name. */
  name: string;
  /** The disks it lives on (its physical volumes), in order. */
  disks: DiskRef[];
  /** Create it when it is not there, on disks that hold nothing (no partition table, no filesystem, no data). */
  initialize: boolean;
}

/** A filesystem that holds xl configurations of domains to start at boot (see domainConfigsLabel). */
export type DomainConfigSource = { kind: 'volume'; volumeGroup: string; volume: string } | { kind: 'label'; label: string } | { kind: 'disk'; disk: DiskRef };

export interface StorageConfig {
  volumeGroups: VolumeGroupConfig[];
  iscsi: IscsiSession[];
  /** The host's iSCSI initiator name; iscsiInitiatorName(mac) when not written. */
  initiator?: string;
  /** Filesystems to look for domain configurations on, besides any labelled domainConfigsLabel. */
  domainConfigs: DomainConfigSource[];
}

/** The label that makes a filesystem one of domain configurations, on any host, with no profile naming it. */
export const domainConfigsLabel = 'rackboot-domains';

const labelPattern = /^[A-Za-z0-9._-]{1,32}$/;

/** A source of domain configurations as written: VG/NAME, label:LABEL, serial:SERIAL or /dev/disk/by-id/ID. */
export function parseDomainConfigSource(text: string): DomainConfigSource | { problem: string } {
  const label = /^label:(.*)$/.exec(text);
  if (label) {
    if (!labelPattern.test(label[1]!)) return { problem: `${JSON.stringify(text)}: a label has 1 to 32 letters, digits and "._-"` };
    return { kind: 'label', label: label[1]! };
  }
  if (!text.startsWith('/') && !text.startsWith('serial:') && text.includes('/')) {
    const slash = text.indexOf('/');
    const problem = lvmNameProblem(text.slice(0, slash), 'volume group') ?? lvmNameProblem(text.slice(slash + 1), 'volume');
    if (problem !== undefined) return { problem };
    return { kind: 'volume', volumeGroup: text.slice(0, slash), volume: text.slice(slash + 1) };
  }
  const disk = parseDiskRef(text);
  if ('problem' in disk) return { problem: `${disk.problem}; or a volume (vg0/configs) or a filesystem label (label:guests)` };
  return { kind: 'disk', disk };
}

/** The source as dom0's runtime reads it: volume:VG/NAME, label:LABEL, serial:S or id:ID. */
export function runtimeConfigSource(source: DomainConfigSource): string {
  if (source.kind === 'volume') return `volume:${source.volumeGroup}/${source.volume}`;
  if (source.kind === 'label') return `label:${source.label}`;
  return `${source.disk.kind}:${source.disk.value}`;
}

/** An iSCSI session dom0 logs in to at boot; its LUNs are disks of the host like any other. */
export interface IscsiSession {
  /** The name guests' disks use for it (iscsi: NAME). */
  name: string;
  /** The target portal: an IPv4 address and a TCP port (3260 unless written). */
  address: string;
  port: number;
  /** The target's IQN (or eui./naa. name). */
  target: string;
  /** CHAP: the user and the secret, both or neither. The secret travels only to the host, in its runtime.env. */
  chap?: { user: string; secret: string };
}

/** One disk of a guest: what backs it, and how the guest sees it. */
export type DomainDisk = (
  | { kind: 'volume'; volumeGroup: string; volume: string; /** Bytes; the size it is created with when missing. */ size: number }
  | { kind: 'disk'; disk: DiskRef }
  | { kind: 'iscsi'; session: string; lun: number }
  | {
      kind: 'file';
      /** The filesystem the file is on, mounted by dom0 at fileMountPoint(filesystem). */
      filesystem: DomainConfigSource;
      /** Relative to the filesystem's root. */
      path: string;
      /** Bytes; the size it is created with (sparse) when missing. */
      size: number;
    }
) & {
  /** The guest's device name (xvda, xvdb...). */
  device: string;
  readOnly: boolean;
};

/** Where the runtime links each disk it finds, by id and by serial (it has no udev to do it). */
export const diskByIdDir = '/dev/disk/by-id';
export const diskBySerialDir = '/dev/disk/by-serial';

/** The path of a disk on dom0, as the runtime links it. */
export function diskRefPath(ref: DiskRef): string {
  return ref.kind === 'id' ? `${diskByIdDir}/${ref.value}` : `${diskBySerialDir}/${ref.value}`;
}

/** A disk reference as written in a profile. */
export function formatDiskRef(ref: DiskRef): string {
  return ref.kind === 'id' ? `${diskByIdDir}/${ref.value}` : `serial:${ref.value}`;
}

/** The characters udev keeps in by-id names and serials (and that travel in a shell word unquoted). */
const idPattern = /^[A-Za-z0-9._+:-]{1,128}$/;

/** A disk reference from its written text, or why it is not one. */
export function parseDiskRef(text: string): DiskRef | { problem: string } {
  const quoted = JSON.stringify(text);
  const serial = /^serial:(.*)$/.exec(text);
  if (serial) {
    const value = serial[1]!;
    if (!idPattern.test(value)) return { problem: `${quoted}: a serial has 1 to 128 letters, digits and "._+:-" (as \`rackboot hosts MAC\` lists it)` };
    return { kind: 'serial', value };
  }
  if (text.startsWith(`${diskByIdDir}/`)) {
    const value = text.slice(diskByIdDir.length + 1);
    if (!idPattern.test(value) || value === '.' || value === '..') {
      return { problem: `${quoted}: a by-id name has 1 to 128 letters, digits and "._+:-" (as \`rackboot hosts MAC\` lists it)` };
    }
    return { kind: 'id', value };
  }
  if (/^\/dev\/((s|v|xv|h)d[a-z]+|nvme\d+n\d+|mmcblk\d+)/.test(text)) {
    return {
      problem: `${quoted} names a disk by the order it was found in, which changes from boot to boot; name it by serial (serial:SERIAL) or by id (${diskByIdDir}/ID), as \`rackboot hosts MAC\` lists them`,
    };
  }
  return { problem: `${quoted} is not a disk; want serial:SERIAL or ${diskByIdDir}/ID, as \`rackboot hosts MAC\` lists them` };
}

const lvmNamePattern = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,62}$/;

/**
 * LVM's names (lvm(8), "VALID NAMES"): letters, digits and "+_.-", not
 * starting with "-", not "." or "..". At most 63 characters here, so a
 * volume's /dev/mapper name (both joined) stays short.
 */
export function lvmNameProblem(name: string, what: 'volume group' | 'volume'): string | undefined {
  const quoted = JSON.stringify(name);
  if (name === '') return `is empty; want a ${what} name such as ${what === 'volume' ? 'web1' : 'vg0'}`;
  if (name === '.' || name === '..') return `${quoted} is not a ${what} name`;
  if (!lvmNamePattern.test(name)) {
    if (name.length > 63) return `${quoted} is ${name.length} characters long; at most 63`;
    if (name.startsWith('-')) return `${quoted} must not start with "-"`;
    return `${quoted} is not a ${what} name: LVM names use letters, digits and "+_.-"`;
  }
  if (what === 'volume' && /^(snapshot|pvmove)/.test(name)) return `${quoted}: LVM keeps names starting with snapshot or pvmove for itself`;
  if (what === 'volume' && /_(cdata|cmeta|corig|mlog|mimage|pmspare|rimage|rmeta|tdata|tmeta|vorigin|vdata)/.test(name)) {
    return `${quoted}: LVM keeps names holding _mlog, _rimage, _tdata and the like for its own volumes`;
  }
  return undefined;
}

const unitBytes: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
/** LVM's smallest extent is 4 MiB by default; a smaller volume is rounded up to it anyway. */
export const minimumVolumeBytes = 4 * 1024 ** 2;
/** 1 PiB: more than any rack disk; a bigger number is a unit mistake. */
export const maximumVolumeBytes = 1024 ** 5;

/** A size such as 512M, 20G or 1T (binary units, as lvcreate -L reads them), in bytes. */
export function parseSize(text: string): number | { problem: string } {
  const match = /^([0-9]+)([KMGT])i?B?$/i.exec(text.trim());
  if (!match) return { problem: `${JSON.stringify(text)} is not a size; want a number and a unit, such as 512M, 20G or 1T` };
  const bytes = Number(match[1]) * unitBytes[match[2]!.toUpperCase()]!;
  if (bytes < minimumVolumeBytes) return { problem: `${JSON.stringify(text)} is less than 4M, LVM's smallest extent` };
  if (bytes > maximumVolumeBytes) return { problem: `${JSON.stringify(text)} is more than 1P; is the unit right?` };
  return bytes;
}

/** A size in the largest binary unit that writes it whole (lvcreate -L syntax). */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) if (bytes % unitBytes[unit]! === 0) return `${bytes / unitBytes[unit]!}${unit}`;
  return `${bytes}B`;
}

/** A PV guest's disks: xvda, xvdb, ... xvdz, then xvdaa (Xen's vbd naming, docs/misc/vbd-interface.txt). */
export function guestDeviceName(index: number): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return index < 26 ? `xvd${letters[index]}` : `xvd${letters[Math.floor(index / 26) - 1]}${letters[index % 26]}`;
}

/** The guest's device names rackboot writes: xvd and one or two letters. */
export function guestDeviceProblem(name: string): string | undefined {
  if (/^xvd[a-z]{1,2}$/.test(name)) return undefined;
  return `${JSON.stringify(name)} is not a PV guest's disk name; want xvda, xvdb, ...`;
}

/** iSCSI names (RFC 3720 section 3.2.6, in their normalised lower-case form for iqn.): iqn., eui. or naa. */
const iscsiNamePattern = /^(iqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9][a-z0-9.-]*(:[a-z0-9.:_-]+)?|eui\.[0-9A-F]{16}|naa\.[0-9A-F]{16}([0-9A-F]{16})?)$/;

export function iscsiNameProblem(name: string): string | undefined {
  if (name.length > 223) return `${JSON.stringify(name.slice(0, 40))}... is ${name.length} bytes long; iSCSI names have at most 223`;
  if (iscsiNamePattern.test(name)) return undefined;
  if (/^iqn\./i.test(name) && name !== name.toLowerCase()) return `${JSON.stringify(name)}: write an iqn. name in lower case, as targets compare it`;
  return `${JSON.stringify(name)} is not an iSCSI name; want iqn.YYYY-MM.reversed.domain:name (or eui./naa.)`;
}

/** The initiator name of a host without one written: rackboot's, with the MAC. */
export function iscsiInitiatorName(mac: string): string {
  return `iqn.2005-03.org.rackboot:${mac.replaceAll(':', '')}`;
}

/** CHAP users: one word of letters, digits and "._@:-". */
export function chapUserProblem(user: string): string | undefined {
  return /^[A-Za-z0-9._@:-]{1,64}$/.test(user) ? undefined : `${JSON.stringify(user)} is not a CHAP user name: 1 to 64 letters, digits and "._@:-"`;
}

/**
 * CHAP secrets: 12 to 128 characters (RFC 3720 asks for at least 96 bits;
 * many targets refuse fewer than 12 characters) of letters, digits and
 * "._+/=:@%-", so they travel in runtime.env and iscsiadm's arguments as they
 * are. The message never repeats the secret.
 */
export function chapSecretProblem(secret: string): string | undefined {
  if (secret.length < 12) return `is ${secret.length} characters long; a CHAP secret has at least 12`;
  if (secret.length > 128) return `is ${secret.length} characters long; at most 128`;
  if (!/^[A-Za-z0-9._+/=:@%-]+$/.test(secret)) return 'has a character other than letters, digits and "._+/=:@%-"';
  return undefined;
}

/** The path the runtime links an iSCSI LUN at, as udev names it. */
export function iscsiLunPath(session: IscsiSession, lun: number): string {
  return `/dev/disk/by-path/ip-${session.address}:${session.port}-iscsi-${session.target}-lun-${lun}`;
}

/** What a profile shows outside its host (whatif, listings): the CHAP secrets replaced by a note. */
export function storageWithoutSecrets(storage: StorageConfig): StorageConfig {
  return {
    ...storage,
    iscsi: storage.iscsi.map((session) =>
      session.chap ? { ...session, chap: { user: session.chap.user, secret: '(hidden: sent only to the host)' } } : session,
    ),
  };
}

/** Where dom0 mounts a filesystem that holds guests' disk files: /run/rackboot/mnt/label-guests for label:guests. */
export function fileMountPoint(source: DomainConfigSource): string {
  return `/run/rackboot/mnt/${runtimeConfigSource(source).replaceAll(':', '-').replaceAll('/', '-')}`;
}

/** A disk file's path on its filesystem: relative, no "..", one word of safe characters. */
export function diskFilePathProblem(path: string): string | undefined {
  const quoted = JSON.stringify(path);
  if (path.startsWith('/')) return `${quoted}: give the path on the filesystem, without a leading "/" (it is mounted by dom0)`;
  if (!/^[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+)*$/.test(path) || path.length > 200)
    return `${quoted} is not a file path of letters, digits and "._+-" joined by "/"`;
  if (path.split('/').some((part) => part === '..' || part === '.')) return `${quoted} has "." or ".." in it`;
  return undefined;
}
