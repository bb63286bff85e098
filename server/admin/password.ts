import { randomBytes } from 'node:crypto';
import { encrypt, verify } from 'unixcrypt';

/**
 * SHA-512 crypt(3) hashes ("$6$salt$hash") for profiles' rootPasswordHash,
 * the format /etc/shadow and `openssl passwd -6` use.
 */

/** crypt(3)'s salt alphabet. */
const saltAlphabet = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** 16 characters, the longest salt SHA-crypt uses. */
export function randomSalt(): string {
  return [...randomBytes(16)].map((byte) => saltAlphabet[byte & 63]).join('');
}

export function hashPassword(password: string, salt = randomSalt()): string {
  if (password.length === 0) throw new Error('an empty password cannot be hashed; leave rootPasswordHash out to keep root locked');
  if (!/^[./0-9A-Za-z]{1,16}$/.test(salt)) throw new Error(`salt "${salt}": want 1-16 characters of [./0-9A-Za-z]`);
  return encrypt(password, `$6$${salt}`);
}

/** True when `password` matches `hash`; false for a wrong password and for a hash unixcrypt cannot read. */
export function passwordMatches(password: string, hash: string): boolean {
  try {
    return verify(password, hash);
  } catch {
    return false;
  }
}
