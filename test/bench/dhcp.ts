/**
 * `npm run bench:dhcp`: rackboot's DHCP server beside dnsmasq and kea-dhcp4,
 * in the same run, on a veth between two network namespaces (198.18.0.0/16).
 * Run by hand as root; it prints a table, it does not pass or fail.
 *
 * perfdhcp (kea-admin) offers DISCOVER-OFFER-REQUEST-ACK exchanges at 500,
 * 1000, 2000 and 4000 per second for a few seconds to each server in turn,
 * over 60,000 client MACs, from 198.18.0.2 as a relay (giaddr 198.18.0.2)
 * unicasting to the server at 198.18.0.1: Kea answers perfdhcp only that
 * way, so all three get the same traffic. Every run starts the server afresh
 * on an empty lease store, with a pool of 65,279 addresses
 * (198.18.1.0-198.18.255.254) in the server's own /16, so the pool never
 * runs out.
 *
 * - rackboot: the real CLI (`rackboot serve --dhcp full`), leases in SQLite
 *   (every ACKed lease fsynced before the ACK leaves).
 * - rackboot-tmpfs: the same with its state folder on a tmpfs, where
 *   fsync(2) costs nothing: what durability costs rackboot. Kea's memfile
 *   never fsyncs its lease file (it writes each lease and flushes its
 *   stream to the kernel), so a crash of the machine can lose the leases of
 *   ACKs it sent; this is the closer match to it.
 * - dnsmasq: addresses only (`--port=0`, no DNS), `--no-ping`, a lease file.
 * - kea-dhcp4: UDP sockets, memfile lease store with persist on (CSV file).
 * - rackboot-pg and kea-pg: the same two with their leases in PostgreSQL
 *   (Debian's postgresql-15, one server started by the benchmark in a
 *   temporary folder, a fresh database per run, reached through its Unix
 *   socket): rackboot with `--database`, Kea with its `postgresql` lease
 *   backend (`kea-admin db-init pgsql`). Both commit every lease before
 *   its ACK leaves.
 * Each logs at its usual level (rackboot info, dnsmasq's default DHCP log,
 * Kea INFO as in Debian's config: a line per lease) into a file of the run.
 *
 * perfdhcp runs with -W 0.5 s: after the last request it waits for late
 * answers, so an exchange still in flight when the run ends (a durable
 * server answers a few ms later than one that does not fsync) is not counted
 * as dropped. Exchanges per second are the ACKs received over the test
 * period. From perfdhcp's final report (stdout) it takes, from the
 * DISCOVER-OFFER and REQUEST-ACK sections, "sent packets" and "received
 * packets". The drop ratio is the share of exchanges started that did not
 * end in an ACK: 1 - (REQUEST-ACK received) / (DISCOVER-OFFER sent). The
 * second table splits the ACKs by second of the run, from perfdhcp's
 * periodic report (`-t 1`: "received: OFFERs/ACKs", running totals): a
 * server whose cost per exchange grows with the leases it holds slows down
 * within a run.
 *
 * The third table is each server's CPU time (user + system, from
 * /proc/PID/stat while perfdhcp ran) per completed exchange: what a server
 * costs per client, whatever else the machine was doing.
 *
 * perfdhcp and the server share the machine's cores: compare the servers
 * within one run, never with a figure from another machine or run.
 *
 * RACKBOOT_BENCH_BASELINE=DIR adds another built rackboot checkout (its
 * CLI, the same flags) as a fourth server, and a column of this tree's
 * rate against it.
 *
 * With rackboot-pg among the servers, a last table compares one rackboot
 * on PostgreSQL with two on the same database (BENCH_DHCP_PEERS=0 skips it).
 *
 * For a quicker look: BENCH_DHCP_RATES=2000,4000 and
 * BENCH_DHCP_SERVERS=rackboot pick a subset, BENCH_DHCP_SECONDS=10 runs longer; BENCH_DHCP_CPU_PROFILE=DIR
 * runs rackboot under `node --cpu-prof` and keeps its profiles in DIR.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteLeaseStore } from '../../server/dhcp/leases/sqlite.js';
import { runIn } from '../dhcp/live-support.js';
import { Netns, assertRoot } from '../support/netns.js';
import { unpackedProgram } from '../support/unpacked.js';
import { benchBaseline } from '../support/bench/baseline.js';
import { markdownTable } from '../support/bench/table.js';
import { stopProcess } from '../support/bench/proc.js';
import { POSTGRES_PASSWORD, startPostgres, type TestPostgres } from '../support/postgres.js';
import { runCommand } from '../support/run.js';

const cliPath = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const serverAddress = '198.18.0.1';
const clientAddress = '198.18.0.2';
const prefix = 16;
const pool = { start: '198.18.1.0', end: '198.18.255.254' };
const serverDevice = 'bench-s';
const clientDevice = 'bench-c';
const rates = process.env.BENCH_DHCP_RATES ? process.env.BENCH_DHCP_RATES.split(',').map(Number) : [500, 1000, 2000, 4000];
const seconds = Number(process.env.BENCH_DHCP_SECONDS ?? 4);
const clients = 60_000;

const baseline = benchBaseline();
type ServerName = 'rackboot' | 'rackboot-tmpfs' | 'baseline' | 'dnsmasq' | 'kea' | 'rackboot-pg' | 'kea-pg';
const allServers: ServerName[] = [
  'rackboot',
  'rackboot-tmpfs',
  ...(baseline === undefined ? [] : (['baseline'] as const)),
  'dnsmasq',
  'kea',
  'rackboot-pg',
  'kea-pg',
];
const serverNames: ServerName[] = process.env.BENCH_DHCP_SERVERS
  ? allServers.filter((name) => process.env.BENCH_DHCP_SERVERS!.split(',').includes(name))
  : allServers;
const cpuProfileDir = process.env.BENCH_DHCP_CPU_PROFILE;
const labels: Record<ServerName, string> = {
  rackboot: 'rackboot',
  'rackboot-tmpfs': 'rackboot (tmpfs)',
  baseline: baseline?.label ?? 'baseline',
  dnsmasq: 'dnsmasq',
  kea: 'kea-dhcp4',
  'rackboot-pg': 'rackboot (PostgreSQL)',
  'kea-pg': 'kea-dhcp4 (PostgreSQL)',
};
/** The rates compared in the first table: each PostgreSQL server against the other, the rest against rackboot. */
const comparisons: Array<[ServerName, ServerName]> = [
  ...(baseline === undefined ? [] : [['rackboot', 'baseline'] as [ServerName, ServerName]]),
  ['rackboot', 'dnsmasq'],
  ['rackboot', 'kea'],
  ['rackboot-tmpfs', 'kea'],
  ['rackboot-pg', 'kea-pg'],
];

interface Result {
  /** Completed 4-way exchanges per second, as perfdhcp reports it. */
  rate: number;
  /** 1 - ACKs received / DISCOVERs sent. */
  dropRatio: number;
  discovers: number;
  acks: number;
  /** ACKs received in each whole second of the run, from perfdhcp's periodic reports. */
  acksPerSecond: number[];
  /** Leases found in the server's lease store after it stopped. */
  stored: number;
  /** The server's CPU time (user + system) while perfdhcp ran, per ACK received, in microseconds. */
  cpuMicrosPerExchange: number;
}

/** User and system CPU time of a process so far, in microseconds (proc(5): fields 14 and 15, in clock ticks). */
function cpuMicros(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: (Number(fields[11]) * 1e6) / clockTicksPerSecond, system: (Number(fields[12]) * 1e6) / clockTicksPerSecond };
}

const clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

interface Running {
  child: ChildProcess;
  /** Counts the leases the server stored, once it has stopped. */
  stored: () => number | Promise<number>;
  /** Undoes what start() set up beside the server (a tmpfs mount), once it has stopped. */
  cleanup?: () => void;
}

/** The benchmark's PostgreSQL, started when a -pg server is among those run. */
let postgres: TestPostgres | undefined;

async function waitUntil(what: string, ready: () => boolean, child: ChildProcess, log: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited with ${child.exitCode ?? child.signalCode}: ${log()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs} ms: ${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** kea-dhcp4 from the system, or unpacked from kea-dhcp4-server's .deb (its libraries come with kea-admin). */
function findKea(): string {
  return existsSync('/usr/sbin/kea-dhcp4') ? '/usr/sbin/kea-dhcp4' : unpackedProgram('kea-dhcp4-server', 'usr/sbin/kea-dhcp4');
}

/** Whether something in the namespace listens on UDP port 67. */
function listening(ns: Netns): boolean {
  return ns.exec('ss', ['-H', '-l', '-u', '-n', 'sport = :67']).trim() !== '';
}

function tail(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').slice(-2000) : '';
}

/** Starts one server on an empty lease store in `dir`, its output going to dir/log. */
async function start(name: ServerName, ns: Netns, dir: string, kea: string, run: number): Promise<Running> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const logFile = join(dir, 'log');
  const log = openSync(logFile, 'w');
  const stdio: ['ignore', number, number] = ['ignore', log, log];
  const database = `run${run}`;
  if (name === 'rackboot-pg' || name === 'kea-pg') await postgres!.createDatabase(database);
  try {
    if (name === 'rackboot' || name === 'rackboot-tmpfs' || name === 'baseline' || name === 'rackboot-pg') {
      for (const sub of ['state', 'profiles', 'assets']) mkdirSync(join(dir, sub));
      const state = join(dir, 'state');
      if (name === 'rackboot-tmpfs') execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512m,mode=0755', 'tmpfs', state]);
      const cleanup = name === 'rackboot-tmpfs' ? () => execFileSync('umount', [state]) : undefined;
      const cli = name === 'baseline' ? baseline!.script(['server/cli.js']) : cliPath;
      const args = [cli, 'serve', '--interface', serverDevice, '--address', serverAddress, '--dhcp', 'full'];
      args.push('--pool', `${pool.start}-${pool.end}`, '--lease-time', '3600');
      args.push('--state', state, '--profiles', join(dir, 'profiles'), '--assets', join(dir, 'assets'));
      args.push('--http-port', '8080', '--tftp-port', '6969');
      // The password comes from the pgpass file (PGPASSFILE), never the URL.
      if (name === 'rackboot-pg') args.push('--database', postgres!.socketUrl(database).replace(`:${POSTGRES_PASSWORD}@`, '@'));
      const nodeArgs = cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] : [];
      const child = ns.spawn(process.execPath, [...nodeArgs, ...args], { stdio });
      try {
        await waitUntil(
          'rackboot serve',
          () => tail(logFile).includes('rackboot is serving'),
          child,
          () => tail(logFile),
        );
      } catch (error) {
        await stopProcess(child);
        cleanup?.();
        throw error;
      }
      if (name === 'rackboot-pg') {
        return { child, stored: async () => Number(await postgres!.psql(database, "SELECT count(*) FROM leases WHERE state = 'bound'")) };
      }
      return {
        child,
        cleanup,
        stored: () => {
          const store = SqliteLeaseStore.open(join(state, 'leases.sqlite'));
          try {
            return store.all().filter((lease) => lease.state === 'bound').length;
          } finally {
            store.close();
          }
        },
      };
    }
    if (name === 'dnsmasq') {
      const leases = join(dir, 'dnsmasq.leases');
      const child = ns.spawn(
        'dnsmasq',
        [
          '--keep-in-foreground',
          '--conf-file=/dev/null',
          '--port=0',
          '--no-ping',
          `--interface=${serverDevice}`,
          '--bind-interfaces',
          `--dhcp-range=${pool.start},${pool.end},255.255.0.0,1h`,
          '--dhcp-lease-max=100000',
          `--dhcp-leasefile=${leases}`,
          '--pid-file=',
          '--log-facility=-',
        ],
        { stdio },
      );
      await waitUntil(
        'dnsmasq',
        () => listening(ns),
        child,
        () => tail(logFile),
      );
      return { child, stored: () => (existsSync(leases) ? readFileSync(leases, 'utf8').split('\n').filter(Boolean).length : 0) };
    }
    const leases = join(dir, 'kea-leases4.csv');
    const config = join(dir, 'kea-dhcp4.json');
    if (name === 'kea-pg') {
      const init = await runCommand(
        'kea-admin',
        ['db-init', 'pgsql', '-h', postgres!.dir, '-P', String(postgres!.port), '-u', 'rackboot', '-p', POSTGRES_PASSWORD, '-n', database],
        { timeoutMs: 60_000 },
      );
      if (init.code !== 0) throw new Error(`kea-admin db-init pgsql failed: ${init.stdout}${init.stderr}`);
    }
    // libpq takes a host that starts with "/" as the folder of the server's Unix socket.
    const leaseDatabase =
      name === 'kea-pg'
        ? { type: 'postgresql', name: database, host: postgres!.dir, port: postgres!.port, user: 'rackboot', password: POSTGRES_PASSWORD }
        : { type: 'memfile', persist: true, name: leases, 'lfc-interval': 0 };
    writeFileSync(
      config,
      JSON.stringify({
        Dhcp4: {
          'interfaces-config': { interfaces: [serverDevice], 'dhcp-socket-type': 'udp' },
          'lease-database': leaseDatabase,
          'valid-lifetime': 3600,
          subnet4: [{ id: 1, subnet: `198.18.0.0/${prefix}`, pools: [{ pool: `${pool.start} - ${pool.end}` }] }],
          loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stderr' }], severity: 'INFO' }],
        },
      }),
    );
    const child = ns.spawn(kea, ['-c', config], { stdio, env: { ...process.env, KEA_PIDFILE_DIR: dir, KEA_LOCKFILE_DIR: dir } });
    await waitUntil(
      'kea-dhcp4',
      () => listening(ns),
      child,
      () => tail(logFile),
    );
    if (name === 'kea-pg') return { child, stored: async () => Number(await postgres!.psql(database, 'SELECT count(*) FROM lease4 WHERE state = 0')) };
    return {
      child,
      // The CSV gets a line per change of a lease: count addresses, not lines.
      stored: () => {
        if (!existsSync(leases)) return 0;
        const lines = readFileSync(leases, 'utf8').split('\n').slice(1).filter(Boolean);
        return new Set(lines.map((line) => line.split(',')[0])).size;
      },
    };
  } finally {
    closeSync(log);
  }
}

/** The numbers this benchmark uses from perfdhcp's final report. */
export function parsePerfdhcp(stdout: string, seconds?: number): Omit<Result, 'stored' | 'cpuMicrosPerExchange'> {
  const rate = /^Rate: ([\d.]+) 4-way exchanges\/second/m.exec(stdout);
  const section = (name: string): { sent: number; received: number } => {
    const at = stdout.indexOf(`***Statistics for: ${name}***`);
    if (at < 0) throw new Error(`perfdhcp printed no ${name} statistics:\n${stdout}`);
    const text = stdout.slice(at);
    const sent = /^sent packets: (\d+)/m.exec(text);
    const received = /^received packets: (\d+)/m.exec(text);
    if (!sent || !received) throw new Error(`perfdhcp's ${name} statistics are incomplete:\n${stdout}`);
    return { sent: Number(sent[1]), received: Number(received[1]) };
  };
  if (!rate) throw new Error(`perfdhcp printed no rate:\n${stdout}`);
  const discovers = section('DISCOVER-OFFER').sent;
  const acks = section('REQUEST-ACK').received;
  const totals = [...stdout.matchAll(/^sent: \d+\/\d+; received: \d+\/(\d+);/gm)].map((match) => Number(match[1]));
  const acksPerSecond = totals.map((total, i) => total - (i === 0 ? 0 : totals[i - 1]!));
  // perfdhcp's own rate divides by the whole run, the -W wait for late
  // answers included; over the test period it is the ACKs per second offered.
  const perSecond = seconds === undefined ? Number(rate[1]) : Math.round(acks / seconds);
  return { rate: perSecond, discovers, acks, dropRatio: discovers === 0 ? 1 : 1 - acks / discovers, acksPerSecond };
}

function formatSeconds(title: string, results: Map<number, Partial<Record<ServerName, Result>>>): string {
  const header = ['offered/s', ...serverNames.map((name) => `${labels[name]} ACKs in second 1, 2, ...`)];
  const body = [...results].map(([offered, row]) => [String(offered), ...serverNames.map((name) => row[name]?.acksPerSecond.join(' ') ?? '-')]);
  return markdownTable(title, header, body);
}

function formatCpu(title: string, results: Map<number, Partial<Record<ServerName, Result>>>): string {
  const header = ['offered/s', ...serverNames.map((name) => `${labels[name]} µs/x`)];
  const body = [...results].map(([offered, row]) => [String(offered), ...serverNames.map((name) => row[name]?.cpuMicrosPerExchange.toFixed(0) ?? '-')]);
  return markdownTable(title, header, body);
}

function formatTable(title: string, results: Map<number, Partial<Record<ServerName, Result>>>): string {
  const pairs = comparisons.filter(([ours, theirs]) => serverNames.includes(ours) && serverNames.includes(theirs));
  const header = [
    'offered/s',
    ...serverNames.flatMap((name) => [`${labels[name]} x/s`, 'drops']),
    ...pairs.map(([ours, theirs]) => `${labels[ours]} vs ${labels[theirs]}`),
  ];
  const body = [...results].map(([offered, row]) => {
    const cells = (name: ServerName): string[] => {
      const result = row[name];
      return result === undefined ? ['-', '-'] : [result.rate.toFixed(0), `${(result.dropRatio * 100).toFixed(result.dropRatio < 0.1 ? 2 : 1)}%`];
    };
    const ratio = ([ours, theirs]: [ServerName, ServerName]): string =>
      row[ours] !== undefined && row[theirs] !== undefined && row[theirs]!.rate > 0 ? `${(row[ours]!.rate / row[theirs]!.rate).toFixed(2)}x` : '-';
    return [String(offered), ...serverNames.flatMap(cells), ...pairs.map(ratio)];
  });
  return markdownTable(title, header, body);
}

/**
 * One rackboot against two on one PostgreSQL, with broadcast traffic on
 * one bridge (no relay: two servers split a segment's clients between them
 * by rendezvous hashing, and a relay would send each request to both). The
 * CPU column is both servers' CPU together, per exchange.
 */
async function peersTable(work: string): Promise<string> {
  const bridgeNs = Netns.create('rbdp');
  const peers = ['198.18.0.1', '198.18.0.3'].map((address, i) => {
    const ns = Netns.create('rbdp');
    ns.linkTo(bridgeNs, { device: serverDevice, cidr: `${address}/${prefix}` }, { device: `p${i}` });
    return ns;
  });
  bridgeNs.ip('link', 'add', clientDevice, 'type', 'bridge');
  for (let i = 0; i < peers.length; i++) bridgeNs.ip('link', 'set', `p${i}`, 'master', clientDevice);
  bridgeNs.ip('addr', 'add', `${clientAddress}/${prefix}`, 'dev', clientDevice);
  bridgeNs.ip('link', 'set', clientDevice, 'up');
  const rows: string[][] = [];
  const running: ChildProcess[] = [];
  try {
    for (const offered of rates) {
      const row = [String(offered)];
      const rateOf: number[] = [];
      for (const count of [1, 2]) {
        const name = `peers${offered}x${count}`;
        await postgres!.createDatabase(name);
        const database = postgres!.socketUrl(name).replace(`:${POSTGRES_PASSWORD}@`, '@');
        for (let i = 0; i < count; i++) {
          const dir = join(work, `${name}-${i}`);
          for (const sub of ['state', 'profiles', 'assets']) mkdirSync(join(dir, sub), { recursive: true });
          const logFile = join(dir, 'log');
          const log = openSync(logFile, 'w');
          const args = [cliPath, 'serve', '--interface', serverDevice, '--dhcp', 'full', '--pool', `${pool.start}-${pool.end}`, '--lease-time', '3600'];
          args.push('--state', join(dir, 'state'), '--profiles', join(dir, 'profiles'), '--assets', join(dir, 'assets'), '--database', database);
          args.push('--http-port', '8080', '--tftp-port', '6969');
          const child = peers[i]!.spawn(process.execPath, args, { stdio: ['ignore', log, log] });
          closeSync(log);
          running.push(child);
          await waitUntil(
            'rackboot serve',
            () => tail(logFile).includes('rackboot is serving'),
            child,
            () => tail(logFile),
          );
        }
        // Each reads the other's heartbeat before the load.
        if (count === 2) await new Promise((resolve) => setTimeout(resolve, 2500));
        const args = ['-4', '-l', clientDevice, '-r', String(offered), '-R', String(clients), '-p', String(seconds), '-t', '1', '-W', '500000'];
        const before = running.map((child) => cpuMicros(child.pid!));
        const finished = await runIn(bridgeNs, 'perfdhcp', args, (seconds + 20) * 1000);
        const after = running.map((child) => cpuMicros(child.pid!));
        const cpu = after.reduce((sum, now, i) => sum + now.user + now.system - before[i]!.user - before[i]!.system, 0);
        await Promise.all(running.splice(0).map((child) => stopProcess(child)));
        const parsed = parsePerfdhcp(finished.stdout, seconds);
        rateOf.push(parsed.rate);
        row.push(parsed.rate.toFixed(0), `${(parsed.dropRatio * 100).toFixed(1)}%`, parsed.acks > 0 ? (cpu / parsed.acks).toFixed(0) : '-');
        process.stderr.write(
          `${offered}/s broadcast, ${count} rackboot on PostgreSQL: ${parsed.rate} exchanges/s, drops ${(parsed.dropRatio * 100).toFixed(2)}%\n`,
        );
      }
      row.push(rateOf[0]! > 0 ? `${(rateOf[1]! / rateOf[0]!).toFixed(2)}x` : '-');
      rows.push(row);
    }
  } finally {
    await Promise.all(running.map((child) => stopProcess(child)));
    for (const ns of [...peers, bridgeNs]) ns.delete();
  }
  const header = ['offered/s', 'one server x/s', 'drops', 'µs/x', 'two servers x/s', 'drops', 'µs/x (both)', 'two vs one'];
  return markdownTable(`One rackboot against two on one PostgreSQL: broadcast on one segment, ${seconds} s per run, ${clients} client MACs`, header, rows);
}

async function main(): Promise<void> {
  assertRoot();
  for (const tool of ['perfdhcp', 'dnsmasq', 'ss']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is not installed; run builder/install-deps.sh`);
    }
  }
  const kea = findKea();
  const work = mkdtempSync(join(tmpdir(), 'rackboot-bench-dhcp-'));
  // dnsmasq drops privileges to nobody: the folders must be readable by all.
  chmodSync(work, 0o755);

  if (serverNames.some((name) => name.endsWith('-pg'))) {
    postgres = await startPostgres();
    writeFileSync(join(work, 'pgpass'), `*:*:*:rackboot:${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
    process.env.PGPASSFILE = join(work, 'pgpass');
  }
  const serverNs = Netns.create('rbd');
  const clientNs = Netns.create('rbd');
  let running: Running | undefined;
  try {
    serverNs.linkTo(clientNs, { device: serverDevice, cidr: `${serverAddress}/${prefix}` }, { device: clientDevice, cidr: `${clientAddress}/${prefix}` });

    const results = new Map<number, Partial<Record<ServerName, Result>>>();
    let runs = 0;
    for (const offered of rates) {
      const row: Partial<Record<ServerName, Result>> = {};
      results.set(offered, row);
      for (const name of serverNames) {
        const dir = join(work, `run${(runs += 1)}-${name}`);
        running = await start(name, serverNs, dir, kea, runs);
        // -W: after the last request, wait 0.5 s for late answers, so replies
        // still in flight when the run ends are not counted as drops.
        const args = ['-4', '-l', clientDevice, '-r', String(offered), '-R', String(clients), '-p', String(seconds), '-t', '1', '-W', '500000', serverAddress];
        const cpuBefore = cpuMicros(running.child.pid!);
        const finished = await runIn(clientNs, 'perfdhcp', args, (seconds + 20) * 1000);
        const cpuAfter = cpuMicros(running.child.pid!);
        const user = cpuAfter.user - cpuBefore.user;
        const system = cpuAfter.system - cpuBefore.system;
        const cpu = user + system;
        await stopProcess(running.child);
        const stored = await running.stored();
        running.cleanup?.();
        running = undefined;
        const parsed = parsePerfdhcp(finished.stdout, seconds);
        const result: Result = { ...parsed, stored, cpuMicrosPerExchange: parsed.acks > 0 ? cpu / parsed.acks : Number.NaN };
        row[name] = result;
        process.stderr.write(
          `${offered}/s ${labels[name]}: ${result.rate.toFixed(0)} exchanges/s, ${result.discovers} DISCOVERs sent, ${result.acks} ACKs received, ` +
            `drops ${(result.dropRatio * 100).toFixed(2)}%, ${result.stored} leases stored, ${result.cpuMicrosPerExchange.toFixed(0)} µs CPU per exchange ` +
            `(user ${(user / Math.max(1, result.acks)).toFixed(0)}, system ${(system / Math.max(1, result.acks)).toFixed(0)}), ` +
            `ACKs by second ${result.acksPerSecond.join(' ')}\n`,
        );
      }
    }
    process.stdout.write(
      `${formatTable(`perfdhcp 4-way exchanges per second and drop ratio, ${seconds} s per run, ${clients} client MACs, relayed unicast`, results)}\n` +
        `${formatSeconds('ACKs received in each second of a run (the lease store fills as the run goes on)', results)}\n` +
        `${formatCpu('Server CPU time (user + system) per completed exchange, microseconds', results)}\n`,
    );
    if (serverNames.includes('rackboot-pg') && process.env.BENCH_DHCP_PEERS !== '0') process.stdout.write(`${await peersTable(work)}\n`);
  } finally {
    await stopProcess(running?.child);
    running?.cleanup?.();
    clientNs.delete();
    serverNs.delete();
    await postgres?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
