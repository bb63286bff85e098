import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { ConsoleWatcher, readyLinePattern } from '../../server/demo/qemu.js';
import { addClient, httpPort, serverAddress, startMachine, startRack, type Rack, type RackClient } from '../support/boot.js';
import { cliPath, repoRoot } from '../support/build.js';
import { assertRoot, run } from '../support/netns.js';
import { until } from '../support/until.js';
import { ensureDebianTestBuild } from '../support/debian-build.js';

/**
 * A hostile neighbour on the rack's wire while a machine network-boots to
 * the Debian dom0 with two guests: a stranger namespace on the same bridge,
 * with its own MAC, tries every way in that a stranger has. Everything is
 * refused, the machine still reaches its ready line with its domains, its
 * timeline shows only its own boot, and when the stranger finally boots as
 * the machine's MAC, the server raises the two-boots alarm. Needs root and
 * QEMU; fails (never skips) without them.
 */

const victim = '52:54:00:12:34:56';
const victimPath = victim.replaceAll(':', '-');
const victimAddress = '198.18.0.50';
const strangerMac = '02:00:00:00:0b:ad';
/**
 * The machine's heartbeat (rackboot.heartbeat), which the test waits out
 * twice: shorter than the runtime's 30 s, and long enough that the
 * machine's traffic seldom meets the stranger's while both hold its MAC.
 */
const heartbeatSeconds = 10;
const floodScript = join(repoRoot, 'dist/test/support/stranger-flood.js');
const base = `http://${serverAddress}:${httpPort}`;
// openssl passwd -6 -salt rackboottest 'correct horse'
const rootHash = '$6$rackboottest$R3I6dZFiAb60PrrUAAtXOMq7uhRrLSm.wvav/fW7uy9vr6fdYQ.pt1/wT0EiPcmrfkJXw5Jcg4yf7oJuDAcI40';

let out: string;
let rack: Rack;
let stranger: RackClient;
let qemu: ChildProcess | undefined;
let machine: ConsoleWatcher;

before(async () => {
  assertRoot();
  run('qemu-system-x86_64', ['--version']);
  out = await mkdtemp(join(tmpdir(), 'rackboot-hostile-'));
  // The Debian tests' build (or one made now), hard-linked: a copy of the folder the server may write in.
  execFileSync('cp', ['-al', await ensureDebianTestBuild(), join(out, 'assets')]);
  rack = await startRack(
    {
      'xen01.yaml': [
        `mac: ${victim}`,
        'hostname: xen01',
        'network:',
        '  mode: static',
        `  address: ${victimAddress}/24`,
        '  gateway: 198.18.0.1',
        `rootPasswordHash: "${rootHash}"`,
        'ssh: true',
        'boot:',
        '  menuTimeout: 0',
        `  kernelArgs: "rackboot.heartbeat=${heartbeatSeconds}"`,
        'domains:',
        '  - name: demo1',
        '  - name: demo2',
        // A Debian guest's first-boot settings hold a root hash of their own (not started).
        '  - name: deb1',
        '    image: debian',
        '    autostart: false',
        '    firstBoot:',
        `      rootPasswordHash: "${rootHash}"`,
        '',
      ].join('\n'),
    },
    { assets: join(out, 'assets'), bridge: true },
  );
  stranger = await addClient(rack, strangerMac);
  stranger.dhcp();
});

after(async () => {
  qemu?.kill('SIGKILL');
  stranger?.close();
  await rack?.close();
  if (out) await rm(out, { recursive: true, force: true });
});

/** curl from the stranger: the status code and the body. */
function strangerFetch(url: string, ...args: string[]): { status: number; body: string } {
  const text = stranger.ns.exec('curl', ['-sS', '-w', '\n%{http_code}', ...args, url]);
  const cut = text.lastIndexOf('\n');
  return { status: Number(text.slice(cut + 1)), body: text.slice(0, cut) };
}

/**
 * strangerFetch while the machine is on the wire with the same MAC and
 * address: the bridge may send a reply of the server's to the machine, whose
 * kernel resets a connection it never opened (curl exits 56, or 7 or 52).
 * The stranger tries again, as any would, for up to 10 s.
 */
async function fetchBesideTheMachine(url: string): Promise<{ status: number; body: string }> {
  let reset = '';
  return until(
    `a fetch of ${url} beside the machine`,
    10_000,
    () => {
      try {
        return strangerFetch(url);
      } catch (error) {
        const code = (error as { status?: number }).status;
        if (code === undefined || ![7, 52, 56].includes(code)) throw error;
        reset = String(error);
        process.stderr.write(`hostile neighbour: the stranger's fetch beside the machine failed (curl exit ${code}); trying again\n`);
        return undefined;
      }
    },
    () => reset,
  );
}

const tokenPattern = /rackboot\.token=(\S+)/;

function strangerSequence(when: string): void {
  // Boot scripts, xen.cfg and the TFTP copies: the host's parts, never its token.
  const script = strangerFetch(`${base}/hosts/${victimPath}/boot.ipxe?platform=pcbios`);
  assert.equal(script.status, 200, when);
  assert.doesNotMatch(script.body, tokenPattern, `${when}: a token in the boot script the stranger got`);
  const build = /, build (\S+), entry /.exec(script.body)?.[1];
  assert.ok(build, script.body);
  for (const url of [
    `${base}/hosts/${victimPath}/builds/${build}/xen.cfg`,
    `tftp://${serverAddress}/hosts/${victimPath}/boot.ipxe`,
    `tftp://${serverAddress}/hosts/${victimPath}/builds/${build}/xen.cfg`,
  ]) {
    assert.doesNotMatch(stranger.ns.exec('curl', ['-sS', url]), tokenPattern, `${when}: ${url}`);
  }
  // The secrets: without a token, with a made-up one, in a URL, over TFTP.
  for (const args of [[], ['-H', 'X-Rackboot-Token: b.AAAAAAAAAAAA.0.c6120032.AAAAAAAAAAAAAAAAAAAAAA']]) {
    assert.equal(strangerFetch(`${base}/hosts/${victimPath}/runtime.env`, ...args).status, 403, when);
    assert.equal(strangerFetch(`${base}/hosts/${victimPath}/domains/demo1.cfg`, ...args).status, 403, when);
  }
  for (const args of [[], ['-H', 'X-Rackboot-Token: g.AAAAAAAAAAAA.deb1.c6120032.AAAAAAAAAAAAAAAAAAAAAA']]) {
    const settings = strangerFetch(`${base}/hosts/${victimPath}/domains/deb1/first-boot`, ...args);
    assert.equal(settings.status, 403, `${when}: a guest's first-boot settings`);
    assert.doesNotMatch(settings.body, /\$6\$/, when);
  }
  assert.throws(() => stranger.ns.exec('curl', ['-sS', '--fail', `tftp://${serverAddress}/hosts/${victimPath}/domains/demo1.cfg`]));
  // The per-host image is an admin download.
  assert.ok([401, 403].includes(strangerFetch(`${base}/hosts/${victimPath}/rackboot.iso`, '-o', '/dev/null').status), `${when}: the host's image`);
  // Fake reports and heartbeats.
  for (const stage of ['ready', 'failed']) {
    assert.equal(strangerFetch(`${base}/hosts/${victim}/events`, '--data', `stage=${stage}`).status, 403, when);
  }
  assert.equal(strangerFetch(`${base}/hosts/${victim}/alive`, '--data', '').status, 403, when);
  assert.equal(strangerFetch(`${base}/hosts/${victim}/events`, '--data', 'stage=guest-failed&domain=deb1').status, 403, when);
  // Fake storage and guest network reports.
  assert.equal(strangerFetch(`${base}/hosts/${victim}/storage`, '--data-binary', 'disk name=vda size=1 transport=virtio').status, 403, when);
  const vif = 'vif domain=demo1 mac=02:00:00:00:00:01 bridge=xenbr0 sent-bytes=0 sent-packets=0 received-bytes=0 received-packets=0';
  assert.equal(strangerFetch(`${base}/hosts/${victim}/network`, '--data-binary', vif).status, 403, when);
}

test(
  'a stranger on the wire gets no token and no secret of a booting host, cannot write its timeline, and its takeover of the MAC is flagged',
  { timeout: 1_200_000 },
  async () => {
    // Before the machine boots: with its own address, then with the machine's reserved address on its own interface.
    strangerSequence('with its own address');
    const own = stranger.address!;
    stranger.setAddress(`${victimAddress}/24`);
    strangerSequence("on the host's reserved address");
    stranger.setAddress(`${own}/24`);

    ({ qemu, console: machine } = await startMachine(rack, 'bios', victim, { memoryMiB: 512 }));
    const started = Date.now();
    // At once: a pool grab, silent TFTP transfers, a connection flood and never-read live pages, held for 40 s.
    const flood = stranger.ns.spawn(process.execPath, [floodScript, serverAddress, String(httpPort), '40000']);
    const flooded = new ConsoleWatcher(flood);
    const floodEnded = new Promise<void>((resolve) => flood.once('exit', () => resolve()));
    // While the machine boots, the stranger keeps trying.
    const during = (async () => {
      for (let round = 0; round < 3; round++) {
        await delay(20_000);
        strangerSequence(`during the boot, round ${round + 1}`);
      }
    })();
    const ready = await machine.waitFor(readyLinePattern, 900_000, 'the ready line');
    await during;
    await floodEnded;
    const line = flooded.transcript.split('\n').find((text) => text.startsWith('{'));
    assert.ok(line, `the flood printed no summary:\n${flooded.transcript}`);
    const summary = JSON.parse(line) as {
      dhcp: { offers: number; acks: number; leaseSeconds: number[]; sendErrors: number };
      tftp: { sockets: number; answered: number; refused: number };
      http: { opened: number; closedByServer: number; streaming: number };
      sse: { opened: number; closedByServer: number; streaming: number };
    };
    process.stderr.write(`hostile neighbour: flood ${JSON.stringify(summary)}\n`);
    // Made-up MACs hold first leases only (5 minutes), not the pool for the lease time.
    assert.ok(summary.dhcp.acks >= 20, `the pool grab got few leases: the test did not test it: ${JSON.stringify(summary.dhcp)}`);
    assert.ok(
      summary.dhcp.leaseSeconds.every((seconds) => seconds <= 300),
      JSON.stringify(summary.dhcp),
    );
    // One client's share of TFTP, and its silent transfers ended.
    assert.ok(summary.tftp.answered <= 8, JSON.stringify(summary.tftp));
    // Connections past the per-address cap are closed by the server as they arrive; live pages within their cap.
    const metrics = rack.ns.exec('curl', ['-sSf', `${base}/metrics`]);
    const refusedConnections = Number(/^rackboot_http_connections_refused_total\{cap="per-address"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
    assert.ok(refusedConnections >= 1000, `connections refused by the per-address cap: ${refusedConnections}`);
    assert.ok(summary.sse.streaming <= 50, JSON.stringify(summary.sse));
    assert.equal(strangerFetch(`${base}/boot.ipxe`).status, 200, 'the server still answers the stranger too');
    process.stderr.write(`hostile neighbour: the machine was ready after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    assert.equal(ready.groups!.hostname, 'xen01');
    assert.equal(ready.groups!.ip, `${victimAddress}/24`);
    assert.equal(ready.groups!.domains, '2', `both domains started; console:\n${machine.transcript.slice(-4000)}`);
    assert.equal(
      rack.events().filter((event) => event.event === 'runtime-env' && event.mac === victim).length,
      1,
      'the machine, and only it, got its secrets, once',
    );

    const adminToken = (await readFile(join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
    const timeline = (): Array<{ source: string; stage: string; detail?: string; domain?: string }> =>
      (
        JSON.parse(rack.ns.exec('curl', ['-sSf', '-H', `Authorization: Bearer ${adminToken}`, `${base}/api/hosts/${victim}`])) as {
          timeline: Array<{ source: string; stage: string; detail?: string; domain?: string }>;
        }
      ).timeline;
    // Both guests report with their own tokens.
    const deadline = Date.now() + 300_000;
    // A guest whose report's answer came late sends it again, with the same report id: the server keeps it once.
    const guestsReady = () =>
      timeline()
        .filter((event) => event.stage === 'guest-ready')
        .map((event) => event.domain)
        .sort();
    // dom0's own ready event can reach the server after its guests' reports (its POST retries while the stranger floods).
    const hostReady = () => timeline().some((event) => event.stage === 'ready');
    while ((guestsReady().length < 2 || !hostReady()) && Date.now() < deadline) await delay(2000);
    const seen = timeline();
    assert.deepEqual(guestsReady(), ['demo1', 'demo2']);
    // Only the machine's own boot: no refusals, alarms or failures; one ready.
    assert.deepEqual(
      seen.filter((event) => ['refused', 'alarm', 'failed', 'setting-failed', 'domain-failed'].includes(event.stage)),
      [],
      JSON.stringify(seen),
    );
    assert.equal(seen.filter((event) => event.stage === 'ready').length, 1);
    assert.deepEqual(
      seen.filter((event) => event.source === 'runtime').map((event) => event.stage),
      ['booted', 'configured', 'domain-started', 'domain-started', 'ready'],
    );
    const refusals = rack.events().filter((event) => event.event === 'host-secret-refused' || event.event === 'host-event-refused');
    assert.ok(refusals.length >= 20, `the stranger's attempts are logged: ${refusals.length}`);
    assert.doesNotMatch(rack.server.transcript, /\b[bgi]\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_.-]{22,}/, 'a token in the server log');

    // The machine's heartbeat (after its ready line, every heartbeatSeconds)
    // is what shows its token again after the takeover: first see one taken.
    assert.match(machine.transcript, new RegExp(`rackboot-runtime: heartbeat every ${heartbeatSeconds} s`));
    const heartbeats = () =>
      rack
        .events()
        .filter((event) => event.event === 'http' && /\/alive$/.test(String(event.path)) && event.remote === victimAddress)
        .map((event) => `${event.time} ${event.status}`);
    const heartbeatDeadline = Date.now() + 120_000;
    while (!heartbeats().some((beat) => beat.endsWith(' 204')) && Date.now() < heartbeatDeadline) await delay(2000);
    assert.ok(
      heartbeats().some((beat) => beat.endsWith(' 204')),
      `the machine's heartbeat was not taken: ${heartbeats().join(', ') || 'none'}`,
    );

    // Last, the stranger becomes the machine: its MAC and its address, a DHCP
    // exchange and a boot script with a token. Nothing on the wire tells the
    // two apart; the machine's next heartbeat shows a superseded token.
    stranger.ns.ip('link', 'set', 'eth0', 'down');
    stranger.ns.ip('link', 'set', 'eth0', 'address', victim);
    stranger.ns.ip('link', 'set', 'eth0', 'up');
    stranger.dhcp();
    assert.equal(stranger.address, victimAddress, 'the DHCP server gives the MAC its reserved address');
    assert.match(
      (await fetchBesideTheMachine(`${base}/hosts/${victimPath}/boot.ipxe?platform=pcbios`)).body,
      tokenPattern,
      'a stranger with the MAC and the address is the host, as far as anyone can tell',
    );
    stranger.ns.ip('link', 'set', 'eth0', 'down'); // and goes quiet: the machine's traffic reaches the server again
    const alarmDeadline = Date.now() + 120_000;
    let alarms = timeline().filter((event) => event.stage === 'alarm');
    while (alarms.length === 0 && Date.now() < alarmDeadline) {
      await delay(2000);
      alarms = timeline().filter((event) => event.stage === 'alarm');
    }
    assert.ok(alarms.length > 0, `no alarm for two boots of one MAC; the machine's heartbeats: ${heartbeats().join(', ') || 'none'}`);
    process.stderr.write(`hostile neighbour: alarm "${alarms[0]!.detail}"; the machine's heartbeats: ${heartbeats().join(', ')}\n`);
    assert.match(alarms[0]!.detail ?? '', /two boots of 52:54:00:12:34:56 at once\?/);
    // The log is written in batches (at least every 100 ms): the line may follow the timeline's event by a moment.
    const loggedDeadline = Date.now() + 10_000;
    const alarmLogged = () => rack.events().some((event) => event.event === 'host-alarm' && event.mac === victim);
    while (!alarmLogged() && Date.now() < loggedDeadline) await delay(500);
    assert.ok(alarmLogged(), 'the alarm is in the log too');
    await machine.waitFor(
      /rackboot-runtime: the server refused this boot's token: another machine may have booted as 52:54:00:12:34:56/,
      60_000,
      'the console note',
    );
    const hosts = rack.ns.exec(process.execPath, [cliPath, 'hosts', '--server', base, '--state', join(rack.work, 'state')]);
    assert.match(hosts, /^ALARM 52:54:00:12:34:56: two boots/m);
  },
);
