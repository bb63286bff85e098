/**
 * A real `rackboot serve` under perfdhcp load, and what clients received
 * according to a tcpdump capture on their side (not the server's log: pino
 * writes through an asynchronous SonicBoom, so a log line can still be in
 * the process's buffer when the datagram is already on the wire, and
 * SIGKILL loses it). perfdhcp acts as a relay: it sends from 198.18.0.2:67
 * with giaddr 198.18.0.2, which is in the served subnet.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePacket } from '../../server/dhcp/wire/packet.js';
import { formatMac } from '../../server/dhcp/decide/client-facts.js';
import { assertRoot, type Netns } from '../support/netns.js';
import { readPcap } from '../support/pcap.js';
import { runIn } from './live-support.js';

const cliPath = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
export const serverAddress = '198.18.0.1';
export const clientAddress = '198.18.0.2';
export const pool = '198.18.0.10-198.18.0.250';

/** Before a load test: root, the load and capture tools, and `dir`'s empty profile and build folders for the servers. */
export function prepareLoadTest(dir: string): void {
  assertRoot();
  mkdirSync(join(dir, 'profiles'));
  mkdirSync(join(dir, 'assets'));
  requireTool('perfdhcp', 'kea-admin');
  requireTool('tcpdump', 'tcpdump');
}

export function requireTool(name: string, debianPackage: string): void {
  if (spawnSync('sh', ['-c', `command -v ${name}`]).status !== 0) {
    throw new Error(`${name} is not installed (Debian package ${debianPackage}; run builder/install-deps.sh)`);
  }
}

export interface Reply {
  type: 'offer' | 'ack' | 'nak';
  /** The server that sent it. */
  server: string;
  mac: string;
  address: string;
  time: number;
}

/** The servers' replies in a capture, in capture order. */
export function repliesIn(file: string, servers: readonly string[] = [serverAddress]): Reply[] {
  const types = { 2: 'offer', 5: 'ack', 6: 'nak' } as const;
  const replies: Reply[] = [];
  for (const datagram of readPcap(file)) {
    if (!servers.includes(datagram.source.address) || datagram.source.port !== 67) continue;
    const packet = decodePacket(datagram.payload);
    const type = types[packet.options.messageType as keyof typeof types];
    if (type === undefined) continue;
    replies.push({ type, server: datagram.source.address, mac: formatMac(packet.hardwareAddress), address: packet.yourAddress, time: datagram.time });
  }
  return replies;
}

export class Capture {
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
  async stop(servers?: readonly string[]): Promise<Reply[]> {
    const exited = new Promise((resolve) => this.child.once('close', resolve));
    this.child.kill('SIGINT');
    await exited;
    const dropped = /(\d+) packets? dropped by kernel/.exec(this.stderr);
    assert.ok(dropped, `tcpdump summary missing: ${this.stderr}`);
    assert.equal(dropped[1], '0', `tcpdump missed packets, the capture is incomplete: ${this.stderr}`);
    return repliesIn(this.file, servers);
  }
}

export class Server {
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
        else if (line.includes('"level":40')) this.warnings.push(line);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => this.errors.push(chunk.toString()));
  }
  serving = false;
  readonly errors: string[] = [];
  readonly warnings: string[] = [];

  /** Serves `pool` on vs from `dir`'s profiles and assets, its state in `dir`/`state` (or `options.state`), with `options.args` added. */
  static async start(ns: Netns, dir: string, options: { state?: string; args?: string[] } = {}): Promise<Server> {
    const args = [cliPath, 'serve', '--interface', 'vs', '--dhcp', 'full', '--pool', pool, '--lease-time', '3600'];
    args.push('--state', options.state ?? join(dir, 'state'), '--profiles', join(dir, 'profiles'), '--assets', join(dir, 'assets'));
    args.push(...(options.args ?? []));
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
export function load(ns: Netns, rate: number, clients: number, seconds: number, to: string | 'broadcast' = serverAddress) {
  const target = to === 'broadcast' ? [] : [to];
  return runIn(ns, 'perfdhcp', ['-4', '-l', 'vc', '-r', String(rate), '-R', String(clients), '-p', String(seconds), ...target], (seconds + 20) * 1000);
}

/**
 * A server started in `serverNs` under load from `clientNs` (800/s over 200
 * MACs), killed with SIGKILL once it has logged 400 ACKs; the replies
 * captured on the client side, which must hold 400 ACKs and nothing after
 * the kill.
 */
export async function loadThenKill(
  t: { diagnostic(message: string): void },
  serverNs: Netns,
  clientNs: Netns,
  dir: string,
  captureFile: string,
  serverOptions: { state?: string; args?: string[] } = {},
): Promise<{ replies: Reply[]; acks: Reply[] }> {
  const capture = await Capture.start(clientNs, 'vc', captureFile);
  const server = await Server.start(serverNs, dir, serverOptions);
  const running = load(clientNs, 800, 200, 5);
  const deadline = Date.now() + 15_000;
  while (server.acksLogged < 400) {
    assert.ok(Date.now() < deadline, `only ${server.acksLogged} ACKs logged; errors: ${server.errors.join('')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await server.kill('SIGKILL');
  const killedAt = Date.now() / 1000;
  const finished = await running;
  assert.match(finished.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${finished.stderr}`);
  const replies = await capture.stop();
  const acks = replies.filter((r) => r.type === 'ack');
  t.diagnostic(`before the kill: ${acks.length} ACKs captured, ${server.acksLogged} logged`);
  assert.ok(acks.length >= 400, `${acks.length} ACKs captured before the kill`);
  assert.ok(
    replies.every((r) => r.time <= killedAt + 1),
    'no reply after the kill',
  );
  return { replies, acks };
}

/**
 * Leases last an hour and perfdhcp never releases, so an address once ACKed
 * to a MAC may be offered or ACKed to no other MAC for the rest of a test.
 * Returns each ACKed address's client.
 */
export function assertOneHolderEach(replies: readonly Reply[]): Map<string, string> {
  const boundTo = new Map<string, string>();
  for (const reply of replies) {
    if (reply.type === 'nak') continue;
    const holder = boundTo.get(reply.address);
    assert.ok(
      holder === undefined || holder === reply.mac,
      `${reply.address} was ACKed to ${holder}, then ${reply.type === 'ack' ? 'ACKed' : 'offered'} to ${reply.mac}`,
    );
    if (reply.type === 'ack') boundTo.set(reply.address, reply.mac);
  }
  return boundTo;
}
