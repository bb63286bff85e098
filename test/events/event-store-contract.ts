/**
 * The contract every EventStore keeps. Run it against each implementation:
 * eventStoreContract('name', () => new Store()).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { eventSources, type NewBootEvent } from '../../server/events/event.js';
import type { EventStore } from '../../server/events/store.js';

const t0 = 1_700_000_000_000;
const hostA = '52:54:00:12:34:56';
const hostB = '52:54:00:ab:cd:ef';

export function eventStoreContract(name: string, create: () => EventStore): void {
  describe(`EventStore contract: ${name}`, () => {
    test('append returns the event with an increasing id; listByHost gives a host its own, oldest first', () => {
      const store = create();
      const first = store.append({ time: t0, mac: hostA, source: 'runtime', stage: 'booted' });
      const second = store.append({ time: t0 + 5, mac: hostB, source: 'runtime', stage: 'booted' });
      const third = store.append({ time: t0 + 9, mac: hostA, source: 'guest', stage: 'guest-ready', domain: 'demo1', detail: 'ip=198.18.0.120/24 mac=02:11:22:33:44:55' });
      assert.ok(first.id < second.id && second.id < third.id);
      assert.deepEqual(first, { id: first.id, time: t0, mac: hostA, source: 'runtime', stage: 'booted' });
      assert.deepEqual(store.listByHost(hostA), [first, third]);
      assert.deepEqual(store.listByHost(hostB), [second]);
      assert.deepEqual(store.listByHost('52:54:00:00:00:00'), []);
      store.close();
    });

    test('appendAll keeps a burst in order, with increasing ids, interleaved with single appends', () => {
      const store = create();
      const before = store.append({ time: t0, mac: hostA, source: 'dhcp', stage: 'dhcp-offer' });
      const burst = store.appendAll([
        { time: t0 + 1, mac: hostA, source: 'dhcp', stage: 'dhcp-ack', detail: '198.18.0.100' },
        { time: t0 + 2, mac: hostB, source: 'tftp', stage: 'tftp', detail: 'undionly.kpxe' },
        { time: t0 + 3, mac: hostA, source: 'http', stage: 'boot.ipxe' },
      ]);
      const after = store.append({ time: t0 + 4, mac: hostA, source: 'runtime', stage: 'booted' });
      assert.equal(burst.length, 3);
      assert.ok(before.id < burst[0]!.id && burst[0]!.id < burst[1]!.id && burst[1]!.id < burst[2]!.id && burst[2]!.id < after.id);
      assert.deepEqual(store.listByHost(hostA).map((event) => event.stage), ['dhcp-offer', 'dhcp-ack', 'boot.ipxe', 'booted']);
      assert.deepEqual(store.listByHost(hostB), [burst[1]]);
      assert.deepEqual(store.appendAll([]), []);
      store.close();
    });

    test('listByHost with a limit keeps the newest, still oldest first', () => {
      const store = create();
      const stages = ['booted', 'configured', 'domain-started', 'ready'];
      const appended = stages.map((stage, index) => store.append({ time: t0 + index, mac: hostA, source: 'runtime', stage }));
      assert.deepEqual(store.listByHost(hostA, { limit: 2 }), appended.slice(2));
      assert.deepEqual(store.listByHost(hostA, { limit: 10 }), appended);
      assert.deepEqual(store.listByHost(hostA, { limit: 0 }), []);
      store.close();
    });

    test('latestByHost: the last event of each host, by MAC', () => {
      const store = create();
      assert.deepEqual(store.latestByHost(), []);
      store.append({ time: t0, mac: hostB, source: 'runtime', stage: 'booted' });
      const a = store.append({ time: t0 + 1, mac: hostA, source: 'runtime', stage: 'ready' });
      const b = store.append({ time: t0 + 2, mac: hostB, source: 'runtime', stage: 'failed', detail: 'no network' });
      assert.deepEqual(store.latestByHost(), [a, b]);
      store.close();
    });

    test('events read out are copies', () => {
      const store = create();
      const event = store.append({ time: t0, mac: hostA, source: 'runtime', stage: 'booted' });
      event.stage = 'changed';
      store.listByHost(hostA)[0]!.stage = 'changed';
      store.latestByHost()[0]!.stage = 'changed';
      assert.equal(store.listByHost(hostA)[0]!.stage, 'booted');
      store.close();
    });

    test('random appends: each host reads back exactly its own events, in order (property)', () => {
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
      fc.assert(
        fc.property(fc.array(newEvent, { maxLength: 40 }), (events) => {
          const store = create();
          try {
            const appended = events.map((event, index) => store.append({ ...event, time: t0 + index } as NewBootEvent));
            for (const mac of macs) assert.deepEqual(store.listByHost(mac), appended.filter((event) => event.mac === mac));
            const latest = macs.map((mac) => appended.filter((event) => event.mac === mac).at(-1)).filter((event) => event !== undefined);
            assert.deepEqual(store.latestByHost(), latest.sort((x, y) => (x.mac < y.mac ? -1 : 1)));
          } finally {
            store.close();
          }
        }),
        { numRuns: 100 },
      );
    });
  });
}
