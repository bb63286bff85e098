/**
 * A canary rollout of a build to the hosts of one channel, as pure
 * functions over a plain record (the stores keep it as JSON).
 *
 * The channel's current build stays the previous one while a rollout runs:
 * only the hosts the rollout moved boot the new build. The first wave is
 * `first` hosts; each later wave is as large as all the hosts moved before
 * it (1, 1, 2, 4, ... or 5, 5, 10, 20, ...), and starts only when every
 * moved host is healthy. A host is healthy when, after its boot script of
 * the new build, it reports ready with that build and at least the domains
 * its profile starts. One failure (a ready report short of domains, a
 * failure report, no ready report within the deadline) stops the rollout:
 * the failed host and every host not yet moved boot the previous build
 * again; hosts already healthy keep the new one. When every host is healthy
 * the rollout is done and the new build becomes the channel's current one.
 */

export const rolloutStates = ['running', 'paused', 'failed', 'aborted', 'done'] as const;
export type RolloutState = (typeof rolloutStates)[number];

export interface RolloutHost {
  mac: string;
  /** When the rollout moved it to the new build (ms). */
  movedAt: number;
  /** When it fetched a boot script of the new build: its boot on the new build started. */
  bootedAt?: number;
  healthyAt?: number;
  failedAt?: number;
  /** Why it failed. */
  reason?: string;
  /** It failed by silence (no ready report, or no boot, within the deadline): it may hang, and only a reset brings it back. */
  silent?: boolean;
  /** When the server first asked it to reboot (rollout --reboot, through its heartbeat). */
  rebootAskedAt?: number;
}

export interface Rollout {
  channel: string;
  /** The build rolled out. */
  build: string;
  /** The channel's current build when the rollout started: what every host not moved boots. */
  previous: string;
  /** Hosts in the first wave. */
  first: number;
  /** How long a moved host has from its boot script to its ready report. */
  deadlineMs: number;
  /** Ask moved hosts to reboot (one at a time), and failed ones to reboot back to the previous build. */
  reboot?: boolean;
  state: RolloutState;
  startedAt: number;
  updatedAt: number;
  /** Every host of the channel when it started, in the order they move (by MAC). */
  order: string[];
  /** The hosts moved so far, in the order they moved. */
  moved: RolloutHost[];
  /** Why it stopped (failed or aborted), or what finished it. */
  reason?: string;
}

/** The size of the first wave: a count, or a share of the hosts (rounded up, at least one). */
export type FirstWave = { count: number } | { percent: number };

export type RolloutResult = { ok: true; rollout: Rollout } | { ok: false; problem: string };

/** "--first 2" or "--first 25%", as a FirstWave, or a problem. Pure. */
export function parseFirstWave(text: string): FirstWave | { problem: string } {
  const percent = /^(\d{1,3})%$/.exec(text);
  if (percent) {
    const value = Number(percent[1]);
    return value >= 1 && value <= 100 ? { percent: value } : { problem: `--first ${text}: a share of the hosts is 1% to 100%` };
  }
  if (/^\d{1,6}$/.test(text) && Number(text) >= 1) return { count: Number(text) };
  return { problem: `--first ${text}: want a number of hosts (such as 1) or a share of them (such as 25%)` };
}

/** Start a rollout: the first wave moves at once. Pure. */
export function startRollout(input: {
  channel: string;
  build: string;
  previous: string | undefined;
  /** The MACs of the channel's hosts. */
  members: readonly string[];
  first: FirstWave;
  deadlineMs: number;
  reboot?: boolean;
  now: number;
}): RolloutResult {
  const { channel, build, previous, now } = input;
  if (previous === undefined)
    return { ok: false, problem: `channel ${channel} has no current build to roll out from; make ${build} its current build instead (rackboot builds switch)` };
  if (previous === build) return { ok: false, problem: `${build} is already channel ${channel}'s current build` };
  const order = [...new Set(input.members)].sort();
  if (order.length === 0) return { ok: false, problem: `no host's profile is on channel ${channel} (boot.channel), so there is no one to roll out to` };
  if (!(input.deadlineMs > 0)) return { ok: false, problem: 'the deadline must be longer than 0' };
  const first = 'count' in input.first ? input.first.count : Math.ceil((order.length * input.first.percent) / 100);
  if (!Number.isInteger(first) || first < 1) return { ok: false, problem: 'the first wave must hold at least one host' };
  const rollout: Rollout = {
    channel,
    build,
    previous,
    first: Math.min(first, order.length),
    deadlineMs: input.deadlineMs,
    ...(input.reboot === true ? { reboot: true } : {}),
    state: 'running',
    startedAt: now,
    updatedAt: now,
    order,
    moved: order.slice(0, Math.min(first, order.length)).map((mac) => ({ mac, movedAt: now })),
  };
  return { ok: true, rollout };
}

/** Which build a host boots while the rollout stands, and why; undefined once it is done (the channel's current build decides). Pure. */
export function rolloutBuildFor(rollout: Rollout, mac: string): { build: string; reason: string } | undefined {
  if (rollout.state === 'done') return undefined;
  const moved = rollout.moved.find((host) => host.mac === mac);
  const tag = `rollout of ${rollout.build} on channel ${rollout.channel}`;
  if (rollout.state === 'aborted') return { build: rollout.previous, reason: `${tag} was aborted: back on ${rollout.previous}` };
  if (moved === undefined) return { build: rollout.previous, reason: `${tag}: not moved yet, on the previous build` };
  if (moved.failedAt !== undefined)
    return { build: rollout.previous, reason: `${tag}: failed on it (${moved.reason ?? 'no reason'}), back on the previous build` };
  if (rollout.state === 'failed' && moved.healthyAt === undefined)
    return { build: rollout.previous, reason: `${tag} stopped before this host was healthy: back on the previous build` };
  return { build: rollout.build, reason: `${tag}: moved ${new Date(moved.movedAt).toISOString()}` };
}

const change = (rollout: Rollout, now: number, patch: Partial<Rollout>): Rollout => ({ ...rollout, ...patch, updatedAt: now });

function withHost(rollout: Rollout, mac: string, now: number, patch: (host: RolloutHost) => RolloutHost): Rollout {
  return change(rollout, now, { moved: rollout.moved.map((host) => (host.mac === mac ? patch(host) : host)) });
}

function fail(rollout: Rollout, mac: string, reason: string, now: number, silent = false): Rollout {
  const failed = withHost(rollout, mac, now, (host) => ({ ...host, failedAt: now, reason, ...(silent ? { silent: true } : {}) }));
  const stopping = rollout.state === 'running' || rollout.state === 'paused';
  return stopping ? change(failed, now, { state: 'failed', reason: `${mac}: ${reason}` }) : failed;
}

/** What the server saw of a host, as the rollout counts it. */
export type RolloutObservation =
  | { kind: 'boot-script'; mac: string; build: string }
  | { kind: 'ready'; mac: string; build: string | null; domains: number; wantDomains: number }
  | { kind: 'failed'; mac: string; detail: string }
  | { kind: 'reboot-asked'; mac: string };

/** Count one observation of a moved host of an active rollout; anything else leaves it as it is. Pure. */
export function observe(rollout: Rollout, seen: RolloutObservation, now: number): Rollout {
  const host = rollout.moved.find((candidate) => candidate.mac === seen.mac);
  if (seen.kind === 'reboot-asked') {
    return host === undefined || host.rebootAskedAt !== undefined ? rollout : withHost(rollout, seen.mac, now, (h) => ({ ...h, rebootAskedAt: now }));
  }
  if (rollout.state !== 'running' && rollout.state !== 'paused') return rollout;
  if (host === undefined || host.failedAt !== undefined) return rollout;
  switch (seen.kind) {
    case 'boot-script':
      // The deadline counts from its first boot of the new build: a host that a watchdog resets again and again still fails in time.
      return seen.build === rollout.build && host.bootedAt === undefined ? withHost(rollout, seen.mac, now, (h) => ({ ...h, bootedAt: now })) : rollout;
    case 'ready':
      if (host.bootedAt === undefined || seen.build !== rollout.build || host.healthyAt !== undefined) return rollout;
      if (seen.domains < seen.wantDomains)
        return fail(rollout, seen.mac, `reported ready with ${seen.domains} of the ${seen.wantDomains} domains its profile starts`, now);
      return withHost(rollout, seen.mac, now, (h) => ({ ...h, healthyAt: now }));
    case 'failed':
      return host.bootedAt === undefined || host.healthyAt !== undefined ? rollout : fail(rollout, seen.mac, `reported a failure: ${seen.detail}`, now);
  }
}

/**
 * Move the rollout on at `now`: fail hosts past their deadline, start the
 * next wave when every moved host is healthy, finish when all are. Pure;
 * returns the same object when nothing changed.
 */
export function advance(rollout: Rollout, now: number): Rollout {
  let next = rollout;
  if (next.state !== 'running' && next.state !== 'paused') return next;
  for (const host of next.moved) {
    if (host.healthyAt !== undefined || host.failedAt !== undefined) continue;
    if (host.bootedAt !== undefined && now - host.bootedAt > next.deadlineMs) {
      next = fail(next, host.mac, `no ready report with ${next.build} within ${formatDuration(next.deadlineMs)} of its boot script`, now, true);
    } else if (host.bootedAt === undefined && host.rebootAskedAt !== undefined && now - host.rebootAskedAt > next.deadlineMs) {
      next = fail(next, host.mac, `asked to reboot, and no boot script of ${next.build} within ${formatDuration(next.deadlineMs)}`, now, true);
    }
  }
  if (next.state !== 'running' || !next.moved.every((host) => host.healthyAt !== undefined)) return next;
  if (next.moved.length === next.order.length)
    return change(next, now, { state: 'done', reason: `every host (${next.order.length}) healthy on ${next.build}` });
  const moved = new Set(next.moved.map((host) => host.mac));
  const wave = next.order.filter((mac) => !moved.has(mac)).slice(0, next.moved.length);
  return change(next, now, { moved: [...next.moved, ...wave.map((mac) => ({ mac, movedAt: now }))] });
}

/** The hosts that failed by silence between `before` and `after`: those a BMC should reset. Pure. */
export function newlySilent(before: Rollout, after: Rollout): string[] {
  return after.moved.filter((host) => host.silent === true && before.moved.find((was) => was.mac === host.mac)?.failedAt === undefined).map((host) => host.mac);
}

/**
 * Whether a host running `running` (the build its boot was handed) should
 * reboot now, for a rollout started with --reboot: a moved host still on
 * another build, when no other moved host is between its reboot and its
 * health (so hosts go one at a time); and, once the rollout failed, a
 * failed host still on the new build, to go back. Pure.
 */
export function rebootWanted(rollout: Rollout, mac: string, running: string | undefined): boolean {
  if (rollout.reboot !== true || running === undefined) return false;
  const host = rollout.moved.find((candidate) => candidate.mac === mac);
  if (host === undefined) return false;
  if (rollout.state === 'failed') return host.failedAt !== undefined && running === rollout.build;
  if (rollout.state !== 'running' || host.failedAt !== undefined || host.healthyAt !== undefined || running === rollout.build) return false;
  const inFlight = rollout.moved.some(
    (other) =>
      other.mac !== mac && other.failedAt === undefined && other.healthyAt === undefined && (other.rebootAskedAt !== undefined || other.bootedAt !== undefined),
  );
  return !inFlight;
}

/** pause, resume and abort, or why not in this state. Pure. */
export function command(rollout: Rollout, action: 'pause' | 'resume' | 'abort', now: number): RolloutResult {
  const is = (state: RolloutState) => rollout.state === state;
  switch (action) {
    case 'pause':
      return is('running')
        ? { ok: true, rollout: change(rollout, now, { state: 'paused' }) }
        : { ok: false, problem: `the rollout is ${rollout.state}, not running` };
    case 'resume':
      return is('paused')
        ? { ok: true, rollout: change(rollout, now, { state: 'running' }) }
        : { ok: false, problem: `the rollout is ${rollout.state}, not paused` };
    case 'abort':
      return is('running') || is('paused') || is('failed')
        ? { ok: true, rollout: change(rollout, now, { state: 'aborted', reason: 'aborted by an admin' }) }
        : { ok: false, problem: `the rollout is ${rollout.state}; there is nothing to abort` };
  }
}

/** Whether the rollout still decides what its hosts boot (the store keeps one per channel). */
export function isActive(rollout: Rollout): boolean {
  return rollout.state === 'running' || rollout.state === 'paused' || rollout.state === 'failed';
}

/** How long a moved host has from its boot script to its ready report, unless the rollout says otherwise. */
export const defaultDeadlineMs = 30 * 60_000;

/** "90s", "20m", "1h" (or a bare number of seconds) as ms, or a problem naming the flag. Pure. */
export function parseDeadline(text: string): number | { problem: string } {
  const match = /^(\d{1,6})(s|m|h)?$/.exec(text.trim());
  const ms = match === null ? 0 : Number(match[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 's' | 'm' | 'h'];
  return ms > 0 ? ms : { problem: `--deadline ${text}: want a time such as 90s, 20m or 1h` };
}

/** "20 min", "90 s". */
export function formatDuration(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`;
}
