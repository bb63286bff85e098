/**
 * `npm run bench:tftp`: rackboot's TFTP server beside dnsmasq and tftpd-hpa,
 * in the same run, on a veth between two network namespaces (198.18.1.0/24).
 * Run by hand as root; it prints a table, it does not pass or fail.
 *
 * 1. A 64 MB file with atftp at blksize 1468, windowsize 1, 8, 32 and 64.
 * 2. The same through the delaying relay (10 ms each way, no loss), with a
 *    4 MB file: a 20 ms round trip holds windowsize 1 to one block per round
 *    trip (73 KB/s), so 64 MB would take a quarter of an hour per server.
 * 3. 50 atftp clients at once (blksize 1468, windowsize 8), 16 MB each.
 *
 * dnsmasq stops at windowsize 32 (it answers 32 to 64); tftpd-hpa has no
 * windowsize option, so every tftpd-hpa figure is windowsize 1.
 *
 * The client is the bound on a bare veth (about 24 MB/s for atftp at any
 * window size, measured before), so servers compare best where the link
 * is slow and in the concurrent run.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Netns, assertRoot } from '../helpers/netns.js';
import { unpackedProgram } from '../helpers/unpacked.js';

const serverAddress = '198.18.1.1';
const clientAddress = '198.18.1.2';
const ports = { rackboot: 1069, dnsmasq: 69, tftpdHpa: 2069 } as const;
type ServerName = keyof typeof ports;
const serverNames: ServerName[] = ['rackboot', 'dnsmasq', 'tftpdHpa'];
const labels: Record<ServerName, string> = { rackboot: 'rackboot', dnsmasq: 'dnsmasq', tftpdHpa: 'tftpd-hpa' };
const windows = [1, 8, 32, 64];
const support = fileURLToPath(new URL('../tftp/support/', import.meta.url));

interface Row {
  what: string;
  speeds: Partial<Record<ServerName, number>>;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** in.tftpd from the system, or unpacked from tftpd-hpa's .deb (installing it would start a service on port 69). */
function findInTftpd(): string {
  return existsSync('/usr/sbin/in.tftpd') ? '/usr/sbin/in.tftpd' : unpackedProgram('tftpd-hpa', 'usr/sbin/in.tftpd');
}

/** Start a long-running program in a namespace; waits for a JSON line on stdout when asked. */
async function startIn(ns: Netns, cmd: string, args: string[], waitForJson: boolean): Promise<{ child: ChildProcess; info?: { port: number } }> {
  const child = ns.spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  if (!waitForJson) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    if (child.exitCode !== null) throw new Error(`${cmd} exited at once with ${child.exitCode}`);
    return { child };
  }
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return { child, info: JSON.parse(line) as { port: number } };
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** One atftp download in the client namespace; returns MB/s and checks the hash. */
async function atftp(ns: Netns, address: string, port: number, file: string, windowSize: number, out: string, hash: string): Promise<number> {
  const args = ['--get', '-r', file, '-l', out, '--option', 'blksize 1468'];
  if (windowSize > 1) args.push('--option', `windowsize ${windowSize}`);
  args.push(address, String(port));
  const started = performance.now();
  const child = ns.spawn('atftp', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`atftp ${args.join(' ')} exited ${code}: ${stderr.slice(0, 500)}`);
  const received = readFileSync(out);
  if (sha256(received) !== hash) throw new Error(`atftp ${args.join(' ')}: wrong content`);
  rmSync(out);
  return received.length / 1e6 / seconds;
}

function formatTable(title: string, rows: Row[]): string {
  const header = ['', ...serverNames.map((name) => `${labels[name]} MB/s`), 'vs dnsmasq', 'vs tftpd-hpa'];
  const body = rows.map((row) => {
    const speed = (name: ServerName): string => {
      const value = row.speeds[name];
      return value === undefined ? '-' : value.toFixed(value < 10 ? 2 : 1);
    };
    const ratio = (name: ServerName): string =>
      row.speeds.rackboot !== undefined && row.speeds[name] !== undefined ? `${(row.speeds.rackboot / row.speeds[name]!).toFixed(2)}x` : '-';
    return [row.what, ...serverNames.map(speed), ratio('dnsmasq'), ratio('tftpdHpa')];
  });
  const widths = header.map((_, column) => Math.max(...[header, ...body].map((cells) => cells[column]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [`\n${title}`, line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  assertRoot();
  for (const tool of ['atftp', 'dnsmasq']) execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  const inTftpd = findInTftpd();
  const work = mkdtempSync(join(tmpdir(), 'rackboot-bench-'));
  // dnsmasq and in.tftpd drop privileges to nobody: the folder must be readable by all.
  chmodSync(work, 0o755);
  const root = join(work, 'root');
  mkdirSync(root, { mode: 0o755 });
  const files = { big: randomBytes(64 * 1024 * 1024), relay: randomBytes(4 * 1024 * 1024), crowd: randomBytes(16 * 1024 * 1024) };
  const hashes: Record<string, string> = {};
  for (const [name, bytes] of Object.entries(files)) {
    writeFileSync(join(root, `${name}.bin`), bytes, { mode: 0o644 });
    hashes[name] = sha256(bytes);
  }
  const out = join(work, 'out');
  mkdirSync(out);

  const serverNs = Netns.create('rbb');
  const clientNs = Netns.create('rbb');
  const children: ChildProcess[] = [];
  try {
    serverNs.linkTo(clientNs, { device: 'bench-s', cidr: `${serverAddress}/24` }, { device: 'bench-c', cidr: `${clientAddress}/24` });

    const rackboot = await startIn(serverNs, process.execPath, [join(support, 'serve-folder.js'), root, serverAddress, String(ports.rackboot), '128', '128'], true);
    children.push(rackboot.child);
    const dnsmasq = await startIn(
      serverNs,
      'dnsmasq',
      ['--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--enable-tftp', `--tftp-root=${root}`, `--listen-address=${serverAddress}`,
        '--bind-interfaces', '--tftp-max=128', '--pid-file=', '--log-facility=/dev/null'],
      false,
    );
    children.push(dnsmasq.child);
    const tftpd = await startIn(serverNs, inTftpd, ['-L', '-s', '-a', `${serverAddress}:${ports.tftpdHpa}`, root], false);
    children.push(tftpd.child);

    let outputs = 0;
    const output = (): string => join(out, `o${(outputs += 1)}`);
    const tables: string[] = [];

    // 1. The bare veth.
    const bare: Row[] = [];
    for (const windowSize of windows) {
      const row: Row = { what: `veth, 64 MB, windowsize ${windowSize}`, speeds: {} };
      for (const name of serverNames) {
        row.speeds[name] = await atftp(clientNs, serverAddress, ports[name], 'big.bin', windowSize, output(), hashes.big!);
      }
      bare.push(row);
      process.stderr.write(`${row.what}: ${JSON.stringify(row.speeds)}\n`);
    }
    tables.push(formatTable('1. One atftp client on a bare veth (blksize 1468)', bare));

    // 2. Through the delaying relay, one relay per server, in the client namespace.
    const relayRows: Row[] = windows.map((windowSize) => ({ what: `relay 10 ms, 4 MB, windowsize ${windowSize}`, speeds: {} }));
    for (const name of serverNames) {
      const relay = await startIn(clientNs, process.execPath, [join(support, 'relay-main.js'), '127.0.0.1', clientAddress, serverAddress, String(ports[name]), '0', '10'], true);
      children.push(relay.child);
      for (const [i, windowSize] of windows.entries()) {
        // tftpd-hpa has no windowsize: every run of it is windowsize 1, so measure it once.
        if (name === 'tftpdHpa' && windowSize > 1) {
          relayRows[i]!.speeds[name] = relayRows[0]!.speeds[name];
          continue;
        }
        relayRows[i]!.speeds[name] = await atftp(clientNs, '127.0.0.1', relay.info!.port, 'relay.bin', windowSize, output(), hashes.relay!);
        process.stderr.write(`${relayRows[i]!.what} ${labels[name]}: ${relayRows[i]!.speeds[name]!.toFixed(2)}\n`);
      }
      await stop(relay.child);
    }
    tables.push(formatTable('2. Through the relay, 10 ms each way (tftpd-hpa: windowsize 1 in every row)', relayRows));

    // 3. 50 clients at once.
    const crowd: Row = { what: '50 clients, 16 MB each, windowsize 8', speeds: {} };
    for (const name of serverNames) {
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 50 }, () => atftp(clientNs, serverAddress, ports[name], 'crowd.bin', 8, output(), hashes.crowd!)),
      );
      crowd.speeds[name] = (50 * files.crowd.length) / 1e6 / ((performance.now() - started) / 1000);
      process.stderr.write(`crowd ${labels[name]}: ${crowd.speeds[name]!.toFixed(1)}\n`);
    }
    tables.push(formatTable('3. 50 atftp clients at once, total MB/s', [crowd]));

    process.stdout.write(`${tables.join('\n')}\n`);
  } finally {
    for (const child of children) await stop(child);
    clientNs.delete();
    serverNs.delete();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
