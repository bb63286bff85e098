import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { silentLogger } from '../../server/log.js';
import { LogReceiver } from '../../server/logs/receiver.js';
import type { SyslogMessage } from '../../server/logs/syslog.js';
import { until } from '../support/until.js';

/**
 * The syslog receiver on loopback, with real datagrams from three senders:
 * 127.0.0.2 is a host (the attribution says so), 127.0.0.3 a stranger,
 * 127.0.0.4 a host that floods. Lines arrive attributed and in order; the
 * stranger's, the unreadable and the flood past the rate are dropped and
 * counted, and the receiver goes on.
 */

const host = '52:54:00:00:19:01';
const flooder = '52:54:00:00:19:04';

async function sendFrom(address: string, port: number, datagrams: Array<string | Buffer>): Promise<void> {
  const socket = createSocket('udp4');
  socket.bind(0, address);
  await once(socket, 'listening');
  for (const datagram of datagrams)
    await new Promise<void>((resolve, reject) => socket.send(datagram, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
  socket.close();
}

test('datagrams are attributed by sender, kept in order; strangers, unreadable ones and a flood past the rate are dropped and counted', async () => {
  const lines: Array<{ mac: string; text: string; app: string | undefined }> = [];
  const asked: string[] = [];
  const logged: Array<Record<string, unknown>> = [];
  const receiver = new LogReceiver({
    address: '127.0.0.1',
    port: 0,
    attribute: async (address) => {
      asked.push(address);
      if (address === '127.0.0.2') return { kind: 'host', mac: host };
      if (address === '127.0.0.4') return { kind: 'host', mac: flooder };
      return { kind: 'stranger', reason: `the neighbour table has no MAC for ${address}` };
    },
    onLine: (mac, message: SyslogMessage) => lines.push({ mac, text: message.text, app: message.appName }),
    log: pino({ level: 'debug', base: undefined, timestamp: false }, { write: (line: string) => logged.push(JSON.parse(line) as Record<string, unknown>) }),
    perSenderRate: { perSecond: 1, burst: 50 },
    attributionCacheMs: 60_000,
  });
  await receiver.start();
  try {
    const port = receiver.port!;
    const numbered = Array.from({ length: 20 }, (_, index) => `<30>Dec  6 15:24:41 rackboot-runtime: step ${index}\n`);
    await sendFrom('127.0.0.2', port, numbered);
    await sendFrom('127.0.0.3', port, ['<13>Dec  6 15:24:41 evil: pretend to be a host\n', '<13>Dec  6 15:24:41 evil: and again\n']);
    await sendFrom('127.0.0.2', port, ['<999>1 - - - - - broken\n', 'netconsole: plain kernel text\n']);
    await sendFrom(
      '127.0.0.4',
      port,
      Array.from({ length: 80 }, (_, index) => `<13>Dec  6 15:24:41 spam: ${index}\n`),
    );
    const counts = () => JSON.stringify(receiver.counts);
    await until('every datagram counted', 10_000, () => (receiver.counts.received === 20 + 2 + 2 + 80 ? true : undefined), counts);
    await until(
      'all handled',
      10_000,
      () =>
        receiver.counts.attributed + receiver.counts.strangers + receiver.counts.malformed + receiver.counts.overRate === receiver.counts.received
          ? true
          : undefined,
      counts,
    );
    const fromHost = lines.filter((line) => line.mac === host);
    assert.deepEqual(
      fromHost.map((line) => line.text),
      [...numbered.map((_, index) => `step ${index}`), 'netconsole: plain kernel text'],
      'in the order sent',
    );
    assert.equal(fromHost[0]!.app, 'rackboot-runtime');
    assert.equal(receiver.counts.strangers, 2);
    assert.deepEqual(
      logged.filter((line) => line.msg === "syslog: a stranger's lines dropped (said once a minute per sender)").map((line) => [line.remote, line.reason]),
      [['127.0.0.3', 'the neighbour table has no MAC for 127.0.0.3']],
      "the stranger's drop is said once, with its reason",
    );
    assert.equal(receiver.counts.malformed, 1);
    assert.ok(!lines.some((line) => /pretend|again/.test(line.text)), "the stranger's lines went nowhere");
    const flood = lines.filter((line) => line.mac === flooder);
    assert.ok(flood.length >= 50 && flood.length <= 52, `the flood is cut at its burst: ${flood.length} of 80 kept`);
    assert.equal(receiver.counts.overRate, 80 - flood.length);
    assert.deepEqual([...new Set(asked)].sort(), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    assert.equal(asked.filter((address) => address === '127.0.0.2').length, 1, 'one attribution per sender while it is cached');
  } finally {
    await receiver.close();
  }
});

test('a port already taken is a clear error naming the address and port', async () => {
  const first = new LogReceiver({
    address: '127.0.0.1',
    port: 0,
    attribute: async () => ({ kind: 'stranger', reason: '' }),
    onLine: () => undefined,
    log: silentLogger(),
  });
  await first.start();
  try {
    const second = new LogReceiver({
      address: '127.0.0.1',
      port: first.port!,
      attribute: async () => ({ kind: 'stranger', reason: '' }),
      onLine: () => undefined,
      log: silentLogger(),
    });
    await assert.rejects(second.start(), { message: new RegExp(`^syslog: cannot listen on UDP 127\\.0\\.0\\.1:${first.port}: .*EADDRINUSE`) });
  } finally {
    await first.close();
  }
});

/** A TCP connection from `address` to the receiver; resolves once connected. */
async function connectFrom(address: string, port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, localAddress: address });
  await once(socket, 'connect');
  return socket;
}

test('TCP (RFC 6587): both framings, split across writes, in order; a stranger is cut off as it connects; past the per-sender cap and on bad framing the connection closes', async () => {
  const lines: Array<{ mac: string; text: string }> = [];
  const receiver = new LogReceiver({
    address: '127.0.0.1',
    port: 0,
    attribute: async (address) =>
      address === '127.0.0.2' ? { kind: 'host', mac: host } : address === '127.0.0.4' ? { kind: 'host', mac: flooder } : { kind: 'stranger', reason: 'no MAC' },
    onLine: (mac, message: SyslogMessage) => lines.push({ mac, text: message.text }),
    log: silentLogger(),
    tcpConnections: { perSender: 2, total: 256 },
  });
  await receiver.start();
  await receiver.startTcp();
  const closed = (socket: Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));
  try {
    const port = receiver.tcpPort!;
    assert.equal(port, receiver.port, 'TCP listens on the UDP port');
    const hostSocket = await connectFrom('127.0.0.2', port);
    const octetCounted = '<30>1 2026-12-06T15:24:41Z h1 rackboot-runtime - - - first';
    hostSocket.write(`${Buffer.byteLength(octetCounted)} ${octetCounted}<30>Dec  6 15:2`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    hostSocket.write('4:41 udhcpc: second\n<30>Dec  6 15:24:41 udhcpc: third\n');
    await until(
      'three lines over TCP',
      10_000,
      () => (lines.length >= 3 ? true : undefined),
      () => JSON.stringify(lines),
    );
    assert.deepEqual(lines, [
      { mac: host, text: 'first' },
      { mac: host, text: 'second' },
      { mac: host, text: 'third' },
    ]);

    const stranger = await connectFrom('127.0.0.3', port);
    stranger.on('error', () => undefined);
    await closed(stranger);
    assert.equal(receiver.counts.tcpRefused, 1, "the stranger's connection is refused");

    const held = [await connectFrom('127.0.0.4', port), await connectFrom('127.0.0.4', port)];
    await new Promise((resolve) => setTimeout(resolve, 100));
    const third = await connectFrom('127.0.0.4', port);
    third.on('error', () => undefined);
    await closed(third);
    assert.equal(receiver.counts.tcpRefused, 2, 'a third connection from one sender is past the cap of 2');
    assert.ok(
      held.every((socket) => !socket.destroyed),
      'the two within the cap stay open',
    );

    held[0]!.on('error', () => undefined);
    held[0]!.write('0123 not a frame\n');
    await closed(held[0]!);
    assert.equal(receiver.counts.malformed, 1, 'a stream that cannot be framed is closed and counted');
    held[1]!.destroy();
    hostSocket.destroy();
    assert.equal(lines.length, 3);
  } finally {
    await receiver.close();
  }
});
