import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { parsePrintUris } from '../../builder/apt.js';
import { mirrorOfUri } from '../../builder/rootfs.js';
import { buildPackage } from '../../builder/package/build-deb.js';
import { ConsoleWatcher, assertQemu, readyLinePattern, spawnQemu } from '../../server/demo/qemu.js';
import { ensureTestBuild, repoRoot } from '../support/build.js';
import { watchOutput } from '../support/failure-report.js';
import { Netns, assertRoot } from '../support/netns.js';
import { runCommand, type Finished } from '../support/run.js';

/**
 * The Debian package end to end: `npm run package`'s .deb installed with apt
 * on a clean Debian 12 (debootstrap minbase) booted under systemd-nspawn,
 * rackboot.service started by systemd as the rackboot user with only
 * CAP_NET_BIND_SERVICE on ports 67, 69 and 80, a QEMU machine
 * network-booted from it on a bridge in the test's own namespaces
 * (198.18.0.0/15), then reload and stop through systemctl. Needs root,
 * debootstrap, systemd-nspawn and QEMU; fails (never skips) without them.
 */

const serverCidr = '198.18.0.1/24';
const serverAddress = '198.18.0.1';
const machineMac = '52:54:00:12:34:5c';

/** The release's mirror as this machine's apt sources name it (never a host name written here). */
async function machineMirror(): Promise<string> {
  const printed = await runCommand('apt-get', ['download', '--print-uris', 'base-files']);
  assert.equal(printed.code, 0, `apt-get download --print-uris base-files: ${printed.stderr}`);
  const file = parsePrintUris(printed.stdout)[0];
  assert.ok(file, `apt-get --print-uris named no file: ${printed.stdout}`);
  return mirrorOfUri(file.uri);
}

/** A command's wall time as bash measures it, so that a busy event loop does not stretch it. */
async function timed(command: string[], timeoutMs: number): Promise<Finished & { seconds: number }> {
  const script = 'TIMEFORMAT="rackboot-elapsed %R"; time "$@"';
  const done = await runCommand('bash', ['-c', script, 'timed', ...command], { timeoutMs, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  const seconds = Number(/rackboot-elapsed ([\d.]+)\s*$/.exec(done.stderr)?.[1] ?? NaN);
  return { ...done, seconds };
}

/** The container's init: the child of systemd-nspawn, once it runs systemd. */
async function containerInit(nspawn: ChildProcess): Promise<number> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited with ${nspawn.exitCode}`);
    for (const task of await readdir(`/proc/${nspawn.pid}/task`).catch(() => [] as string[])) {
      const children = (await readFile(`/proc/${nspawn.pid}/task/${task}/children`, 'utf8').catch(() => '')).split(/\s+/).filter(Boolean);
      for (const child of children) {
        const exe = await readlink(`/proc/${child}/exe`).catch(() => '');
        if (exe.endsWith('/systemd')) return Number(child);
      }
    }
    await delay(100);
  }
  throw new Error('the container did not start systemd within 30 s');
}

test(
  'the Debian package: apt installs it on a clean Debian 12, systemd runs rackboot as its own user with CAP_NET_BIND_SERVICE only, a BIOS machine boots from it; reload, upgrade, stop and purge work',
  { timeout: 600_000 },
  async (t) => {
    assertRoot();
    for (const tool of ['/usr/sbin/debootstrap', '/usr/bin/systemd-nspawn', '/usr/bin/nsenter', '/usr/bin/dpkg-deb', '/usr/bin/dpkg-shlibdeps']) {
      assert.ok(existsSync(tool), `${tool} is missing: install debootstrap, systemd-container, util-linux and dpkg-dev (builder/install-deps.sh --test does)`);
    }
    await assertQemu('bios');
    const durations: Record<string, number> = {};
    const work = await mkdtemp(path.join(tmpdir(), 'rackboot-package-'));
    const tree = path.join(work, 'debian');
    const inTree = (file: string) => path.join(tree, file);
    let nspawn: ChildProcess | undefined;
    let qemu: ChildProcess | undefined;
    let wire: Netns | undefined;
    let host: Netns | undefined;
    try {
      // Debian 12 as debootstrap makes it, while the package is built (debootstrap mostly downloads and unpacks):
      // minbase with systemd and procps (Priority important: on every standard install), the package's
      // dependencies from Debian, since the container has no way out to a mirror.
      const mirror = await machineMirror();
      const debootstrap = timed(['debootstrap', '--variant=minbase', '--include=systemd,systemd-sysv,dbus,iproute2,procps', 'bookworm', tree, mirror], 420_000);
      const testBuild = ensureTestBuild();
      const packageStarted = Date.now();
      const built = await buildPackage({ root: repoRoot, out: path.join(work, 'package') });
      durations['package build'] = (Date.now() - packageStarted) / 1000;
      const bootstrapped = await debootstrap;
      assert.equal(bootstrapped.code, 0, `debootstrap: ${bootstrapped.stderr.slice(-2000)}`);
      durations.debootstrap = bootstrapped.seconds;
      assert.match(built.depends, /libc6 \(>= [\d.]+\)/);
      assert.match(built.depends, /libstdc\+\+6/);
      assert.match(built.depends, /libgcc-s1/);

      // The wire: a bridge in a namespace of its own joins the container's eth0
      // and the machine's tap0; the container serves on eth0 in a second one.
      wire = Netns.create('rbpkg');
      host = Netns.create('rbpkgc');
      wire.ip('link', 'add', 'br0', 'type', 'bridge');
      wire.ip('link', 'set', 'br0', 'up');
      wire.linkTo(host, { device: 'ct0' }, { device: 'eth0', cidr: serverCidr });
      wire.ip('link', 'set', 'ct0', 'master', 'br0');
      wire.ip('tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
      wire.ip('link', 'set', 'tap0', 'master', 'br0');
      wire.ip('link', 'set', 'tap0', 'up');

      await copyFile(built.file, inTree(`root/${path.basename(built.file)}`));
      nspawn = spawn(
        'systemd-nspawn',
        ['-D', tree, '--register=no', '--keep-unit', `--network-namespace-path=/run/netns/${host.name}`, `--machine=${host.name}`, '--console=read-only', '-b'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const containerConsole = new ConsoleWatcher(nspawn);
      watchOutput('systemd-nspawn console (Debian 12 container)', () => containerConsole.transcript);
      const init = await containerInit(nspawn);
      const inside = (args: string[], timeoutMs = 120_000) =>
        timed(['nsenter', '-t', String(init), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--', ...args], timeoutMs);
      const must = async (args: string[], timeoutMs?: number) => {
        const done = await inside(args, timeoutMs);
        assert.equal(done.code, 0, `${args.join(' ')} in the container: ${done.stdout}\n${done.stderr}`);
        return done;
      };
      const journal = async () =>
        (await must(['journalctl', '--no-pager', '-u', 'rackboot', '-o', 'cat'])).stdout
          .split('\n')
          .filter((line) => line.startsWith('{'))
          .map((line) => JSON.parse(line) as Record<string, unknown>);
      const waitForLog = async (what: string, check: (event: Record<string, unknown>) => boolean, timeoutMs: number) => {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const found = (await journal()).find(check);
          if (found) return found;
          if (Date.now() > until)
            throw new Error(
              `the journal of rackboot.service has no ${what} after ${timeoutMs / 1000} s:\n${(await inside(['journalctl', '--no-pager', '-u', 'rackboot'])).stdout.slice(-3000)}`,
            );
          await delay(200);
        }
      };
      // Until its systemd is up (its bus socket comes a moment after PID 1 starts).
      const bootUntil = Date.now() + 90_000;
      for (;;) {
        const booted = await inside(['systemctl', 'is-system-running', '--wait'], 90_000);
        if (/^(running|degraded)$/m.test(booted.stdout)) break;
        if (Date.now() > bootUntil) throw new Error(`the container's systemd did not come up: ${booted.stdout} ${booted.stderr}`);
        await delay(200);
      }

      // Install: apt takes every dependency from what minbase already has.
      const installed = await must(['apt-get', 'install', '-y', '--no-install-recommends', `/root/${path.basename(built.file)}`], 180_000);
      durations.install = installed.seconds;
      // Nothing but rackboot itself: its dependencies come with Debian 12.
      assert.match(installed.stdout, /The following NEW packages will be installed:\s+rackboot\s+0 upgraded, 1 newly installed/);
      const uid = Number((await must(['id', '-u', 'rackboot'])).stdout.trim());
      assert.ok(uid > 0 && uid < 1000, `rackboot is a system user (uid ${uid})`);
      // Installed defaults: the package's folders, with no flag or setting.
      const help = (await must(['rackboot', 'serve', '--help'])).stdout;
      assert.match(help, /--profiles .*\[default: "\/etc\/rackboot\/profiles"\]/);
      assert.match(help, /--assets .*\[default: "\/var\/lib\/rackboot\/boot-assets"\]/);
      assert.match(help, /--state .*\[default: "\/var\/lib\/rackboot"\]/);
      assert.ok(existsSync(inTree('usr/share/man/man8/rackboot.8.gz')) && existsSync(inTree('usr/share/bash-completion/completions/rackboot')));
      assert.match(await readFile(inTree('etc/rackboot/rackboot.yaml'), 'utf8'), /^#interface: eth1$/m, 'the sample settings file is installed');
      assert.match(await readFile(inTree('etc/rackboot/build.yaml'), 'utf8'), /^channels:/m, 'the build settings file is installed');

      // Configure: the settings file, profiles, and a build in the assets folder.
      await writeFile(
        inTree('etc/rackboot/rackboot.yaml'),
        `interface: eth0\naddress: ${serverAddress}\npool: 198.18.0.100-198.18.0.150\nlease-time: 3600\ndrain-seconds: 5\n`,
      );
      await writeFile(inTree('etc/rackboot/profiles/default.yaml'), 'hostname: "node-{mac}"\nboot:\n  kernelArgs: "rackboot.poweroff=1"\n');
      await writeFile(inTree('etc/rackboot/profiles/pkg01.yaml'), `mac: ${machineMac}\nhostname: pkg01\nboot:\n  kernelArgs: "rackboot.poweroff=1"\n`);
      const assets = await testBuild;
      const buildId = path.basename(await readlink(path.join(assets, 'current')));
      await cp(path.join(assets, 'builds', buildId), inTree(`var/lib/rackboot/boot-assets/builds/${buildId}`), { recursive: true });
      await symlink(`builds/${buildId}`, inTree('var/lib/rackboot/boot-assets/current'));
      await must(['rackboot', 'serve', '--check']);

      // The nightly build: a timer per channel, shipped disabled; its service runs "rackboot build --if-changed" as root.
      assert.equal((await inside(['systemctl', 'is-enabled', 'rackboot-rebuild@default.timer'])).stdout.trim(), 'disabled');
      await must(['systemctl', 'enable', '--now', 'rackboot-rebuild@default.timer']);
      const timers = (await must(['systemctl', 'list-timers', '--all', '--no-pager', 'rackboot-rebuild@default.timer'])).stdout;
      assert.match(timers, /\b03:[0-5]\d:\d\d\b.*rackboot-rebuild@default\.timer\s+rackboot-rebuild@default\.service/, timers);
      // Run now: the container has no way out to a mirror, so the build stops at apt-get update, saying so, and the build stays.
      const rebuilt = await inside(['systemctl', 'start', 'rackboot-rebuild@default.service'], 120_000);
      assert.notEqual(rebuilt.code, 0, 'the unit reports the failed build');
      const rebuildLog = (await must(['journalctl', '--no-pager', '-u', 'rackboot-rebuild@default.service', '-o', 'cat'])).stdout;
      assert.match(rebuildLog, /^rackboot build: step "apt-get update" failed: /m, rebuildLog);
      assert.equal(await readlink(inTree('var/lib/rackboot/boot-assets/current')), `builds/${buildId}`);

      // Start: systemd runs it as rackboot, and once bound it holds nothing.
      const startAsked = Date.now();
      await must(['systemctl', 'start', 'rackboot']);
      await waitForLog('"rackboot is serving"', (event) => event.msg === 'rackboot is serving', 60_000);
      durations['unit start'] = (Date.now() - startAsked) / 1000;
      const dropped = await waitForLog('"privileges dropped"', (event) => event.msg === 'privileges dropped', 5_000);
      assert.deepEqual(dropped.keptCapabilities, []);
      assert.equal(dropped.uid, uid);
      const mainPid = (await must(['systemctl', 'show', '-p', 'MainPID', '--value', 'rackboot'])).stdout.trim();
      const threads = (await must(['sh', '-c', `cat /proc/${mainPid}/task/*/status`])).stdout.split(/(?=^Name:)/m);
      assert.ok(threads.length > 1, `the server's threads: ${threads.length}`);
      for (const status of threads) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim();
        assert.deepEqual(field('Uid')?.split(/\s+/).map(Number), [uid, uid, uid, uid], `thread ${field('Name')} runs as rackboot`);
        for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapAmb']) assert.equal(field(set), '0000000000000000', `thread ${field('Name')}: ${set}`);
        // The bounding set is the unit's: CAP_NET_BIND_SERVICE (10) alone.
        assert.equal(field('CapBnd'), '0000000000000400', `thread ${field('Name')}: CapBnd`);
        assert.equal(field('NoNewPrivs'), '1');
      }
      const sockets = (await must(['ss', '-H', '-lntu'])).stdout;
      for (const port of ['67', '69', '80']) assert.match(sockets, new RegExp(`:${port}\\s`), `something listens on port ${port}:\n${sockets}`);
      const unit = (await must(['systemctl', 'show', '-p', 'User,AmbientCapabilities,CapabilityBoundingSet', 'rackboot'])).stdout;
      assert.match(unit, /^User=rackboot$/m);
      assert.match(unit, /^AmbientCapabilities=cap_net_bind_service$/m);
      assert.match(unit, /^CapabilityBoundingSet=cap_net_bind_service$/m);

      // A BIOS machine (QEMU's iPXE ROM) network-boots from the container to the runtime's ready line.
      const bootStarted = Date.now();
      qemu = spawnQemu(wire.name, { firmware: 'bios', mac: machineMac, tap: 'tap0' });
      const machineConsole = new ConsoleWatcher(qemu);
      watchOutput(`QEMU console of ${machineMac} (bios)`, () => machineConsole.transcript);
      const ready = await machineConsole.waitFor(readyLinePattern, 300_000, `the ready line from ${machineMac}`);
      durations['machine boot'] = (Date.now() - bootStarted) / 1000;
      assert.equal(ready.groups?.hostname, 'pkg01');
      assert.equal(ready.groups?.mac, machineMac);
      assert.match(ready.groups?.ip ?? '', /^198\.18\.0\.(1[0-4]\d|150)\/24$/);
      qemu.kill('SIGKILL');
      const served = await journal();
      assert.ok(
        served.some((event) => event.event === 'boot-script' && event.mac === machineMac),
        'the journal shows the boot script served',
      );

      // Reload: a new profile and a changed setting, read again on SIGHUP.
      await writeFile(inTree('etc/rackboot/profiles/pkg02.yaml'), 'mac: 52:54:00:12:34:5d\nhostname: pkg02\n');
      await writeFile(
        inTree('etc/rackboot/rackboot.yaml'),
        `interface: eth0\naddress: ${serverAddress}\npool: 198.18.0.100-198.18.0.150\nlease-time: 7200\ndrain-seconds: 5\n`,
      );
      const reloadAsked = Date.now();
      await must(['systemctl', 'reload', 'rackboot']);
      const reloaded = await waitForLog('the reload line', (event) => event.msg === 'reloaded: profiles and the current build read again', 15_000);
      durations.reload = (Date.now() - reloadAsked) / 1000;
      assert.equal(reloaded.profiles, 3);
      assert.equal(reloaded.build, buildId);
      const changed = await waitForLog(
        'the changed settings',
        (event) => event.msg === 'settings changed in the file or environment: they take effect when serve restarts',
        5_000,
      );
      assert.deepEqual(changed.changed, ['lease-time']);
      assert.equal((await must(['systemctl', 'is-active', 'rackboot'])).stdout.trim(), 'active');

      // The admin API writes a profile into /etc/rackboot/profiles (the one folder of /etc the
      // unit lets it write); the admin command finds the token in the installed state folder.
      await writeFile(inTree('root/pkg03.yaml'), 'mac: 52:54:00:12:34:5e\nhostname: pkg03\n');
      const applied = await must(['rackboot', 'profiles', 'apply', '/root/pkg03.yaml', '--server', serverAddress]);
      assert.match(applied.stdout, /^saved pkg03\.yaml: pkg03 \(52:54:00:12:34:5e\)$/m);
      assert.equal((await must(['stat', '-c', '%U %a', '/etc/rackboot/profiles/pkg03.yaml'])).stdout.trim(), 'rackboot 600');
      // The server switches current-build links (the admin API, a rollout that ends done) in the root-owned
      // assets folder: of the default channel and of a channel, whose link it makes.
      assert.match((await must(['rackboot', 'builds', 'switch', buildId, '--server', serverAddress])).stdout, new RegExp(`^current build: ${buildId}$`, 'm'));
      const switched = await must(['rackboot', 'builds', 'switch', buildId, '--channel', 'testing', '--server', serverAddress]);
      assert.match(switched.stdout, new RegExp(`^current build of channel testing: ${buildId}$`, 'm'));
      assert.equal(await readlink(inTree('var/lib/rackboot/boot-assets/channels/testing')), `../builds/${buildId}`);
      assert.equal((await must(['stat', '-c', '%U', `/var/lib/rackboot/boot-assets/builds/${buildId}`])).stdout.trim(), 'root', "the builds stay root's");

      // Upgrade: installing the package again restarts the running server on the
      // new code; the state stays (the machine's lease, read from the installed state folder).
      const leases = async () =>
        (JSON.parse((await must(['rackboot', 'leases', '--json'])).stdout) as Array<{ mac: string; address: string }>).map(({ mac, address }) => ({
          mac,
          address,
        }));
      const leasesBefore = await leases();
      assert.deepEqual(
        leasesBefore.filter((lease) => lease.mac === machineMac),
        [{ mac: machineMac, address: ready.groups?.ip?.split('/')[0] }],
      );
      const currentMainPid = async () => (await must(['systemctl', 'show', '-p', 'MainPID', '--value', 'rackboot'])).stdout.trim();
      const pidBefore = await currentMainPid();
      const upgraded = await must(['apt-get', 'install', '-y', '--reinstall', `/root/${path.basename(built.file)}`], 180_000);
      durations.upgrade = upgraded.seconds;
      const serving = async () => (await journal()).filter((event) => event.msg === 'rackboot is serving').length;
      const upgradeUntil = Date.now() + 60_000;
      while ((await serving()) < 2) {
        if (Date.now() > upgradeUntil) throw new Error('the server did not serve again after the upgrade');
        await delay(200);
      }
      assert.notEqual(await currentMainPid(), pidBefore, 'the upgrade restarted the server');
      assert.deepEqual(await leases(), leasesBefore);

      // Stop: SIGTERM drains and serve exits 0; systemd records a clean stop. systemd
      // counts a death by SIGTERM as clean too, and says how the main process ended
      // only at debug level: that line tells an exit 0 from a kill.
      await must(['systemctl', 'log-level', 'debug']);
      const stopAsked = Date.now();
      await must(['systemctl', 'stop', 'rackboot']);
      durations.stop = (Date.now() - stopAsked) / 1000;
      const state = (await must(['systemctl', 'show', '-p', 'ActiveState,Result,ExecMainCode,ExecMainStatus', 'rackboot'])).stdout;
      assert.match(state, /^ActiveState=inactive$/m);
      assert.match(state, /^Result=success$/m);
      assert.match(state, /^ExecMainStatus=0$/m);
      const systemdSaid = (await must(['journalctl', '--no-pager', '-u', 'rackboot', '-o', 'cat'])).stdout;
      assert.match(systemdSaid, /rackboot\.service: Main process exited, code=exited, status=0\/SUCCESS/);
      assert.doesNotMatch(systemdSaid, /code=killed|status=1\//);
      assert.ok((await journal()).some((event) => event.msg === 'stopping: nothing left in flight'));

      // Purge: the package's files and the state go; the settings and profiles it did not ship stay.
      await must(['apt-get', 'purge', '-y', 'rackboot'], 120_000);
      assert.equal(existsSync(inTree('usr/bin/rackboot')), false);
      assert.equal(existsSync(inTree('usr/lib/rackboot')), false);
      assert.equal(existsSync(inTree('var/lib/rackboot')), false);
      assert.equal(existsSync(inTree('etc/rackboot/rackboot.yaml')), false);
      assert.equal(existsSync(inTree('etc/rackboot/profiles/pkg01.yaml')), true);

      t.diagnostic(
        `package ${path.basename(built.file)}: ${(built.bytes / 1048576).toFixed(1)} MiB, ${(built.installedKiB / 1024).toFixed(0)} MiB installed; Depends: ${built.depends}`,
      );
      t.diagnostic(
        Object.entries(durations)
          .map(([what, seconds]) => `${what} ${seconds.toFixed(1)} s`)
          .join(', '),
      );
    } finally {
      qemu?.kill('SIGKILL');
      if (nspawn && nspawn.exitCode === null) {
        // SIGTERM: nspawn asks the container's systemd to power off; SIGKILL if it does not.
        nspawn.kill('SIGTERM');
        const exited = await Promise.race([new Promise((resolve) => nspawn!.once('exit', resolve)), delay(20_000).then(() => 'timeout')]);
        if (exited === 'timeout') nspawn.kill('SIGKILL');
      }
      host?.delete();
      wire?.delete();
      await rm(work, { recursive: true, force: true });
    }
  },
);
