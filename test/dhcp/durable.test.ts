/**
 * Durable leases, end to end: the real `rackboot serve` in a namespace, under
 * perfdhcp load from a second namespace, killed with SIGKILL mid-load and
 * restarted on the same state folder. Every lease a client was ACKed before
 * the kill must still be in leases.sqlite with the same MAC, and after the
 * restart no address may go to a second client.
 * What the clients received is taken from a capture on their side (see
 * load-support.ts).
 *
 * Needs root, iproute2, perfdhcp (Debian kea-admin) and tcpdump; fails,
 * never skips, without them (builder/install-deps.sh installs them).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SqliteLeaseStore } from '../../server/dhcp/leases/sqlite.js';
import { Netns } from '../support/netns.js';
import { assertConsistent } from './lease-store-contract.js';
import { assertOneHolderEach, Capture, clientAddress, load, loadThenKill, prepareLoadTest, Server, serverAddress } from './load-support.js';

let serverNs: Netns;
let clientNs: Netns;
const dir = mkdtempSync(join(tmpdir(), 'rackboot-durable-'));

before(() => {
  prepareLoadTest(dir);
  serverNs = Netns.create('rbdus');
  clientNs = Netns.create('rbduc');
  serverNs.linkTo(clientNs, { device: 'vs', cidr: `${serverAddress}/24` }, { device: 'vc', cidr: `${clientAddress}/24` });
});

after(() => {
  clientNs?.delete();
  serverNs?.delete();
  rmSync(dir, { recursive: true, force: true });
});

test('leases ACKed before a SIGKILL survive it, and no address goes to two clients after the restart', { timeout: 120_000 }, async (t) => {
  const leasesFile = join(dir, 'state', 'leases.sqlite');

  // Phase 1: load, SIGKILL once the server has ACKed a good number of leases.
  const { replies: before, acks: acksBefore } = await loadThenKill(t, serverNs, clientNs, dir, join(dir, 'before.pcap'));
  // Every captured ACK is in the file, bound to the same MAC (the last ACK of an address wins).
  const lastAck = new Map(acksBefore.map((r) => [r.address, r.mac]));
  const afterKill = SqliteLeaseStore.open(leasesFile);
  try {
    for (const [address, mac] of lastAck) {
      const record = afterKill.byAddress(address);
      assert.equal(record?.mac, mac, `${address} was ACKed to ${mac}; the file has ${JSON.stringify(record)}`);
      assert.equal(record?.state, 'bound', `${address}: ${JSON.stringify(record)}`);
    }
    assertConsistent(afterKill);
    t.diagnostic(`after the kill: ${afterKill.all().filter((l) => l.state === 'bound').length} bound leases in ${leasesFile}`);
  } finally {
    afterKill.close();
  }

  // Phase 2: restart on the same state, more clients than addresses (300 MACs, 241 addresses).
  const capture2 = await Capture.start(clientNs, 'vc', join(dir, 'after.pcap'));
  const second = await Server.start(serverNs, dir);
  const secondRun = await load(clientNs, 800, 300, 4);
  assert.match(secondRun.stdout, /REQUEST-ACK/, `perfdhcp did not run: ${secondRun.stderr}`);
  await second.kill('SIGTERM');
  assert.equal(second.child.exitCode, 0, `clean shutdown; errors: ${second.errors.join('')}`);
  const afterRestart = await capture2.stop();
  const acksAfter = afterRestart.filter((r) => r.type === 'ack');
  t.diagnostic(`after the restart: ${acksAfter.length} ACKs captured`);
  assert.ok(acksAfter.length > 0);

  const boundTo = assertOneHolderEach([...before, ...afterRestart]);

  const final = SqliteLeaseStore.open(leasesFile);
  try {
    assertConsistent(final);
    for (const [address, mac] of boundTo) {
      const record = final.byAddress(address);
      assert.equal(record?.mac, mac, `${address} was ACKed to ${mac}; the file has ${JSON.stringify(record)}`);
      assert.equal(record?.state, 'bound');
    }
  } finally {
    final.close();
  }
});
