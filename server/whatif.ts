import { AssetStore } from './assets/builds.js';
import { hostBuild, type RolloutDecider } from './core/build-choice.js';
import { ClientArch, type Platform } from './core/facts.js';
import { renderHostScript, renderRuntimeEnv, renderXenConfig } from './core/render.js';
import { chooseBootFile, resolveHostBoot, type ServerEndpoints } from './core/resolve.js';
import { createLogger } from './log.js';
import { normaliseMac } from './profiles/mac.js';
import { formatProfileError } from './profiles/error.js';
import { ProfileDirectory } from './profiles/store.js';
import { profileOrigin, type Profile } from './profiles/profile.js';
import { storageWithoutSecrets } from './profiles/storage.js';
import { formatSlot, slotIdFromText, type RelaySlot } from './profiles/slot.js';
import { isActive, rolloutBuildFor, type Rollout } from './rollouts/rollout.js';

/**
 * `rackboot whatif MAC`: the same decisions `serve` makes, printed instead
 * of served, so an admin can check a profile before a machine boots.
 */
export async function whatif(options: {
  mac: string;
  /** The slot to resolve in (option 82), as a profile writes it. */
  circuitId?: string;
  remoteId?: string;
  platform: Platform;
  profiles: string;
  assets: string;
  endpoints: ServerEndpoints;
  /**
   * The running server's rollouts (rollouts live in its state, which it
   * holds): they can give a host another build than its channel's current
   * one. Undefined: not asked, said in the answer.
   */
  rollouts?: { from: string; rollouts: Rollout[] };
}) {
  const mac = normaliseMac(options.mac);
  if (!mac) throw new Error(`"${options.mac}" is not a MAC address (want e.g. 52:54:00:12:34:56)`);
  const slot = slotOption(options.circuitId, options.remoteId);
  const log = createLogger({ level: 'silent', pretty: false });
  const profiles = await ProfileDirectory.open(options.profiles, log);
  const profile = profiles.lookup(mac, slot);
  const { build, reason: buildReason } = await hostBuild(new AssetStore(options.assets), profile, {
    mac,
    rollouts: rolloutDecider(options.rollouts?.rollouts),
  });
  const problems = profiles.problemsFor(mac, slot).map(formatProfileError);
  const reservation = profiles.reservationFor(mac, slot);
  const boot = resolveHostBoot({ mac, platform: options.platform, profile, problems, build, buildReason, endpoints: options.endpoints });
  const firmwareArch = options.platform === 'bios' ? ClientArch.biosX86 : ClientArch.efiBc;
  const facts = { mac, arch: firmwareArch, platform: options.platform, isPxe: true, isHttpBoot: false, isIpxe: false };
  profiles.close();
  return {
    mac,
    ...(slot === undefined ? {} : { slot: formatSlot(slot) }),
    platform: options.platform,
    profile: shown(boot.kind === 'boot' ? boot.plan.profile : profile),
    profileFrom: profile === undefined ? null : profileOrigin(profile),
    reservation: reservation === undefined ? null : { address: `${reservation.address}/${reservation.prefixLength}`, source: reservation.source },
    profileErrors: profiles.errors().map(formatProfileError),
    build: build ? build.id : null,
    // Which build and why: the default channel's, the profile's channel's, or a pinned one (core/build-choice.ts).
    buildFrom: buildReason,
    rolloutsFrom:
      options.rollouts === undefined
        ? 'not asked (no --server): a rollout on the channel would give this host its previous or its new build'
        : options.rollouts.from,
    dhcp: {
      firmware: chooseBootFile(facts, options.endpoints),
      ipxe: chooseBootFile({ ...facts, isPxe: false, isIpxe: true }, options.endpoints),
    },
    result: boot.kind,
    ...(boot.kind === 'boot'
      ? {
          xenCommandLine: boot.plan.xenCommandLine,
          kernelCommandLine: boot.plan.kernelCommandLine,
          files: boot.plan.urls,
          menu: boot.plan.menu.map((item) => item.name),
          defaultEntry: boot.plan.defaultEntry,
          domains: boot.plan.domains.map((domain) => ({ name: domain.name, mac: domain.mac, start: domain.start })),
          notes: boot.plan.notes,
          // As the host gets it, but for the CHAP secrets.
          runtimeEnv: renderRuntimeEnv({ ...boot.plan, profile: shown(boot.plan.profile)! }),
        }
      : {}),
    script: renderHostScript(boot, options.endpoints),
    ...(boot.kind === 'boot' && options.platform === 'efi64' ? { xenCfg: renderXenConfig(boot.plan) } : {}),
  };
}

/** The rollouts as a build decider: an active rollout of the host's channel decides (rollouts/rollout.ts: rolloutBuildFor). Pure. */
export function rolloutDecider(rollouts: readonly Rollout[] | undefined): RolloutDecider | undefined {
  if (rollouts === undefined) return undefined;
  return {
    buildFor(mac, channel) {
      const rollout = rollouts.find((candidate) => candidate.channel === channel);
      return rollout === undefined || !isActive(rollout) ? undefined : rolloutBuildFor(rollout, mac);
    },
  };
}

function slotOption(circuitId: string | undefined, remoteId: string | undefined): RelaySlot | undefined {
  if (circuitId === undefined) {
    if (remoteId !== undefined) throw new Error('--remote-id needs --circuit-id: a slot is named by its circuit-id');
    return undefined;
  }
  const id = (name: string, text: string) => {
    const parsed = slotIdFromText(text);
    if ('problem' in parsed) throw new Error(`--${name} ${JSON.stringify(text)}: ${parsed.problem}`);
    return parsed.hex;
  };
  const circuit = id('circuit-id', circuitId);
  return remoteId === undefined ? { circuitId: circuit } : { circuitId: circuit, remoteId: id('remote-id', remoteId) };
}

/** The profile as whatif prints it: the CHAP secrets hidden (they travel only to the host). */
function shown(profile: Profile | undefined): Profile | null {
  if (profile === undefined) return null;
  return profile.storage === undefined ? profile : { ...profile, storage: storageWithoutSecrets(profile.storage) };
}
