/**
 * ISC dhclient (Debian package isc-dhcp-client) against the server across a
 * veth pair: a full exchange, an INIT-REBOOT from its lease file, and a
 * unicast DHCPRELEASE. Needs root and dhclient; fails (never skips) without them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run } from '../support/netns.js';
import { LiveLink, runIn, serverAddress } from './live-support.js';

const poolMac = '02:00:00:00:04:04';
const reservedMac = '02:00:00:00:05:05';

describe('DHCP server and ISC dhclient across a veth pair', () => {
  let link: LiveLink;
  let scratch: string;

  before(async () => {
    run('dhclient', ['--version']); // fails the suite when isc-dhcp-client is not installed
    link = new LiveLink('dhs1', 'dhc1', poolMac);
    scratch = mkdtempSync(join(tmpdir(), 'rackboot-dhclient-'));
    // dhclient runs this script on each state change. It records the event and
    // puts the address on the interface, as the real script would, so that a
    // DHCPRELEASE (unicast from the leased address) can be sent.
    writeFileSync(
      join(scratch, 'script'),
      [
        '#!/bin/sh',
        `echo "$reason ip=$new_ip_address|host=$new_host_name|mask=$new_subnet_mask|dns=$new_domain_name_servers|router=$new_routers|server=$new_dhcp_server_identifier|lease=$new_dhcp_lease_time" >> ${scratch}/events`,
        'case "$reason" in',
        '  BOUND|REBOOT|RENEW|REBIND) ip addr replace "$new_ip_address/24" dev "$interface" ;;',
        '  RELEASE|STOP|EXPIRE|FAIL) ip addr flush dev "$interface" ;;',
        'esac',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    await link.startServer({
      pool: { start: '198.18.0.100', end: '198.18.0.109' },
      leaseSeconds: 3600,
      dns: ['198.18.0.53'],
      router: '198.18.0.254',
      reservations: { [reservedMac]: { address: '198.18.0.21', hostname: 'dh-node' } },
    });
  });

  after(() => {
    link?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** Runs dhclient with our script and files; `-1` tries once, then dhclient stays in the background. */
  async function dhclient(...flags: string[]): Promise<void> {
    const files = ['-sf', join(scratch, 'script'), '-lf', join(scratch, 'leases'), '-pf', join(scratch, 'pid')];
    const result = await runIn(link.clientNs, 'dhclient', ['-v', ...flags, ...files, 'dhc1'], 30_000);
    assert.equal(result.code, 0, result.stderr);
  }

  function events(): string[] {
    try {
      return readFileSync(join(scratch, 'events'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  }

  test('a pool client is bound with router, DNS and lease time', async () => {
    await dhclient('-1');
    assert.deepEqual(events().at(-1), `BOUND ip=198.18.0.100|host=|mask=255.255.255.0|dns=198.18.0.53|router=198.18.0.254|server=${serverAddress}|lease=300`);
    assert.deepEqual(await link.waitForReplies(poolMac, 2), [
      ['DHCPDISCOVER', 'offer', '198.18.0.100', '255.255.255.255:68'],
      ['DHCPREQUEST', 'ack', '198.18.0.100', '255.255.255.255:68'],
    ]);
    await dhclient('-x'); // stop without releasing
  });

  test('a reserved client is bound with its address and hostname', async () => {
    link.setClientMac(reservedMac);
    rmSync(join(scratch, 'leases'), { force: true });
    await dhclient('-1');
    assert.deepEqual(
      events().at(-1),
      `BOUND ip=198.18.0.21|host=dh-node|mask=255.255.255.0|dns=198.18.0.53|router=198.18.0.254|server=${serverAddress}|lease=300`,
    );
    assert.equal((await link.waitForReplies(reservedMac, 2)).length, 2);
  });

  test('restarted with its lease file, dhclient reboots into the same address (INIT-REBOOT)', async (t) => {
    await dhclient('-x');
    const before = link.repliesTo(reservedMac).length;
    await dhclient('-1');
    assert.deepEqual(
      events().at(-1),
      `REBOOT ip=198.18.0.21|host=dh-node|mask=255.255.255.0|dns=198.18.0.53|router=198.18.0.254|server=${serverAddress}|lease=300`,
    );
    // REQUESTs only (one, or more if dhclient retransmitted under load), no DISCOVER: the INIT-REBOOT path.
    const replies = (await link.waitForReplies(reservedMac, before + 1)).slice(before);
    assert.ok(replies.length >= 1);
    t.diagnostic(`INIT-REBOOT REQUESTs answered: ${replies.length}`);
    for (const reply of replies) assert.deepEqual(reply, ['DHCPREQUEST', 'ack', '198.18.0.21', '255.255.255.255:68']);
  });

  test('dhclient -r sends a unicast DHCPRELEASE, and the lease is released', async () => {
    await dhclient('-r');
    await link.server.waitFor(() => link.server.events.find((e) => e.kind === 'update' && 'result' in e && e.result === 'release'), 'release event');
    const { leases } = await link.server.stats();
    assert.deepEqual(
      leases.filter((l) => l.mac === reservedMac).map((l) => [l.address, l.state]),
      [['198.18.0.21', 'released']],
    );
  });
});
