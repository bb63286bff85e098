import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bootMachine, startRack, type Rack } from '../support/boot.js';

let rack: Rack;

before(async () => {
  rack = await startRack({
    'node03.yaml': [
      'mac: 52:54:00:12:34:63',
      'hostname: node03',
      'boot:',
      // The menu is drawn and left alone: choose times out to the testing entry.
      '  entry: testing',
      '  menuTimeout: 1',
      '  kernelArgs: "rackboot.poweroff=1"',
      // The build has no custom.initrd.gz: the guest is left out, the host boots.
      'domains:',
      '  - name: demo1',
      '    ramdisk: custom.initrd.gz',
      '',
    ].join('\n'),
  });
});

after(async () => {
  await rack?.close();
});

test('BIOS: the boot menu times out to the testing entry; Xen and dom0 log verbosely; a guest without parts is noted', { timeout: 420_000 }, async () => {
  const result = await bootMachine(rack, 'bios', '52:54:00:12:34:63');
  process.stderr.write(`BIOS boot of node03 through the menu (testing entry) to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node03');
  assert.equal(result.mac, '52:54:00:12:34:63');
  const console = result.console;
  assert.match(console, /Xen version 4\.17/);
  // Xen's command line as it echoes it: the testing entry's arguments.
  assert.match(console, /\(XEN\) Command line: console=com1,vga com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=256M,max:256M\r/);
  // Xen states its log levels as it hands over to dom0; by default they are
  // "Errors and warnings" and "Nothing (Rate-limited: Errors and warnings)".
  assert.match(console, /\(XEN\) Std\. Loglevel: All\r/);
  assert.match(console, /\(XEN\) Guest Loglevel: All\r/);
  // Linux prints this only when booted with ignore_loglevel, and with it
  // (and without quiet) its boot messages reach the console.
  assert.match(console, /printk: debug: ignoring loglevel setting\./);
  assert.match(console, /Kernel command line: console=tty0 console=hvc0 swiotlb=8192 ignore_loglevel rackboot\.server=/);

  // QEMU's iPXE ROM draws its menu on the screen, not the serial line: the
  // server's log shows the script it got, with the note about the guest.
  const script = rack.events().find((event) => event.event === 'boot-script' && event.mac === '52:54:00:12:34:63');
  assert.ok(script, 'the host fetched its menu script');
  assert.equal(script.entry, 'testing');
  assert.deepEqual(script.notes, ['domain demo1 not started: build has no custom.initrd.gz']);
  // No guest was asked to start: the runtime got an empty list.
  assert.ok(rack.events().some((event) => event.event === 'runtime-env' && event.mac === '52:54:00:12:34:63'));
});
