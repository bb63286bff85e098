import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseStorageReport } from '../../server/storage/report.js';
import { repoRoot } from '../support/build.js';
import { assertRoot } from '../support/netns.js';

/**
 * `storage-scan --blank DEV`, the check the runtime makes before it writes
 * a volume group on a disk, and `--probe DEV`, what the scan says a device
 * holds: run here against loop devices holding what real disks hold, with
 * the host's sh and awk and with busybox's (the tiny runtime's). The whole
 * scan of this host's own disks is read back with the server's parser.
 * Needs root (losetup); fails without it.
 */

const MiB = 1024 * 1024;
const script = join(repoRoot, 'builder/runtime/storage-scan');
let work: string;
const loops: string[] = [];
/** Each shell the scan runs under, as the PATH that picks it: the host's, and busybox's applets (the tiny runtime's). */
const shells: Array<[string, string]> = [];

before(async () => {
  assertRoot();
  work = await mkdtemp(join(tmpdir(), 'rackboot-storage-scan-'));
  const bin = join(work, 'busybox-bin');
  await mkdir(bin);
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  for (const applet of ['sh', 'awk', 'od', 'dd', 'tr', 'sed', 'readlink', 'cat']) await symlink(busybox, join(bin, applet));
  shells.push(['sh', process.env.PATH ?? ''], ['busybox sh', `${bin}:${process.env.PATH}`]);
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
  const result = scan(['--blank', device], shells[0]![1]);
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

/** storage-scan with `args` under the shell that PATH picks. */
function scan(args: string[], PATH: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('sh', [script, ...args], { encoding: 'utf8', env: { ...process.env, PATH } });
}

test('storage-scan --probe: partition tables, filesystems and labels as blkid names them, in one pipeline, under sh and under busybox', async () => {
  const mkfs = (args: string[]) => (file: string) => execFileSync(args[0]!, [...args.slice(1), file], { stdio: 'ignore' });
  const bytes = (text: string) => Buffer.from(text, 'latin1');
  const cases: Array<[string, string]> = [
    [await disk('p-zeros'), 'table= filesystem= label='],
    [await disk('p-ext4', [], mkfs(['mke2fs', '-q', '-F', '-t', 'ext4', '-L', 'keepme'])), 'table= filesystem=ext4 label=keepme'],
    [await disk('p-ext3', [], mkfs(['mke2fs', '-q', '-F', '-t', 'ext3', '-L', 'two words'])), 'table= filesystem=ext3 label=two words'],
    // A quote in a label reaches the shell through eval: it must stay a quote.
    [await disk('p-ext2', [], mkfs(['mke2fs', '-q', '-F', '-t', 'ext2', '-L', "it's"])), "table= filesystem=ext2 label=it's"],
    [await disk('p-utf8', [], mkfs(['mke2fs', '-q', '-F', '-t', 'ext4', '-L', 'dé'])), 'table= filesystem=ext4 label=dé'],
    [await disk('p-swap', [], mkfs(['mkswap', '-L', 'swap1'])), 'table= filesystem=swap label=swap1'],
    [await disk('p-dos', [[510, Buffer.from([0x55, 0xaa])]]), 'table=dos filesystem= label='],
    [
      await disk('p-gpt', [
        [510, Buffer.from([0x55, 0xaa])],
        [512, bytes('EFI PART')],
      ]),
      'table=gpt filesystem= label=',
    ],
    [await disk('p-lvm', [[512, bytes('LABELONE')]]), 'table= filesystem=LVM2_member label='],
    [
      await disk('p-xfs', [
        [0, bytes('XFSB')],
        [108, bytes('data\0\0\0\0')],
      ]),
      'table= filesystem=xfs label=data',
    ],
    [
      await disk('p-btrfs', [
        [65600, bytes('_BHRfS_M')],
        [65835, bytes('pool  ')],
      ]),
      'table= filesystem=btrfs label=pool',
    ],
    [await disk('p-luks', [[0, bytes('LUKS\xba\xbe')]]), 'table= filesystem=crypto_LUKS label='],
    [await disk('p-ntfs', [[3, bytes('NTFS    ')]]), 'table= filesystem=ntfs label='],
    [
      await disk('p-iso', [
        [32769, bytes('CD001')],
        [32808, bytes('RACKBOOT'.padEnd(32))],
      ]),
      'table= filesystem=iso9660 label=RACKBOOT',
    ],
    [
      await disk('p-fat32', [
        [82, bytes('FAT32   ')],
        [71, bytes('BOOT       ')],
      ]),
      'table= filesystem=vfat label=BOOT',
    ],
    // A FAT filesystem with no label says "NO NAME", and blkid shows none; an MBR under a filesystem is the filesystem's.
    [
      await disk('p-fat16', [
        [54, bytes('FAT16   ')],
        [43, bytes('NO NAME    ')],
        [510, Buffer.from([0x55, 0xaa])],
      ]),
      'table= filesystem=vfat label=',
    ],
    [
      await disk('p-fat12', [
        [54, bytes('FAT12   ')],
        [43, bytes('EFI        ')],
      ]),
      'table= filesystem=vfat label=EFI',
    ],
  ];
  for (const [device, said] of cases) {
    for (const [shell, PATH] of shells) {
      const result = scan(['--probe', device], PATH);
      assert.equal(result.status, 0, `${shell} ${device}: ${result.stderr}`);
      assert.equal(result.stdout, `${said}\n`, `${shell}, ${device}`);
    }
  }
  const notDevice = scan(['--probe', join(work, 'p-zeros.img')], shells[0]![1]);
  assert.equal(notDevice.status, 1);
  assert.match(notDevice.stderr, /p-zeros\.img is not a block device/);
});

const listDisks =
  'for b in /sys/block/*; do n=${b##*/}; case $n in loop*|ram*|zram*|dm-*|sr*|nbd*|md*|fd*) continue;; esac; [ "$(cat $b/size)" -gt 0 ] && echo $n; done';

test("storage-scan: the whole scan of this host's disks is a report the server reads, with the same disks as /sys/block", () => {
  for (const [shell, PATH] of shells) {
    const result = scan([], PATH);
    assert.equal(result.status, 0, `${shell}: ${result.stderr}`);
    const parsed = parseStorageReport(result.stdout);
    assert.ok(parsed.ok, `${shell}: ${parsed.ok ? '' : `line ${parsed.line}: ${parsed.message}`}\n${result.stdout}`);
    // Written out here rather than asked of the script: the disks of /sys/block a scan must list.
    const disks = execFileSync('sh', ['-c', listDisks], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.ok(disks.length > 0, 'this host has a disk to scan');
    assert.deepEqual(
      parsed.report.disks.map((d) => d.name),
      disks,
    );
  }
});
