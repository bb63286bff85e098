import { createHash } from 'node:crypto';
import type { FirstBoot } from './profile.js';

/**
 * Checks and defaults for the Xen guests of a profile (`domains:`). Each
 * check returns the message the user sees, or undefined.
 */

/** Defaults of the optional domain fields (see profiles/default.yaml). */
export const domainDefaults = {
  // The demo guest (Debian's kernel, a busybox initrd) boots in 96: the
  // kernel image alone takes about 58 MiB, and with 80 it dies at boot.
  memory: 96,
  vcpus: 1,
  kernel: 'vmlinuz',
  ramdisk: 'guest.initrd.gz',
  extraArgs: '',
  bridge: 'xenbr0',
  autostart: true,
  restart: false,
} as const;

/** The Debian guest image's file in a build (builder: parts.debianGuest). */
export const debianGuestImage = 'debian-guest.squashfs';
/**
 * The Debian guest's smallest memory and its default: the kernel image alone
 * takes about 58 MiB, systemd and sshd about 40, and a guest that runs from
 * RAM keeps its image (about 50 MiB) and what it writes in memory too.
 */
export const minimumDebianGuestMemoryMiB = 192;
export const debianGuestMemoryMiB = 256;

/** A Debian guest's first-boot settings when its entry says nothing: its own name, DHCP, root locked, no keys. */
export function defaultFirstBoot(name: string): FirstBoot {
  return { hostname: name, network: { mode: 'dhcp' }, sshAuthorizedKeys: [] };
}

/** Xen's PV guests need this much to boot a kernel at all; below it they crash before the console works. */
export const minimumDomainMemoryMiB = 32;
/** More than any machine rackboot boots: a bigger number is bytes or KiB written as MiB. */
export const maximumDomainMemoryMiB = 16 * 1024 * 1024;
/** Xen's limit for PV guests (XEN_LEGACY_MAX_VCPUS is 32; PV guests with vcpu_info placement go to 512). */
export const maximumDomainVcpus = 512;

const domainNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Domain names as xl accepts them and as they travel here: in a URL path
 * (/hosts/<mac>/domains/<name>.cfg), a file name on dom0, a space-separated
 * shell list (RACKBOOT_DOMAINS) and the guest's kernel command line. So:
 * letters, digits, "_", "." and "-", starting with a letter or digit, at most
 * 64 characters. xl treats an all-digit name as a domain id, and
 * "Domain-0" is dom0's own name.
 */
export function domainNameProblem(name: string): string | undefined {
  const quoted = JSON.stringify(name);
  if (name === '') return 'is empty; want a name such as web1';
  if (name.length > 64) return `${quoted} is ${name.length} characters long; at most 64`;
  if (!domainNamePattern.test(name)) {
    const bad = /[^A-Za-z0-9_.-]/.exec(name);
    if (bad) return `${quoted} contains ${JSON.stringify(bad[0])}; domain names use letters, digits, "_", "." and "-"`;
    return `${quoted} must start with a letter or digit`;
  }
  if (/^[0-9]+$/.test(name)) return `${quoted} is all digits, which xl reads as a domain id`;
  if (name.toLowerCase() === 'domain-0') return `${quoted} is the name of dom0 itself`;
  return undefined;
}

const partNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/;

/** A part is a file of the build (manifest name), downloaded to /run/rackboot/parts/<name> on dom0. */
export function partNameProblem(name: string): string | undefined {
  if (partNamePattern.test(name) && !name.includes('..')) return undefined;
  return `${JSON.stringify(name)} is not a part name; want a file name of the build such as vmlinuz or guest.initrd.gz`;
}

const bridgePattern = /^[A-Za-z0-9_.-]{1,15}$/;

/** Linux interface names: at most 15 characters (IFNAMSIZ - 1), no "/" or white space, not "." or "..". */
export function bridgeNameProblem(name: string): string | undefined {
  if (bridgePattern.test(name) && name !== '.' && name !== '..') return undefined;
  if (name.length > 15) return `${JSON.stringify(name)} is ${name.length} characters long; Linux interface names have at most 15`;
  return `${JSON.stringify(name)} is not a Linux interface name (letters, digits, "_", "." and "-", such as xenbr0)`;
}

/** Why a MAC cannot be a guest's: multicast (bit 0 of the first octet) or all zeros. */
export function guestMacProblem(mac: string): string | undefined {
  const first = parseInt(mac.slice(0, 2), 16);
  if (first & 1) return `${mac} is a multicast address (the first octet is odd); a NIC needs a unicast one`;
  if (mac === '00:00:00:00:00:00') return `${mac} is not a usable address`;
  return undefined;
}

/**
 * A stable MAC for a guest without one: the first six bytes of
 * SHA-256(host MAC "/" name), made unicast and locally administered (first
 * octet xxxxxx10, IEEE 802 section 8.2.2), so it never clashes with a vendor's
 * address and stays the same across boots. `taken` holds MACs already in
 * use on this host (its own, other guests'); on a clash the next candidate
 * comes from hashing again with a counter.
 */
export function deriveDomainMac(hostMac: string, name: string, taken: ReadonlySet<string> = new Set()): string {
  for (let attempt = 0; ; attempt++) {
    const digest = createHash('sha256')
      .update(attempt === 0 ? `${hostMac}/${name}` : `${hostMac}/${name}/${attempt}`)
      .digest();
    digest[0] = (digest[0]! & 0xfc) | 0x02;
    const mac = [...digest.subarray(0, 6)].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
    if (!taken.has(mac)) return mac;
  }
}

/**
 * The MAC of every guest of a host, in profile order: written ones as they
 * are, the others derived (deriveDomainMac) around the host's own MAC and
 * every written one, so no two NICs on the host share an address.
 */
export function domainMacs(hostMac: string, domains: ReadonlyArray<{ name: string; mac?: string }>): string[] {
  const taken = new Set<string>([hostMac]);
  for (const domain of domains) if (domain.mac !== undefined) taken.add(domain.mac);
  return domains.map((domain) => {
    if (domain.mac !== undefined) return domain.mac;
    const mac = deriveDomainMac(hostMac, domain.name, taken);
    taken.add(mac);
    return mac;
  });
}
