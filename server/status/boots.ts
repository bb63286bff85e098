import { endStages, failureStages, stationaryStages, type TimelineEvent } from './timeline.js';

/**
 * A host's timeline cut into boots, and each boot as the host page draws
 * it: one bar of consecutive phases from the first DHCP packet to ready,
 * and a lane per domain from its start to its own ready report. Pure: the
 * event store supplies the events, the status router serves the result.
 *
 * The phases are read off what the servers and the runtime report
 * (observe.ts, builder/runtime/init*), each ending at the last event that
 * belongs to it:
 *
 *   dhcp     the firmware's DHCP exchange, to its last packet before anything else
 *   tftp     the loader (undionly.kpxe, ipxe.efi) over TFTP, to the transfer's end
 *   files    iPXE: its own DHCP, boot.ipxe, xen.cfg and the boot parts over HTTP, to the last part
 *   kernel   Xen and the dom0 kernel starting, to the runtime's first word (booted)
 *   runtime  the runtime's setup (network, runtime.env, settings), to configured
 *            (the tiny runtime reports no configured: its setup runs to ready)
 *   domains  starting the guests and the rest, to ready (or failed)
 */

export const bootPhases = ['dhcp', 'tftp', 'files', 'kernel', 'runtime', 'domains'] as const;
export type BootPhase = (typeof bootPhases)[number];

const phaseLabels: Record<BootPhase, string> = {
  dhcp: 'DHCP',
  tftp: 'TFTP',
  files: 'boot files',
  kernel: 'Xen + kernel',
  runtime: 'runtime setup',
  domains: 'domains',
};

/** Per-host files the runtime fetches over HTTP: the runtime speaking, not iPXE. */
const runtimeFiles: ReadonlySet<string> = new Set(['runtime.env', 'domain.cfg']);
/** What iPXE fetches over HTTP before Xen starts. */
const loaderFiles: ReadonlySet<string> = new Set(['boot.ipxe', 'xen.cfg', 'boot-file']);
/** Events beside the boot's course: those that do not move the host's stage (timeline.ts), and its reboot. */
const besideStages: ReadonlySet<string> = new Set([...stationaryStages, 'rebooting']);

export interface BootSegment {
  phase: BootPhase;
  label: string;
  /** ms since the epoch. */
  start: number;
  end: number;
  seconds: number;
  /** A failure was reported in it. */
  failed: boolean;
  /** The first failure's words, when it failed. */
  detail: string | null;
  /** The boot has not ended: this phase is where it stands, so far. */
  open: boolean;
}

export interface DomainLane {
  name: string;
  /** Its domain-started report; null when it never started. */
  start: number | null;
  /** Its guest-ready, or the failure that ended it. */
  end: number | null;
  /** From started to ready (or failed). */
  seconds: number | null;
  outcome: 'ready' | 'failed' | 'starting';
  detail: string | null;
}

export interface BootFailure {
  time: number;
  stage: string;
  detail: string;
  domain?: string;
}

export interface BootPicture {
  /** ms since the epoch: its first DHCP packet, or its first event when its start is gone (pruned, or never seen). */
  startedAt: number;
  /** Its last event. */
  endedAt: number;
  outcome: 'ready' | 'failed' | 'in progress';
  /** From startedAt to ready or failed; null while in progress. */
  seconds: number | null;
  /** Whether its first DHCP packet is on the timeline. */
  fromDhcp: boolean;
  segments: BootSegment[];
  domains: DomainLane[];
  failures: BootFailure[];
  events: TimelineEvent[];
}

/**
 * A timeline cut into boots, oldest first, as summariseHost counts them: a
 * boot starts with the first DHCP packet after a ready or failed report
 * (the runtime's own DHCP is part of its boot). Events before the first
 * DHCP packet make a boot of their own, whose start is not known.
 */
export function splitBoots(events: readonly TimelineEvent[]): TimelineEvent[][] {
  const ordered = [...events].sort((a, b) => a.time - b.time);
  const boots: TimelineEvent[][] = [];
  let ended = true;
  for (const event of ordered) {
    if (event.source === 'dhcp' && ended) {
      boots.push([]);
      ended = false;
    }
    if (boots.length === 0) boots.push([]);
    boots.at(-1)!.push(event);
    if (endStages.has(event.stage)) ended = true;
  }
  return boots;
}

const failureWords = (event: TimelineEvent): string => event.detail ?? event.stage;

/** One boot's events (one element of splitBoots) as its picture. */
export function pictureBoot(events: readonly TimelineEvent[]): BootPicture {
  if (events.length === 0) throw new RangeError('pictureBoot: a boot has at least one event');
  const ordered = [...events].sort((a, b) => a.time - b.time);
  const startedAt = ordered[0]!.time;
  const end = ordered.find((event) => endStages.has(event.stage));

  // Each event of the boot's course closes the phase it belongs to; the phase never goes back.
  const phaseEnds = new Map<BootPhase, number>();
  const phaseFailures = new Map<BootPhase, BootFailure>();
  let phase = 0;
  for (const event of ordered) {
    if (besideStages.has(event.stage) || event.stage.startsWith('guest-')) continue;
    if (end !== undefined && event.time > end.time) break;
    const runtimeSpeaks = event.source === 'runtime' || (event.source === 'http' && runtimeFiles.has(event.stage));
    let closes: number;
    if (runtimeSpeaks && phase < 3) {
      // The runtime's first word ends Xen's and the kernel's start.
      closes = 3;
      phase = 4;
      if (event.stage === 'configured') phase = 5;
    } else if (event.source === 'runtime' && event.stage === 'configured') {
      closes = Math.max(phase, 4);
      phase = 5;
    } else if (event.source === 'dhcp') {
      // iPXE's own DHCP after the TFTP transfer begins the iPXE phase.
      if (phase === 1) phase = 2;
      closes = phase;
    } else if (event.source === 'tftp') {
      if (phase < 1) phase = 1;
      closes = phase;
    } else if (event.source === 'http' && loaderFiles.has(event.stage)) {
      if (phase < 2) phase = 2;
      closes = phase;
    } else {
      closes = phase;
    }
    const closed = bootPhases[closes]!;
    phaseEnds.set(closed, event.time);
    if (failureStages.has(event.stage) && !event.stage.startsWith('domain-') && !phaseFailures.has(closed)) {
      phaseFailures.set(closed, { time: event.time, stage: event.stage, detail: failureWords(event) });
    }
  }

  const segments: BootSegment[] = [];
  let from = startedAt;
  for (const name of bootPhases) {
    const until = phaseEnds.get(name);
    if (until === undefined) continue;
    const failure = phaseFailures.get(name);
    segments.push({
      phase: name,
      label: phaseLabels[name],
      start: from,
      end: until,
      seconds: (until - from) / 1000,
      failed: failure !== undefined,
      detail: failure?.detail ?? null,
      open: false,
    });
    from = until;
  }
  if (end === undefined && segments.length > 0) segments.at(-1)!.open = true;
  const hasDomains = ordered.some((event) => event.domain !== undefined);
  const last = segments.at(-1);
  if (last?.phase === 'domains' && !hasDomains) last.label = 'to ready';

  const domains: DomainLane[] = [];
  const laneOf = (name: string): DomainLane => {
    let lane = domains.find((candidate) => candidate.name === name);
    if (lane === undefined) {
      lane = { name, start: null, end: null, seconds: null, outcome: 'starting', detail: null };
      domains.push(lane);
    }
    return lane;
  };
  for (const event of ordered) {
    if (event.domain === undefined) continue;
    const lane = laneOf(event.domain);
    if (lane.outcome !== 'starting') continue;
    if (event.stage === 'domain-started') lane.start ??= event.time;
    else if (event.stage === 'guest-ready') {
      lane.end = event.time;
      lane.outcome = 'ready';
      lane.detail = event.detail ?? null;
    } else if (event.stage === 'domain-failed' || event.stage === 'guest-failed') {
      lane.end = event.time;
      lane.outcome = 'failed';
      lane.detail = failureWords(event);
    }
  }
  for (const lane of domains) if (lane.start !== null && lane.end !== null) lane.seconds = (lane.end - lane.start) / 1000;

  const failures = ordered
    .filter((event) => failureStages.has(event.stage))
    .map((event) => ({ time: event.time, stage: event.stage, detail: failureWords(event), ...(event.domain === undefined ? {} : { domain: event.domain }) }));
  return {
    startedAt,
    endedAt: ordered.at(-1)!.time,
    outcome: end === undefined ? 'in progress' : end.stage === 'ready' ? 'ready' : 'failed',
    seconds: end === undefined ? null : (end.time - startedAt) / 1000,
    fromDhcp: ordered[0]!.source === 'dhcp',
    segments,
    domains,
    failures,
    events: ordered,
  };
}

/** A host's newest `count` boots, newest first, as pictures. */
export function recentBoots(events: readonly TimelineEvent[], count: number): BootPicture[] {
  return splitBoots(events).slice(-count).reverse().map(pictureBoot);
}
