import type { AssetStore, Build } from '../assets/builds.js';
import { normaliseMac } from '../profiles/mac.js';
import type { Profile } from '../profiles/profile.js';
import type { RelaySlot } from '../profiles/slot.js';
import type { Platform } from './facts.js';
import type { HostTokens } from '../tokens/host-token.js';
import type { TokenGrant } from '../tokens/grant.js';
import { decideTokenUse, type BootLedger, type TokenUse, type TokenUseDecision } from '../tokens/use.js';
import { hostBuild, type RolloutDecider } from './build-choice.js';
import { renderDomainConfig, renderFirstBoot, renderHostScript, renderRuntimeEnv, renderXenConfig } from './render.js';
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
   * (runtime.env: root hash and SSH keys; its domain configs) go only to a
   * request that shows a token of that host (token-use.ts), and a boot
   * script or xen.cfg carries a new boot token only when the requester is
   * proven to be the MAC (token-grant.ts).
   */
  secrets?: HostSecrets;
  /** Active rollouts (rollouts/rollouts.ts): which build a host on a rolled channel gets. */
  rollouts?: RolloutDecider;
}

export interface HostSecrets {
  tokens: HostTokens;
  ledger: BootLedger;
  /** Whether the requester at `address` is proven to be `mac` (see token-grant.ts). */
  prove(mac: string, address: string | undefined): Promise<TokenGrant>;
  /** A token shown in a way that signals trouble: flagged on the host's timeline and in the log. */
  alarm(mac: string, detail: string, requester: string | undefined): void;
  /** The clock (the shell's Date.now): token lifetimes and fetch windows are measured with it. */
  now: () => number;
}

export type HostFileName = 'boot.ipxe' | 'xen.cfg' | 'runtime.env' | 'domain.cfg' | 'first-boot';

export type HostFile =
  | {
      kind: 'file';
      body: string;
      boot: HostBoot;
      /** The requester is proven to be the host (a token was handed to it, or it showed one): its request belongs on the host's timeline. */
      attributed: boolean;
      /** Why a boot script or xen.cfg carries no token. */
      withheld?: string;
    }
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
    /** domain.cfg and first-boot: the guest's name. */
    domain?: string;
    /** Who asks: the token it showed and its address, for the files that hold secrets. */
    requester?: { token?: string | undefined; address?: string | undefined };
  },
): Promise<HostFile> {
  const mac = normaliseMac(request.mac);
  if (!mac) return { kind: 'refused', status: 400, message: `"${request.mac}" is not a MAC address` };
  const { assets, endpoints } = sources;
  const slot = sources.slotOf?.(mac);
  const problems = (slot === undefined ? sources.profileProblems?.(mac) : sources.profileProblems?.(mac, slot)) ?? [];
  const profile = slot === undefined ? sources.lookupProfile(mac) : sources.lookupProfile(mac, slot);
  const secret = request.name === 'runtime.env' || request.name === 'domain.cfg' || request.name === 'first-boot';
  const { token: presented, address } = request.requester ?? {};
  let attributed = false;
  let bootNonce: string | undefined;
  let bootBuild: string | undefined;
  if (secret && sources.secrets) {
    const use = authorizeHost(sources.secrets, {
      mac,
      use: request.name as 'runtime.env' | 'domain.cfg' | 'first-boot',
      token: presented,
      address,
      ...(request.name === 'first-boot' ? { domain: request.domain } : {}),
    });
    if (use.kind === 'refuse') {
      if (request.name === 'first-boot') {
        return {
          kind: 'refused',
          status: 403,
          message: `first-boot settings of ${mac}'s domain ${request.domain ?? ''} are served only to that guest, with its token: ${use.reason}`,
        };
      }
      const what = request.name === 'runtime.env' ? 'runtime.env' : `domain ${request.domain ?? ''}`;
      return { kind: 'refused', status: 403, message: `${what} of ${mac} is served only to that host, with its token: ${use.reason}` };
    }
    attributed = true;
    bootNonce = use.claims.kind === 'guest' ? undefined : use.claims.nonce;
    bootBuild = sources.secrets.ledger.buildOf(use.claims);
  }
  // The build: the one the request names (a script pinned it), else the one
  // this boot's script was handed (the ledger), else the host's own choice.
  let build: Build | undefined;
  let buildReason: string | undefined;
  if (request.buildId !== undefined) {
    build = await assets.build(request.buildId);
    if (!build) return { kind: 'refused', status: 404, message: `no build "${request.buildId}"` };
  } else {
    const handed = bootBuild === undefined ? undefined : await assets.build(bootBuild);
    ({ build, reason: buildReason } =
      handed !== undefined
        ? { build: handed, reason: "the build this boot's script was handed" }
        : await hostBuild(assets, profile, { mac, rollouts: sources.rollouts }));
  }
  // A boot script or xen.cfg: a new boot token when the requester is proven to be the MAC.
  let token: string | undefined;
  let withheld: string | undefined;
  if ((request.name === 'boot.ipxe' || request.name === 'xen.cfg') && sources.secrets) {
    const grant = await sources.secrets.prove(mac, address);
    if (grant.kind === 'grant') {
      const minted = sources.secrets.tokens.mintBoot(mac, address!, sources.secrets.now());
      sources.secrets.ledger.minted(minted.claims, build?.id);
      token = minted.token;
      bootNonce = minted.claims.nonce;
      attributed = true;
    } else {
      withheld = grant.reason;
    }
  }
  const guestToken = sources.secrets && bootNonce !== undefined ? (domain: string) => sources.secrets!.tokens.mintGuest(mac, bootNonce!, domain) : undefined;
  const boot = resolveHostBoot({
    mac,
    platform: request.platform,
    profile,
    problems,
    build,
    ...(buildReason === undefined ? {} : { buildReason }),
    endpoints,
    ...(token === undefined ? {} : { token }),
    ...(guestToken === undefined ? {} : { guestToken }),
    ...(withheld === undefined ? {} : { tokenWithheld: withheld }),
  });
  const file = (body: string): HostFile => ({ kind: 'file', body, boot, attributed, ...(withheld === undefined ? {} : { withheld }) });
  if (request.name === 'boot.ipxe') return file(renderHostScript(boot, endpoints));
  if (boot.kind !== 'boot') return { kind: 'refused', status: 404, message: `${boot.kind.replace('-', ' ')} for ${boot.mac}`, boot };
  if (request.name === 'runtime.env') return file(renderRuntimeEnv(boot.plan));
  if (request.name === 'domain.cfg' || request.name === 'first-boot') {
    const domain = boot.plan.domains.find((candidate) => candidate.name === request.domain);
    if (!domain) {
      const known = boot.plan.domains.map((candidate) => candidate.name);
      const list = known.length > 0 ? `it has ${known.join(', ')}` : 'it has none';
      return { kind: 'refused', status: 404, message: `no domain "${request.domain}" in ${boot.plan.profile.source} for ${mac} (${list})`, boot };
    }
    if (request.name === 'domain.cfg') return file(renderDomainConfig(boot.plan, domain, endpoints, guestToken?.(domain.name)));
    if (domain.image !== 'debian')
      return { kind: 'refused', status: 404, message: `domain ${domain.name} of ${mac} is no Debian guest; it has no first-boot settings`, boot };
    return file(renderFirstBoot(boot.plan, domain));
  }
  const config = renderXenConfig(boot.plan, request.entry);
  if (config === undefined) return { kind: 'refused', status: 404, message: `no Xen boot entry "${request.entry}" (want standard or testing)`, boot };
  return file(config);
}

/**
 * Whether a presented token lets `mac`'s host have `use` (token-use.ts),
 * with the ledger kept and alarms raised.
 */
export function authorizeHost(
  secrets: HostSecrets,
  request: { mac: string; use: TokenUse; token: string | undefined; address: string | undefined; domain?: string | undefined; stage?: string },
): TokenUseDecision {
  const { mac, use, token, address } = request;
  const claims = secrets.tokens.read(mac, token, request.domain);
  const now = secrets.now();
  const decision = decideTokenUse({
    mac,
    use,
    ...(request.stage === undefined ? {} : { stage: request.stage }),
    presented: token !== undefined && token !== '',
    claims,
    requester: address,
    standing: claims ? secrets.ledger.standing(claims) : { kind: 'current' },
    now,
  });
  if (decision.kind === 'refuse' && decision.alarm) secrets.alarm(mac, decision.alarm, address);
  if (decision.kind === 'allow' && decision.spend) secrets.ledger.spend(decision.claims, now);
  return decision;
}

/**
 * The generated files TFTP serves: "hosts/<mac>/boot.ipxe" (the BIOS
 * script, for iPXE builds that fetch their script by TFTP),
 * "hosts/<mac>/builds/<id>/[<entry>/]xen.cfg" and
 * "hosts/<mac>/domains/<name>.cfg" (refused: TFTP carries no token).
 * Not runtime.env: it carries the root hash.
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
