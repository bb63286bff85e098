/**
 * The server shell on loopback, with unprivileged ports: unicast paths
 * (INFORM, RENEWING), malformed input, logging and events, configuration
 * errors. Broadcast paths need a real link: see live.test.ts.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { DhcpServer, type DhcpEvent, type DhcpServerOptions } from '../../server/dhcp/server.js';
import { silentLogger } from '../../server/log.js';
import { clientRequest, testBootFile, freePort } from '../support/dhcp.js';

function options(overrides: Partial<DhcpServerOptions> = {}): DhcpServerOptions {
  return {
    interfaceName: 'lo',
    serverAddress: '127.0.0.1',
    prefixLength: 8,
    pool: { start: '127.0.0.100', end: '127.0.0.110' },
    leaseSeconds: 3600,
    dns: [],
    reservationFor: () => undefined,
    reservationOwner: () => undefined,
    bootFile: testBootFile,
    leases: new MemoryLeaseStore(),
    log: silentLogger(),
    ...overrides,
  };
}

describe('DhcpServer on loopback', () => {
  let server: DhcpServer;
  let client: dgram.Socket;
  let serverPort: number;
  let clientPort: number;
  const events: DhcpEvent[] = [];
  const logLines: Array<Record<string, unknown>> = [];
  const leases = new MemoryLeaseStore();
  const clientAddress = '127.0.0.105';
  let replies: Array<{ packet: DhcpPacket; from: string }> = [];
  let replyWaiter: (() => void) | undefined;

  before(async () => {
    serverPort = await freePort();
    clientPort = await freePort();
    const log = pino({ level: 'debug', base: undefined, timestamp: false }, { write: (line: string) => logLines.push(JSON.parse(line)) });
    server = new DhcpServer(
      options({
        port: serverPort,
        clientPort,
        leases,
        log,
        onEvent: (event) => {
          events.push(event);
          if (event.kind === 'malformed' && event.reason.includes('op 9')) throw new Error('a broken event handler');
        },
      }),
    );
    await server.start();
    client = dgram.createSocket('udp4');
    client.bind(clientPort, clientAddress);
    await once(client, 'listening');
    client.on('message', (message, remote) => {
      replies.push({ packet: decodePacket(message), from: `${remote.address}:${remote.port}` });
      replyWaiter?.();
    });
  });

  after(async () => {
    client.close();
    await server.close();
    await server.close(); // closing twice is harmless
  });

  async function exchange(bytes: Buffer, expectReply = true): Promise<DhcpPacket | undefined> {
    replies = [];
    const seen = server.stats.received;
    client.send(bytes, serverPort, '127.0.0.1');
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && (expectReply ? replies.length === 0 : server.stats.received === seen)) {
      await new Promise<void>((resolve) => {
        replyWaiter = resolve;
        setTimeout(resolve, 20);
      });
    }
    if (expectReply) {
      assert.equal(replies.length, 1, 'one reply');
      assert.equal(replies[0]!.from, `127.0.0.1:${serverPort}`, 'sent from the server address and port');
      return replies[0]!.packet;
    }
    assert.equal(server.stats.received, seen + 1);
    return undefined;
  }

  test('INFORM: an ACK unicast to ciaddr, with boot options, no lease time', async () => {
    const inform = clientRequest({
      mac: '52:54:00:aa:bb:01',
      clientAddress,
      options: { messageType: MessageType.inform, vendorClass: 'PXEClient:Arch:00007:UNDI:003000', clientArch: [7] },
    });
    const ack = (await exchange(encodePacket(inform)))!;
    assert.equal(ack.options.messageType, MessageType.ack);
    assert.equal(ack.clientAddress, clientAddress);
    assert.equal(ack.options.bootFileName, 'ipxe.efi');
    assert.equal(ack.options.leaseSeconds, undefined);
    const line = logLines.at(-1)!;
    assert.equal(line.msg, 'DHCPINFORM ack');
    assert.equal(line.mac, '52:54:00:aa:bb:01');
    assert.equal(line.type, 'DHCPINFORM');
    assert.equal(line.result, 'ack');
    assert.equal(line.address, clientAddress);
    assert.equal(line.level, 30);
  });

  test('RENEWING: ACK unicast to ciaddr, and the lease is stored', async () => {
    const renew = clientRequest({ mac: '52:54:00:aa:bb:02', clientAddress, options: { messageType: MessageType.request } });
    const ack = (await exchange(encodePacket(renew)))!;
    assert.equal(ack.yourAddress, clientAddress);
    assert.equal(leases.byMac('52:54:00:aa:bb:02')?.state, 'bound');
    assert.deepEqual(events.at(-1), {
      kind: 'reply',
      mac: '52:54:00:aa:bb:02',
      type: 'DHCPREQUEST',
      result: 'ack',
      address: clientAddress,
      destination: `${clientAddress}:${clientPort}`,
      xid: 0x1234abcd,
      arch: undefined,
    });
  });

  test('malformed packets are dropped with one debug line naming the reason and the source; the server keeps going', async () => {
    const before = { ...server.stats };
    await exchange(Buffer.from('not a dhcp packet'), false);
    await exchange(Buffer.alloc(300, 9), false); // op 9: the event handler throws on this one
    const malformed = logLines.filter((l) => l.msg === 'malformed DHCP packet dropped');
    assert.equal(malformed.length, 2);
    assert.deepEqual(malformed[0], {
      level: 20,
      source: `${clientAddress}:${client.address().port}`,
      code: 'TRUNCATED_HEADER',
      reason: 'truncated header: 17 bytes, want at least 240',
      bytes: 17,
      msg: 'malformed DHCP packet dropped',
    });
    assert.equal(malformed[1]!.reason, 'op 9 is neither 1 (BOOTREQUEST) nor 2 (BOOTREPLY)');
    assert.ok(logLines.some((l) => l.msg === 'DHCP onEvent handler threw'));
    assert.equal(server.stats.malformed, before.malformed + 2);
    // Still answering.
    const inform = clientRequest({ mac: '52:54:00:aa:bb:03', clientAddress, options: { messageType: MessageType.inform } });
    assert.equal((await exchange(encodePacket(inform)))!.options.messageType, MessageType.ack);
  });

  test('an ignored request is one info line with its reason', async () => {
    const offer = clientRequest({ mac: '52:54:00:aa:bb:04', options: { messageType: MessageType.offer } });
    await exchange(encodePacket(offer), false);
    const line = logLines.at(-1)!;
    assert.equal(line.msg, 'DHCPOFFER ignored');
    assert.equal(line.result, 'ignore');
    assert.equal(line.reason, 'DHCPOFFER is not a client message');
    assert.equal(line.mac, '52:54:00:aa:bb:04');
  });

  test('a failing boot lookup costs one request, not the server', async () => {
    const port = await freePort();
    const failing = new DhcpServer(
      options({
        port,
        bootFile: () => {
          throw new Error('profile store down');
        },
        onEvent: (event) => events.push(event),
      }),
    );
    await failing.start();
    try {
      const sender = dgram.createSocket('udp4');
      const inform = clientRequest({ clientAddress: '127.0.0.9', options: { messageType: MessageType.inform } });
      sender.send(encodePacket(inform), port, '127.0.0.1');
      const deadline = Date.now() + 2000;
      while (failing.stats.errors === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      sender.close();
      assert.equal(failing.stats.errors, 1);
      assert.ok(events.some((e) => e.kind === 'error' && e.error === 'profile store down'));
    } finally {
      await failing.close();
    }
  });
});

describe('DhcpServer configuration', () => {
  const cases: Array<[string, Partial<DhcpServerOptions>, string]> = [
    ['server address', { serverAddress: '127.0.0' }, "serverAddress '127.0.0' is not an IPv4 address"],
    ['prefix', { prefixLength: 31 }, 'prefixLength 31 is not in 1-30'],
    ['pool outside', { pool: { start: '198.19.0.1', end: '127.0.0.9' } }, 'pool address 198.19.0.1 is not a host address of 127.0.0.0/8'],
    ['pool backwards', { pool: { start: '127.0.0.9', end: '127.0.0.1' } }, 'pool start 127.0.0.9 is after its end 127.0.0.1'],
    ['router', { router: '198.19.0.1' }, 'router 198.19.0.1 is not a host address of 127.0.0.0/8'],
    ['dns', { dns: ['dns.example'] }, "DNS server 'dns.example' is not an IPv4 address"],
    ['lease time', { leaseSeconds: 10 }, 'leaseSeconds 10 is not an integer of at least 60'],
    ['first lease time', { firstLeaseSeconds: 30 }, 'firstLeaseSeconds 30 is not an integer of at least 60'],
    ['rate of new clients', { newClientsPerSecond: 0 }, 'newClientsPerSecond 0 is not a positive number'],
    ['known-only without profiles', { knownOnly: true }, 'knownOnly needs hasOwnProfile'],
  ];
  for (const [label, overrides, message] of cases) {
    test(`refuses a bad ${label}`, () => {
      assert.throws(() => new DhcpServer(options(overrides)), { message: `DHCP configuration: ${message}` });
    });
  }

  test('start() reports a port that is taken', async () => {
    const holder = dgram.createSocket('udp4'); // no SO_REUSEADDR: nobody may share the port
    holder.bind(0, '127.0.0.1');
    await once(holder, 'listening');
    const { port } = holder.address();
    try {
      await assert.rejects(new DhcpServer(options({ port })).start(), (error: Error) => {
        assert.match(error.message, new RegExp(`^DHCP: cannot bind (0\\.0\\.0\\.0|127\\.0\\.0\\.1):${port}: .*EADDRINUSE`));
        return true;
      });
    } finally {
      holder.close();
    }
  });

  test('start() refuses an interface without the server address', async () => {
    await assert.rejects(new DhcpServer(options({ serverAddress: '127.0.0.1', interfaceName: 'no-such-if0' })).start(), {
      message: 'DHCP: interface no-such-if0 does not exist',
    });
    await assert.rejects(new DhcpServer(options({ serverAddress: '127.0.0.2' })).start(), {
      message: 'DHCP: interface lo does not have address 127.0.0.2',
    });
  });
});

test('quiet ignores (--dhcp-known-only) are counted, and summed up in one log line at most every 10 s', async () => {
  const serverPort = await freePort();
  const logLines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug', base: undefined, timestamp: false }, { write: (line: string) => logLines.push(JSON.parse(line)) });
  const server = new DhcpServer(
    options({ port: serverPort, clientPort: await freePort(), log, knownOnly: true, hasOwnProfile: (mac) => mac === '52:54:00:aa:bb:0f' }),
  );
  await server.start();
  const client = dgram.createSocket('udp4');
  client.bind(0, '127.0.0.106');
  await once(client, 'listening');
  try {
    for (let index = 0; index < 3; index++) {
      const renewal = clientRequest({ mac: `52:54:00:aa:bb:0${index}`, clientAddress: '127.0.0.106', options: { messageType: MessageType.request } });
      client.send(encodePacket(renewal), serverPort, '127.0.0.1');
    }
    const deadline = Date.now() + 5000;
    while (server.stats.unknownIgnored < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(server.stats.unknownIgnored, 3);
    assert.equal(server.stats.ignored, 3);
    assert.equal(server.stats.replies, 0);
    // No info line per request: one summary at once, the rest waits for the next one.
    const info = logLines.filter((line) => (line.level as number) >= 30 && String(line.msg).includes('ignored'));
    assert.deepEqual(
      info.map((line) => [line.msg, line.ignored]),
      [['DHCP requests ignored (summed up)', { 'no profile of its own for this MAC or slot (--dhcp-known-only)': 1 }]],
    );
    assert.equal(logLines.filter((line) => line.level === 20 && line.reason === 'no profile of its own for this MAC or slot (--dhcp-known-only)').length, 3);
  } finally {
    client.close();
    await server.close();
  }
});
