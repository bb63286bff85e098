import { join } from 'node:path';
import { AdminClient } from '../admin/client.js';
import { readEventFile, readHostReportFile } from '../events/sqlite-store.js';
import type { HostReport } from '../events/store.js';
import { formatBytes, type ReportedGuestInterface, type StorageReport } from '../storage/report.js';
import { silentLogger } from '../log.js';
import { readSightingsFile } from '../profiles/sqlite-sightings.js';
import { readSightingsDatabase } from '../profiles/postgres-sightings.js';
import { readTimelineDatabase } from '../events/postgres-store.js';
import { describeDatabaseUrl } from '../postgres/database.js';
import { ProfileDirectory } from '../profiles/store.js';
import { describeHost, guestNetworkOf, storageOf } from './hosts.js';
import type { HostStatus } from './snapshot.js';
import type { TimelineEvent } from './timeline.js';

/**
 * `rackboot hosts`: where each host stands. With --server, asked of the
 * running server's admin API (the token from the state folder); with
 * --database, read from the database servers share; else from the state
 * folder's timeline, which only works while no server holds it.
 */
export async function listHosts(options: HostsOptions): Promise<HostStatus[]> {
  if (options.server !== undefined) return (await askServer(options, options.server, 'hosts')) as HostStatus[];
  const timeline = await readTimeline(options);
  return describe([...timeline.macs()], timeline, options);
}

export interface HostsOptions {
  server?: string;
  tokenFile?: string;
  state: string;
  profiles: string;
  /** The PostgreSQL URL servers share (`serve --database`): read there instead of the state folder. */
  database?: string;
}

/** One host as `rackboot hosts MAC` shows it: its row, its newest storage report and its timeline. */
export type HostDetail = HostStatus & {
  storageReport: (StorageReport & { reportedAt: string }) | null;
  guestNetwork: { reportedAt: string; interfaces: ReportedGuestInterface[] } | null;
  timeline: Array<Omit<TimelineEvent, 'time'> & { time: string }>;
};

/** `rackboot hosts MAC`: one host in full, from the running server or the state folder. */
export async function showHost(mac: string, options: HostsOptions): Promise<HostDetail> {
  if (options.server !== undefined) return (await askServer(options, options.server, `hosts/${mac}`)) as HostDetail;
  const timeline = await readTimeline(options);
  const [host] = await describe([mac], timeline, options);
  if (host === undefined)
    throw new Error(
      `no host ${mac} has been seen (timeline ${options.database !== undefined ? describeDatabaseUrl(options.database) : join(options.state, 'events.sqlite')})`,
    );
  return {
    ...host,
    storageReport: storageOf(timeline, mac) ?? null,
    guestNetwork: guestNetworkOf(timeline, mac) ?? null,
    timeline: timeline.listByHost(mac).map((event) => ({ ...event, time: new Date(event.time).toISOString() })),
  };
}

/** GET `path` of the running server's admin API, with the admin token. */
async function askServer(options: HostsOptions, server: string, path: string): Promise<unknown> {
  const client = await AdminClient.open({ server, state: options.state, tokenFile: options.tokenFile });
  return client.call('GET', path);
}

/** The state folder's timeline file, read once: each host's events and newest reports. */
interface TimelineFile {
  macs(): Iterable<string>;
  listByHost(mac: string): TimelineEvent[];
  hostReport(mac: string, kind: HostReport['kind']): HostReport | undefined;
}

/** Read the timeline and host reports: the database's, or the state folder's while no server holds them. */
async function readTimeline(options: HostsOptions): Promise<TimelineFile> {
  const file = join(options.state, 'events.sqlite');
  let events: TimelineEvent[];
  let reports: HostReport[];
  try {
    if (options.database !== undefined) ({ events, reports } = await readTimelineDatabase(options.database));
    else {
      events = readEventFile(file);
      reports = readHostReportFile(file);
    }
  } catch (error) {
    if ((error as { code?: string }).code === 'LOCKED') {
      throw new Error(`${file} is held by a running rackboot serve; ask it instead: rackboot hosts --server http://ADDRESS:PORT`);
    }
    throw error;
  }
  const byMac = new Map<string, TimelineEvent[]>();
  for (const event of events) {
    const list = byMac.get(event.mac);
    if (list === undefined) byMac.set(event.mac, [event]);
    else list.push(event);
  }
  const reportByKey = new Map(reports.map((report) => [`${report.mac} ${report.kind}`, report]));
  return {
    macs: () => byMac.keys(),
    listByHost: (mac) => byMac.get(mac) ?? [],
    hostReport: (mac, kind) => reportByKey.get(`${mac} ${kind}`),
  };
}

/** The rows of the hosts named that the timeline has seen, newest first, with their profiles and slots. */
async function describe(macs: string[], timeline: TimelineFile, options: HostsOptions): Promise<HostStatus[]> {
  // Which machine sat in which slot, for slot profiles (absent before the first relayed request).
  const sightings = options.database !== undefined ? await readSightingsDatabase(options.database) : readSightingsFile(join(options.state, 'slots.sqlite'));
  const profiles = await ProfileDirectory.open(options.profiles, silentLogger()).catch(() => undefined);
  try {
    return macs
      .flatMap((mac) => describeHost(mac, timeline, { profiles: profiles ?? { lookup: () => undefined }, sightings }) ?? [])
      .sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : -1));
  } finally {
    profiles?.close();
  }
}

/** The hosts as an aligned text table. */
export function renderHostTable(hosts: HostStatus[], now = Date.now()): string {
  if (hosts.length === 0) return 'no host has asked to boot yet\n';
  const rows = [
    ['MAC', 'HOSTNAME', 'STAGE', 'ADDRESS', 'LAST SEEN', 'LAST BOOT', 'FAILURES'],
    ...hosts.map((host) => [
      host.mac,
      host.hostname ?? '-',
      host.alarms ? `${host.stage} ALARM` : host.stage,
      host.address ?? '-',
      `${Math.max(0, Math.round((now - Date.parse(host.lastSeen)) / 1000))} s ago`,
      host.lastBootSeconds === null ? '-' : `${host.lastBootSeconds.toFixed(1)} s`,
      host.failures === 0 ? '-' : `${host.failures}${host.lastFailure ? ` (${host.lastFailure})` : ''}`,
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const table = `${rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ')).join('\n')}\n`;
  const alarms = hosts
    .filter((host) => host.alarms > 0)
    .map((host) => `ALARM ${host.mac}: ${host.lastAlarm ?? 'alarm'}${host.alarms > 1 ? ` (${host.alarms} alarms)` : ''}\n`);
  return table + alarms.join('');
}

/** One host in full: its row as lines, its disks as a table, and its newest events. */
export function renderHostDetail(host: HostDetail, now = Date.now()): string {
  const lines = [
    `${host.mac}  ${host.hostname ?? '-'}`,
    `  stage      ${host.stage}${host.alarms ? ` (ALARM: ${host.lastAlarm ?? 'alarm'})` : ''}`,
    `  address    ${host.address ?? '-'}`,
    `  profile    ${host.profileFrom ?? host.profile ?? '-'}`,
    `  last seen  ${Math.max(0, Math.round((now - Date.parse(host.lastSeen)) / 1000))} s ago`,
    `  last boot  ${host.lastBootSeconds === null ? '-' : `${host.lastBootSeconds.toFixed(1)} s`}`,
    `  failures   ${host.failures === 0 ? '-' : `${host.failures}${host.lastFailure ? ` (${host.lastFailure})` : ''}`}`,
  ];
  const report = host.storageReport;
  if (report === null) {
    lines.push('', 'storage: not reported yet (the runtime reports its disks at each boot)');
  } else {
    lines.push('', `storage (reported ${report.reportedAt}): ${host.storage ?? ''}`);
    const rows = [['DEVICE', 'SIZE', 'TRANSPORT', 'MODEL', 'SERIAL', 'HOLDS', 'ID']];
    for (const disk of report.disks) {
      const holds = disk.table ?? (disk.filesystem === undefined ? 'nothing found' : `${disk.filesystem}${disk.label ? ` "${disk.label}"` : ''}`);
      rows.push([disk.name, formatBytes(disk.sizeBytes), disk.transport, disk.model ?? '-', disk.serial ?? '-', holds, disk.ids[0] ?? '-']);
      for (const partition of disk.partitions) {
        const what = partition.filesystem === undefined ? '-' : `${partition.filesystem}${partition.label ? ` "${partition.label}"` : ''}`;
        rows.push([`  ${partition.name}`, formatBytes(partition.sizeBytes), '', '', '', what, partition.ids[0] ?? '-']);
      }
    }
    lines.push(...alignedRows(rows).map((row) => `  ${row}`));
    for (const group of report.volumeGroups) {
      const volumes = group.logicalVolumes.map((volume) => `${volume.name} ${formatBytes(volume.sizeBytes)}`).join(', ');
      lines.push(
        `  volume group ${group.name}: ${formatBytes(group.sizeBytes)}, ${formatBytes(group.freeBytes)} free, on ${group.physicalVolumes.join(', ') || '-'}${volumes ? `; ${volumes}` : ''}`,
      );
    }
  }
  const network = host.guestNetwork;
  if (network !== null && network !== undefined && network.interfaces.length > 0) {
    lines.push('', `guest networks (reported ${network.reportedAt}):`);
    const rows = [['DOMAIN', 'MAC', 'BRIDGE', 'SENT', 'PACKETS', 'RECEIVED', 'PACKETS']];
    for (const vif of network.interfaces) {
      rows.push([
        vif.domain,
        vif.mac,
        vif.bridge,
        formatBytes(vif.sentBytes),
        String(vif.sentPackets),
        formatBytes(vif.receivedBytes),
        String(vif.receivedPackets),
      ]);
    }
    lines.push(...alignedRows(rows).map((row) => `  ${row}`));
  }
  const recent = host.timeline.slice(-15);
  lines.push('', `newest events (${recent.length} of ${host.timeline.length}):`);
  for (const event of recent) {
    lines.push(
      `  ${event.time}  ${event.source.padEnd(7)} ${event.stage}${event.domain ? ` [${event.domain}]` : ''}${event.detail ? `  ${event.detail}` : ''}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function alignedRows(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd(),
  );
}
