import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { selectModules } from '../../builder/initrd.js';
import {
  dependsOf,
  formatModulesDep,
  loadOrder,
  moduleNameOf,
  parseModinfo,
  parseModulesDep,
  transitiveModulesDep,
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

test('selectModules walks .modinfo, folds soft "pre:" dependencies in, and knows built-ins', async () => {
  const root = await mkdtemp(join(tmpdir(), 'rackboot-modules-'));
  try {
    const put = async (path: string, modinfo: string[]): Promise<void> => {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), fakeModule(modinfo));
    };
    await put('kernel/drivers/net/r8169.ko', ['depends=libphy,mdio_devres', 'softdep=pre: realtek']);
    await put('kernel/drivers/net/phy/libphy.ko', ['depends=']);
    await put('kernel/drivers/net/phy/mdio_devres.ko', ['depends=libphy']);
    await put('kernel/drivers/net/phy/realtek.ko', ['depends=libphy']);
    await put('kernel/drivers/net/unused.ko', ['depends=']);
    await put('kernel/drivers/net/needs-gone.ko', ['depends=gone']);
    await writeFile(join(root, 'modules.builtin'), 'kernel/drivers/virtio/virtio_pci.ko\n');

    const selection = await selectModules(root, ['r8169', 'virtio_pci']);
    assert.deepEqual(selection.builtin, ['virtio_pci']);
    assert.deepEqual(selection.order, [
      'kernel/drivers/net/phy/libphy.ko',
      'kernel/drivers/net/phy/realtek.ko',
      'kernel/drivers/net/phy/mdio_devres.ko',
      'kernel/drivers/net/r8169.ko',
    ]);
    assert.deepEqual(selection.dep.get('kernel/drivers/net/r8169.ko'), [
      'kernel/drivers/net/phy/mdio_devres.ko',
      'kernel/drivers/net/phy/realtek.ko',
      'kernel/drivers/net/phy/libphy.ko',
    ]);
    assert.ok(!selection.dep.has('kernel/drivers/net/unused.ko'), 'only the closure is shipped');
    await assert.rejects(selectModules(root, ['nosuch']), /kernel module nosuch is neither in .* nor built in/);
    await assert.rejects(selectModules(root, ['needs-gone']), /kernel module gone \(needed by needs_gone\) is neither/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
