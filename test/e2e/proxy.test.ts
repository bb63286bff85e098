import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bootMachine, startRack, type Rack } from '../support/boot.js';
import { sitePoolEnd, sitePoolStart } from '../support/site-dhcp.js';
import { ipv4ToNumber } from '../../server/net/ipv4.js';

// proxyDHCP beside a site DHCP server: dnsmasq (in a namespace of its own,
// bridged to the machines' wire) hands out every address; `rackboot serve
// --dhcp proxy` only tells network-boot clients what to boot.

let rack: Rack;

before(async () => {
  rack = await startRack(
    {
      // Runtime network by DHCP: the runtime's udhcpc, a plain DHCP client, gets its address from dnsmasq.
      'node11.yaml': ['mac: 52:54:00:12:35:11', 'hostname: node11', 'network:', '  mode: dhcp', 'boot:', '  kernelArgs: "rackboot.poweroff=1"', ''].join('\n'),
      'node12.yaml': [
        'mac: 52:54:00:12:35:12',
        'hostname: node12',
        'network:',
        '  mode: static',
        '  address: 198.18.0.60/24',
        'boot:',
        '  kernelArgs: "rackboot.poweroff=1"',
        '',
      ].join('\n'),
      // Everyone else (node13, the HTTP Boot machine): DHCP, powered off after the ready line.
      'default.yaml': ['hostname: "node-{mac}"', 'boot:', '  kernelArgs: "rackboot.poweroff=1"', ''].join('\n'),
    },
    { dhcp: 'proxy' },
  );
});

after(async () => {
  await rack?.close();
});

function inSitePool(address: string): boolean {
  const n = ipv4ToNumber(address);
  return n >= ipv4ToNumber(sitePoolStart) && n <= ipv4ToNumber(sitePoolEnd);
}

function dhcpEvents(mac: string) {
  return rack.events().filter((event) => event.mac === mac && typeof event.type === 'string');
}

test('proxy, BIOS: the iPXE ROM takes its address from dnsmasq and boot.ipxe from the proxy offer, to the ready line', { timeout: 420_000 }, async () => {
  const mac = '52:54:00:12:35:11';
  const result = await bootMachine(rack, 'bios', mac);
  process.stderr.write(`proxyDHCP BIOS boot of node11 to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node11');
  assert.equal(result.mac, mac);
  const [address, prefix] = result.ip.split('/');
  assert.equal(prefix, '24');
  assert.ok(inSitePool(address!), `the runtime's address ${address} came from dnsmasq's range`);
  assert.match(result.console, /Xen version 4\.17/);

  const events = dhcpEvents(mac);
  const offers = events.filter((event) => event.result === 'offer');
  assert.ok(offers.length >= 1, `proxy offers were sent: ${JSON.stringify(events)}`);
  for (const offer of offers) {
    assert.equal(offer.address, undefined, 'a proxy offer gives no address');
    assert.deepEqual(offer.boot, { kind: 'http', url: 'http://198.18.0.1:8080/boot.ipxe' });
  }
  assert.ok(!events.some((event) => event.result === 'nak'));
  // dnsmasq, not rackboot, gave the addresses.
  assert.match(rack.site!.dnsmasq.transcript, new RegExp(`DHCPACK\\(site1\\) [0-9.]+ ${mac}`));
  assert.ok(rack.events().some((event) => event.event === 'boot-script' && event.mac === mac && event.platform === 'bios'));
});

test('proxy, UEFI: OVMF PXE asks on port 4011 for ipxe.efi, takes it by TFTP, and boots to the ready line', { timeout: 480_000 }, async () => {
  const mac = '52:54:00:12:35:12';
  const result = await bootMachine(rack, 'efi', mac);
  process.stderr.write(`proxyDHCP UEFI boot of node12 to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node12');
  assert.equal(result.ip, '198.18.0.60/24');
  assert.equal(result.mac, mac);
  assert.match(result.console, /Xen version 4\.17/);

  const events = dhcpEvents(mac);
  // The firmware's own PXE client: a proxy offer, then its request on port 4011 (the ACK goes back to port 4011).
  assert.ok(
    events.some((event) => event.result === 'offer' && event.arch === 7),
    `a proxy offer to the UEFI PXE client: ${JSON.stringify(events)}`,
  );
  const ack = events.find((event) => event.result === 'ack' && event.arch === 7);
  assert.ok(ack, `an ACK on port 4011: ${JSON.stringify(events)}`);
  assert.match(String(ack.destination), /^198\.18\.0\.\d+:4011$/);
  assert.deepEqual(ack.boot, { kind: 'tftp', file: 'ipxe.efi' });
  assert.ok(
    rack.events().some((event) => JSON.stringify(event).includes('ipxe.efi') && JSON.stringify(event).toLowerCase().includes('tftp')),
    'a TFTP transfer of ipxe.efi was logged',
  );
  assert.ok(rack.events().some((event) => event.event === 'boot-script' && event.mac === mac && event.platform === 'efi64'));
});

test('proxy, UEFI HTTP Boot: OVMF takes ipxe.efi by the URL in the proxy offer and boots to the ready line', { timeout: 480_000 }, async () => {
  const mac = '52:54:00:12:35:13';
  const result = await bootMachine(rack, 'efi-http', mac);
  process.stderr.write(`proxyDHCP UEFI HTTP Boot of node13 to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node-525400123513');
  assert.equal(result.mac, mac);
  assert.ok(inSitePool(result.ip.split('/')[0]!), `the runtime's address ${result.ip} came from dnsmasq's range`);

  const offer = dhcpEvents(mac).find((event) => event.result === 'offer' && event.arch === 16);
  assert.ok(offer, `a proxy offer to the HTTP Boot client: ${JSON.stringify(dhcpEvents(mac))}`);
  assert.deepEqual(offer.boot, { kind: 'http', url: 'http://198.18.0.1:8080/ipxe.efi' });
  assert.ok(rack.events().some((event) => event.event === 'http' && event.path === '/ipxe.efi' && event.status === 200));
});
