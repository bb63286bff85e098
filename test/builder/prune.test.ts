import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { switchCurrent } from '../../server/assets/builds.js';
import { writeTestBuild } from '../support/assets.js';
import { pruneBuilds } from '../../builder/prune.js';
import { pinnedBuilds } from '../../server/profiles/pinned-builds.js';
import { buildsInUse, readRolloutBuilds, ROLLOUT_BUILDS_FILE, rolloutBuilds, writeRolloutBuilds } from '../../server/rollouts/in-use.js';
import { startRollout } from '../../server/rollouts/rollout.js';
import { pino } from 'pino';
import { AssetStore } from '../../server/assets/builds.js';
import { createHttpApp } from '../../server/http/app.js';
import { silentLogger } from '../../server/log.js';
import { fileFromDisk } from '../../server/tftp/io/file.js';
import { TftpServer } from '../../server/tftp/server.js';
import { UdpRelay } from '../support/tftp/relay.js';

const run = promisify(execFile);
let root: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'rackboot-prune-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A published build folder as `rackboot build` leaves it: parts plus manifest.json. */
async function writeBuild(out: string, id: string, created: string, parts: Record<string, Buffer>): Promise<void> {
  await writeTestBuild(out, id, parts, created);
}

test('--keep N keeps the N newest builds and always the current one; unpublished folders are left alone', async () => {
  const out = path.join(root, 'keep');
  for (const [id, created] of [
    ['b1', '2026-11-20T10:00:00Z'],
    ['b2', '2026-11-21T10:00:00Z'],
    ['b3', '2026-11-22T10:00:00Z'],
    ['b4', '2026-11-23T10:00:00Z'],
  ] as const) {
    await writeBuild(out, id, created, { vmlinuz: Buffer.from(id) });
  }
  await mkdir(path.join(out, 'builds', '.partial-abc'));
  await mkdir(path.join(out, 'builds', 'not-a-build'));
  // The current build is the oldest one (an admin switched back to it).
  await symlink(path.join('builds', 'b1'), path.join(out, 'current'));

  const result = await pruneBuilds(out, 2, silentLogger());
  assert.deepEqual(result.removed.sort(), ['b2']);
  assert.deepEqual(result.kept, ['b4', 'b3', 'b1']);
  assert.deepEqual((await readdir(path.join(out, 'builds'))).sort(), ['.partial-abc', 'b1', 'b3', 'b4', 'not-a-build']);

  await switchCurrent(out, 'b4');
  const again = await pruneBuilds(out, 1, silentLogger());
  assert.deepEqual(again.removed.sort(), ['b1', 'b3']);
  assert.deepEqual((await readdir(path.join(out, 'builds'))).sort(), ['.partial-abc', 'b4', 'not-a-build']);
  await assert.rejects(pruneBuilds(out, 0, silentLogger()), /--keep 0: want a whole number of builds, at least 1/);
});

test("--keep N keeps every channel's current build too", async () => {
  const out = path.join(root, 'channels');
  for (const [id, created] of [
    ['c1', '2026-11-20T10:00:00Z'],
    ['c2', '2026-11-21T10:00:00Z'],
    ['c3', '2026-11-22T10:00:00Z'],
    ['c4', '2026-11-23T10:00:00Z'],
  ] as const) {
    await writeBuild(out, id, created, { vmlinuz: Buffer.from(id) });
  }
  await switchCurrent(out, 'c3');
  await switchCurrent(out, 'c1', 'stable');
  await switchCurrent(out, 'c4', 'testing');
  const result = await pruneBuilds(out, 1, silentLogger());
  assert.deepEqual(result.removed, ['c2']);
  assert.deepEqual(result.kept, ['c4', 'c3', 'c1']);
  assert.deepEqual((await readdir(path.join(out, 'builds'))).sort(), ['c1', 'c3', 'c4']);
});

test("downloads that started before a switch and a prune finish with the old build's bytes (HTTP and TFTP)", async () => {
  const out = path.join(root, 'inflight');
  const old = randomBytes(24 * 1024 * 1024);
  const fresh = randomBytes(24 * 1024 * 1024);
  const oldIpxe = randomBytes(2 * 1024 * 1024);
  await writeBuild(out, 'old', '2026-11-20T10:00:00Z', { 'initrd.gz': old, 'ipxe.efi': oldIpxe });
  await writeBuild(out, 'new', '2026-11-21T10:00:00Z', { 'initrd.gz': fresh, 'ipxe.efi': randomBytes(2 * 1024 * 1024) });
  await switchCurrent(out, 'old');
  const assets = new AssetStore(out);
  const log = silentLogger();

  const app = createHttpApp({ assets, lookupProfile: () => undefined, profileProblems: () => [], endpoints: { address: '127.0.0.1', httpPort: 0 }, log });
  const http: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  const tftp = new TftpServer({
    address: '127.0.0.1',
    port: 0,
    log,
    resolve: async (name) => {
      const file = await assets.file(name);
      return file ? fileFromDisk(file.path) : undefined;
    },
  });
  await tftp.start();
  // TFTP has no rate limit in curl: a relay that delays each packet 2 ms
  // each way makes the 1,429 lock-step blocks of ipxe.efi take several seconds.
  const relay = await UdpRelay.start({ serverAddress: '127.0.0.1', serverPort: tftp.port, listenAddress: '127.0.0.1', lossRate: 0, delayMs: 2 });
  try {
    const port = (http.address() as AddressInfo).port;
    const work = path.join(root, 'downloads');
    await mkdir(work);
    // Slow clients: each needs about 4 s for 24 MiB, so both are mid-way through at the switch.
    const started = (args: string[]) =>
      new Promise<{ code: number | null; endedAt: number }>((resolve, reject) => {
        const child = spawn('curl', ['--silent', '--show-error', '--fail', '--limit-rate', '6M', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, endedAt: Date.now() }));
      });
    const httpDone = started(['-o', path.join(work, 'http'), `http://127.0.0.1:${port}/initrd.gz`]);
    const tftpDone = started(['--tftp-blksize', '1468', '-o', path.join(work, 'tftp'), `tftp://127.0.0.1:${relay.port}/ipxe.efi`]);
    await new Promise((resolve) => setTimeout(resolve, 800));
    await switchCurrent(out, 'new');
    const pruned = await pruneBuilds(out, 1, log);
    assert.deepEqual(pruned.removed, ['old']);
    assert.deepEqual(await readdir(path.join(out, 'builds')), ['new']);
    const prunedAt = Date.now();

    const [httpResult, tftpResult] = await Promise.all([httpDone, tftpDone]);
    assert.equal(httpResult.code, 0);
    assert.equal(tftpResult.code, 0);
    // Both were still running when their build was switched away and deleted.
    assert.ok(httpResult.endedAt > prunedAt + 500, `the HTTP download ended ${prunedAt - httpResult.endedAt} ms before the prune`);
    assert.ok(tftpResult.endedAt > prunedAt + 500, `the TFTP download ended ${prunedAt - tftpResult.endedAt} ms before the prune`);
    assert.equal(sha256(await readFile(path.join(work, 'http'))), sha256(old));
    assert.equal(sha256(await readFile(path.join(work, 'tftp'))), sha256(oldIpxe));
    // A download that starts now gets the new build.
    const { stdout } = await run('curl', ['--silent', '--fail', `http://127.0.0.1:${port}/initrd.gz`], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    assert.equal(sha256(stdout), sha256(fresh));
  } finally {
    relay.close();
    await tftp.close();
    await new Promise((resolve) => http.close(resolve));
  }
});

test('--keep N also keeps every build a profile or group file pins with boot.build', async () => {
  const out = path.join(root, 'pinned');
  const profiles = path.join(root, 'pinned-profiles');
  const ids = ['20261120T100000.000Z-0000000a', '20261121T100000.000Z-0000000b', '20261122T100000.000Z-0000000c', '20261123T100000.000Z-0000000d'];
  for (const [index, id] of ids.entries()) await writeBuild(out, id, `2026-11-2${index}T10:00:00Z`, { vmlinuz: Buffer.from(id) });
  await switchCurrent(out, ids[3]!);
  await mkdir(profiles);
  await writeFile(path.join(profiles, 'node01.yaml'), `mac: 52:54:00:00:00:01\nhostname: node01\nboot:\n  build: ${ids[0]}\n`);
  await writeFile(
    path.join(profiles, 'rack3.yaml'),
    `boot:\n  build: "${ids[1]}"\nnetwork:\n  mode: static\nhosts:\n  - {mac: 52:54:00:03:00:01, hostname: r3n01, address: 198.18.3.11/24}\n`,
  );
  await writeFile(path.join(profiles, 'broken.yaml'), `mac: 52:54:00:00:00:09\nhostname: node_9\n`);
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const pinned = await pinnedBuilds(profiles, log);
  assert.deepEqual([...pinned].sort(), [ids[0], ids[1]]);
  assert.ok(
    lines.some((line) => line.includes('broken.yaml') && line.includes('not read for boot.build pins')),
    `a file that does not parse is named: ${lines.join('')}`,
  );
  const result = await pruneBuilds(out, 1, silentLogger(), pinned);
  assert.deepEqual(result.removed, [ids[2]]);
  assert.deepEqual(result.kept, [ids[3], ids[1], ids[0]]);
  // A missing profiles folder keeps nothing extra, and says so.
  lines.length = 0;
  assert.deepEqual([...(await pinnedBuilds(path.join(root, 'no-such-folder'), log))], []);
  assert.ok(lines.some((line) => line.includes('cannot read the profiles folder')));
});

test("--keep N also keeps both builds of every active rollout, as the server's rollout-builds.json names them; a damaged file is an error naming it", async () => {
  const out = path.join(root, 'rolled');
  const state = path.join(root, 'rolled-state');
  await mkdir(state);
  const ids = ['20261120T100000.000Z-0000001a', '20261121T100000.000Z-0000001b', '20261122T100000.000Z-0000001c', '20261123T100000.000Z-0000001d'];
  for (const [index, id] of ids.entries()) await writeBuild(out, id, `2026-11-2${index}T10:00:00Z`, { vmlinuz: Buffer.from(id) });
  await switchCurrent(out, ids[3]!);
  assert.deepEqual(await readRolloutBuilds(state), { active: [] }, 'no file: no server ran rollouts from this state folder');

  const rollout = (channel: string, build: string, previous: string) => {
    const started = startRollout({ channel, build, previous, members: ['52:54:00:00:00:01'], first: { count: 1 }, deadlineMs: 60_000, now: 0 });
    assert.ok(started.ok);
    return started.rollout;
  };
  const done = { ...rollout('testing', ids[2]!, ids[3]!), state: 'done' as const };
  await writeRolloutBuilds(state, rolloutBuilds([rollout('stable', ids[1]!, ids[0]!), done]));
  const read = await readRolloutBuilds(state);
  assert.deepEqual(read.active, [{ channel: 'stable', build: ids[1], previous: ids[0], state: 'running' }], 'a finished rollout uses no build');
  const result = await pruneBuilds(out, 1, silentLogger(), buildsInUse(read));
  assert.deepEqual(result.removed, [ids[2]]);
  assert.deepEqual(result.kept.sort(), [ids[0], ids[1], ids[3]]);

  await writeFile(path.join(state, ROLLOUT_BUILDS_FILE), '{"active": [{"channel": 1}]}\n');
  await assert.rejects(readRolloutBuilds(state), new RegExp(`${ROLLOUT_BUILDS_FILE}: want \\{"active"`));
});
