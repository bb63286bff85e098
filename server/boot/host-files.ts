import type { AssetStore } from '../assets/builds.js';
import { normaliseMac } from '../profiles/mac.js';
import type { Profile } from '../profiles/profile.js';
import type { RelaySlot } from '../profiles/slot.js';
import type { Platform } from './facts.js';
import { renderDomainConfig, renderHostScript, renderRuntimeEnv, renderXenConfig } from './render.js';
import { resolveHostBoot, type HostBoot, type ServerEndpoints } from './resolve.js';

/** What the per-host answers are made from; the same for HTTP and TFTP. */
export interface HostSources {
  assets: AssetStore;
  /** The profile a MAC seen in `slot` resolves to (its own, else the slot's, else the default), or undefined. */
  lookupProfile: (mac: string, slot?: RelaySlot) => Profile | undefined;
  /**
   * The slot the DHCP server last saw the MAC in (option 82; see
   * profiles/sightings.ts): HTTP and TFTP requests carry only the MAC.
   */
  slotOf?: (mac: string) => RelaySlot | undefined;
  /** Errors of a host's own profile file (or its slot's) when it is not served (shown on the machine's console). */
  profileProblems?: (mac: string, slot?: RelaySlot) => string[];
  endpoints: ServerEndpoints;
  /**
   * Per-host secrets: when set, the files that carry a host's secrets
   * (runtime.env: root hash and SSH keys; its domain configs) are served
   * only to a request that shows this boot's token, or that comes from the
   * address rackboot leased the MAC. Boot scripts and xen.cfg get a fresh token.
   */
  secrets?: {
    tokens: { mint(mac: string, nonce?: string): string; verify(mac: string, token: string | undefined): boolean };
    /** The address the MAC holds a bound lease on (or its reservation), if any. */
    addressOf(mac: string): string | undefined;
  };
}

export type HostFileName = 'boot.ipxe' | 'xen.cfg' | 'runtime.env' | 'domain.cfg';

export type HostFile =
  | { kind: 'file'; body: string; boot: HostBoot }
  | { kind: 'refused'; status: 400 | 403 | 404; message: string; boot?: HostBoot };

/**
 * A generated per-host file: the boot script, xen.cfg or the runtime
 * settings, rendered from the one boot decision. HTTP and TFTP both serve
 * these through this function, so a host gets the same bytes either way.
 */
export async function hostFile(
  sources: HostSources,
  request: {
    mac: string;
    name: HostFileName;
    platform: Platform;
    buildId?: string;
    /** xen.cfg: the Xen entry of the menu (standard, testing); the profile's own when left out. */
    entry?: string;
    /** domain.cfg: the guest's name. */
    domain?: string;
    /** Who asks: the token it showed and its address, for the files that hold secrets. */
    requester?: { token?: string; address?: string };
  },
): Promise<HostFile> {
  const mac = normaliseMac(request.mac);
  if (!mac) return { kind: 'refused', status: 400, message: `"${request.mac}" is not a MAC address` };
  const { assets, endpoints } = sources;
  const build = request.buildId === undefined ? await assets.current() : await assets.build(request.buildId);
  if (request.buildId !== undefined && !build) return { kind: 'refused', status: 404, message: `no build "${request.buildId}"` };
  const slot = sources.slotOf?.(mac);
  const problems = (slot === undefined ? sources.profileProblems?.(mac) : sources.profileProblems?.(mac, slot)) ?? [];
  const profile = slot === undefined ? sources.lookupProfile(mac) : sources.lookupProfile(mac, slot);
  const secret = request.name === 'runtime.env' || request.name === 'domain.cfg';
  if (secret && sources.secrets) {
    const { token, address } = request.requester ?? {};
    const leased = sources.secrets.addressOf(mac);
    if (!sources.secrets.tokens.verify(mac, token) && (address === undefined || leased === undefined || address !== leased)) {
      return {
        kind: 'refused',
        status: 403,
        message: `${request.name === 'runtime.env' ? 'runtime.env' : `domain ${request.domain ?? ''}`} of ${mac} is served only to that host (its boot token, or its leased address${leased ? ` ${leased}` : ''}); ${address ?? 'this client'} showed ${token === undefined ? 'no token' : 'a wrong token'}`,
      };
    }
  }
  const mints = request.name === 'boot.ipxe' || request.name === 'xen.cfg';
  const token = mints && sources.secrets ? sources.secrets.tokens.mint(mac) : undefined;
  const boot = resolveHostBoot({ mac, platform: request.platform, profile, problems, build, endpoints, ...(token === undefined ? {} : { token }) });
  if (request.name === 'boot.ipxe') return { kind: 'file', body: renderHostScript(boot, endpoints), boot };
  if (boot.kind !== 'boot') return { kind: 'refused', status: 404, message: `${boot.kind.replace('-', ' ')} for ${boot.mac}`, boot };
  if (request.name === 'runtime.env') return { kind: 'file', body: renderRuntimeEnv(boot.plan), boot };
  if (request.name === 'domain.cfg') {
    const domain = boot.plan.domains.find((candidate) => candidate.name === request.domain);
    if (!domain) {
      const known = boot.plan.domains.map((candidate) => candidate.name);
      const list = known.length > 0 ? `it has ${known.join(', ')}` : 'it has none';
      return { kind: 'refused', status: 404, message: `no domain "${request.domain}" in ${boot.plan.profile.source} for ${mac} (${list})`, boot };
    }
    return { kind: 'file', body: renderDomainConfig(boot.plan, domain, endpoints), boot };
  }
  const config = renderXenConfig(boot.plan, request.entry);
  if (config === undefined) return { kind: 'refused', status: 404, message: `no Xen boot entry "${request.entry}" (want standard or testing)`, boot };
  return { kind: 'file', body: config, boot };
}

/**
 * The generated files TFTP serves: "hosts/<mac>/boot.ipxe" (the BIOS
 * script, for iPXE builds that fetch their script by TFTP),
 * "hosts/<mac>/builds/<id>/[<entry>/]xen.cfg" and
 * "hosts/<mac>/domains/<name>.cfg". Not runtime.env: it carries the root
 * hash, and TFTP cannot tell one client from another.
 */
export function tftpHostFile(path: string): { mac: string; name: HostFileName; buildId?: string; entry?: string; domain?: string } | undefined {
  const parts = path.split('/');
  if (parts[0] !== 'hosts' || parts[1] === undefined) return undefined;
  if (parts.length === 3 && parts[2] === 'boot.ipxe') return { mac: parts[1], name: 'boot.ipxe' };
  if (parts.length === 5 && parts[2] === 'builds' && parts[3] && parts[4] === 'xen.cfg') return { mac: parts[1], name: 'xen.cfg', buildId: parts[3] };
  if (parts.length === 6 && parts[2] === 'builds' && parts[3] && parts[4] && parts[5] === 'xen.cfg') {
    return { mac: parts[1], name: 'xen.cfg', buildId: parts[3], entry: parts[4] };
  }
  const domain = parts.length === 4 && parts[2] === 'domains' ? domainConfigName(parts[3]!) : undefined;
  if (domain !== undefined) return { mac: parts[1], name: 'domain.cfg', domain };
  return undefined;
}

/** "web1.cfg" -> "web1"; undefined for any other file name. */
export function domainConfigName(file: string): string | undefined {
  return file.endsWith('.cfg') && file.length > 4 ? file.slice(0, -4) : undefined;
}
