import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostsPerStage, summariseHost, type TimelineEvent } from '../server/status/timeline.js';

const mac = '52:54:00:00:00:01';
const at = (seconds: number, source: string, stage: string, extra: Partial<TimelineEvent> = {}): TimelineEvent => ({
  time: 1_000_000 + seconds * 1000,
  mac,
  source,
  stage,
  ...extra,
});

/** A BIOS network boot as the servers and the runtime report it. */
const firstBoot = [
  at(0, 'dhcp', 'dhcp-discover'),
  at(0.1, 'dhcp', 'dhcp-offer'),
  at(0.3, 'dhcp', 'dhcp-ack'),
  at(1, 'http', 'boot-script'),
  at(2, 'http', 'boot-file', { detail: 'xen' }),
  at(9, 'dhcp', 'dhcp-discover'), // the runtime's own DHCP is part of the same boot
  at(9.2, 'dhcp', 'dhcp-ack'),
  at(10, 'runtime', 'booted'),
  at(11, 'runtime', 'domain-failed', { domain: 'web', detail: 'xl create failed' }),
  at(28.4, 'runtime', 'ready'),
  at(35, 'guest', 'guest-ready', { domain: 'db' }),
];

test('a boot is timed from its first DHCP packet to ready; guests do not move the host; failures are counted', () => {
  const summary = summariseHost(mac, firstBoot)!;
  assert.deepEqual(summary, {
    mac,
    stage: 'ready',
    lastSeen: 1_035_000,
    bootStartedAt: 1_000_000,
    lastBootSeconds: 28.4,
    lastReadyAt: 1_028_400,
    failures: 1,
    lastFailure: 'domain web: xl create failed',
    alarms: 0,
    lastAlarm: null,
  });
});

test("an alarm about the host's token leaves its stage where it was, and stays through a reboot", () => {
  const alarmed = [...firstBoot, at(40, 'http', 'alarm', { detail: 'two boots of 52:54:00:12:34:56 at once?' })];
  const summary = summariseHost(mac, alarmed)!;
  assert.equal(summary.stage, 'ready');
  assert.equal(summary.alarms, 1);
  assert.equal(summary.lastAlarm, 'two boots of 52:54:00:12:34:56 at once?');
  assert.equal(summary.failures, 1, 'an alarm is not a failure of the boot');
  const rebooted = summariseHost(mac, [...alarmed, at(100, 'dhcp', 'dhcp-discover'), at(120, 'http', 'alarm', { detail: 'second' })])!;
  assert.equal(rebooted.alarms, 2);
  assert.equal(rebooted.lastAlarm, 'second');
});

test('a reboot starts a new boot: failures reset, the last finished boot time stays until the new one is ready', () => {
  const rebooting = [...firstBoot, at(100, 'dhcp', 'dhcp-discover'), at(100.2, 'dhcp', 'dhcp-offer')];
  const during = summariseHost(mac, rebooting)!;
  assert.equal(during.stage, 'dhcp-offer');
  assert.equal(during.bootStartedAt, 1_100_000);
  assert.equal(during.lastBootSeconds, 28.4);
  assert.equal(during.failures, 0);
  assert.equal(during.lastFailure, null);
  const done = summariseHost(mac, [...rebooting, at(131, 'runtime', 'ready')])!;
  assert.equal(done.lastBootSeconds, 31);
});

test('out-of-order input is ordered by time; a failed boot ends without a boot time; no events, no summary', () => {
  const failed = [
    at(5, 'runtime', 'failed', { detail: 'no network' }),
    at(0, 'dhcp', 'dhcp-discover'),
    at(2, 'tftp', 'tftp-failed', { detail: 'ipxe.efi: timeout' }),
  ];
  const summary = summariseHost(mac, failed)!;
  assert.equal(summary.stage, 'failed');
  assert.equal(summary.lastBootSeconds, null);
  assert.equal(summary.failures, 2);
  assert.equal(summary.lastFailure, 'no network');
  assert.equal(summariseHost(mac, []), undefined);
  // Reports without any DHCP (a static host whose DHCP the site does): no boot start, no time.
  assert.equal(summariseHost(mac, [at(0, 'runtime', 'booted'), at(3, 'runtime', 'ready')])!.lastBootSeconds, null);
});

test('hosts per stage', () => {
  const summaries = [summariseHost('a', firstBoot)!, summariseHost('b', firstBoot)!, summariseHost('c', [at(0, 'dhcp', 'dhcp-offer')])!];
  assert.deepEqual(
    [...hostsPerStage(summaries)],
    [
      ['ready', 2],
      ['dhcp-offer', 1],
    ],
  );
});
