import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePolicy } from '../../builder/apt.js';
import { changed, changesSince, manifestPackages, type BuildNow } from '../../builder/if-changed.js';
import { renderChanges } from '../../builder/summary.js';
import { createManifest, type ManifestFile } from '../../server/assets/manifest.js';

const sha = (c: string) => c.repeat(64);
const file = (name: string, pkg: string, version: string, contains?: Array<{ package: string; version: string }>): ManifestFile =>
  ({ name, size: 1, sha256: sha('a'), package: pkg, version, ...(contains ? { contains } : {}) }) as ManifestFile;

const manifest = createManifest(
  'b1',
  new Date('2026-12-01T00:00:00Z'),
  [
    file('xen', 'xen-hypervisor-4.17-amd64', '4.17.7-1'),
    file('xen.efi', 'xen-hypervisor-4.17-amd64', '4.17.7-1'),
    file('vmlinuz', 'linux-image-6.1.0-57-amd64', '6.1.192-3'),
    file('initrd.gz', 'rackboot-runtime', '0.1.0', [
      { package: 'busybox-static', version: '1:1.35.0-4' },
      { package: 'linux-image-6.1.0-57-amd64', version: '6.1.192-3' },
    ]),
    file('undionly.kpxe', 'ipxe', '1.0.0-5'),
    file('ipxe.efi', 'ipxe', '1.0.0-5'),
    file('snponly.efi', 'ipxe', '1.0.0-5'),
    file('memtest86+x64.bin', 'memtest86+', '6.10-4'),
  ],
  'tiny',
  sha('7'),
  undefined,
  { extraPackages: [{ package: 'htop', version: '3.2.2-2', installedKiB: 400 }] },
);

const now = (over: Partial<BuildNow> = {}): BuildNow => ({
  recipe: sha('7'),
  variant: 'tiny',
  parts: { memtest: true, guest: false, debianGuest: false, iso: false },
  extraPackages: ['htop'],
  kernelPackage: 'linux-image-6.1.0-57-amd64',
  versions: new Map(manifestPackages(manifest)),
  ...over,
});

test("a build's packages: every file's and what it contains, the runtime's own package left out", () => {
  assert.deepEqual([...manifestPackages(manifest)].sort(), [
    ['busybox-static', '1:1.35.0-4'],
    ['htop', '3.2.2-2'],
    ['ipxe', '1.0.0-5'],
    ['linux-image-6.1.0-57-amd64', '6.1.192-3'],
    ['memtest86+', '6.10-4'],
    ['xen-hypervisor-4.17-amd64', '4.17.7-1'],
  ]);
});

test('nothing changed: no change; a newer package, a new kernel package, the builder, the variant, the parts and the extra packages each are one', () => {
  assert.equal(changed(changesSince(manifest, now())), false);
  const versions = new Map<string, string | null>(manifestPackages(manifest));
  versions.set('busybox-static', '1:1.35.0-4+deb12u1');
  versions.set('htop', null);
  const changes = changesSince(
    manifest,
    now({
      versions,
      kernelPackage: 'linux-image-6.1.0-58-amd64',
      recipe: sha('8'),
      variant: 'debian',
      parts: { memtest: false, guest: true, debianGuest: false, iso: false },
      extraPackages: ['tcpdump'],
    }),
  );
  assert.deepEqual(changes, {
    since: 'b1',
    packages: [
      { package: 'busybox-static', from: '1:1.35.0-4', to: '1:1.35.0-4+deb12u1' },
      { package: 'htop', from: '3.2.2-2', to: null },
      { package: 'linux-image-amd64', from: 'linux-image-6.1.0-57-amd64', to: 'linux-image-6.1.0-58-amd64' },
    ],
    reasons: [
      'the builder changed (its recipe differs)',
      'variant tiny -> debian',
      'drops memtest86+x64.bin',
      'adds guest.initrd.gz',
      'extra packages: +tcpdump -htop',
    ],
  });
  assert.equal(
    renderChanges(changes),
    [
      '  the builder changed (its recipe differs)',
      '  variant tiny -> debian',
      '  drops memtest86+x64.bin',
      '  adds guest.initrd.gz',
      '  extra packages: +tcpdump -htop',
      '  busybox-static: 1:1.35.0-4 -> 1:1.35.0-4+deb12u1',
      '  htop: 3.2.2-2 -> (none)',
      '  linux-image-amd64: linux-image-6.1.0-57-amd64 -> linux-image-6.1.0-58-amd64',
      '',
    ].join('\n'),
  );
});

test("apt-cache policy: each package's candidate; (none) and a package apt does not know are null", () => {
  const text = [
    'busybox-static:',
    '  Installed: (none)',
    '  Candidate: 1:1.35.0-4+deb12u1+b1',
    '  Version table:',
    '     1:1.35.0-4+deb12u1+b1 500',
    'xen-utils-4.17:amd64:',
    '  Installed: 4.17.7-1',
    '  Candidate: 4.17.7-2',
    'gone:',
    '  Installed: (none)',
    '  Candidate: (none)',
    '',
  ].join('\n');
  assert.deepEqual(
    [...parsePolicy(text, ['busybox-static', 'xen-utils-4.17', 'gone', 'never-heard-of'])],
    [
      ['busybox-static', '1:1.35.0-4+deb12u1+b1'],
      ['xen-utils-4.17', '4.17.7-2'],
      ['gone', null],
      ['never-heard-of', null],
    ],
  );
});
