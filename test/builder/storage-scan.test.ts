import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot } from '../support/build.js';
import { assertRoot } from '../support/netns.js';

/**
 * `storage-scan --blank DEV`, the check the runtime makes before it writes
 * a volume group on a disk: run here against loop devices holding what
 * real disks hold. Needs root (losetup); fails without it.
 */

const MiB = 1024 * 1024;
const script = join(repoRoot, 'builder/runtime/storage-scan');
let work: string;
const loops: string[] = [];

before(async () => {
  assertRoot();
  work = await mkdtemp(join(tmpdir(), 'rackboot-storage-scan-'));
});

after(async () => {
  for (const loop of loops) spawnSync('losetup', ['-d', loop]);
  if (work) await rm(work, { recursive: true, force: true });
});

/** A loop device over a 16 MiB file, with `write` bytes at their offsets. */
async function disk(name: string, write: Array<[number, Buffer]> = [], prepare?: (file: string) => void): Promise<string> {
  const file = join(work, `${name}.img`);
  const handle = await open(file, 'w');
  await handle.truncate(16 * MiB);
  for (const [offset, bytes] of write) await handle.write(bytes, 0, bytes.length, offset);
  await handle.close();
  prepare?.(file);
  const loop = execFileSync('losetup', ['--find', '--show', file], { encoding: 'utf8' }).trim();
  loops.push(loop);
  return loop;
}

function blank(device: string): { status: number | null; said: string } {
  const result = spawnSync('sh', [script, '--blank', device], { encoding: 'utf8' });
  return { status: result.status, said: result.stdout.trim() };
}

test('storage-scan --blank: only a disk that holds nothing is blank, and it says what the others hold', async () => {
  const mbr = Buffer.alloc(2);
  mbr[0] = 0x55;
  mbr[1] = 0xaa;
  const cases: Array<[string, string, number]> = [
    [await disk('zeros'), '', 0],
    [await disk('ext4', [], (file) => execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'keepme', file])), 'holds ext4 (label keepme)', 1],
    [await disk('dos', [[510, mbr]]), 'holds a dos partition table', 1],
    [await disk('gpt', [[512, Buffer.from('EFI PART')]]), 'holds a gpt partition table', 1],
    [await disk('lvm', [[512, Buffer.from('LABELONE')]]), 'holds LVM2_member', 1],
    [await disk('first', [[700 * 1024, Buffer.from('a database page')]]), 'holds data in its first MiB (no signature rackboot knows)', 1],
    [await disk('last', [[16 * MiB - 10, Buffer.from('tail')]]), 'holds data in its last MiB (no signature rackboot knows)', 1],
  ];
  for (const [device, said, status] of cases) assert.deepEqual(blank(device), { status, said }, device);
  assert.deepEqual(blank(join(work, 'zeros.img')), { status: 1, said: 'is not a block device' });
});
