import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { ErrorCode } from '../../server/tftp/wire/codes.js';
import { fileFromBuffer, NotRegularFileError } from '../../server/tftp/io/file.js';
import { decodePacket, encodePacket, type TftpPacket } from '../../server/tftp/wire/packet.js';
import { silentLogger } from '../../server/log.js';
import { TftpServer } from '../../server/tftp/server.js';
import { readPcap } from '../support/pcap.js';
import { startServer, sha256, type ServerFixture } from '../support/tftp/fixture.js';
import { download, RawClient, type Received } from '../support/tftp/raw-client.js';

/**
 * The server driven one packet at a time over loopback, for behaviour the
 * real clients cannot be made to show on demand.
 */

const fixtures = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

async function withServer(options: Parameters<typeof startServer>[0], body: (fixture: ServerFixture) => Promise<void>): Promise<void> {
  const fixture = await startServer(options);
  try {
    await body(fixture);
  } finally {
    await fixture.close();
  }
}

async function withClient<T>(body: (client: RawClient) => Promise<T>): Promise<T> {
  const client = await RawClient.open();
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

function expectPacket<K extends TftpPacket['kind']>(received: Received, kind: K): Extract<TftpPacket, { kind: K }> {
  assert.equal(received.packet.kind, kind, `want ${kind}, got ${JSON.stringify(received.packet)}`);
  return received.packet as Extract<TftpPacket, { kind: K }>;
}

function dataBlocks(packets: Received[]): number[] {
  return packets.map((received) => expectPacket(received, 'data').block);
}

describe('TFTP server protocol', () => {
  test('serves a file to a plain RFC 1350 client from a fresh transfer port', async () => {
    await withServer({}, async (fixture) => {
      const content = fixture.writeRandomFile('pxelinux.0', 3000);
      const result = await download(fixture.port, 'pxelinux.0');
      assert.equal(result.oack, undefined, 'no options asked, so no OACK');
      assert.deepEqual(result.content, content);
      assert.deepEqual(result.blockNumbers, [1, 2, 3, 4, 5, 6]);
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.outcome, 'complete');
      assert.equal(ended.bytes, 3000);
      assert.deepEqual(fixture.resolved, ['pxelinux.0']);
    });
  });

  test('replays the OVMF capture: the tsize probe ends quietly, then the real download with windowsize 4', async () => {
    const requests = readPcap(`${fixtures}ovmf-x64-uefi-pxe.pcap`).filter((datagram) => datagram.destination.port === 69);
    await withServer({}, async (fixture) => {
      const content = fixture.writeRandomFile('ipxe.efi', 1_000_000);
      await withClient(async (client) => {
        await client.sendBytes(requests[0]!.payload, fixture.port);
        const reply = await client.receive();
        assert.notEqual(reply.port, fixture.port, 'the reply comes from the transfer port, not port 69');
        assert.deepEqual(expectPacket(reply, 'optionAcknowledgement').options, [
          { name: 'tsize', value: '1000000' },
          { name: 'blksize', value: '1468' },
          { name: 'windowsize', value: '4' },
        ]);
        await client.send({ kind: 'error', code: ErrorCode.optionsRefused, message: 'User aborted the transfer' }, reply.port);
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'probe');
        assert.equal(ended.bytes, 0);
      });
      // The probe logs at debug only: no info line for it.
      const probeLines = fixture.lines.filter((line) => line.file === 'ipxe.efi');
      assert.deepEqual(
        probeLines.map((line) => [line.level, line.msg]),
        [[20, 'tftp size probe ended by the client']],
      );
      assert.equal(fixture.events.filter((event) => event.kind === 'transferStarted').length, 0);

      const result = await download(fixture.port, requests[1]!.payload);
      assert.deepEqual(result.oack, [
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '4' },
      ]);
      assert.equal(sha256(result.content), sha256(content));
      // 1_000_000 bytes are 682 blocks of 1468: 170 full windows of 4, then 2.
      assert.equal(result.blockNumbers.length, 682);
      assert.deepEqual(result.acknowledged.slice(0, 3), [4, 8, 12]);
      assert.deepEqual(result.acknowledged.slice(-2), [680, 682]);
      const ended = await fixture.waitForEvent('transferEnded', (event) => event.outcome === 'complete');
      assert.equal(ended.retransmits, 0);
      assert.equal(ended.bytes, 1_000_000);
    });
  });

  test('refusing an OACK without tsize is not a probe: it is logged at info', async () => {
    await withServer({}, async (fixture) => {
      fixture.writeRandomFile('f', 5000);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f', [{ name: 'blksize', value: '100000' }]);
        const oack = await client.receive();
        assert.deepEqual(expectPacket(oack, 'optionAcknowledgement').options, [{ name: 'blksize', value: '65464' }]);
        await client.send({ kind: 'error', code: ErrorCode.optionsRefused, message: 'blksize too small' }, oack.port);
      });
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.outcome, 'clientError');
      assert.equal(ended.detail, 'client sent error 8: blksize too small');
      const line = fixture.lines.find((entry) => entry.msg === 'tftp transfer aborted');
      assert.equal(line?.level, 30);
    });
  });

  test('serves over IPv6 when bound to ::1', async () => {
    await withServer({ address: '::1' }, async (fixture) => {
      const content = fixture.writeRandomFile('f', 3000);
      const socket = createSocket('udp6');
      try {
        socket.bind(0, '::1');
        await once(socket, 'listening');
        const received: Buffer[] = [];
        socket.on('message', (message, remote) => {
          const packet = decodePacket(message);
          assert.equal(packet.kind, 'data');
          if (packet.kind !== 'data') return;
          received.push(Buffer.from(packet.data));
          socket.send(encodePacket({ kind: 'acknowledgement', block: packet.block }), remote.port, remote.address);
        });
        socket.send(encodePacket({ kind: 'readRequest', fileName: 'f', mode: 'octet', options: [] }), fixture.port, '::1');
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'complete');
        assert.equal(ended.client.address, '::1');
        assert.deepEqual(Buffer.concat(received), content);
        assert.ok(fixture.lines.some((line) => line.client === `[::1]:${socket.address().port}`));
      } finally {
        socket.close();
      }
    });
  });

  test('refuses a WRQ: rackboot is read-only', async () => {
    await withServer({}, async (fixture) => {
      await withClient(async (client) => {
        await client.send({ kind: 'writeRequest', fileName: 'upload.img', mode: 'octet', options: [] }, fixture.port);
        const reply = expectPacket(await client.receive(), 'error');
        assert.deepEqual(reply, { kind: 'error', code: ErrorCode.accessViolation, message: 'rackboot serves files read-only' });
        assert.deepEqual(fixture.resolved, [], 'a write request never reaches resolve');
      });
    });
  });

  test('answers an unknown file with error 1 "file not found"', async () => {
    await withServer({}, async (fixture) => {
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'pxelinux.cfg/01-52-54-00-12-34-56');
        assert.deepEqual(expectPacket(await client.receive(), 'error'), { kind: 'error', code: 1, message: 'file not found' });
        const refused = await fixture.waitForEvent('requestRefused');
        assert.equal(refused.file, 'pxelinux.cfg/01-52-54-00-12-34-56');
      });
    });
  });

  test('refuses ".." without asking resolve', async () => {
    await withServer({}, async (fixture) => {
      await withClient(async (client) => {
        await client.readRequest(fixture.port, '../../etc/passwd');
        assert.deepEqual(expectPacket(await client.receive(), 'error'), {
          kind: 'error',
          code: ErrorCode.accessViolation,
          message: 'file name has a ".." segment',
        });
        assert.deepEqual(fixture.resolved, []);
      });
    });
  });

  test('maps resolve failures to TFTP errors', async () => {
    const failures: Array<[unknown, number, string]> = [
      [Object.assign(new Error('gone'), { code: 'ENOENT' }), ErrorCode.fileNotFound, 'file not found'],
      [new NotRegularFileError('/srv/boot'), ErrorCode.accessViolation, 'not a regular file'],
      [Object.assign(new Error('no'), { code: 'EACCES' }), ErrorCode.accessViolation, 'access violation'],
      [new Error('database down'), ErrorCode.notDefined, 'internal error'],
    ];
    for (const [failure, code, message] of failures) {
      await withServer({ resolve: () => Promise.reject(failure) }, async (fixture) => {
        await withClient(async (client) => {
          await client.readRequest(fixture.port, 'x');
          assert.deepEqual(expectPacket(await client.receive(), 'error'), { kind: 'error', code, message });
        });
      });
    }
  });

  test('firmware quirks in file names resolve to the same file', async () => {
    await withServer({}, async (fixture) => {
      const content = randomBytes(700);
      fixture.memory.set('boot/undionly.kpxe', fileFromBuffer(content));
      const quirky: Array<[string, Buffer]> = [
        ['trailing NULs', Buffer.from('\x00\x01boot/undionly.kpxe\x00\x00\x00octet\x00', 'latin1')],
        ['trailing 0xFF', Buffer.from('\x00\x01boot/undionly.kpxe\xff\xff\x00octet\x00', 'latin1')],
        ['trailing space', Buffer.from('\x00\x01boot/undionly.kpxe \x00octet\x00', 'latin1')],
        ['trailing CR LF', Buffer.from('\x00\x01boot/undionly.kpxe\r\n\x00octet\x00', 'latin1')],
        ['backslashes', Buffer.from('\x00\x01boot\\undionly.kpxe\x00octet\x00', 'latin1')],
        ['leading slash', Buffer.from('\x00\x01/boot/undionly.kpxe\x00octet\x00', 'latin1')],
        ['upper-case mode', Buffer.from('\x00\x01boot/undionly.kpxe\x00OCTET\x00', 'latin1')],
        ['padding after the options', Buffer.from('\x00\x01boot/undionly.kpxe\x00octet\x00BlkSize\x00600\x00\x00\x00\x00', 'latin1')],
      ];
      for (const [what, request] of quirky) {
        await withClient(async (client) => {
          await client.sendBytes(request, fixture.port);
          let first = await client.receive();
          let blockSize = 512;
          if (first.packet.kind === 'optionAcknowledgement') {
            assert.deepEqual(first.packet.options, [{ name: 'blksize', value: '600' }], what);
            blockSize = 600;
            await client.send({ kind: 'acknowledgement', block: 0 }, first.port);
            first = await client.receive();
          }
          const chunks: Buffer[] = [];
          let received = first;
          for (;;) {
            const data = expectPacket(received, 'data');
            chunks.push(Buffer.from(data.data));
            await client.send({ kind: 'acknowledgement', block: data.block }, received.port);
            if (data.data.length < blockSize) break;
            received = await client.receive();
          }
          assert.deepEqual(Buffer.concat(chunks), content, what);
        });
      }
      assert.deepEqual(fixture.resolved, Array(quirky.length).fill('boot/undionly.kpxe'));
    });
  });

  test("a duplicate ACK never resends the window (Sorcerer's Apprentice)", async () => {
    await withServer({ timeoutMs: 5000, minTimeoutMs: 5000 }, async (fixture) => {
      fixture.writeRandomFile('f', 512 * 20);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f');
        const first = await client.receive();
        assert.equal(expectPacket(first, 'data').block, 1);
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        assert.deepEqual(dataBlocks(await client.collect(300)), [2], 'block 2 exactly once');
        // A late duplicate of an older ACK changes nothing either.
        await client.send({ kind: 'acknowledgement', block: 2 }, first.port);
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        await client.send({ kind: 'acknowledgement', block: 2 }, first.port);
        assert.deepEqual(dataBlocks(await client.collect(300)), [3]);
      });
      await fixture.server.close();
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.duplicateAcks, 3);
      assert.equal(ended.retransmits, 0);
    });
  });

  test('with windows: a duplicate ACK sends nothing, an ACK inside the window resends from the block after it', async () => {
    await withServer({ timeoutMs: 5000, minTimeoutMs: 5000 }, async (fixture) => {
      fixture.writeRandomFile('f', 512 * 40);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f', [{ name: 'windowsize', value: '4' }]);
        const oack = await client.receive();
        assert.deepEqual(expectPacket(oack, 'optionAcknowledgement').options, [{ name: 'windowsize', value: '4' }]);
        await client.send({ kind: 'acknowledgement', block: 0 }, oack.port);
        assert.deepEqual(dataBlocks(await client.collect(200)), [1, 2, 3, 4]);
        await client.send({ kind: 'acknowledgement', block: 4 }, oack.port);
        await client.send({ kind: 'acknowledgement', block: 4 }, oack.port);
        assert.deepEqual(dataBlocks(await client.collect(200)), [5, 6, 7, 8], 'the window once, not twice');
        // Pretend 7 and 8 were lost: ACK 6 means "send from 7".
        await client.send({ kind: 'acknowledgement', block: 6 }, oack.port);
        assert.deepEqual(dataBlocks(await client.collect(200)), [7, 8, 9, 10]);
        // An ACK for a block never sent is ignored.
        await client.send({ kind: 'acknowledgement', block: 30 }, oack.port);
        assert.deepEqual(dataBlocks(await client.collect(200)), []);
      });
    });
  });

  test('with windows: an ACK answering a resent block is progress, not a loss; each loss costs one window', async () => {
    await withServer({ timeoutMs: 5000, minTimeoutMs: 5000 }, async (fixture) => {
      fixture.writeRandomFile('f', 512 * 40);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f', [{ name: 'windowsize', value: '4' }]);
        const oack = await client.receive();
        const ack = (block: number): Promise<void> => client.send({ kind: 'acknowledgement', block }, oack.port);
        await ack(0);
        assert.deepEqual(dataBlocks(await client.collect(200)), [1, 2, 3, 4]);
        await ack(4);
        assert.deepEqual(dataBlocks(await client.collect(200)), [5, 6, 7, 8]);
        // 6 was lost: ACK 5 restarts the window at 6.
        await ack(5);
        assert.deepEqual(dataBlocks(await client.collect(200)), [6, 7, 8, 9]);
        // What atftp does when the resent 6 reaches it having got 6 already
        // (the first copy was late, not lost): it answers the old block with
        // ACK 6 at once, while 7..9 are still on their way. That is no loss:
        // only the block that keeps the window full goes out, not 7..10.
        await ack(6);
        assert.deepEqual(dataBlocks(await client.collect(200)), [10], 'one new block, no second window');
        await ack(10);
        assert.deepEqual(dataBlocks(await client.collect(200)), [11, 12, 13, 14]);
        // An ACK inside a fresh window is a loss: the window restarts after it.
        await ack(12);
        assert.deepEqual(dataBlocks(await client.collect(200)), [13, 14, 15, 16]);
        // 13 opened that burst having been sent before: ACK 13 is progress...
        await ack(13);
        assert.deepEqual(dataBlocks(await client.collect(200)), [17]);
        // ...unless the client says it again: then 14 was lost, and the
        // window is resent from there, once; further repeats change nothing.
        await ack(13);
        assert.deepEqual(dataBlocks(await client.collect(200)), [14, 15, 16, 17]);
        await ack(13);
        await ack(13);
        assert.deepEqual(dataBlocks(await client.collect(200)), [], "no Sorcerer's Apprentice");
        await ack(17);
        assert.deepEqual(dataBlocks(await client.collect(200)), [18, 19, 20, 21]);
      });
      await fixture.server.close();
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.earlyAcks, 2);
      assert.equal(ended.duplicateAcks, 3);
    });
  });

  test('retransmits on timeout, a bounded number of times, then gives up with an ERROR', async () => {
    await withServer({ timeoutMs: 150, retries: 2 }, async (fixture) => {
      fixture.writeRandomFile('f', 2000);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f', [{ name: 'blksize', value: '1024' }]);
        const oack = await client.receive();
        expectPacket(oack, 'optionAcknowledgement');
        // Say nothing: the OACK comes again, twice, then an ERROR.
        const later = await client.collect(1500);
        assert.deepEqual(
          later.map((received) => received.packet.kind),
          ['optionAcknowledgement', 'optionAcknowledgement', 'error'],
        );
        assert.deepEqual(later[2]!.packet, { kind: 'error', code: 0, message: 'timed out' });
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'timeout');
        assert.equal(ended.retransmits, 2);
      });
      // The same in the data phase, where a lost ACK costs the window again.
      fixture.writeRandomFile('g', 1100);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'g');
        const first = await client.receive();
        assert.equal(expectPacket(first, 'data').block, 1);
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        assert.deepEqual(dataBlocks([await client.receive()]), [2]);
        assert.deepEqual(dataBlocks([await client.receive(400)]), [2], 'block 2 again after the timeout');
        await client.send({ kind: 'acknowledgement', block: 2 }, first.port);
        const last = expectPacket(await client.receive(), 'data');
        assert.equal(last.block, 3);
        assert.equal(last.data.length, 1100 - 2 * 512);
        await client.send({ kind: 'acknowledgement', block: 3 }, first.port);
        const ended = await fixture.waitForEvent('transferEnded', (event) => event.outcome === 'complete');
        assert.equal(ended.retransmits, 1);
        assert.equal(ended.bytes, 1100);
      });
    });
  });

  test('a client that acknowledges nothing is given up after silentTransferTimeoutMs; one that did gets the full schedule', async () => {
    await withServer({ timeoutMs: 1000, retries: 5, silentTransferTimeoutMs: 1500 }, async (fixture) => {
      fixture.writeRandomFile('s', 2000);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 's', [{ name: 'blksize', value: '1024' }]);
        expectPacket(await client.receive(), 'optionAcknowledgement');
        // One retransmission at 1 s fits in 1.5 s; then the ERROR, not four more backed-off ones.
        const later = await client.collect(2500);
        assert.deepEqual(
          later.map((received) => received.packet.kind),
          ['optionAcknowledgement', 'error'],
        );
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'timeout');
        assert.equal(ended.retransmits, 1);
        assert.equal(ended.detail, 'no acknowledgement at all within 1500 ms (1 retransmissions)');
      });
    });
    await withServer({ timeoutMs: 150, retries: 2, silentTransferTimeoutMs: 100 }, async (fixture) => {
      fixture.writeRandomFile('t', 2000);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 't', [{ name: 'blksize', value: '1024' }]);
        const oack = await client.receive();
        await client.send({ kind: 'acknowledgement', block: 0 }, oack.port);
        assert.deepEqual(dataBlocks([await client.receive()]), [1]);
        // Silent from here: block 1 twice more, then the ERROR, as for any stalled client.
        const later = await client.collect(2000);
        assert.deepEqual(
          later.map((received) => received.packet.kind),
          ['data', 'data', 'error'],
        );
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.detail, 'no acknowledgement after 2 retransmissions');
      });
    });
  });

  test('the retransmission timeout adapts to measured round trips, down to minTimeoutMs, unless the client set one', async () => {
    await withServer({ timeoutMs: 4000, minTimeoutMs: 100 }, async (fixture) => {
      fixture.writeRandomFile('h', 1100);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'h');
        const first = await client.receive();
        assert.equal(expectPacket(first, 'data').block, 1);
        // Answered at once: a round trip of about a millisecond, so the timeout falls to its floor.
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        assert.deepEqual(dataBlocks([await client.receive()]), [2]);
        // Far sooner than the configured 4 s.
        assert.deepEqual(dataBlocks([await client.receive(2000)]), [2], 'block 2 again after the adapted timeout');
        await client.send({ kind: 'acknowledgement', block: 2 }, first.port);
        assert.deepEqual(dataBlocks([await client.receive()]), [3]);
        await client.send({ kind: 'acknowledgement', block: 3 }, first.port);
        const ended = await fixture.waitForEvent('transferEnded', (event) => event.outcome === 'complete');
        assert.equal(ended.retransmits, 1);
      });
      // RFC 2349: a client that names its timeout gets exactly that.
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'h', [{ name: 'timeout', value: '3' }]);
        const oack = await client.receive();
        expectPacket(oack, 'optionAcknowledgement');
        await client.send({ kind: 'acknowledgement', block: 0 }, oack.port);
        assert.deepEqual(dataBlocks([await client.receive()]), [1]);
        await client.send({ kind: 'acknowledgement', block: 1 }, oack.port);
        assert.deepEqual(dataBlocks([await client.receive()]), [2]);
        assert.deepEqual(await client.collect(2000), [], 'nothing within 2 s of a 3 s timeout');
        await client.send({ kind: 'error', code: 0, message: 'done' }, oack.port);
      });
    });
  });

  test('a packet from a foreign port gets error 5 and the transfer carries on', async () => {
    await withServer({ timeoutMs: 5000, minTimeoutMs: 5000 }, async (fixture) => {
      const content = fixture.writeRandomFile('f', 1500);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f');
        const first = await client.receive();
        assert.equal(expectPacket(first, 'data').block, 1);
        await withClient(async (intruder) => {
          await intruder.send({ kind: 'acknowledgement', block: 1 }, first.port);
          assert.deepEqual(expectPacket(await intruder.receive(), 'error'), {
            kind: 'error',
            code: ErrorCode.unknownTransferId,
            message: 'unknown transfer ID',
          });
          // The intruder's ACK did not advance the transfer...
          assert.deepEqual(await client.collect(200), []);
          // ...and its ERROR neither ends it nor gets an answer.
          await intruder.send({ kind: 'error', code: 0, message: 'go away' }, first.port);
          assert.deepEqual(await intruder.collect(200), []);
        });
        const chunks = [Buffer.from(expectPacket(first, 'data').data)];
        let block = 1;
        for (;;) {
          await client.send({ kind: 'acknowledgement', block }, first.port);
          const data = expectPacket(await client.receive(), 'data');
          chunks.push(Buffer.from(data.data));
          block = data.block;
          if (data.data.length < 512) break;
        }
        await client.send({ kind: 'acknowledgement', block }, first.port);
        assert.deepEqual(Buffer.concat(chunks), content);
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'complete');
      });
    });
  });

  test('block numbers roll over from 65535 to 0 (75,000 blocks of 8 bytes)', async () => {
    await withServer({}, async (fixture) => {
      const content = fixture.writeRandomFile('big', 600_000);
      const result = await download(fixture.port, 'big', [
        { name: 'blksize', value: '8' },
        { name: 'windowsize', value: '64' },
      ]);
      assert.equal(sha256(result.content), sha256(content));
      assert.equal(result.blockNumbers.length, 75_001, '75,000 full blocks and an empty one');
      assert.deepEqual(result.blockNumbers.slice(65_533, 65_539), [65_534, 65_535, 0, 1, 2, 3]);
      assert.equal(result.blockNumbers.at(-1), 75_001 - 65_536);
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.outcome, 'complete');
      assert.equal(ended.blocks, 75_001);
      assert.equal(ended.bytes, 600_000);
    });
  });

  test('the largest block size, 65464, goes through on loopback', async () => {
    await withServer({}, async (fixture) => {
      const content = fixture.writeRandomFile('big', 300_000);
      const result = await download(fixture.port, 'big', [{ name: 'blksize', value: '100000' }]);
      assert.deepEqual(result.oack, [{ name: 'blksize', value: '65464' }]);
      assert.equal(sha256(result.content), sha256(content));
      assert.equal(result.blockNumbers.length, 5);
    });
  });

  test('an empty file is one empty DATA packet; a multiple of the block size ends with one', async () => {
    await withServer({}, async (fixture) => {
      fixture.memory.set('empty', fileFromBuffer(Buffer.alloc(0)));
      fixture.memory.set('even', fileFromBuffer(Buffer.alloc(1024, 7)));
      const empty = await download(fixture.port, 'empty', [{ name: 'tsize', value: '0' }]);
      assert.deepEqual(empty.oack, [{ name: 'tsize', value: '0' }]);
      assert.deepEqual(empty.blockNumbers, [1]);
      assert.equal(empty.content.length, 0);
      const even = await download(fixture.port, 'even');
      assert.deepEqual(even.blockNumbers, [1, 2, 3]);
      assert.deepEqual(even.content, Buffer.alloc(1024, 7));
    });
  });

  test('serves generated content from a stream of ragged chunks', async () => {
    const content = randomBytes(50_000);
    await withServer({}, async (fixture) => {
      fixture.memory.set('generated.ipxe', {
        size: content.length,
        open: () =>
          (async function* () {
            for (let offset = 0; offset < content.length; offset += 333) yield content.subarray(offset, offset + 333);
          })(),
      });
      const result = await download(fixture.port, 'generated.ipxe', [{ name: 'blksize', value: '1432' }]);
      assert.deepEqual(result.content, content);
    });
  });

  test('netascii: line ends converted, tsize left out of the OACK', async () => {
    await withServer({}, async (fixture) => {
      fixture.memory.set('script', fileFromBuffer(Buffer.from('#!ipxe\nchain boot\r\n')));
      const result = await download(
        fixture.port,
        'script',
        [
          { name: 'tsize', value: '0' },
          { name: 'blksize', value: '1024' },
        ],
        'NetASCII',
      );
      assert.deepEqual(result.oack, [{ name: 'blksize', value: '1024' }]);
      assert.deepEqual(result.content, Buffer.from('#!ipxe\r\nchain boot\r\0\r\n', 'latin1'));
      assert.equal((await fixture.waitForEvent('transferStarted')).mode, 'netascii');
    });
  });

  test('options it cannot honour are dropped: an invalid blksize alone means no OACK', async () => {
    await withServer({}, async (fixture) => {
      fixture.writeRandomFile('f', 600);
      const result = await download(fixture.port, 'f', [
        { name: 'blksize', value: '4' },
        { name: 'multicast', value: '' },
      ]);
      assert.equal(result.oack, undefined);
      assert.deepEqual(result.blockNumbers, [1, 2]);
    });
  });

  test('windowsize is capped at 64 and timeout is echoed and used', async () => {
    await withServer({ timeoutMs: 10_000 }, async (fixture) => {
      fixture.writeRandomFile('f', 512 * 100);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f', [
          { name: 'windowsize', value: '200' },
          { name: 'timeout', value: '1' },
        ]);
        const oack = await client.receive();
        assert.deepEqual(expectPacket(oack, 'optionAcknowledgement').options, [
          { name: 'windowsize', value: '64' },
          { name: 'timeout', value: '1' },
        ]);
        await client.send({ kind: 'acknowledgement', block: 0 }, oack.port);
        const window = await client.collect(300);
        assert.equal(window.length, 64);
        // Silence: after the client's 1 s (not the server's 10 s) the window comes again.
        const started = Date.now();
        const again = await client.receive(2000);
        assert.equal(expectPacket(again, 'data').block, 1);
        assert.ok(Date.now() - started < 1500, 'retransmitted within the negotiated timeout');
      });
    });
  });

  test('refuses unknown and mail modes with error 4', async () => {
    await withServer({}, async (fixture) => {
      fixture.writeRandomFile('f', 10);
      for (const [mode, message] of [
        ['mail', 'mail mode is not supported'],
        ['binary', 'unknown transfer mode "binary"'],
      ]) {
        await withClient(async (client) => {
          await client.readRequest(fixture.port, 'f', [], mode);
          assert.deepEqual(expectPacket(await client.receive(), 'error'), { kind: 'error', code: ErrorCode.illegalOperation, message });
        });
      }
    });
  });

  test('a malformed request gets error 4 with the reason; other junk gets no answer', async () => {
    await withServer({}, async (fixture) => {
      await withClient(async (client) => {
        await client.sendBytes(Buffer.from('\x00\x01pxelinux.0\x00', 'latin1'), fixture.port);
        assert.deepEqual(expectPacket(await client.receive(), 'error'), {
          kind: 'error',
          code: ErrorCode.illegalOperation,
          message: 'RRQ for "pxelinux.0" has no transfer mode',
        });
        await client.sendBytes(Buffer.from('GET / HTTP/1.0\r\n\r\n'), fixture.port);
        await client.send({ kind: 'acknowledgement', block: 1 }, fixture.port);
        await client.send({ kind: 'error', code: 0, message: 'x' }, fixture.port);
        assert.deepEqual(await client.collect(200), []);
      });
      const dropped = fixture.lines.filter((line) => line.msg === 'tftp dropped packet');
      assert.deepEqual(
        dropped.map((line) => [line.level, line.reason]),
        [
          [20, 'unknown opcode 18245'],
          [20, 'ACK 1 is not a request'],
          [20, 'ERROR 0 "x" is not a request'],
        ],
      );
    });
  });

  test('garbage from the client on its transfer port is ignored', async () => {
    await withServer({ timeoutMs: 5000, minTimeoutMs: 5000 }, async (fixture) => {
      const content = fixture.writeRandomFile('f', 1000);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f');
        const first = await client.receive();
        await client.sendBytes(Buffer.from([0, 4, 0]), first.port);
        await client.sendBytes(Buffer.from([0xff, 0xff, 0xff, 0xff]), first.port);
        await client.send({ kind: 'data', block: 1, data: Buffer.from('x') }, first.port);
        assert.deepEqual(await client.collect(200), []);
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        const second = expectPacket(await client.receive(), 'data');
        await client.send({ kind: 'acknowledgement', block: 2 }, first.port);
        assert.deepEqual(Buffer.concat([expectPacket(first, 'data').data, second.data]), content);
      });
      assert.equal((await fixture.waitForEvent('transferEnded')).outcome, 'complete');
    });
  });

  test('a repeated RRQ from the same port does not start a second transfer', async () => {
    await withServer({ timeoutMs: 5000, minTimeoutMs: 5000 }, async (fixture) => {
      fixture.writeRandomFile('f', 100);
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'f', [{ name: 'tsize', value: '0' }]);
        await client.readRequest(fixture.port, 'f', [{ name: 'tsize', value: '0' }]);
        const replies = await client.collect(300);
        assert.equal(replies.length, 1);
        expectPacket(replies[0]!, 'optionAcknowledgement');
      });
      assert.equal(fixture.server.activeTransfers, 1);
    });
  });

  test('past maxTransfers, requests are left unanswered (no error for the firmware to give up on) and the repeat is served once a transfer ends', async () => {
    await withServer({ maxTransfers: 1, timeoutMs: 5000 }, async (fixture) => {
      fixture.writeRandomFile('f', 100);
      await withClient(async (first) => {
        await withClient(async (second) => {
          await first.readRequest(fixture.port, 'f', [{ name: 'tsize', value: '0' }]);
          const oack = await first.receive();
          await second.readRequest(fixture.port, 'f');
          assert.deepEqual(await second.collect(300), [], 'nothing at all comes back past the cap');
          assert.equal(fixture.server.activeTransfers, 1);
          // The first transfer ends; the client's repeated request is served.
          await first.send({ kind: 'error', code: 8, message: 'probe done' }, oack.port);
          await fixture.waitForEvent('transferEnded');
          await second.readRequest(fixture.port, 'f');
          assert.equal(expectPacket(await second.receive(), 'data').data.length, 100);
        });
      });
      assert.ok(fixture.events.some((event) => event.kind === 'packetDropped' && event.reason.startsWith('server busy: 1 transfers in progress')));
      assert.ok(!fixture.events.some((event) => event.kind === 'requestRefused'));
    });
  });

  test('past maxTransfersPerClient, that address gets its own error; other addresses are still served', async () => {
    await withServer({ maxTransfersPerClient: 2, timeoutMs: 5000 }, async (fixture) => {
      fixture.writeRandomFile('f', 100);
      const clients = await Promise.all([RawClient.open(), RawClient.open(), RawClient.open(), RawClient.open('127.0.0.2')]);
      try {
        const [a, b, c, other] = clients as [RawClient, RawClient, RawClient, RawClient];
        const oacks: Received[] = [];
        for (const client of [a, b]) {
          await client.readRequest(fixture.port, 'f', [{ name: 'tsize', value: '0' }]);
          oacks.push(await client.receive());
          expectPacket(oacks.at(-1)!, 'optionAcknowledgement');
        }
        await c.readRequest(fixture.port, 'f');
        assert.deepEqual(expectPacket(await c.receive(), 'error'), {
          kind: 'error',
          code: 0,
          message: 'too many transfers from 127.0.0.1: 2 in progress, try again',
        });
        await other.readRequest(fixture.port, 'f');
        assert.equal(expectPacket(await other.receive(), 'data').data.length, 100);
        // One of the two ends: the third client of 127.0.0.1 is served.
        await a.send({ kind: 'error', code: 8, message: 'probe done' }, oacks[0]!.port);
        await fixture.waitForEvent('transferEnded', (event) => event.outcome === 'probe');
        await c.readRequest(fixture.port, 'f');
        assert.equal(expectPacket(await c.receive(), 'data').data.length, 100);
      } finally {
        for (const client of clients) client.close();
      }
      const warnings = fixture.lines.filter((line) => line.msg === 'tftp client at its transfer limit, refusing its requests');
      assert.equal(warnings.length, 1);
    });
  });

  test('a crowd past the cap gets one warning per 10 s, not one per request', async () => {
    await withServer({ maxTransfers: 1, timeoutMs: 5000 }, async (fixture) => {
      fixture.writeRandomFile('f', 100);
      await withClient(async (holder) => {
        await holder.readRequest(fixture.port, 'f', [{ name: 'tsize', value: '0' }]);
        await holder.receive();
        await withClient(async (crowd) => {
          for (let i = 0; i < 50; i += 1) await crowd.readRequest(fixture.port, 'f');
          assert.deepEqual(await crowd.collect(300), []);
        });
      });
      assert.equal(fixture.events.filter((event) => event.kind === 'packetDropped' && event.reason.startsWith('server busy')).length, 50);
      assert.equal(fixture.lines.filter((line) => String(line.msg).startsWith('tftp at its transfer limit')).length, 1);
    });
  });

  test('the caps must be positive integers', () => {
    for (const bad of [0, -1, 1.5]) {
      assert.throws(() => new TftpServer({ resolve: async () => undefined, log: silentLogger(), maxTransfersPerClient: bad }), /maxTransfersPerClient is/u);
    }
  });

  test('a read error mid-transfer ends it with an ERROR to the client', async () => {
    await withServer({}, async (fixture) => {
      fixture.memory.set('flaky', {
        size: 5000,
        open: () =>
          (async function* () {
            yield Buffer.alloc(1000);
            throw new Error('EIO: i/o error, read');
          })(),
      });
      await withClient(async (client) => {
        await client.readRequest(fixture.port, 'flaky');
        const first = await client.receive();
        assert.equal(expectPacket(first, 'data').data.length, 512);
        await client.send({ kind: 'acknowledgement', block: 1 }, first.port);
        assert.deepEqual(expectPacket(await client.receive(), 'error'), { kind: 'error', code: 0, message: 'could not read the file' });
      });
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.outcome, 'readError');
      assert.equal(ended.detail, 'EIO: i/o error, read');
    });
  });

  test('close() ends running transfers with an ERROR and frees the port', async () => {
    const fixture = await startServer({ timeoutMs: 5000 });
    fixture.writeRandomFile('f', 10_000);
    await withClient(async (client) => {
      await client.readRequest(fixture.port, 'f');
      const first = await client.receive();
      await fixture.close();
      assert.deepEqual(expectPacket(await client.receive(), 'error'), { kind: 'error', code: 0, message: 'server shutting down' });
      assert.equal((await fixture.waitForEvent('transferEnded')).outcome, 'serverClosed');
      // The transfer socket is gone: an ACK to it gets nothing back.
      await client.send({ kind: 'acknowledgement', block: 1 }, first.port).catch(() => undefined);
      assert.deepEqual(await client.collect(200), []);
    });
    // The request port can be bound again.
    const again = await startServer({ port: fixture.port });
    assert.equal(again.port, fixture.port);
    await again.close();
  });

  test('start() fails when the port is taken; port throws before start(); bad settings throw', async () => {
    assert.throws(
      () => new TftpServer({ log: silentLogger(), resolve: () => Promise.resolve(undefined), retries: -1 }),
      /TftpServer retries is -1, want an integer of at least 0/u,
    );
    const unstarted = new TftpServer({ log: silentLogger(), resolve: () => Promise.resolve(undefined) });
    assert.throws(() => unstarted.port, /TftpServer is not started/u);
    const fixture = await startServer();
    try {
      await assert.rejects(startServer({ port: fixture.port }), { code: 'EADDRINUSE' });
      await assert.rejects(fixture.server.start(), /already started/u);
    } finally {
      await fixture.close();
    }
  });

  test('logs one info line when a transfer starts and one when it ends, with client, file, bytes and duration', async () => {
    await withServer({}, async (fixture) => {
      fixture.writeRandomFile('ipxe.efi', 5000);
      await download(fixture.port, 'ipxe.efi', [
        { name: 'blksize', value: '1468' },
        { name: 'tsize', value: '0' },
      ]);
      await fixture.waitForEvent('transferEnded');
      const info = fixture.lines.filter((line) => (line.level as number) >= 30 && line.file === 'ipxe.efi');
      assert.equal(info.length, 2);
      const [started, ended] = info as [Record<string, unknown>, Record<string, unknown>];
      assert.equal(started.msg, 'tftp transfer started');
      assert.match(String(started.client), /^127\.0\.0\.1:\d+$/u);
      assert.equal(started.size, 5000);
      assert.equal(started.blockSize, 1468);
      assert.equal(ended.msg, 'tftp transfer finished');
      assert.equal(ended.client, started.client);
      assert.equal(ended.outcome, 'complete');
      assert.equal(ended.bytes, 5000);
      assert.equal(typeof ended.durationMs, 'number');
      assert.equal(ended.component, 'tftp');
    });
  });
});
