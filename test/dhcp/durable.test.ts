/**
 * Durable leases, end to end: the real `rackboot serve` in a namespace, under
 * perfdhcp load from a second namespace, killed with SIGKILL mid-load and
 * restarted on the same state folder. Every lease a client was ACKed before
 * the kill must still be in leases.sqlite with the same MAC, and after the
 * restart no address may go to a second client.
 *
 * What the clients received is taken from a tcpdump capture on the client
 * side, not from the server's log: pino writes through an asynchronous
 * SonicBoom (sync: false), so a log line can still be in the process's
 * buffer when the datagram is already on the wire, and SIGKILL loses it.
 *
 * perfdhcp acts as a relay: it sends from 198.18.0.2:67 with giaddr
 * 198.18.0.2, which is in the served subnet, and decide() answers the relay.
 *
 * Needs root, iproute2, perfdhcp (Debian kea-admin) and tcpdump; fails,
 * never skips, without them (builder/install-deps.sh installs them).
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { decodePacket } from '../../server/dhcp/wire/packet.js';
import { formatMac } from '../../server/dhcp/decide/client-facts.js';
import { SqliteLeaseStore } from '../../server/dhcp/leases/sqlite.js';
import { Netns, assertRoot } from '../support/netns.js';
import { readPcap } from '../support/pcap.js';
import { assertConsistent } from './lease-store-contract.js';
import { runIn } from './live-support.js';

const cliPath = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const serverAddress = '198.18.0.1';
const clientAddress = '198.18.0.2';
const pool = '198.18.0.10-198.18.0.250';

function requireTool(name: string, debianPackage: string): void {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0) {
    throw new Error(`${name} is not installed (Debian package ${debianPackage}; run builder/install-deps.sh)`);
  }
}

interface Reply {
  type: 'offer' | 'ack' | 'nak';
  mac: string;
  address: string;
  time: number;
}

/** The server's replies in a capture, in capture order. */
function repliesIn(file: string): Reply[] {
  const types = { 2: 'offer', 5: 'ack', 6: 'nak' } as const;
  const replies: Reply[] = [];
  for (const datagram of readPcap(file)) {
    if (datagram.source.address !== serverAddress || datagram.source.port !== 67) continue;
    const packet = decodePacket(datagram.payload);
    const type = types[packet.options.messageType as keyof typeof types];
    if (type === undefined) continue;
    replies.push({ type, mac: formatMac(packet.hardwareAddress), address: packet.yourAddress, time: datagram.time });
  }
  return replies;
}

class Capture {
  private stderr = '';
  constructor(
    readonly file: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  static async start(ns: Netns, device: string, file: string): Promise<Capture> {
    const capture = new Capture(file, ns.spawn('tcpdump', ['-i', device, '-n', '-U', '-B', '16384', '-w', file, 'udp port 67']));
    const deadline = Date.now() + 10_000;
    while (!capture.stderr.includes('listening on')) {
      if (Date.now() > deadline || capture.child.exitCode !== null) throw new Error(`tcpdump did not start: ${capture.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return capture;
  }

  /** Stops tcpdump and returns the replies; fails if the kernel dropped any packet. */
  async stop(): Promise<Reply[]> {
    const exited = new Promise((resolve) => this.child.once('close', resolve));
    this.child.kill('SIGINT');
    await exited;
    const dropped = /(\d+) packets? dropped by kernel/.exec(this.stderr);
    assert.ok(dropped, `tcpdump summary missing: ${this.stderr}`);
    assert.equal(dropped[1], '0', `tcpdump missed packets, the capture is incomplete: ${this.stderr}`);
    return repliesIn(this.file);
  }
}

class Server {
  acksLogged = 0;
  private lines = '';
  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (chunk: Buffer) => {
      this.lines += chunk.toString();
      let newline;
      while ((newline = this.lines.indexOf('\n')) >= 0) {
        const line = this.lines.slice(0, newline);
        this.lines = this.lines.slice(newline + 1);
        if (line.includes('"result":"ack"')) this.acksLogged++;
        else if (line.includes('rackboot is serving')) this.serving = true;
        else if (line.includes('"level":50') || line.includes('"level":60')) this.errors.push(line);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => this.errors.push(chunk.toString()));
  }
  serving = false;
  readonly errors: string[] = [];

  static async start(ns: Netns, dir: string): Promise<Server> {
    const args = [cliPath, 'serve', '--interface', 'vs', '--dhcp', 'full', '--pool', pool, '--lease-time', '3600'];
    args.push('--state', join(dir, 'state'), '--profiles', join(dir, 'profiles'), '--assets', join(dir, 'assets'));
    args.push('--http-port', '8080', '--tftp-port', '6969');
    const server = new Server(ns.spawn(process.execPath, args, { env: { ...process.env, RACKBOOT_LOG_LEVEL: 'info' } }));
    const deadline = Date.now() + 15_000;
    while (!server.serving) {
      if (Date.now() > deadline || server.child.exitCode !== null) throw new Error(`rackboot serve did not start: ${server.errors.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return server;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill(signal);
    await exited;
  }
}

/** perfdhcp for `seconds` at `rate` exchanges/s over `clients` MACs (the same MACs every run, from its default base). */
function load(ns: Netns, rate: number, clients: number, seconds: number) {
  return runIn(ns, 'perfdhcp', ['-4', '-l', 'vc', '-r', String(rate), '-R', String(clients), '-p', String(seconds), serverAddress], (seconds + 20) * 1000);
}

let serverNs: Netns;
let clientNs: Netns;
const dir = mkdtempSync(join(tmpdir(), 'rackboot-durable-'));

before(() => {
  assertRoot();
  mkdirSync(join(dir, 'profiles'));
  mkdirSync(join(dir, 'assets'));
  requireTool('perfdhcp', 'kea-admin');
  requireTool('tcpdump', 'tcpdump');
  serverNs = Netns.create('rbdus');
  clientNs = Netns.create('rbduc');
  serverNs.linkTo(clientNs, { device: 'vs', cidr: `${serverAddress}/24` }, { device: 'vc', cidr: `${clientAddress}/24` });
});

after(() => {
  clientNs?.delete();
  serverNs?.delete();
  rmSync(dir, { recursive: true, force: true });
});

test('leases ACKed before a SIGKILL survive it, and no address goes to two clients after the restart', { timeout: 120_000 }, async (t) => {
  const leasesFile = join(dir, 'state', 'leases.sqlite');

  // Phase 1: load, SIGKILL once the server has ACKed a good number of leases.
  const capture1 = await Capture.start(clientNs, 'vc', join(dir, 'before.pcap'));
  const first = await Server.start(serverNs, dir);
  const firstLoad = load(clientNs, 800, 200, 5);
  const deadline = Date.now() + 15_000;
  while (first.acksLogged < 400) {
    assert.ok(Date.now() < deadline, `only ${first.acksLogged} ACKs logged; errors: ${first.errors.join('')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await first.kill('SIGKILL');
  const killedAt = Date.now() / 1000;
  const firstRun = await firstLoad;
  assert.match(firstRun.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${firstRun.stderr}`);
  const before = await capture1.stop();
  const acksBefore = before.filter((r) => r.type === 'ack');
  t.diagnostic(`before the kill: ${acksBefore.length} ACKs captured, ${first.acksLogged} logged`);
  assert.ok(acksBefore.length >= 400, `${acksBefore.length} ACKs captured before the kill`);
  assert.ok(
    before.every((r) => r.time <= killedAt + 1),
    'no reply after the kill',
  );

  // Every captured ACK is in the file, bound to the same MAC (the last ACK of an address wins).
  const lastAck = new Map(acksBefore.map((r) => [r.address, r.mac]));
  const afterKill = SqliteLeaseStore.open(leasesFile);
  try {
    for (const [address, mac] of lastAck) {
      const record = afterKill.byAddress(address);
      assert.equal(record?.mac, mac, `${address} was ACKed to ${mac}; the file has ${JSON.stringify(record)}`);
      assert.equal(record?.state, 'bound', `${address}: ${JSON.stringify(record)}`);
    }
    assertConsistent(afterKill);
    t.diagnostic(`after the kill: ${afterKill.all().filter((l) => l.state === 'bound').length} bound leases in ${leasesFile}`);
  } finally {
    afterKill.close();
  }

  // Phase 2: restart on the same state, more clients than addresses (300 MACs, 241 addresses).
  const capture2 = await Capture.start(clientNs, 'vc', join(dir, 'after.pcap'));
  const second = await Server.start(serverNs, dir);
  const secondRun = await load(clientNs, 800, 300, 4);
  assert.match(secondRun.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${secondRun.stderr}`);
  await second.kill('SIGTERM');
  assert.equal(second.child.exitCode, 0, `clean shutdown; errors: ${second.errors.join('')}`);
  const afterRestart = await capture2.stop();
  const acksAfter = afterRestart.filter((r) => r.type === 'ack');
  t.diagnostic(`after the restart: ${acksAfter.length} ACKs captured`);
  assert.ok(acksAfter.length > 0);

  // Leases last an hour and perfdhcp never releases, so an address once ACKed
  // to a MAC may be offered or ACKed to no other MAC for the rest of the test.
  const boundTo = new Map<string, string>();
  for (const reply of [...before, ...afterRestart]) {
    if (reply.type === 'nak') continue;
    const holder = boundTo.get(reply.address);
    assert.ok(
      holder === undefined || holder === reply.mac,
      `${reply.address} was ACKed to ${holder}, then ${reply.type === 'ack' ? 'ACKed' : 'offered'} to ${reply.mac}`,
    );
    if (reply.type === 'ack') boundTo.set(reply.address, reply.mac);
  }

  const final = SqliteLeaseStore.open(leasesFile);
  try {
    assertConsistent(final);
    for (const [address, mac] of boundTo) {
      const record = final.byAddress(address);
      assert.equal(record?.mac, mac, `${address} was ACKed to ${mac}; the file has ${JSON.stringify(record)}`);
      assert.equal(record?.state, 'bound');
    }
  } finally {
    final.close();
  }
});
