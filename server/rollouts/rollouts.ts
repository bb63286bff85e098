import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AssetStore } from '../assets/builds.js';
import type { BootEvent } from '../events/event.js';
import { readyFacts } from '../status/hosts.js';
import {
  advance,
  command,
  formatDuration,
  isActive,
  newlySilent,
  observe,
  rebootWanted,
  rolloutBuildFor,
  startRollout,
  type FirstWave,
  type Rollout,
  type RolloutObservation,
} from './rollout.js';
import type { RolloutStore } from './store.js';
import type { HostPower } from '../bmc/power.js';
import { ROLLOUT_BUILDS_FILE, rolloutBuilds, writeRolloutBuilds } from './in-use.js';

/** What the server knows of the hosts a rollout counts. */
export interface RolloutHosts {
  /** The MACs whose profile puts them on `channel` (boot.channel, or the default channel), in any order. */
  members(channel: string): string[];
  /** How many domains the host's profile starts at boot: its ready report must name at least as many. */
  wantDomains(mac: string): number;
  /** Whether rackboot may ask the host to reboot (its profile's boot.allowReboot). */
  mayReboot(mac: string): boolean;
}

export interface RolloutsOptions {
  now?: () => number;
  refreshMs?: number;
  /** The folder to keep rollout-builds.json in (in-use.ts), for `rackboot build --keep`. */
  state?: string;
  /** Hosts' BMCs: a host that fails by silence (it may hang) is power-cycled through its BMC, unless its profile says boot.allowReboot: false. */
  power?: Pick<HostPower, 'powerCycle' | 'hasBmc'>;
}

/** Stages of the runtime that count as a failed boot for a rollout. */
const failureStages = new Set(['failed', 'setting-failed', 'domain-failed']);

/**
 * The rollouts of a running server: the store's records, a copy of them
 * in memory for the one decision of what a host boots (read again every
 * `refreshMs`, so a change made on another server is seen within it), and
 * the clock that moves them on (deadlines, waves). When a rollout is done
 * its build becomes the channel's current one.
 */
export class Rollouts {
  private cached = new Map<string, Rollout>();
  /** What rollout-builds.json last said. */
  private publishedBuilds: string | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;

  private constructor(
    private readonly store: RolloutStore,
    private readonly assets: AssetStore,
    private readonly hosts: RolloutHosts,
    private readonly log: Logger,
    private readonly options: RolloutsOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.timer = setInterval(() => void this.tick(), options.refreshMs ?? 2000);
    this.timer.unref();
  }

  static async open(store: RolloutStore, assets: AssetStore, hosts: RolloutHosts, log: Logger, options: RolloutsOptions = {}): Promise<Rollouts> {
    const rollouts = new Rollouts(store, assets, hosts, log.child({ component: 'rollouts' }), options);
    await rollouts.refresh();
    return rollouts;
  }

  /** Every channel's newest rollout, as last read. */
  list(): Rollout[] {
    return [...this.cached.values()].sort((a, b) => (a.channel < b.channel ? -1 : 1));
  }

  /** The build an active rollout of `channel` gives `mac`, and why; undefined when none decides it. */
  buildFor(mac: string, channel: string): { build: string; reason: string } | undefined {
    const rollout = this.cached.get(channel);
    return rollout === undefined || !isActive(rollout) ? undefined : rolloutBuildFor(rollout, mac);
  }

  /** Start rolling `build` out to `channel`'s hosts; the channel's current build is the one they go back to. */
  async start(input: {
    channel: string;
    build: string;
    first: FirstWave;
    deadlineMs: number;
    reboot?: boolean;
  }): Promise<{ ok: true; rollout: Rollout } | { ok: false; problem: string }> {
    const build = await this.assets.build(input.build);
    if (build === undefined) return { ok: false, problem: `no build "${input.build}" in ${this.assets.dir}/builds` };
    const previous = await this.assets.current(input.channel);
    let problem: string | undefined;
    const stored = await this.store.update(input.channel, (current) => {
      if (current !== undefined && isActive(current)) {
        problem = `a rollout of ${current.build} on channel ${input.channel} is ${current.state}; abort it first (rackboot rollout abort --channel ${input.channel})`;
        return current;
      }
      const started = startRollout({ ...input, previous: previous?.id, members: this.hosts.members(input.channel), now: this.now() });
      if (!started.ok) {
        problem = started.problem;
        return current;
      }
      return started.rollout;
    });
    if (problem !== undefined || stored === undefined) return { ok: false, problem: problem ?? 'not stored' };
    this.cached.set(stored.channel, stored);
    this.log.info(
      {
        event: 'rollout',
        channel: stored.channel,
        build: stored.build,
        previous: stored.previous,
        moved: stored.moved.map((host) => host.mac),
        hosts: stored.order.length,
      },
      'rollout started',
    );
    await this.publishBuilds();
    return { ok: true, rollout: stored };
  }

  /** pause, resume or abort a channel's rollout. */
  async command(channel: string, action: 'pause' | 'resume' | 'abort'): Promise<{ ok: true; rollout: Rollout } | { ok: false; problem: string }> {
    let problem: string | undefined = `channel ${channel} has no rollout`;
    const stored = await this.change(channel, (current) => {
      const result = command(current, action, this.now());
      problem = result.ok ? undefined : result.problem;
      return result.ok ? result.rollout : current;
    });
    return problem === undefined && stored !== undefined ? { ok: true, rollout: stored } : { ok: false, problem: problem ?? 'not stored' };
  }

  /** A boot script (or xen.cfg) of `build` went to `mac`, proven to be that host. */
  bootScript(mac: string, build: string): void {
    this.seen({ kind: 'boot-script', mac, build });
  }

  /**
   * Whether the host should reboot now, asked through its heartbeat
   * (rollout --reboot; `running` is the build its boot was handed). A host
   * whose profile says boot.allowReboot: false is never asked.
   */
  rebootFor(mac: string, running: string | undefined): boolean {
    for (const rollout of this.cached.values()) {
      if (!isActive(rollout) || !rebootWanted(rollout, mac, running) || !this.hosts.mayReboot(mac)) continue;
      this.log.info({ event: 'rollout', channel: rollout.channel, build: rollout.build, mac, running }, 'rollout: asked the host to reboot');
      this.seen({ kind: 'reboot-asked', mac });
      return true;
    }
    return false;
  }

  /** A report stored on `mac`'s timeline: its ready report, or a failure. */
  reported(mac: string, event: Pick<BootEvent, 'source' | 'stage' | 'detail'>): void {
    if (event.source !== 'runtime') return;
    if (event.stage === 'ready') {
      const domains = Number(/(?:^|\s)domains=(\d+)(?=\s|$)/.exec(event.detail ?? '')?.[1] ?? 0);
      this.seen({ kind: 'ready', mac, build: readyFacts(event.detail).build, domains, wantDomains: this.hosts.wantDomains(mac) });
    } else if (failureStages.has(event.stage)) {
      this.seen({ kind: 'failed', mac, detail: `${event.stage}${event.detail ? `: ${event.detail}` : ''}` });
    }
  }

  /** Read the store again and move every active rollout on (deadlines, waves). */
  async tick(): Promise<void> {
    try {
      await this.refresh();
      for (const rollout of this.list()) if (isActive(rollout)) await this.change(rollout.channel, (current) => advance(current, this.now()));
    } catch (error) {
      this.log.warn({ err: error }, 'rollouts: cannot read or move on the rollouts; hosts keep what they were given');
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  private seen(observation: RolloutObservation): void {
    for (const rollout of this.cached.values()) {
      if (!isActive(rollout) || !rollout.moved.some((host) => host.mac === observation.mac)) continue;
      void this.change(rollout.channel, (current) => advance(observe(current, observation, this.now()), this.now())).catch((error: unknown) =>
        this.log.warn({ err: error, channel: rollout.channel, mac: observation.mac }, 'rollouts: cannot record what a host did'),
      );
    }
  }

  /** One change of a stored rollout, logged; a rollout that ends done makes its build the channel's current one. */
  private async change(channel: string, fn: (current: Rollout) => Rollout): Promise<Rollout | undefined> {
    let before: Rollout | undefined;
    const stored = await this.store.update(channel, (current) => {
      before = current;
      return current === undefined ? undefined : fn(current);
    });
    if (stored === undefined) return undefined;
    this.cached.set(channel, stored);
    // Logged as soon as it is what the server hands out; the file for --keep follows.
    if (before !== undefined && stored !== before) {
      this.logChange(before, stored);
      for (const mac of newlySilent(before, stored)) this.resetSilent(stored, mac);
    }
    await this.publishBuilds();
    if (before?.state !== 'done' && stored.state === 'done') {
      try {
        await this.assets.switchTo(stored.build, channel);
        this.log.info({ event: 'rollout', channel, build: stored.build }, `rollout done: ${stored.build} is channel ${channel}'s current build`);
      } catch (error) {
        this.log.error(
          { event: 'rollout', channel, build: stored.build, err: error },
          `rollout done, but ${stored.build} could not be made channel ${channel}'s current build`,
        );
      }
    }
    return stored;
  }

  /** A moved host went silent on the new build: its BMC resets it into a network boot, which hands it the previous build. */
  private resetSilent(rollout: Rollout, mac: string): void {
    const fields = { event: 'rollout', channel: rollout.channel, build: rollout.build, mac };
    const power = this.options.power;
    if (power === undefined || !power.hasBmc(mac)) {
      this.log.warn(fields, 'rollout: the silent host names no BMC (bmc: in its profile); it comes back only by its watchdog (rackboot.watchdog) or by hand');
      return;
    }
    if (!this.hosts.mayReboot(mac)) {
      this.log.warn(fields, 'rollout: the silent host is not power-cycled, since its profile says boot.allowReboot: false');
      return;
    }
    void power.powerCycle(mac, `rollout of ${rollout.build} on channel ${rollout.channel}: the host went silent`);
  }

  private logChange(before: Rollout, after: Rollout): void {
    const fields = { event: 'rollout', channel: after.channel, build: after.build };
    for (const host of after.moved) {
      const was = before.moved.find((candidate) => candidate.mac === host.mac);
      if (was === undefined) this.log.info({ ...fields, mac: host.mac }, 'rollout: host moved to the new build');
      else if (was.healthyAt === undefined && host.healthyAt !== undefined)
        this.log.info({ ...fields, mac: host.mac }, 'rollout: host healthy on the new build');
      else if (was.failedAt === undefined && host.failedAt !== undefined)
        this.log.warn({ ...fields, mac: host.mac, reason: host.reason }, 'rollout: host failed on the new build');
    }
    if (before.state !== after.state && after.state !== 'done') {
      const line = `rollout ${after.state}${after.state === 'failed' ? `: the failed host and those not moved boot ${after.previous} again` : ''}`;
      (after.state === 'failed' ? this.log.warn : this.log.info).call(
        this.log,
        { ...fields, state: after.state, reason: after.reason, deadline: formatDuration(after.deadlineMs) },
        line,
      );
    }
  }

  private async refresh(): Promise<void> {
    this.cached = new Map((await this.store.list()).map((rollout) => [rollout.channel, rollout]));
    await this.publishBuilds();
  }

  /** The builds the active rollouts hand out, in the state folder when they changed (in-use.ts); a failed write is logged, not thrown. */
  private async publishBuilds(): Promise<void> {
    if (this.options.state === undefined) return;
    const builds = rolloutBuilds(this.list());
    const text = JSON.stringify(builds);
    if (text === this.publishedBuilds) return;
    try {
      await writeRolloutBuilds(this.options.state, builds);
      this.publishedBuilds = text;
    } catch (error) {
      this.log.error(
        { err: error, file: join(this.options.state, ROLLOUT_BUILDS_FILE) },
        'rollouts: cannot write the builds they use; "rackboot build --keep" may prune them',
      );
    }
  }
}
