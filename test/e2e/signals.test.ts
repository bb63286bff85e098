import assert from 'node:assert/strict';
import { mkdtemp, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { addClient, httpPort, serverAddress, startRack } from '../support/boot.js';
import { ensureTestBuild } from '../support/build.js';
import { collect } from '../support/run.js';

/**
 * `rackboot serve` and its signals, on a test wire with a client namespace:
 * SIGHUP reads the profiles and the build again and goes on serving;
 * SIGTERM takes no new work, ends live status pages at once, lets an HTTP
 * download and a TFTP transfer in flight finish, and exits 0; with a drain
 * time too short for a download, it cuts it and says so. Needs root; fails
 * (never skips) without it.
 */

const base = `http://${serverAddress}:${httpPort}`;

async function waitUntil(check: () => boolean, ms: number, what: string): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

test(
  'SIGHUP reloads profiles and the build; SIGTERM drains: the live page ends at once, the download and the TFTP transfer in flight finish, no new connection is taken, exit 0',
  { timeout: 120_000 },
  async () => {
    const assets = await ensureTestBuild();
    const build = path.basename(await readlink(path.join(assets, 'current')));
    const settingsDir = await mkdtemp(path.join(tmpdir(), 'rackboot-signals-'));
    const settings = path.join(settingsDir, 'rackboot.yaml');
    await writeFile(settings, 'lease-time: 3600\n');
    const rack = await startRack({ 'default.yaml': 'hostname: node\n' }, { bridge: true, serveArgs: ['--drain-seconds', '20', '--config', settings] });
    try {
      const client = await addClient(rack, '02:00:00:00:5a:01');
      client.setAddress('198.18.0.60/24');

      // SIGHUP: still running, says what it serves now, and which settings changed in the file.
      await writeFile(settings, 'lease-time: 7200\nkeep-days: 10\n');
      process.kill(rack.pid, 'SIGHUP');
      await waitUntil(() => rack.events().some((event) => event.msg === 'reloaded: profiles and the current build read again'), 10_000, 'the reload line');
      const reloaded = rack.events().find((event) => event.msg === 'reloaded: profiles and the current build read again')!;
      assert.equal(reloaded.build, build);
      assert.equal(reloaded.profiles, 1);
      const changed = rack.events().find((event) => event.msg === 'settings changed in the file or environment: they take effect when serve restarts');
      assert.deepEqual(changed?.changed, ['keep-days', 'lease-time']);
      // A broken file: said, and the server goes on.
      await writeFile(settings, 'lease-time: soon\n');
      process.kill(rack.pid, 'SIGHUP');
      await waitUntil(
        () => rack.events().some((event) => event.msg === 'the settings file has problems; still serving with the settings it started with'),
        10_000,
        'the problem line',
      );
      const problem = rack.events().find((event) => event.msg === 'the settings file has problems; still serving with the settings it started with')!;
      assert.deepEqual(problem.problems, [`${settings}:1:13: lease-time: want a number, not "soon"`]);
      assert.equal(rack.server.exitCode, undefined, 'SIGHUP did not stop the server');

      // In flight: a live status page, a slow HTTP download (the 22 MB image at 6 MB/s: more than
      // the socket buffers hold, so the server is still sending) and a slow TFTP transfer.
      const start = (args: string[]) => collect(client.ns.spawn('curl', ['-sS', ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
      const page = start(['-N', `${base}/status/stream`]);
      const download = start(['--limit-rate', '6m', '-o', '/dev/null', '-w', '%{http_code} %{size_download}', `${base}/builds/${build}/rackboot.iso`]);
      const tftp = start(['--limit-rate', '20k', '-o', '/dev/null', '-w', '%{size_download}', `tftp://${serverAddress}/undionly.kpxe`]);
      await waitUntil(() => rack.events().some((event) => event.msg === 'tftp transfer started'), 10_000, 'the TFTP transfer to start');
      await delay(1000);

      const signalled = Date.now();
      process.kill(rack.pid, 'SIGTERM');
      const pageEnded = await page;
      const pageSeconds = (Date.now() - signalled) / 1000;
      // Well before the drain time (20 s): the live page does not wait for the downloads.
      assert.ok(pageSeconds < 10, `the live page ended ${pageSeconds.toFixed(1)} s after SIGTERM`);
      assert.match(pageEnded.stdout, /event: state/);
      // No new work: the HTTP port takes no connection now.
      const late = await start(['--max-time', '5', `${base}/status`]);
      assert.notEqual(late.code, 0, 'a new connection after SIGTERM was refused');

      const got = await download;
      assert.equal(got.code, 0, got.stderr);
      const [status, bytes] = got.stdout.split(' ');
      assert.equal(status, '200');
      assert.equal(Number(bytes), (await stat(path.join(assets, 'current', 'rackboot.iso'))).size, 'the whole download');
      const fetched = await tftp;
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.equal(Number(fetched.stdout), (await stat(path.join(assets, 'current', 'undionly.kpxe'))).size, 'the whole TFTP transfer');

      await waitUntil(() => rack.server.exitCode !== undefined, 25_000, 'the server to exit');
      assert.equal(rack.server.exitCode, 0);
      assert.ok(rack.events().some((event) => event.msg === 'stopping: nothing left in flight'));
      process.stdout.write(
        `# SIGTERM: live page closed after ${pageSeconds.toFixed(2)} s, the server exited after ${((Date.now() - signalled) / 1000).toFixed(1)} s with the download and the transfer complete\n`,
      );
    } finally {
      await rack.close();
      await rm(settingsDir, { recursive: true, force: true });
    }
  },
);

test(
  'SIGTERM with a drain time shorter than a download: the download is cut at the drain time, the log says what was cut, exit 0',
  { timeout: 120_000 },
  async () => {
    const assets = await ensureTestBuild();
    const build = path.basename(await readlink(path.join(assets, 'current')));
    const rack = await startRack({ 'default.yaml': 'hostname: node\n' }, { bridge: true, serveArgs: ['--drain-seconds', '1'] });
    try {
      const client = await addClient(rack, '02:00:00:00:5a:02');
      client.setAddress('198.18.0.61/24');
      // A slow reader's window stays small: where tcp_rmem lets a receive
      // buffer grow to 32 MB, the whole image would sit in it within a second
      // and nothing would be in flight at SIGTERM.
      client.ns.exec('sysctl', ['-q', '-w', 'net.ipv4.tcp_rmem=4096 65536 262144']);
      const download = collect(
        client.ns.spawn('curl', ['-sS', '--limit-rate', '1m', '-o', '/dev/null', `${base}/builds/${build}/rackboot.iso`], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      await delay(1500);
      const signalled = Date.now();
      process.kill(rack.pid, 'SIGTERM');
      await waitUntil(() => rack.server.exitCode !== undefined, 15_000, 'the server to exit');
      const seconds = (Date.now() - signalled) / 1000;
      assert.equal(rack.server.exitCode, 0);
      assert.ok(seconds >= 0.9, `exited after ${seconds.toFixed(2)} s, before the drain time`);
      const cut = rack.events().find((event) => event.msg === 'stopping: cut what had not finished after the drain time');
      assert.ok(cut, 'the log says what was cut');
      assert.equal(cut.httpConnections, 1);
      const got = await download;
      assert.notEqual(got.code, 0, 'the download was cut short');
    } finally {
      await rack.close();
    }
  },
);
