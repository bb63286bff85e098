import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, maximumStorageReportBytes, parseStorageReport, summarizeStorage } from '../../server/storage/report.js';

const report = [
  'disk name=vda size=1073741824 model= serial=rb-data-1 transport=virtio removable=0 readonly=0 table=gpt filesystem= label= ids=virtio-rb-data-1',
  'part name=vda1 disk=vda size=536870912 filesystem=ext4 label=guest%20data ids=virtio-rb-data-1-part1',
  'part name=vda2 disk=vda size=534773760 filesystem=LVM2_member label= ids=virtio-rb-data-1-part2',
  'disk name=sda size=2147483648 model=QEMU%20HARDDISK serial=QM00001 transport=sata removable=1 readonly=1 table= filesystem= label= ids=ata-QEMU_HARDDISK_QM00001',
  'vg name=vg0 size=532676608 free=264241152 pvs=vda2',
  'lv name=web1 vg=vg0 size=268435456',
  '',
].join('\n');

test('a storage report decodes to disks, their partitions, volume groups and their volumes', () => {
  const result = parseStorageReport(report);
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(result.report, {
    disks: [
      {
        name: 'vda',
        sizeBytes: 1073741824,
        serial: 'rb-data-1',
        transport: 'virtio',
        removable: false,
        readOnly: false,
        table: 'gpt',
        ids: ['virtio-rb-data-1'],
        partitions: [
          { name: 'vda1', sizeBytes: 536870912, filesystem: 'ext4', label: 'guest data', ids: ['virtio-rb-data-1-part1'] },
          { name: 'vda2', sizeBytes: 534773760, filesystem: 'LVM2_member', ids: ['virtio-rb-data-1-part2'] },
        ],
      },
      {
        name: 'sda',
        sizeBytes: 2147483648,
        model: 'QEMU HARDDISK',
        serial: 'QM00001',
        transport: 'sata',
        removable: true,
        readOnly: true,
        ids: ['ata-QEMU_HARDDISK_QM00001'],
        partitions: [],
      },
    ],
    volumeGroups: [
      { name: 'vg0', sizeBytes: 532676608, freeBytes: 264241152, physicalVolumes: ['vda2'], logicalVolumes: [{ name: 'web1', sizeBytes: 268435456 }] },
    ],
  });
  assert.equal(summarizeStorage(result.report), '2 disks (1.0 GiB, 2.0 GiB), 1 volume group (vg0)');
});

test('an empty report is a host without disks', () => {
  const result = parseStorageReport('\n');
  assert.ok(result.ok);
  assert.deepEqual(result.report, { disks: [], volumeGroups: [] });
  assert.equal(summarizeStorage(result.report), '0 disks');
});

test('a field the server does not know is left out, not refused (a newer runtime may say more)', () => {
  const result = parseStorageReport('disk name=vdb size=512 transport=virtio rotational=0');
  assert.ok(result.ok);
  assert.deepEqual(Object.keys(result.report.disks[0]!).sort(), ['ids', 'name', 'partitions', 'readOnly', 'removable', 'sizeBytes', 'transport']);
});

test('a malformed report is refused whole, naming the line and the field', () => {
  const cases: Array<[string, number, string]> = [
    ['tape name=st0 size=1', 1, '"tape" is not a record; want disk, part, vg or lv'],
    ['disk size=1', 1, 'name: missing'],
    ['disk name=../etc size=1', 1, 'name: "../etc" is not a device name'],
    ['disk name=vda size=-1', 1, 'size: "-1" is not a size in bytes'],
    ['disk name=vda size=99999999999999999', 1, 'size: "99999999999999999" is not a size in bytes'],
    ['disk name=vda size=1 transport=floppy', 1, 'transport: "floppy" is not one of sata, scsi, nvme, virtio, usb, xen, mmc, iscsi, other'],
    ['disk name=vda size=1 removable=yes', 1, 'removable: want 0 or 1, not "yes"'],
    ['disk name=vda size=1 table=mbr', 1, 'table: want gpt or dos, not "mbr"'],
    ['disk name=vda size=1 model=%zz', 1, 'model: not percent-encoded text'],
    ['disk name=vda size=1 model=a%0Ab', 1, 'model: contains a control character'],
    ['disk name=vda size=1 size=2', 1, 'size is given twice'],
    ['disk name=vda size=1 justaword', 1, '"justaword" is not key=value'],
    ['disk name=vda size=1\ndisk name=vda size=2', 2, 'disk vda is reported twice'],
    ['part name=vda1 disk=vda size=1', 1, 'disk: vda is not reported before it'],
    ['disk name=vda size=1 filesystem=ext4;rm', 1, 'filesystem: "ext4;rm" is not a filesystem type'],
    ['lv name=web1 vg=vg0 size=1', 1, 'vg: vg0 is not reported before it'],
    [`disk name=vda size=1 serial=${'x'.repeat(257)}`, 1, 'serial: 257 characters; at most 256'],
  ];
  for (const [text, line, message] of cases) {
    assert.deepEqual(parseStorageReport(text), { ok: false, line, message }, text.slice(0, 60));
  }
});

test('a report past the size or line limits is refused before it is read', () => {
  const big = parseStorageReport(`disk name=vda size=1 model=${'a'.repeat(maximumStorageReportBytes)}`);
  assert.equal(big.ok, false);
  assert.match(!big.ok ? big.message : '', /^the report is \d+ bytes; at most 65536$/);
  const long = parseStorageReport('\n'.repeat(2000));
  assert.deepEqual(long, { ok: false, line: 0, message: '2001 lines; at most 1024' });
});

test('sizes read in binary units', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(10 * 1024 ** 3), '10 GiB');
  assert.equal(formatBytes(12 * 1024 ** 4), '12 TiB');
});
