import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parsePaxRecords, TarParser, type TarHeader } from '../../builder/tar.js';

/** Archives written by GNU tar in the formats dpkg-deb and others produce. */
let root: string;
const longDir = `lib/modules/6.1.0-test/kernel/drivers/net/ethernet/${'a'.repeat(60)}/${'b'.repeat(60)}`;
const longFile = `${longDir}/${'c'.repeat(110)}.ko`;
const big = Buffer.alloc(70_000, 7);

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'rackboot-tar-'));
  const tree = join(root, 'tree');
  await mkdir(join(tree, longDir), { recursive: true });
  await mkdir(join(tree, 'boot'), { recursive: true });
  await writeFile(join(tree, 'boot/vmlinuz'), 'kernel');
  await writeFile(join(tree, longFile), big);
  await writeFile(join(tree, 'empty'), '');
  await symlink(`/${longFile}`, join(tree, 'boot/link'));
});

after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function tarOf(format: string): Buffer {
  // ustar has no long-name extension: a 110-character name or link target cannot be stored, so leave those out.
  const exclude = format === 'ustar' ? ['--exclude', '*.ko', '--exclude', 'link'] : [];
  return execFileSync('tar', ['-c', `--format=${format}`, '--sort=name', ...exclude, '-C', join(root, 'tree'), '.']);
}

function parse(archive: Buffer, chunkSize: number, want: (h: TarHeader) => boolean = () => true): Array<{ header: TarHeader; data: Buffer }> {
  const got: Array<{ header: TarHeader; data: Buffer }> = [];
  const parser = new TarParser(want, (header, data) => got.push({ header, data }));
  for (let at = 0; at < archive.length; at += chunkSize) parser.push(archive.subarray(at, at + chunkSize));
  parser.end();
  return got;
}

for (const format of ['gnu', 'posix', 'ustar']) {
  test(`reads GNU tar's ${format} format, long names included, in any chunk size`, () => {
    const archive = tarOf(format);
    for (const chunkSize of [1, 511, 512, 4096, archive.length]) {
      const entries = parse(archive, chunkSize);
      const byPath = new Map(entries.map((e) => [e.header.path, e]));
      assert.equal(byPath.get('boot/vmlinuz')?.data.toString(), 'kernel');
      assert.equal(byPath.get('boot/vmlinuz')?.header.type, 'file');
      assert.equal(byPath.get('empty')?.data.length, 0);
      if (format !== 'ustar') {
        assert.equal(byPath.get('boot/link')?.header.type, 'symlink');
        assert.deepEqual(byPath.get(longFile)?.data, big, `${format}, chunks of ${chunkSize}`);
        assert.equal(byPath.get('boot/link')?.header.linkTarget, `/${longFile}`);
      }
      assert.equal(byPath.get(longDir)?.header.type, 'directory');
    }
  });
}

test('only wanted entries are collected', () => {
  const entries = parse(tarOf('gnu'), 1000, (h) => h.path.endsWith('.ko'));
  assert.deepEqual(
    entries.map((e) => e.header.path),
    [longFile],
  );
});

test('a truncated stream or a corrupt header is an error with the byte offset', () => {
  const archive = tarOf('gnu');
  assert.throws(() => parse(archive.subarray(0, archive.length / 2 + 100), 4096), /tar stream ends inside an entry/);
  const corrupt = Buffer.from(archive);
  corrupt[0] = corrupt[0]! ^ 1;
  assert.throws(() => parse(corrupt, 4096), /tar header at byte 0 has checksum \d+, computed \d+/);
});

test('pax records: length-prefixed key=value lines', () => {
  const records = parsePaxRecords(Buffer.from('30 mtime=1749042000.123456789\n17 path=a/b/c.ko\n'));
  assert.equal(records.get('path'), 'a/b/c.ko');
  assert.equal(records.get('mtime'), '1749042000.123456789');
  assert.throws(() => parsePaxRecords(Buffer.from('99 path=x\n')), /pax record at byte 0 has a bad length/);
});
