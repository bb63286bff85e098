import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { currentNeighbor, NeighborTable, parseArpTable, resolveNeighbor, unresolvedNeighbor } from '../server/net/neighbors.js';
import { Netns } from './support/netns.js';

test('parseArpTable keeps complete Ethernet entries only, with normalised MACs', () => {
  const text = [
    'IP address       HW type     Flags       HW address            Mask     Device',
    '198.18.0.50      0x1         0x2         52:54:00:AB:CD:01     *        tap0',
    '198.18.0.51      0x1         0x0         00:00:00:00:00:00     *        tap0',
    '198.18.0.52      0x1         0x6         52:54:00:ab:cd:02     *        tap0',
    '198.18.0.53      0x20        0x2         80:00:02:08:fe:80:00:00:00:00:00:00:00:00:00:00     *        ib0',
    '',
  ].join('\n');
  assert.deepEqual(parseArpTable(text), [
    { address: '198.18.0.50', mac: '52:54:00:ab:cd:01', device: 'tap0' },
    { address: '198.18.0.52', mac: '52:54:00:ab:cd:02', device: 'tap0' },
  ]);
  assert.deepEqual(parseArpTable(''), []);
  assert.deepEqual(parseArpTable('IP address HW type\ngarbage\n\n'), []);
});

test('NeighborTable re-reads the table on a miss, and at most once per interval on hits', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-arp-'));
  const file = path.join(dir, 'arp');
  const header = 'IP address       HW type     Flags       HW address            Mask     Device\n';
  let clock = 0;
  try {
    await writeFile(file, `${header}198.18.0.50 0x1 0x2 52:54:00:00:00:50 * tap0\n`);
    const table = new NeighborTable(file, 1000, () => clock);
    assert.equal(await table.macOf('198.18.0.50'), '52:54:00:00:00:50');
    await writeFile(file, `${header}198.18.0.50 0x1 0x2 52:54:00:00:00:99 * tap0\n198.18.0.51 0x1 0x2 52:54:00:00:00:51 * tap0\n`);
    clock = 500;
    assert.equal(await table.macOf('198.18.0.50'), '52:54:00:00:00:50', 'a hit within the interval reads no file');
    assert.equal(await table.macOf('198.18.0.51'), '52:54:00:00:00:51', 'a miss reads the file again');
    clock = 2000;
    assert.equal(await table.macOf('198.18.0.50'), '52:54:00:00:00:99');
    assert.equal(await table.macOf('198.18.0.77'), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the kernel's own table: a client that talked to us is found by its address", () => {
  const server = Netns.create('rbarp');
  const client = Netns.create('rbarc');
  try {
    server.linkTo(client, { device: 'vs', cidr: '198.18.7.1/24' }, { device: 'vc', cidr: '198.18.7.20/24', mac: '52:54:00:07:00:20' });
    client.exec('busybox', ['ping', '-c', '1', '-W', '2', '198.18.7.1']);
    const neighbors = parseArpTable(server.exec('cat', ['/proc/net/arp']));
    assert.deepEqual(
      neighbors.find((neighbor) => neighbor.address === '198.18.7.20'),
      { address: '198.18.7.20', mac: '52:54:00:07:00:20', device: 'vs' },
    );
  } finally {
    client.delete();
    server.delete();
  }
});

test('resolveNeighbor: a miss on the link pokes the address and reads again; no answer is one shared bucket; off the link is not counted', async () => {
  const entries = new Map<string, string>();
  const table = { macOf: async (address: string) => entries.get(address) };
  const poked: string[] = [];
  const onLink = (address: string) => address.startsWith('198.18.0.');
  const poke = (address: string) => {
    poked.push(address);
    // The kernel learns the MAC once the client answers the ARP our datagram caused.
    if (address === '198.18.0.20') setTimeout(() => entries.set(address, '02:00:00:00:00:20'), 1);
  };
  entries.set('198.18.0.10', '02:00:00:00:00:10');
  assert.equal(await resolveNeighbor(table, '198.18.0.10', { onLink, poke }), '02:00:00:00:00:10');
  assert.equal(await resolveNeighbor(table, '198.18.0.20', { onLink, poke }), '02:00:00:00:00:20');
  assert.equal(await resolveNeighbor(table, '198.18.0.30', { onLink, poke, waitsMs: [1, 1] }), unresolvedNeighbor);
  assert.equal(await resolveNeighbor(table, '198.18.2.5', { onLink, poke }), undefined);
  assert.deepEqual(poked, ['198.18.0.20', '198.18.0.30']);
});

test('currentNeighbor: the table as it is now, on the asked device; a miss pokes and reads again; no answer is undefined', async () => {
  const entries = new Map<string, { mac: string; device: string }>();
  const table = { currentMacOf: async (address: string, device: string) => (entries.get(address)?.device === device ? entries.get(address)!.mac : undefined) };
  const poked: string[] = [];
  const poke = (address: string) => {
    poked.push(address);
    if (address === '198.18.0.20') setTimeout(() => entries.set(address, { mac: '02:00:00:00:00:20', device: 'br0' }), 1);
  };
  entries.set('198.18.0.10', { mac: '02:00:00:00:00:10', device: 'br0' });
  entries.set('198.18.0.40', { mac: '02:00:00:00:00:40', device: 'eth9' });
  assert.equal(await currentNeighbor(table, '198.18.0.10', 'br0', poke), '02:00:00:00:00:10');
  assert.equal(await currentNeighbor(table, '198.18.0.20', 'br0', poke), '02:00:00:00:00:20');
  assert.equal(await currentNeighbor(table, '198.18.0.30', 'br0', poke, [1, 1]), undefined);
  assert.equal(await currentNeighbor(table, '198.18.0.40', 'br0', poke, [1]), undefined, 'an entry on another device is not this one');
  assert.deepEqual(poked, ['198.18.0.20', '198.18.0.30', '198.18.0.40']);
});
