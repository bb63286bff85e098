/**
 * rackboot behind a real DHCP relay agent: ISC dhcrelay (unpacked from
 * Debian's isc-dhcp-relay, which would start a service if installed) routes
 * between a client network 198.18.2.0/24 and the server's 198.18.0.0/24,
 * adding option 82 (-a). busybox udhcpc on the client network must get an
 * address from the relay subnet's pool, with its router, and every reply
 * rackboot sends the relay must carry option 82 back. Then a slot profile
 * (relay: circuitId "r1", dhcrelay's circuit-id for its client interface)
 * gives whatever machine is behind r1 its static address, and HTTP serves
 * that MAC the slot's profile; a machine swapped in gets both, and the old
 * one goes back to the default profile. Needs root; fails (never skips)
 * without it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodePacket } from '../../server/dhcp/wire/packet.js';
import { ConsoleWatcher } from '../../server/demo/qemu.js';
import { Netns } from '../support/netns.js';
import { readPcap } from '../support/pcap.js';
import { runIn, startRelayRack, type RelayRack } from './live-support.js';

const clientMac = '02:00:00:00:02:01';
const swappedMac = '02:00:00:00:02:02';
let rack: RelayRack;
let server: Netns;
let serverLog: ConsoleWatcher;
let client: Netns;
let scratch: string;
let capture: ChildProcess;

before(async () => {
  rack = await startRelayRack({
    prefix: 'rbr',
    clientMac,
    serveArgs: ['--pool', '198.18.0.100-198.18.0.150', '--relay-subnet', '198.18.2.0/24,198.18.2.100-198.18.2.150,198.18.2.1,198.18.2.53'],
    capture: { device: 'r0', filter: 'udp port 67', file: 'relay.pcap' },
    prepare: (dir) => {
      // A build with no files: enough for runtime.env, which names the build.
      mkdirSync(join(dir, 'assets/builds/t1'), { recursive: true });
      writeFileSync(join(dir, 'assets/builds/t1/manifest.json'), JSON.stringify({ id: 't1', created: '2026-11-26T00:00:00Z', release: 'bookworm', files: [] }));
      symlinkSync('builds/t1', join(dir, 'assets/current'));
    },
  });
  ({ server, serverLog, client, scratch, capture } = rack);
});

after(() => rack?.close());

test('udhcpc behind ISC dhcrelay gets an address from the relay subnet, and option 82 comes back', { timeout: 60_000 }, async () => {
  const script = join(scratch, 'udhcpc-script');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "BOUND ip=$ip subnet=$subnet router=$router dns=$dns serverid=$serverid"\nexit 0\n', {
    mode: 0o755,
  });
  assert.match(await udhcpc(), /BOUND ip=198\.18\.2\.100 subnet=255\.255\.255\.0 router=198\.18\.2\.1 dns=198\.18\.2\.53 serverid=198\.18\.0\.1/);

  // Stop the capture and let tcpdump write out everything it holds.
  const stopped = new Promise((resolve) => capture.once('exit', resolve));
  capture.kill('SIGINT');
  await stopped;
  const captured = readPcap(join(scratch, 'relay.pcap'));
  const replies = captured
    .filter((datagram) => datagram.source.address === '198.18.0.1' && datagram.source.port === 67)
    .map((datagram) => decodePacket(datagram.payload));
  assert.ok(replies.length >= 2, `rackboot answered the relay (offer and ack): ${replies.length} replies`);
  for (const reply of replies) {
    assert.equal(reply.relayAddress, '198.18.2.1');
    const agent = reply.rawOptions?.get(82);
    assert.ok(agent, 'option 82 echoed');
    // Sub-option 1 (circuit-id) is the relay's client interface, "r1".
    assert.deepEqual([...agent.subarray(0, 4)], [1, 2, ...Buffer.from('r1')]);
  }
});

/** udhcpc once in the client namespace; returns its BOUND line. */
async function udhcpc(): Promise<string> {
  const script = join(scratch, 'udhcpc-script');
  const result = await runIn(client, 'busybox', ['udhcpc', '-i', 'c0', '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', script], 40_000);
  assert.equal(result.code, 0, `udhcpc failed:\n${result.stdout}\n${result.stderr}`);
  const bound = /BOUND .*/.exec(result.stdout);
  assert.ok(bound, result.stdout);
  return bound[0];
}

/**
 * What HTTP serves a MAC, as its boot script's header says it: the hostname
 * and the profile file ("# rackboot: HOST (MAC) from FILE, ..."). Fetched in
 * the server's namespace, which is not the machine: the script carries no
 * token then, but names the profile all the same.
 */
async function servedProfile(mac: string): Promise<string> {
  const host = `http://198.18.0.1:8080/hosts/${mac.replaceAll(':', '-')}`;
  const script = await runIn(server, 'curl', ['-sS', '--fail', `${host}/boot.ipxe?platform=pcbios`], 10_000);
  assert.equal(script.code, 0, script.stderr);
  const header = /^# rackboot: (\S+) \(([0-9a-f:]+)\) from (\S+),/m.exec(script.stdout);
  assert.ok(header, script.stdout);
  return `hostname=${header[1]} mac=${header[2]} profile=${header[3]}`;
}

test('a slot profile for circuit-id "r1" gives the machine behind the relay its address, and HTTP its profile', { timeout: 90_000 }, async () => {
  assert.match(await servedProfile(clientMac), /^hostname=node-020000000201 /, 'before: the default profile');
  writeFileSync(
    join(scratch, 'profiles/rack2-r1.yaml'),
    'hostname: rack2-r1\nrelay:\n  circuitId: "r1"\nnetwork:\n  mode: static\n  address: 198.18.2.77/24\n  gateway: 198.18.2.1\n',
  );
  await serverLog.waitFor(/"hostname":"rack2-r1"[^\n]*"profile loaded"|"profile loaded"[^\n]*"hostname":"rack2-r1"/, 10_000, 'the slot profile loaded');

  assert.match(await udhcpc(), /^BOUND ip=198\.18\.2\.77 subnet=255\.255\.255\.0 router=198\.18\.2\.1 dns=198\.18\.2\.53 serverid=198\.18\.0\.1$/);
  assert.match(await servedProfile(clientMac), /^hostname=rack2-r1 mac=02:00:00:00:02:01 profile=.*\/rack2-r1\.yaml$/);

  // The machine in the slot is swapped: the new MAC gets the slot's address and profile.
  client.ip('link', 'set', 'c0', 'down');
  client.ip('link', 'set', 'c0', 'address', swappedMac);
  client.ip('link', 'set', 'c0', 'up');
  assert.match(await udhcpc(), /^BOUND ip=198\.18\.2\.77 /);
  assert.match(await servedProfile(swappedMac), /^hostname=rack2-r1 /);
  assert.match(await servedProfile(clientMac), /^hostname=node-020000000201 /, 'the old machine left the slot');
  await serverLog.waitFor(
    new RegExp(`"note":"198\\.18\\.2\\.77 freed from ${clientMac} \\(bound\\): ${swappedMac} is now in slot circuit-id \\\\"r1\\\\""`),
    5_000,
    'the log line freeing the old lease',
  );

  // The server crashes and comes back: with no DHCP request since, HTTP
  // still serves each machine as the slot it was last seen in.
  serverLog = await rack.crashAndRestart();
  assert.match(await servedProfile(swappedMac), /^hostname=rack2-r1 /, 'the slot kept its machine across the restart');
  assert.match(await servedProfile(clientMac), /^hostname=node-020000000201 /);
});
