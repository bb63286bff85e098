import type { EventStore } from '../events/store.js';
import type { HostStatus } from './snapshot.js';

/** How many hosts nobody configured the list keeps, and for how long. */
export interface HostListSettings {
  /** Hosts with neither a profile of their own (MAC or slot) nor a lease: at most this many, the most recently seen. */
  maxUnknown: number;
  /** Such a host leaves the list this long after its last event. */
  unknownRetentionMs: number;
  /** Every kept row is described again this often (leases expire, profiles change without an event). */
  refreshMs: number;
}

export const defaultHostListSettings: HostListSettings = {
  maxUnknown: 1000,
  unknownRetentionMs: 24 * 3600_000,
  refreshMs: 60_000,
};

/**
 * Which unknown hosts stay: those seen within the retention, at most `max`,
 * the most recently seen first. Pure.
 */
export function keepUnknown(
  seen: Iterable<[mac: string, lastSeen: number]>,
  now: number,
  settings: Pick<HostListSettings, 'maxUnknown' | 'unknownRetentionMs'>,
): Set<string> {
  const fresh = [...seen].filter(([, lastSeen]) => now - lastSeen <= settings.unknownRetentionMs);
  fresh.sort((a, b) => b[1] - a[1]);
  return new Set(fresh.slice(0, Math.max(0, settings.maxUnknown)).map(([mac]) => mac));
}

/**
 * The host list of the status page, the metrics and the admin API, kept
 * between reads: a host's row is described again only when its timeline
 * moved (`touched`), and a read with nothing new returns the same array.
 * Hosts nobody configured (a stranger posting events for random MACs) are
 * forgotten past the retention and the cap, so the list, and every
 * snapshot made from it, stays bounded.
 */
export class HostList {
  private readonly rows = new Map<string, HostStatus>();
  /** Whether each kept host is known, as found when it was last described. */
  private readonly known = new Map<string, boolean>();
  /** MACs whose timeline moved since the last read, with their newest event time. */
  private readonly dirty = new Map<string, number>();
  private sorted: HostStatus[] = [];
  private refreshedAt: number;
  private readonly settings: HostListSettings;
  private readonly now: () => number;

  constructor(
    private readonly sources: {
      /** A host's row from its timeline, profile and lease (describeHost); undefined without events. */
      describe(mac: string): HostStatus | undefined;
      /** A host someone configured: a profile of its own, or a lease. */
      isKnown(mac: string): boolean;
    },
    settings: Partial<HostListSettings> = {},
    now: () => number = Date.now,
  ) {
    this.settings = { ...defaultHostListSettings, ...settings };
    this.now = now;
    this.refreshedAt = now();
  }

  /** A host's timeline moved (an event at `time`). */
  touched(mac: string, time: number): void {
    const before = this.dirty.get(mac);
    if (before === undefined || time > before) this.dirty.set(mac, time);
  }

  /** Describe every kept host again on the next read (profiles changed). */
  refreshAll(): void {
    for (const [mac, row] of this.rows) this.touched(mac, Date.parse(row.lastSeen));
  }

  /** Hosts kept now. */
  get size(): number {
    return this.rows.size;
  }

  /** The list, newest first. */
  list(): HostStatus[] {
    const now = this.now();
    if (now - this.refreshedAt >= this.settings.refreshMs) {
      this.refreshedAt = now;
      this.refreshAll();
    }
    let changed = false;
    // Unknown hosts: the kept rows and the moved ones compete for the places;
    // only the winners are described (a flood of new MACs costs no lookups past the cap).
    const unknown = new Map<string, number>();
    for (const [mac, row] of this.rows) if (this.known.get(mac) === false && !this.dirty.has(mac)) unknown.set(mac, Date.parse(row.lastSeen));
    const movedKnown = new Set<string>();
    for (const [mac, time] of this.dirty) {
      if (this.sources.isKnown(mac)) movedKnown.add(mac);
      else unknown.set(mac, Math.max(time, this.rows.has(mac) ? Date.parse(this.rows.get(mac)!.lastSeen) : 0));
    }
    const kept = keepUnknown(unknown, now, this.settings);
    for (const mac of unknown.keys()) {
      if (kept.has(mac)) continue;
      this.dirty.delete(mac);
      this.known.delete(mac);
      if (this.rows.delete(mac)) changed = true;
    }
    for (const mac of this.dirty.keys()) {
      const row = this.sources.describe(mac);
      if (row === undefined) {
        this.rows.delete(mac);
        this.known.delete(mac);
      } else {
        this.rows.set(mac, row);
        this.known.set(mac, movedKnown.has(mac));
      }
      changed = true;
    }
    this.dirty.clear();
    if (changed) this.sorted = [...this.rows.values()].sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : 0));
    return this.sorted;
  }
}

/** An event store that tells `appended` of every event stored through it. */
export function notifyingAppends(store: EventStore, appended: (mac: string, time: number) => void): EventStore {
  return {
    append: (event) => {
      const stored = store.append(event);
      appended(stored.mac, stored.time);
      return stored;
    },
    appendAll: (events) => {
      const stored = store.appendAll(events);
      for (const event of stored) appended(event.mac, event.time);
      return stored;
    },
    listByHost: (mac, options) => store.listByHost(mac, options),
    latestByHost: () => store.latestByHost(),
    putHostReport: (report) => {
      store.putHostReport(report);
      appended(report.mac, report.time);
    },
    hostReport: (mac, kind) => store.hostReport(mac, kind),
    prune: (retention) => store.prune(retention),
    close: () => store.close(),
  };
}
