/**
 * Checks for the string fields of a profile. Each returns the problem as the
 * message the user sees (without the file and field prefix), or undefined.
 */

/** Boot menu entries a profile may choose (boot.entry). */
export const bootEntryNames = ['standard', 'testing', 'guest', 'memtest'] as const;
export type BootEntryName = (typeof bootEntryNames)[number];

export function isBootEntryName(name: string): name is BootEntryName {
  return (bootEntryNames as readonly string[]).includes(name);
}

const hostnameLabel = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * RFC 1123 section 2.1 host names: dot-separated labels of letters, digits and
 * "-", 1-63 characters each, not starting or ending with "-", 253 in all (the
 * limit that fits a 255-octet DNS name). A trailing dot is refused: the name
 * becomes /etc/hostname, where it would be kept literally.
 */
export function hostnameProblem(hostname: string): string | undefined {
  const quoted = JSON.stringify(hostname);
  if (hostname === '') return 'is empty; want a host name such as node01';
  if (hostname.length > 253) return `${quoted} is ${hostname.length} characters long; a host name has at most 253`;
  for (const label of hostname.split('.')) {
    if (label === '') return `${quoted} has an empty label (two dots in a row, or a dot at the start or end)`;
    if (label.length > 63) return `${quoted}: label "${label.slice(0, 16)}..." is ${label.length} characters long; at most 63 (RFC 1123)`;
    if (hostnameLabel.test(label)) continue;
    const bad = /[^A-Za-z0-9-]/.exec(label);
    if (bad) return `${quoted} contains ${JSON.stringify(bad[0])}; host names use letters, digits and "-" (RFC 1123)`;
    return `${quoted}: label "${label}" starts or ends with "-" (RFC 1123)`;
  }
  return undefined;
}

/** Top-level directories of the tz database (tzdata's zone1970.tab areas, plus Etc). */
export const timezoneAreas = ['Africa', 'America', 'Antarctica', 'Arctic', 'Asia', 'Atlantic', 'Australia', 'Europe', 'Indian', 'Pacific', 'Etc'] as const;

const timezoneLocation = /^[A-Za-z0-9_+-]+$/;

/**
 * tz database names: "UTC", or Area/Location ("Europe/Paris", "Etc/GMT+5",
 * "America/Argentina/Buenos_Aires"). Only the form and the area are checked:
 * the names dom0 knows come from its own tzdata, which may differ from the
 * server's. The area list catches typos ("Europa/Paris") that would otherwise
 * leave the host on UTC without a word. Old aliases (US/Eastern, EST5EDT) are
 * refused on purpose; use the canonical name.
 */
export function timezoneProblem(timezone: string): string | undefined {
  if (timezone === 'UTC') return undefined;
  const want = 'want a tz database name such as Etc/UTC, UTC or Europe/Paris';
  const parts = timezone.split('/');
  const [area, ...locations] = parts;
  if (area === undefined || locations.length < 1 || locations.length > 2) {
    return `${JSON.stringify(timezone)} is not of the form Area/Location; ${want}`;
  }
  if (!(timezoneAreas as readonly string[]).includes(area)) {
    return `${JSON.stringify(timezone)}: "${area}" is not a tz database area (${timezoneAreas.join(', ')})`;
  }
  if (!locations.every((location) => timezoneLocation.test(location))) {
    return `${JSON.stringify(timezone)} is not of the form Area/Location; ${want}`;
  }
  return undefined;
}

const sha512Crypt = /^\$6\$(?:rounds=([0-9]+)\$)?([./0-9A-Za-z]*)\$([./0-9A-Za-z]*)$/;

/** crypt(3) prefixes of other schemes, to say which one was given instead. */
const otherSchemes: Array<[string, string]> = [
  ['$1$', 'an MD5'],
  ['$2a$', 'a bcrypt'],
  ['$2b$', 'a bcrypt'],
  ['$2y$', 'a bcrypt'],
  ['$5$', 'a SHA-256'],
  ['$7$', 'a scrypt'],
  ['$y$', 'a yescrypt'],
  ['$gy$', 'a gost-yescrypt'],
];

/**
 * glibc's SHA-512 crypt ("$6$[rounds=N$]salt$hash"): a salt of 1-16 characters
 * and an 86-character hash, both in crypt's alphabet [./0-9A-Za-z]. glibc
 * accepts an empty salt, but then equal passwords give equal hashes, so it is
 * refused. Rounds outside 1000-999999999 are never written by glibc (it clamps
 * them). Messages never repeat the value: a field that fails here may well
 * hold a plain password, and errors end up in logs.
 */
export function passwordHashProblem(hash: string): string | undefined {
  const make = 'make one with: openssl passwd -6';
  if (!hash.startsWith('$')) {
    return `is not a crypt(3) hash (it may be a plain password, which must never be stored here); want "$6$salt$hash", ${make}`;
  }
  const scheme = otherSchemes.find(([prefix]) => hash.startsWith(prefix));
  if (scheme) return `is ${scheme[1]} crypt(3) hash; rackboot wants SHA-512 ("$6$..."), ${make}`;
  const match = sha512Crypt.exec(hash);
  if (!match || !hash.startsWith('$6$')) {
    return `is not a SHA-512 crypt(3) hash; want "$6$[rounds=N$]salt$hash" in the alphabet [./0-9A-Za-z], ${make}`;
  }
  const [, roundsText, salt = '', digest = ''] = match;
  if (roundsText !== undefined) {
    const rounds = Number(roundsText);
    if (rounds < 1000 || rounds > 999_999_999) return `has rounds=${roundsText}; crypt(3) uses 1000 to 999999999`;
  }
  if (salt.length === 0) return `has an empty salt; want 1 to 16 characters, ${make}`;
  if (salt.length > 16) return `has a salt of ${salt.length} characters; SHA-512 crypt uses at most 16`;
  if (digest.length !== 86) return `has a hash part of ${digest.length} characters; SHA-512 crypt's is 86`;
  return undefined;
}

/**
 * Extra Xen or kernel arguments end up on one line of an iPXE script or
 * xen.cfg, so a line break would end the line and start a new command. Other
 * control characters are refused with them: no boot loader expects them. The
 * root password hash must never travel on a command line: /proc/cmdline and
 * Xen's `xl info` show it to every user of the host.
 */
export function bootArgsProblem(args: string, passwordHash: string | undefined): string | undefined {
  const control = /[\u0000-\u001f\u007f]/.exec(args);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    const name = control[0] === '\n' || control[0] === '\r' ? 'a line break' : 'a control character';
    return `contains ${name} (U+${code}) at character ${control.index + 1}; arguments must be one line`;
  }
  if (passwordHash !== undefined && passwordHash.length > 0) {
    const digest = passwordHash.slice(passwordHash.lastIndexOf('$') + 1);
    if (args.includes(passwordHash) || (digest.length >= 16 && args.includes(digest))) {
      return 'contains the root password hash; command lines are readable by every user of the host (the runtime fetches the hash over HTTP instead)';
    }
  }
  return undefined;
}
