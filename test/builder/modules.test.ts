import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { readKernelPackage } from '../../builder/kernel.js';
import {
  dependsOf,
  formatModulesDep,
  loadOrder,
  moduleNameOf,
  parseModinfo,
  parseModulesDep,
  selectModules,
  softPreOf,
  transitiveModulesDep,
  type ModuleIndex,
} from '../../builder/modules.js';
import { fakeModule } from './elf-fixture.js';

// Lines as depmod wrote them for Debian's 6.1.0-56-amd64 (depmod -b DIR 6.1.0-56-amd64).
const DEPMOD = `kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/llc/llc.ko:
kernel/drivers/net/xen-netback/xen-netback.ko:
kernel/drivers/net/ethernet/intel/e1000/e1000.ko:
`;

test('module names: basename without .ko, "-" read as "_"', () => {
  assert.equal(moduleNameOf('kernel/drivers/net/xen-netback/xen-netback.ko'), 'xen_netback');
  assert.equal(moduleNameOf('xen-netback'), 'xen_netback');
  assert.equal(moduleNameOf('kernel/fs/ext4/ext4.ko.xz'), 'ext4');
});

test('modules.dep parses and formats back to the same text, sorted', () => {
  const dep = parseModulesDep(`# comment\n\n${DEPMOD}`);
  assert.equal(dep.size, 8);
  assert.deepEqual(dep.get('kernel/net/bridge/bridge.ko'), ['kernel/net/802/stp.ko', 'kernel/net/llc/llc.ko']);
  const text = formatModulesDep(dep);
  assert.deepEqual(parseModulesDep(text), dep);
  assert.equal(text, [...DEPMOD.trim().split('\n')].sort().join('\n') + '\n');
  assert.throws(() => parseModulesDep('kernel/a.ko\n'), /line 1 has no "path:" prefix/);
});

test('load order puts dependencies first and keeps the requested order otherwise', () => {
  const dep = parseModulesDep(DEPMOD);
  const { order, missing } = loadOrder(dep, ['e1000', 'virtio_net', 'bridge', 'xen-netback']);
  assert.deepEqual(missing, []);
  assert.deepEqual(order, [
    'kernel/drivers/net/ethernet/intel/e1000/e1000.ko',
    'kernel/net/core/failover.ko',
    'kernel/drivers/net/net_failover.ko',
    'kernel/drivers/net/virtio_net.ko',
    'kernel/net/llc/llc.ko',
    'kernel/net/802/stp.ko',
    'kernel/net/bridge/bridge.ko',
    'kernel/drivers/net/xen-netback/xen-netback.ko',
  ]);
});

test('load order reports what is missing instead of guessing', () => {
  const dep = parseModulesDep('kernel/a.ko: kernel/b.ko\n');
  assert.deepEqual(loadOrder(dep, ['a', 'zzz']), { order: ['kernel/a.ko'], missing: ['kernel/b.ko', 'zzz'] });
});

test('a dependency cycle is an error naming the cycle', () => {
  const dep = parseModulesDep('kernel/a.ko: kernel/b.ko\nkernel/b.ko: kernel/a.ko\n');
  assert.throws(() => loadOrder(dep, ['a']), /module dependency cycle: a -> b -> a/);
});

test('transitive modules.dep from direct dependencies matches what depmod writes', () => {
  const direct = parseModulesDep(
    [
      'kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko',
      'kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko',
      'kernel/net/core/failover.ko:',
      'kernel/net/bridge/bridge.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko',
      'kernel/net/802/stp.ko: kernel/net/llc/llc.ko',
      'kernel/net/llc/llc.ko:',
      'kernel/drivers/net/xen-netback/xen-netback.ko:',
      'kernel/drivers/net/ethernet/intel/e1000/e1000.ko:',
    ].join('\n'),
  );
  const transitive = transitiveModulesDep(direct, [...direct.keys()]);
  assert.deepEqual(transitive, parseModulesDep(DEPMOD));
});

test('.modinfo strings are read from the ELF section', () => {
  const info = parseModinfo(fakeModule(['license=GPL', 'depends=mii,libphy', 'alias=pci:v00008086d*', 'alias=pci:v000010ECd*', 'name=e100']));
  assert.deepEqual(info.get('license'), ['GPL']);
  assert.deepEqual(info.get('alias'), ['pci:v00008086d*', 'pci:v000010ECd*']);
  assert.deepEqual(dependsOf(info), ['mii', 'libphy']);
  assert.deepEqual(dependsOf(parseModinfo(fakeModule(['depends=']))), []);
  assert.throws(() => parseModinfo(Buffer.from('not an elf at all, clearly not one')), /not an ELF file/);
  const elf32 = fakeModule([]);
  elf32[4] = 1;
  assert.throws(() => parseModinfo(elf32), /ELF class 1 data 1, want 2/);
});

test('selectModules follows hard dependencies, folds soft "pre:" ones in, and knows built-ins', () => {
  const index: ModuleIndex = new Map();
  const add = (path: string, modinfo: string[]): void => {
    const info = parseModinfo(fakeModule(modinfo));
    index.set(moduleNameOf(path), { path, depends: dependsOf(info), softPre: softPreOf(info) });
  };
  add('kernel/drivers/net/r8169.ko', ['depends=libphy,mdio_devres', 'softdep=pre: realtek post: nothing']);
  add('kernel/drivers/net/phy/libphy.ko', ['depends=']);
  add('kernel/drivers/net/phy/mdio_devres.ko', ['depends=libphy']);
  add('kernel/drivers/net/phy/realtek.ko', ['depends=libphy']);
  add('kernel/drivers/net/unused.ko', ['depends=']);
  add('kernel/drivers/net/needs-gone.ko', ['depends=gone']);
  add('kernel/drivers/net/soft-gone.ko', ['depends=', 'softdep=pre: gone']);
  const builtin = new Set(['virtio_pci']);

  const selection = selectModules(index, builtin, ['r8169', 'virtio_pci', 'soft-gone']);
  assert.deepEqual(selection.builtin, ['virtio_pci']);
  assert.deepEqual(selection.order, [
    'kernel/drivers/net/phy/libphy.ko',
    'kernel/drivers/net/phy/realtek.ko',
    'kernel/drivers/net/phy/mdio_devres.ko',
    'kernel/drivers/net/r8169.ko',
    'kernel/drivers/net/soft-gone.ko',
  ]);
  assert.deepEqual(selection.dep.get('kernel/drivers/net/r8169.ko'), [
    'kernel/drivers/net/phy/mdio_devres.ko',
    'kernel/drivers/net/phy/realtek.ko',
    'kernel/drivers/net/phy/libphy.ko',
  ]);
  assert.ok(!selection.dep.has('kernel/drivers/net/unused.ko'), 'only the closure is shipped');
  assert.throws(() => selectModules(index, builtin, ['nosuch']), /kernel module nosuch is neither a module of this kernel nor built in/);
  assert.throws(() => selectModules(index, builtin, ['needs-gone']), /kernel module gone \(needed by needs_gone\) is neither/);
});

test('readKernelPackage streams a linux-image .deb: kernel, selected modules, their modules.dep', async () => {
  const root = await mkdtemp(join(tmpdir(), 'rackboot-kernel-'));
  try {
    const tree = join(root, 'tree');
    const put = async (path: string, data: Buffer | string): Promise<void> => {
      await mkdir(dirname(join(tree, path)), { recursive: true });
      await writeFile(join(tree, path), data);
    };
    const deep = 'lib/modules/9.9.9-test/kernel/drivers/net/ethernet/some-vendor-with-a-long-name/another-long-folder-name';
    await put('DEBIAN/control', 'Package: linux-image-9.9.9-test\nVersion: 1\nArchitecture: amd64\nMaintainer: x <x@example.invalid>\nDescription: test\n');
    await put('boot/vmlinuz-9.9.9-test', 'kernel image');
    await put(`${deep}/nic-with-a-long-module-name.ko`, fakeModule(['depends=libphy']));
    await put('lib/modules/9.9.9-test/kernel/drivers/net/phy/libphy.ko', fakeModule(['depends=']));
    await put('lib/modules/9.9.9-test/kernel/drivers/net/unused.ko', fakeModule(['depends=']));
    await put('lib/modules/9.9.9-test/modules.builtin', 'kernel/drivers/virtio/virtio_pci.ko\n');
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '-b', tree, join(root, 'k.deb')], { stdio: 'ignore' });

    const deb = { path: join(root, 'k.deb'), sha256: 'a'.repeat(64), name: 'linux-image-9.9.9-test', version: '9.9.9-test' };
    const indexPath = join(root, 'index', 'k.deb.json');
    const nic = `${deep.slice('lib/modules/9.9.9-test/'.length)}/nic-with-a-long-module-name.ko`;
    for (const pass of ['first', 'with saved index']) {
      const kernel = await readKernelPackage(deb, ['nic-with-a-long-module-name', 'virtio_pci'], { indexPath });
      assert.equal(kernel.indexReused, pass !== 'first');
      assert.equal(kernel.vmlinuz.toString(), 'kernel image');
      assert.deepEqual(kernel.selection.order, ['kernel/drivers/net/phy/libphy.ko', nic]);
      assert.deepEqual(kernel.selection.builtin, ['virtio_pci']);
      assert.deepEqual([...kernel.files.keys()].sort(), ['kernel/drivers/net/phy/libphy.ko', nic, 'modules.builtin'].sort(), pass);
      assert.deepEqual(kernel.files.get(nic), fakeModule(['depends=libphy']));
    }
    // An index saved for another .deb (different sha256) is not trusted.
    const other = await readKernelPackage({ ...deb, sha256: 'b'.repeat(64) }, ['libphy'], { indexPath });
    assert.equal(other.indexReused, false);
    await assert.rejects(
      readKernelPackage({ ...deb, version: '9.9.9-other' }, ['libphy']),
      /build step "kernel" failed for package linux-image-9.9.9-test: the package has no modules in \/lib\/modules\/9.9.9-other\//,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
