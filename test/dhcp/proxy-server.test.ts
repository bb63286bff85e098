/**
 * The server shell in proxy mode on loopback, with unprivileged ports: the
 * boot server port (4011) answers from that port, back to where the request
 * came from; plain clients are dropped at debug level; nothing is leased.
 * The broadcast path (DISCOVER, offer) needs a real link: see test/e2e/proxy.test.ts.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { DhcpServer, type DhcpEvent } from '../../server/dhcp/server.js';
import { clientRequest, testBootFile, freePort } from '../support/dhcp.js';

describe('DhcpServer in proxy mode on loopback', () => {
  let server: DhcpServer;
  let client: dgram.Socket;
  let serverPort: number;
  let bootPort: number;
  let clientPort: number;
  const clientAddress = '127.0.0.105';
  const leases = new MemoryLeaseStore();
  const events: DhcpEvent[] = [];
  const logLines: Array<Record<string, unknown>> = [];
  const replies: Array<{ packet: DhcpPacket; from: string }> = [];

  before(async () => {
    serverPort = await freePort();
    bootPort = await freePort();
    clientPort = await freePort();
    server = new DhcpServer({
      mode: 'proxy',
      interfaceName: 'lo',
      serverAddress: '127.0.0.1',
      prefixLength: 8,
      leaseSeconds: 3600,
      dns: [],
      reservationFor: () => undefined,
      reservationOwner: () => undefined,
      bootFile: testBootFile,
      leases,
      log: pino({ level: 'debug', base: undefined, timestamp: false }, { write: (line: string) => logLines.push(JSON.parse(line)) }),
      port: serverPort,
      clientPort,
      bootServerPort: bootPort,
      onEvent: (event) => events.push(event),
    });
    await server.start();
    client = dgram.createSocket('udp4');
    client.bind(clientPort, clientAddress);
    await once(client, 'listening');
    client.on('message', (message, remote) => replies.push({ packet: decodePacket(message), from: `${remote.address}:${remote.port}` }));
  });

  after(async () => {
    client.close();
    await server.close();
  });

  /** Send, wait until the server has taken the packet, then give a reply a moment to arrive. */
  async function send(packet: DhcpPacket, port: number): Promise<void> {
    const seen = server.stats.received;
    client.send(encodePacket(packet), port, '127.0.0.1');
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && server.stats.received === seen) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(server.stats.received, seen + 1, 'the server received the packet');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }

  test('start logs proxy mode and the boot server port', () => {
    const line = logLines.find((l) => l.msg === 'DHCP server listening');
    assert.equal(line?.mode, 'proxy');
    assert.equal(line?.bootServerPort, bootPort);
  });

  test('a UEFI PXE request on the boot server port: ACK from that port, to the sender, with the boot file', async () => {
    replies.length = 0;
    const request = clientRequest({
      mac: '52:54:00:aa:bb:07',
      clientAddress,
      options: { messageType: MessageType.request, vendorClass: 'PXEClient:Arch:00007:UNDI:003016', clientArch: [7] },
    });
    await send(request, bootPort);
    assert.equal(replies.length, 1);
    const [{ packet, from }] = replies as [{ packet: DhcpPacket; from: string }];
    assert.equal(from, `127.0.0.1:${bootPort}`, 'iPXE accepts a ProxyDHCPACK only from port 4011');
    assert.equal(packet.options.messageType, MessageType.ack);
    assert.equal(packet.yourAddress, '0.0.0.0');
    assert.equal(packet.clientAddress, clientAddress);
    assert.equal(packet.options.bootFileName, 'ipxe.efi');
    const event = events.at(-1);
    assert.equal(event?.kind, 'reply');
    assert.equal(event?.kind === 'reply' && event.destination, `${clientAddress}:${clientPort}`);
    assert.deepEqual(leases.all(), [], 'proxy mode writes no leases');
  });

  test('a plain client on port 67 is dropped with a debug line', async () => {
    replies.length = 0;
    const ignoredBefore = server.stats.ignored;
    await send(clientRequest({ mac: '52:54:00:aa:bb:08', clientAddress, options: { messageType: MessageType.request } }), serverPort);
    assert.equal(server.stats.ignored, ignoredBefore + 1);
    assert.equal(replies.length, 0);
    const line = logLines.at(-1)!;
    assert.equal(line.level, 20, 'debug');
    assert.match(String(line.reason), /not a PXE, iPXE or HTTP Boot client/);
  });

  test('the DHCPREQUEST that names the address server is left to it', async () => {
    replies.length = 0;
    const ignoredBefore = server.stats.ignored;
    await send(
      clientRequest({
        mac: '52:54:00:aa:bb:09',
        options: {
          messageType: MessageType.request,
          serverIdentifier: '127.0.0.2',
          requestedAddress: clientAddress,
          vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
          userClass: Buffer.from('\x04iPXE', 'latin1'),
        },
      }),
      serverPort,
    );
    assert.equal(server.stats.ignored, ignoredBefore + 1);
    assert.equal(replies.length, 0);
  });
});
