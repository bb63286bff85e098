/**
 * `npm run bench:storm`: a boot storm. N simulated PXE machines (50, 200
 * and 500; BENCH_STORM_SIZES picks others) start at once, each in a network
 * namespace of its own on one bridge, and each does what a BIOS machine's
 * boot does on the wire, with real clients:
 *
 *   1. DHCP as a PXE client (busybox udhcpc, vendor class PXEClient, arch 0);
 *   2. TFTP of the boot file the answer names (atftp, blksize 1468);
 *   3. HTTP of the boot script (curl), following rackboot's chain to the
 *      host's own script, as iPXE does;
 *   4. HTTP of the files the script's default entry loads (Xen, the dom0
 *      kernel and the runtime initrd, about 14 MB).
 *
 * Against, in the same run and on the same files (the tiny test build):
 * rackboot (one server, SQLite), two rackboot servers on one PostgreSQL
 * (each machine boots from the one that answers its DHCP), and dnsmasq
 * (DHCP and TFTP) with nginx (HTTP, one worker, sendfile) serving the very
 * scripts rackboot served, as static files, and the files at the paths
 * they name: the machines do the same work against both. The servers run
 * on CPU 0 and the machines on the other CPU (BENCH_STORM_SERVER_CPUS,
 * BENCH_STORM_CLIENT_CPUS), as in a rack, where they are other computers.
 * It prints, per server and N: the time
 * to the last machine's last byte, the 50th and 99th percentile of a
 * machine's boot, machines that failed (and at which step), the servers'
 * CPU time and their peak resident memory, and the mean time of each step.
 * Both get the same TFTP capacity: 1000 transfers at once
 * (BENCH_STORM_TFTP_MAX; rackboot's own default is 64).
 *
 * On a machine of two CPUs the machines' side (a bash, curl and atftp per
 * machine) is the limit, so the time to the last byte says more about the
 * clients than the servers; the step times and the servers' CPU say how
 * each server answers. Compare the servers within one run only. Run by
 * hand as root.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, closeSync, mkdirSync, openSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTestBuild } from '../support/build.js';
import { cpuMs, rssMiB, stopProcess } from '../support/bench/proc.js';
import { writeNginxConfig } from '../support/bench/nginx.js';
import { markdownTable } from '../support/bench/table.js';
import { assertRoot, Netns } from '../support/netns.js';
import { POSTGRES_PASSWORD, startPostgres, type TestPostgres } from '../support/postgres.js';

const cliPath = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
const sizes = (process.env.BENCH_STORM_SIZES ?? '50,200,500').split(',').map(Number);
const serverAddresses = ['198.18.0.1', '198.18.0.2'];
const prefix = 16;
const pool = '198.18.1.0-198.18.3.254';
const httpPort = 8080;
const tftpMax = Number(process.env.BENCH_STORM_TFTP_MAX ?? 1000);
// The servers get CPU 0, the machines' clients and the bench the rest: in a rack they are other machines.
const serverCpus = process.env.BENCH_STORM_SERVER_CPUS ?? '0';
const clientCpus = process.env.BENCH_STORM_CLIENT_CPUS ?? '1';

type Setup = 'rackboot' | 'rackboot x2' | 'dnsmasq + nginx';
const allSetups: Setup[] = ['rackboot', 'rackboot x2', 'dnsmasq + nginx'];
// BENCH_STORM_SETUPS picks some ("rackboot,dnsmasq + nginx"), to look at one closely.
const setups = process.env.BENCH_STORM_SETUPS ? allSetups.filter((s) => process.env.BENCH_STORM_SETUPS!.split(',').includes(s)) : allSetups;

/** One machine's boot, as its client script wrote it. */
interface MachineResult {
  ok: boolean;
  /** The step that failed. */
  failed?: string;
  seconds: number;
  bytes: number;
  /** Seconds spent in DHCP, TFTP, the boot scripts and the files. */
  steps?: number[];
}

interface RunResult {
  total: number;
  p50: number;
  p99: number;
  failed: Map<string, number>;
  cpuSeconds: number;
  peakMiB: number;
  bytes: number;
  /** The mean seconds of each step (DHCP, TFTP, scripts, files) over the machines that booted. */
  steps: number[];
}

/**
 * The machine's side: DHCP, TFTP, the script, its files. Writes one line to
 * $OUT: "ok SECONDS BYTES" or "fail STEP SECONDS". Runs in the machine's namespace.
 */
const CLIENT = [
  '#!/bin/bash',
  'set -u',
  'out=$1; work=$2; mac=$3; port=$4',
  'start=$(date +%s%N)',
  // Milliseconds since the start at the end of each step, for the steps' share of the boot.
  'marks=""; mark() { marks="$marks $(( ($(date +%s%N) - start) / 1000000 ))"; }',
  'finish() { echo "$1 $(( ($(date +%s%N) - start) / 1000000 )) ${2:-0}$marks" > "$out"; exit 0; }',
  'busybox udhcpc -i eth0 -f -q -n -t 20 -T 2 -V PXEClient:Arch:00000:UNDI:002001 -x 0x5d:0000 -s "$work/udhcpc.script" > /dev/null 2>&1 || finish "fail dhcp"',
  '. "/run/storm-$mac.env" || finish "fail dhcp"',
  'mark',
  'atftp --option "blksize 1468" -g -r "$boot_file" -l /dev/null "$siaddr" 69 > /dev/null 2>&1 || finish "fail tftp"',
  'mark',
  'script=$(curl -sf --max-time 120 "http://$siaddr:$port/boot.ipxe") || finish "fail script"',
  // rackboot's entry script chains to the host's own one, with the MAC and the platform filled in by iPXE.
  'chain=$(printf "%s\\n" "$script" | awk \'$1 == "chain" { print $2; exit }\')',
  'if [ -n "$chain" ]; then',
  '  url=$(printf "%s" "$chain" | sed -e "s/\\${mac:hexhyp}/$(echo "$mac" | tr : -)/" -e "s/\\${platform}/pcbios/")',
  '  script=$(curl -sf --max-time 120 "$url") || finish "fail host-script"',
  'fi',
  'mark',
  // The default entry's kernel, modules and initrds, as iPXE would load them.
  'entry=$(printf "%s\\n" "$script" | awk \'$1 == "goto" { print $2; exit }\')',
  'bytes=0',
  'for url in $(printf "%s\\n" "$script" | awk -v entry=":$entry" \'$1 == entry { on = 1; next } on && /^$/ { exit } on && ($1 == "kernel" || $1 == "module" || $1 == "initrd") { print $2 }\'); do',
  '  size=$(curl -sf --max-time 300 -o /dev/null -w "%{size_download}" "$url") || finish "fail $(basename "$url")"',
  '  bytes=$((bytes + size))',
  'done',
  '[ "$bytes" -gt 0 ] || finish "fail no-files"',
  'finish ok "$bytes"',
  '',
].join('\n');

/** udhcpc's script: the address on bound, and what the answer said for the client. */
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr add "$ip/${prefix}" dev "$interface"
    mac=$(cat /sys/class/net/$interface/address)
    printf 'siaddr=%s\\nboot_file=%s\\n' "$siaddr" "$boot_file" > "/run/storm-$mac.env"
    ;;
esac
exit 0
`;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function macOf(index: number): string {
  return `02:5b:00:00:${((index >> 8) & 0xff).toString(16).padStart(2, '0')}:${(index & 0xff).toString(16).padStart(2, '0')}`;
}

/** The wire: a bridge in its own namespace, a namespace per server and per machine, each with a veth on the bridge. */
class Wire {
  readonly ns = Netns.create('rbsw');
  readonly servers: Netns[] = [];
  readonly machines: Netns[] = [];

  constructor(machines: number) {
    this.ns.ip('link', 'add', 'br0', 'type', 'bridge');
    // Thousands of MACs on one bridge: no learning limit, no ageing during a run.
    this.ns.ip('link', 'set', 'br0', 'type', 'bridge', 'ageing_time', '30000');
    this.ns.ip('link', 'set', 'br0', 'up');
    serverAddresses.forEach((address, i) => {
      const ns = Netns.create(`rbss${i}`);
      ns.linkTo(this.ns, { device: 'vs', cidr: `${address}/${prefix}` }, { device: `s${i}` });
      this.ns.ip('link', 'set', `s${i}`, 'master', 'br0');
      this.servers.push(ns);
    });
    for (let i = 0; i < machines; i++) {
      const ns = Netns.create('rbsm');
      ns.linkTo(this.ns, { device: 'eth0', mac: macOf(i) }, { device: `m${i}` });
      this.ns.ip('link', 'set', `m${i}`, 'master', 'br0');
      this.machines.push(ns);
    }
  }

  delete(): void {
    for (const ns of [...this.machines, ...this.servers, this.ns]) ns.delete();
  }
}

interface Servers {
  pids: number[];
  stop(): Promise<void>;
}

/** Waits for `pattern` in a server's log file. */
async function waitForLine(child: ChildProcess, logFile: string, pattern: RegExp, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const seen = readFileSync(logFile, 'utf8');
    if (pattern.test(seen)) return;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not start: ${seen.slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function startRackboot(wire: Wire, dir: string, assets: string, count: 1 | 2, postgres: TestPostgres | undefined): Promise<Servers> {
  const profiles = join(dir, 'profiles');
  mkdirSync(profiles, { recursive: true });
  writeFileSync(join(profiles, 'default.yaml'), ['hostname: "node-{mac}"', 'boot:', '  menuTimeout: 0', ''].join('\n'));
  let database: string | undefined;
  if (count === 2) {
    const name = `storm${Date.now()}`;
    await postgres!.createDatabase(name);
    database = postgres!.socketUrl(name).replace(`:${POSTGRES_PASSWORD}@`, '@');
    execFileSync(process.execPath, [cliPath, 'profiles', 'import', profiles, '--database', database], { env: process.env, stdio: 'ignore' });
  }
  const children: ChildProcess[] = [];
  for (let i = 0; i < count; i++) {
    const args = [cliPath, 'serve', '--interface', 'vs', '--pool', pool, '--profiles', profiles, '--assets', assets];
    args.push('--state', join(dir, `state${i}`), '--http-port', String(httpPort), '--config', '/dev/null', '--drain-seconds', '1');
    // TFTP transfers at once: as many as dnsmasq gets (--tftp-max) unless BENCH_STORM_TFTP_MAX says otherwise (rackboot's default is 64).
    args.push('--tftp-max-transfers', String(tftpMax));
    if (database !== undefined) args.push('--database', database);
    // Its log (a line per protocol event) goes to a file, as a service's would go to the journal.
    const logFile = join(dir, `serve${i}.log`);
    const log = openSync(logFile, 'w');
    // BENCH_STORM_NODE_ARGS: flags for the servers' node ("--cpu-prof --cpu-prof-dir=/tmp/prof"), to see where their time goes.
    const nodeArgs = (process.env.BENCH_STORM_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = wire.servers[i]!.spawn('taskset', ['-c', serverCpus, process.execPath, ...nodeArgs, ...args], {
      env: { ...process.env, RACKBOOT_LOG_LEVEL: 'info' },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    children.push(child);
    await waitForLine(child, logFile, /rackboot is serving/, `rackboot serve ${i}`);
  }
  // Two servers: each reads the other's heartbeat before the storm.
  if (count === 2) await new Promise((resolve) => setTimeout(resolve, 2500));
  return { pids: children.map((child) => child.pid!), stop: async () => void (await Promise.all(children.map((child) => stopProcess(child, 5000)))) };
}

/**
 * The scripts rackboot served one machine (the entry script and its own),
 * fetched from the running server: the reference serves the same text, so
 * the machines do the same work against both.
 */
interface ServedScripts {
  entry: string;
  host: string;
}

function fetchScripts(wire: Wire): ServedScripts {
  const base = `http://${serverAddresses[0]}:${httpPort}`;
  const get = (path: string) => wire.servers[0]!.exec('curl', ['-sf', '--max-time', '10', `${base}${path}`]);
  return { entry: get('/boot.ipxe'), host: get(`/hosts/${macOf(0).replaceAll(':', '-')}/boot.ipxe?platform=pcbios`) };
}

/**
 * dnsmasq (DHCP, TFTP) and nginx (HTTP) serving the same files and the
 * same scripts as rackboot: the entry script at /boot.ipxe, the host script
 * at every /hosts/<mac>/boot.ipxe, and each boot part at the path the host
 * script names.
 */
async function startDnsmasqNginx(wire: Wire, dir: string, assets: string, scripts: ServedScripts): Promise<Servers> {
  const ns = wire.servers[0]!;
  const tftp = join(dir, 'tftp');
  const www = join(dir, 'www');
  mkdirSync(tftp, { recursive: true });
  mkdirSync(www, { recursive: true });
  const build = join(assets, 'current');
  execFileSync('cp', [join(build, 'undionly.kpxe'), tftp]);
  writeFileSync(join(www, 'boot.ipxe'), scripts.entry);
  writeFileSync(join(www, 'host.ipxe'), scripts.host);
  const parts = scripts.host
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([command, url]) => (command === 'kernel' || command === 'module' || command === 'initrd') && url?.startsWith('http'))
    .map(([, url]) => new URL(url!).pathname);
  if (parts.length === 0) throw new Error(`rackboot's host script names no boot parts:\n${scripts.host}`);
  for (const part of new Set(parts)) {
    const name = part.split('/').at(-1)!;
    const source = join(build, name);
    mkdirSync(join(www, part, '..'), { recursive: true });
    execFileSync('cp', [source, join(www, part)]);
  }
  chmodSync(dir, 0o755);
  for (const folder of [tftp, www]) chmodSync(folder, 0o755);
  const log = openSync(join(dir, 'servers.log'), 'w');
  const dnsmasq = ns.spawn(
    'taskset',
    [
      '-c',
      serverCpus,
      'dnsmasq',
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--port=0',
      '--no-ping',
      '--interface=vs',
      '--bind-interfaces',
      '--dhcp-range=198.18.1.0,198.18.3.254,255.255.0.0,1h',
      '--dhcp-lease-max=100000',
      `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      '--dhcp-boot=undionly.kpxe',
      '--enable-tftp',
      `--tftp-root=${tftp}`,
      `--tftp-max=${tftpMax}`,
      '--pid-file=',
      '--log-facility=-',
      '--quiet-dhcp',
    ],
    { stdio: ['ignore', log, log] },
  );
  const conf = writeNginxConfig(dir, `${serverAddresses[0]}:${httpPort}`, www, 4096, ['location ~ ^/hosts/[^/]+/boot\\.ipxe$ { try_files /host.ipxe =404; }']);
  const nginx = ns.spawn('taskset', ['-c', serverCpus, 'nginx', '-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', log, log] });
  closeSync(log);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const [name, child] of [
    ['dnsmasq', dnsmasq],
    ['nginx', nginx],
  ] as const) {
    if (child.exitCode !== null) throw new Error(`${name} exited at once with ${child.exitCode}`);
  }
  return { pids: [dnsmasq.pid!, nginx.pid!], stop: async () => void (await Promise.all([stopProcess(dnsmasq, 5000), stopProcess(nginx, 5000)])) };
}

/** rackboot's scripts when the reference runs without rackboot before it (BENCH_STORM_SETUPS): a server started for that alone. */
async function scriptsFromRackboot(wire: Wire, dir: string, assets: string): Promise<ServedScripts> {
  mkdirSync(dir, { recursive: true });
  const servers = await startRackboot(wire, dir, assets, 1, undefined);
  try {
    return fetchScripts(wire);
  } finally {
    await servers.stop();
  }
}

/** Boots `count` machines at once; their results and what the servers used meanwhile. */
async function storm(wire: Wire, servers: Servers, dir: string, count: number): Promise<RunResult> {
  const results = join(dir, 'results');
  mkdirSync(results, { recursive: true });
  for (const file of readdirSync('/run').filter((name) => name.startsWith('storm-'))) rmSync(join('/run', file));
  const cpuBefore = servers.pids.reduce((total, pid) => total + cpuMs(pid, { tree: true }), 0);
  let peak = 0;
  const sampler = setInterval(
    () =>
      (peak = Math.max(
        peak,
        servers.pids.reduce((total, pid) => total + rssMiB(pid), 0),
      )),
    200,
  );
  const started = Date.now();
  const clients = wire.machines.slice(0, count).map((ns, i) => {
    const child = spawn(
      'taskset',
      [
        '-c',
        clientCpus,
        'ip',
        'netns',
        'exec',
        ns.name,
        'bash',
        join(dir, '..', 'client.sh'),
        join(results, String(i)),
        join(dir, '..'),
        macOf(i),
        String(httpPort),
      ],
      {
        stdio: 'ignore',
      },
    );
    return once(child, 'exit');
  });
  await Promise.all(clients);
  const total = (Date.now() - started) / 1000;
  clearInterval(sampler);
  const cpuSeconds = (servers.pids.reduce((total, pid) => total + cpuMs(pid, { tree: true }), 0) - cpuBefore) / 1000;
  const machines: MachineResult[] = [];
  for (let i = 0; i < count; i++) {
    let line = '';
    try {
      line = readFileSync(join(results, String(i)), 'utf8').trim();
    } catch {
      line = 'fail no-result 0';
    }
    const [status, ...rest] = line.split(' ');
    if (status === 'ok') {
      const marks = [0, ...rest.slice(2).map(Number), Number(rest[0])];
      const steps = marks.slice(1).map((mark, step) => (mark - marks[step]!) / 1000);
      machines.push({ ok: true, seconds: Number(rest[0]) / 1000, bytes: Number(rest[1]), steps });
    } else machines.push({ ok: false, failed: rest[0] ?? 'unknown', seconds: Number(rest[1] ?? 0) / 1000, bytes: 0 });
  }
  const times = machines
    .filter((m) => m.ok)
    .map((m) => m.seconds)
    .sort((a, b) => a - b);
  const failed = new Map<string, number>();
  for (const m of machines.filter((m) => !m.ok)) failed.set(m.failed!, (failed.get(m.failed!) ?? 0) + 1);
  // Release every address for the next run: a new run starts from empty leases.
  for (const ns of wire.machines.slice(0, count)) ns.ip('addr', 'flush', 'dev', 'eth0');
  return {
    total,
    p50: percentile(times, 50),
    p99: percentile(times, 99),
    failed,
    cpuSeconds,
    peakMiB: peak,
    bytes: machines.reduce((sum, m) => sum + m.bytes, 0),
    steps: [0, 1, 2, 3].map((step) => {
      const booted = machines.filter((m) => m.ok && m.steps?.length === 4);
      return booted.reduce((sum, m) => sum + m.steps![step]!, 0) / Math.max(1, booted.length);
    }),
  };
}

async function main(): Promise<void> {
  assertRoot();
  execFileSync('taskset', ['-pc', clientCpus, String(process.pid)], { stdio: 'ignore' });
  for (const tool of ['taskset', 'busybox', 'atftp', 'curl', 'dnsmasq', 'nginx']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is not installed; run builder/install-deps.sh --test`);
    }
  }
  const assets = await ensureTestBuild();
  const work = mkdtempSync(join(tmpdir(), 'rackboot-bench-storm-'));
  chmodSync(work, 0o755);
  writeFileSync(join(work, 'client.sh'), CLIENT, { mode: 0o755 });
  writeFileSync(join(work, 'udhcpc.script'), UDHCPC_SCRIPT, { mode: 0o755 });
  writeFileSync(join(work, 'pgpass'), `*:*:*:rackboot:${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
  process.env.PGPASSFILE = join(work, 'pgpass');
  const postgres = await startPostgres();
  const made = Date.now();
  const wire = new Wire(Math.max(...sizes));
  process.stderr.write(`${wire.machines.length} machines on one bridge, made in ${((Date.now() - made) / 1000).toFixed(1)} s\n`);
  const results = new Map<number, Partial<Record<Setup, RunResult>>>();
  let runs = 0;
  let scripts: ServedScripts | undefined;
  try {
    for (const count of sizes) {
      const row: Partial<Record<Setup, RunResult>> = {};
      results.set(count, row);
      for (const setup of setups) {
        const dir = join(work, `run${(runs += 1)}`);
        mkdirSync(dir);
        const servers =
          setup === 'dnsmasq + nginx'
            ? await startDnsmasqNginx(wire, dir, assets, (scripts ??= await scriptsFromRackboot(wire, join(work, 'scripts'), assets)))
            : await startRackboot(wire, dir, assets, setup === 'rackboot' ? 1 : 2, postgres);
        try {
          const result = await storm(wire, servers, dir, count);
          if (setup === 'rackboot' && scripts === undefined) scripts = fetchScripts(wire);
          row[setup] = result;
          const failures = [...result.failed].map(([step, n]) => `${n} at ${step}`).join(', ') || 'none';
          process.stderr.write(
            `${count} machines, ${setup}: last byte after ${result.total.toFixed(1)} s, p50 ${result.p50.toFixed(1)} s, p99 ${result.p99.toFixed(1)} s, ` +
              `${(result.bytes / 1e9).toFixed(2)} GB, failed: ${failures}; servers' CPU ${result.cpuSeconds.toFixed(1)} s, peak ${result.peakMiB.toFixed(0)} MiB; ` +
              `mean s in DHCP ${result.steps[0]!.toFixed(1)}, TFTP ${result.steps[1]!.toFixed(1)}, scripts ${result.steps[2]!.toFixed(1)}, files ${result.steps[3]!.toFixed(1)}\n`,
          );
        } finally {
          await servers.stop();
        }
      }
    }
  } finally {
    wire.delete();
    await postgres.close();
    // BENCH_STORM_KEEP=1 keeps the servers' logs and the machines' results.
    if (process.env.BENCH_STORM_KEEP) process.stderr.write(`kept ${work}\n`);
    else rmSync(work, { recursive: true, force: true });
  }
  const header = [
    'machines',
    ...setups.flatMap((s) => [`${s}: last byte s`, 'p50 / p99 s', 'failed', 'CPU s', 'peak MiB']),
    'rackboot vs dnsmasq + nginx',
    'rackboot x2 vs dnsmasq + nginx',
  ];
  const body = [...results].map(([count, row]) => {
    const cells = (setup: Setup): string[] => {
      const r = row[setup];
      if (r === undefined) return ['-', '-', '-', '-', '-'];
      const failed = [...r.failed.values()].reduce((a, b) => a + b, 0);
      return [r.total.toFixed(1), `${r.p50.toFixed(1)} / ${r.p99.toFixed(1)}`, String(failed), r.cpuSeconds.toFixed(1), r.peakMiB.toFixed(0)];
    };
    // Faster is better: the ratio is the reference's time over ours.
    const ratio = (setup: Setup): string => {
      const ours = row[setup];
      const theirs = row['dnsmasq + nginx'];
      return ours && theirs && ours.failed.size === 0 ? `${(theirs.total / ours.total).toFixed(2)}x` : '-';
    };
    return [String(count), ...setups.flatMap(cells), ratio('rackboot'), ratio('rackboot x2')];
  });
  process.stdout.write(
    `${markdownTable('Boot storm: N PXE machines at once (DHCP, TFTP undionly.kpxe, boot script, Xen + kernel + initrd over HTTP)', header, body)}\n`,
  );
}

await main();
