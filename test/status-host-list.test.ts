import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryEventStore } from '../server/events/store.js';
import { describeHost, readyFacts } from '../server/status/hosts.js';
import { HostList, keepUnknown, notifyingAppends } from '../server/status/host-list.js';
import { makeProfile } from './support/profiles.js';

/**
 * The status host list is kept between reads, moved by what is appended to
 * the timeline, and forgets hosts nobody configured past its cap and
 * retention (a stranger posting events for thousands of random MACs).
 */

const hour = 3600_000;

test('keepUnknown: within the retention, at most the cap, the most recently seen first', () => {
  const seen: Array<[string, number]> = [
    ['a', 100],
    ['b', 300],
    ['c', 200],
    ['d', 10],
  ];
  assert.deepEqual([...keepUnknown(seen, 400, { maxUnknown: 2, unknownRetentionMs: 1000 })].sort(), ['b', 'c']);
  assert.deepEqual([...keepUnknown(seen, 1150, { maxUnknown: 10, unknownRetentionMs: 1000 })].sort(), ['b', 'c']);
  assert.deepEqual([...keepUnknown(seen, 400, { maxUnknown: 0, unknownRetentionMs: 1000 })], []);
});

test('3000 strangers: the list keeps the known host and the newest strangers up to the cap, describing no more than it keeps', () => {
  let clock = Date.parse('2026-12-04T12:00:00Z');
  const known = '52:54:00:00:00:01';
  const profile = makeProfile({ mac: known, hostname: 'node01' });
  const store = new MemoryEventStore();
  let described = 0;
  const hosts = new HostList(
    {
      describe: (mac) => {
        described += 1;
        return describeHost(mac, store, { profiles: { lookup: (wanted) => (wanted === known ? profile : undefined) } });
      },
      isKnown: (mac) => mac === known,
    },
    { maxUnknown: 100, unknownRetentionMs: hour, refreshMs: 10 * hour },
    () => clock,
  );
  const timeline = notifyingAppends(store, (mac, time) => hosts.touched(mac, time));
  timeline.append({ time: clock - 50 * 60_000, mac: known, source: 'runtime', stage: 'ready' });
  const strangers: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    strangers.push(mac);
    timeline.appendAll([{ time: clock - 3000 + i, mac, source: 'runtime', stage: 'booted' }]);
  }

  const list = hosts.list();
  assert.equal(list.length, 101);
  assert.ok(
    list.some((row) => row.mac === known && row.hostname === 'node01'),
    'the known host stays although it is the oldest',
  );
  assert.deepEqual(new Set(list.filter((row) => row.mac !== known).map((row) => row.mac)), new Set(strangers.slice(-100)), 'the newest strangers stay');
  assert.equal(list[0]!.mac, strangers.at(-1), 'newest first');
  assert.equal(described, 101, 'only the kept hosts were described');

  // Nothing new: the same list, nothing described again.
  described = 0;
  assert.equal(hosts.list(), list);
  assert.equal(described, 0);

  // One stranger reports again: only it is described, and it stays on top.
  timeline.append({ time: clock, mac: strangers[0]!, source: 'runtime', stage: 'ready' });
  const moved = hosts.list();
  assert.equal(described, 1);
  assert.equal(moved.length, 101);
  assert.equal(moved[0]!.mac, strangers[0]);

  // Past the retention the strangers are forgotten; the known host is not.
  clock += 2 * hour;
  assert.deepEqual(
    hosts.list().map((row) => row.mac),
    [known],
  );
  assert.equal(hosts.size, 1);
});

test("a host's row names the build, Xen and kernel of its newest ready report; odd or missing fields are null", () => {
  assert.deepEqual(
    readyFacts('hostname=n1 ip=198.18.0.50/24 mac=52:54:00:00:00:01 domains=2 build=20261206T074500.123Z-1a2b3c4d xen=4.17.5 kernel=6.1.0-28-amd64'),
    {
      build: '20261206T074500.123Z-1a2b3c4d',
      xen: '4.17.5',
      kernel: '6.1.0-28-amd64',
    },
  );
  assert.deepEqual(readyFacts('ip=none domains=0 build=none xen=none kernel=6.1.0-28-amd64'), { build: null, xen: null, kernel: '6.1.0-28-amd64' });
  assert.deepEqual(readyFacts('domains=1'), { build: null, xen: null, kernel: null });
  assert.deepEqual(readyFacts(undefined), { build: null, xen: null, kernel: null });
  assert.deepEqual(readyFacts('build=<script> xen=4.17 kernel=x'), { build: null, xen: '4.17', kernel: 'x' });
  assert.deepEqual(readyFacts('notbuild=b1 build=b2'), { build: 'b2', xen: null, kernel: null });

  const store = new MemoryEventStore();
  const mac = '52:54:00:00:00:01';
  const profile = makeProfile({ mac, hostname: 'node01' });
  const describe = () => describeHost(mac, store, { profiles: { lookup: () => profile } })!;
  store.append({ time: 1, mac, source: 'runtime', stage: 'booted', detail: 'kernel=6.1.0-28-amd64 runtime=debian' });
  assert.equal(describe().build, null, 'no ready report yet');
  store.append({ time: 2, mac, source: 'runtime', stage: 'ready', detail: 'domains=0 build=b1 xen=4.17.5 kernel=6.1.0-28-amd64' });
  store.append({ time: 3, mac, source: 'runtime', stage: 'booted', detail: 'kernel=6.1.0-28-amd64 runtime=debian' });
  assert.equal(describe().build, 'b1', 'the last ready report holds until the next one');
  store.append({ time: 4, mac, source: 'runtime', stage: 'ready', detail: 'domains=0 build=b2 xen=4.17.5 kernel=6.1.0-29-amd64' });
  assert.deepEqual([describe().build, describe().kernel], ['b2', '6.1.0-29-amd64']);
});
