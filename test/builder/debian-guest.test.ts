import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build, type BuildResult } from '../../builder/build.js';
import { DEFAULT_BUILD_SETTINGS } from '../../builder/config.js';
import { silentLogger } from '../../server/log.js';
import { assertRoot, run } from '../support/netns.js';

/**
 * The Debian guest image (`rackboot build --debian-guest`): two builds
 * from the same cached debootstrap tree, and what the image holds. Needs
 * root, debootstrap and squashfs-tools; without them the test fails.
 */

let out: string;
let first: BuildResult;
let second: BuildResult;

before(async () => {
  assertRoot();
  run('debootstrap', ['--version']);
  run('sh', ['-c', 'command -v mksquashfs && command -v unsquashfs']);
  out = await mkdtemp(join(tmpdir(), 'rackboot-debian-guest-'));
  const settings = { ...DEFAULT_BUILD_SETTINGS, parts: { memtest: false, guest: true, debianGuest: true, iso: false } };
  first = await build({ out, variant: 'debian', settings, log: silentLogger() });
  second = await build({ out, variant: 'debian', settings, log: silentLogger() });
  const image = second.manifest.files.find((f) => f.name === 'debian-guest.squashfs');
  process.stdout.write(
    `# debian guest build: first ${(first.durationMs / 1000).toFixed(1)} s, second ${(second.durationMs / 1000).toFixed(1)} s; debian-guest.squashfs ${((image?.size ?? 0) / 1e6).toFixed(1)} MB\n`,
  );
});

after(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

test('the Debian guest image: systemd as init, sshd making its own host keys, the report unit enabled, no docs; the same bytes from the cached tree', async () => {
  const sums = [first, second].map((result) => result.manifest.files.find((f) => f.name === 'debian-guest.squashfs')?.sha256);
  assert.ok(sums[0] !== undefined && sums[0] === sums[1], `debian-guest.squashfs ${JSON.stringify(sums)}`);
  const image = second.manifest.files.find((f) => f.name === 'debian-guest.squashfs')!;
  const contained = new Map(image.contains!.map((c) => [c.package, c.version]));
  for (const pkg of ['systemd-sysv', 'udev', 'ifupdown', 'isc-dhcp-client', 'openssh-server', 'wget', 'e2fsprogs']) assert.ok(contained.has(pkg), pkg);
  assert.ok(image.size < 60_000_000, `debian-guest.squashfs is ${image.size} bytes`);
  const listing = execFileSync('unsquashfs', ['-lln', '-d', 'R', join(second.dir, 'debian-guest.squashfs')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const paths = new Map<string, string>();
  for (const line of listing.split('\n')) {
    const m = /^(\S+) \S+ .* R\/?(.*?)(?: -> (.*))?$/.exec(line);
    if (m && m[2] !== '') paths.set(m[2]!, m[3] ?? m[1]!);
  }
  assert.equal(paths.get('usr/sbin/init'), '/lib/systemd/systemd');
  assert.equal(paths.get('etc/systemd/system/multi-user.target.wants/rackboot-guest.service'), '/etc/systemd/system/rackboot-guest.service');
  assert.equal(paths.get('usr/lib/rackboot/rackboot-guest'), '-rwxr-xr-x');
  assert.ok(paths.has('etc/systemd/system/ssh.service.d/rackboot-host-keys.conf'));
  assert.equal(paths.get('etc/systemd/network/99-default.link'), '/dev/null', 'eth0 keeps its name');
  assert.equal(paths.get('etc/systemd/system/getty-static.service'), '/dev/null');
  assert.ok(paths.has('usr/sbin/mkfs.ext4'), "the first stage makes the root's filesystem with the image's own mkfs.ext4");
  const leftIn = [...paths.keys()].filter((path) => /^usr\/share\/(doc|man|locale)\/.|^etc\/ssh\/ssh_host_|^var\/lib\/apt\/lists\/./.test(path));
  assert.deepEqual(leftIn, [], 'no docs, man pages, locales, host keys or apt lists');
});
