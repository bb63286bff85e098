import type { Lease } from '../dhcp/leases/leases.js';
import type { Profile } from '../profiles/profile.js';
import type { LoadSample } from './load.js';
import type { TimelineEvent } from './timeline.js';

/**
 * What the status page shows, as one JSON document: the same data the page
 * renders, so scripts can read /status/state.json instead of scraping HTML.
 */

/** Where a host stands, newest first in the table. */
export interface HostStatus {
  mac: string;
  hostname: string | null;
  /** The profile file it boots with. */
  profile: string | null;
  /** Which files made its profile: the file, and the group entry it comes from or overrides (profileOrigin). */
  profileFrom: string | null;
  address: string | null;
  /** The last stage it reached ("dhcp-offer", "tftp", "boot-script", "booted", "ready", ...). */
  stage: string;
  /** ISO time of its last event. */
  lastSeen: string;
  /** Seconds from the first DHCP packet of its last boot to its ready report, once it got there. */
  lastBootSeconds: number | null;
  failures: number;
  lastFailure: string | null;
  /** Alarms about the host's token on its timeline (a copied token, two boots of one MAC), and the newest. */
  alarms: number;
  lastAlarm: string | null;
  /** The build its runtime last reported ready with (build=), and the Xen and dom0 kernel versions it ran; null before such a report. */
  build: string | null;
  xen: string | null;
  kernel: string | null;
  /** What its runtime last reported of its disks, in a line ("2 disks (1.0 GiB, 64 MiB), 1 volume group (vg0)"); null before any report. */
  storage: string | null;
  /** ISO time its last boot that got there reported ready (the time of lastBootSeconds). */
  lastReadyAt?: string | null;
  /** The relay agent slot it was last seen in (option 82: circuit-id "r1" remote-id "sw-rack3"); null when none. */
  slot?: string | null;
  /** The relay agent (option 82 remote-id: the rack's switch) it was last seen through; null without one. */
  rack?: string | null;
  /** The group file whose hosts: table lists it (rack3.yaml); null for a host with a file of its own, a slot's or the default profile. */
  group?: string | null;
}

export interface BuildStatus {
  id: string;
  created: string;
  files: Array<{ name: string; size: number; sha256: string }>;
}

export interface DownloadStatus {
  name: string;
  size: number;
  sha256: string;
  url: string;
  /** The channel its build was made for ("default" without --channel). */
  channel?: string;
  /** The channels whose current build it is. */
  currentFor?: string[];
  /** What changed since the build before it, a line each. */
  changes?: string[];
}

/** A channel and its current build. */
export interface ChannelStatus {
  name: string;
  build: string;
  created: string;
  /** What changed in that build since the one before it (`rackboot build --if-changed`), a line each. */
  changes?: string[];
}

/** A channel's newest rollout, and where each of its hosts stands (waiting, moved, booting, healthy, failed). */
export interface RolloutStatus {
  channel: string;
  build: string;
  previous: string;
  state: string;
  reason?: string;
  hosts: Array<{ mac: string; stage: string; reason?: string }>;
}

export interface ServerStatus {
  address: string;
  interface: string;
  dhcp: string;
  startedAt: string;
  version: string;
  /** What the admin should look at now, such as another DHCP server on the network. */
  warnings?: string[];
}

export interface StatusSnapshot {
  server: ServerStatus;
  hosts: HostStatus[];
  build: BuildStatus | null;
  /** Every channel with a current build, the default one first. */
  channels: ChannelStatus[];
  downloads: DownloadStatus[];
  /** Each channel's newest rollout. */
  rollouts: RolloutStatus[];
  load: LoadSample | null;
}

/** Where the status page gets each part; every part is read fresh for each snapshot. */
export interface StatusSources {
  server: ServerStatus;
  hosts(): HostStatus[] | Promise<HostStatus[]>;
  build(): Promise<BuildStatus | undefined>;
  channels?(): Promise<ChannelStatus[]>;
  downloads(): Promise<DownloadStatus[]>;
  rollouts?(): RolloutStatus[];
  load(): LoadSample | undefined;
  warnings?(): string[];
  /** One host's page (status/host-page-data.ts); undefined for a host never seen. */
  host?(mac: string): HostDetail | undefined | Promise<HostDetail | undefined>;
}

export async function takeSnapshot(sources: StatusSources): Promise<StatusSnapshot> {
  const [hosts, build, channels, downloads] = await Promise.all([sources.hosts(), sources.build(), sources.channels?.() ?? [], sources.downloads()]);
  return {
    server: { ...sources.server, warnings: sources.warnings?.() ?? [] },
    hosts,
    build: build ?? null,
    channels,
    downloads,
    rollouts: sources.rollouts?.() ?? [],
    load: sources.load() ?? null,
  };
}

/** What a host's page is made from (hostPageData makes it fit to show). */
export interface HostDetail {
  host: HostStatus;
  /** Its profile, secrets and all: hostPageData keeps only what is open. */
  profile: Profile | undefined;
  lease: Lease | undefined;
  /** Its timeline, oldest first (the newest part of it the store returns). */
  timeline: TimelineEvent[];
  /** The build it would boot now, and why (core/build-choice.ts). */
  nextBuild?: { id: string | null; reason: string };
}
