import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pictureBoot, recentBoots, splitBoots, type BootPicture } from '../server/status/boots.js';
import { summariseHost, type TimelineEvent } from '../server/status/timeline.js';

const mac = '52:54:00:00:00:01';
const t0 = Date.parse('2026-12-06T16:00:00Z');
const at = (seconds: number, source: string, stage: string, extra: Partial<TimelineEvent> = {}): TimelineEvent => ({
  time: t0 + Math.round(seconds * 1000),
  mac,
  source,
  stage,
  ...extra,
});

/**
 * A BIOS boot of the Debian runtime with two guests, in the order
 * test/e2e/status.test.ts sees it: the PXE ROM's DHCP, undionly.kpxe over
 * TFTP, iPXE's DHCP, its boot script and the boot parts over HTTP, then the
 * runtime's reports (builder/runtime/init-debian), the guests' own ready
 * reports coming after the host's.
 */
const biosBoot = [
  at(0, 'dhcp', 'dhcp-discover'),
  at(0.01, 'dhcp', 'dhcp-offer', { detail: '198.18.0.50' }),
  at(1.02, 'dhcp', 'dhcp-request'),
  at(1.03, 'dhcp', 'dhcp-ack', { detail: '198.18.0.50' }),
  at(1.5, 'tftp', 'tftp', { detail: 'undionly.kpxe' }),
  at(3.2, 'dhcp', 'dhcp-discover'),
  at(3.21, 'dhcp', 'dhcp-offer', { detail: '198.18.0.50' }),
  at(4.2, 'dhcp', 'dhcp-request'),
  at(4.21, 'dhcp', 'dhcp-ack', { detail: '198.18.0.50' }),
  at(4.3, 'http', 'boot.ipxe'),
  at(4.6, 'http', 'boot-file', { detail: 'xen' }),
  at(5.1, 'http', 'boot-file', { detail: 'vmlinuz' }),
  at(7.3, 'http', 'boot-file', { detail: 'initrd.gz' }),
  at(19.3, 'runtime', 'booted', { detail: 'kernel=6.1.0-28-amd64 runtime=debian' }),
  at(19.5, 'http', 'runtime.env'),
  at(23.3, 'runtime', 'configured'),
  at(23.9, 'http', 'domain.cfg'),
  at(24.4, 'http', 'boot-file', { detail: 'guest.initrd.gz' }),
  at(25.3, 'runtime', 'domain-started', { domain: 'demo1', detail: 'domid=1' }),
  at(26.3, 'runtime', 'domain-started', { domain: 'demo2', detail: 'domid=2' }),
  at(28.4, 'runtime', 'ready', { detail: 'hostname=node01 ip=198.18.0.50/24 domains=2 build=b1 xen=4.17.5 kernel=6.1.0-28-amd64' }),
  at(31.3, 'guest', 'guest-ready', { domain: 'demo1', detail: 'ip=198.18.0.120/24' }),
  at(33.3, 'guest', 'guest-ready', { domain: 'demo2', detail: 'ip=198.18.0.121/24' }),
];

const phases = (picture: BootPicture) => picture.segments.map((segment) => [segment.phase, segment.seconds]);

test('a BIOS boot: DHCP, TFTP, boot files, Xen and kernel, runtime setup and domains, each timed; each domain to its ready', () => {
  const boots = splitBoots(biosBoot);
  assert.equal(boots.length, 1, 'guest reports after ready stay with their boot');
  const picture = pictureBoot(boots[0]!);
  assert.deepEqual(phases(picture), [
    ['dhcp', 1.03],
    ['tftp', 0.47],
    ['files', 5.8],
    ['kernel', 12],
    ['runtime', 4],
    ['domains', 5.1],
  ]);
  assert.deepEqual(
    picture.segments.map((segment) => segment.label),
    ['DHCP', 'TFTP', 'boot files', 'Xen + kernel', 'runtime setup', 'domains'],
  );
  assert.equal(picture.outcome, 'ready');
  assert.equal(picture.seconds, 28.4);
  assert.equal(picture.seconds, summariseHost(mac, biosBoot)!.lastBootSeconds, 'the picture and the summary time a boot alike');
  assert.equal(picture.fromDhcp, true);
  assert.equal(picture.startedAt, t0);
  assert.equal(picture.endedAt, t0 + 33_300);
  assert.ok(picture.segments.every((segment) => !segment.failed && !segment.open));
  // Consecutive: each phase starts where the one before ended.
  for (let index = 1; index < picture.segments.length; index += 1) assert.equal(picture.segments[index]!.start, picture.segments[index - 1]!.end);
  assert.deepEqual(
    picture.domains.map(({ name, seconds, outcome, detail }) => ({ name, seconds, outcome, detail })),
    [
      { name: 'demo1', seconds: 6, outcome: 'ready', detail: 'ip=198.18.0.120/24' },
      { name: 'demo2', seconds: 7, outcome: 'ready', detail: 'ip=198.18.0.121/24' },
    ],
  );
  assert.deepEqual(picture.failures, []);
  assert.equal(picture.events.length, biosBoot.length);
});

test('UEFI HTTP Boot has no TFTP; the tiny runtime reports no configured, so its setup runs to ready', () => {
  const uefi = [
    at(0, 'dhcp', 'dhcp-discover'),
    at(0.01, 'dhcp', 'dhcp-offer'),
    at(2, 'dhcp', 'dhcp-request'),
    at(2.01, 'dhcp', 'dhcp-ack'),
    at(2.8, 'http', 'boot-file', { detail: 'ipxe.efi' }),
    at(4, 'dhcp', 'dhcp-discover'),
    at(5, 'dhcp', 'dhcp-ack'),
    at(5.2, 'http', 'boot.ipxe'),
    at(5.3, 'http', 'xen.cfg'),
    at(6, 'http', 'boot-file', { detail: 'xen.efi' }),
    at(8, 'http', 'boot-file', { detail: 'initrd.gz' }),
    at(15, 'runtime', 'booted', { detail: 'kernel=6.1.0-28-amd64 runtime=tiny' }),
    at(17.5, 'runtime', 'ready'),
  ];
  const picture = pictureBoot(uefi);
  assert.deepEqual(phases(picture), [
    ['dhcp', 2.01],
    ['files', 5.99],
    ['kernel', 7],
    ['runtime', 2.5],
  ]);
  assert.equal(picture.seconds, 17.5);
  assert.deepEqual(picture.domains, []);
});

test('a boot without domains names its last stretch "to ready"', () => {
  const picture = pictureBoot([
    at(0, 'dhcp', 'dhcp-discover'),
    at(1, 'http', 'boot.ipxe'),
    at(3, 'runtime', 'booted'),
    at(4, 'runtime', 'configured'),
    at(6, 'runtime', 'ready'),
  ]);
  assert.deepEqual(
    picture.segments.map((segment) => [segment.phase, segment.label, segment.seconds]),
    [
      ['dhcp', 'DHCP', 0],
      ['files', 'boot files', 1],
      ['kernel', 'Xen + kernel', 2],
      ['runtime', 'runtime setup', 1],
      ['domains', 'to ready', 2],
    ],
  );
});

test('failures: a failed TFTP transfer, then a failed boot, each in the phase it happened; a domain that failed in its lane', () => {
  const tftpFailed = pictureBoot([
    at(0, 'dhcp', 'dhcp-discover'),
    at(1, 'dhcp', 'dhcp-ack'),
    at(7, 'tftp', 'tftp-failed', { detail: 'undionly.kpxe: timeout' }),
  ]);
  assert.equal(tftpFailed.outcome, 'in progress', 'a failed transfer does not end the boot: the firmware retries');
  assert.deepEqual(
    tftpFailed.segments.map(({ phase, failed, detail, open }) => ({ phase, failed, detail, open })),
    [
      { phase: 'dhcp', failed: false, detail: null, open: false },
      { phase: 'tftp', failed: true, detail: 'undionly.kpxe: timeout', open: true },
    ],
  );

  const runtimeFailed = pictureBoot([
    at(0, 'dhcp', 'dhcp-discover'),
    at(1, 'tftp', 'tftp', { detail: 'undionly.kpxe' }),
    at(2, 'http', 'boot.ipxe'),
    at(3, 'http', 'boot-file', { detail: 'initrd.gz' }),
    at(10, 'runtime', 'booted'),
    at(11, 'runtime', 'setting-failed', { detail: 'network: no link on eth0' }),
    at(12, 'runtime', 'configured'),
    at(13, 'runtime', 'domain-failed', { domain: 'web', detail: 'xl create: out of memory' }),
    at(14, 'runtime', 'failed', { detail: 'no domain started' }),
    at(15, 'runtime', 'rebooting'),
  ]);
  assert.equal(runtimeFailed.outcome, 'failed');
  assert.equal(runtimeFailed.seconds, 14);
  assert.deepEqual(
    runtimeFailed.segments.map(({ phase, failed, detail }) => [phase, failed, detail]),
    [
      ['dhcp', false, null],
      ['tftp', false, null],
      ['files', false, null],
      ['kernel', false, null],
      ['runtime', true, 'network: no link on eth0'],
      ['domains', true, 'no domain started'],
    ],
  );
  assert.equal(runtimeFailed.segments.at(-1)!.end, t0 + 14_000, 'the bar ends at the failure, not at what came after');
  assert.deepEqual(runtimeFailed.domains, [
    { name: 'web', start: null, end: t0 + 13_000, seconds: null, outcome: 'failed', detail: 'xl create: out of memory' },
  ]);
  assert.deepEqual(
    runtimeFailed.failures.map((failure) => `${failure.stage}${failure.domain ? ` ${failure.domain}` : ''}: ${failure.detail}`),
    ['setting-failed: network: no link on eth0', 'domain-failed web: xl create: out of memory', 'failed: no domain started'],
  );
});

test("iPXE's failure report (an http failed event) ends the boot in the boot files, red with iPXE's words", () => {
  const picture = pictureBoot([
    at(0, 'dhcp', 'dhcp-discover'),
    at(1, 'dhcp', 'dhcp-ack'),
    at(1.4, 'tftp', 'tftp', { detail: 'undionly.kpxe' }),
    at(3, 'http', 'boot.ipxe'),
    at(3.5, 'http', 'boot-file', { detail: 'xen' }),
    at(9, 'http', 'failed', { detail: 'iPXE: initrd.gz failed: error 0x3d126001 (https://ipxe.org/3d126001)' }),
  ]);
  assert.equal(picture.outcome, 'failed');
  assert.equal(picture.seconds, 9);
  assert.deepEqual(
    picture.segments.map(({ phase, seconds, failed, detail }) => [phase, seconds, failed, detail]),
    [
      ['dhcp', 1, false, null],
      ['tftp', 0.4, false, null],
      ['files', 7.6, true, 'iPXE: initrd.gz failed: error 0x3d126001 (https://ipxe.org/3d126001)'],
    ],
  );
});

test('a guest that started but never reported ready stays "starting"; a guest that failed after starting is failed with its time', () => {
  const picture = pictureBoot([
    at(0, 'dhcp', 'dhcp-discover'),
    at(10, 'runtime', 'booted'),
    at(11, 'runtime', 'configured'),
    at(12, 'runtime', 'domain-started', { domain: 'a' }),
    at(13, 'runtime', 'domain-started', { domain: 'b' }),
    at(14, 'runtime', 'ready'),
    at(20, 'guest', 'guest-failed', { domain: 'b', detail: 'no address' }),
  ]);
  assert.deepEqual(
    picture.domains.map(({ name, outcome, seconds, detail }) => ({ name, outcome, seconds, detail })),
    [
      { name: 'a', outcome: 'starting', seconds: null, detail: null },
      { name: 'b', outcome: 'failed', seconds: 7, detail: 'no address' },
    ],
  );
  assert.equal(picture.outcome, 'ready');
  assert.ok(
    picture.segments.every((segment) => !segment.failed),
    'a guest failure is its lane, not the host bar',
  );
});

test('reboots split the timeline; events before the first DHCP packet are a boot whose start was not seen; recentBoots is newest first', () => {
  const second = biosBoot.map((event) => ({ ...event, time: event.time + 100_000 }));
  const third = [at(200, 'dhcp', 'dhcp-discover'), at(200.5, 'dhcp', 'dhcp-offer'), at(201.7, 'tftp', 'tftp', { detail: 'undionly.kpxe' })];
  const orphan = [at(-50, 'runtime', 'booted'), at(-40, 'runtime', 'ready')];
  // Out of order on purpose: the store returns by id, and TFTP events are written after a neighbour lookup.
  const timeline = [...third, ...second, ...orphan, ...biosBoot].reverse();
  const boots = splitBoots(timeline);
  assert.deepEqual(
    boots.map((boot) => boot.length),
    [2, biosBoot.length, biosBoot.length, 3],
  );
  const recent = recentBoots(timeline, 3);
  assert.deepEqual(
    recent.map((boot) => [boot.startedAt - t0, boot.outcome, boot.seconds]),
    [
      [200_000, 'in progress', null],
      [100_000, 'ready', 28.4],
      [0, 'ready', 28.4],
    ],
  );
  assert.deepEqual(
    recent[0]!.segments.map(({ phase, open }) => [phase, open]),
    [
      ['dhcp', false],
      ['tftp', true],
    ],
  );
  const unseen = pictureBoot(boots[0]!);
  assert.equal(unseen.fromDhcp, false);
  assert.deepEqual(phases(unseen), [
    ['kernel', 0],
    ['runtime', 10],
  ]);
  assert.deepEqual(recentBoots([], 5), []);
  assert.throws(() => pictureBoot([]), RangeError);
});
