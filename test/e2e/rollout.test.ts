import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { decodeCpio, encodeCpio } from '../../builder/cpio.js';
import { AssetStore, switchCurrent } from '../../server/assets/builds.js';
import { ConsoleWatcher, readyLinePattern, spawnQemu } from '../../server/demo/qemu.js';
import { writeTestBuild } from '../support/assets.js';
import { httpPort, serverAddress, startRack, type Rack } from '../support/boot.js';
import { freePort } from '../support/dhcp.js';
import { startIpmiSim, type IpmiSim } from '../support/ipmi-sim.js';
import { cliPath, ensureTestBuild } from '../support/build.js';
import { assertRoot } from '../support/netns.js';
import { collect } from '../support/run.js';
import { until } from '../support/until.js';

/**
 * A canary rollout on a real rack: two QEMU machines on channel stable
 * (BIOS, iPXE, Xen and the tiny runtime), rackboot serve, and the CLI.
 * A new build is rolled out with --reboot: the first machine is asked to
 * reboot through its heartbeat, reports ready with the new build, and the
 * rollout widens to the second; then the build is the channel's current.
 * Then a broken build (its runtime hangs before the ready line) is rolled
 * out to one machine: its watchdog (rackboot.watchdog, Xen's watchdog on
 * dom0) resets it with no help from the test, the rollout fails at its
 * deadline, and the machine comes back ready on the previous build, while
 * the second never left it. Last, the first machine gets a BMC (OpenIPMI's
 * ipmi_sim, which powers it off and on through QEMU's QMP) and the broken
 * build again, with a deadline shorter than its watchdog: at the deadline
 * rackboot power-cycles it through the BMC into a network boot, and it is
 * ready on the previous build. Needs root, QEMU and openipmi; fails without
 * them.
 */

const m1 = '52:54:00:00:18:01';
const m2 = '52:54:00:00:18:02';
/**
 * Seconds from the runtime's start to its ready line before Xen resets the
 * machine: the tiny runtime is ready 10-30 s after its start on a loaded
 * CI machine, so this is three times what a boot takes. Every second of it
 * is waited out once, when the broken build hangs.
 */
const watchdogSeconds = 90;
/**
 * The broken builds' deadlines, from the boot script: twice what it takes to
 * reach the broken build's hang (under 30 s after the boot script on a
 * loaded CI machine), and short of the watchdog, which counts from the
 * runtime's start, later still; so the rollout fails, and stops handing out
 * the broken build, before the watchdog or the BMC brings the machine back.
 */
const brokenDeadlineSeconds = 60;
/** How often the runtimes' heartbeats come (rackboot.heartbeat): the reboot requests ride on them. */
const heartbeatSeconds = 5;
let rack: Rack;
let sim: IpmiSim | undefined;
let assets: string;
let profile: (mac: string, name: string) => string;
const machines = new Map<string, { qemu: ChildProcess; console: ConsoleWatcher }>();

before(async () => {
  assertRoot();
  const source = (await new AssetStore(await ensureTestBuild()).current())!;
  assets = path.join(await mkdtemp(path.join(tmpdir(), 'rackboot-rollout-')), 'assets');
  const files: Record<string, Buffer> = {};
  for (const file of source.manifest.files) if (file.name !== 'rackboot.iso') files[file.name] = await readFile(path.join(source.dir, file.name));
  await writeTestBuild(assets, 'old', files);
  await writeTestBuild(assets, 'new', files);
  // The broken build: the same runtime, made to hang before its ready line.
  const entries = decodeCpio(gunzipSync(files['initrd.gz']!));
  const init = entries.find((entry) => entry.path === 'init' && entry.type === 'file');
  assert.ok(init?.type === 'file', 'the initrd has /init');
  const text = Buffer.from(init.data).toString('utf8');
  const ready = '# --- ready ---';
  assert.ok(text.includes(ready), '/init has its ready section');
  init.data = Buffer.from(text.replace(ready, `say "this build hangs before its ready line"\nwhile :; do sleep 60; done\n${ready}`));
  await writeTestBuild(assets, 'broken', { ...files, 'initrd.gz': gzipSync(encodeCpio(entries)) });
  await switchCurrent(assets, 'old');
  await switchCurrent(assets, 'old', 'stable');
  profile = (mac: string, name: string) =>
    [
      `mac: ${mac}`,
      `hostname: ${name}`,
      'boot:',
      '  channel: stable',
      '  menuTimeout: 0',
      `  kernelArgs: "rackboot.watchdog=${watchdogSeconds} rackboot.heartbeat=${heartbeatSeconds}"`,
      'domains: []',
      '',
    ].join('\n');
  rack = await startRack({ 'r1.yaml': profile(m1, 'r1'), 'r2.yaml': profile(m2, 'r2') }, { assets, bridge: true });
  // The second machine's wire joins the first's bridge.
  rack.ns.ip('tuntap', 'add', 'dev', 'tap1', 'mode', 'tap');
  rack.ns.ip('link', 'set', 'tap1', 'master', 'br0');
  rack.ns.ip('link', 'set', 'tap1', 'up');
});

after(async () => {
  await sim?.close();
  for (const { qemu } of machines.values()) qemu.kill('SIGKILL');
  await rack?.close();
  if (assets) await rm(path.dirname(assets), { recursive: true, force: true });
});

/** r1's QMP socket: how its BMC (ipmi_sim's chassis program) switches it off and on. */
const qmpOf = (mac: string) => path.join(rack.work, `${mac.replaceAll(':', '')}.qmp`);

function start(mac: string, tap: string): ConsoleWatcher {
  const qemu = spawnQemu(rack.ns.name, { firmware: 'bios', mac, tap, memoryMiB: 512, rebootable: true, qmp: qmpOf(mac) });
  const console = new ConsoleWatcher(qemu);
  machines.set(mac, { qemu, console });
  return console;
}

async function cli(args: string[]): Promise<string> {
  const result = await collect(
    rack.ns.spawn(process.execPath, [cliPath, ...args, '--server', `${serverAddress}:${httpPort}`, '--state', path.join(rack.work, 'state')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    {
      timeoutMs: 30_000,
      what: args.join(' '),
    },
  );
  assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

type Status = { state: string; reason?: string; hosts: Array<{ mac: string; stage: string }> };
const status = async (): Promise<Status> => (JSON.parse(await cli(['rollout', 'status', '--json'])) as Status[])[0]!;

/** The ready reports the server took from `mac`, newest last. */
function readyReports(mac: string): string[] {
  const events = JSON.parse(rack.ns.exec('curl', ['-sSf', `http://${serverAddress}:${httpPort}/hosts/${mac}/events`])) as Array<{
    stage: string;
    detail?: string;
  }>;
  return events.filter((event) => event.stage === 'ready').map((event) => event.detail ?? '');
}

const context = () =>
  `${sim === undefined ? '' : `BMC calls: ${JSON.stringify(sim.calls())}\n${sim.transcript.slice(-1000)}\n`}server log:\n${rack.server.transcript.slice(-3000)}\nr1:\n${machines.get(m1)?.console.transcript.slice(-2500)}\nr2:\n${machines.get(m2)?.console.transcript.slice(-2500)}`;

test(
  'a rollout reboots the first machine onto the new build, widens to the second, and a broken build comes back by its watchdog, then by its BMC',
  { timeout: 2_400_000 },
  async () => {
    // One boot at a time: two emulated machines booting at once beside the other tests starve a loaded host.
    const one = start(m1, 'tap0');
    await one.waitFor(readyLinePattern, 600_000, 'r1 ready on the old build');
    const two = start(m2, 'tap1');
    await two.waitFor(readyLinePattern, 600_000, 'r2 ready on the old build');
    await until('both ready reports', 60_000, () => (readyReports(m1).length > 0 && readyReports(m2).length > 0 ? true : undefined), context);
    assert.match(readyReports(m1).at(-1)!, / build=old xen=4\.17\S* kernel=6\.1\.\S+$/);
    assert.match(one.transcript, new RegExp(`rackboot-runtime: heartbeat every ${heartbeatSeconds} s`));

    // The new build, one machine first, with reboots: r1 is asked through its heartbeat, reboots and is healthy; then r2.
    const fromOne = one.transcript.length;
    const fromTwo = two.transcript.length;
    const rolled = Date.now();
    assert.match(
      await cli(['rollout', 'start', '--channel', 'stable', '--build', 'new', '--first', '1', '--reboot', '--deadline', '10m']),
      /^channel stable: new \(from old\), running; 1 moved, 1 waiting$/m,
    );
    const asked = await one.waitFor(/the server asks this host to reboot/, 120_000, 'r1 asked to reboot', fromOne);
    await one.waitFor(readyLinePattern, 600_000, 'r1 ready on the new build', asked.end);
    const askedTwo = await two.waitFor(/the server asks this host to reboot/, 300_000, 'r2 asked to reboot once r1 is healthy', fromTwo);
    await two.waitFor(readyLinePattern, 600_000, 'r2 ready on the new build', askedTwo.end);
    const done = await until('the rollout done', 120_000, async () => ((await status()).state === 'done' ? await status() : undefined), context);
    assert.deepEqual(
      done.hosts.map((host) => host.stage),
      ['healthy', 'healthy'],
    );
    assert.equal(path.basename(await readlink(path.join(assets, 'channels', 'stable'))), 'new', "the channel's current build");
    const rolledSeconds = (Date.now() - rolled) / 1000;
    assert.match(readyReports(m2).at(-1)!, / build=new /);

    // A broken build to r1 alone: it hangs, its watchdog resets it, the rollout fails, and it comes back on "new"; r2 stays.
    const brokenFrom = one.transcript.length;
    const stayFrom = two.transcript.length;
    const readyBefore = readyReports(m2).length;
    const broke = Date.now();
    await cli(['rollout', 'start', '--channel', 'stable', '--build', 'broken', '--first', '1', '--reboot', '--deadline', `${brokenDeadlineSeconds}s`]);
    const hang = await one.waitFor(/this build hangs before its ready line/, 300_000, 'r1 running the broken build', brokenFrom);
    assert.match(one.transcript.slice(brokenFrom), new RegExp(`watchdog armed: the machine resets unless it is ready within ${watchdogSeconds} s`));
    const reset = await one.waitFor(
      /Watchdog timer fired for domain 0|watchdog rebooting machine/i,
      (watchdogSeconds + 120) * 1000,
      "Xen's watchdog resetting r1",
      hang.end,
    );
    const resetSeconds = (Date.now() - broke) / 1000;
    const failed = await until('the rollout failed', 300_000, async () => ((await status()).state === 'failed' ? await status() : undefined), context);
    assert.match(failed.reason ?? '', new RegExp(`^${m1}: no ready report with broken within ${brokenDeadlineSeconds / 60} min of its boot script$`));
    await one.waitFor(readyLinePattern, 900_000, 'r1 ready again', reset.end);
    await until('r1 reports ready on the previous build', 120_000, () => (/ build=new /.test(readyReports(m1).at(-1)!) ? true : undefined), context);
    process.stdout.write(
      `# rollout: the new build healthy on both machines ${rolledSeconds.toFixed(0)} s after the start; the broken one: Xen's watchdog reset r1 ${resetSeconds.toFixed(0)} s after its rollout started, ready again on the previous build after ${((Date.now() - broke) / 1000).toFixed(0)} s\n`,
    );
    assert.deepEqual(
      failed.hosts.map((host) => [host.mac, host.stage]),
      [
        [m1, 'failed'],
        [m2, 'waiting'],
      ],
    );
    assert.doesNotMatch(two.transcript.slice(stayFrom), /asks this host to reboot|rackboot-runtime: ready/, 'r2 never left its build');
    assert.equal(readyReports(m2).length, readyBefore);
    assert.equal(two.exitCode, undefined, 'r2 still runs');

    // r1 gets a BMC, and the broken build again with a deadline short of its watchdog: rackboot power-cycles it through the BMC.
    await cli(['rollout', 'abort', '--channel', 'stable']);
    const bmcPort = await freePort();
    sim = await startIpmiSim({
      address: '127.0.0.1',
      port: bmcPort,
      user: 'admin',
      password: 'rack-secret',
      qmpSocket: qmpOf(m1),
      spawn: (command, args, options) => rack.ns.spawn(command, args, options),
    });
    const withBmc = path.join(rack.work, 'r1-bmc.yaml');
    await writeFile(
      withBmc,
      `${profile(m1, 'r1')}bmc:\n  address: 127.0.0.1\n  port: ${bmcPort}\n  user: admin\n  passwordFile: ${sim.passwordFile}\n  cipherSuite: 3\n`,
    );
    assert.match(await cli(['profiles', 'apply', withBmc, '--name', 'r1']), /^saved r1\.yaml: r1 /);
    const bmcFrom = one.transcript.length;
    const stayAgain = two.transcript.length;
    const readyAgain = readyReports(m2).length;
    const bmcStarted = Date.now();
    await cli(['rollout', 'start', '--channel', 'stable', '--build', 'broken', '--first', '1', '--reboot', '--deadline', `${brokenDeadlineSeconds}s`]);
    const hangAgain = await one.waitFor(/this build hangs before its ready line/, 300_000, 'r1 running the broken build again', bmcFrom);
    const hangSeconds = (Date.now() - bmcStarted) / 1000;
    await sim.waitForCall(/^set power 0$/, (brokenDeadlineSeconds + 120) * 1000);
    const offAt = one.transcript.length;
    const offSeconds = (Date.now() - bmcStarted) / 1000;
    await sim.waitForCall(/^set power 1$/, 30_000);
    assert.deepEqual(
      sim.calls().filter((call) => call !== 'get power'),
      ['get boot', 'set boot pxe', 'set power 0', 'set power 1'],
      'next boot from the network, then off and on',
    );
    assert.doesNotMatch(one.transcript.slice(hangAgain.end, offAt), /Watchdog timer fired|watchdog rebooting/i, 'the BMC, not the watchdog, reset r1');
    const silent = await until(
      'the rollout failed by silence',
      60_000,
      async () => ((await status()).state === 'failed' ? await status() : undefined),
      context,
    );
    assert.match(silent.reason ?? '', new RegExp(`^${m1}: no ready report with broken within ${brokenDeadlineSeconds / 60} min of its boot script$`));
    const cycled = rack.events().find((event) => event.event === 'bmc' && event.mac === m1);
    assert.equal(cycled?.bmc, `127.0.0.1:${bmcPort}`, 'the server logged the power-cycle with the BMC');
    assert.match(String(cycled?.why), /rollout of broken on channel stable: the host went silent/);
    await one.waitFor(readyLinePattern, 900_000, 'r1 ready again after its BMC power-cycled it', offAt);
    await until('r1 reports ready on the previous build', 120_000, () => (/ build=new /.test(readyReports(m1).at(-1)!) ? true : undefined), context);
    process.stdout.write(
      `# rollout with a BMC: r1 hung ${hangSeconds.toFixed(0)} s after the rollout started, was powered off by its BMC at ${offSeconds.toFixed(0)} s (deadline ${brokenDeadlineSeconds} s from its boot script), ready on the previous build at ${((Date.now() - bmcStarted) / 1000).toFixed(0)} s\n`,
    );
    assert.doesNotMatch(two.transcript.slice(stayAgain), /asks this host to reboot|rackboot-runtime: ready/, 'r2 never left its build');
    assert.equal(readyReports(m2).length, readyAgain);
    assert.doesNotMatch(rack.server.transcript, /rack-secret/, 'the BMC password is in no log line');
  },
);
