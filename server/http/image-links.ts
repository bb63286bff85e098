import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived signed links to a host's own image (GET
 * /hosts/<mac>/rackboot.iso?expires=...&sig=...), made by the admin API for
 * a browser or a `curl` that has no admin token at hand. The signature
 * covers the MAC and the expiry, so a link opens one host's image until it
 * expires and nothing else. The key lives in this process only: a restart
 * ends every link, which at a lifetime of minutes costs nothing.
 */

export const defaultImageLinkSeconds = 15 * 60;

/** Why a link does not open the image. */
export type ImageLinkCheck = { ok: true } | { ok: false; reason: 'no link' | 'malformed link' | 'link expired' | 'bad signature' };

export class ImageLinks {
  private readonly key: Buffer;
  private readonly now: () => number;
  readonly lifetimeSeconds: number;

  constructor(options: { key?: Buffer; lifetimeSeconds?: number; now?: () => number } = {}) {
    this.key = options.key ?? randomBytes(32);
    this.lifetimeSeconds = options.lifetimeSeconds ?? defaultImageLinkSeconds;
    this.now = options.now ?? Date.now;
  }

  private sign(mac: string, expires: number): Buffer {
    return createHmac('sha256', this.key).update(`host image\0${mac}\0${expires}`).digest();
  }

  /** A link's path and query for a MAC (normalised, aa:bb:...) and when it expires (seconds since the epoch). */
  make(mac: string): { path: string; expires: number } {
    const expires = Math.floor(this.now() / 1000) + this.lifetimeSeconds;
    const sig = this.sign(mac, expires).toString('base64url');
    return { path: `/hosts/${mac.replaceAll(':', '-')}/rackboot.iso?expires=${expires}&sig=${sig}`, expires };
  }

  /** Whether a request's `expires` and `sig` query values open the image of `mac`. */
  check(mac: string, expiresValue: unknown, sigValue: unknown): ImageLinkCheck {
    if (expiresValue === undefined && sigValue === undefined) return { ok: false, reason: 'no link' };
    if (typeof expiresValue !== 'string' || typeof sigValue !== 'string' || !/^\d{1,12}$/.test(expiresValue) || !/^[A-Za-z0-9_-]{43}$/.test(sigValue)) {
      return { ok: false, reason: 'malformed link' };
    }
    const expires = Number(expiresValue);
    const presented = Buffer.from(sigValue, 'base64url');
    const wanted = this.sign(mac, expires);
    if (presented.length !== wanted.length || !timingSafeEqual(presented, wanted)) return { ok: false, reason: 'bad signature' };
    if (expires * 1000 <= this.now()) return { ok: false, reason: 'link expired' };
    return { ok: true };
  }
}
