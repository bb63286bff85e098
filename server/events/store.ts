import type { BootEvent, NewBootEvent } from './event.js';

/**
 * Where boot events are kept: append-only, read per host. Synchronous, like
 * LeaseStore: SQLite through better-sqlite3 is, and a memory store is.
 */
export interface EventStore {
  /** Record an event; returns it with its id. */
  append(event: NewBootEvent): BootEvent;
  /** Record several events at once, in order: one transaction where the store has them (the servers' events come in bursts). */
  appendAll(events: readonly NewBootEvent[]): BootEvent[];
  /** A host's events, oldest first; with `limit`, only the newest `limit` of them. */
  listByHost(mac: string, options?: { limit?: number }): BootEvent[];
  /** Each host's most recent event (its current stage), ordered by MAC. */
  latestByHost(): BootEvent[];
  /**
   * Forget old events: those before `before` (ms), and those past the newest
   * `keepPerHost` of their host. Each host's newest event always stays, so
   * latestByHost() still lists every host ever seen. Returns how many went.
   */
  prune(retention: EventRetention): number;
  /** Keep a host's newest report of its kind, replacing the one before (a host's storage is what it last saw, not a history). */
  putHostReport(report: HostReport): void;
  /** A host's newest report of `kind`, if it ever sent one. */
  hostReport(mac: string, kind: HostReportKind): HostReport | undefined;
  /** A store that writes behind (PostgreSQL) resolves once what it held is written. */
  close(): void | Promise<void>;
}

/** What a host reports as a whole, beside its timeline: its storage, and its guests' network counters (server/storage/report.ts). */
export const hostReportKinds = ['storage', 'network'] as const;
export type HostReportKind = (typeof hostReportKinds)[number];

export interface HostReport {
  mac: string;
  kind: HostReportKind;
  /** When it arrived, by the server's clock (ms). */
  time: number;
  /** The report as the server decoded it, in JSON. */
  body: string;
}

export interface EventRetention {
  before?: number;
  keepPerHost?: number;
}

/** Events in memory, lost on restart: for tests and `rackboot whatif`-like tools. */
export class MemoryEventStore implements EventStore {
  private readonly events: BootEvent[] = [];
  private readonly latest = new Map<string, BootEvent>();
  private nextId = 1;
  private readonly reports = new Map<string, HostReport>();

  append(event: NewBootEvent): BootEvent {
    const stored: BootEvent = { ...event, id: this.nextId++ };
    this.events.push(stored);
    this.latest.set(stored.mac, stored);
    return { ...stored };
  }

  appendAll(events: readonly NewBootEvent[]): BootEvent[] {
    return events.map((event) => this.append(event));
  }

  listByHost(mac: string, options: { limit?: number } = {}): BootEvent[] {
    const all = this.events.filter((event) => event.mac === mac);
    const limited = options.limit === undefined ? all : all.slice(Math.max(0, all.length - options.limit));
    return limited.map((event) => ({ ...event }));
  }

  latestByHost(): BootEvent[] {
    return [...this.latest.values()].sort((a, b) => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0)).map((event) => ({ ...event }));
  }

  prune(retention: EventRetention): number {
    const kept = new Map<string, number>();
    const keep = new Set<BootEvent>();
    for (let index = this.events.length - 1; index >= 0; index -= 1) {
      const event = this.events[index]!;
      const newer = kept.get(event.mac) ?? 0;
      kept.set(event.mac, newer + 1);
      const newest = newer === 0;
      const tooOld = retention.before !== undefined && event.time < retention.before;
      const pastCap = retention.keepPerHost !== undefined && newer >= retention.keepPerHost;
      if (newest || (!tooOld && !pastCap)) keep.add(event);
    }
    const before = this.events.length;
    const remaining = this.events.filter((event) => keep.has(event));
    this.events.splice(0, this.events.length, ...remaining);
    return before - remaining.length;
  }

  putHostReport(report: HostReport): void {
    this.reports.set(`${report.mac} ${report.kind}`, { ...report });
  }

  hostReport(mac: string, kind: HostReportKind): HostReport | undefined {
    const report = this.reports.get(`${mac} ${kind}`);
    return report === undefined ? undefined : { ...report };
  }

  close(): void {}
}
