import type { Build } from '../assets/builds.js';
import { debianGuestImage, domainMacs } from '../profiles/domain.js';
import { profileForHost, type DomainConfig, type Profile } from '../profiles/profile.js';
import { ClientArch, type BootFileChoice, type ClientFacts, type Platform } from './facts.js';

/** Where this rackboot server can be reached by booting machines. */
export interface ServerEndpoints {
  /** The address clients reach us on (DHCP siaddr, TFTP, HTTP). */
  address: string;
  httpPort: number;
  /**
   * Where firmware fetches its loader by TFTP when that is not `address`
   * (`--tftp-server`): another host serving the same files, as with
   * dnsmasq's `dhcp-boot=FILE,,SERVER`. HTTP stays on `address`.
   */
  tftpServer?: string;
}

export function httpBase(endpoints: ServerEndpoints): string {
  return endpoints.httpPort === 80 ? `http://${endpoints.address}` : `http://${endpoints.address}:${endpoints.httpPort}`;
}

/**
 * What a DHCP reply tells a network-boot client to load next. One table:
 *
 * - A client already running iPXE (user class "iPXE" or option 175) gets the
 *   HTTP URL of /boot.ipxe. Handing it iPXE again would loop forever: iPXE
 *   loads iPXE, which asks DHCP, which hands out iPXE... This is the check
 *   that breaks the chainload loop, so it comes first.
 * - UEFI HTTP Boot firmware (vendor class "HTTPClient") cannot use TFTP; it
 *   gets the URL of ipxe.efi, and iPXE then comes back as case one.
 * - Legacy BIOS PXE ROMs (arch 0) get undionly.kpxe over TFTP: it drives the
 *   NIC through the ROM's own UNDI driver, so it works on any card.
 * - UEFI x64 PXE (arch 7 as OVMF and most PCs send it, or 9) gets ipxe.efi
 *   over TFTP.
 * - Anything else is not ours to boot: plain DHCP clients (no option 60),
 *   32-bit UEFI, other CPUs.
 */
export function chooseBootFile(facts: ClientFacts, endpoints: ServerEndpoints): BootFileChoice {
  const base = httpBase(endpoints);
  if (facts.isIpxe) return { kind: 'http', url: `${base}/boot.ipxe` };
  if (facts.isHttpBoot) {
    if (facts.arch === ClientArch.efiX64Http) return { kind: 'http', url: `${base}/ipxe.efi` };
    return { kind: 'none', reason: `UEFI HTTP Boot for client architecture ${String(facts.arch)} is not supported (x64 is 16)` };
  }
  if (!facts.isPxe) return { kind: 'none', reason: 'not a network-boot client (no PXEClient, HTTPClient or iPXE marker)' };
  const server = endpoints.tftpServer !== undefined ? { server: endpoints.tftpServer } : {};
  switch (facts.arch) {
    case undefined:
    case ClientArch.biosX86:
      return { kind: 'tftp', file: 'undionly.kpxe', ...server };
    case ClientArch.efiBc:
    case ClientArch.efiX64:
      return { kind: 'tftp', file: 'ipxe.efi', ...server };
    default:
      return { kind: 'none', reason: `client architecture ${facts.arch} is not supported (BIOS x86 0, UEFI x64 7 or 9)` };
  }
}

/** The Xen entries of the boot menu, and what each adds to the command lines. */
export interface BootEntry {
  name: string;
  title: string;
  xenArgs: string[];
  kernelArgs: string[];
}

export const bootEntries: Record<string, BootEntry> = {
  standard: { name: 'standard', title: 'Xen with the rackboot runtime', xenArgs: [], kernelArgs: ['quiet'] },
  // XenCD's "verbose testing" entry: everything Xen and Linux can say.
  testing: {
    name: 'testing',
    title: 'Xen with the rackboot runtime, verbose (testing)',
    xenArgs: ['loglvl=all', 'guest_loglvl=all'],
    kernelArgs: ['ignore_loglevel'],
  },
};

/** Build parts the entries beside Xen need. */
export const guestInitrdPart = 'guest.initrd.gz';
export const memtestParts: Record<Platform, string> = { bios: 'memtest86+x64.bin', efi64: 'memtest86+x64.efi' };

/**
 * One item of the per-host boot menu (XenCD's GRUB menu, as an iPXE menu):
 * Xen with dom0 (standard, testing), the demo guest's kernel on bare metal,
 * or memtest86+. Only entries whose parts the build has are offered.
 */
export type MenuEntry =
  | { kind: 'xen'; name: string; title: string; xenCommandLine: string; kernelCommandLine: string; xenCfgUrl: string }
  | { kind: 'linux'; name: 'guest'; title: string; kernelUrl: string; initrdUrl: string; commandLine: string }
  | { kind: 'memtest'; name: 'memtest'; title: string; url: string }
  /** The build's CD/USB image over HTTP, as a drive (iPXE sanboot; BIOS). */
  | { kind: 'sanboot'; name: 'cdimage'; title: string; url: string };

/** A guest of the host with its MAC settled, and whether dom0 starts it at boot. */
export interface PlannedDomain extends DomainConfig {
  mac: string;
  start: boolean;
}

/** Everything a host is served for one boot: the build is pinned so all parts match. */
export interface BootPlan {
  mac: string;
  platform: Platform;
  profile: Profile;
  build: Build;
  /** Why this build (build-choice.ts): "channel testing's current build (boot.channel in rack3.yaml)". */
  buildReason?: string;
  /** The Xen entry xen.cfg describes when no entry is named: the profile's, if it is a Xen entry, else standard. */
  entry: BootEntry;
  /** The menu, in display order; `defaultEntry` names one of them. */
  menu: MenuEntry[];
  defaultEntry: string;
  /** Seconds the menu waits; 0: boot defaultEntry without a menu. */
  menuTimeout: number;
  /** Every guest of the profile, in order. */
  domains: PlannedDomain[];
  /** Parts dom0 downloads for the guests it starts, each once, in order of need. */
  guestParts: string[];
  /** Why a guest of the profile is not started ("domain demo1 not started: build has no guest.initrd.gz"). */
  notes: string[];
  /** Set when the profile asked for an entry this build cannot boot. */
  entryNote?: string;
  /** Hypervisor command line (multiboot `kernel` arguments, or xen.cfg `options=`). */
  xenCommandLine: string;
  /** dom0 kernel command line, without the kernel's own file name. */
  kernelCommandLine: string;
  urls: {
    xen: string;
    xenEfi: string;
    kernel: string;
    initrd: string;
    xenCfg: string;
    runtimeEnv: string;
    /** The BIOS multiboot parts by the build's short name (/b/<digest>/), which leaves room in iPXE's 512 bytes. */
    multiboot: { xen: string; kernel: string; initrd: string };
  };
}

/**
 * iPXE's multiboot loader copies Xen's command line and each module's (its
 * URL, a space, its arguments, a NUL) into one buffer of 512 bytes
 * (MB_MAX_CMDLINE in src/arch/x86/image/multiboot.c) and silently cuts what
 * does not fit: the end of dom0's line, where the boot token and the
 * profile's kernelArgs sit.
 */
export const multibootCommandLineBytes = 512;

/** The bytes iPXE's multiboot buffer needs for these images (URL and arguments each). */
export function multibootBytes(images: Array<{ url: string; args: string }>): number {
  return images.reduce((total, image) => total + Buffer.byteLength(image.url) + (image.args === '' ? 0 : 1 + Buffer.byteLength(image.args)) + 1, 0);
}

export type HostBoot =
  | { kind: 'boot'; plan: BootPlan }
  | { kind: 'no-profile'; mac: string }
  | { kind: 'broken-profile'; mac: string; problems: string[] }
  /** reason: why there is no build for this host (see build-choice.ts). */
  | { kind: 'no-build'; mac: string; reason: string };

/** Always on the hypervisor line: serial console for racks (and the tests), VGA for a crash cart. */
export const baseXenArgs = ['console=com1,vga', 'com1=115200,8n1'];
/**
 * The last console= is /dev/console: hvc0 reaches Xen's serial line.
 * swiotlb=8192 (2 KiB slabs: 16 MiB): a PV dom0 bounces DMA through
 * xen-swiotlb, whose 64 MiB default is a quarter of rackboot's 256 MiB dom0
 * (profileDefaults); a NIC bounces only buffers that span machine pages
 * that are not contiguous, and 8 MiB carried the e1000 through every boot test.
 */
export const baseKernelArgs = ['console=tty0', 'console=hvc0', 'swiotlb=8192'];

/**
 * The one decision of what a machine boots. DHCP picks the loader with
 * chooseBootFile; HTTP and TFTP render what this returns. Pure: the caller
 * looks the profile and the build up.
 */
export function resolveHostBoot(input: {
  mac: string;
  platform: Platform;
  profile: Profile | undefined;
  /** Why the host's own profile file is not served (it never parsed), formatted. */
  problems?: string[];
  build: Build | undefined;
  /** Why the host gets `build`, or why there is none (build-choice.ts); said in the boot script. */
  buildReason?: string;
  endpoints: ServerEndpoints;
  /**
   * This boot's host token (boot/host-token.ts), put on dom0's command line:
   * the runtime shows it to fetch the host's secrets. Only that machine
   * sees its own command line.
   */
  token?: string;
  /** The token of one of this boot's guests (the bare-metal demo guest here; domain configs in render.ts). */
  guestToken?: (domain: string) => string;
  /** Why this boot gets no token (token-grant.ts): said on the console. */
  tokenWithheld?: string;
}): HostBoot {
  const { mac, platform, build, endpoints } = input;
  if (!input.profile && input.problems && input.problems.length > 0) return { kind: 'broken-profile', mac, problems: input.problems };
  if (!input.profile) return { kind: 'no-profile', mac };
  if (!build) return { kind: 'no-build', mac, reason: input.buildReason ?? 'the server has no boot parts yet (run "rackboot build")' };
  const profile = profileForHost(input.profile, mac);
  const base = httpBase(endpoints);
  const has = (part: string) => build.manifest.files.some((file) => file.name === part);

  const runtimeArgs = [`rackboot.server=${base}`, `rackboot.mac=${mac}`, `rackboot.hostname=${profile.hostname}`];
  const network = profile.network;
  if (network.mode === 'static') {
    runtimeArgs.push('rackboot.net=static', `rackboot.ip=${network.address}/${network.prefixLength}`);
    if (network.gateway) runtimeArgs.push(`rackboot.gw=${network.gateway}`);
    if (network.dns.length > 0) runtimeArgs.push(`rackboot.dns=${network.dns.join(',')}`);
  } else {
    runtimeArgs.push('rackboot.net=dhcp');
  }
  if (input.token !== undefined) runtimeArgs.push(`rackboot.token=${input.token}`);

  const join = (...parts: Array<string[] | string>) =>
    parts
      .flat()
      .map((part) => part.trim())
      .filter(Boolean)
      .join(' ');
  const buildUrl = (name: string) => `${base}/builds/${encodeURIComponent(build.id)}/${name}`;
  // "<time>-<digest>": the digest alone names the build's files, in 21 bytes less.
  const digest = /-([0-9a-f]{8})$/.exec(build.id)?.[1];
  const multibootUrl = (name: string) => (digest === undefined ? buildUrl(name) : `${base}/b/${digest}/${name}`);
  const hostUrl = (name: string) => `${base}/hosts/${mac.replaceAll(':', '-')}/${name}`;

  const xenEntry = (entry: BootEntry): MenuEntry & { kind: 'xen' } => ({
    kind: 'xen',
    name: entry.name,
    title: entry.title,
    xenCommandLine: join(baseXenArgs, entry.xenArgs, profile.boot.xenArgs),
    kernelCommandLine: join(baseKernelArgs, entry.kernelArgs, runtimeArgs, profile.boot.kernelArgs),
    // The build id and entry sit in the path: iPXE names a fetched image by
    // the URL's last path component, and xen.efi looks the file up by that name.
    xenCfgUrl: hostUrl(`builds/${encodeURIComponent(build.id)}/${entry.name}/xen.cfg`),
  });
  const menu: MenuEntry[] = Object.values(bootEntries).map(xenEntry);
  if (has('vmlinuz') && has(guestInitrdPart)) {
    // The demo guest straight on the hardware, as XenCD offered ttylinux
    // beside Xen: its /init reports to this server as a guest of itself.
    const efiInitrd = platform === 'efi64' ? [`initrd=${guestInitrdPart}`] : [];
    menu.push({
      kind: 'linux',
      name: 'guest',
      title: 'Demo guest on bare metal (no Xen)',
      kernelUrl: buildUrl('vmlinuz'),
      initrdUrl: buildUrl(guestInitrdPart),
      commandLine: join(
        'console=tty0 console=ttyS0,115200n8',
        efiInitrd,
        `rackboot.server=${base}`,
        `rackboot.parent=${mac}`,
        'rackboot.domain=bare-metal',
        input.guestToken ? `rackboot.token=${input.guestToken('bare-metal')}` : '',
      ),
    });
  }
  if (has(memtestParts[platform])) menu.push({ kind: 'memtest', name: 'memtest', title: 'Memory test (memtest86+)', url: buildUrl(memtestParts[platform]) });
  // The same parts as a CD/USB image, booted by the firmware from a drive that
  // iPXE reads over HTTP: what a machine would see with the CD in its tray.
  // BIOS only, the way it is tested (QEMU's iPXE ROM boots it to the ready line).
  if (platform === 'bios' && has('rackboot.iso'))
    menu.push({ kind: 'sanboot', name: 'cdimage', title: 'CD/USB image of this build, over HTTP', url: buildUrl('rackboot.iso') });

  const requested = menu.find((item) => item.name === profile.boot.entry);
  const defaultEntry = requested?.name ?? 'standard';
  const entryNote = requested ? undefined : `boot entry "${profile.boot.entry}" is not in this build; booting "standard"`;
  const entry = bootEntries[requested?.kind === 'xen' ? requested.name : 'standard']!;
  const defaultXen = xenEntry(entry);

  const macs = domainMacs(mac, profile.domains);
  const guestParts: string[] = [];
  const notes: string[] = [];
  if (input.tokenWithheld !== undefined) {
    notes.push(
      `no boot token for ${mac}: ${input.tokenWithheld}; its root password, SSH keys and domains are not served to this boot (see "Security model" in rackboot's README)`,
    );
  }
  const domains = profile.domains.map((domain, index): PlannedDomain => {
    // A Debian guest fetches its image itself (the guest's first stage); dom0 fetches the kernel and ramdisk.
    const missing = [domain.kernel, domain.ramdisk, ...(domain.image === 'debian' ? [debianGuestImage] : [])].filter((part) => !has(part));
    const start = domain.autostart && missing.length === 0;
    if (domain.autostart && missing.length > 0) notes.push(`domain ${domain.name} not started: build has no ${missing.join(' or ')}`);
    if (start) for (const part of [domain.kernel, domain.ramdisk]) if (!guestParts.includes(part)) guestParts.push(part);
    return { ...domain, mac: macs[index]!, start };
  });

  const plan: BootPlan = {
    mac,
    platform,
    profile,
    build,
    ...(input.buildReason === undefined ? {} : { buildReason: input.buildReason }),
    entry,
    menu,
    defaultEntry,
    menuTimeout: profile.boot.menuTimeout,
    domains,
    guestParts,
    notes,
    xenCommandLine: defaultXen.xenCommandLine,
    kernelCommandLine: defaultXen.kernelCommandLine,
    urls: {
      xen: buildUrl('xen'),
      xenEfi: buildUrl('xen.efi'),
      kernel: buildUrl('vmlinuz'),
      initrd: buildUrl('initrd.gz'),
      xenCfg: defaultXen.xenCfgUrl,
      runtimeEnv: hostUrl('runtime.env'),
      multiboot: { xen: multibootUrl('xen'), kernel: multibootUrl('vmlinuz'), initrd: multibootUrl('initrd.gz') },
    },
  };
  if (platform === 'bios') {
    for (const item of menu) {
      if (item.kind !== 'xen') continue;
      const bytes = multibootBytes([
        { url: plan.urls.multiboot.xen, args: item.xenCommandLine },
        { url: plan.urls.multiboot.kernel, args: item.kernelCommandLine },
        { url: plan.urls.multiboot.initrd, args: '' },
      ]);
      if (bytes > multibootCommandLineBytes) {
        notes.push(
          `entry ${item.name}: Xen's and dom0's command lines take ${bytes} bytes, and iPXE's multiboot passes only ${multibootCommandLineBytes}: the end of dom0's line is cut; shorten boot.xenArgs or boot.kernelArgs`,
        );
      }
    }
  }
  if (entryNote) plan.entryNote = entryNote;
  return { kind: 'boot', plan };
}
