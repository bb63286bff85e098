/**
 * `npm run bench:http`: a 64 MB boot file fetched with wrk at 1, 16 and 64
 * connections from rackboot's HTTP server (the real app, /builds/<id>/<file>)
 * and, in the same run, from nginx (one worker, sendfile on, started here
 * with its own config in a temporary folder), over a veth between two
 * network namespaces (198.18.2.0/24). Prints GB/s per server, rackboot's
 * ratio to nginx, and each server's resident memory (peak during the run).
 * A second rackboot with sendfile off (Node writes bodies from its memory
 * cache, the path TLS would take) runs beside them for comparison. Each
 * server's CPU time per GB, and the whole machine's (wrk and the kernel's
 * packet processing too), show where a difference comes from.
 * RACKBOOT_BENCH_BASELINE=DIR runs another built rackboot checkout's HTTP
 * server (sendfile on) in the same rounds, with this tree's ratio to it.
 * Run as root; it prints a table, it does not pass or fail.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Netns, assertRoot } from '../support/netns.js';
import { cpuMs, rssMiB, stopProcess } from '../support/bench/proc.js';
import { writeNginxConfig } from '../support/bench/nginx.js';
import { benchBaseline } from '../support/bench/baseline.js';
import { markdownTable } from '../support/bench/table.js';

const serverAddress = '198.18.2.1';
const clientAddress = '198.18.2.2';
/** rackboot as served (sendfile), rackboot with sendfile off (Node writes hot files from its memory cache, as over TLS), nginx. */
const ports = { rackboot: 8080, rackbootNode: 8082, nginx: 8081, baseline: 8083 } as const;
const baseline = benchBaseline();
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
type ServerName = keyof typeof ports;
const concurrencies = (process.env.BENCH_CONNECTIONS ?? '1,16,64').split(',').map(Number);
const FILE_BYTES = 64 * 1024 * 1024;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const BUILD_ID = '20260101T000000.000Z-bench000';

interface Sample {
  gbPerSecond: number;
  requests: number;
  rssMiB: number;
  /** The server's CPU time (user + system, all its processes) per GB sent. */
  cpuMsPerGB: number;
  /** The whole machine's busy CPU time (every process, interrupts included) per GB sent, and its idle share. */
  machineMsPerGB: number;
  idle: number;
  /** The share of the machine's CPU time the hypervisor gave to others meanwhile. */
  steal: number;
}

/** Busy and total CPU time of the whole machine so far, ms (from /proc/stat's first line). */
function machineCpu(): { busy: number; total: number; steal: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  // user nice system idle iowait irq softirq steal: time the hypervisor gave another machine (steal) is neither.
  const total = (fields.reduce((a, b) => a + b, 0) - fields[7]!) * 10;
  const idle = (fields[3]! + fields[4]!) * 10;
  return { busy: total - idle, total, steal: fields[7]! * 10 };
}

function which(program: string, packageName: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin']) {
    try {
      execFileSync('test', ['-x', join(dir, program)]);
      return join(dir, program);
    } catch {
      // next
    }
  }
  throw new Error(`${program} not found: install ${packageName} (builder/install-deps.sh does)`);
}

/** A build folder with one 64 MB file, as `rackboot build` would list it. */
function writeAssets(root: string): { assets: string; file: string; sha256: string } {
  const assets = join(root, 'assets');
  const dir = join(assets, 'builds', BUILD_ID);
  mkdirSync(dir, { recursive: true });
  const data = randomBytes(FILE_BYTES);
  const sha256 = createHash('sha256').update(data).digest('hex');
  writeFileSync(join(dir, 'initrd.gz'), data);
  const manifest = {
    id: BUILD_ID,
    created: '2026-01-01T00:00:00.000Z',
    release: 'bookworm',
    files: [{ name: 'initrd.gz', size: data.length, sha256, package: 'bench', version: '1' }],
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return { assets, file: join(dir, 'initrd.gz'), sha256 };
}

async function startRackboot(ns: Netns, assets: string, port: number, flags: string, script: string): Promise<ChildProcess> {
  const child = ns.spawn(process.execPath, [script, assets, serverAddress, String(port), '256', flags], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(createInterface({ input: child.stdout! }), 'line');
  return child;
}

async function startNginx(ns: Netns, nginx: string, conf: string): Promise<ChildProcess> {
  const child = ns.spawn(nginx, ['-c', conf, '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] });
  await new Promise((resolve) => setTimeout(resolve, 500));
  if (child.exitCode !== null) throw new Error(`nginx exited at once with ${child.exitCode}`);
  return child;
}

/** "3.01GB" -> bytes */
function parseSize(text: string): number {
  const m = /^([\d.]+)([KMGT]?)B$/.exec(text);
  if (!m) throw new Error(`wrk size "${text}"`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf(m[2] || ' ');
}

async function wrk(ns: Netns, url: string, connections: number, pid: number): Promise<Sample> {
  let peak = 0;
  const cpuBefore = cpuMs(pid, { tree: true });
  const machineBefore = machineCpu();
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 100);
  // --timeout: a 64 MB response takes seconds when 64 share the link; wrk's default (2 s) would count them as errors.
  const child = ns.spawn('wrk', ['-t', String(Math.min(2, connections)), '-c', String(connections), '-d', `${SECONDS}s`, '--timeout', '120s', url], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number];
  clearInterval(sampler);
  const cpu = cpuMs(pid, { tree: true }) - cpuBefore;
  const machineAfter = machineCpu();
  const machineBusy = machineAfter.busy - machineBefore.busy;
  const machineIdle = 1 - machineBusy / (machineAfter.total - machineBefore.total);
  const steal = (machineAfter.steal - machineBefore.steal) / (SECONDS * 1000 * cpus().length);
  if (code !== 0) throw new Error(`wrk exited with ${code}:\n${out}`);
  const transfer = /Transfer\/sec:\s+(\S+)/.exec(out);
  const requests = /(\d+) requests in/.exec(out);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(out);
  if (!transfer || !requests) throw new Error(`cannot read wrk's report:\n${out}`);
  if (errors) process.stderr.write(`wrk ${url} c=${connections}: ${errors[0]}\n`);
  const gbPerSecond = parseSize(transfer[1]!) / 1e9;
  return {
    gbPerSecond,
    requests: Number(requests[1]),
    rssMiB: peak,
    cpuMsPerGB: cpu / (gbPerSecond * SECONDS),
    machineMsPerGB: machineBusy / (gbPerSecond * SECONDS),
    idle: machineIdle,
    steal,
  };
}

function check(ns: Netns, url: string, sha256: string, dir: string): void {
  const out = join(dir, 'check');
  ns.exec('curl', ['-sf', '-o', out, url]);
  const got = createHash('sha256').update(readFileSync(out)).digest('hex');
  rmSync(out);
  if (got !== sha256) throw new Error(`${url}: sha256 ${got}, want ${sha256}`);
}

async function main(): Promise<void> {
  assertRoot();
  const nginx = which('nginx', 'nginx');
  which('wrk', 'wrk');
  const root = mkdtempSync(join(tmpdir(), 'rackboot-bench-http-'));
  chmodSync(root, 0o755); // nginx's worker runs as www-data
  const serverNs = Netns.create('rbh');
  const clientNs = Netns.create('rbh');
  const children: ChildProcess[] = [];
  try {
    serverNs.linkTo(clientNs, { device: 'bench-s', cidr: `${serverAddress}/24` }, { device: 'bench-c', cidr: `${clientAddress}/24` });
    const { assets, sha256 } = writeAssets(root);
    const path = `/builds/${BUILD_ID}/initrd.gz`;
    const urls: Record<ServerName, string> = {
      rackboot: `http://${serverAddress}:${ports.rackboot}${path}`,
      rackbootNode: `http://${serverAddress}:${ports.rackbootNode}${path}`,
      nginx: `http://${serverAddress}:${ports.nginx}${path}`,
      baseline: `http://${serverAddress}:${ports.baseline}${path}`,
    };
    const ownScript = fileURLToPath(new URL('../support/bench/http-server.js', import.meta.url));
    const pids = {} as Record<ServerName, number>;
    for (const [name, flags] of [
      ['rackboot', ''],
      ['rackbootNode', 'nosendfile'],
    ] as const) {
      const child = await startRackboot(serverNs, assets, ports[name], flags, ownScript);
      children.push(child);
      pids[name] = child.pid!;
    }
    if (baseline !== undefined) {
      const script = baseline.script(['test/support/bench/http-server.js', 'test/bench/support/http-server.js']);
      const child = await startRackboot(serverNs, assets, ports.baseline, '', script);
      children.push(child);
      pids.baseline = child.pid!;
    }
    const nginxChild = await startNginx(serverNs, nginx, writeNginxConfig(root, `${serverAddress}:${ports.nginx}`, assets));
    children.push(nginxChild);
    pids.nginx = nginxChild.pid!;
    const names = (Object.keys(ports) as ServerName[]).filter((name) => name !== 'baseline' || baseline !== undefined);
    for (const name of names) check(clientNs, urls[name], sha256, root);
    const idle = Object.fromEntries(names.map((name) => [name, rssMiB(pids[name])])) as Record<ServerName, number>;

    const rows: string[] = [];
    const baselineRows: string[][] = [];
    for (const c of concurrencies) {
      // Rounds alternate the servers, and each keeps its best round: the
      // machine is shared, and a busy second hurts whoever runs in it.
      const best = {} as Record<ServerName, Sample>;
      for (let round = 0; round < ROUNDS; round++) {
        for (const name of names) {
          const sample = await wrk(clientNs, urls[name], c, pids[name]);
          const before = best[name];
          best[name] =
            !before || sample.gbPerSecond > before.gbPerSecond
              ? { ...sample, rssMiB: Math.max(sample.rssMiB, before?.rssMiB ?? 0) }
              : { ...before, rssMiB: Math.max(sample.rssMiB, before.rssMiB) };
        }
      }
      const { rackboot: r, rackbootNode: d, nginx: n } = best;
      rows.push(
        [
          String(c).padStart(11),
          r.gbPerSecond.toFixed(2).padStart(13),
          n.gbPerSecond.toFixed(2).padStart(10),
          (r.gbPerSecond / n.gbPerSecond).toFixed(2).padStart(6),
          r.rssMiB.toFixed(0).padStart(16),
          n.rssMiB.toFixed(0).padStart(13),
          d.gbPerSecond.toFixed(2).padStart(16),
          (d.gbPerSecond / n.gbPerSecond).toFixed(2).padStart(10),
          d.rssMiB.toFixed(0).padStart(12),
          r.cpuMsPerGB.toFixed(0).padStart(15),
          n.cpuMsPerGB.toFixed(0).padStart(12),
          r.machineMsPerGB.toFixed(0).padStart(19),
          n.machineMsPerGB.toFixed(0).padStart(16),
        ].join(' '),
      );
      const b = best.baseline as Sample | undefined;
      if (b !== undefined) {
        baselineRows.push([
          String(c),
          r.gbPerSecond.toFixed(2),
          b.gbPerSecond.toFixed(2),
          `${(r.gbPerSecond / b.gbPerSecond).toFixed(2)}x`,
          r.rssMiB.toFixed(0),
          b.rssMiB.toFixed(0),
          r.cpuMsPerGB.toFixed(0),
          b.cpuMsPerGB.toFixed(0),
        ]);
      }
      process.stderr.write(
        `c=${c}: ${names.map((name) => `${name} ${best[name].gbPerSecond.toFixed(2)} GB/s (${best[name].requests} requests, ${best[name].cpuMsPerGB.toFixed(0)} CPU ms/GB, machine ${best[name].machineMsPerGB.toFixed(0)} ms/GB, ${(best[name].idle * 100).toFixed(0)}% idle, ${(best[name].steal * 100).toFixed(0)}% stolen)`).join(', ')}\n`,
      );
    }
    process.stdout.write(
      [
        `bench:http: a 64 MB file with wrk, best of ${ROUNDS} rounds of ${SECONDS} s, over a veth between two namespaces`,
        `idle resident memory: rackboot ${idle.rackboot.toFixed(0)} MiB, rackboot without sendfile ${idle.rackbootNode.toFixed(0)} MiB, nginx ${idle.nginx.toFixed(0)} MiB (master + worker)`,
        'RSS: peak during the row. "no sendfile": rackboot with sendfile off (Node writes the file from its 256 MiB memory cache, as it would over TLS).',
        '',
        "CPU ms/GB: the server's own CPU time per GB sent; machine ms/GB: every CPU's busy time (client and kernel too) per GB, while that server ran.",
        '',
        'connections rackboot GB/s nginx GB/s  ratio rackboot RSS MiB nginx RSS MiB no-sendfile GB/s   ns ratio   ns RSS MiB rackboot CPU/GB nginx CPU/GB rackboot machine/GB nginx machine/GB',
        ...rows,
        '',
        ...(baseline === undefined
          ? []
          : [
              markdownTable(
                `against ${baseline.label} (sendfile on), same rounds:`,
                ['connections', 'rackboot GB/s', 'baseline GB/s', 'ratio', 'rackboot RSS MiB', 'baseline RSS MiB', 'rackboot CPU/GB', 'baseline CPU/GB'],
                baselineRows,
              ),
              '',
            ]),
      ].join('\n'),
    );
  } finally {
    for (const child of children) await stopProcess(child);
    serverNs.delete();
    clientNs.delete();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
