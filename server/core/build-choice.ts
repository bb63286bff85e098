import type { AssetStore, Build } from '../assets/builds.js';
import { DEFAULT_CHANNEL } from '../assets/manifest.js';
import { basename } from 'node:path';
import type { Profile } from '../profiles/profile.js';

/**
 * Which build a host boots, as its profile asks: a pinned build id
 * (`boot.build`), else the current build of its channel (`boot.channel`),
 * else the default channel's. Profiles, group files and slot files all
 * carry `boot:`, so a group or a relay slot names a channel for all its
 * machines.
 */
export type BuildWant = { kind: 'channel'; channel: string; setBy?: string } | { kind: 'pinned'; id: string; setBy: string };

/** What a profile (or none) asks for. Pure. */
export function buildWanted(profile: Profile | undefined): BuildWant {
  const setBy = profile === undefined ? undefined : basename(profile.source);
  if (profile?.boot.build !== undefined) return { kind: 'pinned', id: profile.boot.build, setBy: setBy! };
  if (profile?.boot.channel !== undefined && profile.boot.channel !== DEFAULT_CHANNEL) return { kind: 'channel', channel: profile.boot.channel, setBy: setBy! };
  return { kind: 'channel', channel: DEFAULT_CHANNEL };
}

/** The build a host gets, and why in words (for whatif, the boot script and the host table). */
export interface HostBuild {
  want: BuildWant;
  build: Build | undefined;
  /** "channel testing's current build (boot.channel in rack3.yaml)", or why there is none. */
  reason: string;
}

/** The words for a choice, given the build the want found (or not). Pure. */
export function explainBuild(want: BuildWant, build: Build | undefined): HostBuild {
  if (want.kind === 'pinned') {
    const reason =
      build === undefined
        ? `build ${want.id}, pinned by boot.build in ${want.setBy}, is not in the server's builds (pruned, or made on another server); change or remove the pin`
        : `pinned by boot.build in ${want.setBy}`;
    return { want, build, reason };
  }
  if (want.setBy === undefined) {
    return { want, build, reason: build === undefined ? 'the server has no boot parts yet (run "rackboot build")' : "the default channel's current build" };
  }
  const reason =
    build === undefined
      ? `channel ${want.channel} (boot.channel in ${want.setBy}) has no build yet (run "rackboot build --channel ${want.channel}")`
      : `channel ${want.channel}'s current build (boot.channel in ${want.setBy})`;
  return { want, build, reason };
}

/** What an active rollout of a channel gives a host (rollouts/rollout.ts: rolloutBuildFor). */
export interface RolloutDecider {
  buildFor(mac: string, channel: string): { build: string; reason: string } | undefined;
}

/**
 * The shell around it: look the wanted build up in the assets folder. A
 * host on a channel with an active rollout gets the build the rollout
 * gives it (the new one once moved, else the previous one); a pinned build
 * is never rolled.
 */
export async function hostBuild(
  assets: AssetStore,
  profile: Profile | undefined,
  host?: { mac: string; rollouts?: RolloutDecider | undefined },
): Promise<HostBuild> {
  const want = buildWanted(profile);
  const rolled = want.kind === 'channel' && host?.rollouts !== undefined ? host.rollouts.buildFor(host.mac, want.channel) : undefined;
  if (rolled !== undefined) {
    const build = await assets.build(rolled.build);
    return { want, build, reason: build === undefined ? `${rolled.reason}; but build ${rolled.build} is not in the server's builds` : rolled.reason };
  }
  const build = want.kind === 'pinned' ? await assets.build(want.id) : await assets.current(want.channel);
  return explainBuild(want, build);
}
