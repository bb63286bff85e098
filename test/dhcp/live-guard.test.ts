/**
 * What a stranger on the segment can do to the DHCP server, on a real link
 * (two namespaces and a veth pair, see live-support.ts): grab the pool with
 * perfdhcp's made-up MACs (they get first leases only), free another
 * client's lease with a spoofed DHCPRELEASE (refused), flood new clients
 * past --dhcp-new-clients-per-second (ignored, while a profiled machine is
 * still answered), and, under --dhcp-known-only, get anything at all.
 * Needs root, busybox udhcpc and perfdhcp; fails (never skips) without them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { DhcpEvent } from '../../server/dhcp/server.js';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { assertRoot, run } from '../support/netns.js';
import { LiveLink, runIn, serverAddress } from './live-support.js';
import { childScript, type ExchangeConfig } from './netns-child.js';

const clientMac = '02:00:00:00:0a:01';
const profiledMac = '02:00:00:00:0a:02';
const unknownMac = '02:00:00:00:0a:03';
const strangerAddress = '198.18.0.77';

function requireTools(): void {
  assertRoot();
  run('busybox', ['udhcpc', '--help']);
  if (spawnSync('sh', ['-c', 'command -v perfdhcp']).status !== 0)
    throw new Error('perfdhcp is not installed (Debian package kea-admin; run builder/install-deps.sh)');
}

/** A udhcpc script that only reports what it was given. */
function udhcpcScript(dir: string): string {
  const script = join(dir, 'udhcpc-script');
  writeFileSync(script, '#!/bin/sh\necho "UDHCPC $1 ip=$ip|lease=$lease"\n', { mode: 0o755 });
  return script;
}

function udhcpc(link: LiveLink, script: string, tries = 4) {
  return runIn(link.clientNs, 'busybox', ['udhcpc', '-i', link.clientDevice, '-n', '-q', '-f', '-t', String(tries), '-T', '1', '-s', script], 30_000);
}

function boundLease(output: string): { ip: string; lease: string } {
  const line = output.split('\n').find((l) => l.startsWith('UDHCPC bound'));
  assert.ok(line, `udhcpc reported no lease:\n${output}`);
  return Object.fromEntries(
    line
      .slice('UDHCPC bound '.length)
      .split('|')
      .map((pair) => pair.split('=')),
  ) as { ip: string; lease: string };
}

/**
 * A live link for one describe block: made before its tests (the client
 * namespace prepared by `prepare`, then the server started), torn down after.
 */
function liveServer(
  devices: [server: string, client: string],
  mac: string,
  serverOptions: Parameters<LiveLink['startServer']>[0],
  prepare?: (link: LiveLink) => void,
) {
  const live = {} as { link: LiveLink; script: string; scratch: string };
  before(async () => {
    requireTools();
    live.scratch = mkdtempSync(join(tmpdir(), 'rackboot-dhcp-guard-'));
    live.script = udhcpcScript(live.scratch);
    live.link = new LiveLink(devices[0], devices[1], mac);
    prepare?.(live.link);
    await live.link.startServer(serverOptions);
  });
  after(() => {
    live.link?.close();
    if (live.scratch) rmSync(live.scratch, { recursive: true, force: true });
  });
  return live;
}

async function exchange(link: LiveLink, config: Omit<ExchangeConfig, 'destination' | 'destinationPort' | 'localPort' | 'waitMs'>) {
  const full: ExchangeConfig = { destination: serverAddress, destinationPort: 67, localPort: 68, waitMs: 700, ...config };
  const result = await runIn(link.clientNs, process.execPath, [childScript, 'exchange', JSON.stringify(full)], 10_000);
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as { replies: Array<{ messageType: number; yourAddress: string; leaseSeconds: number | null }> }).replies;
}

describe('first leases, RELEASE from the holder only, and a pool grab', () => {
  // 51 addresses, as the default pool of a /24 served from .1 would hold in the issue.
  const live = liveServer(['dgs0', 'dgc0'], clientMac, {
    pool: { start: '198.18.0.100', end: '198.18.0.150' },
    leaseSeconds: 3600,
    firstLeaseSeconds: 300,
    dns: [],
    reservations: {},
    quiet: true,
  });

  test('udhcpc gets a first lease of 300 s; renewing from its address it gets 3600 s', async () => {
    const result = await udhcpc(live.link, live.script);
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const lease = boundLease(result.stdout);
    assert.equal(lease.lease, '300');
    live.link.clientNs.ip('addr', 'add', `${lease.ip}/24`, 'dev', live.link.clientDevice);
    // RENEWING, RFC 2131 section 4.3.2: unicast from the bound address, ciaddr set, no option 50 or 54.
    const renewal = await exchange(live.link, {
      localAddress: lease.ip,
      mac: clientMac,
      clientAddress: lease.ip,
      options: { messageType: MessageType.request },
    });
    assert.deepEqual(renewal, [{ messageType: MessageType.ack, yourAddress: lease.ip, leaseSeconds: 3600 }]);
    const { leases } = await live.link.server.stats();
    const record = leases.find((l) => l.mac === clientMac)!;
    assert.equal(record.state, 'bound');
    assert.ok(record.expiresAt > Date.now() + 3000_000, 'the full lease is stored');
  });

  test("a DHCPRELEASE with the holder's MAC and address, sent from a stranger's address, frees nothing", async () => {
    const holder = (await live.link.server.stats()).leases.find((l) => l.mac === clientMac)!;
    live.link.clientNs.ip('addr', 'add', `${strangerAddress}/24`, 'dev', live.link.clientDevice);
    const release = { messageType: MessageType.release, serverIdentifier: serverAddress };
    assert.deepEqual(await exchange(live.link, { localAddress: strangerAddress, mac: clientMac, clientAddress: holder.address, options: release }), []);
    // The exchange waited 700 ms after sending: the server has decided it by now (its ignore events are not printed here).
    const afterSpoof = (await live.link.server.stats()).leases.find((l) => l.mac === clientMac)!;
    assert.equal(afterSpoof.state, 'bound');
    assert.equal(afterSpoof.address, holder.address);

    // The holder itself, from its address, may.
    await exchange(live.link, { localAddress: holder.address, mac: clientMac, clientAddress: holder.address, options: release });
    const released = await live.link.server.waitFor(
      () => live.link.server.events.find((e) => e.kind === 'update' && (e as Extract<DhcpEvent, { kind: 'update' }>).result === 'release'),
      'the release',
    );
    assert.equal((released as Extract<DhcpEvent, { kind: 'update' }>).address, holder.address);
    // (Deleting the primary address takes the secondary ones with it.)
    live.link.clientNs.ip('addr', 'flush', 'dev', live.link.clientDevice);
  });

  test('perfdhcp grabbing the pool with 60 made-up MACs holds it for the first lease only', async (t) => {
    // perfdhcp sends as a relay agent, from an address of its own.
    live.link.clientNs.ip('addr', 'add', '198.18.0.2/24', 'dev', live.link.clientDevice);
    const result = await runIn(
      live.link.clientNs,
      'perfdhcp',
      ['-4', '-l', live.link.clientDevice, '-r', '30', '-R', '60', '-n', '60', '-p', '6', serverAddress],
      30_000,
    );
    t.diagnostic(
      result.stdout
        .split('\n')
        .filter((line) => /sent packets|received packets|drops/.test(line))
        .join('; '),
    );
    const { leases } = await live.link.server.stats();
    const grabbed = leases.filter((l) => l.state === 'bound' && l.mac !== clientMac);
    t.diagnostic(`${grabbed.length} addresses bound by perfdhcp's MACs`);
    assert.ok(grabbed.length >= 40, `perfdhcp bound only ${grabbed.length} addresses: ${result.stdout}\n${result.stderr}`);
    const latest = Math.max(...grabbed.map((l) => l.expiresAt));
    assert.ok(latest <= Date.now() + 300_000, `a made-up MAC holds its address until ${new Date(latest).toISOString()}, past the 300 s first lease`);
  });
});

describe('--dhcp-known-only', () => {
  const live = liveServer(['dks0', 'dkc0'], unknownMac, {
    pool: { start: '198.18.0.100', end: '198.18.0.150' },
    leaseSeconds: 3600,
    dns: [],
    reservations: {},
    knownOnly: true,
    profiledMacs: [profiledMac],
    quiet: true,
  });

  test('a MAC without a profile gets no answer; a profiled MAC gets its lease', async () => {
    const unknown = await udhcpc(live.link, live.script, 2);
    assert.notEqual(unknown.code, 0, `udhcpc with an unknown MAC got an answer:\n${unknown.stdout}`);
    assert.deepEqual(live.link.repliesTo(unknownMac), []);
    const { stats } = await live.link.server.stats();
    assert.ok(stats.unknownIgnored >= 2, `unknownIgnored ${stats.unknownIgnored}`);

    live.link.setClientMac(profiledMac);
    const known = await udhcpc(live.link, live.script);
    assert.equal(known.code, 0, `${known.stdout}\n${known.stderr}`);
    assert.match(boundLease(known.stdout).ip, /^198\.18\.0\.1\d\d$/);
  });
});

describe('--dhcp-new-clients-per-second', () => {
  const rate = 5;
  const live = liveServer(
    ['drs0', 'drc0'],
    profiledMac,
    {
      pool: { start: '198.18.0.10', end: '198.18.0.250' },
      leaseSeconds: 3600,
      dns: [],
      reservations: {},
      newClientsPerSecond: rate,
      profiledMacs: [profiledMac],
      quiet: true,
    },
    (link) => link.clientNs.ip('addr', 'add', '198.18.0.2/24', 'dev', 'drc0'),
  );

  test('new clients past the rate are ignored and counted; a profiled machine is still answered', async (t) => {
    const started = Date.now();
    const flood = runIn(live.link.clientNs, 'perfdhcp', ['-4', '-l', 'drc0', '-r', '100', '-R', '5000', '-p', '4', serverAddress], 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const machine = await udhcpc(live.link, live.script);
    await flood;
    const seconds = (Date.now() - started) / 1000;
    assert.equal(machine.code, 0, `the profiled machine got no lease during the flood:\n${machine.stdout}\n${machine.stderr}`);

    const { stats } = await live.link.server.stats();
    const offers = live.link.server.events.filter(
      (e) =>
        e.kind === 'reply' &&
        (e as Extract<DhcpEvent, { kind: 'reply' }>).result === 'offer' &&
        (e as Extract<DhcpEvent, { kind: 'reply' }>).mac !== profiledMac,
    ).length;
    t.diagnostic(`${offers} offers to new clients in ${seconds.toFixed(1)} s; ${stats.rateLimited} requests ignored past the rate`);
    assert.ok(stats.rateLimited > 100, `rateLimited ${stats.rateLimited}`);
    // A burst of `rate` at the start, then `rate` a second.
    assert.ok(offers <= rate * (seconds + 1) + 1, `${offers} offers in ${seconds} s`);
    assert.ok(offers >= rate, `${offers} offers`);
  });
});
