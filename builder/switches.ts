import type { BuildSwitches } from './config.js';

/**
 * The command-line switches of `rackboot build` that lay over a setting of
 * the build settings file: one row each, naming the setting it overrides.
 * The CLI declares its options from this table and reads them back with
 * switchesFromArgs, so a new setting is one new row.
 */
export interface BuildSwitch {
  flag: string;
  type: 'string' | 'boolean';
  /** The setting it lays over, as a path in the file ("versions.xen"). */
  setting: string;
  describe: string;
  choices?: readonly string[];
}

export const BUILD_SWITCHES: readonly BuildSwitch[] = [
  { flag: 'release', type: 'string', setting: 'release', describe: 'Debian release' },
  { flag: 'xen-version', type: 'string', setting: 'versions.xen', describe: 'xen-hypervisor-4.17-amd64 version; "" = newest' },
  { flag: 'kernel-version', type: 'string', setting: 'versions.kernel', describe: 'linux-image-amd64 version' },
  { flag: 'ipxe-version', type: 'string', setting: 'versions.ipxe', describe: 'ipxe version' },
  { flag: 'memtest-version', type: 'string', setting: 'versions.memtest', describe: 'memtest86+ version' },
  { flag: 'busybox-version', type: 'string', setting: 'versions.busybox', describe: 'busybox-static version' },
  {
    flag: 'variant',
    type: 'string',
    setting: 'variant',
    choices: ['debian', 'tiny'],
    describe: 'runtime initrd: a pruned Debian dom0 with the Xen toolstack and sshd, or busybox only (quick, for tests)',
  },
  { flag: 'iso', type: 'boolean', setting: 'parts.iso', describe: 'make the CD/USB image rackboot.iso; --no-iso skips it' },
  { flag: 'memtest', type: 'boolean', setting: 'parts.memtest', describe: 'take memtest86+ into the build; --no-memtest leaves it out' },
  { flag: 'guest', type: 'boolean', setting: 'parts.guest', describe: "make the demo guest's guest.initrd.gz; --no-guest leaves it out" },
  {
    flag: 'debian-guest',
    type: 'boolean',
    setting: 'parts.debianGuest',
    describe: 'make debian-guest.squashfs, the Debian guest image (debootstrap; needs root); --no-debian-guest leaves it out',
  },
  { flag: 'source-date-epoch', type: 'string', setting: 'iso.sourceDateEpoch', describe: 'every date in the CD/USB image, seconds since 1970' },
  { flag: 'volume-label', type: 'string', setting: 'iso.volumeLabel', describe: 'ISO 9660 volume label of the image' },
];

/** The switches given on a command line (parsed by yargs, keyed by flag), as settings to lay over the file's. */
export function switchesFromArgs(args: Readonly<Record<string, unknown>>): BuildSwitches {
  const switches: Record<string, unknown> = {};
  for (const { flag, setting } of BUILD_SWITCHES) {
    const value = args[flag];
    if (value === undefined) continue;
    const path = setting.split('.');
    let into = switches;
    for (const key of path.slice(0, -1)) into = (into[key] ??= {}) as Record<string, unknown>;
    into[path[path.length - 1]!] = value;
  }
  return switches as BuildSwitches;
}
