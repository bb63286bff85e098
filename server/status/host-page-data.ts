import { basename } from 'node:path';
import { DEFAULT_CHANNEL } from '../assets/manifest.js';
import { profileOrigin, type Profile } from '../profiles/profile.js';
import { formatSlot } from '../profiles/slot.js';
import { recentBoots, type BootPicture } from './boots.js';
import type { HostDetail, HostStatus } from './snapshot.js';

/**
 * One host's page as JSON (/status/hosts/<mac>.json): its row, what its
 * profile says, its build, lease and recent boots. Open like the rest of
 * the status page, so the profile is copied field by field from a list of
 * what may be shown: never the root password hash, SSH keys, the BMC's
 * user or password file, a guest's first-boot secrets, kernel or Xen
 * arguments (an admin may have put a secret there). Pure.
 */

/** How many boots the page draws. */
export const shownBoots = 5;

/** What the page shows of a profile: nothing secret, and nothing that could be. */
export interface OpenProfile {
  /** The file it comes from, and how (own file, group entry, slot, default). */
  file: string;
  from: string;
  hostname: string;
  network: { mode: 'dhcp' } | { mode: 'static'; address: string; gateway: string | null; dns: string[] };
  /** The slot the profile is for (a slot's profile). */
  slot: string | null;
  /** The group file whose table lists the host. */
  group: string | null;
  boot: { entry: string; menuTimeout: number; channel: string; pinnedBuild: string | null; allowReboot: boolean };
  ssh: boolean;
  /** How many authorized keys root has; the keys are not shown. */
  sshKeys: number;
  /** Whether a root password hash is set; the hash is not shown. */
  rootPassword: boolean;
  timezone: string;
  aptUpdate: boolean;
  /** Whether a BMC is configured; its address, user and password file are not shown. */
  bmc: boolean;
  domains: Array<{ name: string; memory: number; vcpus: number; autostart: boolean; image: string }>;
}

export interface HostPageData {
  mac: string;
  host: HostStatus;
  profile: OpenProfile | null;
  build: {
    /** What its runtime last reported ready with. */
    reported: string | null;
    xen: string | null;
    kernel: string | null;
    /** The channel its profile follows, or the build it pins. */
    channel: string;
    pinned: string | null;
    /** The build it would boot now, and why. */
    next: string | null;
    nextReason: string | null;
  };
  lease: { address: string; state: string; expiresAt: string; hostname: string | null } | null;
  /** Its newest boots, newest first. */
  boots: BootPicture[];
}

export function openProfile(profile: Profile): OpenProfile {
  const network = profile.network;
  return {
    file: basename(profile.source),
    from: profileOrigin(profile, basename),
    hostname: profile.hostname,
    network:
      network.mode === 'dhcp'
        ? { mode: 'dhcp' }
        : { mode: 'static', address: `${network.address}/${network.prefixLength}`, gateway: network.gateway ?? null, dns: [...network.dns] },
    slot: profile.relay === undefined ? null : formatSlot(profile.relay),
    group: profile.groupEntry === undefined ? null : basename(profile.source),
    boot: {
      entry: profile.boot.entry,
      menuTimeout: profile.boot.menuTimeout,
      channel: profile.boot.channel ?? DEFAULT_CHANNEL,
      pinnedBuild: profile.boot.build ?? null,
      allowReboot: profile.boot.allowReboot !== false,
    },
    ssh: profile.ssh,
    sshKeys: profile.sshAuthorizedKeys.length,
    rootPassword: profile.rootPasswordHash !== undefined,
    timezone: profile.timezone,
    aptUpdate: profile.aptUpdate,
    bmc: profile.bmc !== undefined,
    domains: profile.domains.map((domain) => ({
      name: domain.name,
      memory: domain.memory,
      vcpus: domain.vcpus,
      autostart: domain.autostart,
      image: domain.image ?? 'busybox',
    })),
  };
}

export function hostPageData(detail: HostDetail): HostPageData {
  const { host, profile, lease } = detail;
  return {
    mac: host.mac,
    host,
    profile: profile === undefined ? null : openProfile(profile),
    build: {
      reported: host.build,
      xen: host.xen,
      kernel: host.kernel,
      channel: profile?.boot.channel ?? DEFAULT_CHANNEL,
      pinned: profile?.boot.build ?? null,
      next: detail.nextBuild?.id ?? null,
      nextReason: detail.nextBuild?.reason ?? null,
    },
    lease:
      lease === undefined
        ? null
        : { address: lease.address, state: lease.state, expiresAt: new Date(lease.expiresAt).toISOString(), hostname: lease.hostname ?? null },
    boots: recentBoots(detail.timeline, shownBoots),
  };
}
