import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AptClient, dependencyNames, parseControlParagraph, parsePrintUris, updateFailure } from '../../builder/apt.js';
import { BuildStepError } from '../../builder/errors.js';
import { CommandError, type CommandRunner } from '../../builder/exec.js';
import { resolveInRoot } from '../../builder/unpack.js';
import { silentLogger } from '../../server/log.js';

// Captured from `apt-get download --print-uris` on Debian 12 (mirror host replaced).
const PRINT_URIS = `'http://mirror.invalid/debian/pool/main/b/busybox/busybox-static_1.35.0-4%2bdeb12u1%2bb1_amd64.deb' busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb 928188 SHA256:3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744
'http://mirror.invalid/debian/pool/main/i/ipxe/ipxe_1.0.0%2bgit-20190125.36a4c85-5.1_all.deb' ipxe_1.0.0+git-20190125.36a4c85-5.1_all.deb 1171912 SHA256:49dc854857dcfb354292bdc79ce7419e0d72988666723395b2e102d147c3730d
`;

test('print-uris lines give package, version (epoch decoded), file name, size and sha256', () => {
  const [busybox, ipxe] = parsePrintUris(PRINT_URIS);
  assert.deepEqual(busybox, {
    package: 'busybox-static',
    version: '1:1.35.0-4+deb12u1+b1',
    fileName: 'busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb',
    size: 928188,
    sha256: '3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744',
    uri: 'http://mirror.invalid/debian/pool/main/b/busybox/busybox-static_1.35.0-4%2bdeb12u1%2bb1_amd64.deb',
  });
  assert.equal(ipxe?.version, '1.0.0+git-20190125.36a4c85-5.1');
  assert.throws(() => parsePrintUris("'http://x/y.deb' y.deb 12 MD5Sum:abc\n"), /line not understood/);
  assert.throws(() => parsePrintUris(`'http://x/y.deb' y.deb 12 SHA256:${'a'.repeat(64)}\n`), /is not name_version_arch\.deb/);
});

test('control fields and Depends names', () => {
  const fields = parseControlParagraph(
    'Package: linux-image-amd64\nVersion: 6.1.192-2\nDepends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\nDescription: Linux\n more text\n\nPackage: other\n',
  );
  assert.equal(fields.get('Package'), 'linux-image-amd64');
  assert.equal(fields.get('Description'), 'Linux\nmore text');
  assert.deepEqual(dependencyNames(fields.get('Depends')!), ['linux-image-6.1.0-56-amd64']);
  assert.deepEqual(dependencyNames('kmod, linux-base (>= 4.3~), initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, libc6:amd64'), [
    'kmod',
    'linux-base',
    'initramfs-tools',
    'linux-initramfs-tool',
    'libc6',
  ]);
});

/** A fake apt: answers from a table, records every call. */
function fakeApt(options: { knownAfterUpdate?: boolean; deb?: Buffer } = {}) {
  const calls: string[] = [];
  let updated = false;
  const deb = options.deb ?? Buffer.from('a .deb');
  const sha256 = createHash('sha256').update(deb).digest('hex');
  const run: CommandRunner = async (cmd, args, opts = {}) => {
    const line = [cmd, ...args.filter((a) => a !== '-o' && !a.startsWith('APT::'))].join(' ');
    calls.push(line);
    if (line === 'apt-get -q update') {
      updated = true;
      return { stdout: '', stderr: '' };
    }
    const known = !options.knownAfterUpdate || updated;
    if (line.startsWith('apt-get download --print-uris ')) {
      const pkgs = args.slice(args.indexOf('--print-uris') + 1);
      const unknown = pkgs.find((p) => !known || p === 'nosuch');
      if (unknown) throw new CommandError(line, 100, `E: Unable to locate package ${unknown}\n`, '');
      const lines = pkgs.map((pkg) => `'http://mirror.invalid/${pkg}_2.0_all.deb' ${pkg}_2.0_all.deb ${deb.length} SHA256:${sha256}\n`);
      return { stdout: lines.join(''), stderr: '' };
    }
    if (line.startsWith('apt-get -q download ')) {
      for (const spec of args.slice(args.indexOf('download') + 1)) {
        await writeFile(join(opts.cwd!, `${spec.split('=')[0]}_2.0_all.deb`), deb);
      }
      return { stdout: '', stderr: '' };
    }
    throw new Error(`unexpected command ${line}`);
  };
  return { run, calls };
}

test("apt-get update's failure: the first source it could not fetch, with apt's reason and how many more; nothing from its summary line", () => {
  // As apt 2.6 prints it in a namespace with no way out (--error-on=any).
  const stderr = [
    "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'",
    "E: Failed to fetch http://deb.debian.org/debian/dists/bookworm-updates/InRelease  Temporary failure resolving 'deb.debian.org'",
    'E: Some index files failed to download. They have been ignored, or old ones used instead.',
    '',
  ].join('\n');
  assert.equal(
    updateFailure(stderr),
    "Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease: Temporary failure resolving 'deb.debian.org' (and 1 more)",
  );
  assert.equal(
    updateFailure('E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)\n'),
    'Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)',
  );
  assert.equal(updateFailure('W: something else\n'), undefined);
});

test('an unknown package makes apt-get update run once, then the step is retried', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'rackboot-apt-'));
  try {
    const apt = fakeApt({ knownAfterUpdate: true });
    const client = new AptClient({ cacheDir, log: silentLogger(), run: apt.run });
    const file = await client.resolve('ipxe');
    assert.equal(file.version, '2.0');
    await client.resolve('busybox-static');
    assert.deepEqual(apt.calls, [
      'apt-get download --print-uris ipxe',
      'apt-get -q update',
      'apt-get download --print-uris ipxe',
      'apt-get download --print-uris busybox-static',
    ]);
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('a package unknown even after the update fails naming the step and the package', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'rackboot-apt-'));
  try {
    const apt = fakeApt();
    const client = new AptClient({ cacheDir, log: silentLogger(), run: apt.run });
    await assert.rejects(client.resolve('nosuch'), (error: unknown) => {
      assert.ok(error instanceof BuildStepError);
      assert.equal(error.step, 'resolve');
      assert.equal(error.package, 'nosuch');
      assert.equal(error.message, 'build step "resolve" failed for package nosuch: E: Unable to locate package nosuch');
      return true;
    });
    assert.equal(apt.calls.filter((c) => c.endsWith('update')).length, 1);
    await assert.rejects(client.resolveAll(['ipxe', 'nosuch', 'busybox-static']), (error: unknown) => {
      assert.ok(error instanceof BuildStepError);
      assert.equal(error.package, 'nosuch', 'of several packages, the one apt did not know');
      return true;
    });
    assert.equal(apt.calls.filter((c) => c.endsWith('update')).length, 1, 'update runs once per build, not once per failure');
    const [ipxe, busybox] = await client.resolveAll(['ipxe', 'busybox-static']);
    assert.equal(ipxe?.package, 'ipxe');
    assert.equal(busybox?.package, 'busybox-static');
    assert.equal(apt.calls[apt.calls.length - 1], 'apt-get download --print-uris ipxe busybox-static', 'one apt-get run for all');
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('fetch downloads once, then serves the verified cache; a corrupt cached file is fetched again', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'rackboot-apt-'));
  try {
    const apt = fakeApt();
    const client = new AptClient({ cacheDir, log: silentLogger(), run: apt.run });
    const file = await client.resolve('ipxe');
    const first = await client.fetch(file);
    assert.equal(first.cached, false);
    assert.equal(first.path, join(cacheDir, 'debs', 'ipxe_2.0_all.deb'));
    assert.equal(await readFile(first.path, 'utf8'), 'a .deb');
    const second = await client.fetch(file);
    assert.equal(second.cached, true);
    assert.equal(apt.calls.filter((c) => c.startsWith('apt-get -q download')).length, 1);

    await writeFile(first.path, 'b .deb'); // same size, wrong hash
    const third = await client.fetch(file);
    assert.equal(third.cached, false);
    assert.equal(await readFile(third.path, 'utf8'), 'a .deb');
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('fetchAll downloads only what the cache lacks, in one apt-get run', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'rackboot-apt-'));
  try {
    const apt = fakeApt();
    const client = new AptClient({ cacheDir, log: silentLogger(), run: apt.run });
    const [ipxe, busybox, xen] = await client.resolveAll(['ipxe', 'busybox-static', 'xen']);
    await client.fetch(busybox!);
    const fetched = await client.fetchAll([ipxe!, busybox!, xen!]);
    assert.deepEqual(
      fetched.map((f) => [f.file.package, f.cached]),
      [
        ['ipxe', false],
        ['busybox-static', true],
        ['xen', false],
      ],
    );
    assert.deepEqual(
      apt.calls.filter((c) => c.startsWith('apt-get -q download')),
      ['apt-get -q download busybox-static=2.0', 'apt-get -q download ipxe=2.0 xen=2.0'],
    );
    assert.ok((await client.fetchAll([ipxe!, busybox!, xen!])).every((f) => f.cached));
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('fetchAll reports the bytes on disk as apt writes them: cached ones first, then the download as it grows', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'rackboot-apt-'));
  try {
    const deb = Buffer.alloc(64 * 1024, 7);
    const apt = fakeApt({ deb });
    const client = new AptClient({ cacheDir, log: silentLogger(), run: apt.run });
    const [ipxe, xen] = await client.resolveAll(['ipxe', 'xen']);
    await client.fetch(ipxe!);
    // apt-get as it runs: the .deb arrives in two halves, a second apart.
    const slow: CommandRunner = async (cmd, args, opts = {}) => {
      if (!args.includes('-q') || !args.includes('download')) return apt.run(cmd, args, opts);
      const path = join(opts.cwd!, 'xen_2.0_all.deb');
      await writeFile(path, deb.subarray(0, deb.length / 2));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await appendFile(path, deb.subarray(deb.length / 2));
      return { stdout: '', stderr: '' };
    };
    const seen: number[] = [];
    await new AptClient({ cacheDir, log: silentLogger(), run: slow }).fetchAll([ipxe!, xen!], { onBytes: (bytes) => seen.push(bytes) });
    assert.equal(seen[0], deb.length, 'the cached ipxe counts from the start');
    assert.ok(seen.includes(deb.length * 1.5), `half of xen seen on the way (${seen.join(', ')})`);
    assert.equal(seen[seen.length - 1], deb.length * 2, 'all of it at the end');
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      seen,
      'never going back',
    );
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('a download that does not match its sha256 is refused and not cached', async () => {
  const cacheDir = await mkdtemp(join(tmpdir(), 'rackboot-apt-'));
  try {
    const apt = fakeApt();
    const client = new AptClient({ cacheDir, log: silentLogger(), run: apt.run });
    const file = { ...(await client.resolve('ipxe')), sha256: 'f'.repeat(64) };
    await assert.rejects(client.fetch(file), /build step "verify" failed for package ipxe: ipxe_2.0_all.deb does not match size 6 and sha256 f{64}/);
    await assert.rejects(readFile(join(cacheDir, 'debs', 'ipxe_2.0_all.deb')), /ENOENT/);
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
});

test('symlinks inside an unpacked package resolve inside it, absolute ones too', async () => {
  const root = await mkdtemp(join(tmpdir(), 'rackboot-unpack-'));
  try {
    await mkdir(join(root, 'boot'), { recursive: true });
    await mkdir(join(root, 'usr/lib/ipxe'), { recursive: true });
    await writeFile(join(root, 'boot/ipxe.efi'), 'efi');
    await symlink('/boot/ipxe.efi', join(root, 'usr/lib/ipxe/ipxe.efi')); // as Debian's ipxe ships it
    await symlink('../../../boot/ipxe.efi', join(root, 'usr/lib/ipxe/relative.efi'));
    await symlink('/../../../etc/passwd', join(root, 'usr/lib/ipxe/escape'));
    assert.equal(await resolveInRoot(root, '/usr/lib/ipxe/ipxe.efi'), join(root, 'boot/ipxe.efi'));
    assert.equal(await resolveInRoot(root, '/usr/lib/ipxe/relative.efi'), join(root, 'boot/ipxe.efi'));
    await assert.rejects(resolveInRoot(root, '/usr/lib/ipxe/escape'), /not in the unpacked package \(no \/etc\)/);
    await assert.rejects(resolveInRoot(root, '/usr/lib/ipxe/undionly.kpxe'), /no \/usr\/lib\/ipxe\/undionly\.kpxe/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
