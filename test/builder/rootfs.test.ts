import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseInstalled, rootfsKey } from '../../builder/rootfs.js';

const inputs = {
  release: 'bookworm',
  mirror: 'http://deb.debian.org/debian',
  packages: ['xen-utils-4.17', 'kmod'],
  sources: { 'sources.list': 'deb x y z\n' },
};

test("the cached tree's key: extra packages make another tree, none keeps the key trees made before them have", () => {
  assert.equal(rootfsKey({ ...inputs, extra: [] }), rootfsKey(inputs));
  assert.notEqual(rootfsKey({ ...inputs, extra: ['htop'] }), rootfsKey(inputs));
  assert.equal(rootfsKey({ ...inputs, extra: ['htop', 'less'] }), rootfsKey({ ...inputs, extra: ['less', 'htop'] }));
  // An extra package is installed after the others, so naming it extra is not the same tree as naming it among them.
  assert.notEqual(rootfsKey({ ...inputs, extra: ['htop'] }), rootfsKey({ ...inputs, packages: [...inputs.packages, 'htop'] }));
});

test("dpkg-query's listing: name, version and installed size (KiB), sorted; a package without a size counts 0", () => {
  assert.deepEqual(parseInstalled('tzdata\t2024a-0+deb12u1\t2580\nbase-files\t12.4+deb12u8\t386\nvirtual-thing\t1.0\t\n'), [
    { package: 'base-files', version: '12.4+deb12u8', installedKiB: 386 },
    { package: 'tzdata', version: '2024a-0+deb12u1', installedKiB: 2580 },
    { package: 'virtual-thing', version: '1.0', installedKiB: 0 },
  ]);
});
