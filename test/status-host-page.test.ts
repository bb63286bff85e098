import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Profile } from '../server/profiles/profile.js';
import { hostPageData, shownBoots } from '../server/status/host-page-data.js';
import type { HostStatus } from '../server/status/snapshot.js';
import type { TimelineEvent } from '../server/status/timeline.js';

const mac = '52:54:00:03:00:02';
const secretHash = '$6$rounds=5000$saltsaltsalt$0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdef';
const secretKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlkc/VLZAO/Wa+NXrNh7Hd4k4QcdyIL1kKnAu8qDRUD you@desk';

/** A group entry with every secret a profile can hold. */
const profile: Profile = {
  source: '/etc/rackboot/profiles/rack3.yaml',
  groupEntry: { index: 1, line: 21 },
  mac,
  hostname: 'r3n02',
  network: { mode: 'static', address: '198.18.3.22', prefixLength: 24, gateway: '198.18.3.1', dns: ['198.18.3.1'] },
  rootPasswordHash: secretHash,
  ssh: true,
  timezone: 'Europe/Berlin',
  boot: { entry: 'standard', xenArgs: 'dom0_mem=256M xen-secret-arg', kernelArgs: 'rackboot.secret=kernel-secret-arg', menuTimeout: 0, channel: 'testing' },
  sshAuthorizedKeys: [secretKey, secretKey.replace('you@desk', 'ops@desk')],
  aptUpdate: false,
  domains: [
    {
      name: 'web',
      memory: 256,
      vcpus: 2,
      kernel: 'vmlinuz',
      ramdisk: 'guest.initrd.gz',
      extraArgs: 'guest-secret-arg',
      bridge: 'xenbr0',
      autostart: true,
      restart: true,
      image: 'debian',
      root: 'ram',
      firstBoot: { hostname: 'web', network: { mode: 'dhcp' }, rootPasswordHash: `${secretHash}guest`, sshAuthorizedKeys: [secretKey] },
    },
    { name: 'spare', memory: 96, vcpus: 1, kernel: 'vmlinuz', ramdisk: 'guest.initrd.gz', extraArgs: '', bridge: 'xenbr0', autostart: false, restart: false },
  ],
  bmc: { address: '198.18.10.21', port: 623, user: 'bmc-admin-user', passwordFile: '/etc/rackboot/bmc/r3n02.password', cipherSuite: 17 },
};

const host: HostStatus = {
  mac,
  hostname: 'r3n02',
  profile: 'rack3.yaml',
  profileFrom: 'rack3.yaml (group entry hosts[1], line 21)',
  address: '198.18.3.22',
  stage: 'ready',
  lastSeen: '2026-12-06T16:00:33.300Z',
  lastBootSeconds: 28.4,
  lastReadyAt: '2026-12-06T16:00:28.400Z',
  failures: 0,
  lastFailure: null,
  alarms: 0,
  lastAlarm: null,
  build: '20261206T074500.123Z-1a2b3c4d',
  xen: '4.17.5',
  kernel: '6.1.0-28-amd64',
  storage: null,
  slot: 'circuit-id "r2" remote-id "sw-rack3"',
  rack: '"sw-rack3"',
  group: 'rack3.yaml',
};

const t0 = Date.parse('2026-12-06T16:00:00Z');
const boot = (offset: number): TimelineEvent[] =>
  [
    [0, 'dhcp', 'dhcp-discover'],
    [1, 'tftp', 'tftp'],
    [2, 'http', 'boot.ipxe'],
    [12, 'runtime', 'booted'],
    [14, 'runtime', 'configured'],
    [20, 'runtime', 'ready'],
  ].map(([seconds, source, stage]) => ({ time: t0 + offset + (seconds as number) * 1000, mac, source: source as string, stage: stage as string }));

test("a host's page data: its row, what its profile says without a secret, its build, lease and newest boots", () => {
  const timeline = Array.from({ length: 7 }, (_, index) => boot(index * 60_000)).flat();
  const data = hostPageData({
    host,
    profile,
    lease: { mac, address: '198.18.3.22', state: 'bound', expiresAt: Date.parse('2026-12-06T17:00:00Z') },
    timeline,
    nextBuild: { id: '20261207T080000.000Z-5e6f7a8b', reason: "channel testing's current build (boot.channel in rack3.yaml)" },
  });
  const text = JSON.stringify(data);
  for (const secret of [
    secretHash,
    '$6$',
    'AAAAC3NzaC1lZDI1NTE5',
    'ssh-ed25519',
    'bmc-admin-user',
    'r3n02.password',
    '198.18.10.21',
    'xen-secret-arg',
    'kernel-secret-arg',
    'guest-secret-arg',
  ]) {
    assert.ok(!text.includes(secret), `the page data shows ${secret}`);
  }
  assert.deepEqual(data.profile, {
    file: 'rack3.yaml',
    from: 'rack3.yaml (group entry hosts[1], line 21)',
    hostname: 'r3n02',
    network: { mode: 'static', address: '198.18.3.22/24', gateway: '198.18.3.1', dns: ['198.18.3.1'] },
    slot: null,
    group: 'rack3.yaml',
    boot: { entry: 'standard', menuTimeout: 0, channel: 'testing', pinnedBuild: null, allowReboot: true },
    ssh: true,
    sshKeys: 2,
    rootPassword: true,
    timezone: 'Europe/Berlin',
    aptUpdate: false,
    bmc: true,
    domains: [
      { name: 'web', memory: 256, vcpus: 2, autostart: true, image: 'debian' },
      { name: 'spare', memory: 96, vcpus: 1, autostart: false, image: 'busybox' },
    ],
  });
  assert.deepEqual(data.build, {
    reported: '20261206T074500.123Z-1a2b3c4d',
    xen: '4.17.5',
    kernel: '6.1.0-28-amd64',
    channel: 'testing',
    pinned: null,
    next: '20261207T080000.000Z-5e6f7a8b',
    nextReason: "channel testing's current build (boot.channel in rack3.yaml)",
  });
  assert.deepEqual(data.lease, { address: '198.18.3.22', state: 'bound', expiresAt: '2026-12-06T17:00:00.000Z', hostname: null });
  assert.equal(data.host, host);
  assert.equal(data.boots.length, shownBoots);
  assert.deepEqual(
    data.boots.map((picture) => (picture.startedAt - t0) / 60_000),
    [6, 5, 4, 3, 2],
  );
  assert.deepEqual(
    data.boots[0]!.segments.map((segment) => [segment.phase, segment.seconds]),
    [
      ['dhcp', 0],
      ['tftp', 1],
      ['files', 1],
      ['kernel', 10],
      ['runtime', 2],
      ['domains', 6],
    ],
  );
});

test('a host without a profile or lease; a pinned build and the DHCP network', () => {
  const bare = hostPageData({ host, profile: undefined, lease: undefined, timeline: [] });
  assert.equal(bare.profile, null);
  assert.equal(bare.lease, null);
  assert.deepEqual(bare.boots, []);
  assert.deepEqual(bare.build, {
    reported: host.build,
    xen: host.xen,
    kernel: host.kernel,
    channel: 'default',
    pinned: null,
    next: null,
    nextReason: null,
  });
  const pinned = hostPageData({
    host,
    profile: {
      ...profile,
      groupEntry: undefined,
      relay: { circuitId: '7231', remoteId: '73772d7261636b33' },
      network: { mode: 'dhcp' },
      rootPasswordHash: undefined,
      boot: { ...profile.boot, build: 'b-pinned', allowReboot: false },
    } as Profile,
    lease: undefined,
    timeline: [],
  });
  assert.deepEqual(pinned.profile!.network, { mode: 'dhcp' });
  assert.equal(pinned.profile!.slot, 'circuit-id "r1" remote-id "sw-rack3"');
  assert.equal(pinned.profile!.group, null);
  assert.equal(pinned.profile!.rootPassword, false);
  assert.deepEqual(pinned.profile!.boot, { entry: 'standard', menuTimeout: 0, channel: 'testing', pinnedBuild: 'b-pinned', allowReboot: false });
  assert.equal(pinned.build.pinned, 'b-pinned');
});
