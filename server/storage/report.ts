/**
 * What a host's runtime found on its storage (builder/runtime/storage-scan),
 * as it reports it: POST /hosts/<mac>/storage, one record per line,
 *
 *   disk name=vda size=1073741824 model=QEMU%20HARDDISK serial=rb-data-1 transport=virtio removable=0 readonly=0 table=gpt ids=virtio-rb-data-1
 *   part name=vda1 disk=vda size=536870912 filesystem=ext4 label=data ids=virtio-rb-data-1-part1
 *   vg name=vg0 size=1069547520 free=0 pvs=vdb
 *   lv name=web1 vg=vg0 size=268435456
 *
 * Values are percent-encoded (the runtime's urlencode), so a model or a
 * label with spaces is one value; lists are comma-separated. Unknown keys
 * are kept out of the report but are no error (a newer runtime may say
 * more); unknown record kinds, missing names, bad numbers and anything past
 * the limits are errors naming the line, so a stranger's or a broken
 * runtime's report is refused whole rather than half believed.
 */

/** How a disk is attached, as the kernel's sysfs shows it. */
export const diskTransports = ['sata', 'scsi', 'nvme', 'virtio', 'usb', 'xen', 'mmc', 'iscsi', 'other'] as const;
export type DiskTransport = (typeof diskTransports)[number];

export interface ReportedPartition {
  name: string;
  sizeBytes: number;
  /** blkid's TYPE (ext4, xfs, vfat, LVM2_member, swap ...), when it found one. */
  filesystem?: string;
  label?: string;
  /** Names under /dev/disk/by-id that point at it. */
  ids: string[];
}

export interface ReportedDisk {
  name: string;
  sizeBytes: number;
  model?: string;
  serial?: string;
  transport: DiskTransport;
  removable: boolean;
  readOnly: boolean;
  /** The partition table, when there is one. */
  table?: 'gpt' | 'dos';
  /** A filesystem (or LVM physical volume) on the whole disk, when there is one. */
  filesystem?: string;
  label?: string;
  ids: string[];
  partitions: ReportedPartition[];
}

export interface ReportedVolumeGroup {
  name: string;
  sizeBytes: number;
  freeBytes: number;
  /** Its physical volumes, by device name (vdb, sda2). */
  physicalVolumes: string[];
  logicalVolumes: Array<{ name: string; sizeBytes: number }>;
}

export interface StorageReport {
  disks: ReportedDisk[];
  volumeGroups: ReportedVolumeGroup[];
}

/** The largest report taken, in bytes: a rack host has a few dozen disks, each a line or two. */
export const maximumStorageReportBytes = 64 * 1024;
/** The most records (lines) taken. */
export const maximumStorageRecords = 1024;
/** The longest value taken, decoded (a model, a serial, a by-id name). */
const maximumValueLength = 256;

export type StorageReportResult = { ok: true; report: StorageReport } | { ok: false; line: number; message: string };

/** A kernel block device or LVM name: what sysfs and LVM allow, no path separator. */
const deviceName = /^[A-Za-z0-9][A-Za-z0-9._+:-]{0,127}$/;
const filesystemName = /^[A-Za-z0-9_.-]{1,32}$/;

class ReportProblem extends Error {}

/** One line's fields, decoded; throws ReportProblem. */
function fieldsOf(words: string[]): Map<string, string> {
  const fields = new Map<string, string>();
  for (const word of words) {
    const equals = word.indexOf('=');
    if (equals <= 0) throw new ReportProblem(`"${word.slice(0, 40)}" is not key=value`);
    const key = word.slice(0, equals);
    if (!/^[a-z][a-z0-9-]{0,31}$/.test(key)) throw new ReportProblem(`"${key.slice(0, 40)}" is not a field name`);
    if (fields.has(key)) throw new ReportProblem(`${key} is given twice`);
    let value: string;
    try {
      value = decodeURIComponent(word.slice(equals + 1));
    } catch {
      throw new ReportProblem(`${key}: not percent-encoded text`);
    }
    if (value.length > maximumValueLength) throw new ReportProblem(`${key}: ${value.length} characters; at most ${maximumValueLength}`);
    if (/[\u0000-\u001f\u007f]/.test(value)) throw new ReportProblem(`${key}: contains a control character`);
    fields.set(key, value);
  }
  return fields;
}

function name(fields: Map<string, string>, key = 'name'): string {
  const value = fields.get(key);
  if (value === undefined || value === '') throw new ReportProblem(`${key}: missing`);
  if (!deviceName.test(value)) throw new ReportProblem(`${key}: "${value.slice(0, 40)}" is not a device name`);
  return value;
}

function bytes(fields: Map<string, string>, key: string): number {
  const value = fields.get(key);
  if (value === undefined) throw new ReportProblem(`${key}: missing`);
  // Up to 2^53 bytes (8 PiB) is exact in a double, and past any disk here.
  if (!/^\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) throw new ReportProblem(`${key}: "${value.slice(0, 40)}" is not a size in bytes`);
  return Number(value);
}

function flag(fields: Map<string, string>, key: string): boolean {
  const value = fields.get(key) ?? '0';
  if (value !== '0' && value !== '1') throw new ReportProblem(`${key}: want 0 or 1, not "${value.slice(0, 40)}"`);
  return value === '1';
}

function optional(fields: Map<string, string>, key: string): string | undefined {
  const value = fields.get(key);
  return value === undefined || value === '' ? undefined : value;
}

function filesystem(fields: Map<string, string>): string | undefined {
  const value = optional(fields, 'filesystem');
  if (value !== undefined && !filesystemName.test(value)) throw new ReportProblem(`filesystem: "${value.slice(0, 40)}" is not a filesystem type`);
  return value;
}

function names(fields: Map<string, string>, key: string): string[] {
  const value = optional(fields, key);
  if (value === undefined) return [];
  const list = value.split(',').filter((item) => item !== '');
  for (const item of list) if (!deviceName.test(item)) throw new ReportProblem(`${key}: "${item.slice(0, 40)}" is not a device name`);
  return list;
}

/** Decode a runtime's storage report. Pure; the first problem is returned with its line number. */
export function parseStorageReport(text: string): StorageReportResult {
  if (Buffer.byteLength(text) > maximumStorageReportBytes) {
    return { ok: false, line: 0, message: `the report is ${Buffer.byteLength(text)} bytes; at most ${maximumStorageReportBytes}` };
  }
  const lines = text.split('\n');
  if (lines.length > maximumStorageRecords + 1) return { ok: false, line: 0, message: `${lines.length} lines; at most ${maximumStorageRecords}` };
  const disks = new Map<string, ReportedDisk>();
  const groups = new Map<string, ReportedVolumeGroup>();
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    try {
      const [kind = '', ...words] = line.split(/[ \t]+/);
      const fields = fieldsOf(words);
      switch (kind) {
        case 'disk': {
          const diskName = name(fields);
          if (disks.has(diskName)) throw new ReportProblem(`disk ${diskName} is reported twice`);
          const transport = fields.get('transport') ?? 'other';
          if (!(diskTransports as readonly string[]).includes(transport)) {
            throw new ReportProblem(`transport: "${transport.slice(0, 40)}" is not one of ${diskTransports.join(', ')}`);
          }
          const table = optional(fields, 'table');
          if (table !== undefined && table !== 'gpt' && table !== 'dos') throw new ReportProblem(`table: want gpt or dos, not "${table.slice(0, 40)}"`);
          const disk: ReportedDisk = {
            name: diskName,
            sizeBytes: bytes(fields, 'size'),
            transport: transport as DiskTransport,
            removable: flag(fields, 'removable'),
            readOnly: flag(fields, 'readonly'),
            ids: names(fields, 'ids'),
            partitions: [],
          };
          const model = optional(fields, 'model');
          const serial = optional(fields, 'serial');
          const found = filesystem(fields);
          const label = optional(fields, 'label');
          if (model !== undefined) disk.model = model;
          if (serial !== undefined) disk.serial = serial;
          if (table !== undefined) disk.table = table;
          if (found !== undefined) disk.filesystem = found;
          if (label !== undefined) disk.label = label;
          disks.set(diskName, disk);
          break;
        }
        case 'part': {
          const partName = name(fields);
          const diskName = name(fields, 'disk');
          const disk = disks.get(diskName);
          if (disk === undefined) throw new ReportProblem(`disk: ${diskName} is not reported before it`);
          if (disk.partitions.some((partition) => partition.name === partName)) throw new ReportProblem(`partition ${partName} is reported twice`);
          const partition: ReportedPartition = { name: partName, sizeBytes: bytes(fields, 'size'), ids: names(fields, 'ids') };
          const found = filesystem(fields);
          const label = optional(fields, 'label');
          if (found !== undefined) partition.filesystem = found;
          if (label !== undefined) partition.label = label;
          disk.partitions.push(partition);
          break;
        }
        case 'vg': {
          const groupName = name(fields);
          if (groups.has(groupName)) throw new ReportProblem(`volume group ${groupName} is reported twice`);
          groups.set(groupName, {
            name: groupName,
            sizeBytes: bytes(fields, 'size'),
            freeBytes: bytes(fields, 'free'),
            physicalVolumes: names(fields, 'pvs'),
            logicalVolumes: [],
          });
          break;
        }
        case 'lv': {
          const volumeName = name(fields);
          const groupName = name(fields, 'vg');
          const group = groups.get(groupName);
          if (group === undefined) throw new ReportProblem(`vg: ${groupName} is not reported before it`);
          if (group.logicalVolumes.some((volume) => volume.name === volumeName)) throw new ReportProblem(`logical volume ${volumeName} is reported twice`);
          group.logicalVolumes.push({ name: volumeName, sizeBytes: bytes(fields, 'size') });
          break;
        }
        default:
          throw new ReportProblem(`"${kind.slice(0, 40)}" is not a record; want disk, part, vg or lv`);
      }
    } catch (error) {
      if (error instanceof ReportProblem) return { ok: false, line: index + 1, message: error.message };
      throw error;
    }
  }
  return { ok: true, report: { disks: [...disks.values()], volumeGroups: [...groups.values()] } };
}

/** One line for a timeline or a table: "3 disks (2.0 GiB, 1.0 GiB, 512 MiB), 1 volume group (vg0)". */
export function summarizeStorage(report: StorageReport): string {
  const sizes = report.disks.map((disk) => formatBytes(disk.sizeBytes));
  const disks = report.disks.length === 1 ? `1 disk (${sizes[0]})` : `${report.disks.length} disks${sizes.length > 0 ? ` (${sizes.join(', ')})` : ''}`;
  if (report.volumeGroups.length === 0) return disks;
  const groups = report.volumeGroups.map((group) => group.name).join(', ');
  return `${disks}, ${report.volumeGroups.length} volume group${report.volumeGroups.length === 1 ? '' : 's'} (${groups})`;
}

/** Bytes in binary units, one decimal below 10 (1.5 GiB, 512 MiB, 12 TiB). */
export function formatBytes(count: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 || value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** One guest's network interface, as dom0 counts it, from the guest's side (what it sent and received). */
export interface ReportedGuestInterface {
  domain: string;
  mac: string;
  bridge: string;
  sentBytes: number;
  sentPackets: number;
  receivedBytes: number;
  receivedPackets: number;
}

export type GuestNetworkReportResult = { ok: true; report: ReportedGuestInterface[] } | { ok: false; line: number; message: string };

const macPattern = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * Decode a runtime's guest network report (POST /hosts/<mac>/network),
 * one record per guest interface:
 *   vif domain=web1 mac=02:.. bridge=xenbr0 sent-bytes=N sent-packets=N received-bytes=N received-packets=N
 * with the same encoding and limits as the storage report. Pure.
 */
export function parseGuestNetworkReport(text: string): GuestNetworkReportResult {
  if (Buffer.byteLength(text) > maximumStorageReportBytes) {
    return { ok: false, line: 0, message: `the report is ${Buffer.byteLength(text)} bytes; at most ${maximumStorageReportBytes}` };
  }
  const lines = text.split('\n');
  if (lines.length > maximumStorageRecords + 1) return { ok: false, line: 0, message: `${lines.length} lines; at most ${maximumStorageRecords}` };
  const interfaces: ReportedGuestInterface[] = [];
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    try {
      const [kind = '', ...words] = line.split(/[ \t]+/);
      if (kind !== 'vif') throw new ReportProblem(`"${kind.slice(0, 40)}" is not a record; want vif`);
      const fields = fieldsOf(words);
      const mac = fields.get('mac') ?? '';
      if (!macPattern.test(mac)) throw new ReportProblem(`mac: "${mac.slice(0, 40)}" is not a MAC`);
      interfaces.push({
        domain: name(fields, 'domain'),
        mac,
        bridge: name(fields, 'bridge'),
        sentBytes: bytes(fields, 'sent-bytes'),
        sentPackets: bytes(fields, 'sent-packets'),
        receivedBytes: bytes(fields, 'received-bytes'),
        receivedPackets: bytes(fields, 'received-packets'),
      });
    } catch (error) {
      if (error instanceof ReportProblem) return { ok: false, line: index + 1, message: error.message };
      throw error;
    }
  }
  return { ok: true, report: interfaces };
}

/** One line for a log or a table: "2 guest interfaces, 1.2 MiB sent, 3.4 MiB received". */
export function summarizeGuestNetwork(report: ReportedGuestInterface[]): string {
  const sent = report.reduce((sum, vif) => sum + vif.sentBytes, 0);
  const received = report.reduce((sum, vif) => sum + vif.receivedBytes, 0);
  return `${report.length} guest interface${report.length === 1 ? '' : 's'}, ${formatBytes(sent)} sent, ${formatBytes(received)} received`;
}
