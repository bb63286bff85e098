import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { bridgePlan, renderDomainConfig, renderRuntimeEnv, storagePlan, xlDiskSpec } from '../../server/core/render.js';
import { resolveHostBoot } from '../../server/core/resolve.js';
import type { Profile } from '../../server/profiles/profile.js';
import { formatSize, guestDeviceName, lvmNameProblem, parseDiskRef, parseSize } from '../../server/profiles/storage.js';
import { memoryBuild } from '../support/assets.js';
import { hostErrors, parsedHost } from '../support/profiles.js';

const mac = '52:54:00:12:34:56';
const endpoints = { address: '198.18.0.1', httpPort: 8080 };

const parsed = parsedHost;
const errors = hostErrors;

const storage = [
  'storage:', // 3
  '  volumeGroups:', // 4
  '    - name: vg0', // 5
  '      disks: [serial:QM00001, /dev/disk/by-id/ata-QEMU_HARDDISK_QM00002]', // 6
  '      initialize: true', // 7
  '    - name: old', // 8
  '      disks: [/dev/disk/by-id/nvme-Samsung_SSD_980_S64ANS0T123456]', // 9
];

test('storage: volume groups by serial or by-id, and domain disks on them, parsed', () => {
  const profile = parsed([
    ...storage,
    'domains:',
    '  - name: web1',
    '    disks:',
    '      - volume: vg0/web1',
    '        size: 20G',
    '      - disk: serial:DATA7',
    '        readOnly: true',
    '  - name: db1',
    '    disks:',
    '      - volume: old/db1-data',
    '        size: 512M',
    '        device: xvdc',
  ]);
  assert.deepEqual(profile.storage, {
    volumeGroups: [
      {
        name: 'vg0',
        disks: [
          { kind: 'serial', value: 'QM00001' },
          { kind: 'id', value: 'ata-QEMU_HARDDISK_QM00002' },
        ],
        initialize: true,
      },
      { name: 'old', disks: [{ kind: 'id', value: 'nvme-Samsung_SSD_980_S64ANS0T123456' }], initialize: false },
    ],
    iscsi: [],
    domainConfigs: [],
  });
  assert.deepEqual(profile.domains[0]!.disks, [
    { kind: 'volume', volumeGroup: 'vg0', volume: 'web1', size: 20 * 1024 ** 3, device: 'xvda', readOnly: false },
    { kind: 'disk', disk: { kind: 'serial', value: 'DATA7' }, device: 'xvdb', readOnly: true },
  ]);
  assert.deepEqual(profile.domains[1]!.disks, [
    { kind: 'volume', volumeGroup: 'old', volume: 'db1-data', size: 512 * 1024 ** 2, device: 'xvdc', readOnly: false },
  ]);
  // No storage, no disks: as before.
  const plain = parsed(['domains:', '  - name: demo1']);
  assert.equal(plain.storage, undefined);
  assert.equal(plain.domains[0]!.disks, undefined);
});

test('storage: refusals name the file, line, column and field', () => {
  assert.deepEqual(errors(['storage:', '  volumeGroups:', '    - name: vg0', '      disks: [/dev/sdb]']), [
    'profiles/xen01.yaml:6:15: storage.volumeGroups[0].disks[0]: "/dev/sdb" names a disk by the order it was found in, which changes from boot to boot; name it by serial (serial:SERIAL) or by id (/dev/disk/by-id/ID), as `rackboot hosts MAC` lists them',
  ]);
  assert.deepEqual(
    errors(['storage:', '  volumeGroups:', '    - name: vg0', '      disks: [serial:A, serial:A]', '    - name: vg0', '      disks: [serial:A]']),
    [
      'profiles/xen01.yaml:6:25: storage.volumeGroups[0].disks[1]: serial:A is already a disk of storage.volumeGroups[0]; a disk belongs to one volume group',
      'profiles/xen01.yaml:7:13: storage.volumeGroups[1].name: "vg0" is already the name of storage.volumeGroups[0]',
      'profiles/xen01.yaml:8:15: storage.volumeGroups[1].disks[0]: serial:A is already a disk of storage.volumeGroups[0]; a disk belongs to one volume group',
    ],
  );
  assert.deepEqual(errors(['storage:', '  volumeGroups:', '    - name: -vg', '      disks: []', '      initialize: yes']), [
    'profiles/xen01.yaml:5:13: storage.volumeGroups[0].name: "-vg" must not start with "-"',
    'profiles/xen01.yaml:6:14: storage.volumeGroups[0].disks: want a list of one or more disks, such as [serial:S3Z1NB0K123456], got an empty list',
    'profiles/xen01.yaml:7:19: storage.volumeGroups[0].initialize: want true or false, got the string "yes"',
  ]);
  // Volumes: of a group the profile names, with a size; one guest each.
  assert.deepEqual(
    errors([
      ...storage,
      'domains:', // 10
      '  - name: web1', // 11
      '    disks:', // 12
      '      - volume: vg9/web1', // 13
      '        size: 20G', // 14
      '      - volume: vg0/web1', // 15
      '      - volume: vg0/data', // 16
      '        size: 2X', // 17
      '      - disk: serial:QM00001', // 18
      '  - name: web2', // 19
      '    disks:', // 20
      '      - volume: vg0/web1', // 21
      '        size: 1G', // 22
      '        device: sdb', // 23
      '      - disk: /dev/disk/by-id/virtio-x', // 24
      '        size: 1G', // 25
      '      - {}', // 26
    ]),
    [
      'profiles/xen01.yaml:13:17: domains[0].disks[0].volume: "vg9" is not a volume group of this profile (storage.volumeGroups: vg0, old)',
      'profiles/xen01.yaml:15:9: domains[0].disks[1].size: missing; a volume needs the size it is created with when it is not there yet, such as 20G',
      'profiles/xen01.yaml:17:15: domains[0].disks[2].size: "2X" is not a size; want a number and a unit, such as 512M, 20G or 1T',
      'profiles/xen01.yaml:18:15: domains[0].disks[3].disk: serial:QM00001 is a disk of volume group vg0; give the guest a volume of it instead',
      'profiles/xen01.yaml:21:17: domains[1].disks[0].volume: vg0/web1 is already a disk of domains[0].disks[1]; two guests never write one volume',
      'profiles/xen01.yaml:23:17: domains[1].disks[0].device: "sdb" is not a PV guest\'s disk name; want xvda, xvdb, ...',
      'profiles/xen01.yaml:25:9: domains[1].disks[1].size: only for volume: (a whole disk has the size it has)',
      'profiles/xen01.yaml:26:9: domains[1].disks[2]: want volume: VG/NAME (a logical volume, with size:), disk: serial:... (a whole disk of the host), iscsi: SESSION (a LUN, with lun:) or file: PATH (with filesystem: and size:)',
    ],
  );
  // Never in default.yaml or a group: a volume group is one machine's disks.
  assert.deepEqual(errors(['hostname: node-{mac}', ...storage], 'profiles/default.yaml', false), [
    "profiles/default.yaml:2:1: storage: not allowed in default.yaml, the profile for hosts without a file of their own: a volume group names one machine's own disks; put it in that host's file",
  ]);
  assert.match(
    errors(['hosts:', '  - {mac: "52:54:00:00:00:01", hostname: a}', ...storage], 'profiles/rack.yaml', false).join('\n'),
    /rack\.yaml:3:1: storage: not allowed in a group file/,
  );
});

test('storage.domainConfigs: filesystems of xl configurations, by volume, label, serial or id', () => {
  const profile = parsed([...storage, '  domainConfigs: [vg0/configs, label:guests, serial:CFG1, /dev/disk/by-id/virtio-cfg-part1]']);
  assert.deepEqual(profile.storage?.domainConfigs, [
    { kind: 'volume', volumeGroup: 'vg0', volume: 'configs' },
    { kind: 'label', label: 'guests' },
    { kind: 'disk', disk: { kind: 'serial', value: 'CFG1' } },
    { kind: 'disk', disk: { kind: 'id', value: 'virtio-cfg-part1' } },
  ]);
  const plan = resolveOk(profile);
  assert.match(storagePlan(plan), /; found volume:vg0\/configs; found label:guests; found serial:CFG1; found id:virtio-cfg-part1$/);
  assert.deepEqual(errors([...storage, '  domainConfigs: [vg9/configs, "label:a b", /dev/sdc1]']), [
    'profiles/xen01.yaml:10:19: storage.domainConfigs[0]: "vg9" is not a volume group of this profile (storage.volumeGroups)',
    'profiles/xen01.yaml:10:32: storage.domainConfigs[1]: "label:a b": a label has 1 to 32 letters, digits and "._-"',
    'profiles/xen01.yaml:10:45: storage.domainConfigs[2]: "/dev/sdc1" names a disk by the order it was found in, which changes from boot to boot; name it by serial (serial:SERIAL) or by id (/dev/disk/by-id/ID), as `rackboot hosts MAC` lists them; or a volume (vg0/configs) or a filesystem label (label:guests)',
  ]);
});

test('storage.iscsi: sessions with CHAP, LUNs as guest disks, the secret only in runtime.env', () => {
  const lines = [
    'storage:', // 3
    '  iscsi:', // 4
    '    - name: san1', // 5
    '      portal: 198.18.0.9', // 6
    '      target: iqn.2026-12.lab.example:store1', // 7
    '      chapUser: xen01', // 8
    '      chapSecret: "s3cret-chap-pass"', // 9
    '    - name: san2', // 10
    '      portal: 198.18.0.10:3261', // 11
    '      target: iqn.2026-12.lab.example:store2', // 12
    'domains:', // 13
    '  - name: db1', // 14
    '    disks:', // 15
    '      - iscsi: san1', // 16
    '        lun: 1', // 17
  ];
  const profile = parsed(lines);
  assert.deepEqual(profile.storage?.iscsi, [
    { name: 'san1', address: '198.18.0.9', port: 3260, target: 'iqn.2026-12.lab.example:store1', chap: { user: 'xen01', secret: 's3cret-chap-pass' } },
    { name: 'san2', address: '198.18.0.10', port: 3261, target: 'iqn.2026-12.lab.example:store2' },
  ]);
  assert.deepEqual(profile.domains[0]!.disks, [{ kind: 'iscsi', session: 'san1', lun: 1, device: 'xvda', readOnly: false }]);
  const plan = resolveOk(profile);
  assert.equal(
    storagePlan(plan),
    'initiator iqn.2005-03.org.rackboot:525400123456; iscsi san1 198.18.0.9 3260 iqn.2026-12.lab.example:store1 xen01 s3cret-chap-pass; ' +
      'iscsi san2 198.18.0.10 3261 iqn.2026-12.lab.example:store2 - -; lun db1 xvda san1 1',
  );
  assert.match(renderRuntimeEnv(plan), /^RACKBOOT_STORAGE='initiator .*s3cret-chap-pass/m);
  const config = renderDomainConfig(plan, plan.domains[0]!, endpoints);
  assert.match(config, /target=\/dev\/disk\/by-path\/ip-198\.18\.0\.9:3260-iscsi-iqn\.2026-12\.lab\.example:store1-lun-1' \]$/m);
  assert.doesNotMatch(config, /s3cret/, 'the domain config has no secret');
  // The initiator name as written.
  assert.match(
    storagePlan({ ...plan, profile: parsed([...lines.slice(0, 1), '  initiator: iqn.2026-12.lab.example:xen01', ...lines.slice(1)]) }),
    /^initiator iqn\.2026-12\.lab\.example:xen01; /,
  );

  assert.deepEqual(
    errors([
      'storage:', // 3
      '  iscsi:', // 4
      '    - name: san1', // 5
      '      portal: 198.18.0.999', // 6
      '      target: IQN.2026-12.Lab:x', // 7
      '      chapSecret: short', // 8
      '    - portal: 198.18.0.9:70000', // 9
      'domains:', // 10
      '  - name: db1', // 11
      '    disks:', // 12
      '      - iscsi: san9', // 13
      '        lun: 1', // 14
      '      - iscsi: san1', // 15
      '        size: 1G', // 16
      '      - volume: vg0/x', // 17
      '        iscsi: san1', // 18
    ]),
    [
      'profiles/xen01.yaml:6:15: storage.iscsi[0].portal: "198.18.0.999" is not a portal; want an IPv4 address, and a port if not 3260 (198.18.0.9:3260)',
      'profiles/xen01.yaml:7:15: storage.iscsi[0].target: "IQN.2026-12.Lab:x": write an iqn. name in lower case, as targets compare it',
      'profiles/xen01.yaml:8:7: storage.iscsi[0].chapUser: missing; CHAP takes a user and a secret together',
      'profiles/xen01.yaml:8:19: storage.iscsi[0].chapSecret: is 5 characters long; a CHAP secret has at least 12',
      'profiles/xen01.yaml:9:7: storage.iscsi[1].name: missing; such as san1',
      'profiles/xen01.yaml:9:7: storage.iscsi[1].target: missing; such as iqn.2026-12.lab.example:store1',
      'profiles/xen01.yaml:9:15: storage.iscsi[1].portal: "198.18.0.9:70000": port 70000 is not a TCP port',
      'profiles/xen01.yaml:15:9: domains[0].disks[1].lun: missing; the LUN of the session, such as 1',
      'profiles/xen01.yaml:16:9: domains[0].disks[1].size: only for volume: (a LUN has the size its target gives it)',
      'profiles/xen01.yaml:17:9: domains[0].disks[2]: volume:, disk:, iscsi: and file: are each a guest disk of its own; give one',
    ],
  );
});

test('storage.iscsi: a LUN of a session the profile does not name, or given to two guests, is refused', () => {
  const session = ['storage:', '  iscsi:', '    - name: san1', '      portal: 198.18.0.9', '      target: iqn.2026-12.lab.example:store1'];
  assert.deepEqual(
    errors([
      ...session,
      'domains:',
      '  - name: a',
      '    disks:',
      '      - iscsi: san9',
      '        lun: 1',
      '      - iscsi: san1',
      '        lun: 2',
      '  - name: b',
      '    disks:',
      '      - iscsi: san1',
      '        lun: 2',
    ]),
    [
      'profiles/xen01.yaml:11:16: domains[0].disks[0].iscsi: "san9" is not an iSCSI session of this profile (storage.iscsi: san1)',
      'profiles/xen01.yaml:18:14: domains[1].disks[0].lun: LUN 2 of san1 is already a disk of domains[0].disks[1]; two guests never write one LUN',
    ],
  );
});

test('storage values: disk references, LVM names, sizes and guest devices', () => {
  assert.deepEqual(parseDiskRef('serial:S3Z1NB0K123456'), { kind: 'serial', value: 'S3Z1NB0K123456' });
  assert.deepEqual(parseDiskRef('/dev/disk/by-id/usb-Kingston_DataTraveler_3.0_E0D55EA5-0:0'), {
    kind: 'id',
    value: 'usb-Kingston_DataTraveler_3.0_E0D55EA5-0:0',
  });
  for (const bad of ['/dev/vdb', '/dev/nvme0n1', 'sdb', 'serial:', 'serial:a b', '/dev/disk/by-id/..', '/dev/disk/by-id/a/b', "serial:x';reboot"]) {
    assert.ok('problem' in (parseDiskRef(bad) as object), bad);
  }
  for (const good of ['vg0', 'vg_data', 'a+b.c-d']) assert.equal(lvmNameProblem(good, 'volume group'), undefined, good);
  for (const bad of ['', '.', '..', '-x', 'a b', 'a/b', 'x'.repeat(64)]) assert.notEqual(lvmNameProblem(bad, 'volume group'), undefined, bad);
  for (const bad of ['snapshot1', 'pvmove0', 'web_rimage_0']) assert.notEqual(lvmNameProblem(bad, 'volume'), undefined, bad);
  assert.equal(parseSize('512M'), 512 * 1024 ** 2);
  assert.equal(parseSize('20GiB'), 20 * 1024 ** 3);
  assert.equal(parseSize('1t'), 1024 ** 4);
  for (const bad of ['1M', '20', '2X', '1.5G', '2048P']) assert.ok(typeof parseSize(bad) === 'object', bad);
  assert.equal(formatSize(20 * 1024 ** 3), '20G');
  assert.equal(formatSize(1536 * 1024 ** 2), '1536M');
  assert.deepEqual([0, 1, 25, 26, 27].map(guestDeviceName), ['xvda', 'xvdb', 'xvdz', 'xvdaa', 'xvdab']);
});

test("storage rendered: RACKBOOT_STORAGE for dom0's runtime, and xl disk specs in the guest's config", () => {
  const profile = parsed([
    ...storage,
    'domains:',
    '  - name: web1',
    '    disks:',
    '      - volume: vg0/web1',
    '        size: 64M',
    '      - disk: /dev/disk/by-id/virtio-data7',
    '        readOnly: true',
    '  - name: off',
    '    autostart: false',
    '    disks:',
    '      - volume: vg0/off',
    '        size: 1G',
  ]);
  const build = memoryBuild('20261205T070000Z-abc123', ['vmlinuz', 'guest.initrd.gz']);
  const boot = resolveHostBoot({ mac, platform: 'bios', profile, build, endpoints });
  assert.equal(boot.kind, 'boot');
  if (boot.kind !== 'boot') return;
  const plan = boot.plan;
  // The domain that is not started needs nothing made.
  assert.equal(
    storagePlan(plan),
    'vg vg0 initialize serial:QM00001 id:ata-QEMU_HARDDISK_QM00002; vg old keep id:nvme-Samsung_SSD_980_S64ANS0T123456; volume web1 xvda vg0 web1 67108864; disk web1 xvdb id:virtio-data7',
  );
  const env = renderRuntimeEnv(plan);
  // The runtime's own reading: the sourced value, split into records and words.
  const records = execFileSync(
    'sh',
    ['-c', 'eval "$1"; echo "$RACKBOOT_STORAGE" | tr ";" "\\n" | while read -r kind a b c d e; do echo "$kind|$a|$b|$c|$d|$e"; done', 'sh', env],
    {
      encoding: 'utf8',
    },
  );
  assert.deepEqual(records.trim().split('\n'), [
    'vg|vg0|initialize|serial:QM00001|id:ata-QEMU_HARDDISK_QM00002|',
    'vg|old|keep|id:nvme-Samsung_SSD_980_S64ANS0T123456||',
    'volume|web1|xvda|vg0|web1|67108864',
    'disk|web1|xvdb|id:virtio-data7||',
  ]);
  const config = renderDomainConfig(plan, plan.domains[0]!, endpoints);
  assert.match(
    config,
    /^disk = \[ 'format=raw, vdev=xvda, access=rw, script=block-rackboot, target=\/dev\/vg0\/web1', 'format=raw, vdev=xvdb, access=ro, script=block-rackboot, target=\/dev\/disk\/by-id\/virtio-data7' \]$/m,
  );
  assert.equal(
    xlDiskSpec({ kind: 'disk', disk: { kind: 'serial', value: 'QM9' }, device: 'xvdc', readOnly: false }),
    'format=raw, vdev=xvdc, access=rw, script=block-rackboot, target=/dev/disk/by-serial/QM9',
  );
  // Without storage, nothing new in either file.
  const bare = resolveHostBoot({ mac, platform: 'bios', profile: parsed(['domains:', '  - name: demo1']), build, endpoints });
  assert.ok(bare.kind === 'boot');
  if (bare.kind !== 'boot') return;
  assert.doesNotMatch(renderRuntimeEnv(bare.plan), /RACKBOOT_STORAGE/);
  assert.doesNotMatch(renderDomainConfig(bare.plan, bare.plan.domains[0]!, endpoints), /^disk/m);
});

test("a domain's network: the rack bridge, a private bridge of the host's, or a VLAN of the rack; RACKBOOT_BRIDGES for dom0", () => {
  const profile = parsed([
    'domains:',
    '  - name: web1', // the rack's bridge, as before
    '  - name: lab1',
    '    network:',
    '      bridge: lab0',
    '      private: true',
    '  - name: lab2',
    '    network: {bridge: lab0, private: true}',
    '  - name: tag1',
    '    network:',
    '      bridge: vlan42',
    '      vlan: 42',
    '  - name: old',
    '    bridge: br-existing',
  ]);
  assert.deepEqual(
    profile.domains.map((d) => [d.name, d.bridge, d.network]),
    [
      ['web1', 'xenbr0', undefined],
      ['lab1', 'lab0', { kind: 'private' }],
      ['lab2', 'lab0', { kind: 'private' }],
      ['tag1', 'vlan42', { kind: 'vlan', vlan: 42 }],
      ['old', 'br-existing', undefined],
    ],
  );
  const plan = resolveOk(profile);
  assert.equal(bridgePlan(plan), 'lab0 private; vlan42 vlan 42');
  assert.match(renderRuntimeEnv(plan), /^RACKBOOT_BRIDGES='lab0 private; vlan42 vlan 42'$/m);
  assert.match(renderDomainConfig(plan, plan.domains[1]!, endpoints), /^vif = \[ 'mac=[0-9a-f:]{17},bridge=lab0' \]$/m);
  assert.doesNotMatch(renderRuntimeEnv(resolveOk(parsed(['domains:', '  - name: web1']))), /RACKBOOT_BRIDGES/);

  assert.deepEqual(
    errors([
      'domains:', // 3
      '  - name: a', // 4
      '    network:', // 5
      '      bridge: lab0', // 6
      '      private: true', // 7
      '      vlan: 5', // 8
      '  - name: b', // 9
      '    network:', // 10
      '      private: true', // 11
      '  - name: c', // 12
      '    bridge: x', // 13
      '    network: {bridge: y}', // 14
      '  - name: d', // 15
      '    network: {bridge: lab0, vlan: 4095}', // 16
      '  - name: e', // 17
      '    network: {bridge: lab1, private: true}', // 18
      '  - name: f', // 19
      '    network: {bridge: lab1, vlan: 7}', // 20
    ]),
    [
      'profiles/xen01.yaml:8:7: domains[0].network.vlan: and private: true together; a private bridge has no way out, a VLAN bridge is on the rack',
      "profiles/xen01.yaml:11:7: domains[1].network.private: not for xenbr0, the rack's own bridge; name a bridge of the host's, such as lab0",
      'profiles/xen01.yaml:13:5: domains[2].bridge: and domains[2].network together; write the bridge in network.bridge',
      'profiles/xen01.yaml:16:35: domains[3].network.vlan: 4095 is above the maximum of 4094 VLAN id',
      'profiles/xen01.yaml:20:14: domains[5].network: lab1 is private in domains[4].network; every guest on one bridge says the same of it',
    ],
  );
});

function resolveOk(profile: Profile) {
  const boot = resolveHostBoot({
    mac,
    platform: 'bios',
    profile,
    build: memoryBuild('20261205T070000Z-abc123', ['vmlinuz', 'guest.initrd.gz']),
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
  });
  assert.ok(boot.kind === 'boot');
  return (boot as Extract<typeof boot, { kind: 'boot' }>).plan;
}

test('a file disk: a file on a filesystem of the host, created sparse with its size when missing', () => {
  const profile = parsed([
    ...storage,
    'domains:',
    '  - name: web1',
    '    disks:',
    '      - file: images/web1.img',
    '        filesystem: label:guests',
    '        size: 16M',
    '      - file: web1-data.img',
    '        filesystem: vg0/images',
    '        size: 1G',
    '        readOnly: true',
  ]);
  assert.deepEqual(profile.domains[0]!.disks, [
    { kind: 'file', filesystem: { kind: 'label', label: 'guests' }, path: 'images/web1.img', size: 16 * 1024 ** 2, device: 'xvda', readOnly: false },
    {
      kind: 'file',
      filesystem: { kind: 'volume', volumeGroup: 'vg0', volume: 'images' },
      path: 'web1-data.img',
      size: 1024 ** 3,
      device: 'xvdb',
      readOnly: true,
    },
  ]);
  const plan = resolveOk(profile);
  assert.match(storagePlan(plan), /; file web1 xvda label:guests images\/web1\.img 16777216; file web1 xvdb volume:vg0\/images web1-data\.img 1073741824$/);
  assert.match(
    renderDomainConfig(plan, plan.domains[0]!, endpoints),
    /'format=raw, vdev=xvda, access=rw, script=block-rackboot, target=\/run\/rackboot\/mnt\/label-guests\/images\/web1\.img', 'format=raw, vdev=xvdb, access=ro, script=block-rackboot, target=\/run\/rackboot\/mnt\/volume-vg0-images\/web1-data\.img'/,
  );
  assert.deepEqual(
    errors([
      ...storage,
      'domains:', // 10
      '  - name: a', // 11
      '    disks:', // 12
      '      - file: /abs.img', // 13
      '        filesystem: label:guests', // 14
      '        size: 1G', // 15
      '      - file: ../up.img', // 16
      '        filesystem: vg9/x', // 17
      '      - file: x.img', // 18
      '        size: 1G', // 19
      '      - volume: vg0/a', // 20
      '        size: 1G', // 21
      '        filesystem: label:guests', // 22
      '  - name: b', // 23
      '    disks:', // 24
      '      - file: same.img', // 25
      '        filesystem: label:g', // 26
      '        size: 1G', // 27
      '      - file: same.img', // 28
      '        filesystem: label:g', // 29
      '        size: 1G', // 30
    ]),
    [
      'profiles/xen01.yaml:13:15: domains[0].disks[0].file: "/abs.img": give the path on the filesystem, without a leading "/" (it is mounted by dom0)',
      'profiles/xen01.yaml:16:9: domains[0].disks[1].size: missing; the size it is created with when it is not there yet, such as 20G',
      'profiles/xen01.yaml:16:15: domains[0].disks[1].file: "../up.img" has "." or ".." in it',
      'profiles/xen01.yaml:17:21: domains[0].disks[1].filesystem: "vg9" is not a volume group of this profile (storage.volumeGroups)',
      'profiles/xen01.yaml:18:9: domains[0].disks[2].filesystem: missing; the filesystem the file is on, such as label:guests or vg0/images',
      'profiles/xen01.yaml:22:9: domains[0].disks[3].filesystem: only for file: (the filesystem the file is on)',
      'profiles/xen01.yaml:28:15: domains[1].disks[1].file: same.img on label:g is already a disk of domains[1].disks[0]; two guests never write one file',
    ],
  );
});

test('a routed private bridge: dom0 hands out its subnet and forwards only to the allowed rack addresses', () => {
  const profile = parsed([
    'domains:',
    '  - name: out1',
    '    network:',
    '      bridge: nat0',
    '      private: true',
    '      subnet: 198.19.7.0/24',
    '      allow: [198.18.0.1, 198.18.1.0/24]',
    '  - name: out2',
    '    network: {bridge: nat1, private: true, subnet: 198.19.8.0/28, allow: [198.18.0.1/32]}',
  ]);
  assert.deepEqual(profile.domains[0]!.network, { kind: 'private', routed: { subnet: '198.19.7.0/24', allow: ['198.18.0.1/32', '198.18.1.0/24'] } });
  assert.equal(
    bridgePlan(resolveOk(profile)),
    'nat0 private 198.19.7.1/24 198.19.7.100 198.19.7.200 198.18.0.1/32,198.18.1.0/24; nat1 private 198.19.8.1/28 198.19.8.2 198.19.8.14 198.18.0.1/32',
  );
  assert.deepEqual(
    errors([
      'domains:', // 3
      '  - name: a', // 4
      '    network: {bridge: n0, subnet: 198.19.7.0/24, allow: [198.18.0.1]}', // 5
      '  - name: b', // 6
      '    network: {bridge: n1, private: true, subnet: 198.19.7.5/24, allow: [nowhere]}', // 7
      '  - name: c', // 8
      '    network: {bridge: n2, private: true, allow: [198.18.0.1]}', // 9
    ]),
    [
      "profiles/xen01.yaml:5:27: domains[0].network.subnet: only with private: true (a bridge of the host's that dom0 routes out of)",
      'profiles/xen01.yaml:7:50: domains[1].network.subnet: "198.19.7.5/24" is not the subnet\'s first address (198.19.7.0/24)',
      'profiles/xen01.yaml:7:73: domains[1].network.allow[0]: "nowhere" is not an address or a subnet (198.18.0.1 or 198.18.0.0/24)',
      'profiles/xen01.yaml:9:42: domains[2].network.subnet: missing; subnet: and allow: go together (dom0 routes the subnet out to the allowed addresses only)',
    ],
  );
});
