import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { kernelElfOf } from './bzimage.js';
import { encodeCpio, withParentDirectories, type CpioEntry } from './cpio.js';
import { runCommand } from './exec.js';
import type { KernelParts } from './kernel.js';
import { formatModulesDep, loadOrder, moduleNameOf, type ModuleSelection } from './modules.js';

/**
 * The runtime initrd: busybox, the kernel modules a dom0 needs for its NICs
 * and Xen's backends, and builder/runtime/init. Assembled in memory from the
 * unpacked packages and written as one reproducible gzip'd cpio.
 */

/**
 * Modules the runtime loads at boot, with whatever they depend on. NICs first:
 * those QEMU offers (e1000, e1000e, virtio) and common server and desktop
 * ones that work without firmware files; then the bridge for guest networking
 * and the Xen backends and devices a dom0 toolstack opens; then the disk
 * controllers a host's storage hangs off (SATA, NVMe, virtio, USB), so the
 * runtime can report what its disks hold.
 */
export const RUNTIME_MODULES = [
  'e1000',
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'r8169',
  'tg3',
  'virtio_pci',
  'virtio_net',
  'bridge',
  'xen-evtchn',
  'xen-gntdev',
  'xen-gntalloc',
  'xen-privcmd',
  'xen-netback',
  'xen-blkback',
  // dom0's watchdog: Xen reboots the machine when it runs out (rackboot.watchdog).
  'xen_wdt',
  'ahci',
  'sd_mod',
  'nvme',
  'virtio_blk',
  'xhci-pci',
  'usb-storage',
] as const;

/**
 * The Debian dom0 carries more: RAID and SCSI controllers, the Xen file system and PCI backend, and what guests' networks
 * and disks are commonly built from (tun, loop, overlay, VLANs, bonds).
 */
export const DEBIAN_RUNTIME_MODULES = [
  ...RUNTIME_MODULES,
  'i40e',
  'vmxnet3',
  'xenfs',
  'xen-pciback',
  'tun',
  'loop',
  'overlay',
  '8021q',
  'bonding',
  'virtio_scsi',
  'megaraid_sas',
  'mpt3sas',
  // ext4 asks the crypto API for crc32c at every mount (its soft dependency, which module lists do not follow)
  'crc32c_generic',
  'ext4',
] as const;

/**
 * Modules the Debian dom0 carries but loads only when a profile needs them
 * (init-debian's load_modules, by modules.dep): device-mapper for LVM's
 * volumes, when the profile has volume groups or the host has disks; the
 * iSCSI initiator, when it has sessions; nftables, when it routes a private
 * bridge. Loaded at every boot they made every boot slower, and dom0 stall
 * for minutes once its guests started (xl create, the guests' DHCP).
 */
export const DEBIAN_ON_DEMAND_MODULES = ['dm-mod', 'iscsi_tcp', 'nf_tables', 'nft_chain_nat', 'nft_masq', 'nft_ct'] as const;

/**
 * The demo guest, a PV domU: its network card is Xen's netfront, its disks blkfront, with ext4 (ext2 too) to keep files on them;
 * as a Debian guest's first stage, squashfs, loop and overlay mount the image (run from RAM, or copied to the root disk).
 */
export const GUEST_MODULES = ['xen-netfront', 'xen-blkfront', 'crc32c_generic', 'ext4', 'squashfs', 'loop', 'overlay'] as const;
/** The guest's modules loaded at every boot; the rest (disks', filesystems', the image's) only when it has disks or boots an image. */
export const GUEST_BOOT_MODULES = ['xen_netfront'] as const;

/** Every module any image of a build needs: what the kernel package is read for. */
export const ALL_MODULES = [...new Set<string>([...DEBIAN_RUNTIME_MODULES, ...DEBIAN_ON_DEMAND_MODULES, ...GUEST_MODULES])];

/** Every member's modification time (2000-01-01T00:00:00Z): fixed, so the archive is reproducible. */
export const INITRD_MTIME = 946684800;

/** Busybox applet paths ("usr/bin/wget"), from the binary itself. */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  const { stdout } = await runCommand(busybox, ['--list-full']);
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'bin/busybox' && line.includes('/'));
}

export interface RuntimeInputs {
  /** Unpacked busybox-static. */
  busyboxRoot: string;
  /** The kernel image's modules, read from linux-image-* (see readKernelPackage). */
  kernel: KernelParts;
  /** builder/runtime: init, udhcpc.script. */
  runtimeDir: string;
  /** Written to /etc/rackboot-release. */
  runtimeVersion: string;
}

export interface RuntimeTree {
  entries: CpioEntry[];
  modules: ModuleSelection;
}

/** Every member of the runtime initrd, parents included. */
export async function runtimeTree(inputs: RuntimeInputs): Promise<RuntimeTree> {
  const entries: CpioEntry[] = [];
  const file = (path: string, data: Uint8Array | string, mode = 0o644): void => {
    entries.push({ type: 'file', path, mode, data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data });
  };
  const dir = (path: string, mode = 0o755): void => {
    entries.push({ type: 'directory', path, mode });
  };

  const busybox = join(inputs.busyboxRoot, 'bin/busybox');
  file('bin/busybox', await readFile(busybox), 0o755);
  for (const applet of await busyboxApplets(busybox)) {
    entries.push({ type: 'symlink', path: applet, target: '/bin/busybox' });
  }

  file('init', await readFile(join(inputs.runtimeDir, 'init')), 0o755);
  file('usr/share/udhcpc/default.script', await readFile(join(inputs.runtimeDir, 'udhcpc.script')), 0o755);
  file(STORAGE_SCAN, await readFile(join(inputs.runtimeDir, 'storage-scan')), 0o755);
  file('etc/rackboot-release', `rackboot-runtime ${inputs.runtimeVersion}\n`);

  // The kernel opens /dev/console for init before anything mounts devtmpfs.
  entries.push({ type: 'character-device', path: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  entries.push({ type: 'character-device', path: 'dev/null', mode: 0o666, major: 1, minor: 3 });
  for (const d of ['proc', 'sys', 'run', 'root', 'mnt', 'etc', 'var/log']) dir(d, d === 'root' ? 0o700 : 0o755);
  dir('tmp', 0o1777);
  entries.push({ type: 'symlink', path: 'var/run', target: '/run' });

  entries.push(...moduleEntries(inputs.kernel, 'lib/modules'));
  return { entries: withParentDirectories(entries), modules: inputs.kernel.selection };
}

/**
 * The selected modules under `modulesDir`/<version>, their modules.dep, and
 * /etc/rackboot/modules: the load order every /init follows with insmod, of
 * `atBoot` and what they need when given (the other modules are shipped for
 * loading on demand), else of every selected module.
 */
export function moduleEntries(kernel: KernelParts, modulesDir: string, atBoot?: readonly string[]): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const file = (path: string, data: Uint8Array | string): void => {
    entries.push({ type: 'file', path, mode: 0o644, data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data });
  };
  const modules = kernel.selection;
  const target = `${modulesDir}/${kernel.version}`;
  for (const path of modules.order) file(`${target}/${path}`, kernel.files.get(path)!);
  file(`${target}/modules.dep`, formatModulesDep(modules.dep));
  for (const extra of ['modules.builtin', 'modules.order']) {
    const data = kernel.files.get(extra);
    if (data !== undefined) file(`${target}/${extra}`, data);
  }
  let order = modules.order;
  if (atBoot !== undefined) {
    const roots = atBoot.filter((name) => !modules.builtin.includes(moduleNameOf(name)));
    const boot = loadOrder(modules.dep, roots);
    if (boot.missing.length > 0) throw new Error(`boot modules not selected: ${boot.missing.join(', ')}`);
    order = boot.order;
  }
  file('etc/rackboot/modules', order.map((p) => `${p}\n`).join(''));
  return entries;
}

/** Busybox and its applets as links; the base of the tiny runtime and the demo guest. */
async function busyboxEntries(busyboxRoot: string): Promise<CpioEntry[]> {
  const busybox = join(busyboxRoot, 'bin/busybox');
  const entries: CpioEntry[] = [{ type: 'file', path: 'bin/busybox', mode: 0o755, data: await readFile(busybox) }];
  for (const applet of await busyboxApplets(busybox)) entries.push({ type: 'symlink', path: applet, target: '/bin/busybox' });
  return entries;
}

/** What every image's /init needs before devtmpfs is mounted. */
function deviceNodes(): CpioEntry[] {
  return [
    { type: 'character-device', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { type: 'character-device', path: 'dev/null', mode: 0o666, major: 1, minor: 3 },
  ];
}

/** What the Debian runtime's first stage loads to mount its root: the squashfs, on a loop device, under an overlay. */
export const ROOT_MOUNT_MODULES = ['squashfs', 'loop', 'overlay'] as const;

/** Where the squashfs sits in the initrd. */
export const ROOT_IMAGE = 'rootfs.squashfs';

export interface DebianRuntimeInputs {
  /** The root image (see squashRootfs), holding the Debian tree and init-debian as /init. */
  rootImage: Buffer;
  /** Unpacked busybox-static, for the first stage. */
  busyboxRoot: string;
  /** The kernel with ROOT_MOUNT_MODULES only. */
  kernel: KernelParts;
  /** builder/runtime: init-ram-root. */
  runtimeDir: string;
  runtimeVersion: string;
}

/**
 * The Debian runtime's initrd: a busybox first stage whose /init mounts
 * rootfs.squashfs read-only, a size-limited tmpfs over it, and switches to
 * the Debian tree's /init (init-debian).
 */
export async function debianRuntimeTree(inputs: DebianRuntimeInputs): Promise<RuntimeTree> {
  const entries: CpioEntry[] = [
    ...(await busyboxEntries(inputs.busyboxRoot)),
    { type: 'file', path: 'init', mode: 0o755, data: await readFile(join(inputs.runtimeDir, 'init-ram-root')) },
    { type: 'file', path: ROOT_IMAGE, mode: 0o644, data: inputs.rootImage },
    { type: 'file', path: 'etc/rackboot-release', mode: 0o644, data: Buffer.from(`rackboot-runtime ${inputs.runtimeVersion} debian\n`, 'utf8') },
    ...deviceNodes(),
    ...moduleEntries(inputs.kernel, 'lib/modules'),
  ];
  for (const d of ['proc', 'sys', 'run', 'newroot', 'tmp']) entries.push({ type: 'directory', path: d, mode: 0o755 });
  return { entries: withParentDirectories(entries), modules: inputs.kernel.selection };
}

/**
 * Where the Debian root holds the guest kernel, unpacked: `vmlinux` (the
 * ELF inside the build's vmlinuz) and `vmlinuz.sha256` (the sha256 of the
 * vmlinuz it came from, as the server's ETag for that part carries it).
 */
export const GUEST_KERNEL_DIR = 'usr/lib/rackboot/guest-kernel';

/**
 * rackboot's vif hotplug script in the Debian tree, xl's default for
 * guests' interfaces (builder/runtime/xl.conf): Xen's bash vif-bridge has
 * run past libxl's hotplug timeout under emulation on a busy host, and the
 * guest was not started.
 */
export const VIF_SCRIPT = 'etc/xen/scripts/vif-rackboot';
/** Its block hotplug script, which every guest disk rackboot renders names (script=block-rackboot), for the same reason. */
export const BLOCK_SCRIPT = 'etc/xen/scripts/block-rackboot';
/** The runtime's storage lister (builder/runtime/storage-scan), in both runtimes. */
export const STORAGE_SCAN = 'usr/lib/rackboot/storage-scan';

/**
 * rackboot's files inside the Debian tree: init-debian as /init, the udhcpc
 * script, the vif and block hotplug scripts and xl.conf, the release note,
 * the dom0 modules, and the guest kernel unpacked.
 *
 * The unpacked kernel is for memory: started from the vmlinuz, xl's domain
 * builder unpacks its 66 MB payload into dom0's heap (about 97 MB resident
 * at its peak, by growing buffers), which OOM-kills xl in a 256 MiB dom0.
 * Started from the ELF, xl maps the file; in the squashfs it costs about
 * what the compressed vmlinuz does, and its pages are clean page cache that
 * the kernel takes back once the domain is built.
 */
export async function debianRuntimeFiles(kernel: KernelParts, runtimeDir: string, runtimeVersion: string): Promise<CpioEntry[]> {
  return [
    { type: 'file', path: 'init', mode: 0o755, data: await readFile(join(runtimeDir, 'init-debian')) },
    { type: 'file', path: 'usr/share/udhcpc/default.script', mode: 0o755, data: await readFile(join(runtimeDir, 'udhcpc.script')) },
    { type: 'file', path: VIF_SCRIPT, mode: 0o755, data: await readFile(join(runtimeDir, 'vif-rackboot')) },
    { type: 'file', path: BLOCK_SCRIPT, mode: 0o755, data: await readFile(join(runtimeDir, 'block-rackboot')) },
    { type: 'file', path: STORAGE_SCAN, mode: 0o755, data: await readFile(join(runtimeDir, 'storage-scan')) },
    { type: 'file', path: 'etc/xen/xl.conf', mode: 0o644, data: await readFile(join(runtimeDir, 'xl.conf')) },
    { type: 'file', path: 'etc/rackboot-release', mode: 0o644, data: Buffer.from(`rackboot-runtime ${runtimeVersion} debian\n`, 'utf8') },
    { type: 'file', path: `${GUEST_KERNEL_DIR}/vmlinux`, mode: 0o644, data: await kernelElfOf(kernel.vmlinuz) },
    {
      type: 'file',
      path: `${GUEST_KERNEL_DIR}/vmlinuz.sha256`,
      mode: 0o644,
      data: Buffer.from(`${createHash('sha256').update(kernel.vmlinuz).digest('hex')}\n`, 'utf8'),
    },
    // Debian's /lib is a link to usr/lib (merged /usr).
    // Loaded at boot: the runtime's own; DEBIAN_ON_DEMAND_MODULES only when needed.
    ...moduleEntries(kernel, 'usr/lib/modules', [...DEBIAN_RUNTIME_MODULES, ...ROOT_MOUNT_MODULES]),
  ];
}

export interface GuestInputs {
  busyboxRoot: string;
  /** The kernel with GUEST_MODULES. */
  kernel: KernelParts;
  /** builder/runtime: guest-init, udhcpc.script. */
  runtimeDir: string;
  runtimeVersion: string;
}

/** The demo guest's userland: busybox, xen-netfront, and guest-init as /init. */
export async function guestTree(inputs: GuestInputs): Promise<CpioEntry[]> {
  const entries: CpioEntry[] = [
    ...(await busyboxEntries(inputs.busyboxRoot)),
    { type: 'file', path: 'init', mode: 0o755, data: await readFile(join(inputs.runtimeDir, 'guest-init')) },
    { type: 'file', path: 'usr/share/udhcpc/default.script', mode: 0o755, data: await readFile(join(inputs.runtimeDir, 'udhcpc.script')) },
    { type: 'file', path: 'etc/rackboot-release', mode: 0o644, data: Buffer.from(`rackboot-guest ${inputs.runtimeVersion}\n`, 'utf8') },
    ...deviceNodes(),
    // xen-netfront at boot; the disk modules only when the guest has disks (guest-init).
    ...moduleEntries(inputs.kernel, 'lib/modules', GUEST_BOOT_MODULES),
    {
      type: 'file',
      path: 'etc/rackboot/modules.disks',
      mode: 0o644,
      data: Buffer.from(
        loadOrder(inputs.kernel.selection.dep, [...GUEST_MODULES])
          .order.filter((path) => !(GUEST_BOOT_MODULES as readonly string[]).includes(moduleNameOf(path)))
          .map((path) => `${path}\n`)
          .join(''),
        'utf8',
      ),
    },
  ];
  for (const d of ['proc', 'sys', 'run', 'root', 'etc', 'tmp']) entries.push({ type: 'directory', path: d, mode: d === 'tmp' ? 0o1777 : 0o755 });
  return withParentDirectories(entries);
}

/** gzip'd newc cpio of the tree; the same inputs give the same bytes. */
export function encodeInitrd(entries: CpioEntry[]): Buffer {
  // Node's gzip header has mtime 0 and no file name, so the output depends only on the input.
  return gzipSync(encodeCpio(entries, { mtime: INITRD_MTIME }), { level: 9 });
}
