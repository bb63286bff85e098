/**
 * Leases in PostgreSQL, end to end: the real `rackboot serve --database`
 * in a namespace under perfdhcp load, killed with SIGKILL mid-load; every
 * lease a client was ACKed before the kill is in the database with the
 * same MAC. A second server with a state folder of its own then serves on
 * the same database (the first machine is gone, its database is not): no
 * address goes to a second client, `rackboot leases --database` reads
 * the table, and both servers hold the same admin token. The servers reach PostgreSQL through its Unix socket, which
 * crosses network namespaces.
 *
 * Needs root, iproute2, perfdhcp, tcpdump and Debian's postgresql-15;
 * fails, never skips, without them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readLeaseDatabase } from '../../server/dhcp/leases/postgres.js';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { Netns } from '../support/netns.js';
import { POSTGRES_PASSWORD, startPostgres, type TestPostgres } from '../support/postgres.js';
import { runRackboot } from '../support/run.js';
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
async function databaseLeases(): Promise<MemoryLeaseStore> {
  const view = new MemoryLeaseStore();
  view.adoptAll(await readLeaseDatabase(database));
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
    const rows = JSON.parse(listed.stdout) as Array<{ address: string; mac: string; state: string }>;
    assert.equal(rows.length, final.all().length);
    assert.ok(rows.every((row) => final.byAddress(row.address)?.mac === row.mac));
    assert.ok(!database.includes(POSTGRES_PASSWORD));
  },
);
