import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runSwarm } from '../support/tftp/swarm.js';

/**
 * Memory stays bounded with many large transfers: 200 reads of a 64 MB file
 * at once keep the server process under 200 MB resident. The server runs
 * in a child process of its own (serve-folder.js, TftpServer and
 * fileFromDisk as `rackboot serve` uses them) so its figure is its own; the
 * clients run here, one UDP socket each, and check every block.
 *
 * Block size 1468 with windows of 64, as PXE firmware and iPXE ask (1468
 * fits an Ethernet frame). Per transfer the server holds at most one window
 * of blocks (64 x 1468 = 94 KB) plus the file stream's 64 KiB read buffer.
 * The worst case a client can ask for, blksize 65464 with windowsize 64, is
 * 4 MB per transfer; 200 of those would need 800 MB, so that bound holds for
 * the block sizes firmware uses, not for every option a client can send.
 *
 * 200 x 64 MB is 12.8 GB, minutes of loopback traffic on two cores; the
 * transfers run together for 20 s (each well into its file, so a server
 * that read whole files would already show it) and are then ended by the
 * clients with an ERROR, which also checks the server lets go of them.
 */

const serverScript = fileURLToPath(new URL('../support/tftp/serve-folder.js', import.meta.url));
const transfers = 200;
const limitBytes = 200 * 1024 * 1024;

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'mu').exec(status);
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

test('200 concurrent transfers of a 64 MB file keep the server under 200 MB resident', { timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-tftp-memory-'));
  const content = randomBytes(64 * 1024 * 1024);
  writeFileSync(join(dir, 'big.bin'), content);
  let server: ChildProcess | undefined;
  try {
    server = spawn(process.execPath, [serverScript, dir, '127.0.0.1', '0', String(transfers), String(transfers)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = server.pid!;
    const [line] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
    const { port } = JSON.parse(line) as { port: number };
    const idle = statusField(pid, 'VmRSS');

    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, statusField(pid, 'VmRSS'));
    }, 200);
    const result = await runSwarm({
      address: '127.0.0.1',
      port,
      file: 'big.bin',
      expected: content,
      transfers,
      blockSize: 1468,
      windowSize: 64,
      deadlineMs: 20_000,
    }).finally(() => clearInterval(sampler));
    // The server has ended every transfer once their sockets are gone; give it a moment.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const highWater = statusField(pid, 'VmHWM');
    const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);
    t.diagnostic(
      `server resident: idle ${mb(idle)} MB, peak sampled ${mb(peakRss)} MB, VmHWM ${mb(highWater)} MB; ` +
        `${result.peakRunning} transfers at once, ${mb(result.bytes)} MB delivered in ${Math.round(result.durationMs)} ms ` +
        `(${result.completed} complete, ${result.aborted} ended at the deadline)`,
    );
    assert.deepEqual(result.failed, []);
    assert.equal(result.peakRunning, transfers, 'all 200 ran at the same time');
    assert.ok(result.bytes / transfers > 4 * 1468 * 64, 'each transfer got well into the file');
    assert.ok(highWater < limitBytes, `server VmHWM ${mb(highWater)} MB, limit ${mb(limitBytes)} MB`);
  } finally {
    if (server !== undefined && server.exitCode === null) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
