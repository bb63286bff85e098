import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { until } from '../support/until.js';
import { bootMachine, httpPort, poolEnd, poolStart, startRack, type Rack } from '../support/boot.js';
import { ipv4ToNumber } from '../../server/net/ipv4.js';
import type { StorageReport } from '../../server/storage/report.js';

const MiB = 1024 * 1024;

/**
 * node01's disks, one on each kind of controller: virtio with a DOS
 * partition table and an ext4 partition, a blank SATA disk, and a USB disk
 * holding ext4 on the whole disk.
 */
async function diskImages(dir: string): Promise<Array<{ file: string; serial: string; bus: 'virtio' | 'sata' | 'usb' }>> {
  const image = async (name: string, bytes: number, first?: Buffer): Promise<string> => {
    const file = path.join(dir, name);
    const handle = await open(file, 'w');
    await handle.truncate(bytes);
    if (first !== undefined) await handle.write(first, 0, first.length, 0);
    await handle.close();
    return file;
  };
  // One primary partition of type 0x83 from sector 2048 to the end (MBR: entry at 446, 0x55AA at 510).
  const mbr = Buffer.alloc(512);
  mbr[446 + 4] = 0x83;
  mbr.writeUInt32LE(2048, 446 + 8);
  mbr.writeUInt32LE((64 * MiB) / 512 - 2048, 446 + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const virtio = await image('virtio.img', 64 * MiB, mbr);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'guestdata', '-E', `offset=${MiB}`, virtio, '32M']);
  const sata = await image('sata.img', 48 * MiB);
  const usb = await image('usb.img', 32 * MiB);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'usbdata', usb]);
  return [
    { file: virtio, serial: 'rb-virtio-1', bus: 'virtio' },
    { file: sata, serial: 'rb-sata-1', bus: 'sata' },
    { file: usb, serial: 'rb-usb-1', bus: 'usb' },
  ];
}

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

test('BIOS: iPXE ROM boots Xen and dom0 with its own profile to the ready line, and it reports its disks', { timeout: 420_000 }, async () => {
  const result = await bootMachine(rack, 'bios', '52:54:00:12:34:56', undefined, await diskImages(rack.work));
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

  // Its storage, as the runtime found it and the admin API shows it: disks by serial, whatever sdX they got.
  assert.match(result.console, /rackboot-runtime: storage: 3 disk\(s\), 0 volume group\(s\)/);
  const token = (await readFile(path.join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
  const host = execFileSync(
    'ip',
    ['netns', 'exec', rack.ns.name, 'curl', '-sf', '-H', `Authorization: Bearer ${token}`, `http://198.18.0.1:${httpPort}/api/hosts/52:54:00:12:34:56`],
    { encoding: 'utf8' },
  );
  const { storage, storageReport } = JSON.parse(host) as { storage: string; storageReport: StorageReport & { reportedAt: string } };
  const sizes = /^3 disks \((.*)\)$/.exec(storage)?.[1]?.split(', ').sort();
  assert.deepEqual(sizes, ['32 MiB', '48 MiB', '64 MiB'], storage);
  const bySerial = new Map(storageReport.disks.map((disk) => [disk.serial, disk]));
  assert.deepEqual([...bySerial.keys()].sort(), ['rb-sata-1', 'rb-usb-1', 'rb-virtio-1'], JSON.stringify(storageReport));
  const virtio = bySerial.get('rb-virtio-1')!;
  assert.deepEqual(
    { ...virtio, partitions: virtio.partitions.map(({ name, ...rest }) => ({ name: name.replace(/^vd./, 'vdX'), ...rest })) },
    {
      name: virtio.name,
      sizeBytes: 64 * MiB,
      serial: 'rb-virtio-1',
      transport: 'virtio',
      removable: false,
      readOnly: false,
      table: 'dos',
      ids: ['virtio-rb-virtio-1'],
      partitions: [{ name: 'vdX1', sizeBytes: 64 * MiB - MiB, filesystem: 'ext4', label: 'guestdata', ids: ['virtio-rb-virtio-1-part1'] }],
    },
  );
  const sata = bySerial.get('rb-sata-1')!;
  assert.equal(sata.transport, 'sata');
  assert.equal(sata.sizeBytes, 48 * MiB);
  assert.equal(sata.model, 'QEMU HARDDISK');
  assert.deepEqual(sata.ids, ['ata-QEMU_HARDDISK_rb-sata-1']);
  assert.equal(sata.table, undefined, 'a blank disk has no table');
  assert.equal(sata.filesystem, undefined);
  const usb = bySerial.get('rb-usb-1')!;
  assert.equal(usb.transport, 'usb');
  assert.equal(usb.filesystem, 'ext4');
  assert.equal(usb.label, 'usbdata');
  assert.equal(usb.table, undefined, 'a filesystem on the whole disk is no partition table');
  assert.ok(Date.parse(storageReport.reportedAt) > Date.now() - 600_000);

  // Its log on the server (syslogd -R in the runtime): the runtime's own lines and the kernel's, in the boot its boot script began.
  type Logged = { boots: Array<{ boot: number }>; lines: Array<{ boot: number; source: string; app?: string; text: string }> };
  const logged = await until(
    "node01's ready line in its log on the server",
    30_000,
    () => {
      const body = JSON.parse(
        execFileSync(
          'ip',
          [
            'netns',
            'exec',
            rack.ns.name,
            'curl',
            '-sf',
            '-H',
            `Authorization: Bearer ${token}`,
            `http://198.18.0.1:${httpPort}/api/hosts/52:54:00:12:34:56/logs`,
          ],
          { encoding: 'utf8' },
        ),
      ) as Logged;
      return body.lines.some((line) => line.text.startsWith('ready hostname=node01')) ? body : undefined;
    },
    () => rack.server.transcript.slice(-3000),
  );
  const bootNumber = logged.boots.at(-1)!.boot;
  const thisBoot = logged.lines.filter((line) => line.boot === bootNumber);
  assert.ok(
    thisBoot.some((line) => line.app === 'rackboot-runtime' && line.source === 'syslog' && /^storage: 3 disk\(s\)/.test(line.text)),
    "the runtime's lines",
  );
  // klogd sends what the kernel's buffer still holds when it starts: from a second or two into the boot on, not its first line.
  const kernel = thisBoot.filter((line) => line.app === 'kernel');
  assert.ok(kernel.length > 20, `the kernel's lines: ${kernel.length}`);
  assert.ok(
    kernel.some((line) => /^\[ *\d+\.\d{6}\] /.test(line.text)),
    `with their time since boot: ${JSON.stringify(kernel.slice(0, 3))}`,
  );
  assert.ok(!thisBoot.some((line) => line.text.includes(hash)), 'no secret in the log');
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
