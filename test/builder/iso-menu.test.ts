import assert from 'node:assert/strict';
import { test } from 'node:test';
import { genericXenEntries, volumeUuid } from '../../builder/iso.js';
import { grubQuote, renderGrubConfig, type IsoMenu } from '../../builder/iso-menu.js';

const menu: IsoMenu = {
  label: '1a2b3c4d',
  xenEntries: genericXenEntries(),
  defaultEntry: 'standard',
  timeoutSeconds: 5,
  bootArgs: '',
  memtest: { bios: false, efi: false },
};

test('the generic menu: the network entries, standard first and default, multiboot2 on every firmware', () => {
  assert.equal(
    renderGrubConfig(menu),
    [
      '# rackboot CD/USB image: the parts of one network build, booted by GRUB.',
      '# Serial console first (racks, tests), the screen as well (a crash cart).',
      'serial --unit=0 --speed=115200',
      'terminal_input serial console',
      'terminal_output serial console',
      'set timeout=5',
      'set default=standard',
      '# Boot-line options for the runtime, added to every Xen entry, e.g.',
      '#   rackboot.net=static rackboot.ip=198.18.0.50/24 rackboot.gw=198.18.0.1 rackboot.hostname=node01',
      '# Press "c" at the menu and "set rackboot_args=..." to change them for one boot.',
      'set rackboot_args=""',
      '',
      'menuentry "Xen with the rackboot runtime [1a2b3c4d]" --id standard {',
      '  echo "rackboot: loading Xen (standard)"',
      '  multiboot2 /boot/xen console=com1,vga com1=115200,8n1',
      '  module2 /boot/vmlinuz console=tty0 console=hvc0 swiotlb=8192 quiet $rackboot_args',
      '  module2 /boot/initrd.gz',
      '}',
      'menuentry "Xen with the rackboot runtime, verbose (testing) [1a2b3c4d]" --id testing {',
      '  echo "rackboot: loading Xen (testing)"',
      '  multiboot2 /boot/xen console=com1,vga com1=115200,8n1 loglvl=all guest_loglvl=all',
      '  module2 /boot/vmlinuz console=tty0 console=hvc0 swiotlb=8192 ignore_loglevel $rackboot_args',
      '  module2 /boot/initrd.gz',
      '}',
      '',
    ].join('\n'),
  );
});

test('guest and memtest entries appear only for the parts the build has', () => {
  const full = renderGrubConfig({ ...menu, guestCommandLine: 'console=ttyS0,115200', memtest: { bios: true, efi: true } });
  assert.match(
    full,
    /menuentry "Demo guest without Xen \[1a2b3c4d\]" --id guest \{\n {2}linux \/boot\/vmlinuz console=ttyS0,115200\n {2}initrd \/boot\/guest.initrd.gz\n\}/,
  );
  assert.match(
    full,
    /if \[ "\$grub_platform" = "efi" \]; then\n {2}menuentry "Memory test \(memtest86\+\)" --id memtest \{\n {4}linux \/boot\/memtest86\+x64.efi\n {2}\}\nelse\n {2}menuentry "Memory test \(memtest86\+\)" --id memtest \{\n {4}linux16 \/boot\/memtest86\+x64.bin\n {2}\}\nfi/,
  );
  const biosOnly = renderGrubConfig({ ...menu, memtest: { bios: true, efi: false } });
  assert.match(biosOnly, /then\n {2}true\nelse\n {2}menuentry/);
  assert.doesNotMatch(renderGrubConfig(menu), /--id guest|memtest/);
});

test('boot-line values are quoted for GRUB: no variable expansion, no command injection', () => {
  assert.equal(grubQuote('a "b" $c \\d'), '"a \\"b\\" \\$c \\\\d"');
  assert.throws(() => grubQuote('a\nb'), /contains a line break/);
  const text = renderGrubConfig({
    ...menu,
    bootArgs: 'rackboot.net=static rackboot.ip=198.18.0.50/24 rackboot.hostname=node01',
    xenEntries: [{ id: 'standard', title: 'S', xenCommandLine: 'dom0_mem=512M', kernelCommandLine: 'quiet x=$y;reboot' }],
  });
  assert.match(text, /^set rackboot_args="rackboot.net=static rackboot.ip=198.18.0.50\/24 rackboot.hostname=node01"$/m);
  assert.match(text, /^ {2}module2 \/boot\/vmlinuz quiet "x=\\\$y;reboot" \$rackboot_args$/m);
  assert.throws(() => renderGrubConfig({ ...menu, defaultEntry: 'rescue' }), /default entry "rescue" is not one of standard, testing/);
});

test('the volume UUID is a valid time string near the epoch, different for different content, the same for the same', () => {
  const a = volumeUuid(1686355200, 'menu a');
  assert.match(a, /^2023\d{12}$/);
  assert.ok(a >= '2023061000000000' && a < '2024061100000000', a);
  assert.equal(volumeUuid(1686355200, 'menu a'), a);
  assert.notEqual(volumeUuid(1686355200, 'menu b'), a);
});
