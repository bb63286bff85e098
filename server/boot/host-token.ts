import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Per-boot host tokens. A host's secrets (root password hash, authorized
 * keys, domain configs) are served only to a request that shows the token
 * its boot script gave it (on the dom0 kernel command line, which only that
 * machine sees), or that comes from the address rackboot leased it.
 *
 * A token is `<nonce>.<mac>` signed with the server's secret: a fresh random
 * nonce per boot script, so each boot has its own token, and nothing to
 * store: any rackboot server with the same secret checks it, after a
 * restart too. The MAC is inside the signature, so one host's token is
 * worthless for another.
 */

/** 12 random bytes, base64url. */
const nonceLength = 16;

export class HostTokens {
  constructor(private readonly secret: Buffer) {
    if (secret.length < 32) throw new Error('the host token secret must be at least 32 bytes');
  }

  /** A new token for one boot of `mac` (normalised). */
  mint(mac: string, nonce = randomBytes(12).toString('base64url')): string {
    return `${nonce}.${this.sign(mac, nonce)}`;
  }

  /** True when `token` was minted for `mac` by a server with this secret. */
  verify(mac: string, token: string | undefined): boolean {
    if (token === undefined) return false;
    const match = /^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!match || match[1]!.length !== nonceLength) return false;
    const expected = Buffer.from(this.sign(mac, match[1]!));
    const presented = Buffer.from(match[2]!);
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  }

  private sign(mac: string, nonce: string): string {
    return createHmac('sha256', this.secret).update(`rackboot host token\0${mac}\0${nonce}`).digest('base64url');
  }
}
