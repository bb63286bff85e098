/**
 * `rackboot serve` without root after start, both ways in: started as root
 * with --user, and started as the user itself with ambient capabilities (as
 * systemd's AmbientCapabilities= does, here with setpriv). The real CLI on
 * the privileged ports 67, 69 and 80, in a namespace, with a client
 * namespace on a veth pair; what the kernel holds is read from /proc, and
 * DHCP (to a client with no address yet), TFTP and HTTP must still answer
 * once nothing is held. Needs root, setpriv, unshare and busybox udhcpc;
 * fails (never skips) without them.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ConsoleWatcher } from '../server/demo/qemu.js';
import { parseThreadStatus, readThreadCredentials, type ThreadCredentials } from '../server/privileges.js';
import { openCheckoutView, type CheckoutView } from './support/as-user.js';
import { cliPath } from './support/build.js';
import { assertRoot, Netns, run } from './support/netns.js';
import { runIn } from './dhcp/live-support.js';
import { runCommand } from './support/run.js';

const nobody = 65534;
const serverAddress = '198.18.0.1';
const clientMac = '02:00:00:00:5e:01';
const base = `http://${serverAddress}`;

let scratch: string;
let view: CheckoutView;
let udhcpcScript: string;

before(async () => {
  assertRoot();
  for (const tool of ['setpriv', 'unshare', 'curl']) run('sh', ['-c', `command -v ${tool}`]);
  run('busybox', ['udhcpc', '--help']);
  scratch = await mkdtemp(path.join(tmpdir(), 'rackboot-serve-user-'));
  // The server's user must reach its folders: the scratch folder is open to all, what is in it says more.
  await chmod(scratch, 0o755);
  view = await openCheckoutView();
  udhcpcScript = path.join(scratch, 'udhcpc-script');
  await writeFile(udhcpcScript, '#!/bin/sh\necho "UDHCPC $1 ip=$ip serverid=$serverid"\n', { mode: 0o755 });
});

after(async () => {
  await view?.remove();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface Site {
  host: Netns;
  client: Netns;
  work: string;
  profiles: string;
  state: string;
  assets: string;
  server: ConsoleWatcher;
  pid: number;
  events(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A host namespace (rbU0, 198.18.0.1/24) with a client namespace on a veth pair, and `serve` started by `launch`. */
async function startSite(
  name: string,
  prepare: (site: { work: string; profiles: string; state: string }) => Promise<void>,
  launch: (serveArgs: string[]) => { command: string; args: string[] },
): Promise<Site> {
  const work = path.join(scratch, name);
  const profiles = path.join(work, 'profiles');
  const state = path.join(work, 'state');
  const assets = path.join(work, 'assets');
  await mkdir(profiles, { recursive: true });
  await writeFile(
    path.join(profiles, 'node01.yaml'),
    ['mac: 02-00-00-00-5e-01', 'hostname: before-edit', 'boot:', '  kernelArgs: "rackboot.poweroff=1"', ''].join('\n'),
  );
  await prepare({ work, profiles, state });
  const host = Netns.create('rbsu');
  const client = Netns.create('rbsc');
  host.linkTo(client, { device: 'rbU0', cidr: `${serverAddress}/24` }, { device: 'cliU0', mac: clientMac, cidr: '198.18.0.2/24' });
  const serveArgs = [
    'serve',
    '--interface',
    'rbU0',
    '--address',
    serverAddress,
    '--pool',
    '198.18.0.100-198.18.0.150',
    '--profiles',
    profiles,
    '--assets',
    assets,
    '--state',
    state,
  ];
  const { command, args } = launch(serveArgs);
  const child = host.spawn(command, args, { env: { ...process.env, RACKBOOT_LOG_LEVEL: 'debug' } });
  const server = new ConsoleWatcher(child);
  const close = async () => {
    child.kill('SIGTERM');
    host.delete();
    client.delete();
  };
  try {
    await server.waitFor(/rackboot is serving/, 30_000, 'rackboot serve to start');
  } catch (error) {
    await close();
    throw error;
  }
  // ip netns exec, unshare, sh and setpriv each exec the next: the pid is the server's.
  const pid = child.pid!;
  assert.match(await readFile(`/proc/${pid}/cmdline`, 'utf8'), /serve/, 'the child is the server itself');
  return {
    host,
    client,
    work,
    profiles,
    state,
    assets,
    server,
    pid,
    events: () =>
      server.transcript
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    close,
  };
}

function statusOf(pid: number): ThreadCredentials & { text: string } {
  const text = execFileSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' });
  return { ...parseThreadStatus(pid, text), text };
}

function assertNothingHeld(thread: ThreadCredentials, what: string): void {
  assert.deepEqual(thread.uids, [nobody, nobody, nobody, nobody], `${what}: Uid`);
  assert.deepEqual(thread.gids, [nobody, nobody, nobody, nobody], `${what}: Gid`);
  assert.equal(thread.effective, 0n, `${what}: CapEff`);
  assert.equal(thread.permitted, 0n, `${what}: CapPrm`);
  assert.equal(thread.ambient, 0n, `${what}: CapAmb`);
}

/** DHCP from a client asking with no address (udhcpc sends from 0.0.0.0; the reply is broadcast), TFTP and HTTP on ports 67, 69 and 80, all after the drop. */
async function assertServes(site: Site): Promise<void> {
  const dhcp = await runIn(site.client, 'busybox', ['udhcpc', '-i', 'cliU0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', udhcpcScript], 30_000);
  assert.equal(dhcp.code, 0, `udhcpc: ${dhcp.stdout} ${dhcp.stderr}`);
  assert.match(dhcp.stdout, /UDHCPC bound ip=198\.18\.0\.1\d\d serverid=198\.18\.0\.1/);
  const http = site.client.exec('curl', ['--silent', '--show-error', '--fail', '-o', '/dev/null', '-w', '%{http_code}', `${base}/status`]);
  assert.equal(http, '200');
  // A file TFTP generates (no build: the script says to wait), over a transfer socket of its own.
  const tftp = site.client.exec('curl', ['--silent', '--show-error', '--fail', `tftp://${serverAddress}/hosts/${clientMac}/boot.ipxe`]);
  assert.match(tftp, /^#!ipxe/);
}

test(
  "started as root with --user nobody: every thread becomes nobody with no capability, the state is 0700/0600 and nobody's, and the server still serves and takes profile edits",
  { timeout: 120_000 },
  async () => {
    const site = await startSite(
      'root',
      async ({ state }) => {
        // A state folder from before, open to all, with a file readable by others.
        await mkdir(state, { mode: 0o755 });
        await chmod(state, 0o755);
        await writeFile(path.join(state, 'notes.txt'), 'left by an older version\n', { mode: 0o644 });
      },
      // Through the view too: once nobody, the server still loads modules it first uses then.
      (serveArgs) => view.command(process.execPath, [cliPath, ...serveArgs, '--user', 'nobody']),
    );
    try {
      const main = statusOf(site.pid);
      assertNothingHeld(main, `/proc/${site.pid}/status`);
      assert.match(main.text, /^Groups:\s*65534\s*$/m, 'the groups of nobody only');
      for (const thread of readThreadCredentials(site.pid)) {
        assertNothingHeld(thread, `thread ${thread.tid}`);
        assert.equal(thread.inheritable, 0n, `thread ${thread.tid}: CapInh`);
      }
      const dropped = site.events().find((event) => event.msg === 'privileges dropped');
      assert.ok(dropped, 'the log says so');
      assert.equal(dropped.uid, nobody);
      assert.deepEqual(dropped.keptCapabilities, []);
      assert.ok(!site.events().some((event) => /keep the capabilities/.test(String(event.msg))), 'no thread kept anything');

      await assertServes(site);

      // The state folder and every file in it: nobody's only.
      const folder = await stat(site.state);
      assert.equal(folder.mode & 0o777, 0o700, 'state folder 0700');
      assert.equal(folder.uid, nobody);
      const names = (await readdir(site.state)).sort();
      for (const wanted of [
        'admin.token',
        'events.sqlite',
        'events.sqlite-wal',
        'host-token.key',
        'leases.sqlite',
        'leases.sqlite-shm',
        'leases.sqlite-wal',
        'notes.txt',
        'rollout-builds.json',
        'rollouts.sqlite',
        'slots.sqlite',
      ]) {
        assert.ok(names.includes(wanted), `${wanted} is in the state folder (${names.join(', ')})`);
      }
      for (const name of names) {
        const file = await stat(path.join(site.state, name));
        assert.equal(file.mode & 0o777, 0o600, `${name} is 0600`);
        assert.equal(file.uid, nobody, `${name} is nobody's`);
      }

      // A profile edit through the admin API, written by nobody, 0600, and served.
      const token = (await readFile(path.join(site.state, 'admin.token'), 'utf8')).trim();
      const put = site.client.exec('curl', [
        '--silent',
        '--show-error',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'PUT',
        '-H',
        `Authorization: Bearer ${token}`,
        '-H',
        'Content-Type: application/yaml',
        '--data-binary',
        ['mac: 02-00-00-00-5e-01', 'hostname: after-edit', 'boot:', '  kernelArgs: "rackboot.poweroff=1"', ''].join('\n'),
        `${base}/api/profiles/node01`,
      ]);
      assert.equal(put, '200');
      const written = await stat(path.join(site.profiles, 'node01.yaml'));
      assert.equal(written.mode & 0o777, 0o600, 'a profile written by the API is 0600');
      assert.equal(written.uid, nobody);
      const served = JSON.parse(
        site.client.exec('curl', ['--silent', '--show-error', '--fail', '-H', `Authorization: Bearer ${token}`, `${base}/api/profiles/node01`]),
      ) as { profile: { hostname: string } };
      assert.equal(served.profile.hostname, 'after-edit', 'the edit is what the server serves');

      // A profile root drops into the folder: the watch (as nobody) picks it up.
      await writeFile(path.join(site.profiles, 'node02.yaml'), ['mac: 02-00-00-00-5e-02', 'hostname: dropped-in', ''].join('\n'));
      const deadline = Date.now() + 15_000;
      for (;;) {
        const listed = site.client.exec('curl', ['--silent', '--fail', '-H', `Authorization: Bearer ${token}`, `${base}/api/profiles`]);
        if (listed.includes('dropped-in')) break;
        assert.ok(Date.now() < deadline, `the new profile is not served: ${listed}`);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    } finally {
      await site.close();
    }
  },
);

test(
  'started as nobody with only CAP_NET_BIND_SERVICE, ambient (setpriv): after binding 67, 69 and 80 the server clears it, and still serves',
  { timeout: 120_000 },
  async () => {
    const site = await startSite(
      'ambient',
      async ({ work, profiles, state }) => {
        // As a service manager would (StateDirectory=): the user's own state folder.
        await mkdir(state);
        for (const dir of [work, profiles, state]) await chown(dir, nobody, nobody);
      },
      (serveArgs) =>
        view.command('setpriv', [
          `--reuid=${nobody}`,
          `--regid=${nobody}`,
          '--clear-groups',
          '--inh-caps=+net_bind_service',
          '--ambient-caps=+net_bind_service',
          process.execPath,
          cliPath,
          ...serveArgs,
        ]),
    );
    try {
      assertNothingHeld(statusOf(site.pid), `/proc/${site.pid}/status`);
      // Capabilities belong to threads: every one is cleared, Node's SIGUSR1
      // watchdog (which blocks every signal glibc lets it block) as well.
      const threads = readThreadCredentials(site.pid);
      assert.ok(threads.length > 1, `the server runs more than one thread: ${threads.length}`);
      for (const thread of threads) assertNothingHeld(thread, `thread ${thread.tid} (${thread.name})`);
      // The watchdog is there and blocks SIGRTMIN+3 (37), the signal the others are cleared with: it took signal 33.
      const blocking = [];
      for (const thread of threads) {
        const text = await readFile(`/proc/${site.pid}/task/${thread.tid}/status`, 'utf8');
        const blocked = BigInt(`0x${/^SigBlk:\s*([0-9a-f]+)$/m.exec(text)![1]}`);
        if (((blocked >> 36n) & 1n) === 1n) blocking.push(thread.tid);
      }
      assert.equal(blocking.length, 1, `one thread (Node's SIGUSR1 watchdog) blocks signal 37: ${blocking.join(', ')}`);
      assert.ok(!site.events().some((event) => /keep the capabilities/.test(String(event.msg))), 'no thread is reported as out of reach');
      assert.ok(site.events().some((event) => event.msg === 'privileges dropped' && event.uid === nobody));
      await assertServes(site);
      const folder = await stat(site.state);
      assert.equal(folder.mode & 0o777, 0o700);
      for (const name of await readdir(site.state)) assert.equal((await stat(path.join(site.state, name))).mode & 0o777, 0o600, `${name} is 0600`);
    } finally {
      await site.close();
    }
  },
);

test('--user with a name that is no user: serve stops at once, naming it', async () => {
  const state = path.join(scratch, 'no-user-state');
  const result = await runCommand(
    process.execPath,
    [cliPath, 'serve', '--interface', 'lo', '--state', state, '--user', 'no-such-user-rb', '--http-port', '0', '--tftp-port', '0', '--dhcp', 'off'],
    { timeoutMs: 30_000 },
  );
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /^rackboot: --user no-such-user-rb: no such user$/m);
});
