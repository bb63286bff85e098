/**
 * A stranger on the boot network against the TFTP server, on real links:
 * the server in one namespace, the stranger (one MAC, 16 addresses on its
 * interface) and a real client (atftp) in two others. The stranger sends 8
 * silent read requests from each address: counted per MAC, it gets 8
 * transfers in all, not every slot; they end within a few seconds, not the
 * ~30 s of the full retransmission schedule; and the real client fetches
 * its file meanwhile. Needs root and atftp; fails (never skips) without them.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { Netns, assertRoot } from '../support/netns.js';
import { collect } from '../support/run.js';
import { requireTool, sha256 } from '../support/tftp/fixture.js';

const serveFolder = fileURLToPath(new URL('../support/tftp/serve-folder.js', import.meta.url));
const silentRequests = fileURLToPath(new URL('../support/tftp/silent-requests-main.js', import.meta.url));
const strangerMac = '02:00:00:00:0b:01';
const strangerAddresses = Array.from({ length: 16 }, (_, index) => `198.18.0.${10 + index}`);

let serverNs: Netns;
let strangerNs: Netns;
let clientNs: Netns;
let server: ChildProcess | undefined;
let port: number;
let root: string;
let payloadHash: string;

before(async () => {
  assertRoot();
  requireTool('atftp', 'atftp');
  root = mkdtempSync(join(tmpdir(), 'rackboot-tftp-stranger-'));
  // About the size of undionly.kpxe.
  const payload = randomBytes(70 * 1024);
  writeFileSync(join(root, 'undionly.kpxe'), payload);
  payloadHash = sha256(payload);
  serverNs = Netns.create('rbtss');
  strangerNs = Netns.create('rbtsx');
  clientNs = Netns.create('rbtsc');
  serverNs.linkTo(strangerNs, { device: 'ts0', cidr: '198.18.0.1/24' }, { device: 'tx0', cidr: `${strangerAddresses[0]}/24`, mac: strangerMac });
  for (const address of strangerAddresses.slice(1)) strangerNs.ip('addr', 'add', `${address}/24`, 'dev', 'tx0');
  serverNs.linkTo(clientNs, { device: 'ts1', cidr: '198.18.1.1/24' }, { device: 'tc0', cidr: '198.18.1.2/24' });
  server = serverNs.spawn(process.execPath, [serveFolder, root, '0.0.0.0', '0', '64', '8', '198.18.0.0/24,198.18.1.0/24'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  port = await new Promise<number>((resolve, reject) => {
    server!.stdout!.once('data', (chunk: Buffer) => resolve((JSON.parse(chunk.toString().split('\n')[0]!) as { port: number }).port));
    server!.once('exit', (code) => reject(new Error(`serve-folder exited with ${code}`)));
  });
});

after(() => {
  server?.kill('SIGKILL');
  for (const ns of [clientNs, strangerNs, serverNs]) ns?.delete();
  if (root) rmSync(root, { recursive: true, force: true });
});

test('one MAC with 16 addresses and 8 silent requests each gets 8 transfers, which end within seconds; a real client fetches its file meanwhile', async (t) => {
  const config = { server: '198.18.0.1', port, file: 'undionly.kpxe', addresses: strangerAddresses, perAddress: 8, answerWaitMs: 1500, holdMs: 7000 };
  const stranger = collect(strangerNs.spawn(process.execPath, [silentRequests, JSON.stringify(config)]), { timeoutMs: 30_000, what: 'silent requests' });
  await new Promise((resolve) => setTimeout(resolve, 1000));

  // While the stranger's transfers are running: a real client, from its own machine.
  const out = join(root, 'fetched');
  const fetched = await collect(clientNs.spawn('atftp', ['--get', '-r', 'undionly.kpxe', '-l', out, '198.18.1.1', String(port)]), {
    timeoutMs: 30_000,
    what: 'atftp',
  });
  assert.equal(fetched.code, 0, `atftp failed while the stranger held its transfers: ${fetched.stderr}${fetched.stdout}`);
  assert.equal(sha256(readFileSync(out)), payloadHash);

  const result = await stranger;
  assert.equal(result.code, 0, result.stderr);
  const [admission, ending] = result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line)) as [
    { started: number; unanswered: number; refused: Record<string, number> },
    { ended: Array<{ afterMs: number | null; message: string | null }> },
  ];
  t.diagnostic(`stranger: ${JSON.stringify(admission)}`);
  t.diagnostic(`silent transfers ended after ${ending.ended.map((e) => e.afterMs).join(', ')} ms`);
  assert.equal(admission.started, 8, 'the per-client cap counts per MAC');
  assert.equal(admission.unanswered, 0);
  assert.deepEqual(admission.refused, { [`error: too many transfers from ${strangerMac}: 8 in progress, try again`]: 120 });
  // Given up after the server's silent-transfer timeout (4 s), not the full schedule.
  assert.equal(ending.ended.length, 8);
  for (const ended of ending.ended) {
    assert.equal(ended.message, 'timed out');
    assert.ok(ended.afterMs !== null && ended.afterMs < 8000, `a silent transfer lasted ${ended.afterMs} ms`);
  }
});
