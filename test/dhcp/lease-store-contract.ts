/**
 * The contract every LeaseStore keeps. Run it against each implementation
 * (MemoryLeaseStore, SqliteLeaseStore, PostgresLeaseStore):
 * leaseStoreContract('name', () => new Store(), { verify, close }).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { holdsAddress, LeaseConflictError, NotDurableError, type Lease, type LeaseStore } from '../../server/dhcp/leases/leases.js';
import { contractStores, type ContractOptions } from '../support/contract.js';

const t0 = 1_700_000_000_000;

function lease(mac: string, address: string, state: Lease['state'], expiresAt: number, hostname?: string): Lease {
  return hostname === undefined ? { mac, address, state, expiresAt } : { mac, address, state, expiresAt, hostname };
}

/** At most one record per address, one client record per MAC, and byMac/byAddress agree with all(). */
export function assertConsistent(store: LeaseStore): void {
  const records = store.all();
  const addresses = records.map((r) => r.address);
  assert.equal(new Set(addresses).size, addresses.length, 'one record per address');
  const clients = records.filter((r) => r.state !== 'declined');
  const macs = clients.map((r) => r.mac);
  assert.equal(new Set(macs).size, macs.length, 'one client record per MAC');
  for (const record of records) assert.deepEqual(store.byAddress(record.address), record);
  for (const record of clients) assert.deepEqual(store.byMac(record.mac), record);
}

export function leaseStoreContract<S extends LeaseStore>(name: string, make: () => S | Promise<S>, options: ContractOptions<S> = {}): void {
  describe(`LeaseStore contract: ${name}`, () => {
    const { create, settle, runs } = contractStores(make, options);

    test('upsert, then read by MAC and by address', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 60_000, 'node-1'), t0);
      const expected = lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 60_000, 'node-1');
      assert.deepEqual(store.byMac('02:00:00:00:00:01'), expected);
      assert.deepEqual(store.byAddress('198.18.0.100'), expected);
      assert.deepEqual(store.all(), [expected]);
      assert.equal(store.byMac('02:00:00:00:00:02'), undefined);
      assert.equal(store.byAddress('198.18.0.101'), undefined);
    });

    test('records read out are copies', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 1), t0);
      store.byMac('02:00:00:00:00:01')!.address = '198.18.0.200';
      store.all()[0]!.state = 'released';
      assert.deepEqual(store.byAddress('198.18.0.100'), lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 1));
    });

    test('a client moving to another address leaves its old one', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 1000), t0);
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.101', 'offered', t0 + 1000), t0);
      assert.equal(store.byAddress('198.18.0.100'), undefined);
      assert.equal(store.byMac('02:00:00:00:00:01')?.address, '198.18.0.101');
      assertConsistent(store);
    });

    test('an address held by another client cannot be taken; a stale one can', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 1000), t0);
      assert.throws(() => store.upsert(lease('02:00:00:00:00:02', '198.18.0.100', 'offered', t0 + 2000), t0 + 999), LeaseConflictError);
      assert.equal(store.byAddress('198.18.0.100')?.mac, '02:00:00:00:00:01');
      // At its expiry time the lease no longer holds the address.
      store.upsert(lease('02:00:00:00:00:02', '198.18.0.100', 'offered', t0 + 2000), t0 + 1000);
      assert.equal(store.byAddress('198.18.0.100')?.mac, '02:00:00:00:00:02');
      assert.equal(store.byMac('02:00:00:00:00:01'), undefined, 'the stale client record is gone');
      assertConsistent(store);
    });

    test('release keeps the record, no longer holding the address', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 1000), t0);
      const released = store.release('02:00:00:00:00:01', t0 + 10);
      assert.deepEqual(released, lease('02:00:00:00:00:01', '198.18.0.100', 'released', t0 + 10));
      assert.equal(holdsAddress(released, t0 + 10), false);
      assert.equal(store.release('02:00:00:00:00:09', t0), undefined);
      store.upsert(lease('02:00:00:00:00:02', '198.18.0.100', 'offered', t0 + 100), t0 + 20);
      assertConsistent(store);
    });

    test('a declined address is quarantined from everyone, its decliner included', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 1000), t0);
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'declined', t0 + 600_000), t0);
      assert.equal(store.byMac('02:00:00:00:00:01'), undefined, 'the client has no lease any more');
      assert.equal(store.byAddress('198.18.0.100')?.state, 'declined');
      assert.throws(() => store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 60_000), t0 + 1), LeaseConflictError);
      assert.throws(() => store.upsert(lease('02:00:00:00:00:02', '198.18.0.100', 'offered', t0 + 60_000), t0 + 1), LeaseConflictError);
      // The decliner can get another address meanwhile.
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.101', 'offered', t0 + 60_000), t0 + 1);
      assert.equal(store.byAddress('198.18.0.100')?.state, 'declined');
      assertConsistent(store);
    });

    test('expire drops ended offers and quarantines and marks ended leases expired', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 10), t0);
      store.upsert(lease('02:00:00:00:00:02', '198.18.0.101', 'bound', t0 + 10), t0);
      store.upsert(lease('02:00:00:00:00:03', '198.18.0.102', 'declined', t0 + 10), t0);
      store.upsert(lease('02:00:00:00:00:04', '198.18.0.103', 'bound', t0 + 1000), t0);
      assert.deepEqual(store.expire(t0 + 9), []);
      const ended = store.expire(t0 + 10);
      assert.deepEqual(ended.map((l) => l.address).sort(), ['198.18.0.100', '198.18.0.101', '198.18.0.102']);
      assert.equal(store.byAddress('198.18.0.100'), undefined);
      assert.equal(store.byAddress('198.18.0.101')?.state, 'expired');
      assert.equal(store.byAddress('198.18.0.102'), undefined);
      assert.equal(store.byAddress('198.18.0.103')?.state, 'bound');
      assert.deepEqual(store.expire(t0 + 10), [], 'expiring twice changes nothing');
      assertConsistent(store);
    });

    test('remove drops a record and its client index', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 10), t0);
      store.remove('198.18.0.100');
      store.remove('198.18.0.200');
      assert.equal(store.byMac('02:00:00:00:00:01'), undefined);
      assert.deepEqual(store.all(), []);
    });

    test('random operations never leave an address held by two clients', async () => {
      const macs = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04'];
      const addresses = ['198.18.0.100', '198.18.0.101', '198.18.0.102'];
      const operation = fc.oneof(
        fc.record({
          kind: fc.constant('upsert' as const),
          mac: fc.constantFrom(...macs),
          address: fc.constantFrom(...addresses),
          state: fc.constantFrom<Lease['state']>('offered', 'bound', 'declined', 'released', 'expired'),
          ttl: fc.integer({ min: 0, max: 100 }),
        }),
        fc.record({ kind: fc.constant('release' as const), mac: fc.constantFrom(...macs) }),
        fc.record({ kind: fc.constant('remove' as const), address: fc.constantFrom(...addresses) }),
        fc.record({ kind: fc.constant('expire' as const) }),
        fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 1, max: 60 }) }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(operation, { maxLength: 60 }), async (operations) => {
          const store = await create();
          let now = t0;
          for (const op of operations) {
            if (op.kind === 'upsert') {
              const before = store.byAddress(op.address);
              try {
                store.upsert(lease(op.mac, op.address, op.state, now + op.ttl), now);
              } catch (error) {
                assert.ok(error instanceof LeaseConflictError);
                assert.ok(before !== undefined && holdsAddress(before, now), 'refused only for a held address');
              }
            } else if (op.kind === 'release') store.release(op.mac, now);
            else if (op.kind === 'remove') store.remove(op.address);
            else if (op.kind === 'expire') store.expire(now);
            else now += op.ms;
            assertConsistent(store);
          }
          await settle(store);
        }),
        { numRuns: runs(500) },
      );
    });

    // --- transactions: the server's group commit -------------------------

    test('a transaction sees its own writes and keeps them', async () => {
      const store = await create();
      const seen = store.transaction(
        () => {
          store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 60_000), t0);
          store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0);
          store.upsert(lease('02:00:00:00:00:02', '198.18.0.101', 'offered', t0 + 60_000), t0);
          return store.byMac('02:00:00:00:00:01');
        },
        { durable: true },
      );
      assert.deepEqual(seen, lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000));
      assert.deepEqual(store.all(), [
        lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000),
        lease('02:00:00:00:00:02', '198.18.0.101', 'offered', t0 + 60_000),
      ]);
    });

    test('inside one transaction, an address given to one client cannot be given to another', async () => {
      const store = await create();
      store.transaction(
        () => {
          store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0);
          assert.throws(() => store.upsert(lease('02:00:00:00:00:02', '198.18.0.100', 'offered', t0 + 60_000), t0), LeaseConflictError);
        },
        { durable: true },
      );
      assert.equal(store.byAddress('198.18.0.100')?.mac, '02:00:00:00:00:01');
      assertConsistent(store);
    });

    test('a transaction that throws leaves nothing behind and rethrows', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0);
      store.upsert(lease('02:00:00:00:00:03', '198.18.0.102', 'declined', t0 + 600_000), t0);
      const before = store.all();
      const failure = new Error('the batch failed');
      assert.throws(
        () =>
          store.transaction(
            () => {
              store.upsert(lease('02:00:00:00:00:01', '198.18.0.101', 'bound', t0 + 3_600_000), t0);
              store.upsert(lease('02:00:00:00:00:02', '198.18.0.103', 'offered', t0 + 60_000), t0);
              store.release('02:00:00:00:00:01', t0);
              store.remove('198.18.0.102');
              store.expire(t0 + 10_000_000);
              throw failure;
            },
            { durable: true },
          ),
        (error: unknown) => error === failure,
      );
      assert.deepEqual(store.all(), before);
      assertConsistent(store);
    });

    test('a nested transaction that throws undoes only its own changes', async () => {
      const store = await create();
      store.upsert(lease('02:00:00:00:00:09', '198.18.0.109', 'offered', t0 + 60_000), t0);
      store.transaction(
        () => {
          store.transaction(() => store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0), { durable: true });
          assert.throws(
            () =>
              store.transaction(() => {
                // As decide() asks for a reclaimed offer: drop the old one, then take the address.
                store.remove('198.18.0.109');
                store.upsert(lease('02:00:00:00:00:02', '198.18.0.109', 'offered', t0 + 60_000), t0);
                store.upsert(lease('02:00:00:00:00:02', '198.18.0.100', 'offered', t0 + 60_000), t0); // held: throws
              }),
            LeaseConflictError,
          );
          store.transaction(() => store.upsert(lease('02:00:00:00:00:03', '198.18.0.101', 'offered', t0 + 60_000), t0));
        },
        { durable: true },
      );
      assert.deepEqual(store.all(), [
        lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000),
        lease('02:00:00:00:00:03', '198.18.0.101', 'offered', t0 + 60_000),
        lease('02:00:00:00:00:09', '198.18.0.109', 'offered', t0 + 60_000),
      ]);
      assertConsistent(store);
    });

    test('a bound lease is only written in a durable transaction', async () => {
      const store = await create();
      store.transaction(() => {
        store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 60_000), t0);
        assert.throws(() => store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0), NotDurableError);
        assert.throws(() => store.transaction(() => undefined, { durable: true }), NotDurableError);
      });
      assert.deepEqual(store.all(), [lease('02:00:00:00:00:01', '198.18.0.100', 'offered', t0 + 60_000)]);
      // Outside a transaction a bound upsert is its own durable one.
      store.upsert(lease('02:00:00:00:00:01', '198.18.0.100', 'bound', t0 + 3_600_000), t0);
      assert.equal(store.byAddress('198.18.0.100')?.state, 'bound');
    });

    test('transactionSyncedLater: committed and seen at once, synced later, in order; a throw keeps nothing', async () => {
      const store = await create();
      const order: number[] = [];
      const pending = [1, 2, 3].map((i) => {
        const { result, synced } = store.transactionSyncedLater(() => {
          store.transaction(() => store.upsert(lease(`02:00:00:00:00:0${i}`, `198.18.0.10${i}`, 'bound', t0 + 3_600_000), t0));
          return store.all().length;
        });
        assert.equal(result, i, 'each sees the ones before');
        return synced.then(() => order.push(i));
      });
      assert.equal(store.byAddress('198.18.0.103')?.state, 'bound');
      await Promise.all(pending);
      assert.deepEqual(order, [1, 2, 3]);
      assert.throws(
        () =>
          store.transactionSyncedLater(() => {
            store.upsert(lease('02:00:00:00:00:04', '198.18.0.104', 'bound', t0 + 3_600_000), t0);
            store.upsert(lease('02:00:00:00:00:05', '198.18.0.101', 'offered', t0 + 60_000), t0); // held: throws
          }),
        LeaseConflictError,
      );
      assert.equal(store.byAddress('198.18.0.104'), undefined);
      assert.equal(store.all().length, 3);
      assertConsistent(store);
    });

    test('random batches: a nested unit that fails counts as never run, a failed batch as never begun', async () => {
      const macs = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'];
      const addresses = ['198.18.0.100', '198.18.0.101', '198.18.0.102'];
      const change = fc.oneof(
        fc.record({
          kind: fc.constant('upsert' as const),
          mac: fc.constantFrom(...macs),
          address: fc.constantFrom(...addresses),
          state: fc.constantFrom<Lease['state']>('offered', 'bound', 'declined', 'released'),
          ttl: fc.integer({ min: 0, max: 100 }),
        }),
        fc.record({ kind: fc.constant('release' as const), mac: fc.constantFrom(...macs) }),
        fc.record({ kind: fc.constant('remove' as const), address: fc.constantFrom(...addresses) }),
        fc.record({ kind: fc.constant('expire' as const) }),
      );
      type Change = typeof change extends fc.Arbitrary<infer C> ? C : never;
      const unit = fc.record({ changes: fc.array(change, { maxLength: 4 }), fails: fc.boolean() });
      const batch = fc.record({ units: fc.array(unit, { maxLength: 6 }), fails: fc.boolean(), ms: fc.integer({ min: 0, max: 40 }) });
      const apply = (store: LeaseStore, item: Change, now: number): void => {
        if (item.kind === 'upsert') store.upsert(lease(item.mac, item.address, item.state, now + item.ttl), now);
        else if (item.kind === 'release') store.release(item.mac, now);
        else if (item.kind === 'remove') store.remove(item.address);
        else store.expire(now);
      };
      await fc.assert(
        fc.asyncProperty(fc.array(batch, { maxLength: 8 }), async (batches) => {
          const batched = await create();
          const replayed = await create();
          let now = t0;
          for (const { units, fails, ms } of batches) {
            now += ms;
            const kept: Change[][] = [];
            try {
              batched.transaction(
                () => {
                  for (const { changes, fails: unitFails } of units) {
                    try {
                      batched.transaction(() => {
                        for (const item of changes) apply(batched, item, now);
                        if (unitFails) throw new Error('unit fails');
                      });
                      kept.push(changes);
                    } catch (error) {
                      if (!(error instanceof LeaseConflictError) && !(error instanceof Error && error.message === 'unit fails')) throw error;
                    }
                  }
                  if (fails) throw new Error('batch fails');
                },
                { durable: true },
              );
            } catch (error) {
              assert.ok(fails && error instanceof Error && error.message === 'batch fails', String(error));
              kept.length = 0;
            }
            // The same units, each on its own, without the failed ones: the same records.
            for (const changes of kept) replayed.transaction(() => changes.forEach((item) => apply(replayed, item, now)), { durable: true });
            assert.deepEqual(batched.all(), replayed.all());
            assertConsistent(batched);
          }
          await settle(batched);
          await settle(replayed);
        }),
        { numRuns: runs(100) },
      );
    });
  });
}
