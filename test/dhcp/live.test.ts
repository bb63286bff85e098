/**
 * The DHCP server on a real link: two network namespaces joined by a veth
 * pair (server side 198.18.0.1/24, no default route), the server in one and
 * busybox udhcpc in the other. Needs root; fails (never skips) without it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Lease } from '../../server/dhcp/leases.js';
import type { DhcpEvent, DhcpServerStats } from '../../server/dhcp/server.js';
import { Netns, run } from '../helpers/netns.js';
import { childScript, type ChildServerConfig, type FloodConfig, type FloodSummary } from './netns-child.js';

const serverAddress = '198.18.0.1';
const floodAddress = '198.18.0.2';
const plainMac = '02:00:00:00:01:01';
const reservedMac = '02:00:00:00:02:02';
const afterFloodMac = '02:00:00:00:03:03';

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in a namespace without blocking the event loop (the server child's pipes must keep draining). */
function runIn(ns: Netns, cmd: string, args: string[], timeoutMs: number): Promise<Finished> {
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
class ServerChild {
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

/** udhcpc's environment for the "bound" event, from our script. */
function boundLease(output: string): Record<string, string> {
  const line = output.split('\n').find((l) => l.startsWith('UDHCPC bound'));
  assert.ok(line, `udhcpc reported no lease:\n${output}`);
  return Object.fromEntries(
    line
      .slice('UDHCPC bound '.length)
      .split('|')
      .map((pair) => pair.split('=') as [string, string]),
  );
}

describe('DHCP server and udhcpc across a veth pair', () => {
  let serverNs: Netns;
  let clientNs: Netns;
  let server: ServerChild;
  let scratch: string;
  let script: string;

  before(async () => {
    run('busybox', ['udhcpc', '--help']); // fails the suite when busybox has no udhcpc
    serverNs = Netns.create('rbdhs');
    clientNs = Netns.create('rbdhc');
    serverNs.addVethPair('dhs0', 'dhc0');
    serverNs.ip('link', 'set', 'dhc0', 'netns', clientNs.name);
    serverNs.ip('addr', 'add', `${serverAddress}/24`, 'dev', 'dhs0');
    serverNs.ip('link', 'set', 'dhs0', 'up');
    clientNs.ip('link', 'set', 'dhc0', 'address', plainMac);
    clientNs.ip('link', 'set', 'dhc0', 'up');

    scratch = mkdtempSync(join(tmpdir(), 'rackboot-dhcp-'));
    script = join(scratch, 'udhcpc-script');
    // udhcpc runs this on each event; it only reports, it configures nothing.
    writeFileSync(
      script,
      '#!/bin/sh\necho "UDHCPC $1 ip=$ip|subnet=$subnet|router=$router|dns=$dns|hostname=$hostname|lease=$lease|serverid=$serverid|siaddr=$siaddr|boot_file=$boot_file"\n',
      { mode: 0o755 },
    );

    const config: ChildServerConfig = {
      interfaceName: 'dhs0',
      serverAddress,
      prefixLength: 24,
      pool: { start: '198.18.0.100', end: '198.18.0.199' },
      leaseSeconds: 3600,
      dns: ['198.18.0.53'],
      reservations: { [reservedMac]: { address: '198.18.0.20', hostname: 'rack-node-7' } },
      quiet: true,
    };
    server = new ServerChild(serverNs.spawn(process.execPath, [childScript, 'server', JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] }));
    await server.waitFor(() => server.events.find((e) => e.kind === 'ready'), 'ready line');
  });

  after(() => {
    server?.process.stdin?.end('close\n');
    server?.process.kill('SIGKILL');
    clientNs?.delete();
    serverNs?.delete();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  const udhcpc = () => runIn(clientNs, 'busybox', ['udhcpc', '-i', 'dhc0', '-n', '-q', '-f', '-t', '4', '-T', '1', '-s', script], 30_000);

  test('a broadcast from a 0.0.0.0 socket has no route here; from the server address it leaves', async () => {
    const probe = await runIn(serverNs, process.execPath, [childScript, 'broadcast-probe', JSON.stringify({ boundAddress: serverAddress, port: 68 })], 10_000);
    assert.equal(probe.code, 0, probe.stderr);
    assert.deepEqual(JSON.parse(probe.stdout), { wildcard: 'ENETUNREACH', bound: 'sent' });
  });

  test('udhcpc gets a pool address with the network options', async () => {
    const result = await udhcpc();
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const lease = boundLease(result.stdout);
    assert.equal(lease.ip, '198.18.0.100');
    assert.equal(lease.subnet, '255.255.255.0');
    assert.equal(lease.dns, '198.18.0.53');
    assert.equal(lease.serverid, serverAddress);
    assert.equal(lease.lease, '3600');
    assert.equal(lease.hostname, '');
    const replies = server.events.filter((e): e is Extract<DhcpEvent, { kind: 'reply' }> => e.kind === 'reply' && e.mac === plainMac);
    assert.deepEqual(
      replies.map((e) => [e.type, e.result, e.address, e.destination]),
      [
        ['DHCPDISCOVER', 'offer', '198.18.0.100', '255.255.255.255:68'],
        ['DHCPREQUEST', 'ack', '198.18.0.100', '255.255.255.255:68'],
      ],
    );
  });

  test('udhcpc with a reserved MAC gets the reserved address and hostname', async () => {
    clientNs.ip('link', 'set', 'dhc0', 'down');
    clientNs.ip('link', 'set', 'dhc0', 'address', reservedMac);
    clientNs.ip('link', 'set', 'dhc0', 'up');
    const result = await udhcpc();
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    const lease = boundLease(result.stdout);
    assert.equal(lease.ip, '198.18.0.20');
    assert.equal(lease.hostname, 'rack-node-7');
    const { leases } = await server.stats();
    assert.deepEqual(
      leases.filter((l) => l.mac === reservedMac).map((l) => [l.address, l.state, l.hostname]),
      [['198.18.0.20', 'bound', 'rack-node-7']],
    );
  });

  test('10,000 random and malformed packets, then a new client still gets an answer', async (t) => {
    const before = (await server.stats()).stats;
    const logLinesBefore = server.logLines;
    clientNs.ip('addr', 'add', `${floodAddress}/24`, 'dev', 'dhc0');
    const flood: FloodConfig = { localAddress: floodAddress, serverAddress, count: 10_000, seed: 20240601, batch: 64 };
    const result = await runIn(clientNs, process.execPath, [childScript, 'flood', JSON.stringify(flood)], 120_000);
    assert.equal(result.code, 0, result.stderr);
    const summary = JSON.parse(result.stdout) as FloodSummary;
    clientNs.ip('addr', 'del', `${floodAddress}/24`, 'dev', 'dhc0');

    const { stats, leases } = await server.stats();
    const received = stats.received - before.received;
    const rate = Math.round(summary.sent / summary.seconds);
    t.diagnostic(`flood: ${summary.sent} packets + ${summary.barriers} barriers in ${summary.seconds.toFixed(2)} s = ${rate} packets/s`);
    t.diagnostic(`flood kinds: ${JSON.stringify(summary.byKind)}`);
    t.diagnostic(
      `server: ${received} received, ${stats.malformed - before.malformed} malformed, ${stats.replies - before.replies} replies, ` +
        `${stats.updates - before.updates} updates, ${stats.ignored - before.ignored} ignored, ${stats.errors - before.errors} errors`,
    );
    // Every packet reached the server and was handled: the barriers make the
    // flood wait for the server, so the socket buffer never overflows.
    assert.equal(received, summary.sent + summary.barriers + summary.barrierRetries);
    assert.equal(stats.errors, before.errors, 'no request failed inside the server');
    assert.ok(stats.malformed - before.malformed > 5000, 'most of the flood was malformed');
    // One debug line per malformed packet (and one per other event).
    assert.ok(server.logLines - logLinesBefore >= received, `log lines: ${server.logLines - logLinesBefore}`);
    // The invariant held through it all: one record per address.
    const held = leases.filter((l) => l.state !== 'released' && l.state !== 'expired');
    assert.equal(new Set(held.map((l) => l.address)).size, held.length);

    clientNs.ip('link', 'set', 'dhc0', 'down');
    clientNs.ip('link', 'set', 'dhc0', 'address', afterFloodMac);
    clientNs.ip('link', 'set', 'dhc0', 'up');
    const answer = await udhcpc();
    assert.equal(answer.code, 0, `${answer.stdout}\n${answer.stderr}`);
    const lease = boundLease(answer.stdout);
    assert.match(lease.ip!, /^198\.18\.0\.1\d\d$/);
    const after = await server.stats();
    const mine = after.leases.filter((l) => l.address === lease.ip);
    assert.deepEqual(mine.map((l) => [l.mac, l.state]), [[afterFloodMac, 'bound']]);
  });
});
