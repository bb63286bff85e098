/**
 * The GRUB menu of the CD/USB image: the same entries as the network boot
 * (XenCD's menu: standard by default, verbose testing, the demo guest without
 * Xen, memtest), with the command lines the network boot would use. Pure:
 * names and command lines in, grub.cfg text out.
 */

/** Where the parts sit inside the image. */
export const ISO_BOOT_DIR = '/boot';

/** One Xen entry: the hypervisor and dom0 command lines, exactly as the network boot renders them. */
export interface IsoXenEntry {
  /** GRUB menu entry id: "standard", "testing". */
  id: string;
  title: string;
  xenCommandLine: string;
  kernelCommandLine: string;
}

export interface IsoMenu {
  /** Shown in every title, e.g. the parts' content hash: the image carries no build time. */
  label: string;
  xenEntries: IsoXenEntry[];
  /** Entry id booted when the timeout runs out. */
  defaultEntry: string;
  timeoutSeconds: number;
  /** Extra dom0 kernel arguments added to every Xen entry through the `rackboot_args` variable. */
  bootArgs: string;
  /** Kernel command line of the demo guest entry (vmlinuz + guest.initrd.gz without Xen); omitted when the build has no guest initrd. */
  guestCommandLine?: string;
  /** memtest86+ on BIOS (.bin) and UEFI (.efi); each only when the build has it. */
  memtest: { bios: boolean; efi: boolean };
}

/**
 * A value for a GRUB double-quoted string: inside "..." GRUB expands
 * variables and treats \ as an escape, so "$", "\\" and '"' are escaped.
 * Newlines cannot be part of a command line.
 */
export function grubQuote(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error(`GRUB argument ${JSON.stringify(value)} contains a line break`);
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

/** Command-line words as GRUB arguments: each word quoted, so "$" or ";" in a profile reaches the kernel unchanged. */
function grubWords(commandLine: string): string {
  return commandLine
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => (/^[A-Za-z0-9_.,:/=+@%-]+$/.test(word) ? word : grubQuote(word)))
    .join(' ');
}

export function renderGrubConfig(menu: IsoMenu): string {
  const ids = new Set(menu.xenEntries.map((e) => e.id));
  if (!ids.has(menu.defaultEntry)) throw new Error(`default entry "${menu.defaultEntry}" is not one of ${[...ids].join(', ')}`);
  const lines = [
    '# rackboot CD/USB image: the parts of one network build, booted by GRUB.',
    '# Serial console first (racks, tests), the screen as well (a crash cart).',
    'serial --unit=0 --speed=115200',
    'terminal_input serial console',
    'terminal_output serial console',
    `set timeout=${menu.timeoutSeconds}`,
    `set default=${menu.defaultEntry}`,
    '# Boot-line options for the runtime, added to every Xen entry, e.g.',
    '#   rackboot.net=static rackboot.ip=198.18.0.50/24 rackboot.gw=198.18.0.1 rackboot.hostname=node01',
    '# Press "c" at the menu and "set rackboot_args=..." to change them for one boot.',
    `set rackboot_args=${grubQuote(menu.bootArgs)}`,
    '',
  ];
  for (const entry of menu.xenEntries) {
    lines.push(
      `menuentry ${grubQuote(`${entry.title} [${menu.label}]`)} --id ${entry.id} {`,
      // multiboot2 on both firmwares: Xen 4.17's ELF carries a Multiboot2
      // header and, under UEFI, takes its EFI entry point from it (GRUB keeps
      // boot services up for it), so one entry serves BIOS and UEFI alike.
      `  echo ${grubQuote(`rackboot: loading Xen (${entry.id})`)}`,
      `  multiboot2 ${ISO_BOOT_DIR}/xen ${grubWords(entry.xenCommandLine)}`,
      // No image name before the arguments: Xen strips it only for loaders other than GRUB 2.
      `  module2 ${ISO_BOOT_DIR}/vmlinuz ${grubWords(entry.kernelCommandLine)} $rackboot_args`,
      `  module2 ${ISO_BOOT_DIR}/initrd.gz`,
      '}',
    );
  }
  if (menu.guestCommandLine !== undefined) {
    lines.push(
      `menuentry ${grubQuote(`Demo guest without Xen [${menu.label}]`)} --id guest {`,
      `  linux ${ISO_BOOT_DIR}/vmlinuz ${grubWords(menu.guestCommandLine)}`,
      `  initrd ${ISO_BOOT_DIR}/guest.initrd.gz`,
      '}',
    );
  }
  if (menu.memtest.bios || menu.memtest.efi) {
    // memtest86+ 6 is a Linux-boot-protocol image: linux16 on BIOS, an EFI stub under UEFI.
    lines.push('if [ "$grub_platform" = "efi" ]; then');
    if (menu.memtest.efi) {
      lines.push(`  menuentry "Memory test (memtest86+)" --id memtest {`, `    linux ${ISO_BOOT_DIR}/memtest86+x64.efi`, '  }');
    } else lines.push('  true');
    lines.push('else');
    if (menu.memtest.bios) {
      lines.push(`  menuentry "Memory test (memtest86+)" --id memtest {`, `    linux16 ${ISO_BOOT_DIR}/memtest86+x64.bin`, '  }');
    } else lines.push('  true');
    lines.push('fi');
  }
  lines.push('');
  return lines.join('\n');
}
