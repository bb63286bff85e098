/**
 * Group commit in the server shell, on loopback with the real SQLite store:
 * requests that arrive together are decided in one lease transaction, see
 * each other's leases, and are answered only once it has committed; a batch
 * whose transaction fails is not answered at all.
 *
 * The client socket is connected, so each send() reaches the kernel before
 * it returns (Node tries the send at once): a burst sent in one synchronous
 * loop is all queued on the server's socket before its event loop runs again.
 * The server reads what is queued when it wakes and again when the commit
 * window ends, and does not watch its sockets in between, so the burst is
 * one batch. The window is 50 ms here (5 ms by default), so requests sent a
 * few milliseconds apart join one batch too.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { DhcpServer, type DhcpEvent, type DhcpServerOptions } from '../../server/dhcp/server.js';
import type { LeaseStore } from '../../server/dhcp/leases/leases.js';
import type { Logger } from '../../server/log.js';
import { SqliteLeaseStore } from '../../server/dhcp/leases/sqlite.js';
import { clientRequest, freePort, testBootFile } from '../support/dhcp.js';

const dir = mkdtempSync(join(tmpdir(), 'rackboot-group-commit-'));

/** A full-mode server on lo with a pool of 100 and nothing reserved. */
function onLoopback(leases: LeaseStore, log: Logger): DhcpServerOptions {
  return {
    interfaceName: 'lo',
    serverAddress: '127.0.0.1',
    prefixLength: 8,
    pool: { start: '127.0.0.100', end: '127.0.0.199' },
    leaseSeconds: 3600,
    dns: [],
    reservationFor: () => undefined,
    reservationOwner: () => undefined,
    bootFile: testBootFile,
    leases,
    log,
  };
}

describe('group commit', () => {
  let leases: SqliteLeaseStore;
  let server: DhcpServer;
  let serverPort: number;
  let client: dgram.Socket;
  let receiver: dgram.Socket;
  const events: DhcpEvent[] = [];
  const listeners = new Set<(event: DhcpEvent) => void>();
  const logLines: Array<Record<string, unknown>> = [];
  let replies: DhcpPacket[] = [];

  before(async () => {
    serverPort = await freePort();
    const clientPort = await freePort();
    leases = SqliteLeaseStore.open(join(dir, 'leases.sqlite'), { busyTimeoutMs: 50 });
    const log = pino({ level: 'debug', base: undefined, timestamp: false }, { write: (line: string) => logLines.push(JSON.parse(line)) });
    server = new DhcpServer({
      ...onLoopback(leases, log),
      port: serverPort,
      clientPort,
      commitWindowMs: 50,
      onEvent: (event) => {
        events.push(event);
        for (const listener of listeners) listener(event);
      },
    });
    await server.start();
    // Replies go to ciaddr:clientPort; 0.0.0.0 hears every 127.0.0.0/8
    // address. A connected socket would hear only its own address, so the
    // requests leave from a second one.
    receiver = dgram.createSocket('udp4');
    receiver.bind(clientPort, '0.0.0.0');
    await once(receiver, 'listening');
    receiver.on('message', (message) => replies.push(decodePacket(message)));
    client = dgram.createSocket('udp4');
    client.connect(serverPort, '127.0.0.1');
    await once(client, 'connect');
  });

  after(async () => {
    client.close();
    receiver.close();
    await server.close();
    leases.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A RENEWING DHCPREQUEST: ciaddr set, no server identifier; ACKed by unicast to ciaddr. */
  function renew(mac: string, address: string, transactionId: number): Buffer {
    return encodePacket(clientRequest({ mac, clientAddress: address, transactionId, options: { messageType: MessageType.request } }));
  }

  async function settle(until: () => boolean, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!until() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  test('the sockets get a 4 MiB receive buffer, past net.core.rmem_max (the tests run as root, as serve starts)', () => {
    const listening = logLines.find((line) => line.msg === 'DHCP server listening');
    assert.equal(listening?.receiveBuffer, 2 * 4 * 1024 * 1024, 'Linux reports twice the size set');
    assert.equal(
      logLines.some((line) => String(line.msg).includes('receive buffer')),
      false,
    );
  });

  test('a burst is decided in one transaction; a later request sees an earlier one’s lease', async () => {
    replies = [];
    const batchesBefore = server.stats.batches;
    const eventsBefore = events.length;
    for (let i = 0; i < 20; i++) client.send(renew(`02:00:00:00:01:${i.toString(16).padStart(2, '0')}`, `127.0.0.${100 + i}`, 1000 + i));
    // Another client asks for an address the burst has just given: a NAK (broadcast, which lo delivers too).
    client.send(renew('02:00:00:00:01:ff', '127.0.0.105', 2000));
    await settle(() => replies.length >= 21);
    assert.equal(server.stats.batches, batchesBefore + 1, 'one batch, one commit');
    assert.equal(replies.length, 21);
    const acks = replies.filter((reply) => reply.options.messageType === MessageType.ack);
    assert.deepEqual(
      acks.map((reply) => reply.transactionId).sort(),
      Array.from({ length: 20 }, (_, i) => 1000 + i),
    );
    const naks = replies.filter((reply) => reply.options.messageType === MessageType.nak);
    assert.deepEqual(
      naks.map((reply) => reply.transactionId),
      [2000],
    );
    const late = events.slice(eventsBefore).find((event) => event.kind === 'reply' && event.mac === '02:00:00:00:01:ff');
    assert.ok(late?.kind === 'reply');
    assert.equal(late.result, 'nak');
    assert.match(late.reason ?? '', /127\.0\.0\.105 is held by 02:00:00:00:01:05 \(bound\)/);
    for (let i = 0; i < 20; i++) {
      const record = leases.byAddress(`127.0.0.${100 + i}`);
      assert.equal(record?.mac, `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`);
      assert.equal(record?.state, 'bound');
    }
  });

  test('a burst larger than one read is one batch, and the sockets are watched again once it is decided', async () => {
    replies = [];
    const batchesBefore = server.stats.batches;
    // More than one recvmmsg call's 32 datagrams; each client renews an address of the pool (127.0.0.100-199) that no other test uses.
    const macs = Array.from({ length: 36 }, (_, i) => `02:00:00:00:04:${i.toString(16).padStart(2, '0')}`);
    macs.forEach((mac, i) => client.send(renew(mac, `127.0.0.${163 + i}`, 5000 + i)));
    await settle(() => replies.length >= 36);
    assert.equal(server.stats.batches, batchesBefore + 1, 'one batch for the 36');
    assert.equal(replies.filter((reply) => reply.options.messageType === MessageType.ack).length, 36);
    // After the batch: a lone request wakes the server and is answered in a batch of its own.
    client.send(renew('02:00:00:00:04:ff', '127.0.0.199', 5999));
    await settle(() => replies.length >= 37);
    assert.equal(replies.at(-1)?.transactionId, 5999);
    assert.equal(server.stats.batches, batchesBefore + 2);
  });

  /**
   * Sends `count` DHCPINFORMs at once (RFC 2131 section 3.4: each ACKed to
   * its ciaddr, with no lease) and waits for their ACKs. Returns the MACs in
   * the order sent, the MACs of the server's reply events in their order,
   * and for each reply the turn of the event loop it left in (counted in the
   * loop's check phase) and when. `onReply` runs with each reply event.
   */
  async function informBurst(count: number, subnet: number, onReply: (sent: number) => void = () => undefined) {
    const eventsBefore = events.length;
    let turn = 0;
    let ticking: NodeJS.Immediate | undefined;
    const tick = () => {
      turn++;
      ticking = setImmediate(tick);
    };
    tick();
    const sentAt = new Map<string, { turn: number; ms: number }>();
    const listener = (event: DhcpEvent) => {
      if (event.kind !== 'reply') return;
      sentAt.set(event.mac, { turn, ms: performance.now() });
      onReply(sentAt.size);
    };
    listeners.add(listener);
    try {
      replies = [];
      const macs = Array.from({ length: count }, (_, i) => `02:00:00:00:${subnet.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`);
      macs.forEach((mac, i) =>
        client.send(
          encodePacket(
            clientRequest({ mac, clientAddress: `127.0.${subnet}.${i + 1}`, transactionId: subnet * 1000 + i, options: { messageType: MessageType.inform } }),
          ),
        ),
      );
      await settle(() => replies.length >= count);
      assert.equal(replies.filter((reply) => reply.options.messageType === MessageType.ack).length, count);
      const order = events
        .slice(eventsBefore)
        .filter((event) => event.kind === 'reply')
        .map((event) => event.mac);
      return { macs, order, at: (mac: string) => sentAt.get(mac)! };
    } finally {
      listeners.delete(listener);
      clearImmediate(ticking);
    }
  }

  test('a batch of 100 replies sends 64 at once and the rest at most 32 a millisecond, in order', async () => {
    const batchesBefore = server.stats.batches;
    const { macs, order, at } = await informBurst(100, 1);
    assert.equal(server.stats.batches, batchesBefore + 1, 'one batch');
    assert.deepEqual(order, macs, 'sent in the order the requests came');
    const first = at(macs[0]!);
    assert.ok(
      macs.slice(0, 64).every((mac) => at(mac).turn === first.turn),
      'the first 64 in one turn',
    );
    const rest = macs.slice(64).map(at);
    assert.ok(
      rest.every((sent) => sent.turn > first.turn),
      'the other 36 in later turns',
    );
    // 36 more at 32 a millisecond: not before a millisecond has passed.
    assert.ok(rest.at(-1)!.ms - first.ms >= 1, `the last left ${(rest.at(-1)!.ms - first.ms).toFixed(2)} ms after the first`);
  });

  test('a reply that waited 50 ms goes at the next turn, past the pace: a busy server does not let its replies queue without end', async () => {
    // The server is held up for 60 ms after its first 64 replies, as by a
    // long batch. 136 in all: the receiver, in this process and so not
    // reading meanwhile, holds them.
    const { macs, order, at } = await informBurst(136, 2, (sent) => {
      if (sent !== 64) return;
      const until = performance.now() + 60;
      while (performance.now() < until);
    });
    assert.deepEqual(order, macs);
    const first = at(macs[0]!).turn;
    assert.ok(
      macs.slice(0, 64).every((mac) => at(mac).turn === first),
      'the first 64 in one turn',
    );
    const second = at(macs[64]!).turn;
    assert.ok(second > first);
    assert.ok(
      macs.slice(64).every((mac) => at(mac).turn === second),
      'the other 72, overdue, all in the next turn (the pace alone would send 64)',
    );
  });

  test('requests that arrive apart within the commit window are one batch, answered once it has committed', async () => {
    replies = [];
    const batchesBefore = server.stats.batches;
    const sent = Date.now();
    for (let i = 0; i < 3; i++) {
      client.send(renew(`02:00:00:00:03:0${i}`, `127.0.0.${160 + i}`, 4000 + i));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await settle(() => replies.length >= 3);
    assert.equal(server.stats.batches, batchesBefore + 1, 'one batch, one commit');
    assert.deepEqual(replies.map((reply) => [reply.transactionId, reply.options.messageType]).sort(), [
      [4000, MessageType.ack],
      [4001, MessageType.ack],
      [4002, MessageType.ack],
    ]);
    assert.ok(Date.now() - sent >= 50, 'the replies waited for the window');
    for (let i = 0; i < 3; i++) assert.equal(leases.byAddress(`127.0.0.${160 + i}`)?.state, 'bound');
  });

  test('a commit window out of range is refused', () => {
    const options = onLoopback(leases, pino({ level: 'silent' }));
    assert.throws(() => new DhcpServer({ ...options, commitWindowMs: 101 }), /DHCP configuration: commitWindowMs 101 is not a whole number in 0-100/);
    assert.throws(() => new DhcpServer({ ...options, commitWindowMs: 0.5 }), /commitWindowMs 0\.5 is not a whole number/);
  });

  test('when the batch cannot commit, nothing is answered: one error line, then a debug line per request; the next batch is answered and one line says commits work again', async () => {
    // Another writer holds the lease file's write lock (as the sqlite3 CLI
    // would inside a transaction): the batch cannot begin within the busy timeout.
    const other = new Database(join(dir, 'leases.sqlite'));
    other.prepare('BEGIN IMMEDIATE').run();
    try {
      replies = [];
      const errorsBefore = server.stats.errors;
      const linesBefore = logLines.length;
      client.send(renew('02:00:00:00:02:01', '127.0.0.150', 3001));
      client.send(renew('02:00:00:00:02:02', '127.0.0.151', 3002));
      await settle(() => server.stats.errors >= errorsBefore + 2);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(replies.length, 0, 'no reply may promise what was not committed');
      assert.equal(server.stats.errors, errorsBefore + 2);
      const lines = logLines.slice(linesBefore).filter((line) => String(line.msg).startsWith('DHCP lease commit failed, no reply sent'));
      assert.deepEqual(
        lines.map((line) => [line.level, line.mac]),
        [
          [50, '02:00:00:00:02:01'],
          [20, '02:00:00:00:02:02'],
        ],
      );
      assert.match(String(lines[0]!.msg), /no request that needs a lease is answered until commits work again$/);
      assert.match(String((lines[0]!.err as { message: string }).message), /leases database .*leases\.sqlite: cannot begin a transaction: database is locked/);
      assert.match(String(lines[1]!.reason), /database is locked/);
      assert.equal(leases.byAddress('127.0.0.150'), undefined);
    } finally {
      other.prepare('ROLLBACK').run();
      other.close();
    }
    replies = [];
    client.send(renew('02:00:00:00:02:01', '127.0.0.150', 3003));
    const linesBefore = logLines.length;
    await settle(() => replies.length >= 1);
    assert.equal(replies[0]?.options.messageType, MessageType.ack);
    assert.equal(leases.byAddress('127.0.0.150')?.state, 'bound');
    const back = logLines.slice(linesBefore).filter((line) => String(line.msg).startsWith('DHCP lease commits work again'));
    assert.equal(back.length, 1, JSON.stringify(logLines.slice(linesBefore)));
    assert.equal(back[0]!.unanswered, 2);
    assert.match(String(back[0]!.msg), /^DHCP lease commits work again: 2 requests went unanswered over [\d.]+ s \(last reason: .*database is locked\)$/);
  });
});
