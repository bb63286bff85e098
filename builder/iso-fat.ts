import { createHash } from 'node:crypto';

/**
 * Reproducible EFI boot image inside an ISO. grub-mkrescue builds the EFI
 * System Partition image (efi.img) with mtools, which give the FAT a random
 * volume serial and stamp every directory entry with the current time; no
 * option or environment variable of grub-mkrescue 2.06 or mtools 4.0.32
 * changes that (mtools ignores SOURCE_DATE_EPOCH). xorriso's own dates are
 * fixed with its -volume_date options; this module fixes the FAT: it finds
 * the image through the El Torito boot catalog and rewrites the serial and
 * the timestamps in place. Pure: bytes in, bytes changed.
 */

const SECTOR = 2048;

/** Where the El Torito catalog's UEFI entry (platform 0xEF) points: byte offset and length in the ISO. */
export interface EfiBootImage {
  offset: number;
  /** From the catalog's sector count (512-byte units); 0 when the catalog does not say. */
  catalogLength: number;
}

/** The UEFI boot image named by the El Torito catalog (ECMA-119 volume descriptors, El Torito 1.0 section 2). */
export function findEfiBootImage(iso: Buffer): EfiBootImage | undefined {
  let catalogLba: number | undefined;
  for (let sector = 16; (sector + 1) * SECTOR <= iso.length; sector++) {
    const at = sector * SECTOR;
    if (iso.toString('latin1', at + 1, at + 6) !== 'CD001') throw new Error(`ISO: volume descriptor at sector ${sector} has no CD001 identifier`);
    const type = iso[at]!;
    if (type === 255) break;
    if (type === 0 && iso.toString('latin1', at + 7, at + 30) === 'EL TORITO SPECIFICATION') {
      catalogLba = iso.readUInt32LE(at + 0x47);
      break;
    }
  }
  if (catalogLba === undefined) return undefined;
  const catalog = catalogLba * SECTOR;
  if (catalog + SECTOR > iso.length) throw new Error(`ISO: El Torito boot catalog at sector ${catalogLba} is past the end of the image`);
  // Entry 0 is the validation entry, 1 the default (initial) entry; its platform is in the validation entry.
  const entryAt = (i: number) => catalog + 32 * i;
  const imageOf = (at: number): EfiBootImage => ({ offset: iso.readUInt32LE(at + 8) * SECTOR, catalogLength: iso.readUInt16LE(at + 6) * 512 });
  if (iso[entryAt(0)] !== 1) throw new Error(`ISO: boot catalog at sector ${catalogLba} does not start with a validation entry`);
  if (iso[entryAt(0) + 1] === 0xef && iso[entryAt(1)] === 0x88) return imageOf(entryAt(1));
  for (let i = 2; i < SECTOR / 32;) {
    const header = entryAt(i);
    const indicator = iso[header]!;
    if (indicator !== 0x90 && indicator !== 0x91) break;
    const platform = iso[header + 1]!;
    const count = iso.readUInt16LE(header + 2);
    for (let j = 1; j <= count && i + j < SECTOR / 32; j++) {
      const entry = entryAt(i + j);
      if (platform === 0xef && iso[entry] === 0x88) return imageOf(entry);
    }
    if (indicator === 0x91) break;
    i += count + 1;
  }
  return undefined;
}

/** MS-DOS date and time words for a moment (UTC), as FAT directory entries hold them. */
export function dosDateTime(epochSeconds: number): { date: number; time: number } {
  const d = new Date(epochSeconds * 1000);
  const year = Math.min(Math.max(d.getUTCFullYear(), 1980), 2107);
  return {
    date: ((year - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
  };
}

interface FatLayout {
  bytesPerCluster: number;
  fatOffset: number;
  dataOffset: number;
  rootOffset: number;
  rootBytes: number;
  bits: 12 | 16 | 32;
  rootCluster: number;
  serialOffset: number;
  totalBytes: number;
}

function fatLayout(fat: Buffer): FatLayout {
  const bytesPerSector = fat.readUInt16LE(11);
  const sectorsPerCluster = fat[13]!;
  if (![512, 1024, 2048, 4096].includes(bytesPerSector) || sectorsPerCluster === 0 || fat.readUInt16LE(510) !== 0xaa55) {
    throw new Error(`EFI boot image: not a FAT file system (bytes per sector ${bytesPerSector}, sectors per cluster ${sectorsPerCluster})`);
  }
  const reserved = fat.readUInt16LE(14);
  const fats = fat[16]!;
  const rootEntries = fat.readUInt16LE(17);
  const totalSectors = fat.readUInt16LE(19) || fat.readUInt32LE(32);
  const fatSectors = fat.readUInt16LE(22) || fat.readUInt32LE(36);
  const rootSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const firstData = reserved + fats * fatSectors + rootSectors;
  const clusters = Math.floor((totalSectors - firstData) / sectorsPerCluster);
  // Microsoft's FAT specification: the type follows from the cluster count alone.
  const bits = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
  return {
    bytesPerCluster: bytesPerSector * sectorsPerCluster,
    fatOffset: reserved * bytesPerSector,
    dataOffset: firstData * bytesPerSector,
    rootOffset: (reserved + fats * fatSectors) * bytesPerSector,
    rootBytes: rootSectors * bytesPerSector,
    bits,
    rootCluster: bits === 32 ? fat.readUInt32LE(44) : 0,
    serialOffset: bits === 32 ? 67 : 39,
    totalBytes: totalSectors * bytesPerSector,
  };
}

function nextCluster(fat: Buffer, layout: FatLayout, cluster: number): number | undefined {
  let value: number;
  let end: number;
  if (layout.bits === 12) {
    const at = layout.fatOffset + Math.floor(cluster * 1.5);
    const word = fat.readUInt16LE(at);
    value = cluster & 1 ? word >> 4 : word & 0xfff;
    end = 0xff8;
  } else if (layout.bits === 16) {
    value = fat.readUInt16LE(layout.fatOffset + cluster * 2);
    end = 0xfff8;
  } else {
    value = fat.readUInt32LE(layout.fatOffset + cluster * 4) & 0x0fffffff;
    end = 0x0ffffff8;
  }
  return value >= 2 && value < end ? value : undefined;
}

/** Byte ranges of a directory: the fixed root region (FAT12/16) or a cluster chain. */
function directoryRanges(fat: Buffer, layout: FatLayout, cluster: number): Array<[number, number]> {
  if (cluster === 0) return [[layout.rootOffset, layout.rootOffset + layout.rootBytes]];
  const ranges: Array<[number, number]> = [];
  const seen = new Set<number>();
  for (let c: number | undefined = cluster; c !== undefined && !seen.has(c); c = nextCluster(fat, layout, c)) {
    seen.add(c);
    const start = layout.dataOffset + (c - 2) * layout.bytesPerCluster;
    if (start + layout.bytesPerCluster > fat.length) throw new Error(`EFI boot image: cluster ${c} is past the end of the image`);
    ranges.push([start, start + layout.bytesPerCluster]);
  }
  return ranges;
}

/**
 * Give a FAT image fixed timestamps (every directory entry, created,
 * accessed and written at `epochSeconds`) and a volume serial taken from a
 * hash of its content, in place. Returns how many directory entries changed.
 */
export function normalizeFat(fat: Buffer, epochSeconds: number): number {
  const layout = fatLayout(fat);
  const { date, time } = dosDateTime(epochSeconds);
  let entries = 0;
  const visited = new Set<number>();
  const walk = (cluster: number): void => {
    if (visited.has(cluster)) return;
    visited.add(cluster);
    for (const [start, end] of directoryRanges(fat, layout, cluster)) {
      for (let at = start; at + 32 <= end; at += 32) {
        const first = fat[at]!;
        if (first === 0) return; // no entries after this one
        const attributes = fat[at + 11]!;
        if ((attributes & 0x3f) === 0x0f) continue; // long-name part: holds no times
        fat[at + 13] = 0; // created, tenths of a second
        fat.writeUInt16LE(time, at + 14);
        fat.writeUInt16LE(date, at + 16);
        fat.writeUInt16LE(date, at + 18); // last access
        fat.writeUInt16LE(time, at + 22);
        fat.writeUInt16LE(date, at + 24);
        entries++;
        const name = fat.toString('latin1', at, at + 2);
        if (attributes & 0x10 && first !== 0xe5 && name !== '. ' && name !== '..') {
          const child = (layout.bits === 32 ? fat.readUInt16LE(at + 20) << 16 : 0) | fat.readUInt16LE(at + 26);
          if (child >= 2) walk(child);
        }
      }
    }
  };
  walk(layout.bits === 32 ? layout.rootCluster : 0);
  fat.writeUInt32LE(0, layout.serialOffset);
  fat.writeUInt32LE(createHash('sha256').update(fat.subarray(0, layout.totalBytes)).digest().readUInt32LE(0), layout.serialOffset);
  return entries;
}

/** normalizeFat on the UEFI boot image inside an ISO (in place); throws when the ISO has none. */
export function normalizeIsoEfiImage(iso: Buffer, epochSeconds: number): { offset: number; bytes: number; entries: number } {
  const image = findEfiBootImage(iso);
  if (!image) throw new Error('ISO: the El Torito catalog has no UEFI (platform 0xEF) boot image');
  // The catalog's 16-bit count may be short for a large image; the FAT says how big it is.
  const head = iso.subarray(image.offset, image.offset + 512);
  const layout = fatLayout(Buffer.from(head));
  const fat = iso.subarray(image.offset, image.offset + layout.totalBytes);
  if (fat.length !== layout.totalBytes) throw new Error(`ISO: UEFI boot image at ${image.offset} runs past the end of the image`);
  const entries = normalizeFat(fat, epochSeconds);
  return { offset: image.offset, bytes: fat.length, entries };
}
