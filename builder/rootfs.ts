import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '../server/log.js';
import type { CpioEntry } from './cpio.js';
import { BuildStepError } from './errors.js';
import { runCommand } from './exec.js';
import type { ExtraPackage, PackageRef } from '../server/assets/manifest.js';

/**
 * The Debian variant's root file system: `debootstrap --variant=minbase`
 * plus the packages a dom0 needs, brought up to date from the machine's own
 * apt sources (security updates included, so the toolstack matches the
 * hypervisor the build takes from the same sources), then pruned the way
 * XenCD pruned its dom0: no docs, man pages, locales or apt caches.
 *
 * debootstrap takes most of a minute; its result is kept in the cache under
 * a key made of everything that went into it, so the next build with the
 * same inputs reads the same tree and writes the same initrd bytes.
 */

/** Packages on top of minbase. A shell /init starts what it needs; no init system. */
export const ROOTFS_PACKAGES = [
  'xen-utils-4.17',
  'openssh-server',
  'iproute2',
  'bridge-utils',
  'kmod',
  'tzdata',
  // udhcpc and wget for the /init (and the same event script as the tiny runtime)
  'busybox-static',
  // volume groups and guests' volumes on the host's disks, and iSCSI LUNs
  'lvm2',
  'open-iscsi',
  // a private bridge that dom0 routes out of: its NAT and allow list
  'nftables',
] as const;

/**
 * The Debian guest image's packages on top of minbase: systemd as its init
 * (with udev, so device units come up), ifupdown and the ISC DHCP client for
 * the network its first-boot settings describe, sshd, and wget for its report.
 */
export const GUEST_IMAGE_PACKAGES = ['systemd-sysv', 'udev', 'ifupdown', 'isc-dhcp-client', 'openssh-server', 'iproute2', 'netbase', 'wget', 'kmod'] as const;

/** Where the image's report script lives, and the unit that runs it. */
const GUEST_REPORT_SCRIPT = 'usr/lib/rackboot/rackboot-guest';
const GUEST_REPORT_UNIT = 'etc/systemd/system/rackboot-guest.service';

/** rackboot's files in the Debian guest image (builder/runtime/debian-guest): its report, enabled, and sshd making its host keys. */
export async function debianGuestFiles(runtimeDir: string, runtimeVersion: string): Promise<CpioEntry[]> {
  const dir = join(runtimeDir, 'debian-guest');
  return [
    { type: 'file', path: GUEST_REPORT_SCRIPT, mode: 0o755, data: await readFile(join(dir, 'rackboot-guest')) },
    { type: 'file', path: GUEST_REPORT_UNIT, mode: 0o644, data: await readFile(join(dir, 'rackboot-guest.service')) },
    { type: 'symlink', path: 'etc/systemd/system/multi-user.target.wants/rackboot-guest.service', target: `/${GUEST_REPORT_UNIT}` },
    { type: 'file', path: 'etc/systemd/system/ssh.service.d/rackboot-host-keys.conf', mode: 0o644, data: await readFile(join(dir, 'ssh-host-keys.conf')) },
    { type: 'file', path: 'etc/rackboot-release', mode: 0o644, data: Buffer.from(`rackboot-debian-guest ${runtimeVersion}\n`, 'utf8') },
    // The kernel's eth0 keeps its name: udev would make it enX0, and the
    // first-boot settings' /etc/network/interfaces name eth0.
    { type: 'symlink', path: 'etc/systemd/network/99-default.link', target: '/dev/null' },
    // A PV guest's console is hvc0 (serial-getty@hvc0): no getty on virtual terminals it has no screen for.
    { type: 'symlink', path: 'etc/systemd/system/getty@tty1.service', target: '/dev/null' },
    { type: 'symlink', path: 'etc/systemd/system/getty-static.service', target: '/dev/null' },
    { type: 'file', path: 'etc/systemd/system.conf.d/rackboot-show-status.conf', mode: 0o644, data: await readFile(join(dir, 'show-status.conf')) },
    // e2scrub checks ext4 on LVM snapshots; the image has no LVM, and the job only lengthens the boot.
    { type: 'symlink', path: 'etc/systemd/system/e2scrub_reap.service', target: '/dev/null' },
  ];
}

/** Bump when the recipe below changes, so cached trees made the old way are not reused. */
const RECIPE_VERSION = 1;

/** The inputs a cached tree is keyed by. */
export interface RootfsInputs {
  release: string;
  mirror: string;
  packages: readonly string[];
  /** Installed after `packages` (build settings' `packages`), so that what they bring in can be told apart. */
  extra?: readonly string[];
  /** The machine's apt sources, file name to content, copied into the tree. */
  sources: Record<string, string>;
}

export function rootfsKey(inputs: RootfsInputs): string {
  const sources = Object.keys(inputs.sources)
    .sort()
    .map((name) => [name, inputs.sources[name]]);
  return createHash('sha256')
    .update(
      JSON.stringify({
        recipe: RECIPE_VERSION,
        release: inputs.release,
        mirror: inputs.mirror,
        packages: [...inputs.packages].sort(),
        // Only when there are some: trees made without extra packages keep their keys.
        ...(inputs.extra !== undefined && inputs.extra.length > 0 ? { extra: [...inputs.extra].sort() } : {}),
        sources,
      }),
    )
    .digest('hex')
    .slice(0, 16);
}

/** "http://deb.example.org/debian/pool/main/b/base-files/base-files_12.4_amd64.deb" -> "http://deb.example.org/debian". */
export function mirrorOfUri(uri: string): string {
  const at = uri.indexOf('/pool/');
  if (at < 0) throw new Error(`apt URI "${uri}" has no /pool/ folder to take the mirror from`);
  return uri.slice(0, at);
}

/** The machine's apt sources (sources.list and sources.list.d/*.list|*.sources), by path under /etc/apt. */
export async function machineSources(etcApt = '/etc/apt'): Promise<Record<string, string>> {
  const sources: Record<string, string> = {};
  const list = join(etcApt, 'sources.list');
  if (existsSync(list)) sources['sources.list'] = await readFile(list, 'utf8');
  const dir = join(etcApt, 'sources.list.d');
  if (existsSync(dir)) {
    for (const name of (await readdir(dir)).sort()) {
      if (name.endsWith('.list') || name.endsWith('.sources')) sources[`sources.list.d/${name}`] = await readFile(join(dir, name), 'utf8');
    }
  }
  return sources;
}

/**
 * What the runtime leaves out, by path relative to the root ("usr/share/doc/x").
 * Pure. Kept on purpose: zoneinfo (the timezone setting needs it) and the
 * C.utf8 locale; the Xen backends' modules come from the kernel package.
 */
export function isPruned(path: string): boolean {
  const prefixes = [
    'usr/share/doc/',
    'usr/share/man/',
    'usr/share/info/',
    'usr/share/locale/',
    'usr/share/lintian/',
    'usr/share/bug/',
    'usr/share/zoneinfo/right/',
    'usr/lib/udev/hwdb.d/',
    // HVM firmware (hvmloader): HVM guests need qemu-system-xen, which the runtime does not carry.
    'usr/lib/xen-4.17/boot/',
    // Python's IDE, test suites, 2to3 and pip's bundled wheels: nothing a dom0 runs.
    'usr/lib/python3.11/idlelib/',
    'usr/lib/python3.11/lib2to3/',
    'usr/lib/python3.11/pydoc_data/',
    'usr/lib/python3.11/ensurepip/',
    'usr/lib/python3.11/test/',
    'usr/lib/python3.11/unittest/test/',
    'var/lib/apt/lists/',
    'var/cache/apt/',
    'var/cache/debconf/',
    'var/log/',
    'dev/',
    'proc/',
    'sys/',
    'run/',
    'tmp/',
  ];
  if (prefixes.some((p) => path.startsWith(p))) return true;
  if (path.startsWith('usr/lib/locale/') && !path.startsWith('usr/lib/locale/C.utf8')) return true;
  // Host keys are made at boot: a key baked into the image would be every host's key.
  if (/^etc\/ssh\/ssh_host_.*_key(\.pub)?$/.test(path)) return true;
  if (path === 'etc/udev/hwdb.bin' || path === 'etc/machine-id' || path === 'var/lib/dbus/machine-id') return true;
  if (path.endsWith('.pyc') || path.includes('/__pycache__/') || path.endsWith('/__pycache__')) return true;
  return false;
}

/** dpkg leaves out what the build pruned when apt installs more at runtime, too. */
const DPKG_EXCLUDES = `# rackboot runtime: runs from RAM, so no documentation or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
`;

export interface Rootfs {
  /** The cached tree (read-only from here on). */
  dir: string;
  key: string;
  /** Every installed package and its version, sorted by name. */
  packages: PackageRef[];
  /** The extra packages and what they brought in (not in the tree without them), sorted by name; [] without extras. */
  extras: ExtraPackage[];
  /** True when the tree came from the cache. */
  cached: boolean;
}

/** What a cached tree's package list holds; a bare array is the list of a tree made before extra packages were recorded. */
interface PackagesFile {
  packages: PackageRef[];
  extras: ExtraPackage[];
}

async function readPackagesFile(file: string): Promise<PackagesFile> {
  const parsed = JSON.parse(await readFile(file, 'utf8')) as PackagesFile | PackageRef[];
  return Array.isArray(parsed) ? { packages: parsed, extras: [] } : parsed;
}

/** Every package installed in the tree, with its Installed-Size (KiB), sorted by name. */
async function installed(root: string): Promise<ExtraPackage[]> {
  const listing = await inChroot(root, ['dpkg-query', '-W', '-f', '${Package}\\t${Version}\\t${Installed-Size}\\n']);
  return parseInstalled(listing);
}

/** dpkg-query's "package TAB version TAB installed-size" lines (the size may be empty), sorted by name. Pure. */
export function parseInstalled(listing: string): ExtraPackage[] {
  return listing
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [name, version, size] = line.split('\t');
      return { package: name!, version: version!, installedKiB: /^\d+$/.test(size ?? '') ? Number(size) : 0 };
    })
    .sort((a, b) => (a.package < b.package ? -1 : a.package > b.package ? 1 : 0));
}

async function inChroot(root: string, args: string[]): Promise<string> {
  const { stdout } = await runCommand('chroot', [root, ...args], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DEBIAN_FRONTEND: 'noninteractive', LC_ALL: 'C.UTF-8', HOME: '/root' },
  });
  return stdout;
}

/**
 * The debootstrap'd and updated tree for `inputs`: from the cache, or made
 * now (as root: debootstrap and chroot need it) and put into the cache with
 * one rename.
 */
export async function ensureRootfs(cacheDir: string, inputs: RootfsInputs, log: Logger): Promise<Rootfs> {
  const key = rootfsKey(inputs);
  const base = join(cacheDir, 'rootfs');
  const dir = join(base, key);
  const packagesFile = `${dir}.packages.json`;
  if (existsSync(dir) && existsSync(packagesFile)) return { dir, key, ...(await readPackagesFile(packagesFile)), cached: true };
  if (process.getuid?.() !== 0) throw new BuildStepError('rootfs', undefined, 'debootstrap needs root; run "rackboot build" as root or use --variant tiny');
  await mkdir(base, { recursive: true });
  const temp = join(base, `.partial-${randomBytes(6).toString('hex')}`);
  const started = Date.now();
  let procMounted = false;
  try {
    log.info({ mirror: inputs.mirror, packages: inputs.packages }, 'debootstrap started');
    try {
      await runCommand('debootstrap', ['--variant=minbase', `--include=${inputs.packages.join(',')}`, inputs.release, temp, inputs.mirror]);
    } catch (error) {
      throw new BuildStepError('rootfs', 'debootstrap', error instanceof Error ? error.message : String(error), { cause: error });
    }
    // The machine's own sources, so updates (security's Xen toolstack) match the hypervisor, and apt works in the runtime.
    await rm(join(temp, 'etc/apt/sources.list'), { force: true });
    for (const [name, text] of Object.entries(inputs.sources)) await writeFile(join(temp, 'etc/apt', name), text);
    await mkdir(join(temp, 'etc/dpkg/dpkg.cfg.d'), { recursive: true });
    await writeFile(join(temp, 'etc/dpkg/dpkg.cfg.d/rackboot-nodoc'), DPKG_EXCLUDES);
    // No service starts inside the build's chroot.
    await writeFile(join(temp, 'usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });
    await runCommand('mount', ['-t', 'proc', 'proc', join(temp, 'proc')]);
    procMounted = true;
    try {
      await inChroot(temp, ['apt-get', 'update', '-qq']);
      await inChroot(temp, ['apt-get', 'dist-upgrade', '-y', '-qq', '--no-install-recommends']);
      await inChroot(temp, ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...inputs.packages]);
    } catch (error) {
      throw new BuildStepError('rootfs', 'apt-get', error instanceof Error ? error.message : String(error), { cause: error });
    }
    const extra = inputs.extra ?? [];
    const before = extra.length > 0 ? new Set((await installed(temp)).map((p) => p.package)) : undefined;
    try {
      if (extra.length > 0) await inChroot(temp, ['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...extra]);
      await inChroot(temp, ['apt-get', 'clean']);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new BuildStepError('rootfs', 'apt-get', `installing the extra packages ${extra.join(', ')}: ${reason}`, { cause: error });
    }
    const listing = await installed(temp);
    await runCommand('umount', [join(temp, 'proc')]);
    procMounted = false;
    await rm(join(temp, 'usr/sbin/policy-rc.d'));
    // The build machine's resolver means nothing to the runtime; /init writes its own.
    await writeFile(join(temp, 'etc/resolv.conf'), '');
    const packages = listing.map(({ package: name, version }) => ({ package: name, version }));
    const extras: ExtraPackage[] =
      before === undefined
        ? []
        : listing
            .filter((p) => !before.has(p.package) || extra.includes(p.package))
            .map((p) => (extra.includes(p.package) ? p : { ...p, dependency: true as const }));
    await writeFile(`${temp}.packages.json`, JSON.stringify({ packages, extras } satisfies PackagesFile));
    // Another build with the same inputs (run at the same time) may have put its tree in the cache first: use that one.
    const theirs = async (): Promise<Rootfs | undefined> => {
      if (!existsSync(dir) || !existsSync(packagesFile)) return undefined;
      await rm(temp, { recursive: true, force: true });
      await rm(`${temp}.packages.json`, { force: true });
      return { dir, key, ...(await readPackagesFile(packagesFile)), cached: true };
    };
    const ready = await theirs();
    if (ready) return ready;
    // A tree without its package list is a leftover of a build that died between the two renames.
    await rm(dir, { recursive: true, force: true });
    try {
      await rename(temp, dir);
    } catch (error) {
      const raced = await theirs();
      if (raced) return raced;
      throw error;
    }
    await rename(`${temp}.packages.json`, packagesFile);
    log.info({ key, packages: packages.length, extras: extras.length, ms: Date.now() - started }, 'debootstrap done; tree cached');
    return { dir, key, packages, extras, cached: false };
  } catch (error) {
    if (procMounted) await runCommand('umount', ['-l', join(temp, 'proc')]).catch(() => undefined);
    await rm(temp, { recursive: true, force: true });
    await rm(`${temp}.packages.json`, { force: true });
    throw error instanceof BuildStepError
      ? error
      : new BuildStepError('rootfs', undefined, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

/** Every member's time in the squashfs, as in the cpio (2000-01-01T00:00:00Z). */
const SQUASHFS_TIME = '946684800';

/**
 * How a squashfs image is compressed. The dom0 runtime's is xz: it stays in
 * the dom0's RAM, where every MiB counts. A Debian guest's is zstd at level
 * 19: a few MB larger, but it unpacks several times faster, which is most
 * of a guest's first stage (copying the image onto its disk) on a slow CPU.
 */
export type SquashfsCompression = 'xz' | 'zstd';

/**
 * The pruned tree plus `extra` (rackboot's own files: the /init, modules) as
 * one compressed squashfs image. The runtime mounts it read-only under a
 * size-limited tmpfs overlay, so the dom0 holds about a third of the tree's
 * size in RAM, and mksquashfs's reproducible mode (the default) with fixed
 * times makes the same bytes from the same tree.
 */
export async function squashRootfs(treeDir: string, extra: CpioEntry[], compression: SquashfsCompression = 'xz'): Promise<Buffer> {
  const work = await mkdtemp(join(tmpdir(), 'rackboot-squash-'));
  try {
    const root = join(work, 'root');
    await runCommand('cp', ['-a', '--reflink=auto', treeDir, root]);
    const prune = async (rel: string): Promise<void> => {
      for (const name of await readdir(join(root, rel))) {
        const path = rel === '' ? name : `${rel}/${name}`;
        const full = join(root, path);
        const info = await lstat(full);
        if (isPruned(path) || (!info.isFile() && !info.isDirectory() && !info.isSymbolicLink())) await rm(full, { recursive: true, force: true });
        else if (info.isDirectory()) await prune(path);
      }
    };
    await prune('');
    for (const entry of extra) {
      const full = join(root, entry.path);
      await mkdir(dirname(full), { recursive: true });
      if (entry.type === 'file') {
        await rm(full, { force: true });
        await writeFile(full, entry.data, { mode: entry.mode });
      } else if (entry.type === 'directory') {
        await mkdir(full, { recursive: true, mode: entry.mode });
      } else if (entry.type === 'symlink') {
        await rm(full, { force: true });
        await symlink(entry.target, full);
      } else {
        throw new Error(`cannot add ${entry.type} ${entry.path} to the squashfs`);
      }
    }
    const image = join(work, 'root.squashfs');
    await runCommand('mksquashfs', [
      root,
      image,
      '-comp',
      compression,
      ...(compression === 'zstd' ? ['-Xcompression-level', '19'] : []),
      '-noappend',
      '-no-xattrs',
      '-quiet',
      '-no-progress',
      '-all-time',
      SQUASHFS_TIME,
      '-mkfs-time',
      SQUASHFS_TIME,
    ]);
    return await readFile(image);
  } catch (error) {
    throw new BuildStepError('rootfs', 'mksquashfs', error instanceof Error ? error.message : String(error), { cause: error });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
