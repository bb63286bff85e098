import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build } from '../../builder/build.js';
import { findEfiBootImage } from '../../builder/iso-fat.js';
import { ISO_NAME, isoLabel, makeIso } from '../../builder/iso.js';
import { parseManifest, type Manifest } from '../../server/assets/manifest.js';
import { silentLogger } from '../../server/log.js';
import { ensureTestBuild } from '../support/build.js';

/**
 * The CD/USB image of the shared test build, read back with xorriso: the
 * parts inside are the network build's own files, both firmwares have a boot
 * entry, and it is a disk image too (MBR + GPT).
 */

let buildDir: string;
let manifest: Manifest;
let iso: Buffer;
let work: string;

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

before(async () => {
  buildDir = join(await ensureTestBuild(), 'current');
  manifest = parseManifest(JSON.parse(await readFile(join(buildDir, 'manifest.json'), 'utf8')));
  iso = await readFile(join(buildDir, ISO_NAME));
  work = await mkdtemp(join(tmpdir(), 'rackboot-iso-'));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test('the image is in the manifest with its size and sha256', () => {
  const entry = manifest.files.find((f) => f.name === ISO_NAME);
  assert.ok(entry, 'manifest lists rackboot.iso');
  assert.equal(entry.size, iso.length);
  assert.equal(entry.sha256, sha256(iso));
});

test("xen, xen.efi, vmlinuz and initrd.gz inside the image are the network build's files (sha256 of each read back)", async () => {
  const out = join(work, 'extracted');
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', join(buildDir, ISO_NAME), '-extract', '/', out], { stdio: 'pipe' });
  // The build's optional parts (demo guest, memtest) go in too, for their menu entries.
  const parts = ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'guest.initrd.gz', 'memtest86+x64.bin', 'memtest86+x64.efi'].filter((name) =>
    manifest.files.some((file) => file.name === name),
  );
  assert.deepEqual((await readdir(join(out, 'boot'))).filter((n) => n !== 'grub').sort(), [...parts].sort());
  for (const name of parts) {
    const want = manifest.files.find((f) => f.name === name)!.sha256;
    assert.equal(sha256(await readFile(join(out, 'boot', name))), want, name);
  }
  const sums = await readFile(join(out, 'SHA256SUMS'), 'utf8');
  assert.match(sums, new RegExp(`^${manifest.files.find((f) => f.name === 'xen')!.sha256}  boot/xen$`, 'm'));
  execFileSync('sha256sum', ['-c', '--quiet', 'SHA256SUMS'], { cwd: out });
  const grubCfg = await readFile(join(out, 'boot/grub/grub.cfg'), 'utf8');
  assert.match(grubCfg, /^set default=standard$/m);
  assert.match(grubCfg, /--id standard \{\n.*\n {2}multiboot2 \/boot\/xen /);
  assert.match(grubCfg, /--id testing \{\n.*\n {2}multiboot2 \/boot\/xen .*loglvl=all guest_loglvl=all\n {2}module2 \/boot\/vmlinuz .*ignore_loglevel/);
  assert.doesNotMatch(grubCfg, new RegExp(manifest.id), 'the image carries the content hash, not the build id or time');
});

test('hybrid: El Torito entries for BIOS and UEFI, an MBR and a GPT with the EFI partition', () => {
  const report = execFileSync('xorriso', ['-indev', join(buildDir, ISO_NAME), '-report_el_torito', 'plain', '-report_system_area', 'plain'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
  assert.equal(iso.toString('latin1', 16 * 2048 + 40, 16 * 2048 + 48), 'RACKBOOT', 'volume id in the primary volume descriptor');
  assert.match(report, /El Torito boot img : +1 +BIOS +y/);
  assert.match(report, /El Torito boot img : +2 +UEFI +y/);
  assert.equal(iso.readUInt16LE(510), 0xaa55, 'MBR boot signature');
  assert.equal(iso.toString('latin1', 512, 520), 'EFI PART', 'GPT header at LBA 1');
  assert.match(report, /GPT partname local : +\d+ +EFI boot partition/);
  const efi = findEfiBootImage(iso);
  assert.ok(efi && efi.offset > 0);
  assert.equal(iso.readUInt16LE(efi.offset + 510), 0xaa55, 'the UEFI entry points at a FAT boot sector');
});

test('made again from the same parts, later, the image has the same sha256', async () => {
  const again = await makeIso({
    partsDir: buildDir,
    parts: manifest.files,
    output: join(work, 'again.iso'),
    label: isoLabel(manifest.files),
  });
  assert.equal(again.sha256, sha256(iso));
  const other = await makeIso({ partsDir: buildDir, parts: manifest.files, output: join(work, 'other.iso'), label: 'x', epochSeconds: 1700000000 });
  assert.notEqual(other.sha256, again.sha256, 'the label and dates are in the image: the check can fail');
  // GRUB finds its medium by the volume UUID (the PVD's modification time): another menu, another UUID.
  const relabelled = await makeIso({ partsDir: buildDir, parts: manifest.files, output: join(work, 'relabelled.iso'), label: 'y' });
  const uuidOf = (image: Buffer) => image.toString('latin1', 16 * 2048 + 830, 16 * 2048 + 846);
  assert.match(uuidOf(iso), /^\d{16}$/);
  assert.notEqual(uuidOf(await readFile(relabelled.path)), uuidOf(iso));
});

test('--no-iso: the build has no image and the manifest does not list one', async () => {
  const out = await mkdtemp(join(tmpdir(), 'rackboot-noiso-'));
  try {
    const result = await build({ out, variant: 'tiny', iso: false, log: silentLogger() });
    assert.ok(!result.manifest.files.some((f) => f.name === ISO_NAME));
    assert.ok(!(await readdir(result.dir)).includes(ISO_NAME));
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
