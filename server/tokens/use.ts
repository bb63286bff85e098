import type { BootTokenClaims, HostTokenClaims } from './host-token.js';

/**
 * What a presented host token may do, and when its showing is an alarm.
 * decideTokenUse is pure; BootLedger is the little state it reads: each
 * MAC's newest boot token and whether its runtime.env went out already.
 */

/**
 * What the token is shown for: a host's secrets (runtime.env, a domain
 * config), a guest's own first-boot settings, or a report (its stage;
 * "alive" for the heartbeat).
 */
export type TokenUse = 'runtime.env' | 'domain.cfg' | 'first-boot' | 'event';

/** The stages a guest reports: it is up, or its image could not be had. */
const guestStages: readonly string[] = ['guest-ready', 'guest-failed'];

/** A boot's token takes runtime.env within this time of being handed out, and only once. */
export const runtimeEnvWindowMs = 15 * 60 * 1000;
/**
 * ...except for the runtime's own retries: a fetch whose answer was lost or
 * came too late for its timeout is asked again from the same address within
 * seconds, and must not lock the host out of its secrets.
 */
export const runtimeEnvRetryMs = 2 * 60 * 1000;
export const runtimeEnvMaximumFetches = 5;
/** A boot's token fetches domain configs and sends reports for this long (guests have tokens of their own). */
export const bootTokenLifetimeMs = 24 * 60 * 60 * 1000;

/** What the ledger knows of a boot token's nonce. */
export type BootStanding =
  /** The MAC's newest boot, or one the ledger never saw (made before a restart, or by another server with the key). */
  | { kind: 'current'; runtimeEnv?: { firstAt: number; fetches: number } }
  /** A newer boot script went to this MAC since: a token of an older boot. */
  | { kind: 'superseded'; newer: { address: string; issuedAt: number } };

export type TokenUseDecision =
  | { kind: 'allow'; claims: HostTokenClaims; /** runtime.env went out: mark the boot spent. */ spend: boolean }
  | { kind: 'refuse'; reason: string; /** Set when the showing itself is a sign of trouble: flagged on the host's timeline. */ alarm?: string };

export function decideTokenUse(input: {
  mac: string;
  use: TokenUse;
  /** With use 'event': the stage reported. */
  stage?: string;
  /** A token was presented at all. */
  presented: boolean;
  /** What it says, when it is a token of this MAC (host-token.ts read); undefined for anything else. */
  claims: HostTokenClaims | undefined;
  requester: string | undefined;
  /** The ledger's view of the claims' nonce (boot and guest tokens). */
  standing: BootStanding;
  now: number;
}): TokenUseDecision {
  const { mac, use, claims, requester, standing, now } = input;
  const from = requester ?? 'an unknown address';
  if (!input.presented) return { kind: 'refuse', reason: 'no token' };
  if (claims === undefined) return { kind: 'refuse', reason: `a token that is not ${mac}'s` };
  const twoBoots = (what: string) =>
    standing.kind === 'superseded'
      ? `two boots of ${mac} at once? ${what} of an earlier boot was shown from ${from} after a newer boot script went to ${standing.newer.address} at ${new Date(standing.newer.issuedAt).toISOString()}`
      : undefined;
  switch (claims.kind) {
    case 'image':
      return { kind: 'allow', claims, spend: false };
    case 'guest': {
      // The token is read against the domain asked for (host-token.ts), so it is this guest's own.
      if (use !== 'event' && use !== 'first-boot') {
        return { kind: 'refuse', reason: `a guest token (of ${claims.domain}) is for the guest's reports and first-boot settings only` };
      }
      if (use === 'event' && !guestStages.includes(input.stage ?? '')) {
        return { kind: 'refuse', reason: `a guest's token reports ${guestStages.join(' or ')} only, not ${input.stage ?? 'this'}` };
      }
      const alarm = twoBoots(`a token of guest ${claims.domain}`);
      if (alarm) return { kind: 'refuse', reason: 'the token of a guest of an earlier boot', alarm };
      return { kind: 'allow', claims, spend: false };
    }
    case 'boot': {
      if (requester !== claims.address) {
        return {
          kind: 'refuse',
          reason: `this boot's token was handed to ${claims.address}, not ${from}`,
          alarm: `${mac}'s boot token (handed to ${claims.address}) was shown from ${from}: a copied token?`,
        };
      }
      const alarm = twoBoots('the boot token');
      if (alarm) return { kind: 'refuse', reason: 'the token of an earlier boot', alarm };
      if (use === 'first-boot') return { kind: 'refuse', reason: "a guest's first-boot settings go to the guest itself, with its own token" };
      const age = now - claims.issuedAt;
      if (use === 'runtime.env') {
        if (age > runtimeEnvWindowMs)
          return {
            kind: 'refuse',
            reason: `the boot token is ${Math.round(age / 60_000)} minutes old; runtime.env goes out within ${runtimeEnvWindowMs / 60_000} minutes of the boot script`,
          };
        const served = standing.kind === 'current' ? standing.runtimeEnv : undefined;
        if (served !== undefined && (now - served.firstAt > runtimeEnvRetryMs || served.fetches >= runtimeEnvMaximumFetches)) {
          return {
            kind: 'refuse',
            reason: 'this boot fetched its runtime.env already',
            alarm: `runtime.env of ${mac} was asked for again with one boot's token, from ${from}`,
          };
        }
        return { kind: 'allow', claims, spend: true };
      }
      if (age > bootTokenLifetimeMs) return { kind: 'refuse', reason: `the boot token is older than ${bootTokenLifetimeMs / 3_600_000} hours` };
      return { kind: 'allow', claims, spend: false };
    }
  }
}

interface LedgerBoot {
  nonce: string;
  address: string;
  issuedAt: number;
  /** The build its boot script or xen.cfg pinned: runtime.env and the domain configs of this boot come from it too. */
  build?: string;
  /** When runtime.env first went out with this token, and how often. */
  runtimeEnv?: { firstAt: number; fetches: number };
}

/**
 * Each MAC's newest boot token, the few before it, and which boots fetched
 * their runtime.env. In memory, at most `capacity` MACs (the least recently
 * minted go first): tokens are minted only for requesters proven to be
 * their MAC, so strangers fill it no faster than they can hold leases or
 * neighbour entries. A restart forgets it; a token then counts as current
 * until a newer one is minted for its MAC.
 */
export class BootLedger {
  private readonly boots = new Map<string, { current: LedgerBoot; earlier: string[] }>();

  constructor(private readonly capacity = 65_536) {}

  /** A boot token went out, in a file of `build`. */
  minted(claims: BootTokenClaims, build?: string): void {
    const previous = this.boots.get(claims.mac);
    this.boots.delete(claims.mac);
    const earlier = previous ? [previous.current.nonce, ...previous.earlier].slice(0, 8) : [];
    const current: LedgerBoot = { nonce: claims.nonce, address: claims.address, issuedAt: claims.issuedAt, ...(build === undefined ? {} : { build }) };
    this.boots.set(claims.mac, { current, earlier });
    if (this.boots.size > this.capacity) this.boots.delete(this.boots.keys().next().value!);
  }

  standing(claims: HostTokenClaims): BootStanding {
    const entry = this.boots.get(claims.mac);
    if (claims.kind === 'image' || entry === undefined) return { kind: 'current' };
    const { current } = entry;
    if (current.nonce === claims.nonce) return { kind: 'current', ...(current.runtimeEnv ? { runtimeEnv: { ...current.runtimeEnv } } : {}) };
    const older = entry.earlier.includes(claims.nonce) || (claims.kind === 'boot' && claims.issuedAt < current.issuedAt);
    return older ? { kind: 'superseded', newer: { address: current.address, issuedAt: current.issuedAt } } : { kind: 'current' };
  }

  /**
   * The build the boot of this token was handed (minted), while it is its
   * MAC's newest boot; undefined after a restart or for another token.
   */
  buildOf(claims: HostTokenClaims): string | undefined {
    const current = this.boots.get(claims.mac)?.current;
    return current !== undefined && current.nonce === claims.nonce ? current.build : undefined;
  }

  /** runtime.env went out with this boot's token at `now`. */
  spend(claims: HostTokenClaims, now: number): void {
    if (claims.kind !== 'boot') return;
    let entry = this.boots.get(claims.mac);
    if (entry === undefined) {
      entry = { current: { nonce: claims.nonce, address: claims.address, issuedAt: claims.issuedAt }, earlier: [] };
      this.boots.set(claims.mac, entry);
    }
    if (entry.current.nonce !== claims.nonce) return;
    const served = entry.current.runtimeEnv;
    entry.current.runtimeEnv = served ? { firstAt: served.firstAt, fetches: served.fetches + 1 } : { firstAt: now, fetches: 1 };
  }
}
