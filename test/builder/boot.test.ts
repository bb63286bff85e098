import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { build, type BuildResult } from '../../builder/build.js';
import { silentLogger } from '../../server/log.js';
import { assertRoot, Netns, run } from '../support/netns.js';
import { ConsoleMachine, serveInNamespace, testBootToken, xenBootArgs, type SeenRequest } from './qemu.js';

/**
 * The runtime booted for real: Xen and the dom0 kernel under QEMU (TCG; KVM
 * cannot run Xen here), an e1000 on a tap inside a namespace of the test's
 * own, and a server on 198.18.0.1 handing out runtime.env. Needs root and
 * qemu-system-x86_64; without them the test fails.
 */

const MAC = '52:54:00:12:34:56';
const PORT = 8080;
// openssl passwd -6 -salt rackboottest 'correct horse'
const PASSWORD = 'correct horse';
const ROOT_HASH = '$6$rackboottest$R3I6dZFiAb60PrrUAAtXOMq7uhRrLSm.wvav/fW7uy9vr6fdYQ.pt1/wT0EiPcmrfkJXw5Jcg4yf7oJuDAcI40';
const QEMU_DEADLINE_MS = 240_000;
const READY = /rackboot-runtime: ready hostname=(\S+) ip=(\S+) mac=(\S+) domains=(\d+)\r*\n/;

let result: BuildResult;
let out: string;

before(async () => {
  assertRoot();
  run('qemu-system-x86_64', ['--version']);
  out = await mkdtemp(join(tmpdir(), 'rackboot-boot-'));
  result = await build({ out, variant: 'tiny', log: silentLogger() }); // shares the default download cache
});

after(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

type Request = SeenRequest;

/** The runtime's GETs, without its event reports. */
const gets = (requests: Request[]) => requests.filter((request) => request.method === 'GET');
/** The stages the runtime reported, in order. */
const reported = (requests: Request[]) =>
  requests
    .filter((request) => request.method === 'POST' && request.url.endsWith('/events'))
    .map((request) => new URLSearchParams(request.body ?? '').get('stage'));

const serve = (ns: Netns, routes: Record<string, string>) => serveInNamespace(ns, PORT, routes);

test('static network: the runtime fetches runtime.env, applies it, prints one ready line and powers off', { timeout: 300_000 }, async () => {
  const ns = Netns.create('rbboot');
  let machine: ConsoleMachine | undefined;
  try {
    ns.addTap('tap0', '198.18.0.1/24');
    const requests = await serve(ns, {
      [`/hosts/${MAC}/runtime.env`]: [
        "RACKBOOT_HOSTNAME='node01'",
        `RACKBOOT_ROOT_HASH='${ROOT_HASH}'`,
        "RACKBOOT_TIMEZONE='../../etc/passwd'", // refused, and the boot goes on
        'echo this line is not an assignment and must not run',
        '',
      ].join('\n'),
    });
    const args = [
      `rackboot.server=http://198.18.0.1:${PORT}`,
      `rackboot.mac=${MAC.toUpperCase()}`,
      'rackboot.net=static',
      'rackboot.ip=198.18.0.50/24',
      'rackboot.gw=198.18.0.1',
      'rackboot.dns=198.18.0.1,198.18.0.2',
      'rackboot.hostname=from-cmdline',
      'rackboot.poweroff=1',
      `rackboot.token=${testBootToken}`,
    ].join(' ');
    machine = new ConsoleMachine(ns, xenBootArgs(result.dir, args, MAC), QEMU_DEADLINE_MS);
    const ready = await machine.waitFor(READY, QEMU_DEADLINE_MS);
    const readySeconds = machine.elapsed();
    const exit = await machine.exited;
    const totalSeconds = machine.elapsed();
    const console = machine.output;

    assert.equal(ready[1], 'node01', 'runtime.env hostname wins over rackboot.hostname');
    assert.equal(ready[2], '198.18.0.50/24');
    assert.equal(ready[3], MAC);
    assert.equal(ready[4], '0', 'the tiny runtime starts no domains');
    assert.equal(console.match(/rackboot-runtime: ready /g)?.length, 1, 'exactly one ready line');
    assert.deepEqual(
      gets(requests).map((r) => `${r.method} ${r.url}`),
      [`GET /hosts/${MAC}/runtime.env`],
      'one request for runtime.env, by the MAC from the command line',
    );
    assert.match(gets(requests)[0]!.userAgent, /Wget/);
    // The boot token travels in a header, on every request, never in a URL.
    assert.ok(
      requests.every((r) => r.token === testBootToken && !r.url.includes('token')),
      JSON.stringify(requests),
    );
    // Where the boot stood, reported to the server: booted, the setting that failed, ready.
    assert.deepEqual(reported(requests), ['booted', 'setting-failed', 'ready']);
    // And its storage, once, before ready: this machine has no disk, so an empty list.
    assert.deepEqual(
      requests.filter((request) => request.url.endsWith('/storage')).map((request) => [request.method, request.url, request.body]),
      [['POST', `/hosts/${MAC}/storage`, '']],
    );
    assert.match(console, /rackboot-runtime: storage: 0 disk\(s\), 0 volume group\(s\)/);
    assert.doesNotMatch(console, /storage report not sent/);
    assert.ok(requests.every((r) => r.method === 'GET' || r.url === `/hosts/${MAC}/events` || r.url === `/hosts/${MAC}/storage`));
    const failed = new URLSearchParams(requests.find((r) => r.body?.includes('setting-failed'))!.body);
    assert.equal(failed.get('detail'), "timezone: '../../etc/passwd' is not a zoneinfo name");
    assert.match(
      new URLSearchParams(requests.filter((r) => r.method === 'POST' && r.url.endsWith('/events')).at(-1)!.body).get('detail') ?? '',
      /^ip=198\.18\.0\.50\/24 domains=0 build=none xen=4\.17\S* kernel=6\.1\.\S+-amd64$/,
    );
    assert.match(console, /rackboot-runtime: setting timezone failed: '\.\.\/\.\.\/etc\/passwd' is not a zoneinfo name/);
    assert.match(console, /runtime\.env: ignored 1 line\(s\)/);
    assert.doesNotMatch(console, /this line is not an assignment/);
    assert.ok(!console.includes(ROOT_HASH), 'the root hash never reaches the console');
    assert.ok(ready.end <= console.length);
    assert.equal(exit.signal, null, `QEMU was killed (deadline) instead of powering off; console:\n${machine.tail()}`);
    assert.equal(exit.code, 0);
    // Only our own lines from the runtime (the ignored line, the timezone, the storage, ready); the kernel is quiet.
    const runtimeLines = console.split('\n').filter((l) => l.startsWith('rackboot-runtime:'));
    assert.equal(runtimeLines.length, 4, runtimeLines.join('\n'));
    process.stdout.write(`# boot (static): ready line after ${readySeconds.toFixed(1)} s, QEMU exited after ${totalSeconds.toFixed(1)} s\n`);
  } finally {
    machine?.kill();
    ns.delete();
  }
});

test('dhcp network: udhcpc gets a lease; root can log in on the console with the password from runtime.env', { timeout: 300_000 }, async () => {
  const ns = Netns.create('rbboot');
  const work = await mkdtemp(join(tmpdir(), 'rackboot-udhcpd-'));
  let machine: ConsoleMachine | undefined;
  try {
    ns.addTap('tap0', '198.18.0.1/24');
    const requests = await serve(ns, {
      [`/hosts/${MAC}/runtime.env`]: `RACKBOOT_HOSTNAME='node02'\nRACKBOOT_ROOT_HASH='${ROOT_HASH}'\nRACKBOOT_TIMEZONE='Europe/Berlin'\n`,
    });
    const config = join(work, 'udhcpd.conf');
    await writeFile(join(work, 'udhcpd.leases'), '');
    await writeFile(
      config,
      [
        'start 198.18.0.100',
        'end 198.18.0.110',
        'interface tap0',
        `lease_file ${join(work, 'udhcpd.leases')}`,
        `pidfile ${join(work, 'udhcpd.pid')}`,
        'option subnet 255.255.255.0',
        'option router 198.18.0.1',
        'option dns 198.18.0.1',
        'option lease 3600',
        '',
      ].join('\n'),
    );
    const udhcpd = ns.spawn('busybox', ['udhcpd', '-f', config]);
    let udhcpdLog = '';
    udhcpd.stderr!.on('data', (c: Buffer) => (udhcpdLog += c.toString()));
    udhcpd.stdout!.on('data', (c: Buffer) => (udhcpdLog += c.toString()));

    // rackboot.dns is ignored with dhcp; it is here to show the harness's comma escaping reaches dom0 intact.
    const args = [
      `rackboot.server=http://198.18.0.1:${PORT}`,
      `rackboot.mac=${MAC}`,
      'rackboot.net=dhcp',
      'rackboot.dns=198.18.0.7,198.18.0.8',
      `rackboot.token=${testBootToken}`,
    ].join(' ');
    machine = new ConsoleMachine(ns, xenBootArgs(result.dir, args, MAC), QEMU_DEADLINE_MS);
    const ready = await machine.waitFor(READY, QEMU_DEADLINE_MS);
    assert.equal(ready[1], 'node02');
    assert.match(ready[2]!, /^198\.18\.0\.(10\d|110)\/24$/, `lease address; udhcpd said:\n${udhcpdLog}`);
    assert.equal(ready[3], MAC);
    assert.equal(gets(requests).length, 1);
    // The report follows the ready line on the console.
    for (let waited = 0; reported(requests).at(-1) !== 'ready' && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(reported(requests), ['booted', 'ready']);
    process.stdout.write(`# boot (dhcp): ready line after ${machine.elapsed().toFixed(1)} s\n`);

    // Log in on the console: proves the hash reached /etc/shadow in a form login accepts.
    // getty and login flush pending input after printing their prompts, so
    // typing at once can be lost: wait a moment, and answer again if the
    // prompt stays.
    const prompt = await machine.waitFor(/node02 login: /, 60_000, ready.end);
    await delay(1000);
    machine.write('root\n');
    const password = await machine.waitFor(/Password: /, 30_000, prompt.end);
    let shell: Awaited<ReturnType<ConsoleMachine['waitFor']>> | undefined;
    for (let attempt = 0; attempt < 3 && shell === undefined; attempt++) {
      await delay(1000);
      machine.write(`${PASSWORD}\n`);
      shell = await machine.waitFor(/~ # /, 15_000, password.end).catch(() => undefined);
    }
    assert.ok(shell, `no shell after logging in; console:\n${machine.tail()}`);
    // On a loaded machine the first keystrokes can still cross the shell's
    // cursor query and be lost: a line that never comes back is typed again.
    let facts: Awaited<ReturnType<ConsoleMachine['waitFor']>> | undefined;
    // The console's input buffer also drops characters when keys come faster
    // than an emulated CPU takes them: type in short pieces, and start each
    // try with ^C, which throws away a line left half-typed (an open quote).
    const command =
      'echo tz=$(cat /etc/timezone) shadow=$(cut -d: -f1,2 /etc/shadow | head -n 1)' +
      " dns=$(grep -c '^nameserver 198.18.0.1$' /etc/resolv.conf) $(grep -o 'rackboot.dns=[^ ]*' /proc/cmdline)" +
      ' marker-$((6*7))\n';
    for (let attempt = 0; attempt < 3 && facts === undefined; attempt++) {
      await delay(1000);
      machine.write('\x03');
      await delay(500);
      for (let at = 0; at < command.length; at += 8) {
        machine.write(command.slice(at, at + 8));
        await delay(40);
      }
      facts = await machine.waitFor(/tz=(\S+) shadow=(\S+) dns=(\d+) rackboot\.dns=(\S+) marker-42/, 20_000, shell.end).catch(() => undefined);
    }
    assert.ok(facts, `the shell never answered; console:\n${machine.tail()}`);
    assert.equal(facts[1], 'Europe/Berlin');
    assert.equal(facts[2], `root:${ROOT_HASH}`);
    assert.equal(facts[3], '1', 'resolv.conf from the DHCP lease');
    assert.equal(facts[4], '198.18.0.7,198.18.0.8', 'a comma in a dom0 argument survives QEMU');
    machine.write('poweroff -f\n');
    const exit = await machine.exited;
    assert.equal(exit.signal, null, 'QEMU powered off instead of being killed');
  } finally {
    machine?.kill();
    ns.delete();
    await rm(work, { recursive: true, force: true });
  }
});

test('a MAC that matches no NIC falls back to the first one; a 404 for runtime.env leaves the command-line settings', { timeout: 300_000 }, async () => {
  const ns = Netns.create('rbboot');
  let machine: ConsoleMachine | undefined;
  try {
    ns.addTap('tap0', '198.18.0.1/24');
    const requests = await serve(ns, {});
    const wrongMac = '52:54:00:00:00:99';
    const args = [
      `rackboot.server=http://198.18.0.1:${PORT}/`,
      `rackboot.mac=${wrongMac}`,
      'rackboot.net=static',
      'rackboot.ip=198.18.0.51/24',
      'rackboot.hostname=from-cmdline',
      'rackboot.poweroff=1',
      `rackboot.token=${testBootToken}`,
    ].join(' ');
    machine = new ConsoleMachine(ns, xenBootArgs(result.dir, args, MAC), QEMU_DEADLINE_MS);
    const ready = await machine.waitFor(READY, QEMU_DEADLINE_MS);
    await machine.exited;
    const console = machine.output;
    assert.match(console, new RegExp(`rackboot-runtime: no interface has MAC ${wrongMac} \\(rackboot.mac\\); using the first one, eth0`));
    assert.match(console, /rackboot-runtime: runtime\.env not fetched from http:\/\/198\.18\.0\.1:8080\/hosts\/52:54:00:00:00:99\/runtime\.env: .*404/);
    assert.deepEqual(
      gets(requests).map((r) => r.url),
      [`/hosts/${wrongMac}/runtime.env`],
      'asked once, by the MAC the server knows the host by; a 404 is not retried',
    );
    assert.equal(ready[1], 'from-cmdline');
    assert.equal(ready[2], '198.18.0.51/24');
    assert.equal(ready[3], MAC, 'the ready line names the MAC of the interface actually used');
  } finally {
    machine?.kill();
    ns.delete();
  }
});
