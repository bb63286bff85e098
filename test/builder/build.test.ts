import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { build, defaultCacheDir, kernelVersionOf, type BuildResult } from '../../builder/build.js';
import { decodeCpio, type CpioEntry } from '../../builder/cpio.js';
import { BuildStepError } from '../../builder/errors.js';
import { INITRD_MTIME, RUNTIME_MODULES } from '../../builder/initrd.js';
import { BUILD_FILES, OPTIONAL_BUILD_FILES, parseManifest } from '../../server/assets/manifest.js';
import { moduleNameOf, parseModulesDep } from '../../builder/modules.js';
import { findMultibootHeaders, isElf } from '../../builder/multiboot.js';
import { silentLogger } from '../../server/log.js';

/**
 * Two real builds into a temporary assets folder, sharing the user's
 * download cache: the second must download nothing.
 */

let out: string;
let first: BuildResult;
let second: BuildResult;
let currentAfterFirst: string;

before(async () => {
  out = await mkdtemp(join(tmpdir(), 'rackboot-build-test-'));
  first = await build({ out, variant: 'tiny', log: silentLogger() });
  currentAfterFirst = await readlink(join(out, 'current'));
  second = await build({ out, variant: 'tiny', log: silentLogger() });
  process.stdout.write(
    `# build: first ${(first.durationMs / 1000).toFixed(1)} s (downloaded ${first.packages.downloaded.length}), ` +
      `second ${(second.durationMs / 1000).toFixed(1)} s (downloaded ${second.packages.downloaded.length}); ` +
      `initrd.gz ${second.manifest.files.find((f) => f.name === 'initrd.gz')!.size} bytes\n`,
  );
});

after(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

async function initrdEntries(result: BuildResult): Promise<Map<string, CpioEntry & { mtime: number }>> {
  const entries = decodeCpio(gunzipSync(await readFile(join(result.dir, 'initrd.gz'))));
  return new Map(entries.map((e) => [e.path, e]));
}

test('the second build downloads nothing: every package comes from the cache', () => {
  assert.deepEqual(second.packages.downloaded, []);
  assert.deepEqual([...second.packages.cached].sort(), [...first.packages.downloaded, ...first.packages.cached].sort());
  assert.equal(second.packages.cached.length, 5);
});

test('each build is a new folder builds/<id>; current points at the newest', async () => {
  assert.notEqual(first.id, second.id);
  assert.ok(first.id < second.id, 'ids sort by time');
  assert.equal(currentAfterFirst, `builds/${first.id}`);
  assert.equal(await readlink(join(out, 'current')), `builds/${second.id}`);
  assert.equal(second.dir, join(out, 'builds', second.id));
  assert.deepEqual((await readdir(join(out, 'builds'))).sort(), [first.id, second.id].sort(), 'no partial folders left');
  assert.deepEqual((await readdir(out)).sort(), ['builds', 'current'], 'no temporary symlink left');
});

test('manifest.json lists every file with its real size and sha256 and where it came from', async () => {
  for (const result of [first, second]) {
    const manifest = parseManifest(JSON.parse(await readFile(join(result.dir, 'manifest.json'), 'utf8')));
    assert.deepEqual(manifest, result.manifest);
    assert.equal(manifest.id, result.id);
    assert.equal(manifest.release, 'bookworm');
    assert.equal(manifest.variant, 'tiny');
    // Every optional part but the Debian guest image, which is off by default.
    const made = OPTIONAL_BUILD_FILES.filter((name) => name !== 'debian-guest.squashfs');
    assert.deepEqual(
      manifest.files.map((f) => f.name),
      [...BUILD_FILES, ...made],
    );
    assert.deepEqual((await readdir(result.dir)).sort(), [...BUILD_FILES, ...made, 'manifest.json'].sort());
    for (const file of manifest.files) {
      const data = await readFile(join(result.dir, file.name));
      assert.equal(file.size, data.length, file.name);
      assert.equal(file.sha256, sha256(data), file.name);
    }
  }
  const byName = new Map(second.manifest.files.map((f) => [f.name, f]));
  assert.equal(byName.get('xen')!.package, 'xen-hypervisor-4.17-amd64');
  assert.equal(byName.get('xen.efi')!.package, 'xen-hypervisor-4.17-amd64');
  assert.match(byName.get('vmlinuz')!.package, /^linux-image-6\.1\.0-\d+-amd64$/);
  for (const name of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const) assert.equal(byName.get(name)!.package, 'ipxe');
  for (const name of ['memtest86+x64.bin', 'memtest86+x64.efi'] as const) assert.equal(byName.get(name)!.package, 'memtest86+');
  assert.equal(byName.get('guest.initrd.gz')!.package, 'rackboot-runtime');
  const initrd = byName.get('initrd.gz')!;
  assert.equal(initrd.package, 'rackboot-runtime');
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(initrd.version, pkg.version);
  assert.deepEqual(
    initrd.contains!.map((c) => c.package),
    ['busybox-static', byName.get('vmlinuz')!.package],
  );
  assert.equal(initrd.contains![1]!.version, byName.get('vmlinuz')!.version);
});

test('the boot files are what their loaders expect', async () => {
  const xen = await readFile(join(second.dir, 'xen'));
  assert.ok(isElf(xen), 'xen is an ELF (gunzipped)');
  assert.ok(
    findMultibootHeaders(xen).some((h) => h.version === 1),
    'xen has a Multiboot 1 header',
  );
  for (const name of ['xen.efi', 'ipxe.efi', 'snponly.efi']) {
    const pe = await readFile(join(second.dir, name));
    assert.equal(pe.toString('latin1', 0, 2), 'MZ', name);
    assert.equal(pe.toString('latin1', pe.readUInt32LE(0x3c), pe.readUInt32LE(0x3c) + 4), 'PE\0\0', name);
  }
  const kernel = await readFile(join(second.dir, 'vmlinuz'));
  assert.equal(kernel.toString('latin1', 0x202, 0x206), 'HdrS', 'vmlinuz is a bzImage');
  const memtestEfi = await readFile(join(second.dir, 'memtest86+x64.efi'));
  assert.equal(memtestEfi.toString('latin1', memtestEfi.readUInt32LE(0x3c), memtestEfi.readUInt32LE(0x3c) + 4), 'PE\0\0', 'memtest86+x64.efi is a PE image');
  const memtestBin = await readFile(join(second.dir, 'memtest86+x64.bin'));
  assert.equal(memtestBin.toString('latin1', 0x202, 0x206), 'HdrS', 'memtest86+x64.bin boots by the Linux boot protocol');
  const kpxe = await readFile(join(second.dir, 'undionly.kpxe'));
  assert.ok(kpxe.length > 10_000 && kpxe.length < 1_000_000);
});

test('the runtime initrd is reproducible: both builds made the same bytes', () => {
  const a = first.manifest.files.find((f) => f.name === 'initrd.gz')!;
  const b = second.manifest.files.find((f) => f.name === 'initrd.gz')!;
  assert.equal(a.sha256, b.sha256);
});

test('the initrd holds /init, busybox with its applets, device nodes and a closed module set', async () => {
  const entries = await initrdEntries(second);
  const init = entries.get('init');
  assert.equal(init?.type, 'file');
  assert.ok(init?.type === 'file' && init.mode === 0o755);
  assert.ok(init?.type === 'file' && Buffer.from(init.data).toString().startsWith('#!/bin/sh\n'));
  assert.equal(entries.get('bin/busybox')?.type, 'file');
  for (const applet of [
    'bin/sh',
    'sbin/init',
    'sbin/insmod',
    'sbin/modprobe',
    'sbin/ip',
    'usr/bin/wget',
    'sbin/udhcpc',
    'sbin/getty',
    'bin/login',
    'sbin/poweroff',
  ]) {
    assert.deepEqual(entries.get(applet), { type: 'symlink', path: applet, target: '/bin/busybox', mtime: INITRD_MTIME }, applet);
  }
  assert.equal(entries.get('usr/share/udhcpc/default.script')?.type, 'file');
  assert.deepEqual(entries.get('dev/console'), { type: 'character-device', path: 'dev/console', mode: 0o600, major: 5, minor: 1, mtime: INITRD_MTIME });
  assert.ok([...entries.values()].every((e) => e.mtime === INITRD_MTIME));
  // Every member's parent directory precedes it, so the kernel can create it.
  const order = [...entries.keys()];
  order.forEach((path, i) => {
    const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : undefined;
    if (parent !== undefined) assert.ok(order.indexOf(parent) >= 0 && order.indexOf(parent) < i, `${parent} before ${path}`);
  });

  const kver = kernelVersionOf(second.manifest.files.find((f) => f.name === 'vmlinuz')!.package);
  const base = `lib/modules/${kver}`;
  const depEntry = entries.get(`${base}/modules.dep`);
  assert.ok(depEntry?.type === 'file');
  const dep = parseModulesDep(Buffer.from(depEntry.data).toString());
  const shipped = [...entries.keys()]
    .filter((p) => p.endsWith('.ko'))
    .map((p) => p.slice(base.length + 1))
    .sort();
  assert.deepEqual([...dep.keys()].sort(), shipped, 'modules.dep lists exactly the shipped modules');
  for (const [path, deps] of dep) for (const d of deps) assert.ok(dep.has(d), `${path} needs ${d}, which is shipped`);
  const names = new Set(shipped.map(moduleNameOf));
  for (const wanted of RUNTIME_MODULES) assert.ok(names.has(moduleNameOf(wanted)), `${wanted} is shipped`);

  const loadEntry = entries.get('etc/rackboot/modules');
  assert.ok(loadEntry?.type === 'file');
  const load = Buffer.from(loadEntry.data).toString().trim().split('\n');
  assert.deepEqual([...load].sort(), shipped);
  load.forEach((path, i) => {
    for (const d of dep.get(path)!) assert.ok(load.indexOf(d) < i, `${d} loads before ${path}`);
  });
});

test('modules.dep in the initrd agrees with depmod run over the whole kernel package', async () => {
  const vmlinuz = second.manifest.files.find((f) => f.name === 'vmlinuz')!;
  const kver = kernelVersionOf(vmlinuz.package);
  const debs = await readdir(join(defaultCacheDir(), 'debs'));
  const deb = debs.find((d) => decodeURIComponent(d) === `${vmlinuz.package}_${vmlinuz.version}_amd64.deb`);
  assert.ok(deb, `${vmlinuz.package} ${vmlinuz.version} is in the download cache`);
  const root = await mkdtemp(join(tmpdir(), 'rackboot-depmod-'));
  try {
    execFileSync('dpkg-deb', ['-x', join(defaultCacheDir(), 'debs', deb), root]);
    execFileSync('depmod', ['-b', root, kver]);
    const reference = parseModulesDep(await readFile(join(root, 'lib/modules', kver, 'modules.dep'), 'utf8'));
    const softdeps = await readFile(join(root, 'lib/modules', kver, 'modules.softdep'), 'utf8');
    const entries = await initrdEntries(second);
    const ours = entries.get(`lib/modules/${kver}/modules.dep`);
    assert.ok(ours?.type === 'file');
    for (const [path, deps] of parseModulesDep(Buffer.from(ours.data).toString())) {
      const want = reference.get(path);
      assert.ok(want, `depmod knows ${path}`);
      // We fold "softdep X pre: Y" into X's dependencies (busybox modprobe reads no modules.softdep).
      const extra = deps.filter((d) => !want.includes(d));
      for (const d of extra) {
        assert.match(softdeps, new RegExp(`^softdep ${moduleNameOf(path)} pre:.*\\b${moduleNameOf(d)}\\b`, 'm'), `${path}: ${d} is a soft dependency`);
      }
      assert.deepEqual([...want].sort(), deps.filter((d) => !extra.includes(d)).sort(), path);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('two builds of the same parts make the same CD/USB image, byte for byte', () => {
  const iso = (result: BuildResult) => result.manifest.files.find((f) => f.name === 'rackboot.iso')!;
  assert.notEqual(first.id, second.id);
  assert.equal(iso(first).sha256, iso(second).sha256);
  assert.deepEqual(
    iso(second).contains!.map((c) => c.package),
    ['grub-efi-amd64-bin', 'grub-pc-bin', 'mtools', 'xorriso'],
    'the host tools that made it, with their versions',
  );
});

test('a failed build leaves current as it was and removes its build folder', async () => {
  const broken = await mkdtemp(join(tmpdir(), 'rackboot-build-fail-'));
  try {
    // A real folder named current cannot be replaced by rename(2): the publish step fails at the very end.
    await mkdir(join(broken, 'current'));
    await writeFile(join(broken, 'current', 'keep'), 'old');
    await assert.rejects(build({ out: broken, variant: 'tiny', log: silentLogger() }), (error: unknown) => {
      assert.ok(error instanceof BuildStepError);
      assert.equal(error.step, 'publish');
      return true;
    });
    assert.deepEqual(await readdir(join(broken, 'builds')), [], 'no build folder, partial or finished, is left');
    assert.ok((await stat(join(broken, 'current'))).isDirectory());
    assert.equal(await readFile(join(broken, 'current', 'keep'), 'utf8'), 'old');
    assert.deepEqual((await readdir(broken)).sort(), ['builds', 'current']);
  } finally {
    await rm(broken, { recursive: true, force: true });
  }
});
