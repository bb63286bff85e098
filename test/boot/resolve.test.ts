import assert from 'node:assert/strict';
import { test } from 'node:test';
import { domainDefaults } from '../../server/profiles/domain.js';
import type { Build } from '../../server/assets/builds.js';
import { ClientArch, type ClientFacts } from '../../server/core/facts.js';
import { chooseBootFile, resolveHostBoot } from '../../server/core/resolve.js';
import { resolveTftpPath } from '../../server/core/tftp-path.js';
import { deriveDomainMac } from '../../server/profiles/domain.js';
import { memoryBuild } from '../support/assets.js';
import { makeProfile } from '../support/profiles.js';

const endpoints = { address: '198.18.0.1', httpPort: 8080 };
const build: Build = { ...memoryBuild('20261125T180000Z-abc123', []), dir: '/x' };

function facts(overrides: Partial<ClientFacts>): ClientFacts {
  return { mac: '52:54:00:12:34:56', arch: undefined, platform: 'bios', isPxe: false, isHttpBoot: false, isIpxe: false, ...overrides };
}

test('chooseBootFile: one row per kind of client', () => {
  const rows: Array<[string, Partial<ClientFacts>, unknown]> = [
    ['legacy BIOS PXE ROM', { isPxe: true, arch: ClientArch.biosX86 }, { kind: 'tftp', file: 'undionly.kpxe' }],
    ['PXE ROM without option 93', { isPxe: true }, { kind: 'tftp', file: 'undionly.kpxe' }],
    ['UEFI x64 PXE (OVMF, arch 7)', { isPxe: true, arch: ClientArch.efiBc, platform: 'efi64' }, { kind: 'tftp', file: 'ipxe.efi' }],
    ['UEFI x64 PXE (arch 9)', { isPxe: true, arch: ClientArch.efiX64, platform: 'efi64' }, { kind: 'tftp', file: 'ipxe.efi' }],
    ['iPXE on BIOS: the loop breaker', { isPxe: true, isIpxe: true, arch: 0 }, { kind: 'http', url: 'http://198.18.0.1:8080/boot.ipxe' }],
    ['iPXE on EFI', { isPxe: true, isIpxe: true, arch: 7, platform: 'efi64' }, { kind: 'http', url: 'http://198.18.0.1:8080/boot.ipxe' }],
    ['UEFI HTTP Boot x64', { isHttpBoot: true, arch: 16, platform: 'efi64' }, { kind: 'http', url: 'http://198.18.0.1:8080/ipxe.efi' }],
  ];
  for (const [name, input, want] of rows) assert.deepEqual(chooseBootFile(facts(input), endpoints), want, name);

  for (const input of [{}, { isPxe: true, arch: ClientArch.efiIa32 }, { isPxe: true, arch: 11 }, { isHttpBoot: true, arch: 19 }]) {
    const choice = chooseBootFile(facts(input), endpoints);
    assert.equal(choice.kind, 'none', JSON.stringify(input));
    assert.ok(choice.kind === 'none' && choice.reason.length > 10);
  }
  assert.deepEqual(chooseBootFile(facts({ isIpxe: true }), { address: '198.18.0.1', httpPort: 80 }), {
    kind: 'http',
    url: 'http://198.18.0.1/boot.ipxe',
  });
});

test('resolveHostBoot: static profile gives pinned URLs and complete command lines', () => {
  const boot = resolveHostBoot({ mac: '52:54:00:12:34:56', platform: 'bios', profile: makeProfile(), build, endpoints });
  assert.equal(boot.kind, 'boot');
  if (boot.kind !== 'boot') return;
  const { plan } = boot;
  assert.equal(plan.xenCommandLine, 'console=com1,vga com1=115200,8n1 dom0_mem=512M');
  assert.equal(
    plan.kernelCommandLine,
    'console=tty0 console=hvc0 swiotlb=8192 quiet rackboot.server=http://198.18.0.1:8080 rackboot.mac=52:54:00:12:34:56 rackboot.hostname=node01 ' +
      'rackboot.net=static rackboot.ip=198.18.0.50/24 rackboot.gw=198.18.0.1 rackboot.dns=198.18.0.1',
  );
  assert.ok(!plan.kernelCommandLine.includes('$6$'), 'the hash never goes on a command line');
  assert.equal(plan.urls.xen, 'http://198.18.0.1:8080/builds/20261125T180000Z-abc123/xen');
  assert.equal(plan.urls.xenCfg, 'http://198.18.0.1:8080/hosts/52-54-00-12-34-56/builds/20261125T180000Z-abc123/standard/xen.cfg');
});

test('resolveHostBoot: default profile fills {mac}, dhcp network, testing entry, unknown entry falls back', () => {
  const defaults = makeProfile({ mac: null, hostname: 'node-{mac}', network: { mode: 'dhcp' }, source: 'profiles/default.yaml' });
  const boot = resolveHostBoot({ mac: '52:54:00:ab:cd:ef', platform: 'efi64', profile: defaults, build, endpoints });
  assert.ok(boot.kind === 'boot');
  assert.equal(boot.plan.profile.hostname, 'node-525400abcdef');
  assert.match(boot.plan.kernelCommandLine, / rackboot\.net=dhcp$/);

  const testing = resolveHostBoot({
    mac: '52:54:00:12:34:56',
    platform: 'bios',
    build,
    endpoints,
    profile: makeProfile({ boot: { entry: 'testing', xenArgs: 'dom0_mem=1G', kernelArgs: 'rackboot.poweroff=1', menuTimeout: 5 } }),
  });
  assert.ok(testing.kind === 'boot');
  assert.equal(testing.plan.xenCommandLine, 'console=com1,vga com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=1G');
  assert.match(testing.plan.kernelCommandLine, /^console=tty0 console=hvc0 swiotlb=8192 ignore_loglevel rackboot\.server=/);
  assert.match(testing.plan.kernelCommandLine, / rackboot\.poweroff=1$/);

  const memtest = resolveHostBoot({
    mac: '52:54:00:12:34:56',
    platform: 'bios',
    build,
    endpoints,
    profile: makeProfile({ boot: { entry: 'memtest', xenArgs: '', kernelArgs: '', menuTimeout: 5 } }),
  });
  assert.ok(memtest.kind === 'boot');
  assert.equal(memtest.plan.entry.name, 'standard');
  assert.equal(memtest.plan.entryNote, 'boot entry "memtest" is not in this build; booting "standard"');
});

function buildWith(...names: string[]): Build {
  return { ...build, manifest: memoryBuild(build.id, names).manifest };
}

const demoDomain = { ...domainDefaults, memory: 128 };

test('resolveHostBoot: the menu offers only what the build and the platform have', () => {
  const names = (platform: 'bios' | 'efi64', parts: string[]) => {
    const boot = resolveHostBoot({ mac: '52:54:00:12:34:56', platform, profile: makeProfile(), build: buildWith(...parts), endpoints });
    assert.ok(boot.kind === 'boot');
    return boot.plan.menu.map((item) => item.name);
  };
  const base = ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz'];
  assert.deepEqual(names('bios', base), ['standard', 'testing']);
  assert.deepEqual(names('bios', [...base, 'guest.initrd.gz', 'memtest86+x64.bin']), ['standard', 'testing', 'guest', 'memtest']);
  assert.deepEqual(names('efi64', [...base, 'guest.initrd.gz', 'memtest86+x64.bin']), ['standard', 'testing', 'guest'], 'the BIOS memtest is no EFI program');
  assert.deepEqual(names('efi64', [...base, 'memtest86+x64.efi']), ['standard', 'testing', 'memtest']);

  const memtest = resolveHostBoot({
    mac: '52:54:00:12:34:56',
    platform: 'bios',
    endpoints,
    build: buildWith(...base, 'memtest86+x64.bin'),
    profile: makeProfile({ boot: { entry: 'memtest', xenArgs: '', kernelArgs: '', menuTimeout: 0 } }),
  });
  assert.ok(memtest.kind === 'boot');
  assert.equal(memtest.plan.defaultEntry, 'memtest');
  assert.equal(memtest.plan.entryNote, undefined);
  assert.equal(memtest.plan.entry.name, 'standard', 'xen.cfg still describes a Xen entry');
  assert.equal(memtest.plan.menuTimeout, 0);
});

test('resolveHostBoot: guests get stable MACs; ones whose parts are missing are noted, not started, and the host still boots', () => {
  const profile = makeProfile({
    domains: [
      { name: 'demo1', ...demoDomain },
      { name: 'demo2', ...demoDomain, mac: '02:00:00:00:00:02', restart: true },
      { name: 'idle', ...demoDomain, autostart: false },
      { name: 'custom', ...demoDomain, kernel: 'vmlinuz-custom', ramdisk: 'custom.gz' },
    ],
  });
  const withGuest = resolveHostBoot({ mac: '52:54:00:12:34:56', platform: 'bios', profile, build: buildWith('vmlinuz', 'guest.initrd.gz'), endpoints });
  assert.ok(withGuest.kind === 'boot');
  const { plan } = withGuest;
  assert.deepEqual(
    plan.domains.map((domain) => [domain.name, domain.start]),
    [
      ['demo1', true],
      ['demo2', true],
      ['idle', false],
      ['custom', false],
    ],
  );
  assert.equal(plan.domains[0]!.mac, deriveDomainMac('52:54:00:12:34:56', 'demo1', new Set(['52:54:00:12:34:56', '02:00:00:00:00:02'])));
  assert.equal(plan.domains[1]!.mac, '02:00:00:00:00:02');
  assert.equal(new Set(plan.domains.map((domain) => domain.mac)).size, 4);
  assert.deepEqual(plan.guestParts, ['vmlinuz', 'guest.initrd.gz']);
  assert.deepEqual(plan.notes, ['domain custom not started: build has no vmlinuz-custom or custom.gz']);

  // A build without the guest userland (the tiny runtime): no guests, the host boots all the same.
  const tiny = resolveHostBoot({ mac: '52:54:00:12:34:56', platform: 'bios', profile, build: buildWith('xen', 'vmlinuz', 'initrd.gz'), endpoints });
  assert.ok(tiny.kind === 'boot');
  assert.deepEqual(
    tiny.plan.domains.map((domain) => domain.start),
    [false, false, false, false],
  );
  assert.deepEqual(tiny.plan.guestParts, []);
  assert.deepEqual(tiny.plan.notes, [
    'domain demo1 not started: build has no guest.initrd.gz',
    'domain demo2 not started: build has no guest.initrd.gz',
    'domain custom not started: build has no vmlinuz-custom or custom.gz',
  ]);
  assert.deepEqual(
    tiny.plan.domains.map((domain) => domain.mac),
    plan.domains.map((domain) => domain.mac),
    'MACs do not depend on the build',
  );
});

test('resolveHostBoot: no profile and no build are named results', () => {
  assert.deepEqual(resolveHostBoot({ mac: 'aa:bb:cc:dd:ee:ff', platform: 'bios', profile: undefined, build, endpoints }), {
    kind: 'no-profile',
    mac: 'aa:bb:cc:dd:ee:ff',
  });
  assert.deepEqual(resolveHostBoot({ mac: 'aa:bb:cc:dd:ee:ff', platform: 'bios', profile: makeProfile(), build: undefined, endpoints }), {
    kind: 'no-build',
    mac: 'aa:bb:cc:dd:ee:ff',
    reason: 'the server has no boot parts yet (run "rackboot build")',
  });
});

test('resolveTftpPath: current and pinned build files, nothing else', () => {
  assert.deepEqual(resolveTftpPath('ipxe.efi'), { name: 'ipxe.efi' });
  assert.deepEqual(resolveTftpPath('/undionly.kpxe'), { name: 'undionly.kpxe' });
  assert.deepEqual(resolveTftpPath('builds/b1/ipxe.efi'), { buildId: 'b1', name: 'ipxe.efi' });
  assert.equal(resolveTftpPath('../etc/passwd'), undefined);
  assert.equal(resolveTftpPath('builds/../x/ipxe.efi'), undefined);
  assert.equal(resolveTftpPath('a/b'), undefined);
  assert.equal(resolveTftpPath(''), undefined);
});
