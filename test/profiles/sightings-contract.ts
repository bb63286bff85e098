/**
 * The contract every SlotSightings keeps. Run it against each implementation:
 * slotSightingsContract('name', () => new Store(), { verify }).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { SlotSightings } from '../../server/profiles/sightings.js';
import type { RelaySlot } from '../../server/profiles/slot.js';
import { contractStores, type ContractOptions } from '../support/contract.js';

const slot1 = { circuitId: '7231' };
const slot2 = { circuitId: '7232' };

export function slotSightingsContract<S extends SlotSightings>(name: string, make: () => S | Promise<S>, options: ContractOptions<S> = {}): void {
  describe(`SlotSightings contract: ${name}`, () => {
    const { create, settle, runs } = contractStores(make, options);

    test('one MAC per slot: a new machine in a slot takes it from the old one', async () => {
      const sightings = await create();
      assert.equal(sightings.record('m1', slot1), undefined);
      assert.equal(sightings.record('m1', slot1), undefined, 'seen again');
      assert.deepEqual(sightings.slotOf('m1'), slot1);
      assert.equal(sightings.record('m2', slot1), 'm1', 'the MAC it replaced');
      assert.equal(sightings.slotOf('m1'), undefined);
      assert.deepEqual(sightings.slotOf('m2'), slot1);
      assert.equal(sightings.macAt(slot1), 'm2');
    });

    test('a machine that moves leaves its old slot empty', async () => {
      const sightings = await create();
      sightings.record('m1', slot1);
      assert.equal(sightings.record('m1', slot2), undefined);
      assert.equal(sightings.macAt(slot1), undefined);
      assert.equal(sightings.macAt(slot2), 'm1');
      assert.deepEqual(sightings.slotOf('m1'), slot2);
    });

    test('the same circuit-id on two relays is two slots, and neither is the slot without a remote-id', async () => {
      const sightings = await create();
      sightings.record('m1', { circuitId: '7231', remoteId: '01' });
      sightings.record('m2', { circuitId: '7231', remoteId: '02' });
      sightings.record('m3', { circuitId: '7231' });
      assert.equal(sightings.macAt({ circuitId: '7231', remoteId: '01' }), 'm1');
      assert.equal(sightings.macAt({ circuitId: '7231', remoteId: '02' }), 'm2');
      assert.equal(sightings.macAt({ circuitId: '7231' }), 'm3');
      assert.deepEqual(sightings.slotOf('m3'), { circuitId: '7231' }, 'no remote-id comes back as none');
      assert.deepEqual(
        sightings.entries().sort((a, b) => a.mac.localeCompare(b.mac)),
        [
          { mac: 'm1', slot: { circuitId: '7231', remoteId: '01' } },
          { mac: 'm2', slot: { circuitId: '7231', remoteId: '02' } },
          { mac: 'm3', slot: { circuitId: '7231' } },
        ],
      );
    });

    test('slots read out are copies', async () => {
      const sightings = await create();
      sightings.record('m1', { circuitId: '7231', remoteId: '01' });
      const read = sightings.slotOf('m1')!;
      read.circuitId = 'ffff';
      assert.deepEqual(sightings.slotOf('m1'), { circuitId: '7231', remoteId: '01' });
    });

    test('any run of sightings agrees with a plain model: each slot holds the last MAC seen there, each MAC the last slot it was seen in', async () => {
      const slots: RelaySlot[] = [{ circuitId: '01' }, { circuitId: '02' }, { circuitId: '01', remoteId: 'aa' }, { circuitId: '02', remoteId: 'bb' }];
      const key = (slot: RelaySlot) => `${slot.circuitId}/${slot.remoteId ?? ''}`;
      await fc.assert(
        fc.asyncProperty(fc.array(fc.record({ mac: fc.constantFrom('m1', 'm2', 'm3'), slot: fc.nat(slots.length - 1) }), { maxLength: 30 }), async (steps) => {
          const sightings = await create();
          const model = new Map<string, string>(); // slot key -> MAC
          try {
            for (const { mac, slot } of steps) {
              const previous = model.get(key(slots[slot]!));
              for (const [k, m] of model) if (m === mac) model.delete(k);
              model.set(key(slots[slot]!), mac);
              assert.equal(sightings.record(mac, slots[slot]!), previous !== mac ? previous : undefined);
              for (const s of slots) assert.equal(sightings.macAt(s), model.get(key(s)));
              for (const m of ['m1', 'm2', 'm3']) {
                const held = slots.find((s) => model.get(key(s)) === m);
                assert.deepEqual(sightings.slotOf(m), held);
              }
            }
          } finally {
            await settle(sightings);
          }
        }),
        { numRuns: runs(100) },
      );
    });
  });
}
