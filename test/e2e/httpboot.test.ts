import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bootMachine, startRack, type Rack } from '../support/boot.js';

let rack: Rack;

before(async () => {
  rack = await startRack({
    'node03.yaml': ['mac: 52:54:00:12:34:58', 'hostname: node03', 'boot:', '  kernelArgs: "rackboot.poweroff=1"', ''].join('\n'),
  });
});

after(async () => {
  await rack?.close();
});

test('UEFI HTTP Boot: OVMF gets ipxe.efi by URL (HEAD, then GET), then boots to the ready line', { timeout: 480_000 }, async () => {
  const result = await bootMachine(rack, 'efi-http', '52:54:00:12:34:58');
  process.stderr.write(`UEFI HTTP Boot of node03 to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node03');
  assert.equal(result.mac, '52:54:00:12:34:58');
  assert.match(result.ip, /^198\.18\.0\.(\d+)\/24$/);

  const events = rack.events();
  // The firmware announced itself as an HTTP Boot client and got a URL.
  const offer = events.find((event) => event.mac === '52:54:00:12:34:58' && event.type === 'DHCPDISCOVER' && event.arch === 16);
  assert.ok(offer, `an HTTPClient DISCOVER (arch 16) was answered: ${JSON.stringify(events.filter((e) => e.mac === '52:54:00:12:34:58'))}`);
  assert.deepEqual(offer.boot, { kind: 'http', url: 'http://198.18.0.1:8080/ipxe.efi' });
  // UEFI HTTP Boot asks with HEAD before it downloads.
  const ipxe = events.filter((event) => event.event === 'http' && event.path === '/ipxe.efi');
  assert.ok(
    ipxe.some((event) => event.method === 'HEAD' && event.status === 200),
    'HEAD /ipxe.efi answered',
  );
  assert.ok(
    ipxe.some((event) => event.method === 'GET' && event.status === 200),
    'GET /ipxe.efi answered',
  );
  assert.ok(!events.some((event) => JSON.stringify(event).toLowerCase().includes('tftp') && JSON.stringify(event).includes('ipxe.efi')), 'no TFTP');
  assert.ok(events.some((event) => event.event === 'boot-script' && event.mac === '52:54:00:12:34:58' && event.platform === 'efi64'));
});
