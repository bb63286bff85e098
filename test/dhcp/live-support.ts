/**
 * Pieces of the live DHCP tests: a server child in one namespace, a client
 * namespace joined to it by a veth pair, and commands run without blocking
 * the event loop. (Loaded as a test file by the runner too; it defines no tests.)
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleWatcher } from '../../server/demo/qemu.js';
import type { Lease } from '../../server/dhcp/leases/leases.js';
import type { DhcpEvent, DhcpServerStats } from '../../server/dhcp/server.js';
import { cliPath } from '../support/build.js';
import { Netns } from '../support/netns.js';
import { collect, type Finished } from '../support/run.js';

export type { Finished };
import { unpackedProgram } from '../support/unpacked.js';
import { childScript, type ChildServerConfig } from './netns-child.js';

export const serverAddress = '198.18.0.1';

/** Runs a command in a namespace without blocking the event loop (the server child's pipes must keep draining). */
export function runIn(ns: Netns, cmd: string, args: string[], timeoutMs: number): Promise<Finished> {
  return collect(ns.spawn(cmd, args), { timeoutMs, what: `${cmd} ${args.join(' ')}` });
}

/** The DhcpServer child: collects its JSON event lines and its log lines. */
export class ServerChild {
  readonly events: Array<DhcpEvent | { kind: string; [key: string]: unknown }> = [];
  logLines = 0;
  readonly logSample: string[] = [];
  private buffered = '';
  private waiters: Array<() => void> = [];

  constructor(readonly process: ChildProcess) {
    process.stdout!.on('data', (chunk: Buffer) => {
      this.buffered += chunk.toString();
      let newline;
      while ((newline = this.buffered.indexOf('\n')) >= 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        if (line.trim() !== '') this.events.push(JSON.parse(line));
      }
      this.waiters.splice(0).forEach((wake) => wake());
    });
    let partial = '';
    process.stderr!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop()!;
      this.logLines += lines.length;
      for (const line of lines) if (this.logSample.length < 200) this.logSample.push(line);
    });
  }

  async waitFor<T>(find: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (Date.now() > deadline || this.process.exitCode !== null) {
        throw new Error(`server child: no ${what} (exit ${this.process.exitCode}); log: ${this.logSample.slice(-5).join('\n')}`);
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  async stats(): Promise<{ stats: DhcpServerStats; leases: Lease[] }> {
    const seen = this.events.length;
    this.process.stdin!.write('stats\n');
    return this.waitFor(() => this.events.slice(seen).find((e) => e.kind === 'stats') as { stats: DhcpServerStats; leases: Lease[] } | undefined, 'stats');
  }
}

/**
 * Two namespaces and a veth pair: `serverDevice` at 198.18.0.1/24 in the
 * server namespace (no default route), `clientDevice` with no address and the
 * given MAC in the client namespace; and the DhcpServer child, started.
 */
export class LiveLink {
  readonly serverNs: Netns;
  readonly clientNs: Netns;
  server!: ServerChild;

  constructor(
    readonly serverDevice: string,
    readonly clientDevice: string,
    clientMac: string,
  ) {
    this.serverNs = Netns.create('rbdhs');
    try {
      this.clientNs = Netns.create('rbdhc');
    } catch (error) {
      this.serverNs.delete();
      throw error;
    }
    this.serverNs.linkTo(this.clientNs, { device: serverDevice, cidr: `${serverAddress}/24` }, { device: clientDevice, mac: clientMac });
  }

  setClientMac(mac: string): void {
    this.clientNs.ip('link', 'set', this.clientDevice, 'down');
    this.clientNs.ip('link', 'set', this.clientDevice, 'address', mac);
    this.clientNs.ip('link', 'set', this.clientDevice, 'up');
  }

  async startServer(config: Omit<ChildServerConfig, 'interfaceName' | 'serverAddress' | 'prefixLength'>): Promise<void> {
    const full: ChildServerConfig = { interfaceName: this.serverDevice, serverAddress, prefixLength: 24, ...config };
    this.server = new ServerChild(this.serverNs.spawn(process.execPath, [childScript, 'server', JSON.stringify(full)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await this.server.waitFor(() => this.server.events.find((e) => e.kind === 'ready'), 'ready line');
  }

  /** The server's reply events for one MAC, as [type, result, address, destination]. */
  repliesTo(mac: string): Array<[string, string, string | undefined, string]> {
    return this.server.events
      .filter((e): e is Extract<DhcpEvent, { kind: 'reply' }> => e.kind === 'reply' && e.mac === mac)
      .map((e) => [e.type, e.result, e.address, e.destination]);
  }

  /**
   * repliesTo once at least `count` replies to the MAC have been reported:
   * a client can exit before the server's event line has been read here.
   */
  async waitForReplies(mac: string, count: number): Promise<Array<[string, string, string | undefined, string]>> {
    return this.server.waitFor(() => {
      const replies = this.repliesTo(mac);
      return replies.length >= count ? replies : undefined;
    }, `${count} replies to ${mac}`);
  }

  close(): void {
    this.server?.process.stdin?.end('close\n');
    this.server?.process.kill('SIGKILL');
    this.clientNs.delete();
    this.serverNs.delete();
  }
}

/**
 * server s0 (198.18.0.1/24) <-> r0 router r1 (198.18.2.1/24) <-> c0 client:
 * `rackboot serve` in the server namespace with the given arguments, a
 * tcpdump on one router interface, and a real ISC dhcrelay (unpacked from
 * Debian's isc-dhcp-relay, which would start a service if installed) with
 * -a, so option 82 carries the circuit-id "r1".
 */
export interface RelayRack {
  server: Netns;
  router: Netns;
  client: Netns;
  scratch: string;
  serverLog: ConsoleWatcher;
  /** tcpdump writing `scratch/<captureFile>`. */
  capture: ChildProcess;
  close(): void;
  /** Kill the server with SIGKILL and start it again on the same state folder; its new log. */
  crashAndRestart(): Promise<ConsoleWatcher>;
}

export async function startRelayRack(options: {
  prefix: string;
  clientMac: string;
  /** `rackboot serve` arguments besides the interface, address and folders. */
  serveArgs: string[];
  capture: { device: 'r0' | 'r1'; filter: string; file: string };
  /** Before the server starts: write profiles or a build into the scratch folder. */
  prepare?: (scratch: string) => void;
}): Promise<RelayRack> {
  const dhcrelay = unpackedProgram('isc-dhcp-relay', 'usr/sbin/dhcrelay');
  const scratch = mkdtempSync(join(tmpdir(), `rackboot-${options.prefix}-`));
  const children: ChildProcess[] = [];
  const server = Netns.create(`${options.prefix}s`);
  const router = Netns.create(`${options.prefix}r`);
  const client = Netns.create(`${options.prefix}c`);
  const close = () => {
    for (const child of children) child.kill('SIGKILL');
    for (const ns of [client, router, server]) ns.delete();
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    server.linkTo(router, { device: 's0', cidr: '198.18.0.1/24' }, { device: 'r0', cidr: '198.18.0.254/24' });
    router.linkTo(client, { device: 'r1', cidr: '198.18.2.1/24' }, { device: 'c0', mac: options.clientMac });
    server.ip('route', 'add', '198.18.2.0/24', 'via', '198.18.0.254');
    mkdirSync(join(scratch, 'profiles'));
    writeFileSync(join(scratch, 'profiles/default.yaml'), 'hostname: "node-{mac}"\n');
    options.prepare?.(scratch);
    const serve = async (): Promise<{ child: ChildProcess; log: ConsoleWatcher }> => {
      const child = server.spawn(process.execPath, [
        cliPath,
        'serve',
        '--interface',
        's0',
        '--address',
        '198.18.0.1',
        ...options.serveArgs,
        '--profiles',
        join(scratch, 'profiles'),
        '--assets',
        join(scratch, 'assets'),
        '--state',
        join(scratch, 'state'),
        '--http-port',
        '8080',
      ]);
      children.push(child);
      const log = new ConsoleWatcher(child);
      await log.waitFor(/rackboot is serving/, 20_000, 'rackboot serve');
      return { child, log };
    };
    let rackboot = await serve();
    const serverLog = rackboot.log;
    // kill -9, then the same command line on the same state folder.
    const crashAndRestart = async (): Promise<ConsoleWatcher> => {
      const exited = new Promise((resolve) => rackboot.child.once('exit', resolve));
      rackboot.child.kill('SIGKILL');
      await exited;
      rackboot = await serve();
      return rackboot.log;
    };
    const { device, filter, file } = options.capture;
    const capture = router.spawn('tcpdump', ['-Z', 'root', '--immediate-mode', '-i', device, '-U', '-w', join(scratch, file), filter]);
    children.push(capture);
    await new ConsoleWatcher(capture).waitFor(new RegExp(`listening on ${device}`), 10_000, 'tcpdump');
    // -a: add option 82 (circuit-id = the client interface); -id/-iu: downstream/upstream.
    const relay = router.spawn(dhcrelay, ['-4', '-d', '-a', '-pf', join(scratch, 'dhcrelay.pid'), '-id', 'r1', '-iu', 'r0', '198.18.0.1']);
    children.push(relay);
    await new ConsoleWatcher(relay).waitFor(/Sending on/, 10_000, 'dhcrelay');
    return { server, router, client, scratch, serverLog, capture, close, crashAndRestart };
  } catch (error) {
    close();
    throw error;
  }
}
