import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BUILD_FILES,
  OPTIONAL_BUILD_FILES,
  buildId,
  contentDigestInput,
  createManifest,
  parseManifest,
  type ManifestFile,
} from '../../server/assets/manifest.js';

const sha = (c: string): string => c.repeat(64);

function files(): ManifestFile[] {
  return BUILD_FILES.map((name, i) => ({ name, size: 100 + i, sha256: sha('0123456'[i]!), package: 'pkg', version: '1.0' }));
}

test('build ids sort by creation time and carry a content hash', () => {
  const a = buildId(new Date('2025-05-20T09:59:59.999Z'), 'abcdef0123456789');
  const b = buildId(new Date('2025-05-20T10:00:00.000Z'), '0000000000000000');
  assert.equal(a, '20250520T095959.999Z-abcdef01');
  assert.equal(b, '20250520T100000.000Z-00000000');
  assert.ok(a < b);
  assert.match(a, /^[0-9a-fTZ.-]+$/, 'safe as a folder name and in a URL');
  assert.throws(() => buildId(new Date(), 'XYZ'), /not lower-case hex/);
});

test('the content digest input does not depend on file order', () => {
  const f = files();
  assert.equal(contentDigestInput(f), contentDigestInput([...f].reverse()));
  assert.equal(contentDigestInput(f).split('\n')[0], `initrd.gz ${sha('3')}`);
});

test('createManifest orders files as BUILD_FILES and refuses missing or unknown names', () => {
  const created = new Date('2025-05-20T10:00:00Z');
  const m = createManifest('id1', created, [...files()].reverse(), 'tiny');
  assert.deepEqual(
    m.files.map((f) => f.name),
    ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'undionly.kpxe', 'ipxe.efi', 'snponly.efi'],
  );
  assert.equal(m.release, 'bookworm');
  assert.equal(m.created, '2025-05-20T10:00:00.000Z');
  assert.throws(() => createManifest('id', created, files().slice(1), 'tiny'), /manifest is missing xen$/);
  assert.throws(() => createManifest('id', created, [...files(), { ...files()[0]!, name: 'grub.efi' as 'xen' }], 'tiny'), /must be distinct names/);
});

test('parseManifest accepts what createManifest writes and names bad fields', () => {
  const m = createManifest('id1', new Date('2025-05-20T10:00:00Z'), files(), 'debian');
  m.files[3]!.contains = [{ package: 'busybox-static', version: '1:1.35.0-4' }];
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m))), m);
  const broken = (change: (j: any) => void): unknown => {
    const j = JSON.parse(JSON.stringify(m));
    change(j);
    return j;
  };
  assert.throws(() => parseManifest(broken((j) => (j.release = 'trixie'))), /release is "trixie", want "bookworm"/);
  assert.throws(() => parseManifest(broken((j) => (j.files[1].sha256 = 'ABC'))), /files\[1\]\.sha256 is not 64 lower-case hex digits/);
  assert.throws(() => parseManifest(broken((j) => (j.files[2].size = -1))), /files\[2\]\.size must be a whole number/);
  assert.throws(() => parseManifest(broken((j) => (j.files[3].contains[0].version = ''))), /files\[3\]\.contains\[0\]\.version/);
  assert.throws(() => parseManifest(broken((j) => (j.created = 'yesterday'))), /created "yesterday" is not a date/);
  assert.throws(() => parseManifest(broken((j) => (j.variant = 'alpine'))), /variant is "alpine", want one of "debian", "tiny"/);
  assert.equal(parseManifest(broken((j) => delete j.variant)).variant, 'tiny', 'builds from before variants hold the busybox runtime');
});

test('the guest initrd, the Debian guest image and memtest are optional parts, listed after the required ones', () => {
  const optional: ManifestFile[] = OPTIONAL_BUILD_FILES.map((name, i) => ({ name, size: 10 + i, sha256: sha('abcde'[i]!), package: 'pkg', version: '1' }));
  const m = createManifest('id2', new Date('2025-05-20T10:00:00Z'), [...optional].reverse().concat(files()), 'debian');
  assert.deepEqual(
    m.files.map((f) => f.name),
    [...BUILD_FILES, 'guest.initrd.gz', 'debian-guest.squashfs', 'memtest86+x64.bin', 'memtest86+x64.efi', 'rackboot.iso'],
  );
  assert.equal(m.variant, 'debian');
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m))), m);
  assert.throws(() => createManifest('id', new Date(), files(), 'alpine' as 'tiny'), /variant "alpine" is not one of debian, tiny/);
});

test('the CD/USB image is an optional file, listed after the required ones', () => {
  const created = new Date('2025-05-20T10:00:00Z');
  const iso: ManifestFile = { name: 'rackboot.iso', size: 1, sha256: sha('f'), package: 'rackboot-runtime', version: '0.1.0' };
  const m = createManifest('id1', created, [iso, ...files()], 'tiny');
  assert.deepEqual(m.files.map((f) => f.name).slice(-2), ['snponly.efi', 'rackboot.iso']);
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m))), m);
  assert.equal(createManifest('id1', created, files(), 'tiny').files.length, BUILD_FILES.length);
});

test('the builder recipe round-trips; a malformed one is refused; builds from before it have none', () => {
  const recipe = sha('7');
  const m = createManifest('id1', new Date('2025-05-20T10:00:00Z'), files(), 'debian', recipe);
  assert.equal(m.recipe, recipe);
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m))), m);
  assert.throws(() => createManifest('id1', new Date(), files(), 'debian', 'abc'), /manifest recipe "abc" is not 64 lower-case hex digits/);
  assert.throws(() => parseManifest({ ...JSON.parse(JSON.stringify(m)), recipe: 42 }), /recipe is not 64 lower-case hex digits/);
  const old = JSON.parse(JSON.stringify(m));
  delete old.recipe;
  assert.equal(parseManifest(old).recipe, undefined);
  assert.ok(!('recipe' in createManifest('id1', new Date(), files(), 'debian')), 'no recipe, no field');
});

test('the channel round-trips; a malformed one is refused; the default channel writes none', () => {
  const m = createManifest('id1', new Date('2025-05-20T10:00:00Z'), files(), 'debian', sha('7'), 'testing');
  assert.equal(m.channel, 'testing');
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m))), m);
  assert.deepEqual(Object.keys(m), ['id', 'created', 'release', 'variant', 'recipe', 'channel', 'files']);
  assert.throws(() => createManifest('id1', new Date(), files(), 'debian', undefined, '../x'), /manifest channel "\.\.\/x" is not a channel name/);
  assert.throws(() => parseManifest({ ...JSON.parse(JSON.stringify(m)), channel: 'Testing' }), /manifest: channel is "Testing", not a channel name/);
  assert.ok(!('channel' in createManifest('id1', new Date(), files(), 'debian')), 'no channel, no field');
});

test('the extra packages round-trip with their installed sizes; malformed ones are refused; a build without any writes none', () => {
  const extras = [
    { package: 'htop', version: '3.2.2-2', installedKiB: 412 },
    { package: 'libnl-3-200', version: '3.7.0-0.2+b1', installedKiB: 175, dependency: true as const },
  ];
  const m = createManifest('id1', new Date('2025-05-20T10:00:00Z'), files(), 'debian', sha('7'), 'fat', { extraPackages: extras });
  assert.deepEqual(m.extraPackages, extras);
  assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m))), m);
  assert.deepEqual(Object.keys(m), ['id', 'created', 'release', 'variant', 'recipe', 'channel', 'extraPackages', 'files']);
  const json = JSON.parse(JSON.stringify(m)) as Record<string, unknown>;
  assert.throws(() => parseManifest({ ...json, extraPackages: 'htop' }), /manifest: extraPackages must be an array/);
  assert.throws(
    () => parseManifest({ ...json, extraPackages: [{ package: 'htop', version: '1', installedKiB: -1 }] }),
    /extraPackages\[0\]\.installedKiB must be a whole number/,
  );
  assert.throws(
    () => parseManifest({ ...json, extraPackages: [{ package: 'htop', version: '1', installedKiB: 1, dependency: 'yes' }] }),
    /extraPackages\[0\]\.dependency/,
  );
  assert.ok(!('extraPackages' in createManifest('id1', new Date(), files(), 'debian', undefined, undefined, { extraPackages: [] })), 'none, no field');
});
