import type { BootPlan, HostBoot, ServerEndpoints } from './resolve.js';
import { httpBase } from './resolve.js';

/**
 * Boot scripts and files rendered from a BootPlan. Pure text in, text out:
 * the HTTP and TFTP servers only carry these to the machine.
 */

/**
 * The script every iPXE client is pointed at by DHCP. It only knows the
 * machine by iPXE's own settings, so it chains to the per-host script with
 * the MAC (hyphens: no colon in the URL path) and the firmware platform
 * ("pcbios" or "efi"). If the server is unreachable it retries instead of
 * dropping the machine to a dead prompt.
 */
export function renderEntryScript(endpoints: ServerEndpoints): string {
  const base = httpBase(endpoints);
  return [
    '#!ipxe',
    '# rackboot: hand this machine over to its own boot script',
    `chain ${base}/hosts/\${mac:hexhyp}/boot.ipxe?platform=\${platform} || goto retry`,
    ':retry',
    'echo rackboot: could not load the boot script for ${mac}; trying again in 10 seconds',
    'sleep 10',
    `chain ${base}/boot.ipxe`,
    '',
  ].join('\n');
}

/** The per-host iPXE script for one boot, or a script that says why there is none. */
export function renderHostScript(boot: HostBoot, endpoints: ServerEndpoints): string {
  const retry = `chain ${httpBase(endpoints)}/boot.ipxe`;
  switch (boot.kind) {
    case 'no-profile':
      return [
        '#!ipxe',
        `echo rackboot: no profile matches ${boot.mac} and there is no default profile`,
        `echo rackboot: add a profile with "mac: ${boot.mac}" (or a default.yaml) on the server; retrying in 30 seconds`,
        'sleep 30',
        retry,
        '',
      ].join('\n');
    case 'broken-profile':
      return [
        '#!ipxe',
        `echo rackboot: the profile for ${boot.mac} has errors; fix it on the server (retrying in 30 seconds):`,
        ...boot.problems.map((problem) => `echo ${ipxeText(problem)}`),
        'sleep 30',
        retry,
        '',
      ].join('\n');
    case 'no-build':
      return [
        '#!ipxe',
        `echo rackboot: the server has no boot parts yet (run "rackboot build"); retrying in 30 seconds`,
        'sleep 30',
        retry,
        '',
      ].join('\n');
    case 'boot':
      return boot.plan.platform === 'bios' ? renderMultibootScript(boot.plan) : renderEfiScript(boot.plan);
  }
}

/** Text for an iPXE `echo`: iPXE expands "${...}", so "$" must not start one. */
function ipxeText(text: string): string {
  return text.replaceAll('${', '$ {').replaceAll(/[\r\n]/g, ' ');
}

function header(plan: BootPlan): string[] {
  const lines = [
    '#!ipxe',
    `# rackboot: ${plan.profile.hostname} (${plan.mac}) from ${plan.profile.source}, build ${plan.build.id}, entry ${plan.entry.name}`,
    `echo rackboot: booting ${plan.profile.hostname} (${plan.mac}): ${plan.entry.title}`,
  ];
  if (plan.entryNote) lines.push(`echo rackboot: ${plan.entryNote}`);
  return lines;
}

/**
 * BIOS: iPXE loads Xen as a multiboot kernel and passes dom0's kernel and the
 * runtime initrd as multiboot modules; Xen starts the first module as dom0
 * with the module's command line.
 */
function renderMultibootScript(plan: BootPlan): string {
  return [
    ...header(plan),
    `kernel ${plan.urls.xen} ${plan.xenCommandLine}`,
    `module ${plan.urls.kernel} ${plan.kernelCommandLine}`,
    `module ${plan.urls.initrd}`,
    'boot',
    '',
  ].join('\n');
}

/**
 * EFI: iPXE's EFI builds have no multiboot, so iPXE fetches xen.cfg, the
 * kernel and the initrd as named images and starts xen.efi, which reads them
 * through the file system iPXE exposes. The image names are the last path
 * component of each URL and must match the names inside xen.cfg.
 */
function renderEfiScript(plan: BootPlan): string {
  return [
    ...header(plan),
    `imgfetch ${plan.urls.xenCfg}`,
    `imgfetch ${plan.urls.kernel}`,
    `imgfetch ${plan.urls.initrd}`,
    `chain ${plan.urls.xenEfi} -cfg=xen.cfg`,
    '',
  ].join('\n');
}

/** The xen.efi configuration file (Xen's docs/misc/efi.pandoc format) for one host. */
export function renderXenConfig(plan: BootPlan): string {
  return [
    '[global]',
    'default=rackboot',
    '',
    '[rackboot]',
    `options=${plan.xenCommandLine}`,
    `kernel=vmlinuz ${plan.kernelCommandLine}`,
    'ramdisk=initrd.gz',
    '',
  ].join('\n');
}

/** Quote a value for a POSIX shell: single quotes, with ' written as '\''. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The settings the runtime fetches once it has a network: everything that
 * must not travel on a kernel command line (the root password hash), and
 * what the runtime applies after boot. Shell-sourceable, one assignment a line.
 */
export function renderRuntimeEnv(plan: BootPlan): string {
  const { profile } = plan;
  const values: Array<[string, string]> = [
    ['RACKBOOT_HOSTNAME', profile.hostname],
    // No hash, no line: root stays locked.
    ...(profile.rootPasswordHash ? [['RACKBOOT_ROOT_HASH', profile.rootPasswordHash] as [string, string]] : []),
    ['RACKBOOT_SSH', profile.ssh ? '1' : '0'],
    ['RACKBOOT_TIMEZONE', profile.timezone],
    ['RACKBOOT_PROFILE', profile.source],
    ['RACKBOOT_BUILD', plan.build.id],
  ];
  return ['# rackboot runtime settings', ...values.map(([key, value]) => `${key}=${shellQuote(value)}`), ''].join('\n');
}
