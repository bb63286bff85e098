import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../server/log.js';
import { Metrics } from '../server/metrics.js';
import { NeighborTable } from '../server/net/neighbors.js';
import { BootObserver, type TimelineSink } from '../server/observe.js';
import type { TimelineEvent } from '../server/status/timeline.js';

class ArraySink implements TimelineSink {
  readonly events: TimelineEvent[] = [];
  append(event: TimelineEvent): void {
    this.events.push(event);
  }
  appendAll(events: readonly TimelineEvent[]): void {
    this.events.push(...events);
  }
  listByHost(mac: string): TimelineEvent[] {
    return this.events.filter((event) => event.mac === mac);
  }
}

test('protocol events become one timeline per MAC and metrics; TFTP and HTTP clients are found by address', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-observe-'));
  try {
    const arp = path.join(dir, 'arp');
    await writeFile(arp, 'IP address HW type Flags HW address Mask Device\n198.18.0.100 0x1 0x2 52:54:00:00:00:01 * tap0\n');
    let clock = 1_000_000;
    const sink = new ArraySink();
    const metrics = new Metrics();
    const firmware: Array<[string, string, number]> = [];
    const observer = new BootObserver({
      firmwareLog: (logged, text, at) => firmware.push([logged, text, at - 1_000_000]),
      timeline: sink,
      metrics,
      neighbors: new NeighborTable(arp),
      log: silentLogger(),
      partNames: () => new Set(['xen', 'vmlinuz', 'initrd.gz', 'undionly.kpxe']),
      flushMs: 10_000,
      now: () => clock,
    });
    const mac = '52:54:00:00:00:01';
    observer.dhcp({ mac, type: 'DHCPDISCOVER', result: 'offer', address: '198.18.0.100' });
    observer.dhcp({ mac, type: 'DHCPDISCOVER', result: 'ignored' });
    clock += 300;
    observer.dhcp({ mac, type: 'DHCPREQUEST', result: 'ack', address: '198.18.0.100' });
    clock += 700;
    observer.tftp({ client: '198.18.0.100', file: 'undionly.kpxe', result: 'complete', bytes: 70_000 });
    observer.tftp({ client: '198.18.0.250', file: 'undionly.kpxe', result: 'failed', bytes: 0, reason: 'timeout' });
    clock += 1000;
    observer.http({ path: '/hosts/52-54-00-00-00-01/boot.ipxe?platform=pcbios', status: 200, bytes: 400, client: '::ffff:198.18.0.100', host: mac });
    // A stranger asking about the host: answered (without a token) or refused, never on the host's timeline.
    observer.http({ path: '/hosts/52-54-00-00-00-01/boot.ipxe?platform=pcbios', status: 200, bytes: 300, client: '::ffff:198.18.0.250' });
    observer.http({ path: '/hosts/52-54-00-00-00-01/runtime.env', status: 403, bytes: 80, client: '::ffff:198.18.0.250' });
    observer.http({ path: '/builds/b1/xen', status: 200, bytes: 1_000_000, client: '::ffff:198.18.0.100' });
    observer.http({ path: '/no-such-file', status: 404, bytes: 40, client: '::ffff:198.18.0.100' });
    observer.http({ path: '/hosts/52-54-00-00-00-01/events', status: 204, bytes: 0, client: '::ffff:198.18.0.100' });
    // Nothing written yet: writes wait for the flush, off the packet path.
    assert.equal(sink.events.length, 0);
    clock += 26_000;
    sink.append({ time: clock, mac, source: 'runtime', stage: 'ready' });
    await observer.reported(mac, 'ready');

    // In order of time (TFTP and HTTP events wait for the neighbour table, so arrival order differs).
    const byTime = [...sink.events].sort((x, y) => x.time - y.time || x.stage.localeCompare(y.stage));
    assert.deepEqual(
      byTime.map((event) => [event.time - 1_000_000, event.source, event.stage, event.detail]),
      [
        [0, 'dhcp', 'dhcp-discover', undefined],
        [0, 'dhcp', 'dhcp-offer', '198.18.0.100'],
        [300, 'dhcp', 'dhcp-ack', '198.18.0.100'],
        [300, 'dhcp', 'dhcp-request', undefined],
        [1000, 'tftp', 'tftp', 'undionly.kpxe'],
        [2000, 'http', 'boot-file', 'xen'],
        [2000, 'http', 'boot.ipxe', undefined],
        [28_000, 'runtime', 'ready', undefined],
      ],
    );
    assert.ok(
      sink.events.every((event) => event.mac === mac),
      'the failed transfer from an unknown address has no timeline',
    );
    const text = await metrics.text();
    assert.match(text, /^rackboot_dhcp_packets_total\{type="DHCPDISCOVER",result="ignored"\} 1$/m);
    assert.match(text, /^rackboot_tftp_transfers_total\{result="failed"\} 1$/m);
    assert.match(text, /^rackboot_http_bytes_total\{file="xen"\} 1000000$/m);
    assert.match(text, /^rackboot_http_bytes_total\{file="host:boot.ipxe"\} 700$/m);
    assert.doesNotMatch(text, /file="other"/);
    assert.match(text, /^rackboot_boot_duration_seconds_sum 28$/m);
    assert.match(text, /^rackboot_boot_duration_seconds_count 1$/m);
    // iPXE's fetches, for the host's log: from its boot script to the runtime's first report, not the stranger's.
    observer.http({ path: '/builds/b1/vmlinuz', status: 200, bytes: 5, client: '::ffff:198.18.0.100' });
    await observer.settle();
    assert.deepEqual(firmware, [
      [mac, 'iPXE fetched its boot script (400 bytes)', 2000],
      [mac, 'iPXE fetched xen (1000000 bytes)', 2000],
    ]);
    await observer.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the timer's flush writes a storm's events a chunk at a time, in order, with turns of the event loop between; settle() writes the rest at once", async () => {
  const calls: number[] = [];
  const sink = new ArraySink();
  const counting: TimelineSink = {
    appendAll: (events) => {
      calls.push(events.length);
      sink.appendAll(events);
    },
    listByHost: (mac) => sink.listByHost(mac),
  };
  let clock = 1_000_000;
  const observer = new BootObserver({
    timeline: counting,
    metrics: new Metrics(),
    neighbors: new NeighborTable('/nonexistent'),
    log: silentLogger(),
    partNames: () => new Set(),
    flushMs: 5,
    now: () => clock++,
  });
  const macs = Array.from({ length: 700 }, (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`);
  // Two events an exchange: 1400 in all.
  for (const mac of macs) observer.dhcp({ mac, type: 'DHCPDISCOVER', result: 'offer', address: '198.18.0.100' });
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(calls.length >= 1 && calls[0] === 512, `the first write is one chunk of 512 (writes: ${calls.join(', ')})`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(calls, [512, 512, 376]);
  const times = sink.events.map((event) => event.time);
  assert.deepEqual(
    times,
    [...times].sort((x, y) => x - y),
    'in the order they were queued',
  );
  // settle() (before the timeline is read) writes everything queued in one go.
  calls.length = 0;
  for (const mac of macs) observer.dhcp({ mac, type: 'DHCPREQUEST', result: 'ack', address: '198.18.0.100' });
  await observer.settle();
  assert.deepEqual(calls, [1400]);
  await observer.close();
});
