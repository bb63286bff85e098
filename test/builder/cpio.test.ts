import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { decodeCpio, encodeCpio, normalisePath, withParentDirectories, type CpioEntry } from '../../builder/cpio.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

const sample: CpioEntry[] = [
  { type: 'file', path: 'init', mode: 0o755, data: bytes('#!/bin/sh\necho hi\n') },
  { type: 'directory', path: 'bin', mode: 0o755 },
  { type: 'file', path: 'bin/busybox', mode: 0o755, data: bytes('x'.repeat(5)) },
  { type: 'symlink', path: 'bin/sh', target: '/bin/busybox' },
  { type: 'directory', path: 'dev', mode: 0o755 },
  { type: 'character-device', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
];

test('encode then decode gives the members back, sorted, with the fixed mtime', () => {
  const decoded = decodeCpio(encodeCpio(sample, { mtime: 946684800 }));
  assert.deepEqual(
    decoded.map((e) => e.path),
    ['bin', 'bin/busybox', 'bin/sh', 'dev', 'dev/console', 'init'],
  );
  assert.ok(decoded.every((e) => e.mtime === 946684800));
  const init = decoded.find((e) => e.path === 'init');
  assert.equal(init?.type, 'file');
  assert.equal(init?.type === 'file' && Buffer.from(init.data).toString(), '#!/bin/sh\necho hi\n');
  assert.equal(init?.type === 'file' && init.mode, 0o755);
  assert.deepEqual(
    decoded.find((e) => e.path === 'bin/sh'),
    { type: 'symlink', path: 'bin/sh', target: '/bin/busybox', mtime: 946684800 },
  );
  assert.deepEqual(
    decoded.find((e) => e.path === 'dev/console'),
    {
      type: 'character-device',
      path: 'dev/console',
      mode: 0o600,
      major: 5,
      minor: 1,
      mtime: 946684800,
    },
  );
});

test('the encoding is stable: input order does not matter', () => {
  const a = encodeCpio(sample);
  const b = encodeCpio([...sample].reverse());
  assert.ok(a.equals(b));
  // Every header and every data block starts 4-byte aligned; the archive ends with the trailer.
  assert.equal(a.length % 4, 0);
  assert.match(a.subarray(a.length - 124).toString('latin1'), /TRAILER!!!\0/);
});

test('header fields are the newc layout: magic, 13 hex fields, name, padding', () => {
  const archive = encodeCpio([{ type: 'file', path: 'a', mode: 0o644, data: bytes('hello') }], { mtime: 0x12345678 });
  const header = archive.subarray(0, 110).toString('ascii');
  assert.equal(header.slice(0, 6), '070701');
  const fields = header.slice(6).match(/.{8}/g)!;
  assert.deepEqual(fields, [
    '00000001', // ino
    '000081a4', // mode: regular file 0644
    '00000000', // uid
    '00000000', // gid
    '00000001', // nlink
    '12345678', // mtime
    '00000005', // filesize
    '00000000', // devmajor
    '00000000', // devminor
    '00000000', // rdevmajor
    '00000000', // rdevminor
    '00000002', // namesize: "a" and its NUL
    '00000000', // check
  ]);
  // 110 + 2 = 112 is aligned: data follows at once, then 3 bytes of padding.
  assert.equal(archive.subarray(112, 117).toString(), 'hello');
  assert.deepEqual([...archive.subarray(117, 120)], [0, 0, 0]);
  assert.equal(archive.subarray(120, 126).toString(), '070701');
});

test('GNU cpio reads the archive and agrees on every member', () => {
  const listing = execFileSync('cpio', ['-itv', '--quiet'], { input: encodeCpio(withParentDirectories(sample), { mtime: 946684800 }) }).toString();
  const lines = listing.trim().split('\n');
  assert.equal(lines.length, 6);
  assert.match(
    lines.find((l) => l.endsWith(' init'))!,
    /^-rwxr-xr-x +1 root +root +18 /,
  );
  assert.match(
    lines.find((l) => l.includes('bin/sh'))!,
    /^lrwxrwxrwx .* bin\/sh -> \/bin\/busybox$/,
  );
  assert.match(
    lines.find((l) => l.includes('dev/console'))!,
    /^crw------- .* 5, +1 .*dev\/console$/,
  );
  assert.match(
    lines.find((l) => l.endsWith(' bin'))!,
    /^drwxr-xr-x /,
  );
});

test('withParentDirectories adds each missing parent once, keeping existing ones', () => {
  const entries = withParentDirectories([
    { type: 'file', path: 'lib/modules/6.1/kernel/a.ko', mode: 0o644, data: bytes('') },
    { type: 'file', path: 'lib/modules/6.1/kernel/b.ko', mode: 0o644, data: bytes('') },
    { type: 'directory', path: 'lib', mode: 0o700 },
  ]);
  const dirs = entries.filter((e) => e.type === 'directory').map((e) => [e.path, e.type === 'directory' && e.mode]);
  assert.deepEqual(dirs, [
    ['lib', 0o700],
    ['lib/modules', 0o755],
    ['lib/modules/6.1', 0o755],
    ['lib/modules/6.1/kernel', 0o755],
  ]);
});

test('paths are made relative; the root, "..", and duplicates are refused', () => {
  assert.equal(normalisePath('/bin//sh'), 'bin/sh');
  assert.equal(normalisePath('./etc/'), 'etc');
  assert.throws(() => normalisePath('/'), /names the archive root/);
  assert.throws(() => normalisePath('lib/../etc/passwd'), /"\." or "\.\." component/);
  assert.throws(
    () =>
      encodeCpio([
        { type: 'directory', path: 'etc', mode: 0o755 },
        { type: 'directory', path: '/etc', mode: 0o755 },
      ]),
    /cpio path "etc" appears twice/,
  );
});

test('malformed archives are refused with the byte offset', () => {
  const good = encodeCpio(sample);
  assert.throws(() => decodeCpio(good.subarray(0, 50)), /ends at byte 50 inside a header at 0/);
  const badMagic = Buffer.from(good);
  badMagic.write('070707', 0, 'ascii');
  assert.throws(() => decodeCpio(badMagic), /header at byte 0 has magic "070707", want "070701"/);
  const badHex = Buffer.from(good);
  badHex.write('zzzzzzzz', 6, 'ascii');
  assert.throws(() => decodeCpio(badHex), /field 0 is "zzzzzzzz", not hex/);
  assert.throws(() => decodeCpio(good.subarray(0, good.length - 124)), /ends at byte/);
});
