import { join } from 'node:path';
import { AdminClient } from '../admin/client.js';
import { readEventFile } from '../events/sqlite-store.js';
import { silentLogger } from '../log.js';
import { readSightingsFile } from '../profiles/sqlite-sightings.js';
import { ProfileDirectory } from '../profiles/store.js';
import { describeHost } from './hosts.js';
import type { HostStatus } from './snapshot.js';
import type { TimelineEvent } from './timeline.js';

/**
 * `rackboot hosts`: where each host stands. With --server, asked of the
 * running server's admin API (the token from the state folder); without,
 * read from the state folder's timeline, which only works while no server
 * holds it.
 */
export async function listHosts(options: { server?: string; tokenFile?: string; state: string; profiles: string }): Promise<HostStatus[]> {
  if (options.server !== undefined) {
    const { server, state } = options;
    const client = await AdminClient.open({ server, state, tokenFile: options.tokenFile });
    return (await client.call('GET', 'hosts')) as HostStatus[];
  }
  const file = join(options.state, 'events.sqlite');
  let events: TimelineEvent[];
  try {
    events = readEventFile(file);
  } catch (error) {
    if ((error as { code?: string }).code === 'LOCKED') {
      throw new Error(`${file} is held by a running rackboot serve; ask it instead: rackboot hosts --server http://ADDRESS:PORT`);
    }
    throw error;
  }
  const byMac = new Map<string, TimelineEvent[]>();
  for (const event of events) byMac.set(event.mac, [...(byMac.get(event.mac) ?? []), event]);
  // Which machine sat in which slot, for slot profiles (absent before the first relayed request).
  const sightings = readSightingsFile(join(options.state, 'slots.sqlite'));
  const profiles = await ProfileDirectory.open(options.profiles, silentLogger()).catch(() => undefined);
  try {
    const store = { listByHost: (mac: string) => byMac.get(mac) ?? [] };
    return [...byMac.keys()]
      .flatMap((mac) => describeHost(mac, store, { profiles: profiles ?? { lookup: () => undefined }, sightings }) ?? [])
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
