import { Subnet } from '../net/ipv4.js';
import { isDefaultProfile, type Profile } from './profile.js';

/**
 * Warnings about profiles that are each valid but wrong together or for
 * this site: two hosts with one hostname, and a static address that no
 * served subnet holds (full-mode DHCP then ignores that machine, and a
 * network boot cannot reach it). Warnings, not errors: the profiles are
 * still served. Pure.
 */

export interface ProfileWarning {
  /** The file it is about. */
  source: string;
  message: string;
}

export function profileWarnings(profiles: readonly Profile[], subnets?: readonly Subnet[]): ProfileWarning[] {
  const warnings: ProfileWarning[] = [];
  const byHostname = new Map<string, Profile[]>();
  for (const profile of profiles) {
    // The default's hostname is a pattern filled in per MAC.
    if (isDefaultProfile(profile)) continue;
    const key = profile.hostname.toLowerCase();
    byHostname.set(key, [...(byHostname.get(key) ?? []), profile]);
  }
  for (const [hostname, same] of byHostname) {
    if (same.length < 2) continue;
    const sources = same.map((profile) => profile.source).sort();
    for (const source of sources) {
      warnings.push({ source, message: `hostname ${hostname} is also the hostname in ${sources.filter((other) => other !== source).join(', ')}` });
    }
  }
  if (subnets !== undefined && subnets.length > 0) {
    for (const profile of profiles) {
      if (profile.network.mode !== 'static') continue;
      const { address } = profile.network;
      if (subnets.some((subnet) => subnet.contains(address))) continue;
      warnings.push({
        source: profile.source,
        message: `static address ${address}${profile.groupEntry === undefined ? '' : ` (${profile.hostname})`} is on none of the subnets rackboot serves (${subnets.map((subnet) => subnet.toString()).join(', ')}): its DHCP gives that machine no reservation, and the machine may not reach the server`,
      });
    }
  }
  return warnings.sort((a, b) => a.source.localeCompare(b.source) || a.message.localeCompare(b.message));
}

export function formatProfileWarning(warning: ProfileWarning): string {
  return `${warning.source}: warning: ${warning.message}`;
}
