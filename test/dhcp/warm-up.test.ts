/**
 * DhcpServer.warmUp: the request path run over made-up clients before the
 * server listens, against a scratch lease store, leaving the server's own
 * store, log and events alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { DhcpServer, type DhcpEvent, type DhcpServerOptions } from '../../server/dhcp/server.js';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { SqliteLeaseStore } from '../../server/dhcp/leases/sqlite.js';
import { Subnet } from '../../server/net/ipv4.js';
import { testBootFile } from '../support/dhcp.js';

const dir = mkdtempSync(join(tmpdir(), 'rackboot-warm-up-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function options(pool: { start: string; end: string }, own: MemoryLeaseStore, lines: string[], events: DhcpEvent[]): DhcpServerOptions {
  return {
    interfaceName: 'lo',
    serverAddress: '198.18.0.1',
    prefixLength: 16,
    pool,
    leaseSeconds: 3600,
    dns: ['198.18.0.1'],
    reservationFor: () => undefined,
    reservationOwner: () => undefined,
    bootFile: testBootFile,
    leases: own,
    knownOnly: true,
    hasOwnProfile: () => false,
    log: pino({ level: 'debug' }, { write: (line: string) => lines.push(line) }),
    onEvent: (event) => events.push(event),
  };
}

test('the warm-up binds its made-up clients in the scratch store, through the real commit (SQLite), and touches nothing of the server', async () => {
  const scratch = SqliteLeaseStore.open(join(dir, 'scratch.sqlite'));
  const own = new MemoryLeaseStore();
  const lines: string[] = [];
  const events: DhcpEvent[] = [];
  try {
    const result = await DhcpServer.warmUp(options({ start: '198.18.1.1', end: '198.18.4.254' }, own, lines, events), scratch, 100);
    assert.equal(result.exchanges, 100);
    assert.ok(result.ms >= 0);
    const leases = scratch.all();
    assert.equal(leases.length, 100);
    assert.ok(leases.every((lease) => lease.state === 'bound' && lease.mac.startsWith('02:72:62:')));
    assert.equal(new Set(leases.map((lease) => lease.address)).size, 100, 'an address each');
    // --dhcp-known-only would have ignored every made-up client: the warm-up runs the path that gives leases.
    assert.deepEqual(own.all(), []);
    assert.deepEqual(lines, [], 'nothing in the server log');
    assert.deepEqual(events, [], 'no event (timeline, metrics)');
  } finally {
    scratch.close();
  }
});

test('the warm-up stops when the pool has no address left', async () => {
  const scratch = new MemoryLeaseStore();
  const result = await DhcpServer.warmUp(options({ start: '198.18.1.1', end: '198.18.1.20' }, new MemoryLeaseStore(), [], []), scratch, 2048);
  assert.equal(result.exchanges, 20);
  assert.equal(scratch.all().length, 20);
});

test("half the made-up clients come through relays: one on the server's own wire and one per relay subnet, each given an address of its scope", async () => {
  const scratch = new MemoryLeaseStore();
  const relayed: DhcpServerOptions = {
    ...options({ start: '198.18.1.1', end: '198.18.4.254' }, new MemoryLeaseStore(), [], []),
    relayScopes: [{ subnet: new Subnet('198.19.7.0', 24), pool: { start: '198.19.7.10', end: '198.19.7.200' }, router: '198.19.7.1', dns: [] }],
  };
  const result = await DhcpServer.warmUp(relayed, scratch, 64);
  assert.equal(result.exchanges, 64);
  const leases = scratch.all();
  const inRelaySubnet = leases.filter((lease) => lease.address.startsWith('198.19.7.'));
  // Clients 2, 3 of every four are relayed; the relay alternates between the own wire's and the relay subnet's every four clients.
  assert.equal(inRelaySubnet.length, 16, 'a quarter through the relay subnet');
  assert.equal(leases.length - inRelaySubnet.length, 48, 'the rest from the own pool');
});
