import type { Build } from '../assets/builds.js';
import { profileForHost, type Profile } from '../profiles/profile.js';
import { ClientArch, type BootFileChoice, type ClientFacts, type Platform } from './facts.js';

/** Where this rackboot server can be reached by booting machines. */
export interface ServerEndpoints {
  /** The address clients reach us on (DHCP siaddr, TFTP, HTTP). */
  address: string;
  httpPort: number;
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
  switch (facts.arch) {
    case undefined:
    case ClientArch.biosX86:
      return { kind: 'tftp', file: 'undionly.kpxe' };
    case ClientArch.efiBc:
    case ClientArch.efiX64:
      return { kind: 'tftp', file: 'ipxe.efi' };
    default:
      return { kind: 'none', reason: `client architecture ${facts.arch} is not supported (BIOS x86 0, UEFI x64 7 or 9)` };
  }
}

/** Menu entries rackboot can boot today, and what each adds to the command lines. */
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

/** Everything a host is served for one boot: the build is pinned so all parts match. */
export interface BootPlan {
  mac: string;
  platform: Platform;
  profile: Profile;
  build: Build;
  entry: BootEntry;
  /** Set when the profile asked for an entry this build cannot boot. */
  entryNote?: string;
  /** Hypervisor command line (multiboot `kernel` arguments, or xen.cfg `options=`). */
  xenCommandLine: string;
  /** dom0 kernel command line, without the kernel's own file name. */
  kernelCommandLine: string;
  urls: { xen: string; xenEfi: string; kernel: string; initrd: string; xenCfg: string; runtimeEnv: string };
}

export type HostBoot =
  | { kind: 'boot'; plan: BootPlan }
  | { kind: 'no-profile'; mac: string }
  | { kind: 'broken-profile'; mac: string; problems: string[] }
  | { kind: 'no-build'; mac: string };

/** Always on the hypervisor line: serial console for racks (and the tests), VGA for a crash cart. */
export const baseXenArgs = ['console=com1,vga', 'com1=115200,8n1'];
/** The last console= is /dev/console: hvc0 reaches Xen's serial line. */
export const baseKernelArgs = ['console=tty0', 'console=hvc0'];

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
  endpoints: ServerEndpoints;
}): HostBoot {
  const { mac, platform, build, endpoints } = input;
  if (!input.profile && input.problems && input.problems.length > 0) return { kind: 'broken-profile', mac, problems: input.problems };
  if (!input.profile) return { kind: 'no-profile', mac };
  if (!build) return { kind: 'no-build', mac };
  const profile = profileForHost(input.profile, mac);
  const base = httpBase(endpoints);
  const requested = bootEntries[profile.boot.entry];
  const entry = requested ?? bootEntries.standard!;
  const entryNote = requested
    ? undefined
    : `boot entry "${profile.boot.entry}" is not in this build; booting "${entry.name}"`;

  const runtimeArgs = [`rackboot.server=${base}`, `rackboot.mac=${mac}`, `rackboot.hostname=${profile.hostname}`];
  const network = profile.network;
  if (network.mode === 'static') {
    runtimeArgs.push('rackboot.net=static', `rackboot.ip=${network.address}/${network.prefixLength}`);
    if (network.gateway) runtimeArgs.push(`rackboot.gw=${network.gateway}`);
    if (network.dns.length > 0) runtimeArgs.push(`rackboot.dns=${network.dns.join(',')}`);
  } else {
    runtimeArgs.push('rackboot.net=dhcp');
  }

  const join = (...parts: Array<string[] | string>) =>
    parts
      .flat()
      .map((part) => part.trim())
      .filter(Boolean)
      .join(' ');
  const buildUrl = (name: string) => `${base}/builds/${encodeURIComponent(build.id)}/${name}`;
  const hostUrl = (name: string) => `${base}/hosts/${mac.replaceAll(':', '-')}/${name}`;

  const plan: BootPlan = {
    mac,
    platform,
    profile,
    build,
    entry,
    xenCommandLine: join(baseXenArgs, entry.xenArgs, profile.boot.xenArgs),
    kernelCommandLine: join(baseKernelArgs, entry.kernelArgs, runtimeArgs, profile.boot.kernelArgs),
    urls: {
      xen: buildUrl('xen'),
      xenEfi: buildUrl('xen.efi'),
      kernel: buildUrl('vmlinuz'),
      initrd: buildUrl('initrd.gz'),
      // The build id sits in the path: iPXE names a fetched image by the URL's
      // last path component, and xen.efi looks the file up by that name.
      xenCfg: hostUrl(`builds/${encodeURIComponent(build.id)}/xen.cfg`),
      runtimeEnv: hostUrl('runtime.env'),
    },
  };
  if (entryNote) plan.entryNote = entryNote;
  return { kind: 'boot', plan };
}
