/**
 * A host profile as the rest of rackboot sees it: validated, normalised, and
 * traceable to the file it came from. The YAML contract is documented in the
 * README; see parse.ts for how files become Profiles.
 */

import type { RelaySlot } from './slot.js';

export type NetworkConfig =
  | { mode: 'dhcp' }
  | {
      mode: 'static';
      /** Dotted quad, without prefix. */
      address: string;
      /** CIDR prefix length, 0-32. */
      prefixLength: number;
      gateway?: string;
      dns: string[];
    };

export interface BootSettings {
  /** Boot menu entry booted by default ("standard", "testing", ...). */
  entry: string;
  /** Extra Xen hypervisor arguments. */
  xenArgs: string;
  /** Extra dom0 kernel arguments. */
  kernelArgs: string;
}

export interface Profile {
  /** Path of the YAML file this profile came from. */
  source: string;
  /** Normalised MAC (lower case, colon separated); null for the default profile and for a slot-only profile. */
  mac: string | null;
  /**
   * The slot (DHCP relay agent option 82) this profile is for, whatever the
   * MAC of the machine in it; see slot.ts. A MAC's own profile wins over a
   * slot's.
   */
  relay?: RelaySlot;
  /** Hostname; in the default profile "{mac}" is replaced by the MAC without separators. */
  hostname: string;
  network: NetworkConfig;
  /** crypt(3) SHA-512 hash ("$6$..."); never a plain password. */
  rootPasswordHash?: string;
  ssh: boolean;
  timezone: string;
  boot: BootSettings;
  /** Xen guests to start at boot (validated in a later stage). */
  domains: unknown[];
}

/** default.yaml's profile: the one that names neither a MAC nor a slot. */
export function isDefaultProfile(profile: Profile): boolean {
  return profile.mac === null && profile.relay === undefined;
}

/** The profile a MAC resolves to, with the default's placeholders filled in. */
export function profileForHost(profile: Profile, mac: string): Profile {
  if (profile.mac !== null) return profile;
  return { ...profile, hostname: profile.hostname.replaceAll('{mac}', mac.replaceAll(':', '')) };
}
