import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIpv4, ipv4ToNumber, numberToIpv4 } from '../net/ipv4.js';

/**
 * Host tokens: what a host shows (in the X-Rackboot-Token header, never in
 * a URL) to get its secrets (runtime.env: root hash and SSH keys; its domain
 * configs) and to have its reports believed. Three kinds, each signed with
 * the server's key over the host's MAC and what the token is bound to:
 *
 * - boot:  "b.<nonce>.<issued>.<address>.<sig>", handed in a boot script or
 *          xen.cfg to a requester proven to be that MAC (see token-grant.ts),
 *          bound to the address it was handed to and to the time it was made;
 * - image: "i.<nonce>.<sig>", baked into a host's own CD/USB image, which
 *          only the admin downloads; bound to nothing else, like a password;
 * - guest: "g.<nonce>.<sig>", in a guest's domain config; bound to the guest's
 *          name and to the boot of its host (the nonce is that boot token's).
 *
 * Checking a signature needs no stored state, so a restarted server (or
 * another one with the same key) still knows a token; what a token may do
 * and whether it was used already is decided in token-use.ts.
 */

export interface BootTokenClaims {
  kind: 'boot';
  mac: string;
  nonce: string;
  /** Milliseconds since the epoch, to the second. */
  issuedAt: number;
  address: string;
}

export type HostTokenClaims = BootTokenClaims | { kind: 'image'; mac: string; nonce: string } | { kind: 'guest'; mac: string; nonce: string; domain: string };

/**
 * 9 random bytes, base64url. Tokens are kept short: a BIOS boot passes
 * Xen's, the kernel's and the initrd's command lines through iPXE's
 * multiboot loader, which has 512 bytes for all of them (see resolve.ts).
 */
const noncePattern = '[A-Za-z0-9_-]{12}';
/** HMAC-SHA256 cut to its first 128 bits, base64url. */
const signaturePattern = '[A-Za-z0-9_-]{22}';
const bootPattern = new RegExp(`^b\\.(${noncePattern})\\.([0-9a-z]{1,10})\\.([0-9a-f]{8})\\.(${signaturePattern})$`);
const imagePattern = new RegExp(`^i\\.(${noncePattern})\\.(${signaturePattern})$`);
const guestPattern = new RegExp(`^g\\.(${noncePattern})\\.(${signaturePattern})$`);

/** The longest token any kind makes; anything longer is not looked at. */
export const maximumTokenLength = 64;

/** The length of a nonce (base64url characters). */
export const nonceLength = 12;

export function newNonce(): string {
  return randomBytes(9).toString('base64url');
}

export class HostTokens {
  constructor(private readonly secret: Buffer) {
    if (secret.length < 32) throw new Error('the host token secret must be at least 32 bytes');
  }

  /** A token for one boot of `mac`, handed to `address` at `now`, and what it says. */
  mintBoot(mac: string, address: string, now: number, nonce = newNonce()): { token: string; claims: BootTokenClaims } {
    const issuedSeconds = Math.floor(now / 1000);
    const issued = issuedSeconds.toString(36);
    const hex = addressHex(address);
    return {
      token: `b.${nonce}.${issued}.${hex}.${this.sign(['boot', mac, nonce, issued, hex])}`,
      claims: { kind: 'boot', mac, nonce, issuedAt: issuedSeconds * 1000, address },
    };
  }

  /** The token of a host's own image: the same for the same nonce, so a cached image stays valid. */
  mintImage(mac: string, nonce: string): string {
    return `i.${nonce}.${this.sign(['image', mac, nonce])}`;
  }

  /** The token of guest `domain` of the boot whose token has `bootNonce`. */
  mintGuest(mac: string, bootNonce: string, domain: string): string {
    return `g.${bootNonce}.${this.sign(['guest', mac, bootNonce, domain])}`;
  }

  /**
   * What `token` says, when a server with this key made it for `mac` (and,
   * for a guest token, for guest `domain`); undefined for anything else.
   */
  read(mac: string, token: string | undefined, domain?: string): HostTokenClaims | undefined {
    if (token === undefined || token.length > maximumTokenLength) return undefined;
    let match = bootPattern.exec(token);
    if (match) {
      const [, nonce, issued, hex, signature] = match as unknown as [string, string, string, string, string];
      if (!this.signedBy(signature, ['boot', mac, nonce, issued, hex])) return undefined;
      return { kind: 'boot', mac, nonce, issuedAt: Number.parseInt(issued, 36) * 1000, address: hexAddress(hex) };
    }
    match = imagePattern.exec(token);
    if (match) return this.signedBy(match[2]!, ['image', mac, match[1]!]) ? { kind: 'image', mac, nonce: match[1]! } : undefined;
    match = guestPattern.exec(token);
    if (match && domain !== undefined && this.signedBy(match[2]!, ['guest', mac, match[1]!, domain])) return { kind: 'guest', mac, nonce: match[1]!, domain };
    return undefined;
  }

  private signedBy(presented: string, fields: string[]): boolean {
    const expected = Buffer.from(this.sign(fields));
    const given = Buffer.from(presented);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private sign(fields: string[]): string {
    return createHmac('sha256', this.secret)
      .update(['rackboot host token v2', ...fields].join('\0'))
      .digest()
      .subarray(0, 16)
      .toString('base64url');
  }
}

function addressHex(address: string): string {
  if (!isIpv4(address)) throw new Error(`a boot token is bound to an IPv4 address, not "${address}"`);
  return (ipv4ToNumber(address) >>> 0).toString(16).padStart(8, '0');
}

function hexAddress(hex: string): string {
  return numberToIpv4(Number.parseInt(hex, 16));
}
