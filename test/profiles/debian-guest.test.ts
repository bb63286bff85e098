import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderDomainConfig, renderFirstBoot } from '../../server/core/render.js';
import { resolveHostBoot } from '../../server/core/resolve.js';
import { memoryBuild } from '../support/assets.js';
import { hostErrors, parsedHost } from '../support/profiles.js';

const mac = '52:54:00:12:34:56';
const endpoints = { address: '198.18.0.1', httpPort: 8080 };
const hash = '$6$rounds=5000$saltsalt$2mVZbHN0b/yRj8o2jXMmHD0ITC3dNw2C4d/tW8cjp1kK6Ow7v16gZ9lfM8yM7HK1jGJr9tBg7m7KqYQhmvz0s/';
const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlkc/VLZAO/Wa+NXrNh7Hd4k4QcdyIL1kKnAu8qDRUD admin@desk';
const storage = ['storage:', '  volumeGroups:', '    - name: vg0', '      disks: [serial:QM00001]'];

const parsed = parsedHost;
const errors = hostErrors;

test('a Debian guest: image, its root on its first writable disk or in RAM, first-boot settings with the host profile fields', () => {
  const profile = parsed([
    ...storage,
    'domains:',
    '  - name: db1',
    '    image: debian',
    '    disks:',
    '      - disk: serial:SEED',
    '        readOnly: true',
    '      - volume: vg0/db1',
    '        size: 2G',
    '    firstBoot:',
    '      hostname: db-one',
    '      network: { mode: static, address: 198.18.0.61/24, gateway: 198.18.0.1, dns: [198.18.0.1] }',
    `      rootPasswordHash: '${hash}'`,
    `      sshAuthorizedKeys: ['${key}']`,
    '  - name: cache1',
    '    image: debian',
    '    memory: 320',
    '  - name: demo',
  ]);
  const [db1, cache1, demo] = profile.domains;
  assert.equal(db1!.image, 'debian');
  assert.equal(db1!.root, 'xvdb', 'the first disk it may write');
  assert.equal(db1!.memory, 256, 'the Debian default');
  assert.deepEqual(db1!.firstBoot, {
    hostname: 'db-one',
    network: { mode: 'static', address: '198.18.0.61', prefixLength: 24, gateway: '198.18.0.1', dns: ['198.18.0.1'] },
    rootPasswordHash: hash,
    sshAuthorizedKeys: [key],
  });
  assert.equal(cache1!.root, 'ram', 'no disks: from the network into RAM');
  assert.equal(cache1!.memory, 320);
  assert.deepEqual(cache1!.firstBoot, { hostname: 'cache1', network: { mode: 'dhcp' }, sshAuthorizedKeys: [] });
  assert.equal(demo!.image, undefined, 'the busybox demo guest');
  assert.equal(demo!.root, undefined);
  assert.equal(demo!.memory, 96);
});

test('a Debian guest: refusals name the file, line, column and field', () => {
  assert.deepEqual(errors(['domains:', '  - name: a', '    image: ubuntu']), [
    'profiles/xen01.yaml:5:12: domains[0].image: "ubuntu" is not a guest image; want busybox (the demo guest) or debian (the build\'s Debian guest image)',
  ]);
  assert.deepEqual(errors(['domains:', '  - name: a', '    root: xvda', '    firstBoot: { hostname: a }']), [
    'profiles/xen01.yaml:5:5: domains[0].root: only with image: debian (the busybox demo guest lives in its ramdisk and takes no settings)',
    'profiles/xen01.yaml:6:5: domains[0].firstBoot: only with image: debian (the busybox demo guest lives in its ramdisk and takes no settings)',
  ]);
  assert.deepEqual(errors(['domains:', '  - name: a', '    image: debian', '    memory: 128']), [
    'profiles/xen01.yaml:6:13: domains[0].memory: 128 MiB is too little for the Debian guest image; it needs at least 192 (256 when left out)',
  ]);
  assert.deepEqual(
    errors([
      ...storage,
      'domains:',
      '  - name: a',
      '    image: debian',
      '    root: xvdc',
      '    disks: [{ volume: vg0/a, size: 1G }, { disk: serial:RO, readOnly: true }]',
      '  - name: b',
      '    image: debian',
      '    root: xvdb',
      '    disks: [{ volume: vg0/b, size: 1G }, { disk: serial:RO2, readOnly: true }]',
    ]),
    [
      'profiles/xen01.yaml:10:11: domains[0].root: "xvdc" is not a device of this domain\'s disks (xvda, xvdb); name one, or ram to run the image from RAM',
      'profiles/xen01.yaml:14:11: domains[1].root: "xvdb" is read-only; the image is installed on its root disk',
    ],
  );
  assert.deepEqual(
    errors([
      'domains:',
      '  - name: a',
      '    image: debian',
      '    firstBoot:',
      '      hostname: -bad',
      '      network: { mode: static }',
      "      rootPasswordHash: 'secret'",
      '      sshAuthorizedKeys: [nonsense]',
      '      color: blue',
    ]),
    [
      'profiles/xen01.yaml:7:17: domains[0].firstBoot.hostname: "-bad": label "-bad" starts or ends with "-" (RFC 1123)',
      'profiles/xen01.yaml:8:24: domains[0].firstBoot.network.address: missing; mode static needs the host address with its prefix, such as 198.18.0.50/24',
      'profiles/xen01.yaml:9:25: domains[0].firstBoot.rootPasswordHash: is not a crypt(3) hash (it may be a plain password, which must never be stored here); want "$6$salt$hash", make one with: openssl passwd -6',
      'profiles/xen01.yaml:10:27: domains[0].firstBoot.sshAuthorizedKeys[0]: starts with "nonsense", not a key type (want ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com); options before the type are not supported',
      'profiles/xen01.yaml:11:7: domains[0].firstBoot.color: unknown field; known fields here: hostname, network, rootPasswordHash, sshAuthorizedKeys',
    ],
  );
  // A guest shared by many hosts cannot have one static address.
  assert.deepEqual(
    errors(
      ['hostname: node-{mac}', 'domains:', '  - name: a', '    image: debian', '    firstBoot:', '      network: { mode: static, address: 198.18.0.61/24 }'],
      'profiles/default.yaml',
      false,
    ),
    [
      "profiles/default.yaml:6:7: domains[0].firstBoot.network: mode static not allowed in default.yaml: every host without a file of its own would give its guest the same address; write it in a host's own file",
    ],
  );
});

test('a Debian guest rendered: its config names the image and the root, its first-boot settings are a file of their own', () => {
  const profile = parsed([
    ...storage,
    'domains:',
    '  - name: db1',
    '    image: debian',
    '    disks: [{ volume: vg0/db1, size: 2G }]',
    '    firstBoot:',
    '      network: { mode: static, address: 198.18.0.61/24, gateway: 198.18.0.1 }',
    `      rootPasswordHash: '${hash}'`,
    '  - name: cache1',
    '    image: debian',
  ]);
  const build = memoryBuild('20261205T070000Z-abc123', ['vmlinuz', 'guest.initrd.gz', 'debian-guest.squashfs']);
  const boot = resolveHostBoot({ mac, platform: 'bios', profile, build, endpoints });
  assert.equal(boot.kind, 'boot');
  if (boot.kind !== 'boot') return;
  const [db1, cache1] = boot.plan.domains;
  assert.deepEqual(boot.plan.guestParts, ['vmlinuz', 'guest.initrd.gz'], 'dom0 fetches the first stage; the guest fetches its image');
  const config = renderDomainConfig(boot.plan, db1!, endpoints, 'g.token');
  assert.match(
    config,
    /^extra = "console=hvc0 loglevel=5 rackboot\.server=http:\/\/198\.18\.0\.1:8080 rackboot\.parent=52:54:00:12:34:56 rackboot\.domain=db1 rackboot\.token=g\.token rackboot\.image=builds\/20261205T070000Z-abc123\/debian-guest\.squashfs rackboot\.root=xvda rackboot\.ip=198\.18\.0\.61\/24 rackboot\.gw=198\.18\.0\.1"$/m,
  );
  assert.match(config, /^ramdisk = "\/run\/rackboot\/parts\/guest\.initrd\.gz"$/m);
  assert.doesNotMatch(config, /\$6\$/);
  assert.match(renderDomainConfig(boot.plan, cache1!, endpoints), /rackboot\.root=ram"$/m);
  assert.equal(
    renderFirstBoot(boot.plan, db1!),
    [
      '# rackboot: first-boot settings of domain db1 of xen01 (52:54:00:12:34:56) from profiles/xen01.yaml',
      "RACKBOOT_GUEST_HOSTNAME='db1'",
      "RACKBOOT_GUEST_NET='static'",
      "RACKBOOT_GUEST_IP='198.18.0.61/24'",
      "RACKBOOT_GUEST_GW='198.18.0.1'",
      "RACKBOOT_GUEST_DNS=''",
      `RACKBOOT_GUEST_ROOT_HASH='${hash}'`,
      '',
    ].join('\n'),
  );
  assert.equal(renderFirstBoot(boot.plan, cache1!).split('\n').slice(1).join('\n'), "RACKBOOT_GUEST_HOSTNAME='cache1'\nRACKBOOT_GUEST_NET='dhcp'\n");

  // A build without the image: the host boots, the Debian guests wait, and the note says why.
  const without = resolveHostBoot({ mac, platform: 'bios', profile, build: memoryBuild('b2', ['vmlinuz', 'guest.initrd.gz']), endpoints });
  assert.equal(without.kind, 'boot');
  if (without.kind !== 'boot') return;
  assert.deepEqual(
    without.plan.domains.map((domain) => domain.start),
    [false, false],
  );
  assert.ok(without.plan.notes.includes('domain db1 not started: build has no debian-guest.squashfs'), without.plan.notes.join('\n'));
});
