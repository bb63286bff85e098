/**
 * dhcpcd (Debian package dhcpcd-base, the daemon without a service) against
 * the server across a veth pair: a lease with address, router and DNS, a
 * renewal (`dhcpcd -N`, a unicast DHCPREQUEST) and a release (`dhcpcd -k`),
 * with the server's lease checked after each step.
 *
 * dhcpcd keeps its pid file and control sockets in /run/dhcpcd and its
 * leases, DUID and secret in /var/lib/dhcpcd, paths compiled in. So it runs
 * in a mount namespace of its own, with a tmpfs on /run and a scratch folder
 * bound on /var/lib/dhcpcd: nothing of the host's is read or written, and a
 * dhcpcd the host runs (if any) is never signalled. Its hooks would rewrite
 * /etc/resolv.conf and the host name, so a script of ours replaces them.
 * Needs root and dhcpcd; fails (never skips) without them.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Lease } from '../../server/dhcp/leases/leases.js';
import { ConsoleWatcher } from '../../server/demo/qemu.js';
import { run } from '../support/netns.js';
import { LiveLink, runIn, serverAddress } from './live-support.js';

const clientMac = '02:00:00:00:06:06';
const leaseSeconds = 600;

describe('DHCP server and dhcpcd across a veth pair', () => {
  let link: LiveLink;
  let scratch: string;
  let daemon: ChildProcess | undefined;
  let daemonOutput: ConsoleWatcher;

  before(async () => {
    run('dhcpcd', ['--version']); // fails the suite when dhcpcd-base is not installed
    link = new LiveLink('dhs6', 'dhc6', clientMac);
    scratch = mkdtempSync(join(tmpdir(), 'rackboot-dhcpcd-'));
    mkdirSync(join(scratch, 'db'));
    // Called by dhcpcd on every state change instead of its hooks: records
    // the event. dhcpcd itself puts the address and routes on the interface.
    writeFileSync(
      join(scratch, 'script'),
      [
        '#!/bin/sh',
        `echo "$reason ip=$new_ip_address|mask=$new_subnet_mask|router=$new_routers|dns=$new_domain_name_servers|server=$new_dhcp_server_identifier|lease=$new_dhcp_lease_time" >> ${scratch}/events`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    writeFileSync(
      join(scratch, 'dhcpcd.conf'),
      [
        `script ${join(scratch, 'script')}`,
        // IPv4 DHCP only: no router solicitations, no link-local fallback,
        // no ARP probe of the offered address (RFC 5227 waits seconds), no udev.
        'ipv4only',
        'noipv4ll',
        'noarp',
        'nodev',
        'option domain_name_servers, routers, subnet_mask',
        'require dhcp_server_identifier',
        '',
      ].join('\n'),
    );
    await link.startServer({
      pool: { start: '198.18.0.100', end: '198.18.0.109' },
      leaseSeconds,
      dns: ['198.18.0.53'],
      router: '198.18.0.254',
      reservations: {},
    });
  });

  after(() => {
    daemon?.kill('SIGKILL');
    link?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  /** A dhcpcd command in the daemon's network and mount namespaces (-k, -N and -U find it by its control socket there). */
  async function control(...args: string[]): Promise<string> {
    assert.ok(daemon?.pid, 'dhcpcd runs');
    const result = await runIn(link.clientNs, 'nsenter', ['--target', String(daemon.pid), '--mount', '--net', 'dhcpcd', '-4', ...args], 20_000);
    assert.equal(result.code, 0, `dhcpcd ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  }

  function events(): string[] {
    try {
      return readFileSync(join(scratch, 'events'), 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  }

  async function serverLease(): Promise<Lease[]> {
    const { leases } = await link.server.stats();
    return leases.filter((lease) => lease.mac === clientMac);
  }

  // A first lease (300 s, the server's default) until dhcpcd renews from its address; then the full lease time.
  const network = `ip=198.18.0.100|mask=255.255.255.0|router=198.18.0.254|dns=198.18.0.53|server=${serverAddress}`;
  const bound = `${network}|lease=300`;
  const renewed = `${network}|lease=${leaseSeconds}`;

  test('dhcpcd is bound with the pool address, router, DNS and lease time', { timeout: 60_000 }, async () => {
    const mount = [
      'set -e',
      'mount -t tmpfs tmpfs /run',
      `mount --bind ${join(scratch, 'db')} /var/lib/dhcpcd`,
      // -B: stay in the foreground (this process is the daemon); -4: IPv4 only.
      `exec dhcpcd -B -4 -d -t 20 -f ${join(scratch, 'dhcpcd.conf')} dhc6`,
    ].join('\n');
    daemon = link.clientNs.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', mount]);
    daemonOutput = new ConsoleWatcher(daemon);
    await daemonOutput.waitFor(/dhc6: leased 198\.18\.0\.100/, 30_000, 'dhcpcd lease');
    await link.server.waitFor(() => (events().some((line) => line.startsWith('BOUND')) ? true : undefined), 'BOUND from the script');
    assert.deepEqual(
      events().filter((line) => line.startsWith('BOUND')),
      [`BOUND ${bound}`],
    );
    assert.match(link.clientNs.ip('-4', 'addr', 'show', 'dhc6'), /inet 198\.18\.0\.100\/24/);
    assert.match(link.clientNs.ip('route', 'show', 'default'), /default via 198\.18\.0\.254 dev dhc6/);

    const replies = await link.waitForReplies(clientMac, 2);
    assert.deepEqual(replies.slice(0, 2), [
      ['DHCPDISCOVER', 'offer', '198.18.0.100', '255.255.255.255:68'],
      ['DHCPREQUEST', 'ack', '198.18.0.100', '255.255.255.255:68'],
    ]);
    const leases = await serverLease();
    assert.deepEqual(
      leases.map((lease) => [lease.address, lease.state]),
      [['198.18.0.100', 'bound']],
    );
    assert.ok(leases[0]!.expiresAt > Date.now() + 240_000 && leases[0]!.expiresAt <= Date.now() + 300_000, 'a first lease');
  });

  test('dhcpcd -N renews with a unicast DHCPREQUEST, and the server extends the lease', { timeout: 60_000 }, async () => {
    const before = (await serverLease())[0]!;
    const repliesBefore = link.repliesTo(clientMac).length;
    await new Promise((resolve) => setTimeout(resolve, 1100)); // so a renewed lease ends later
    await control('-N', 'dhc6');
    const replies = (await link.waitForReplies(clientMac, repliesBefore + 1)).slice(repliesBefore);
    // RENEWING (RFC 2131 section 4.4.5): unicast from the leased address, answered to it.
    assert.deepEqual(replies, [['DHCPREQUEST', 'ack', '198.18.0.100', '198.18.0.100:68']]);
    await link.server.waitFor(() => (events().some((line) => line.startsWith('RENEW')) ? true : undefined), 'RENEW from the script');
    assert.equal(
      events()
        .filter((line) => line.startsWith('RENEW'))
        .at(-1),
      `RENEW ${renewed}`,
    );
    const after = (await serverLease())[0]!;
    assert.equal(after.state, 'bound');
    assert.ok(after.expiresAt > before.expiresAt, `lease extended: ${before.expiresAt} -> ${after.expiresAt}`);
    assert.ok(after.expiresAt > Date.now() + (leaseSeconds - 60) * 1000, 'renewed from its address: the full lease');
  });

  test('dhcpcd -k releases: the server marks the lease released, the address leaves the interface', { timeout: 60_000 }, async () => {
    const exited = new Promise((resolve) => daemon!.once('exit', resolve));
    await control('-k', 'dhc6');
    await link.server.waitFor(
      () => link.server.events.find((e) => e.kind === 'update' && 'result' in e && e.result === 'release' && 'mac' in e && e.mac === clientMac),
      'release event',
    );
    assert.deepEqual(
      (await serverLease()).map((lease) => [lease.address, lease.state]),
      [['198.18.0.100', 'released']],
    );
    await exited;
    daemon = undefined;
    assert.match(daemonOutput.transcript, /dhc6: releasing lease of 198\.18\.0\.100\s[^]*dhc6: sending RELEASE/);
    // dhcpcd 9 reports a release to its script as STOP.
    assert.equal(events().at(-2), 'STOP ip=|mask=|router=|dns=|server=|lease=');
    assert.doesNotMatch(link.clientNs.ip('-4', 'addr', 'show', 'dhc6'), /198\.18\.0\.100/);
  });
});
