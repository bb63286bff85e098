import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { bootMachine, poolEnd, poolStart, startRack, type Rack } from '../support/boot.js';
import { ipv4ToNumber } from '../../server/net/ipv4.js';

// openssl passwd -6 -salt rackboottest rackboot
const hash = '$6$rackboottest$6E616jjiQnqPDW2Bft0mJ1zvl4xkkMp/sCuOEftdqMhU3IA1YA0Ry8onEmYUORSRvQEKMlQt/JZaKJFiMCT1f.';

let rack: Rack;

before(async () => {
  rack = await startRack({
    'node01.yaml': [
      'mac: 52-54-00-12-34-56',
      'hostname: node01',
      'network:',
      '  mode: static',
      '  address: 198.18.0.50/24',
      '  gateway: 198.18.0.1',
      '  dns: [198.18.0.1]',
      `rootPasswordHash: "${hash}"`,
      'ssh: false',
      'timezone: Europe/Berlin',
      'boot:',
      '  entry: standard',
      '  xenArgs: "dom0_mem=512M"',
      '  kernelArgs: "rackboot.poweroff=1"',
      '',
    ].join('\n'),
    'default.yaml': ['hostname: "node-{mac}"', 'boot:', '  kernelArgs: "rackboot.poweroff=1"', ''].join('\n'),
  });
});

after(async () => {
  await rack?.close();
});

test('BIOS: iPXE ROM boots Xen and dom0 with its own profile to the ready line', { timeout: 420_000 }, async () => {
  const result = await bootMachine(rack, 'bios', '52:54:00:12:34:56');
  process.stderr.write(`BIOS boot of node01 to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node01');
  assert.equal(result.ip, '198.18.0.50/24');
  assert.equal(result.mac, '52:54:00:12:34:56');
  // Xen really ran (not a bare kernel): its banner is on the serial line.
  assert.match(result.console, /Xen version 4\.17/);

  const events = rack.events();
  const dhcp = events.filter((event) => event.mac === '52:54:00:12:34:56' && typeof event.type === 'string');
  assert.ok(dhcp.length >= 2, `expected DHCP events for node01, got ${JSON.stringify(dhcp)}`);
  // The reservation from the profile wins over the pool, already in DHCP.
  assert.ok(
    dhcp.some((event) => event.address === '198.18.0.50'),
    'DHCP gave node01 its reserved address',
  );
  assert.ok(events.some((event) => event.event === 'boot-script' && event.mac === '52:54:00:12:34:56' && event.platform === 'bios'));
  // The root hash travels only by HTTP, after the runtime is on the network.
  assert.ok(events.some((event) => event.event === 'runtime-env' && event.mac === '52:54:00:12:34:56'));
  assert.ok(!result.console.includes(hash), 'the root hash must not show on the console or a command line');
});

test('BIOS: an unknown MAC boots with the default profile and a pool address', { timeout: 420_000 }, async () => {
  const result = await bootMachine(rack, 'bios', '52:54:00:ab:cd:ef');
  process.stderr.write(`BIOS boot of an unknown MAC to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'node-525400abcdef');
  assert.equal(result.mac, '52:54:00:ab:cd:ef');
  const [address, prefix] = result.ip.split('/');
  assert.equal(prefix, '24');
  const n = ipv4ToNumber(address!);
  assert.ok(n >= ipv4ToNumber(poolStart) && n <= ipv4ToNumber(poolEnd), `${address} is in the pool`);
});
