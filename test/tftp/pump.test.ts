import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { fileFromDisk } from '../../server/tftp/io/file.js';
import { requireTool, runTool, startServer, sha256, type ServerFixture } from '../support/tftp/fixture.js';
import { download, RawClient } from '../support/tftp/raw-client.js';

/**
 * The native transfer socket's pump (server/native/tftp_endpoint.c): at
 * windowsize 1 from a file, the socket answers each in-order ACK with the
 * next block by itself and hands the transfer back to JavaScript for
 * anything else. Every other TFTP test goes through it too; these check
 * that it engages, and each way it hands a transfer back.
 */

const repository = fileURLToPath(new URL('../../../', import.meta.url));
const slowClient = fileURLToPath(new URL('../support/tftp/slow-client-main.js', import.meta.url));

async function withServer(options: Parameters<typeof startServer>[0], body: (fixture: ServerFixture) => Promise<void>): Promise<void> {
  const fixture = await startServer(options);
  try {
    await body(fixture);
  } finally {
    await fixture.close();
  }
}

/**
 * The client below shares the server's event loop and takes a resent block
 * for an error: a timeout long enough that a busy machine (GC, other
 * tests) never makes the server resend.
 */
const patient = { timeoutMs: 5000, minTimeoutMs: 5000 };

describe('TFTP pump', () => {
  test('a windowsize-1 transfer of a file is sent by the pump, block 1 to the last; windowsize 8 is not', async () => {
    await withServer(patient, async (fixture) => {
      const content = fixture.writeRandomFile('f', 1_000_000);
      const result = await download(fixture.port, 'f', [{ name: 'blksize', value: '1468' }]);
      assert.equal(sha256(result.content), sha256(content));
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.outcome, 'complete');
      assert.equal(ended.blocks, 682);
      assert.equal(ended.bytes, 1_000_000);
      assert.equal(ended.pumpedBlocks, 682, 'every block sent by the pump');
      assert.equal(ended.retransmits, 0);

      const windowed = await download(fixture.port, 'f', [
        { name: 'blksize', value: '1468' },
        { name: 'windowsize', value: '8' },
      ]);
      assert.equal(sha256(windowed.content), sha256(content));
      const second = await fixture.waitForEvent('transferEnded', (event) => event.file === 'f' && event !== ended);
      assert.equal(second.outcome, 'complete');
      assert.equal(second.pumpedBlocks, 0, 'windows go through dgram');
      // Windows of 8 from the window buffer's consecutive slots: one sendmsg each (the ring wraps every 45 blocks).
      assert.ok(second.segmentedBlocks > 600, `blocks sent in segmented runs: ${second.segmentedBlocks} of 682`);
    });
  });

  test('block numbers roll over from 65535 to 0 in the pump (75,000 blocks of 8 bytes at windowsize 1)', async () => {
    await withServer(patient, async (fixture) => {
      const content = fixture.writeRandomFile('big', 600_000);
      const result = await download(fixture.port, 'big', [{ name: 'blksize', value: '8' }]);
      assert.equal(sha256(result.content), sha256(content));
      assert.equal(result.blockNumbers.length, 75_001);
      assert.deepEqual(result.blockNumbers.slice(65_533, 65_539), [65_534, 65_535, 0, 1, 2, 3]);
      const ended = await fixture.waitForEvent('transferEnded');
      assert.equal(ended.outcome, 'complete');
      assert.equal(ended.blocks, 75_001);
      assert.equal(ended.bytes, 600_000);
      assert.equal(ended.pumpedBlocks, 75_001);
    });
  });

  test('a duplicate ACK and a silent client hand the transfer back to JavaScript, which gives it back at the next in-order ACK; a stranger gets error 5 while the pump goes on', async () => {
    await withServer({ timeoutMs: 300, minTimeoutMs: 300 }, async (fixture) => {
      const content = fixture.writeRandomFile('f', 100 * 512);
      const client = await RawClient.open();
      const intruder = await RawClient.open();
      try {
        await client.readRequest(fixture.port, 'f');
        const received: Buffer[] = [];
        let port = 0;
        const next = async (want: number): Promise<void> => {
          const packet = await client.receive();
          port = packet.port;
          assert.equal(packet.packet.kind, 'data');
          if (packet.packet.kind !== 'data') return;
          assert.equal(packet.packet.block, want);
          received[want - 1] = Buffer.from(packet.packet.data);
        };
        await next(1);
        for (let block = 1; block < 100; block += 1) {
          if (block === 20) {
            // A repeated ACK of the block before: ignored (no Sorcerer's Apprentice), nothing sent.
            await client.send({ kind: 'acknowledgement', block: 19 }, port);
            assert.deepEqual(await client.collect(100), [], 'a duplicate ACK is not answered');
          }
          if (block === 40) {
            await intruder.send({ kind: 'acknowledgement', block: 40 }, port);
            const refused = await intruder.receive();
            assert.equal(refused.packet.kind, 'error');
            if (refused.packet.kind === 'error') assert.equal(refused.packet.code, 5);
          }
          if (block === 60) {
            // Silent past the timeout: block 60 comes again.
            await client.receive(2000).then((again) => {
              assert.equal(again.packet.kind, 'data');
              if (again.packet.kind === 'data') assert.equal(again.packet.block, 60);
            });
          }
          await client.send({ kind: 'acknowledgement', block }, port);
          await next(block + 1);
        }
        await client.send({ kind: 'acknowledgement', block: 100 }, port);
        await next(101);
        await client.send({ kind: 'acknowledgement', block: 101 }, port);
        assert.equal(sha256(Buffer.concat(received)), sha256(content));
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'complete');
        assert.equal(ended.blocks, 101);
        assert.equal(ended.bytes, 100 * 512);
        assert.equal(ended.retransmits, 1, 'block 60, once');
        assert.equal(ended.duplicateAcks, 1);
        // Every block once from the pump; block 60's resend from JavaScript.
        assert.equal(ended.pumpedBlocks, 101);
      } finally {
        client.close();
        intruder.close();
      }
    });
  });

  test('one transfer pumped, a client in another process that answers at once: the pump polls for the ACKs instead of sleeping, and backs off when a poll misses', async () => {
    requireTool('atftp', 'atftp');
    await withServer(patient, async (fixture) => {
      const content = fixture.writeRandomFile('f', 2_000_000);
      const out = join(fixture.dir, 'out');
      const result = await runTool('atftp', ['--get', '-r', 'f', '-l', out, '--option', 'blksize 1468', '127.0.0.1', String(fixture.port)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(sha256(readFileSync(out)), sha256(content));
      const ended = await fixture.waitForEvent('transferEnded', (event) => event.file === 'f');
      assert.equal(ended.outcome, 'complete');
      assert.equal(ended.blocks, 1363);
      assert.equal(ended.pumpedBlocks, 1363);
      // Whether a poll catches an ACK depends on the client being scheduled
      // within the poll's 50 us (a busy machine may not): that the pump polls is
      // checked here, how often it catches one is for the TFTP benchmark.
      assert.ok(ended.polledAcks + ended.pollMisses > 0, `the pump polled: ${ended.polledAcks} caught, ${ended.pollMisses} missed`);
      // After a miss the next 1, 2, 4 ... 256 blocks are not polled for; a caught ACK starts that over.
      assert.ok(ended.pollMisses <= ended.polledAcks + 9 + Math.ceil(1363 / 257), `misses ${ended.pollMisses}, caught ${ended.polledAcks}`);
    });
  });

  test('a client slower than the poll (each ACK 3 ms late): polling catches next to nothing, and the back-off keeps the polls to a handful', async () => {
    await withServer(patient, async (fixture) => {
      const content = fixture.writeRandomFile('slow', 400 * 1468 + 100);
      const result = await runTool(process.execPath, [slowClient, String(fixture.port), 'slow', '3']);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), { bytes: content.length, sha256: sha256(content) });
      const ended = await fixture.waitForEvent('transferEnded', (event) => event.file === 'slow');
      assert.equal(ended.outcome, 'complete');
      assert.equal(ended.pumpedBlocks, 401);
      // A poll catches an ACK only when the server itself was held up for
      // 3 ms just before it (a busy machine): rare, never one per block.
      assert.ok(ended.polledAcks <= 3, `caught: ${ended.polledAcks}`);
      // Polls at blocks 2, 4, 7, 12, 21, 38, 71, 136, 265 (then every 257th): each one a 50 us wait, not one per block.
      // A caught ACK starts the back-off over.
      const handful = 9 + Math.ceil(401 / 257);
      assert.ok(ended.pollMisses >= 1 && ended.pollMisses <= handful * (ended.polledAcks + 1), `misses: ${ended.pollMisses}, caught: ${ended.polledAcks}`);
    });
  });

  test('two transfers pumped at once: neither polls, since each has the other to wait for', async () => {
    requireTool('atftp', 'atftp');
    await withServer(patient, async (fixture) => {
      const slowContent = fixture.writeRandomFile('slow', 400 * 1468 + 100);
      const fastContent = fixture.writeRandomFile('fast', 1_000_000);
      // The slow transfer (10 ms per block: 4 s, ample on a busy machine) is pumped throughout the fast one.
      const slow = runTool(process.execPath, [slowClient, String(fixture.port), 'slow', '10']);
      await fixture.waitForEvent('transferStarted', (event) => event.file === 'slow');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const out = join(fixture.dir, 'out');
      const fast = await runTool('atftp', ['--get', '-r', 'fast', '-l', out, '--option', 'blksize 1468', '127.0.0.1', String(fixture.port)]);
      assert.equal(fast.code, 0, fast.stderr);
      assert.equal(sha256(readFileSync(out)), sha256(fastContent));
      const fastEnded = await fixture.waitForEvent('transferEnded', (event) => event.file === 'fast');
      assert.ok(!fixture.events.some((event) => event.kind === 'transferEnded' && event.file === 'slow'), 'the slow transfer outlasted the fast one');
      assert.equal(fastEnded.pumpedBlocks, 682);
      assert.equal(fastEnded.polledAcks, 0);
      assert.equal(fastEnded.pollMisses, 0);
      const slowResult = await slow;
      assert.equal(slowResult.code, 0, slowResult.stderr);
      assert.deepEqual(JSON.parse(slowResult.stdout), { bytes: slowContent.length, sha256: sha256(slowContent) });
    });
  });

  test('a file not in the page cache: the pump hands back rather than wait for the disk, and JavaScript reads it on the thread pool', async () => {
    // In the repository's folder, on the machine's disk: tmpfs keeps every
    // page in memory, so only a disk-backed file can be cold.
    const dir = mkdtempSync(join(repository, '.pump-test-'));
    try {
      const path = join(dir, 'cold');
      const content = randomBytes(4 * 1024 * 1024);
      writeFileSync(path, content);
      // Written back, then dropped from the page cache (POSIX_FADV_DONTNEED),
      // until fincore finds none of it cached: the kernel skips pages still
      // under writeback, so one try is not always enough.
      const cachedBytes = () => Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
      const dropFromCache = async () => {
        for (let tries = 0; tries < 20 && (tries === 0 || cachedBytes() > 0); tries++) {
          execFileSync('dd', [`if=${path}`, `of=${path}`, 'oflag=nocache', 'conv=notrunc,fdatasync', 'count=0', 'status=none']);
          execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none']);
          if (tries > 0) await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(cachedBytes(), 0, `${path} is still in the page cache after 20 tries to drop it`);
      };
      await dropFromCache();
      // Dropped again halfway, while the server waits for block 1500's ACK:
      // on a fast disk the kernel's read-ahead, started by the first reads,
      // can stay ahead of the pump for the rest of the file, but pages
      // dropped under a pump already past its start are cold when it reaches
      // them, however fast the disk.
      const dropAt = 1500;
      await withServer(patient, async (fixture) => {
        fixture.memory.set('cold', await fileFromDisk(path));
        const result = await download(fixture.port, 'cold', [{ name: 'blksize', value: '1468' }], 'octet', async (block) => {
          if (block === dropAt) await dropFromCache();
        });
        assert.equal(sha256(result.content), sha256(content));
        const ended = await fixture.waitForEvent('transferEnded');
        assert.equal(ended.outcome, 'complete');
        assert.equal(ended.blocks, 2858);
        assert.equal(ended.retransmits, 0);
        assert.ok(
          ended.pumpedBlocks > 0 && ended.pumpedBlocks < ended.blocks,
          `some blocks read by JavaScript, the rest pumped: ${ended.pumpedBlocks} of ${ended.blocks}`,
        );
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
