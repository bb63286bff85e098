/**
 * Leases in PostgreSQL, end to end: the real `rackboot serve --database`
 * in a namespace under perfdhcp load, killed with SIGKILL mid-load; every
 * lease a client was ACKed before the kill is in the database with the
 * same MAC. A second server with a state folder of its own then serves on
 * the same database (the first machine is gone, its database is not): no
 * address goes to a second client, `rackboot leases --database` reads
 * the table, and both servers hold the same admin token. Then PostgreSQL
 * is stopped under load and started again: the server says so, ACKs
 * nothing it could not commit, keeps serving boot files, and answers again
 * by itself. The servers reach PostgreSQL through its Unix socket, which
 * crosses network namespaces.
 *
 * Needs root, iproute2, perfdhcp, tcpdump and Debian's postgresql-15;
 * fails, never skips, without them.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readLeaseDatabase } from '../../server/dhcp/leases/postgres.js';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { Netns } from '../support/netns.js';
import { POSTGRES_PASSWORD, startPostgres, type TestPostgres } from '../support/postgres.js';
import { runRackboot } from '../support/run.js';
import { writeTestBuild } from '../support/assets.js';
import { runIn } from './live-support.js';
import { assertConsistent } from './lease-store-contract.js';
import { assertOneHolderEach, Capture, clientAddress, load, loadThenKill, prepareLoadTest, Server, serverAddress } from './load-support.js';

let serverNs: Netns;
let clientNs: Netns;
let postgres: TestPostgres;
let database: string;
const dir = mkdtempSync(join(tmpdir(), 'rackboot-pg-live-'));

before(async () => {
  prepareLoadTest(dir);
  postgres = await startPostgres();
  await postgres.createDatabase('site');
  // As the README says to run it: no password in the URL, a pgpass file named by PGPASSFILE (the servers inherit it).
  database = postgres.socketUrl('site').replace(`:${POSTGRES_PASSWORD}@`, '@');
  writeFileSync(join(dir, 'pgpass'), `*:*:site:rackboot:${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
  process.env.PGPASSFILE = join(dir, 'pgpass');
  serverNs = Netns.create('rbpgs');
  clientNs = Netns.create('rbpgc');
  serverNs.linkTo(clientNs, { device: 'vs', cidr: `${serverAddress}/24` }, { device: 'vc', cidr: `${clientAddress}/24` });
});

after(async () => {
  clientNs?.delete();
  serverNs?.delete();
  await postgres?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The database's leases, checked as a store's: one record per address, one client record per MAC. */
async function databaseLeases(url = database): Promise<MemoryLeaseStore> {
  const view = new MemoryLeaseStore();
  view.adoptAll(await readLeaseDatabase(url));
  assertConsistent(view);
  return view;
}

test(
  'leases in PostgreSQL: what was ACKed before a SIGKILL is in the database, and a second server on it gives no address twice',
  { timeout: 180_000 },
  async (t) => {
    const serverArgs = (name: string) => ({ state: join(dir, name), args: ['--database', database] });

    const { replies: before, acks } = await loadThenKill(t, serverNs, clientNs, dir, join(dir, 'before.pcap'), serverArgs('state-a'));
    const afterKill = await databaseLeases();
    for (const [address, mac] of new Map(acks.map((reply) => [reply.address, reply.mac]))) {
      const record = afterKill.byAddress(address);
      assert.equal(record?.mac, mac, `${address} was ACKed to ${mac}; the database has ${JSON.stringify(record)}`);
      assert.equal(record?.state, 'bound', `${address}: ${JSON.stringify(record)}`);
    }
    t.diagnostic(`after the kill: ${afterKill.all().filter((lease) => lease.state === 'bound').length} bound leases in the database`);

    // Another server, another state folder, the same database: 300 MACs for 241 addresses.
    const capture = await Capture.start(clientNs, 'vc', join(dir, 'after.pcap'));
    const second = await Server.start(serverNs, dir, serverArgs('state-b'));
    const run = await load(clientNs, 800, 300, 4);
    assert.match(run.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${run.stderr}`);
    await second.kill('SIGTERM');
    assert.equal(second.child.exitCode, 0, `clean shutdown; errors: ${second.errors.join('')}`);
    const afterRestart = await capture.stop();
    t.diagnostic(`second server: ${afterRestart.filter((reply) => reply.type === 'ack').length} ACKs captured`);
    assert.ok(afterRestart.some((reply) => reply.type === 'ack'));
    const boundTo = assertOneHolderEach([...before, ...afterRestart]);

    const final = await databaseLeases();
    for (const [address, mac] of boundTo) {
      const record = final.byAddress(address);
      assert.equal(record?.mac, mac, `${address} was ACKed to ${mac}; the database has ${JSON.stringify(record)}`);
      assert.equal(record?.state, 'bound');
    }

    // The servers share the admin token (each state folder has it for the CLI) and keep the host-token key in the database only.
    const tokens = ['state-a', 'state-b'].map((name) => readFileSync(join(dir, name, 'admin.token'), 'utf8'));
    assert.equal(tokens[0], tokens[1]);
    assert.ok(!existsSync(join(dir, 'state-a', 'host-token.key')) && !existsSync(join(dir, 'state-b', 'host-token.key')));

    const listed = await runRackboot(['leases', '--database', database, '--json'], { timeoutMs: 30_000 });
    assert.equal(listed.code, 0, listed.stderr);
    // The password came from the pgpass file through rackboot's own reader, not pg's deprecated one.
    assert.doesNotMatch(listed.stderr, /DeprecationWarning|pgpass support is deprecated/);
    const rows = JSON.parse(listed.stdout) as Array<{ address: string; mac: string; state: string }>;
    assert.equal(rows.length, final.all().length);
    assert.ok(rows.every((row) => final.byAddress(row.address)?.mac === row.mac));
    const servers = new Set(rows.map((row) => (row as { server?: string | null }).server));
    assert.deepEqual([...servers], [serverAddress], 'each record names the server that made its last change');
    assert.ok(!database.includes(POSTGRES_PASSWORD));
  },
);

test(
  'PostgreSQL stopped under load: the server says so and ACKs nothing it could not commit, boot files are still served, and once the database is back it answers again by itself',
  { timeout: 180_000 },
  async (t) => {
    await postgres.createDatabase('outage');
    const url = postgres.socketUrl('outage').replace(`:${POSTGRES_PASSWORD}@`, '@');
    writeFileSync(join(dir, 'pgpass'), `*:*:*:rackboot:${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
    const kpxe = randomBytes(96 * 1024);
    const vmlinuz = randomBytes(2 * 1024 * 1024);
    await writeTestBuild(join(dir, 'assets'), 'b1', { 'undionly.kpxe': kpxe, vmlinuz });
    symlinkSync(join('builds', 'b1'), join(dir, 'assets', 'current'));

    const capture = await Capture.start(clientNs, 'vc', join(dir, 'outage.pcap'));
    const server = await Server.start(serverNs, dir, { state: join(dir, 'state-outage'), args: ['--database', url] });
    const running = load(clientNs, 400, 200, 16);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await postgres.stop();
    const stoppedAt = Date.now() / 1000;

    // Boot files come from the build folder, not the database: both protocols answer during the outage.
    const http = await runIn(
      clientNs,
      'curl',
      ['-sS', '--max-time', '10', '-o', join(dir, 'vmlinuz.http'), `http://${serverAddress}:8080/builds/b1/vmlinuz`],
      20_000,
    );
    assert.equal(http.code, 0, `HTTP during the outage: ${http.stderr}`);
    const tftp = await runIn(
      clientNs,
      'atftp',
      ['--option', 'blksize 1468', '-g', '-r', 'undionly.kpxe', '-l', join(dir, 'undionly.tftp'), serverAddress, '6969'],
      20_000,
    );
    assert.equal(tftp.code, 0, `TFTP during the outage: ${tftp.stderr}`);
    assert.ok(readFileSync(join(dir, 'vmlinuz.http')).equals(vmlinuz), 'vmlinuz over HTTP during the outage');
    assert.ok(readFileSync(join(dir, 'undionly.tftp')).equals(kpxe), 'undionly.kpxe over TFTP during the outage');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt * 1000 + 4000 - Date.now())));

    const saidSo = server.errors.find((line) => line.includes('DHCP lease commit failed, no reply sent'));
    assert.ok(saidSo, `no error line during the outage; errors: ${server.errors.join('').slice(0, 2000)}`);
    assert.match(saidSo, /outage/, 'the error names the database');
    assert.ok(!server.errors.some((line) => line.includes('lease changes not kept')), 'the lease store does not say it again');
    const restartAt = Date.now() / 1000;
    await postgres.start();
    const finished = await running;
    assert.match(finished.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${finished.stderr}`);
    await server.kill('SIGTERM');
    const replies = await capture.stop();

    const acks = replies.filter((reply) => reply.type === 'ack');
    const during = acks.filter((reply) => reply.time > stoppedAt + 0.5 && reply.time < restartAt);
    const afterwards = acks.filter((reply) => reply.time >= restartAt);
    t.diagnostic(
      `outage of ${(restartAt - stoppedAt).toFixed(1)} s: ${acks.length - during.length - afterwards.length} ACKs before, ${during.length} during, ${afterwards.length} after; ` +
        `the first ${afterwards.length > 0 ? (afterwards[0]!.time - restartAt).toFixed(1) : '-'} s after the start`,
    );
    assert.equal(during.length, 0, `ACKs sent while PostgreSQL was down: ${JSON.stringify(during.slice(0, 3))}`);
    assert.ok(afterwards.length > 0, 'the server answered again by itself once PostgreSQL was back');
    const back = server.warnings.find((line) => line.includes('DHCP lease commits work again'));
    assert.ok(back, `no line saying commits work again; warnings: ${server.warnings.join('').slice(0, 2000)}`);
    t.diagnostic(JSON.parse(back).msg as string);

    // Every ACK on the wire, before and after the outage, is a lease in the database with the same MAC.
    const boundTo = assertOneHolderEach(replies);
    const leases = await databaseLeases(url);
    for (const [address, mac] of boundTo) {
      const record = leases.byAddress(address);
      assert.equal(record?.mac, mac, `${address} was ACKed to ${mac}; the database has ${JSON.stringify(record)}`);
      assert.equal(record?.state, 'bound');
    }
  },
);
