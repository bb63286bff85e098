/**
 * The lease file while `rackboot serve` runs, with real processes on
 * loopback: other processes read it (`rackboot leases`, the sqlite3 CLI), a
 * second server on the same state folder is refused with a message naming
 * the file, and after kill -9 a new server starts at once (the kernel has
 * dropped the dead server's lock).
 *
 * Needs root (the DHCP sockets are bound to a device) and sqlite3 (Debian
 * package sqlite3); fails, never skips, without them.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { encodePacket } from '../../server/dhcp/wire/packet.js';
import type { LeaseRow } from '../../server/dhcp/leases/table.js';
import { assertRoot } from '../support/netns.js';
import { cliPath } from '../support/build.js';
import { clientRequest, freePort } from '../support/dhcp.js';

const dir = mkdtempSync(join(tmpdir(), 'rackboot-leases-command-'));
const state = join(dir, 'state');
const leasesFile = join(state, 'leases.sqlite');
const running: ChildProcess[] = [];

async function freeTcpPort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  return port;
}

interface Started {
  child: ChildProcess;
  dhcpPort: number;
  output: () => string;
}

/** `rackboot serve` on lo with free ports; resolves when it is serving or has exited. */
async function serve(): Promise<Started & { exitCode: number | null }> {
  const dhcpPort = await freePort();
  const args = [cliPath, 'serve', '--interface', 'lo', '--address', '127.0.0.1', '--dhcp', 'full', '--pool', '127.0.0.100-127.0.0.199'];
  args.push('--state', state, '--profiles', join(dir, 'profiles'), '--assets', join(dir, 'assets'));
  args.push('--dhcp-port', String(dhcpPort), '--http-port', String(await freeTcpPort()), '--tftp-port', String(await freePort()));
  const child = spawn(process.execPath, args, { env: { ...process.env, RACKBOOT_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const deadline = Date.now() + 15_000;
  while (!output.includes('rackboot is serving') && child.exitCode === null) {
    if (Date.now() > deadline) throw new Error(`rackboot serve did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (child.exitCode === null) {
    // Exited or serving: wait for the exit code of one that is on its way out.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, dhcpPort, output: () => output, exitCode: child.exitCode };
}

function leasesCommand(...extra: string[]) {
  const result = spawnSync(process.execPath, [cliPath, 'leases', '--state', state, ...extra], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}

/** A RENEWING DHCPREQUEST (ciaddr set): ACKed and bound without an offer first. */
async function bindLease(port: number, mac: string, address: string): Promise<LeaseRow> {
  const socket = dgram.createSocket('udp4');
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      socket.send(encodePacket(clientRequest({ mac, clientAddress: address, options: { messageType: MessageType.request } })), port, '127.0.0.1');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const row = (JSON.parse(leasesCommand('--json')) as LeaseRow[]).find((lease) => lease.mac === mac);
      if (row !== undefined) return row;
      assert.ok(Date.now() < deadline, `no lease for ${mac} appeared in rackboot leases`);
    }
  } finally {
    socket.close();
  }
}

before(() => {
  assertRoot();
  if (spawnSync('sh', ['-c', 'command -v sqlite3']).status !== 0)
    throw new Error('sqlite3 is not installed (Debian package sqlite3; run builder/install-deps.sh)');
  mkdirSync(join(dir, 'profiles'));
  mkdirSync(join(dir, 'assets'));
});

after(() => {
  for (const child of running) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('readers get in while the server runs, a second server is refused, a server killed with -9 leaves no lock behind', { timeout: 90_000 }, async () => {
  const first = await serve();
  assert.equal(first.exitCode, null, first.output());
  // The warm-up ran over as many made-up clients as the pool holds, in a scratch file: the real one gets only the leases below.
  assert.match(first.output(), /"exchanges":100,"ms":\d+,"msg":"dhcp: request path warmed up on made-up clients"/);

  // `rackboot leases` reads while the server runs and writes.
  const started = Date.now();
  const row = await bindLease(first.dhcpPort, '02:00:00:00:0a:01', '127.0.0.150');
  assert.equal(row.address, '127.0.0.150');
  assert.equal(row.state, 'bound');
  assert.equal(row.holdsAddress, true);
  assert.equal(row.hostname, null);
  const expires = Date.parse(row.expires);
  // A first lease: the client renewed a binding the server has no record of.
  assert.ok(expires >= started + 300_000 - 1000 && expires <= Date.now() + 300_000 + 1000, row.expires);
  const table = leasesCommand().split('\n');
  assert.match(table[0]!, /^MAC +ADDRESS +STATE +EXPIRES \(UTC\) +ENDS +HOSTNAME$/);
  assert.match(
    table.find((line) => line.startsWith('02:00:00:00:0a:01')) ?? '',
    /^02:00:00:00:0a:01 +127\.0\.0\.150 +bound +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +in (4m \d+s|5m 0s) +-$/,
  );

  // So does the sqlite3 CLI, and a second lease bound after that is seen too.
  await bindLease(first.dhcpPort, '02:00:00:00:0a:02', '127.0.0.151');
  const cli = spawnSync('sqlite3', [leasesFile, 'SELECT mac, address, state FROM leases ORDER BY address'], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(cli.stdout, '02:00:00:00:0a:01|127.0.0.150|bound\n02:00:00:00:0a:02|127.0.0.151|bound\n');

  // A second server on the same state folder fails, naming the file.
  const second = await serve();
  assert.equal(second.exitCode, 2, second.output());
  assert.match(
    second.output(),
    new RegExp(
      `rackboot: leases database ${leasesFile.replace(/[.]/g, '\\.')}: in use by another rackboot serving from this state folder \\(it holds ${leasesFile.replace(/[.]/g, '\\.')}\\.lock\\); stop it first`,
    ),
  );
  assert.equal(first.child.exitCode, null, 'the first server is untouched');
  await bindLease(first.dhcpPort, '02:00:00:00:0a:03', '127.0.0.152');

  // kill -9: no clean close, and still the next server starts with every lease.
  const killed = once(first.child, 'exit');
  first.child.kill('SIGKILL');
  await killed;
  const third = await serve();
  assert.equal(third.exitCode, null, third.output());
  assert.match(third.output(), /"msg":"dhcp: leases opened"/);
  assert.match(third.output(), /"leases":3/);
  assert.deepEqual(
    (JSON.parse(leasesCommand('--json')) as LeaseRow[]).map((lease) => [lease.mac, lease.address, lease.state]),
    [
      ['02:00:00:00:0a:01', '127.0.0.150', 'bound'],
      ['02:00:00:00:0a:02', '127.0.0.151', 'bound'],
      ['02:00:00:00:0a:03', '127.0.0.152', 'bound'],
    ],
  );
  const stopped = once(third.child, 'exit');
  third.child.kill('SIGTERM');
  await stopped;
  assert.equal(third.child.exitCode, 0);
});

test('rackboot leases names the file when there is none', () => {
  const result = spawnSync(process.execPath, [cliPath, 'leases', '--state', join(dir, 'nowhere')], { encoding: 'utf8' });
  assert.equal(result.status, 2);
  assert.equal(
    result.stderr,
    `rackboot: leases database ${join(dir, 'nowhere', 'leases.sqlite')}: does not exist (has a server run with this state folder?)\n`,
  );
});
