import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireTool, runTool, sha256, startServer, type ServerFixture } from '../support/tftp/fixture.js';
import { UdpRelay } from '../support/tftp/relay.js';

/**
 * Real clients through a lossy, slow link: a UDP relay of our own (this
 * kernel has no netem qdisc) drops 1% of datagrams and delays the rest by
 * 10 ms, in each direction, following the server to each transfer's port.
 * Every transfer must complete with the right SHA-256.
 *
 * A 20 ms round trip bounds a lock-step client (window 1) to one block per
 * 20 ms: 512-byte blocks make 25 KB/s. File sizes are chosen per client so
 * the whole suite stays near a minute: the clients that move one block at
 * a time get smaller files than atftp with windows.
 *
 * The server's retransmission timeout is 200 ms, ten round trips of this
 * link, so that each lost packet costs a fraction of a second rather than
 * the default second; curl asks for its own timeout (RFC 2349) and gets it.
 * atftp with windows (Debian's RFC 7440 patch) answers a run of old blocks
 * with one ACK, then stays silent until its own 5 s timer fires; when that
 * one ACK is lost, only the server's backoff (200, 400, ... 6400 ms) makes
 * the pause that lets it speak again. Seed 4 loses exactly that ACK in the
 * windowsize 8 run.
 */

const lossRate = 0.01;
const delayMs = 10;

describe('real TFTP clients through a relay that drops 1% and delays 10 ms each way', () => {
  let fixture: ServerFixture;
  let relay: UdpRelay;
  let out: string;
  const hashes = new Map<string, string>();
  const files: Array<[string, number]> = [
    ['small.bin', 192 * 1024 + 17],
    ['medium.bin', 1024 * 1024 + 5],
    ['large.bin', 4 * 1024 * 1024 + 3],
  ];

  before(async () => {
    fixture = await startServer({ timeoutMs: 200, retries: 10 });
    for (const [name, size] of files) hashes.set(name, sha256(fixture.writeRandomFile(name, size)));
    relay = await UdpRelay.start({
      serverAddress: '127.0.0.1',
      serverPort: fixture.port,
      listenAddress: '127.0.0.1',
      lossRate,
      delayMs,
      seed: 4,
      alsoDropNth: 10,
    });
    out = mkdtempSync(join(tmpdir(), 'rackboot-tftp-relay-'));
  });
  after(async () => {
    relay.close();
    await fixture.close();
    rmSync(out, { recursive: true, force: true });
  });

  let outputs = 0;
  const outputPath = (): string => join(out, `out-${(outputs += 1)}`);

  /** Check the copy, and that the link did lose packets along the way. */
  function assertReceived(path: string, file: string, droppedBefore: number): void {
    assert.equal(sha256(readFileSync(path)), hashes.get(file), `${file} arrived intact`);
    assert.ok(relay.counters.dropped > droppedBefore, 'the relay dropped packets during the transfer');
  }

  for (const windowSize of [1, 8, 64]) {
    const file = windowSize === 1 ? 'medium.bin' : 'large.bin';
    test(`atftp blksize 1468 windowsize ${windowSize} (${file})`, async (t) => {
      requireTool('atftp', 'atftp');
      const path = outputPath();
      const dropped = relay.counters.dropped;
      const options = ['blksize 1468', `windowsize ${windowSize}`];
      const args = ['--get', '-r', file, '-l', path, ...options.flatMap((option) => ['--option', option]), '127.0.0.1', String(relay.port)];
      const result = await runTool('atftp', args, 180_000);
      assert.equal(result.code, 0, `atftp ${args.join(' ')} failed: ${result.stderr}${result.stdout}`);
      assertReceived(path, file, dropped);
      t.diagnostic(`${Math.round(result.durationMs)} ms, ${relay.counters.dropped - dropped} datagrams dropped`);
    });
  }

  test('tftp-hpa, binary mode, 512-byte blocks (small.bin)', async (t) => {
    requireTool('tftp', 'tftp-hpa');
    const path = outputPath();
    const dropped = relay.counters.dropped;
    // tftp-hpa exits 0 even when the transfer fails; the hash is what counts.
    const result = await runTool('tftp', ['127.0.0.1', String(relay.port), '-m', 'binary', '-c', 'get', 'small.bin', path], 180_000);
    assertReceived(path, 'small.bin', dropped);
    t.diagnostic(`${Math.round(result.durationMs)} ms, ${relay.counters.dropped - dropped} datagrams dropped`);
  });

  test('curl tftp:// with its own options: tsize, timeout, blksize 1468 (small.bin)', async (t) => {
    requireTool('curl', 'curl');
    const path = outputPath();
    const dropped = relay.counters.dropped;
    const result = await runTool('curl', ['-sS', '--tftp-blksize', '1468', '-o', path, `tftp://127.0.0.1:${relay.port}/small.bin`], 180_000);
    assert.equal(result.code, 0, result.stderr);
    assertReceived(path, 'small.bin', dropped);
    t.diagnostic(`${Math.round(result.durationMs)} ms, ${relay.counters.dropped - dropped} datagrams dropped`);
  });

  for (const blockArgs of [[], ['-b', '1468']]) {
    test(`busybox tftp ${blockArgs.join(' ') || '(512-byte blocks)'} (small.bin)`, async (t) => {
      requireTool('busybox', 'busybox');
      const path = outputPath();
      const dropped = relay.counters.dropped;
      const args = ['tftp', '-g', ...blockArgs, '-r', 'small.bin', '-l', path, '127.0.0.1', String(relay.port)];
      const result = await runTool('busybox', args, 180_000);
      assert.equal(result.code, 0, result.stderr);
      assertReceived(path, 'small.bin', dropped);
      t.diagnostic(`${Math.round(result.durationMs)} ms, ${relay.counters.dropped - dropped} datagrams dropped`);
    });
  }

  test('the relay followed the server to a new port for every transfer', () => {
    const started = fixture.events.filter((event) => event.kind === 'transferStarted').length;
    assert.ok(relay.counters.serverPortsFollowed >= started, `${relay.counters.serverPortsFollowed} ports followed, ${started} transfers`);
    const ended = fixture.events.filter((event) => event.kind === 'transferEnded');
    assert.ok(
      ended.every((event) => event.kind === 'transferEnded' && event.outcome === 'complete'),
      JSON.stringify(ended),
    );
  });
});
