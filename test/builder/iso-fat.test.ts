import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { dosDateTime, findEfiBootImage, normalizeFat } from '../../builder/iso-fat.js';

/**
 * The FAT normaliser against images made by real mtools (the tools
 * grub-mkrescue uses for its EFI image): the same files written at two
 * different moments, with mformat's random serials, become the same bytes.
 */

const EPOCH = 1686355200; // 2023-06-10T00:00:00Z

async function mtoolsImage(dir: string, name: string, sizeKiB: number): Promise<Buffer> {
  const image = join(dir, name);
  const payload = join(dir, 'payload.efi');
  await writeFile(payload, Buffer.alloc(70_000, 0x5a));
  execFileSync('mformat', ['-C', '-f', String(sizeKiB), '-L', '16', '-i', image, '::']);
  execFileSync('mmd', ['-i', image, '::/efi', '::/efi/boot']);
  execFileSync('mcopy', ['-i', image, payload, '::/efi/boot/bootx64.efi']);
  return readFile(image);
}

test('two mtools images of the same files, made seconds apart, normalise to the same bytes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-fat-'));
  try {
    const first = await mtoolsImage(dir, 'a.img', 1440);
    await delay(2100); // FAT times have a 2-second grain
    const second = await mtoolsImage(dir, 'b.img', 1440);
    assert.notDeepEqual(first, second, 'mtools stamps serial and times from the clock');
    const entries = normalizeFat(first, EPOCH);
    normalizeFat(second, EPOCH);
    assert.ok(entries >= 5, `entries ${entries}: efi, boot, bootx64.efi and the dot entries`);
    assert.deepEqual(first, second);
    assert.notEqual(first.readUInt32LE(39), 0, 'the serial comes from the content');
    // What mtools itself reads back: the file's date is the epoch.
    const listing = execFileSync('mdir', ['-i', join(dir, 'a.img'), '::/efi/boot'], { input: '' }).toString();
    await writeFile(join(dir, 'a.img'), first);
    const normalised = execFileSync('mdir', ['-i', join(dir, 'a.img'), '::/efi/boot']).toString();
    assert.match(listing, /bootx64\s+efi\s+70000 \d{4}/i);
    assert.match(normalised, /bootx64\s+efi\s+70000 2023-06-10\s+0:00/i);
    execFileSync('mtype', ['-i', join(dir, 'a.img'), '::/efi/boot/bootx64.efi'], { maxBuffer: 1 << 20 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a FAT16 image (more clusters) is walked through its FAT chain as well', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-fat-'));
  try {
    const image = join(dir, 'big.img');
    execFileSync('dd', ['if=/dev/zero', `of=${image}`, 'bs=1M', 'count=32'], { stdio: 'ignore' });
    execFileSync('mformat', ['-i', image, '::']); // mtools picks FAT16 for 32 MB
    execFileSync('mmd', ['-i', image, '::/efi']);
    for (let i = 0; i < 40; i++) execFileSync('mmd', ['-i', image, `::/efi/d${i}`]); // the directory spans clusters
    const bytes = await readFile(image);
    const entries = normalizeFat(bytes, EPOCH);
    assert.ok(entries >= 42, `entries ${entries}`);
    const { date, time } = dosDateTime(EPOCH);
    assert.equal(time, 0);
    assert.equal(date, (43 << 9) | (6 << 5) | 10);
    await writeFile(image, bytes);
    assert.match(execFileSync('mdir', ['-i', image, '::/efi']).toString(), /d39\s+<DIR>\s+2023-06-10/i);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('what is not a FAT or an ISO is refused with the reason', () => {
  assert.throws(() => normalizeFat(Buffer.alloc(4096), EPOCH), /EFI boot image: not a FAT file system/);
  const notIso = Buffer.alloc(18 * 2048);
  assert.throws(() => findEfiBootImage(notIso), /volume descriptor at sector 16 has no CD001/);
});
