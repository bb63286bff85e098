/**
 * rackboot behind a real DHCP relay agent: ISC dhcrelay (unpacked from
 * Debian's isc-dhcp-relay, which would start a service if installed) routes
 * between a client network 198.18.2.0/24 and the server's 198.18.0.0/24,
 * adding option 82 (-a). busybox udhcpc on the client network must get an
 * address from the relay subnet's pool, with its router, and every reply
 * rackboot sends the relay must carry option 82 back. Needs root; fails
 * (never skips) without it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { decodePacket } from '../../server/dhcp/packet.js';
import { ConsoleWatcher } from '../../server/demo/qemu.js';
import { cliPath } from '../helpers/build.js';
import { Netns } from '../helpers/netns.js';
import { readPcap } from '../helpers/pcap.js';
import { unpackedProgram } from '../helpers/unpacked.js';
import { runIn } from './live-support.js';

const clientMac = '02:00:00:00:02:01';
let server: Netns;
let router: Netns;
let client: Netns;
let scratch: string;
const children: ChildProcess[] = [];
let capture: ChildProcess;

before(async () => {
  const dhcrelay = unpackedProgram('isc-dhcp-relay', 'usr/sbin/dhcrelay');
  scratch = mkdtempSync(join(tmpdir(), 'rackboot-relay-'));
  server = Netns.create('rbrs');
  router = Netns.create('rbrr');
  client = Netns.create('rbrc');
  // server s0 <-> r0 router r1 <-> c0 client
  server.linkTo(router, { device: 's0', cidr: '198.18.0.1/24' }, { device: 'r0', cidr: '198.18.0.254/24' });
  router.linkTo(client, { device: 'r1', cidr: '198.18.2.1/24' }, { device: 'c0', mac: clientMac });
  server.ip('route', 'add', '198.18.2.0/24', 'via', '198.18.0.254');

  mkdirSync(join(scratch, 'profiles'));
  writeFileSync(join(scratch, 'profiles/default.yaml'), 'hostname: "node-{mac}"\n');
  const rackboot = server.spawn(process.execPath, [
    cliPath, 'serve', '--interface', 's0', '--address', '198.18.0.1', '--pool', '198.18.0.100-198.18.0.150',
    '--relay-subnet', '198.18.2.0/24,198.18.2.100-198.18.2.150,198.18.2.1,198.18.2.53',
    '--profiles', join(scratch, 'profiles'), '--assets', join(scratch, 'assets'), '--state', join(scratch, 'state'), '--http-port', '8080',
  ]);
  children.push(rackboot);
  await new ConsoleWatcher(rackboot).waitFor(/rackboot is serving/, 20_000, 'rackboot serve');

  capture = router.spawn('tcpdump', ['-Z', 'root', '--immediate-mode', '-i', 'r0', '-U', '-w', join(scratch, 'relay.pcap'), 'udp port 67']);
  children.push(capture);
  await new ConsoleWatcher(capture).waitFor(/listening on r0/, 10_000, 'tcpdump');
  // -a: add option 82 (circuit-id = the client interface); -id/-iu: downstream/upstream.
  const relay = router.spawn(dhcrelay, ['-4', '-d', '-a', '-pf', join(scratch, 'dhcrelay.pid'), '-id', 'r1', '-iu', 'r0', '198.18.0.1']);
  children.push(relay);
  await new ConsoleWatcher(relay).waitFor(/Sending on/, 10_000, 'dhcrelay');
});

after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const ns of [client, router, server]) ns?.delete();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('udhcpc behind ISC dhcrelay gets an address from the relay subnet, and option 82 comes back', { timeout: 60_000 }, async () => {
  const script = join(scratch, 'udhcpc-script');
  writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "BOUND ip=$ip subnet=$subnet router=$router dns=$dns serverid=$serverid"\nexit 0\n', { mode: 0o755 });
  const result = await runIn(client, 'busybox', ['udhcpc', '-i', 'c0', '-n', '-q', '-f', '-t', '5', '-T', '2', '-s', script], 40_000);
  assert.equal(result.code, 0, `udhcpc failed:\n${result.stdout}\n${result.stderr}`);
  assert.match(result.stdout, /BOUND ip=198\.18\.2\.100 subnet=255\.255\.255\.0 router=198\.18\.2\.1 dns=198\.18\.2\.53 serverid=198\.18\.0\.1/);

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
