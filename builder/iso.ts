import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { baseKernelArgs, baseXenArgs, bootEntries } from '../server/core/resolve.js';
import { BuildStepError } from './errors.js';
import { CommandError, runCommand, type CommandRunner } from './exec.js';
import { normalizeIsoEfiImage } from './iso-fat.js';
import { ISO_BOOT_DIR, renderGrubConfig, type IsoXenEntry } from './iso-menu.js';
import { contentDigestInput, type PackageRef } from '../server/assets/manifest.js';

/**
 * The hybrid CD/USB image: the very files of one network build, booted by
 * GRUB from a CD (El Torito, BIOS and UEFI) or a USB disk (MBR and GPT made
 * by xorriso). grub-mkrescue assembles it from the host's GRUB (grub-pc-bin,
 * grub-efi-amd64-bin), xorriso and mtools, the way Debian's own images are
 * made; their versions go into the manifest beside the image.
 *
 * Reproducible: the image holds no build id or build time, every date in it
 * is SOURCE_DATE_EPOCH (or ISO_DEFAULT_EPOCH), and the EFI FAT image that
 * mtools stamps with the clock is normalised afterwards (iso-fat.ts). The
 * same parts give the same image, byte for byte.
 */

export const ISO_NAME = 'rackboot.iso';
/** bookworm's release day (2023-06-10), the dates in an image built without SOURCE_DATE_EPOCH. */
export const ISO_DEFAULT_EPOCH = 1686355200;
/** Host packages the image is made with, recorded in the manifest. */
export const ISO_TOOL_PACKAGES = ['grub-pc-bin', 'grub-efi-amd64-bin', 'xorriso', 'mtools'] as const;

/** Parts copied into the image when the build has them; the first three are required. */
const IMAGE_PARTS = ['xen', 'vmlinuz', 'initrd.gz', 'xen.efi', 'guest.initrd.gz', 'memtest86+x64.bin', 'memtest86+x64.efi'] as const;
const REQUIRED_PARTS = ['xen', 'vmlinuz', 'initrd.gz'];

/**
 * GRUB modules the menu uses: the loaders, the serial console, the menu
 * itself, and what grub-mkrescue's own start-up needs to find the image.
 * Fonts, themes and translations are left out: the menu is text.
 */
const GRUB_MODULES = [
  'normal',
  'configfile',
  'echo',
  'test',
  'true',
  'serial',
  'terminal',
  'terminfo',
  'multiboot2',
  'linux',
  'linux16',
  'gzio',
  'iso9660',
  'part_msdos',
  'part_gpt',
  'fat',
  'search',
  'search_fs_uuid',
  'search_label',
  'all_video',
];

/** The Xen entries of a generic image: the network boot's entries with no host profile. */
export function genericXenEntries(): IsoXenEntry[] {
  return Object.values(bootEntries).map((entry) => ({
    id: entry.name,
    title: entry.title,
    xenCommandLine: [...baseXenArgs, ...entry.xenArgs].join(' '),
    kernelCommandLine: [...baseKernelArgs, ...entry.kernelArgs].join(' '),
  }));
}

/**
 * The label in the menu titles: the first 8 hex digits of the parts' content
 * hash (the same as the build id's suffix when built without an image). The
 * image itself is left out, so it can be computed before the image exists.
 */
export function isoLabel(parts: IsoPart[]): string {
  return createHash('sha256')
    .update(contentDigestInput(parts.filter((p) => p.name !== ISO_NAME)))
    .digest('hex')
    .slice(0, 8);
}

/** "20230610000000" + "00": xorriso's 16-digit time string, UTC. */
export function xorrisoTime(epochSeconds: number): string {
  return `${new Date(epochSeconds * 1000).toISOString().replace(/[-:T]/g, '').slice(0, 14)}00`;
}

/**
 * The volume UUID GRUB looks for to find its own medium. xorriso writes it
 * as the volume's creation and modification time (ECMA-119 time string), so
 * it is the epoch plus up to a year and a hundredth of a second picked by a
 * hash of the image's content: about 3e9 values, so images that differ get
 * different UUIDs, and a machine with two rackboot media attached boots the
 * parts of the one it started from.
 */
export function volumeUuid(epochSeconds: number, seed: string): string {
  const hash = createHash('sha256').update(seed).digest();
  const offset = hash.readUInt32BE(0) % (365 * 86400);
  return `${xorrisoTime(epochSeconds + offset).slice(0, 14)}${String(hash[4]! % 100).padStart(2, '0')}`;
}

/** SOURCE_DATE_EPOCH when set (reproducible-builds.org), else ISO_DEFAULT_EPOCH. */
export function isoEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.SOURCE_DATE_EPOCH;
  if (value === undefined || value === '') return ISO_DEFAULT_EPOCH;
  if (!/^\d+$/.test(value)) throw new BuildStepError('iso', undefined, `SOURCE_DATE_EPOCH "${value}" is not a whole number of seconds`);
  return Number(value);
}

export interface IsoPart {
  name: string;
  sha256: string;
}

export interface MakeIsoOptions {
  /** Folder holding the parts (a build folder). */
  partsDir: string;
  /** The build's files (name and sha256, from its manifest); those in IMAGE_PARTS go into the image. */
  parts: IsoPart[];
  /** Where to write the image. */
  output: string;
  /** Shown in the menu titles; the parts' content hash, never a time. */
  label: string;
  /** ISO 9660 volume identifier (up to 32 of A-Z, 0-9, _); default RACKBOOT. GRUB finds the image by its UUID, not this. */
  volumeLabel?: string;
  /** Default: the network boot's entries without a profile. */
  xenEntries?: IsoXenEntry[];
  defaultEntry?: string;
  /** The runtime's boot-line options (rackboot.net=static ...), in the `rackboot_args` GRUB variable. */
  bootArgs?: string;
  timeoutSeconds?: number;
  /** The time stamp of every file in the image, in seconds since 1970; default isoEpoch() (SOURCE_DATE_EPOCH, else a fixed date). */
  epochSeconds?: number | undefined;
  run?: CommandRunner;
}

export interface MadeIso {
  path: string;
  size: number;
  sha256: string;
  grubConfig: string;
  /** Names of the parts inside the image, under /boot. */
  parts: string[];
}

/** Hard-link a part into the staging tree (same file system) or copy it. */
async function stagePart(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

export async function makeIso(options: MakeIsoOptions): Promise<MadeIso> {
  const run = options.run ?? runCommand;
  const epoch = options.epochSeconds ?? isoEpoch();
  const byName = new Map(options.parts.map((p) => [p.name, p]));
  const missing = REQUIRED_PARTS.filter((name) => !byName.has(name));
  if (missing.length > 0) throw new BuildStepError('iso', undefined, `the build has no ${missing.join(', ')} to put in the image`);
  const included = IMAGE_PARTS.filter((name) => byName.has(name));
  const has = (name: string) => byName.has(name);
  const grubConfig = renderGrubConfig({
    label: options.label,
    xenEntries: options.xenEntries ?? genericXenEntries(),
    defaultEntry: options.defaultEntry ?? 'standard',
    timeoutSeconds: options.timeoutSeconds ?? 5,
    bootArgs: options.bootArgs ?? '',
    ...(has('guest.initrd.gz') ? { guestCommandLine: 'console=tty0 console=ttyS0,115200' } : {}),
    memtest: { bios: has('memtest86+x64.bin'), efi: has('memtest86+x64.efi') },
  });

  // Stage beside the output so parts can be hard-linked rather than copied.
  const stage = join(dirname(options.output), `.iso-stage-${randomBytes(6).toString('hex')}`);
  const temp = `${options.output}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(join(stage, ISO_BOOT_DIR, 'grub'), { recursive: true });
    for (const name of included) await stagePart(join(options.partsDir, name), join(stage, ISO_BOOT_DIR, name));
    await writeFile(join(stage, ISO_BOOT_DIR, 'grub', 'grub.cfg'), grubConfig);
    // The image's own check list, in the format of sha256sum -c.
    await writeFile(join(stage, 'SHA256SUMS'), included.map((name) => `${byName.get(name)!.sha256}  boot/${name}\n`).join(''));

    const date = xorrisoTime(epoch);
    try {
      await run('grub-mkrescue', [
        '--output',
        temp,
        `--install-modules=${GRUB_MODULES.join(' ')}`,
        '--fonts=',
        '--locales=',
        '--themes=',
        '--product-name=rackboot',
        stage,
        // After "--": xorriso's own commands. Every date in the image (volume
        // and file dates) comes from the epoch, not the clock; the volume
        // UUID GRUB searches for (and the GPT disk GUID derived from it)
        // from the content.
        '--',
        '-volid',
        options.volumeLabel ?? 'RACKBOOT',
        '-volume_date',
        'c',
        date,
        '-volume_date',
        'm',
        date,
        '-volume_date',
        'uuid',
        volumeUuid(epoch, `${grubConfig}\n${included.map((name) => byName.get(name)!.sha256).join('\n')}`),
        '-volume_date',
        'all_file_dates',
        `=${epoch}`,
        '-boot_image',
        'any',
        'gpt_disk_guid=volume_date_uuid',
      ]);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error instanceof CommandError && /ENOENT/.test(error.message))) {
        throw new BuildStepError(
          'iso',
          undefined,
          'grub-mkrescue not found: install xorriso mtools grub-pc-bin grub-efi-amd64-bin (builder/install-deps.sh does), or build with --no-iso',
          { cause: error },
        );
      }
      throw new BuildStepError('iso', undefined, error instanceof Error ? error.message : String(error), { cause: error });
    }
    const iso = await readFile(temp);
    normalizeIsoEfiImage(iso, epoch);
    await writeFile(temp, iso);
    await rename(temp, options.output);
    return {
      path: options.output,
      size: (await stat(options.output)).size,
      sha256: createHash('sha256').update(iso).digest('hex'),
      grubConfig,
      parts: [...included],
    };
  } finally {
    await rm(stage, { recursive: true, force: true });
    await rm(temp, { force: true });
  }
}

/** Versions of the host packages that made the image (dpkg-query), for the manifest. */
export async function isoToolVersions(run: CommandRunner = runCommand): Promise<PackageRef[]> {
  try {
    const { stdout } = await run('dpkg-query', ['-W', '-f=${Package} ${Version}\n', ...ISO_TOOL_PACKAGES]);
    return stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [pkg, version] = line.split(' ');
        return { package: pkg!, version: version! };
      });
  } catch (error) {
    throw new BuildStepError(
      'iso',
      undefined,
      `cannot read the versions of ${ISO_TOOL_PACKAGES.join(', ')}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
