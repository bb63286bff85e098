import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { AssetStore } from '../assets/builds.js';
import type { LeaseStore } from '../dhcp/leases/leases.js';
import { formatSlot, formatSlotId, type RelaySlot } from '../profiles/slot.js';
import { profileOrigin, type Profile } from '../profiles/profile.js';
import type { HostStatus } from './snapshot.js';
import { summariseHost, type TimelineEvent } from './timeline.js';
import type { HostReport, HostReportKind } from '../events/store.js';
import { summarizeStorage, type ReportedGuestInterface, type StorageReport } from '../storage/report.js';

/** How many of a host's newest events its summary reads. */
const summaryEvents = 500;

/** One host's row on the status page and in the admin API, from its timeline, profile and lease. */
export function describeHost(
  mac: string,
  events: { listByHost(mac: string, options?: { limit?: number }): TimelineEvent[]; hostReport?(mac: string, kind: HostReportKind): HostReport | undefined },
  sources: {
    profiles: { lookup(mac: string, slot?: RelaySlot): Profile | undefined };
    sightings?: { slotOf(mac: string): RelaySlot | undefined };
    leases?: Pick<LeaseStore, 'byMac'>;
  },
): HostStatus | undefined {
  const timeline = events.listByHost(mac, { limit: summaryEvents });
  const summary = summariseHost(mac, timeline);
  if (summary === undefined) return undefined;
  const slot = sources.sightings?.slotOf(mac);
  const profile = sources.profiles.lookup(mac, slot);
  const lease = sources.leases?.byMac(mac);
  // Our own lease when we gave one; else the last address a DHCP reply or the runtime named.
  const seen = [...timeline].reverse().find((event) => event.source === 'dhcp' && event.detail !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(event.detail));
  const address = lease?.state === 'bound' ? lease.address : (seen?.detail ?? null);
  const ready = readyFacts([...timeline].reverse().find((event) => event.source === 'runtime' && event.stage === 'ready')?.detail);
  return {
    mac,
    hostname: profile?.hostname ?? lease?.hostname ?? null,
    profile: profile ? basename(profile.source) : null,
    profileFrom: profile ? profileOrigin(profile, basename) : null,
    address,
    stage: summary.stage,
    lastSeen: new Date(summary.lastSeen).toISOString(),
    lastBootSeconds: summary.lastBootSeconds,
    lastReadyAt: summary.lastReadyAt === null ? null : new Date(summary.lastReadyAt).toISOString(),
    slot: slot === undefined ? null : formatSlot(slot),
    rack: slot?.remoteId === undefined ? null : formatSlotId(slot.remoteId),
    group: profile?.groupEntry === undefined ? null : basename(profile.source),
    failures: summary.failures,
    lastFailure: summary.lastFailure,
    alarms: summary.alarms,
    lastAlarm: summary.lastAlarm,
    ...ready,
    storage: (() => {
      const report = storageOf(events, mac);
      return report === undefined ? null : summarizeStorage(report);
    })(),
  };
}

/**
 * What a runtime's ready report says of what it runs: "... build=ID
 * xen=4.17.5 kernel=6.1.0-28-amd64" (builder/runtime/init*). A field that
 * is missing, "none" or not a plain word is null: the report comes from
 * the host, so it is shown, never trusted further. Pure.
 */
export function readyFacts(detail: string | undefined): { build: string | null; xen: string | null; kernel: string | null } {
  const field = (name: string): string | null => {
    const value = new RegExp(`(?:^|\\s)${name}=([A-Za-z0-9._+~:-]{1,64})(?=\\s|$)`).exec(detail ?? '')?.[1];
    return value === undefined || value === 'none' ? null : value;
  };
  return { build: field('build'), xen: field('xen'), kernel: field('kernel') };
}

type ReportSource = { hostReport?(mac: string, kind: HostReportKind): HostReport | undefined };

/** A host's newest report of one kind, decoded, with when it came; undefined before its first. */
function newestReport<T>(events: ReportSource, mac: string, kind: HostReportKind): { reportedAt: string; body: T } | undefined {
  const stored = events.hostReport?.(mac, kind);
  // Written by POST /hosts/<mac>/<kind> from a checked report, as JSON.
  return stored === undefined ? undefined : { reportedAt: new Date(stored.time).toISOString(), body: JSON.parse(stored.body) as T };
}

/** A host's newest storage report, with when it came; undefined before its first. */
export function storageOf(events: ReportSource, mac: string): (StorageReport & { reportedAt: string }) | undefined {
  const report = newestReport<StorageReport>(events, mac, 'storage');
  return report && { reportedAt: report.reportedAt, ...report.body };
}

/** A host's newest guest network report (each guest interface's counters), with when it came; undefined before its first. */
export function guestNetworkOf(events: ReportSource, mac: string): { reportedAt: string; interfaces: ReportedGuestInterface[] } | undefined {
  const report = newestReport<ReportedGuestInterface[]>(events, mac, 'network');
  return report && { reportedAt: report.reportedAt, interfaces: report.body };
}

/**
 * The part names of the current build, for metric labels, read again every
 * few seconds (a build switch changes them) without blocking a request.
 */
export class BuildPartNames {
  current: ReadonlySet<string> = new Set();
  private readonly timer: NodeJS.Timeout;

  constructor(assets: AssetStore, intervalMs = 5000) {
    const refresh = () => {
      void assets.current().then(
        (build) => {
          this.current = new Set(build?.manifest.files.map((file) => file.name) ?? []);
        },
        () => undefined,
      );
    };
    refresh();
    this.timer = setInterval(refresh, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

let version: string | undefined;

/** rackboot's version, from its package.json. */
export function rackbootVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}
