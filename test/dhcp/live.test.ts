/**
 * The DHCP server on a real link: two network namespaces joined by a veth
 * pair (server side 198.18.0.1/24, no default route), the server in one and
 * busybox udhcpc in the other. Needs root; fails (never skips) without it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../support/netns.js';
import { LiveLink, runIn, serverAddress } from './live-support.js';
import { childScript, type FloodConfig, type FloodSummary } from './netns-child.js';

const floodAddress = '198.18.0.2';
const plainMac = '02:00:00:00:01:01';
const reservedMac = '02:00:00:00:02:02';
const afterFloodMac = '02:00:00:00:03:03';

/** udhcpc's environment for the "bound" event, from our script. */
function boundLease(output: string): Record<string, string> {
  const line = output.split('\n').find((l) => l.startsWith('UDHCPC bound'));
  assert.ok(line, `udhcpc reported no lease:\n${output}`);
  return Object.fromEntries(
    line
      .slice('UDHCPC bound '.length)
      .split('|')
      .map((pair) => pair.split('=') as [string, string]),
  );
}

describe('DHCP server and udhcpc across a veth pair', () => {
  let link: LiveLink;
  let scratch: string;
  let script: string;

  before(async () => {
    run('busybox', ['udhcpc', '--help']); // fails the suite when busybox has no udhcpc
    link = new LiveLink('dhs0', 'dhc0', plainMac);
    scratch = mkdtempSync(join(tmpdir(), 'rackboot-dhcp-'));
    script = join(scratch, 'udhcpc-script');
    // udhcpc runs this on each event; it only reports, it configures nothing.
    writeFileSync(
      script,
      '#!/bin/sh\necho "UDHCPC $1 ip=$ip|subnet=$subnet|router=$router|dns=$dns|hostname=$hostname|lease=$lease|serverid=$serverid|siaddr=$siaddr|boot_file=$boot_file"\n',
      { mode: 0o755 },
    );
    await link.startServer({
      pool: { start: '198.18.0.100', end: '198.18.0.199' },
      leaseSeconds: 3600,
      dns: ['198.18.0.53'],
      reservations: { [reservedMac]: { address: '198.18.0.20', hostname: 'rack-node-7' } },
      quiet: true,
    });
  });

  after(() => {
    link?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const udhcpc = () => runIn(link.clientNs, 'busybox', ['udhcpc', '-i', 'dhc0', '-n', '-q', '-f', '-t', '4', '-T', '1', '-s', script], 30_000);

  test('a broadcast from a 0.0.0.0 socket has no route here; from the server address it leaves', async () => {
    const probe = await runIn(
      link.serverNs,
      process.execPath,
      [childScript, 'broadcast-probe', JSON.stringify({ boundAddress: serverAddress, port: 68 })],
      10_000,
    );
    assert.equal(probe.code, 0, probe.stderr);
    assert.deepEqual(JSON.parse(probe.stdout), { wildcard: 'ENETUNREACH', bound: 'sent' });
  });

  test('udhcpc gets a pool address with the network options', async () => {
    const result = await udhcpc();
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const lease = boundLease(result.stdout);
    assert.equal(lease.ip, '198.18.0.100');
    assert.equal(lease.subnet, '255.255.255.0');
    assert.equal(lease.dns, '198.18.0.53');
    assert.equal(lease.serverid, serverAddress);
    assert.equal(lease.lease, '300', 'a first lease until udhcpc renews');
    assert.equal(lease.hostname, '');
    assert.deepEqual(await link.waitForReplies(plainMac, 2), [
      ['DHCPDISCOVER', 'offer', '198.18.0.100', '255.255.255.255:68'],
      ['DHCPREQUEST', 'ack', '198.18.0.100', '255.255.255.255:68'],
    ]);
  });

  test('udhcpc with a reserved MAC gets the reserved address and hostname', async () => {
    link.setClientMac(reservedMac);
    const result = await udhcpc();
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const lease = boundLease(result.stdout);
    assert.equal(lease.ip, '198.18.0.20');
    assert.equal(lease.hostname, 'rack-node-7');
    const { leases } = await link.server.stats();
    assert.deepEqual(
      leases.filter((l) => l.mac === reservedMac).map((l) => [l.address, l.state, l.hostname]),
      [['198.18.0.20', 'bound', 'rack-node-7']],
    );
  });

  test('100,000 random and malformed packets, then a new client still gets an answer', async (t) => {
    const before = (await link.server.stats()).stats;
    const logLinesBefore = link.server.logLines;
    link.clientNs.ip('addr', 'add', `${floodAddress}/24`, 'dev', 'dhc0');
    const flood: FloodConfig = { localAddress: floodAddress, serverAddress, count: 100_000, seed: 20240601, batch: 64 };
    const result = await runIn(link.clientNs, process.execPath, [childScript, 'flood', JSON.stringify(flood)], 120_000);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as FloodSummary;
    link.clientNs.ip('addr', 'del', `${floodAddress}/24`, 'dev', 'dhc0');

    const { stats, leases } = await link.server.stats();
    const received = stats.received - before.received;
    const rate = Math.round(summary.sent / summary.seconds);
    t.diagnostic(`flood: ${summary.sent} packets + ${summary.barriers} barriers in ${summary.seconds.toFixed(2)} s = ${rate} packets/s`);
    t.diagnostic(`flood kinds: ${JSON.stringify(summary.byKind)}`);
    t.diagnostic(
      `server: ${received} received, ${stats.malformed - before.malformed} malformed, ${stats.replies - before.replies} replies, ` +
        `${stats.updates - before.updates} updates, ${stats.ignored - before.ignored} ignored, ${stats.errors - before.errors} errors`,
    );
    // Every packet reached the server and was handled: the barriers make the
    // flood wait for the server, so the socket buffer never overflows. A few
    // more may come from the earlier tests' clients still retransmitting.
    const expected = summary.sent + summary.barriers + summary.barrierRetries;
    assert.ok(received >= expected && received <= expected + 10, `received ${received}, sent ${expected}`);
    assert.equal(stats.errors, before.errors, 'no request failed inside the server');
    assert.ok(stats.malformed - before.malformed > 5000, 'most of the flood was malformed');
    // One debug line per malformed packet (and one per other event).
    assert.ok(link.server.logLines - logLinesBefore >= received, `log lines: ${link.server.logLines - logLinesBefore}`);
    // The invariant held through it all: one record per address.
    const held = leases.filter((l) => l.state !== 'released' && l.state !== 'expired');
    assert.equal(new Set(held.map((l) => l.address)).size, held.length);

    link.setClientMac(afterFloodMac);
    const answer = await udhcpc();
    assert.equal(answer.code, 0, `${answer.stdout}\n${answer.stderr}`);
    const lease = boundLease(answer.stdout);
    assert.match(lease.ip!, /^198\.18\.0\.1\d\d$/);
    const after = await link.server.stats();
    const mine = after.leases.filter((l) => l.address === lease.ip);
    assert.deepEqual(
      mine.map((l) => [l.mac, l.state]),
      [[afterFloodMac, 'bound']],
    );
  });
});
