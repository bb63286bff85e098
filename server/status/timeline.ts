/**
 * A host's boot timeline, summarised: where it stands, when it last moved,
 * how long its last boot took, and what failed. Pure: the event store
 * supplies the events, the status page and the metrics read the summary.
 */

/** One protocol or runtime event of one machine, as the event store keeps it. */
export interface TimelineEvent {
  /** Milliseconds since the epoch, by the server's clock. */
  time: number;
  mac: string;
  /** Who saw it: rackboot's DHCP, TFTP or HTTP server, or the runtime / a guest reporting in. */
  source: string;
  stage: string;
  detail?: string;
  domain?: string;
}

export interface HostSummary {
  mac: string;
  stage: string;
  lastSeen: number;
  /** The first DHCP packet of the boot in progress or last finished. */
  bootStartedAt: number | null;
  /** From the first DHCP packet to the ready report, of the last boot that got there. */
  lastBootSeconds: number | null;
  /** When that boot reported ready (ms). */
  lastReadyAt: number | null;
  /** Failures reported since the current boot started. */
  failures: number;
  lastFailure: string | null;
  /** Alarms (token-use.ts: a copied token, two boots of one MAC) on the timeline, and the newest: they stay until the timeline forgets them. */
  alarms: number;
  lastAlarm: string | null;
}

/** Stages that say something went wrong; they count as failures of the boot. */
export const failureStages: ReadonlySet<string> = new Set(['failed', 'setting-failed', 'domain-failed', 'guest-failed', 'tftp-failed', 'dhcp-nak', 'refused']);

/** Stages that end a boot: the next DHCP packet starts a new one. */
export const endStages: ReadonlySet<string> = new Set(['ready', 'failed']);

/**
 * Events that do not move the host's own stage: its guests' reports, and
 * alarms about its token (worth seeing, but the host itself is where it was).
 */
export const stationaryStages: ReadonlySet<string> = new Set(['guest-ready', 'guest-failed', 'refused', 'alarm']);

export function summariseHost(mac: string, events: readonly TimelineEvent[]): HostSummary | undefined {
  if (events.length === 0) return undefined;
  const ordered = [...events].sort((a, b) => a.time - b.time);
  let stage = ordered[0]!.stage;
  let bootStartedAt: number | null = null;
  let bootEnded = true;
  let lastBootSeconds: number | null = null;
  let lastReadyAt: number | null = null;
  let failures = 0;
  let lastFailure: string | null = null;
  let alarms = 0;
  let lastAlarm: string | null = null;
  for (const event of ordered) {
    if (event.source === 'dhcp' && bootEnded) {
      bootStartedAt = event.time;
      bootEnded = false;
      failures = 0;
      lastFailure = null;
    }
    if (event.stage === 'alarm') {
      alarms += 1;
      lastAlarm = event.detail ?? 'alarm';
    }
    if (!stationaryStages.has(event.stage)) stage = event.stage;
    if (failureStages.has(event.stage)) {
      failures += 1;
      lastFailure = [event.domain ? `domain ${event.domain}` : '', event.detail ?? event.stage].filter(Boolean).join(': ');
    }
    if (endStages.has(event.stage)) {
      if (event.stage === 'ready' && bootStartedAt !== null && !bootEnded) {
        lastBootSeconds = (event.time - bootStartedAt) / 1000;
        lastReadyAt = event.time;
      }
      bootEnded = true;
    }
  }
  return { mac, stage, lastSeen: ordered.at(-1)!.time, bootStartedAt, lastBootSeconds, lastReadyAt, failures, lastFailure, alarms, lastAlarm };
}

/** How many hosts stand at each stage, for the metrics gauge. */
export function hostsPerStage(summaries: Iterable<{ stage: string }>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const summary of summaries) counts.set(summary.stage, (counts.get(summary.stage) ?? 0) + 1);
  return counts;
}
