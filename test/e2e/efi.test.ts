import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bootMachine, startRack, type Rack } from '../support/boot.js';

let rack: Rack;

before(async () => {
  rack = await startRack({
    'node02.yaml': [
      'mac: 52:54:00:12:34:57',
      'hostname: node02',
      'network:',
      '  mode: static',
      '  address: 198.18.0.51/24',
      '  gateway: 198.18.0.1',
      '  dns: [198.18.0.1]',
      'boot:',
      '  kernelArgs: "rackboot.poweroff=1"',
      '',
    ].join('\n'),
  });
});

after(async () => {
  await rack?.close();
});

test('UEFI: OVMF PXE takes ipxe.efi by TFTP, then xen.efi with a per-host xen.cfg, to the ready line', { timeout: 480_000 }, async () => {
  const result = await bootMachine(rack, 'efi', '52:54:00:12:34:57');
  process.stderr.write(`UEFI boot of node02 to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node02');
  assert.equal(result.ip, '198.18.0.51/24');
  assert.equal(result.mac, '52:54:00:12:34:57');
  assert.match(result.console, /Xen version 4\.17/);

  const events = rack.events();
  // The firmware's own PXE client fetched iPXE over TFTP...
  assert.ok(
    events.some((event) => JSON.stringify(event).includes('ipxe.efi') && JSON.stringify(event).toLowerCase().includes('tftp')),
    'a TFTP transfer of ipxe.efi was logged',
  );
  // ...then iPXE asked for the EFI script and this host's xen.cfg.
  assert.ok(events.some((event) => event.event === 'boot-script' && event.mac === '52:54:00:12:34:57' && event.platform === 'efi64'));
  assert.ok(events.some((event) => event.event === 'http' && String(event.path).endsWith('/xen.cfg') && event.status === 200));
});
