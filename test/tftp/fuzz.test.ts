import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileFromDisk } from '../../server/tftp/io/file.js';
import { encodePacket, type TftpPacket } from '../../server/tftp/wire/packet.js';
import { requireTool, runTool, sha256, startServer } from '../support/tftp/fixture.js';
import { download, RawClient } from '../support/tftp/raw-client.js';
import { seededRandom } from '../support/random.js';

/**
 * Garbage at the server, then a normal transfer. The generator is seeded so
 * a failure can be replayed: set RACKBOOT_FUZZ_SEED to the seed printed in
 * the test diagnostics.
 */

const seed = Number(process.env.RACKBOOT_FUZZ_SEED ?? Date.now() % 2 ** 31);

function datagramMaker(next: () => number): () => Buffer {
  const int = (max: number): number => Math.floor(next() * max);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const bytes = (length: number): Buffer => Buffer.from(Array.from({ length }, () => int(256)));
  const names = ['payload.bin', 'missing', '../etc/passwd', 'explode', '\\payload.bin', 'payload.bin\xff', '', 'a'.repeat(600)];
  const optionNames = ['blksize', 'tsize', 'timeout', 'windowsize', 'BLKSIZE', 'multicast', 'rollover', ''];
  const optionValues = ['0', '1', '7', '8', '1468', '65464', '99999999999', '-1', 'abc', '', '4'];
  const modes = ['octet', 'netascii', 'mail', 'OCTET', 'binary', ''];
  const request = (): Buffer => {
    const parts = [Buffer.from([0, pick([1, 1, 1, 2])]), Buffer.from(`${pick(names)}\0${pick(modes)}\0`, 'latin1')];
    for (let i = int(5); i > 0; i -= 1) parts.push(Buffer.from(`${pick(optionNames)}\0${pick(optionValues)}\0`, 'latin1'));
    return Buffer.concat(parts);
  };
  const mutate = (packet: Buffer): Buffer => {
    const copy = Buffer.from(packet);
    switch (int(4)) {
      case 0:
        return copy.subarray(0, int(copy.length + 1)); // truncated
      case 1:
        for (let i = int(4) + 1; i > 0 && copy.length > 0; i -= 1) copy[int(copy.length)] = int(256); // flipped bytes
        return copy;
      case 2:
        return Buffer.concat([copy, bytes(int(40))]); // trailing junk
      default: {
        const at = int(copy.length + 1); // NUL or 0xFF inserted
        return Buffer.concat([copy.subarray(0, at), Buffer.from([pick([0, 0xff])]), copy.subarray(at)]);
      }
    }
  };
  const wellFormed = (): Buffer => {
    const packets: TftpPacket[] = [
      { kind: 'data', block: int(65536), data: bytes(int(600)) },
      { kind: 'acknowledgement', block: int(65536) },
      { kind: 'error', code: int(10), message: 'fuzz' },
      { kind: 'optionAcknowledgement', options: [{ name: 'blksize', value: '1468' }] },
    ];
    return encodePacket(pick(packets));
  };
  return () => {
    const roll = next();
    if (roll < 0.25) return bytes(int(700));
    if (roll < 0.45) return Buffer.concat([Buffer.from([0, int(8)]), bytes(int(100))]);
    if (roll < 0.7) return mutate(request());
    if (roll < 0.85) return request();
    return wellFormed();
  };
}

async function openSocket(): Promise<Socket> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return socket;
}

describe('TFTP server under fuzzing', () => {
  test('100,000 random and malformed packets to the request port, and garbage back to every transfer port that answers, then normal transfers still work', async (t) => {
    t.diagnostic(`RACKBOOT_FUZZ_SEED=${seed}`);
    requireTool('atftp', 'atftp');
    let dir = '';
    const fixture = await startServer({
      timeoutMs: 100,
      retries: 1,
      resolve: async (path) => {
        if (path === 'explode') throw new Error('resolver bug');
        try {
          return await fileFromDisk(join(dir, path));
        } catch (err) {
          if ((err as { code?: string }).code === 'ENOENT') return undefined;
          throw err;
        }
      },
    });
    dir = fixture.dir;
    const out = mkdtempSync(join(tmpdir(), 'rackboot-tftp-fuzz-'));
    const senders: Socket[] = [];
    try {
      const content = fixture.writeRandomFile('payload.bin', 2 * 1024 * 1024);
      const makeDatagram = datagramMaker(seededRandom(seed));
      const makeReply = datagramMaker(seededRandom(seed + 2));
      senders.push(...(await Promise.all([openSocket(), openSocket(), openSocket(), openSocket()])));
      // A reply from a transfer port (an OACK, DATA or ERROR) gets ten
      // datagrams of garbage back from the client's own port, then the ACK
      // it asks for, so transfers go on and meet more garbage: the
      // transfer sockets, dgram and native alike, are fuzzed too.
      let toTransferPorts = 0;
      for (const sender of senders) {
        sender.on('message', (message, remote) => {
          if (remote.port === fixture.port) return;
          for (let i = 0; i < 10; i += 1) sender.send(makeReply(), remote.port, remote.address, () => undefined);
          toTransferPorts += 10;
          const opcode = message.length >= 4 ? message.readUInt16BE(0) : 0;
          if (opcode === 3 || opcode === 6) {
            const block = opcode === 3 ? message.readUInt16BE(2) : 0;
            sender.send(encodePacket({ kind: 'acknowledgement', block }), remote.port, remote.address, () => undefined);
          }
        });
      }
      // What the server has taken from the request socket: every datagram
      // ends as exactly one of these (see the count below).
      const count = (kind: string): number => fixture.events.filter((event) => event.kind === kind).length;
      const outcomes = (): number => count('packetDropped') + count('requestRefused') + count('transferEnded') + fixture.server.activeTransfers;
      const total = 100_000;
      for (let sent = 0; sent < total;) {
        const batch: Promise<void>[] = [];
        for (let i = 0; i < 50 && sent < total; i += 1, sent += 1) {
          const sender = senders[sent % senders.length]!;
          const datagram = makeDatagram();
          batch.push(new Promise((resolve, reject) => sender.send(datagram, fixture.port, '127.0.0.1', (err) => (err ? reject(err) : resolve()))));
        }
        await Promise.all(batch);
        // Pace the sender by what the server has read: the point is the
        // server's handling, not the kernel's socket buffer (which drops
        // once the server's transfers keep the loop busy).
        const deadline = Date.now() + 5_000;
        while (outcomes() < sent && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      }

      // Let requests in resolve() settle.
      await new Promise((resolve) => setTimeout(resolve, 200));

      // Every datagram had exactly one outcome: dropped, refused, or a
      // transfer (over, or still waiting for an ACK nobody will send; a
      // fuzzed "timeout 8" keeps one alive for 16 s).
      const dropped = count('packetDropped');
      const refused = count('requestRefused');
      const transfers = count('transferEnded') + fixture.server.activeTransfers;
      const pumped = fixture.events.filter((event) => event.kind === 'transferEnded' && event.pumpedBlocks > 0).length;
      t.diagnostic(
        `dropped ${dropped}, refused ${refused}, transfers ${transfers} (${pumped} through the native socket's pump), ${toTransferPorts} datagrams to transfer ports`,
      );
      assert.equal(dropped + refused + transfers, total, 'one outcome per datagram');
      assert.ok(dropped > 40_000 && refused > 10_000 && transfers > 0, 'the fuzz reached every path');
      assert.ok(toTransferPorts > 1000 && pumped > 0, 'transfer ports, native ones included, got garbage');
      const droppedLines = fixture.lines.filter((line) => line.msg === 'tftp dropped packet');
      assert.equal(droppedLines.length, dropped);
      assert.ok(droppedLines.every((line) => line.level === 20 && typeof line.reason === 'string' && line.reason !== ''));
      assert.deepEqual(
        fixture.lines.filter((line) => (line.level as number) >= 50),
        [],
        'no error-level lines',
      );

      const result = await download(fixture.port, 'payload.bin', [
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '8' },
      ]);
      assert.equal(sha256(result.content), sha256(content));
      const path = join(out, 'payload.bin');
      const atftp = await runTool('atftp', ['--get', '-r', 'payload.bin', '-l', path, '--option', 'blksize 1468', '127.0.0.1', String(fixture.port)]);
      assert.equal(atftp.code, 0, atftp.stderr);
      assert.equal(sha256(readFileSync(path)), sha256(content));
    } finally {
      for (const sender of senders) sender.close();
      await fixture.close();
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('garbage on a transfer port, from the client and from strangers, does not derail the transfer', async (t) => {
    t.diagnostic(`RACKBOOT_FUZZ_SEED=${seed}`);
    const fixture = await startServer({ timeoutMs: 200 });
    try {
      const content = fixture.writeRandomFile('payload.bin', 200 * 1024);
      const makeDatagram = datagramMaker(seededRandom(seed + 1));
      const client = await RawClient.open();
      const stranger = await RawClient.open();
      try {
        await client.readRequest(fixture.port, 'payload.bin', [{ name: 'blksize', value: '1024' }]);
        const oack = await client.receive();
        const transferPort = oack.port;
        // Before accepting the OACK and between every ACK, the client and a
        // stranger spray garbage at the transfer port.
        const spray = async (): Promise<void> => {
          for (let i = 0; i < 5; i += 1) {
            const junk = makeDatagram();
            // From the client's own port, only what cannot pass for an ACK or
            // ERROR: those would legitimately move or end the transfer.
            if (!(junk.length >= 2 && (junk[1] === 4 || junk[1] === 5) && junk[0] === 0)) await client.sendBytes(junk, transferPort);
            await stranger.sendBytes(makeDatagram(), transferPort);
          }
        };
        await spray();
        await client.send({ kind: 'acknowledgement', block: 0 }, transferPort);
        const chunks: Buffer[] = [];
        for (let expected = 1; ; expected += 1) {
          let received = await client.receive();
          // Retransmissions may arrive while garbage is being sent; take the block we want.
          while (received.packet.kind !== 'data' || received.packet.block !== expected % 0x10000) received = await client.receive();
          const data = received.packet.data;
          chunks.push(Buffer.from(data));
          await spray();
          await client.send({ kind: 'acknowledgement', block: expected % 0x10000 }, transferPort);
          if (data.length < 1024) break;
        }
        assert.equal(sha256(Buffer.concat(chunks)), sha256(content));
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'complete');
        assert.ok(ended.pumpedBlocks > 0, 'the native socket took the transfer between the garbage');
        // The stranger got error 5 for everything that was not itself an ERROR.
        const answers = await stranger.collect(100);
        assert.ok(answers.length > 0);
        assert.ok(answers.every((answer) => answer.packet.kind === 'error' && answer.packet.code === 5));
      } finally {
        client.close();
        stranger.close();
      }
    } finally {
      await fixture.close();
    }
  });
});
