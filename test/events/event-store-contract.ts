/**
 * The contract every EventStore keeps. Run it against each implementation:
 * eventStoreContract('name', () => new Store(), { verify }).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { eventSources, type NewBootEvent } from '../../server/events/event.js';
import type { EventStore } from '../../server/events/store.js';
import { contractStores, type ContractOptions } from '../support/contract.js';

const t0 = 1_700_000_000_000;
const hostA = '52:54:00:12:34:56';
const hostB = '52:54:00:ab:cd:ef';

export function eventStoreContract<S extends EventStore>(name: string, make: () => S | Promise<S>, options: ContractOptions<S> = {}): void {
  describe(`EventStore contract: ${name}`, () => {
    const { create, settle, runs } = contractStores(make, options);

    test('append returns the event with an increasing id; listByHost gives a host its own, oldest first', async () => {
      const store = await create();
      const first = store.append({ time: t0, mac: hostA, source: 'runtime', stage: 'booted' });
      const second = store.append({ time: t0 + 5, mac: hostB, source: 'runtime', stage: 'booted' });
      const third = store.append({
        time: t0 + 9,
        mac: hostA,
        source: 'guest',
        stage: 'guest-ready',
        domain: 'demo1',
        detail: 'ip=198.18.0.120/24 mac=02:11:22:33:44:55',
      });
      assert.ok(first.id < second.id && second.id < third.id);
      assert.deepEqual(first, { id: first.id, time: t0, mac: hostA, source: 'runtime', stage: 'booted' });
      assert.deepEqual(store.listByHost(hostA), [first, third]);
      assert.deepEqual(store.listByHost(hostB), [second]);
      assert.deepEqual(store.listByHost('52:54:00:00:00:00'), []);
    });

    test('appendAll keeps a burst in order, with increasing ids, interleaved with single appends', async () => {
      const store = await create();
      const before = store.append({ time: t0, mac: hostA, source: 'dhcp', stage: 'dhcp-offer' });
      const burst = store.appendAll([
        { time: t0 + 1, mac: hostA, source: 'dhcp', stage: 'dhcp-ack', detail: '198.18.0.100' },
        { time: t0 + 2, mac: hostB, source: 'tftp', stage: 'tftp', detail: 'undionly.kpxe' },
        { time: t0 + 3, mac: hostA, source: 'http', stage: 'boot.ipxe' },
      ]);
      const after = store.append({ time: t0 + 4, mac: hostA, source: 'runtime', stage: 'booted' });
      assert.equal(burst.length, 3);
      assert.ok(before.id < burst[0]!.id && burst[0]!.id < burst[1]!.id && burst[1]!.id < burst[2]!.id && burst[2]!.id < after.id);
      assert.deepEqual(
        store.listByHost(hostA).map((event) => event.stage),
        ['dhcp-offer', 'dhcp-ack', 'boot.ipxe', 'booted'],
      );
      assert.deepEqual(store.listByHost(hostB), [burst[1]]);
      assert.deepEqual(store.appendAll([]), []);
    });

    test('appendAll of a long burst (more rows than one statement writes) keeps every field, in order', async () => {
      const store = await create();
      const events = Array.from({ length: 37 }, (_, i) => ({
        time: t0 + i,
        mac: i % 3 === 0 ? hostB : hostA,
        source: 'guest' as const,
        stage: `stage-${i}`,
        ...(i % 2 === 0 ? { detail: `detail ${i}` } : {}),
        ...(i % 5 === 0 ? { domain: `web${i}` } : {}),
      }));
      const stored = store.appendAll(events);
      assert.deepEqual(
        stored.map(({ id: _, ...event }) => event),
        events,
      );
      assert.ok(stored.every((event, i) => i === 0 || event.id > stored[i - 1]!.id));
      assert.deepEqual(
        [...store.listByHost(hostA), ...store.listByHost(hostB)].sort((x, y) => x.id - y.id),
        stored,
      );
      const next = store.append({ time: t0 + 100, mac: hostA, source: 'runtime', stage: 'ready' });
      assert.ok(next.id > stored[36]!.id);
    });

    test('listByHost with a limit keeps the newest, still oldest first', async () => {
      const store = await create();
      const stages = ['booted', 'configured', 'domain-started', 'ready'];
      const appended = stages.map((stage, index) => store.append({ time: t0 + index, mac: hostA, source: 'runtime', stage }));
      assert.deepEqual(store.listByHost(hostA, { limit: 2 }), appended.slice(2));
      assert.deepEqual(store.listByHost(hostA, { limit: 10 }), appended);
      assert.deepEqual(store.listByHost(hostA, { limit: 0 }), []);
    });

    test('latestByHost: the last event of each host, by MAC', async () => {
      const store = await create();
      assert.deepEqual(store.latestByHost(), []);
      store.append({ time: t0, mac: hostB, source: 'runtime', stage: 'booted' });
      const a = store.append({ time: t0 + 1, mac: hostA, source: 'runtime', stage: 'ready' });
      const b = store.append({ time: t0 + 2, mac: hostB, source: 'runtime', stage: 'failed', detail: 'no network' });
      assert.deepEqual(store.latestByHost(), [a, b]);
    });

    test('host reports: the newest of each kind per host replaces the one before; other hosts keep theirs', async () => {
      const store = await create();
      {
        assert.equal(store.hostReport(hostA, 'storage'), undefined);
        store.putHostReport({ mac: hostA, kind: 'storage', time: t0, body: '{"disks":[]}' });
        store.putHostReport({ mac: hostB, kind: 'storage', time: t0 + 1, body: '{"disks":[1]}' });
        store.putHostReport({ mac: hostA, kind: 'storage', time: t0 + 2, body: '{"disks":[2]}' });
        assert.deepEqual(store.hostReport(hostA, 'storage'), { mac: hostA, kind: 'storage', time: t0 + 2, body: '{"disks":[2]}' });
        assert.deepEqual(store.hostReport(hostB, 'storage'), { mac: hostB, kind: 'storage', time: t0 + 1, body: '{"disks":[1]}' });
        const copy = store.hostReport(hostA, 'storage')!;
        copy.body = 'changed';
        assert.equal(store.hostReport(hostA, 'storage')!.body, '{"disks":[2]}');
        assert.deepEqual(store.listByHost(hostA), [], 'a report is not an event');
      }
    });

    test('events read out are copies', async () => {
      const store = await create();
      const event = store.append({ time: t0, mac: hostA, source: 'runtime', stage: 'booted' });
      event.stage = 'changed';
      store.listByHost(hostA)[0]!.stage = 'changed';
      store.latestByHost()[0]!.stage = 'changed';
      assert.equal(store.listByHost(hostA)[0]!.stage, 'booted');
    });

    test('prune: older than a time, or past the newest N of a host, goes; each host keeps its newest event', async () => {
      const store = await create();
      const a = [0, 1, 2, 3, 4].map((index) => store.append({ time: t0 + index * 1000, mac: hostA, source: 'runtime', stage: `a${index}` }));
      const b = store.append({ time: t0, mac: hostB, source: 'runtime', stage: 'b0' });
      assert.equal(store.prune({ before: t0 + 2500 }), 3, 'a0, a1, a2 are older; b0 is older but its host has nothing newer');
      assert.deepEqual(store.listByHost(hostA), a.slice(3));
      assert.deepEqual(store.listByHost(hostB), [b]);
      assert.equal(store.prune({ keepPerHost: 1 }), 1);
      assert.deepEqual(store.listByHost(hostA), [a[4]]);
      assert.equal(store.prune({ before: t0 + 100_000, keepPerHost: 1 }), 0, 'newest events stay');
      assert.deepEqual(store.latestByHost(), [a[4], b]);
      const next = store.append({ time: t0 + 9000, mac: hostB, source: 'runtime', stage: 'b1' });
      assert.ok(next.id > a[4]!.id, 'ids keep increasing after a prune');
    });

    test('random appends and a prune: what stays is exactly what the retention rule keeps (property)', async () => {
      const macs = [hostA, hostB, '02:00:00:00:00:01'];
      const step = fc.record({ mac: fc.constantFrom(...macs), gap: fc.integer({ min: 0, max: 5000 }) });
      await fc.assert(
        fc.asyncProperty(
          fc.array(step, { maxLength: 40 }),
          fc.option(fc.integer({ min: 0, max: 100_000 })),
          fc.option(fc.integer({ min: 1, max: 6 })),
          async (steps, cutoff, cap) => {
            const store = await create();
            try {
              let time = t0;
              const appended = steps.map((entry, index) => store.append({ time: (time += entry.gap), mac: entry.mac, source: 'dhcp', stage: `s${index}` }));
              const retention = { ...(cutoff !== null ? { before: t0 + cutoff } : {}), ...(cap !== null ? { keepPerHost: cap } : {}) };
              const expected = macs.map((mac) => {
                const own = appended.filter((event) => event.mac === mac);
                return own.filter((event, index) => {
                  const newer = own.length - 1 - index;
                  if (newer === 0) return true;
                  if (retention.before !== undefined && event.time < retention.before) return false;
                  return retention.keepPerHost === undefined || newer < retention.keepPerHost;
                });
              });
              const removed = store.prune(retention);
              assert.equal(removed, appended.length - expected.flat().length);
              macs.forEach((mac, index) => assert.deepEqual(store.listByHost(mac), expected[index]));
            } finally {
              await settle(store);
            }
          },
        ),
        { numRuns: runs(100) },
      );
    });

    test('random appends: each host reads back exactly its own events, in order (property)', async () => {
      const macs = [hostA, hostB, '02:00:00:00:00:01'];
      const newEvent = fc.record(
        {
          mac: fc.constantFrom(...macs),
          source: fc.constantFrom(...eventSources),
          stage: fc.constantFrom('booted', 'ready', 'guest-ready', 'dhcp-ack'),
          detail: fc.string({ maxLength: 30 }),
          domain: fc.constantFrom('demo1', 'web.2'),
        },
        { requiredKeys: ['mac', 'source', 'stage'] },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(newEvent, { maxLength: 40 }), async (events) => {
          const store = await create();
          try {
            const appended = events.map((event, index) => store.append({ ...event, time: t0 + index } as NewBootEvent));
            for (const mac of macs)
              assert.deepEqual(
                store.listByHost(mac),
                appended.filter((event) => event.mac === mac),
              );
            const latest = macs.map((mac) => appended.filter((event) => event.mac === mac).at(-1)).filter((event) => event !== undefined);
            assert.deepEqual(
              store.latestByHost(),
              latest.sort((x, y) => (x.mac < y.mac ? -1 : 1)),
            );
          } finally {
            await settle(store);
          }
        }),
        { numRuns: runs(100) },
      );
    });
  });
}
