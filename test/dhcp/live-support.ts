/**
 * Pieces of the live DHCP tests: a server child in one namespace, a client
 * namespace joined to it by a veth pair, and commands run without blocking
 * the event loop. (Loaded as a test file by the runner too; it defines no tests.)
 */
import type { ChildProcess } from 'node:child_process';
import type { Lease } from '../../server/dhcp/leases.js';
import type { DhcpEvent, DhcpServerStats } from '../../server/dhcp/server.js';
import { Netns } from '../helpers/netns.js';
import { childScript, type ChildServerConfig } from './netns-child.js';

export const serverAddress = '198.18.0.1';

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in a namespace without blocking the event loop (the server child's pipes must keep draining). */
export function runIn(ns: Netns, cmd: string, args: string[], timeoutMs: number): Promise<Finished> {
  const child = ns.spawn(cmd, args);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} timed out after ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
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
    return this.waitFor(
      () => this.events.slice(seen).find((e) => e.kind === 'stats') as { stats: DhcpServerStats; leases: Lease[] } | undefined,
      'stats',
    );
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
    this.server = new ServerChild(
      this.serverNs.spawn(process.execPath, [childScript, 'server', JSON.stringify(full)], { stdio: ['pipe', 'pipe', 'pipe'] }),
    );
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
