/**
 * Two `rackboot serve --database` on one segment and one PostgreSQL,
 * answering together: perfdhcp broadcasts from a third namespace bridged to
 * both, and a capture on its side shows who answered what. Each client is
 * answered by one server alone, both servers answer about half of them, no
 * address goes to two clients, and every captured ACK is in the database.
 * Then one server is killed with SIGKILL under load: once its heartbeat is
 * stale, the other answers its clients too. And a server cut off from the
 * database (its link to it set down) stops giving leases and says why,
 * while the other carries on with all the clients.
 *
 * PostgreSQL runs in a namespace of its own, reached by each server over a
 * link of its own (TCP), which the partition test sets down; the test
 * itself reaches it through its Unix socket.
 *
 * Needs root, iproute2, perfdhcp, tcpdump and Debian's postgresql-15;
 * fails, never skips, without them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { readLeaseDatabase } from '../../server/dhcp/leases/postgres.js';
import { Netns } from '../support/netns.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { runRackboot } from '../support/run.js';
import { until } from '../support/until.js';
import { assertConsistent } from './lease-store-contract.js';
import { runIn } from './live-support.js';
import { assertOneHolderEach, Capture, load, prepareLoadTest, Server, type Reply } from './load-support.js';

const serverA = '198.18.0.1';
const serverB = '198.18.0.3';
const clientAddress = '198.18.0.2';

let nsA: Netns;
let nsB: Netns;
let clientNs: Netns;
let dbNs: Netns;
let postgres: TestPostgres;
/** The database as each server reaches it (over its own link), and as the test does (the Unix socket). */
let databaseA: string;
let databaseB: string;
let database: string;
const dir = mkdtempSync(join(tmpdir(), 'rackboot-pg-peers-'));

before(async () => {
  prepareLoadTest(dir);
  nsA = Netns.create('rbppa');
  nsB = Netns.create('rbppb');
  clientNs = Netns.create('rbppc');
  dbNs = Netns.create('rbppd');
  dbNs.linkTo(nsA, { device: 'ta', cidr: '198.18.10.1/24' }, { device: 'dba', cidr: '198.18.10.2/24' });
  dbNs.linkTo(nsB, { device: 'tb', cidr: '198.18.11.1/24' }, { device: 'dbb', cidr: '198.18.11.2/24' });
  postgres = await startPostgres({ netns: dbNs.name, host: '198.18.10.1', listen: '198.18.10.1,198.18.11.1' });
  await postgres.createDatabase('site');
  database = postgres.socketUrl('site');
  databaseA = postgres.url('site');
  databaseB = databaseA.replace('@198.18.10.1:', '@198.18.11.1:');
  // One segment: a bridge in the client's namespace, the servers' links in it.
  nsA.linkTo(clientNs, { device: 'vs', cidr: `${serverA}/24` }, { device: 'pa' });
  nsB.linkTo(clientNs, { device: 'vs', cidr: `${serverB}/24` }, { device: 'pb' });
  clientNs.ip('link', 'add', 'vc', 'type', 'bridge');
  clientNs.ip('link', 'set', 'pa', 'master', 'vc');
  clientNs.ip('link', 'set', 'pb', 'master', 'vc');
  clientNs.ip('addr', 'add', `${clientAddress}/24`, 'dev', 'vc');
  clientNs.ip('link', 'set', 'vc', 'up');
});

after(async () => {
  for (const ns of [clientNs, nsA, nsB]) ns?.delete();
  await postgres?.close();
  dbNs?.delete();
  rmSync(dir, { recursive: true, force: true });
});

async function liveServers(): Promise<string[]> {
  return (await postgres.psql('site', "SELECT id FROM servers WHERE seen_at > now() - interval '3 seconds' ORDER BY id")).split('\n').filter(Boolean);
}

/** Servers A and B, each with a state folder of its own, once both are alive in the database and each has read the other's heartbeat. */
async function startPair(suffix: string): Promise<[Server, Server]> {
  const a = await Server.start(nsA, dir, { state: join(dir, `state-a${suffix}`), args: ['--database', databaseA] });
  const b = await Server.start(nsB, dir, { state: join(dir, `state-b${suffix}`), args: ['--database', databaseB] });
  await until(
    'both servers alive in the database',
    15_000,
    async () => ((await liveServers()).length === 2 ? true : undefined),
    () => `${a.errors.join('')}${b.errors.join('')}`,
  );
  // Each reads the list within its next heartbeat.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return [a, b];
}

/** Which servers answered each MAC. */
function answeredBy(replies: readonly Reply[]): Map<string, Set<string>> {
  const by = new Map<string, Set<string>>();
  for (const reply of replies) {
    if (!by.has(reply.mac)) by.set(reply.mac, new Set());
    by.get(reply.mac)!.add(reply.server);
  }
  return by;
}

test('two servers on one database answer one segment together; when one is killed the other takes its clients', { timeout: 180_000 }, async (t) => {
  const [a, b] = await startPair('');
  try {
    const capture = await Capture.start(clientNs, 'vc', join(dir, 'together.pcap'));
    const run = await load(clientNs, 400, 200, 4, 'broadcast');
    assert.match(run.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${run.stderr}`);
    const together = await capture.stop([serverA, serverB]);
    const by = answeredBy(together);
    const shared = [...by].filter(([, servers]) => servers.size > 1);
    assert.deepEqual(shared, [], 'each client answered by one server alone');
    const count = (server: string) => [...by.values()].filter((servers) => servers.has(server)).length;
    t.diagnostic(
      `together: ${by.size} clients, ${count(serverA)} answered by A, ${count(serverB)} by B; ${together.filter((r) => r.type === 'ack').length} ACKs`,
    );
    assert.ok(count(serverA) > 50 && count(serverB) > 50, `both answer: A ${count(serverA)}, B ${count(serverB)}`);
    assert.equal(by.size, 200, 'every client answered');
    // One timeline: each server's DHCP events are in the database, under ids from its own block.
    const writers = await postgres.psql('site', "SELECT count(DISTINCT id / 1000000) FROM events WHERE source = 'dhcp'");
    t.diagnostic(`timeline: DHCP events from ${writers} servers`);
    assert.equal(writers, '2', 'DHCP events from both servers in the one timeline');
    const hosts = await runRackboot(['hosts', '--database', database, '--profiles', join(dir, 'profiles'), '--json'], { timeoutMs: 30_000 });
    assert.equal(hosts.code, 0, hosts.stderr);
    const seen = await postgres.psql('site', 'SELECT count(DISTINCT mac) FROM events');
    assert.equal((JSON.parse(hosts.stdout) as unknown[]).length, Number(seen), 'rackboot hosts --database lists every host of the timeline');

    // A profile saved through A's admin API is served by B (the database's profiles, in each server's copy).
    const token = readFileSync(join(dir, 'state-a', 'admin.token'), 'utf8').trim();
    const api = (server: string, method: string, name: string, body?: string) =>
      clientNs.exec('curl', [
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        method,
        '-H',
        `Authorization: Bearer ${token}`,
        ...(body === undefined ? [] : ['-H', 'Content-Type: application/yaml', '--data-binary', body]),
        `http://${server}:8080/api/profiles/${name}`,
      ]);
    const savedAt = Date.now();
    assert.equal(api(serverA, 'PUT', 'xen09.yaml', 'mac: 52:54:00:00:09:09\nhostname: xen09\n'), '201');
    await until(
      'the profile saved at A served by B',
      10_000,
      () => (api(serverB, 'GET', 'xen09.yaml') === '200' ? true : undefined),
      () => `${a.errors.join('')}${b.errors.join('')}`,
    );
    t.diagnostic(`a profile saved through A's admin API was served by B ${Date.now() - savedAt} ms later`);
    assert.equal(api(serverA, 'PUT', 'bad.yaml', 'mac: 52:54:00:00:09:10\nhostname: -bad-\n'), '422', 'the same checks as for a folder');
    assert.equal(await postgres.psql('site', "SELECT count(*) FROM profiles WHERE name = 'bad.yaml'"), '0');

    // A dies under load: its clients are answered by B once A's heartbeat is stale.
    const capture2 = await Capture.start(clientNs, 'vc', join(dir, 'failover.pcap'));
    const running = load(clientNs, 400, 200, 10, 'broadcast');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await a.kill('SIGKILL');
    const killedAt = Date.now() / 1000;
    const run2 = await running;
    assert.match(run2.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${run2.stderr}`);
    const failover = await capture2.stop([serverA, serverB]);
    assert.ok(
      failover.every((reply) => reply.server !== serverA || reply.time <= killedAt + 1),
      'nothing from A after the kill',
    );
    const aClients = new Set([...by].filter(([, servers]) => servers.has(serverA)).map(([mac]) => mac));
    const takenOver = new Set(
      failover.filter((reply) => reply.server === serverB && reply.type === 'ack' && aClients.has(reply.mac)).map((reply) => reply.mac),
    );
    const firstTakeover = Math.min(...failover.filter((reply) => reply.server === serverB && aClients.has(reply.mac)).map((reply) => reply.time));
    t.diagnostic(`failover: B ACKed ${takenOver.size} of A's ${aClients.size} clients, the first ${(firstTakeover - killedAt).toFixed(1)} s after the kill`);
    assert.ok(takenOver.size > aClients.size / 2, `B took over ${takenOver.size} of A's ${aClients.size} clients`);

    const boundTo = assertOneHolderEach([...together, ...failover]);
    const view = new MemoryLeaseStore();
    view.adoptAll(await readLeaseDatabase(database));
    assertConsistent(view);
    for (const [address, mac] of boundTo) assert.equal(view.byAddress(address)?.mac, mac, `${address} was ACKed to ${mac}`);
  } finally {
    await b.kill('SIGTERM');
    if (a.child.exitCode === null && a.child.signalCode === null) await a.kill('SIGKILL');
  }
});

test('a server cut off from the database gives no lease and says why; the other answers every client', { timeout: 180_000 }, async (t) => {
  // The pool to itself: the other test's clients hold most of it for an hour.
  await postgres.psql('site', 'DELETE FROM leases');
  const [a, b] = await startPair('2');
  try {
    const capture = await Capture.start(clientNs, 'vc', join(dir, 'partition.pcap'));
    // New clients (another MAC base than the other test's), so every one needs a new lease.
    const running = runIn(clientNs, 'perfdhcp', ['-4', '-l', 'vc', '-r', '200', '-R', '100', '-b', 'mac=02:00:00:aa:00:00', '-p', '14'], 40_000);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    nsA.ip('link', 'set', 'dba', 'down');
    const cutAt = Date.now() / 1000;
    const run = await running;
    assert.match(run.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${run.stderr}`);
    const replies = await capture.stop([serverA, serverB]);
    const lateFromA = replies.filter((reply) => reply.server === serverA && reply.type === 'ack' && reply.time > cutAt + 1);
    assert.deepEqual(lateFromA, [], 'no ACK from the server cut off from the database');
    assert.ok(
      a.errors.some(
        (line) => line.includes('DHCP lease commit failed, no reply sent') && /database postgres:\/\/rackboot@198\.18\.10\.1:\d+\/site: unreachable/.test(line),
      ),
      `the cut-off server says why:\n${a.errors.join('').slice(0, 3000)}`,
    );
    // Said once, by the DHCP server, not again by its lease store for the same failed commits.
    assert.ok(!a.errors.some((line) => line.includes('lease changes not kept')), a.errors.join('').slice(0, 3000));
    const answeredAfter = new Set(replies.filter((reply) => reply.type === 'ack' && reply.time > cutAt + 6).map((reply) => reply.mac));
    const macs = new Set(replies.map((reply) => reply.mac));
    t.diagnostic(`partition: ${macs.size} clients; ${answeredAfter.size} ACKed by B from 6 s after the cut; A's errors: ${a.errors.length}`);
    assert.ok(
      replies.filter((reply) => reply.type === 'ack' && reply.time > cutAt + 6).every((reply) => reply.server === serverB),
      'after the cut, only B',
    );
    const boundTo = assertOneHolderEach(replies);
    const view = new MemoryLeaseStore();
    view.adoptAll(await readLeaseDatabase(database));
    for (const [address, mac] of boundTo) assert.equal(view.byAddress(address)?.mac, mac, `${address} was ACKed to ${mac}`);
    const unanswered = [...macs].filter((mac) => !replies.some((reply) => reply.mac === mac && reply.type === 'ack'));
    assert.deepEqual(unanswered, [], 'every client got a lease in the end');
    assert.equal(macs.size, 100, 'every client was answered');
  } finally {
    nsA.ip('link', 'set', 'dba', 'up');
    await b.kill('SIGTERM');
    await a.kill('SIGKILL');
  }
});
