import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { passwordMatches } from '../server/admin/password.js';
import { SqliteEventStore } from '../server/events/sqlite-store.js';
import { parseStorageReport } from '../server/storage/report.js';
import { SqliteSlotSightings } from '../server/profiles/sqlite-sightings.js';
import { cliPath, repoRoot } from './support/build.js';
import { runRackboot } from './support/run.js';

const run = promisify(execFile);

/** rackboot with `input` on stdin (a pipe, not a terminal). */
const rackboot = (args: string[], input = '') => runRackboot(args, { input });

const sha512Crypt = /^\$6\$([./0-9A-Za-z]{16})\$[./0-9A-Za-z]{86}$/;

test('hash-password from a pipe: a $6$ hash that openssl computes the same from its salt', async () => {
  const { code, stdout, stderr } = await rackboot(['hash-password'], 'correct horse\n');
  assert.equal(code, 0, stderr);
  const hash = stdout.trim();
  const salt = sha512Crypt.exec(hash)?.[1];
  assert.ok(salt, `not a SHA-512 crypt hash: ${hash}`);
  const { stdout: openssl } = await run('openssl', ['passwd', '-6', '-salt', salt, 'correct horse']);
  assert.equal(openssl.trim(), hash);
  assert.equal(passwordMatches('correct horse', hash), true);
  assert.equal(passwordMatches('correct horsE', hash), false);
  assert.equal(passwordMatches('x', 'not a hash'), false);
  // Two runs, two salts.
  const second = (await rackboot(['hash-password'], 'correct horse\n')).stdout.trim();
  assert.notEqual(second, hash);
});

test('hash-password refuses an empty password and a bad salt', async () => {
  const empty = await rackboot(['hash-password'], '\n');
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /an empty password cannot be hashed/);
  const none = await rackboot(['hash-password'], '');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /no password given/);
  const salt = await rackboot(['hash-password', '--salt', 'bad$salt'], 'pw\n');
  assert.equal(salt.code, 2);
  assert.match(salt.stderr, /salt "bad\$salt"/);
});

/**
 * Drive `rackboot hash-password` on a real pseudo-terminal (python's pty),
 * typing at each prompt as a person would, and return everything the
 * terminal showed plus the exit status.
 */
async function onTerminal(first: string, second: string): Promise<{ screen: string; status: number }> {
  const driver = `
import os, pty, sys, select
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:-2])
screen = b''
answers = [sys.argv[-2].encode(), sys.argv[-1].encode()]
def read_until(marker):
    global screen
    while marker not in screen:
        ready, _, _ = select.select([fd], [], [], 20)
        if not ready: raise SystemExit('timed out waiting for ' + repr(marker))
        try: chunk = os.read(fd, 4096)
        except OSError: return
        if not chunk: return
        screen += chunk
read_until(b'Password: ')
os.write(fd, answers[0] + b'\\r')
read_until(b'Again: ')
os.write(fd, answers[1] + b'\\r')
while True:
    try: chunk = os.read(fd, 4096)
    except OSError: break
    if not chunk: break
    screen += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(screen.decode(errors='replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
  try {
    const { stdout } = await run('python3', ['-c', driver, process.execPath, cliPath, 'hash-password', first, second], { cwd: repoRoot });
    return { screen: stdout, status: 0 };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { screen: failed.stdout, status: failed.code };
  }
}

test('hash-password on a terminal: asks twice and never echoes the password', async () => {
  const { screen, status } = await onTerminal('tty-Secret-42', 'tty-Secret-42');
  assert.equal(status, 0, screen);
  assert.ok(!screen.includes('tty-Secret-42'), `the password was echoed:\n${screen}`);
  assert.match(screen, /Password: /);
  assert.match(screen, /Again: /);
  const hash = screen.trim().split(/\r?\n/).at(-1)!.trim();
  assert.match(hash, sha512Crypt);
  assert.equal(passwordMatches('tty-Secret-42', hash), true);

  const differ = await onTerminal('one-password', 'another-one');
  assert.equal(differ.status, 2);
  assert.match(differ.screen, /the two passwords differ; nothing was hashed/);
  assert.doesNotMatch(differ.screen, /\$6\$/);
});

test('profiles validate: exit 0 on good files, 1 with file:line:column lines on bad ones and conflicts', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-validate-'));
  try {
    await writeFile(path.join(dir, 'default.yaml'), 'hostname: node-{mac}\n');
    await writeFile(path.join(dir, 'a.yaml'), 'mac: 52:54:00:00:00:01\nhostname: a\n');
    const good = await rackboot(['profiles', 'validate', '--profiles', dir]);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout.trim(), `${dir}: 2 profile files, all good`);

    await writeFile(path.join(dir, 'b.yaml'), 'mac: 52:54:00:00:00:01\nhostname: b\n');
    await writeFile(path.join(dir, 'c.yaml'), 'mac: 52:54:00:00:00:03\nhostname: c\ntimezone: Mars/Olympus\n');
    const bad = await rackboot(['profiles', 'validate', '--profiles', dir]);
    assert.equal(bad.code, 1);
    const lines = bad.stderr.trim().split('\n');
    assert.equal(lines.length, 2, bad.stderr);
    assert.match(lines[0]!, new RegExp(`^${dir}/b\\.yaml:1:6: mac: 52:54:00:00:00:01 is already the MAC of ${dir}/a\\.yaml$`));
    assert.match(lines[1]!, new RegExp(`^${dir}/c\\.yaml:3:11: timezone: `));
    assert.equal(bad.stdout.trim(), `${dir}: 4 profile files, 2 with problems (2 in all)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('profiles validate warns (exit 0) about two hosts with one hostname, and with --subnet about a static address off every served subnet', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-validate-'));
  try {
    await writeFile(path.join(dir, 'default.yaml'), 'hostname: node-{mac}\n');
    await writeFile(path.join(dir, 'a.yaml'), 'mac: 52:54:00:00:00:01\nhostname: web\n');
    await writeFile(path.join(dir, 'b.yaml'), 'mac: 52:54:00:00:00:02\nhostname: WEB\nnetwork:\n  mode: static\n  address: 198.18.9.5/24\n');
    const result = await rackboot(['profiles', 'validate', '--profiles', dir, '--subnet', '198.18.0.0/24', '--subnet', '198.18.2.0/24']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stderr.trim().split('\n'), [
      `${dir}/a.yaml: warning: hostname web is also the hostname in ${dir}/b.yaml`,
      `${dir}/b.yaml: warning: hostname web is also the hostname in ${dir}/a.yaml`,
      `${dir}/b.yaml: warning: static address 198.18.9.5 is on none of the subnets rackboot serves (198.18.0.0/24, 198.18.2.0/24): its DHCP gives that machine no reservation, and the machine may not reach the server`,
    ]);
    assert.equal(result.stdout.trim(), `${dir}: 3 profile files, all good; 3 warnings`);
    const badSubnet = await rackboot(['profiles', 'validate', '--profiles', dir, '--subnet', '198.18.0.0']);
    assert.equal(badSubnet.code, 2);
    assert.match(badSubnet.stderr, /^rackboot: --subnet "198\.18\.0\.0": want a subnet a\.b\.c\.d\/n/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("hosts from the state folder when no server runs; a running server's lock sends the reader to --server", async () => {
  const state = await mkdtemp(path.join(tmpdir(), 'rackboot-hosts-'));
  try {
    const store = SqliteEventStore.open(path.join(state, 'events.sqlite'));
    const mac = '52:54:00:00:00:31';
    const t0 = Date.now() - 60_000;
    store.appendAll([
      { time: t0, mac, source: 'dhcp', stage: 'dhcp-offer', detail: '198.18.0.131' },
      { time: t0 + 500, mac, source: 'dhcp', stage: 'dhcp-ack', detail: '198.18.0.131' },
      { time: t0 + 31_000, mac, source: 'runtime', stage: 'ready' },
      { time: t0 + 1000, mac: '52:54:00:00:00:32', source: 'dhcp', stage: 'dhcp-offer' },
    ]);
    const storage = parseStorageReport(
      [
        'disk name=vda size=68719476736 serial=rb-1 transport=virtio table=gpt ids=virtio-rb-1',
        'part name=vda1 disk=vda size=1073741824 filesystem=ext4 label=data ids=virtio-rb-1-part1',
        'disk name=sda size=1000204886016 model=ST1000 serial=Z1D2 transport=sata ids=ata-ST1000_Z1D2',
        'vg name=vg0 size=1000203091968 free=500000000000 pvs=sda',
        'lv name=web1 vg=vg0 size=21474836480',
      ].join('\n'),
    );
    assert.ok(storage.ok);
    store.putHostReport({ mac, kind: 'storage', time: t0 + 30_000, body: JSON.stringify(storage.report) });
    const locked = await rackboot(['hosts', '--state', state, '--profiles', '/nonexistent']);
    assert.equal(locked.code, 2);
    assert.match(locked.stderr, /events\.sqlite is held by a running rackboot serve; ask it instead: rackboot hosts --server/);
    store.close();

    const listed = await rackboot(['hosts', '--state', state, '--profiles', '/nonexistent', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const hosts = JSON.parse(listed.stdout) as Array<{ mac: string; stage: string; address: string; lastBootSeconds: number | null }>;
    assert.deepEqual(
      hosts.map((host) => [host.mac, host.stage, host.address, host.lastBootSeconds]),
      [
        [mac, 'ready', '198.18.0.131', 31],
        ['52:54:00:00:00:32', 'dhcp-offer', null, null],
      ],
    );
    const table = await rackboot(['hosts', '--state', state, '--profiles', '/nonexistent']);
    assert.match(table.stdout, /^MAC +HOSTNAME +STAGE +ADDRESS +LAST SEEN +LAST BOOT +FAILURES$/m);
    assert.match(table.stdout, new RegExp(`^${mac}  -  +ready  +198\\.18\\.0\\.131  +\\d+ s ago  +31\\.0 s  +-$`, 'm'));

    // The second host was last seen in slot "r7": it is listed as that slot's host.
    const profiles = path.join(state, 'profiles');
    await mkdir(profiles);
    await writeFile(path.join(profiles, 'rack1-r7.yaml'), 'hostname: rack1-r7\nrelay:\n  circuitId: "r7"\n');
    const sightings = SqliteSlotSightings.open(path.join(state, 'slots.sqlite'));
    sightings.record('52:54:00:00:00:32', { circuitId: Buffer.from('r7').toString('hex') });
    const slotLocked = await rackboot(['hosts', '--state', state, '--profiles', profiles]);
    assert.equal(slotLocked.code, 2);
    assert.match(slotLocked.stderr, /slot sightings database .*slots\.sqlite: locked by another process/);
    sightings.close();
    const inSlot = JSON.parse((await rackboot(['hosts', '--state', state, '--profiles', profiles, '--json'])).stdout) as Array<{
      mac: string;
      hostname: string | null;
    }>;
    assert.deepEqual(
      inSlot.map((host) => [host.mac, host.hostname]),
      [
        [mac, null],
        ['52:54:00:00:00:32', 'rack1-r7'],
      ],
    );
    // One host in full: its disks as the runtime reported them, and its newest events.
    const one = await rackboot(['hosts', '52-54-00-00-00-31', '--state', state, '--profiles', '/nonexistent']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(
      one.stdout,
      new RegExp(`^storage \\(reported ${new Date(t0 + 30_000).toISOString()}\\): 2 disks \\(64 GiB, 932 GiB\\), 1 volume group \\(vg0\\)$`, 'm'),
    );
    assert.match(one.stdout, /^ {2}DEVICE +SIZE +TRANSPORT +MODEL +SERIAL +HOLDS +ID$/m);
    assert.match(one.stdout, /^ {2}vda +64 GiB +virtio +- +rb-1 +gpt +virtio-rb-1$/m);
    assert.match(one.stdout, /^ {4}vda1 +1\.0 GiB +ext4 "data" +virtio-rb-1-part1$/m);
    assert.match(one.stdout, /^ {2}sda +932 GiB +sata +ST1000 +Z1D2 +nothing found +ata-ST1000_Z1D2$/m);
    assert.match(one.stdout, /^ {2}volume group vg0: 932 GiB, 466 GiB free, on sda; web1 20 GiB$/m);
    assert.match(one.stdout, /^newest events \(3 of 3\):$/m);
    const oneJson = JSON.parse((await rackboot(['hosts', '52:54:00:00:00:31', '--state', state, '--profiles', '/nonexistent', '--json'])).stdout) as {
      storageReport: { disks: Array<{ serial: string }> };
      timeline: unknown[];
    };
    assert.deepEqual(
      oneJson.storageReport.disks.map((disk) => disk.serial),
      ['rb-1', 'Z1D2'],
    );
    assert.equal(oneJson.timeline.length, 3);
    const unreported = await rackboot(['hosts', '52:54:00:00:00:32', '--state', state, '--profiles', '/nonexistent']);
    assert.match(unreported.stdout, /^storage: not reported yet/m);
    const unseen = await rackboot(['hosts', '52:54:00:00:00:99', '--state', state, '--profiles', '/nonexistent']);
    assert.equal(unseen.code, 2);
    assert.match(unseen.stderr, /no host 52:54:00:00:00:99 has been seen/);
    const notMac = await rackboot(['hosts', 'node01', '--state', state]);
    assert.equal(notMac.code, 2);
    assert.match(notMac.stderr, /hosts: "node01" is not a MAC address/);

    const missing = await rackboot(['hosts', '--state', path.join(state, 'nothing-here')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /events\.sqlite/);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});
