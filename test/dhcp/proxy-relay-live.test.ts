/**
 * rackboot in proxy mode behind a real DHCP relay agent on another subnet:
 * ISC dhcrelay (unpacked from Debian's isc-dhcp-relay, which would start a
 * service if installed) routes between a client network 198.18.2.0/24 and
 * the server's 198.18.0.0/24, adding option 82. With `--relay-subnet
 * 198.18.2.0/24`, a PXE DISCOVER from busybox udhcpc (vendor class
 * PXEClient) gets rackboot's ProxyDHCPOFFER through the relay: sent to the
 * relay on port 67, and broadcast by it on the client network with the boot
 * file and no address. Needs root; fails (never skips) without it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MessageType } from '../../server/dhcp/options.js';
import { decodePacket } from '../../server/dhcp/packet.js';
import { ConsoleWatcher } from '../../server/demo/qemu.js';
import { cliPath } from '../helpers/build.js';
import { Netns } from '../helpers/netns.js';
import { readPcap } from '../helpers/pcap.js';
import { unpackedProgram } from '../helpers/unpacked.js';
import { runIn } from './live-support.js';

const clientMac = '02:00:00:00:02:21';
let server: Netns;
let router: Netns;
let client: Netns;
let scratch: string;
let serverLog: ConsoleWatcher;
let capture: ChildProcess;
const children: ChildProcess[] = [];

before(async () => {
  const dhcrelay = unpackedProgram('isc-dhcp-relay', 'usr/sbin/dhcrelay');
  scratch = mkdtempSync(join(tmpdir(), 'rackboot-proxy-relay-'));
  server = Netns.create('rbps');
  router = Netns.create('rbpr');
  client = Netns.create('rbpc');
  server.linkTo(router, { device: 's0', cidr: '198.18.0.1/24' }, { device: 'r0', cidr: '198.18.0.254/24' });
  router.linkTo(client, { device: 'r1', cidr: '198.18.2.1/24' }, { device: 'c0', mac: clientMac });
  server.ip('route', 'add', '198.18.2.0/24', 'via', '198.18.0.254');

  mkdirSync(join(scratch, 'profiles'));
  writeFileSync(join(scratch, 'profiles/default.yaml'), 'hostname: "node-{mac}"\n');
  const rackboot = server.spawn(process.execPath, [
    cliPath, 'serve', '--interface', 's0', '--address', '198.18.0.1', '--dhcp', 'proxy', '--relay-subnet', '198.18.2.0/24',
    '--profiles', join(scratch, 'profiles'), '--assets', join(scratch, 'assets'), '--state', join(scratch, 'state'), '--http-port', '8080',
  ]);
  children.push(rackboot);
  serverLog = new ConsoleWatcher(rackboot);
  await serverLog.waitFor(/rackboot is serving/, 20_000, 'rackboot serve');

  capture = router.spawn('tcpdump', ['-Z', 'root', '--immediate-mode', '-i', 'r1', '-U', '-w', join(scratch, 'client-side.pcap'), 'udp port 68']);
  children.push(capture);
  await new ConsoleWatcher(capture).waitFor(/listening on r1/, 10_000, 'tcpdump');
  const relay = router.spawn(dhcrelay, ['-4', '-d', '-a', '-pf', join(scratch, 'dhcrelay.pid'), '-id', 'r1', '-iu', 'r0', '198.18.0.1']);
  children.push(relay);
  await new ConsoleWatcher(relay).waitFor(/Sending on/, 10_000, 'dhcrelay');
});

after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const ns of [client, router, server]) ns?.delete();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('a PXE client behind dhcrelay on a --relay-subnet gets the proxy offer through the relay', { timeout: 60_000 }, async () => {
  // No address server on this network: udhcpc gets no lease and gives up; only the offers it was sent matter here.
  await runIn(client, 'busybox', ['udhcpc', '-i', 'c0', '-n', '-q', '-f', '-t', '2', '-T', '1', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-s', '/bin/true'], 30_000);
  await serverLog.waitFor(/"type":"DHCPDISCOVER","result":"offer"[^\n]*"destination":"198\.18\.2\.1:67"/, 5_000, 'the proxy offer to the relay');

  const stopped = new Promise((resolve) => capture.once('exit', resolve));
  capture.kill('SIGINT');
  await stopped;
  const offers = readPcap(join(scratch, 'client-side.pcap'))
    .filter((datagram) => datagram.source.port === 67 && datagram.destination.port === 68)
    .map((datagram) => ({ datagram, packet: decodePacket(datagram.payload) }));
  assert.ok(offers.length >= 1, 'the relay forwarded an offer to the client network');
  for (const { datagram, packet } of offers) {
    assert.equal(datagram.source.address, '198.18.2.1', 'from the relay');
    assert.equal(datagram.destination.address, '255.255.255.255', 'broadcast: the client has no address');
    assert.equal(packet.options.messageType, MessageType.offer);
    assert.equal(packet.yourAddress, '0.0.0.0', 'a proxy offer gives no address');
    assert.equal(packet.serverAddress, '198.18.0.1');
    assert.equal(packet.bootFile, 'undionly.kpxe');
    assert.equal(packet.options.vendorClass, 'PXEClient');
    assert.equal(packet.relayAddress, '198.18.2.1');
  }
});
