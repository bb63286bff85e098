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
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { decodePacket } from '../../server/dhcp/wire/packet.js';
import { ConsoleWatcher } from '../../server/demo/qemu.js';
import { Netns } from '../support/netns.js';
import { readPcap } from '../support/pcap.js';
import { runIn, startRelayRack, type RelayRack } from './live-support.js';

const clientMac = '02:00:00:00:02:21';
let rack: RelayRack;
let client: Netns;
let scratch: string;
let serverLog: ConsoleWatcher;
let capture: ChildProcess;

before(async () => {
  rack = await startRelayRack({
    prefix: 'rbp',
    clientMac,
    serveArgs: ['--dhcp', 'proxy', '--relay-subnet', '198.18.2.0/24'],
    capture: { device: 'r1', filter: 'udp port 68', file: 'client-side.pcap' },
  });
  ({ client, scratch, serverLog, capture } = rack);
});

after(() => rack?.close());

test('a PXE client behind dhcrelay on a --relay-subnet gets the proxy offer through the relay', { timeout: 60_000 }, async () => {
  // No address server on this network: udhcpc gets no lease and gives up; only the offers it was sent matter here.
  await runIn(
    client,
    'busybox',
    ['udhcpc', '-i', 'c0', '-n', '-q', '-f', '-t', '2', '-T', '1', '-V', 'PXEClient:Arch:00000:UNDI:002001', '-s', '/bin/true'],
    30_000,
  );
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
