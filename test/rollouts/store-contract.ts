import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startRollout, type Rollout } from '../../server/rollouts/rollout.js';
import type { RolloutStore } from '../../server/rollouts/store.js';

/**
 * What every RolloutStore does, run against memory, SQLite and PostgreSQL.
 * `open` gives a fresh, empty store; `reopen` (for the stores that keep
 * their records) a second store on the same records.
 */
export function rolloutStoreContract(name: string, open: () => Promise<RolloutStore>, reopen?: (store: RolloutStore) => Promise<RolloutStore>): void {
  const rollout = (channel: string, build = 'new'): Rollout => {
    const result = startRollout({
      channel,
      build,
      previous: 'old',
      members: ['52:54:00:00:00:01', '52:54:00:00:00:02'],
      first: { count: 1 },
      deadlineMs: 60_000,
      now: 1000,
    });
    assert.ok(result.ok);
    return result.rollout;
  };

  test(`${name}: a channel's rollout is made, read, changed and left alone`, async () => {
    const store = await open();
    try {
      assert.deepEqual(await store.list(), []);
      const made = await store.update('stable', (current) => (current === undefined ? rollout('stable') : current));
      assert.deepEqual(made, rollout('stable'));
      await store.update('testing', () => rollout('testing', 'newer'));
      assert.deepEqual(
        (await store.list()).map((r) => [r.channel, r.build]),
        [
          ['stable', 'new'],
          ['testing', 'newer'],
        ],
      );
      const paused = await store.update('stable', (current) => ({ ...current!, state: 'paused', updatedAt: 2000 }));
      assert.equal(paused?.state, 'paused');
      // Returning what it was given (or nothing) leaves the record as it is.
      assert.deepEqual(await store.update('stable', (current) => current), paused);
      assert.deepEqual(await store.update('stable', () => undefined), paused);
      assert.equal(await store.update('nightly', () => undefined), undefined);
      // A change to what `change` was handed does not reach the store unless returned.
      await store.update('stable', (current) => {
        current!.state = 'aborted';
        return undefined;
      });
      assert.equal((await store.list())[0]!.state, 'paused');
    } finally {
      await store.close();
    }
  });

  test(`${name}: a record that is not a rollout of its channel is refused, and nothing is stored`, async () => {
    const store = await open();
    try {
      await assert.rejects(
        store.update('stable', () => rollout('testing')),
        /the rollout of channel stable: it names channel "testing"/,
      );
      await assert.rejects(
        store.update('stable', () => ({ ...rollout('stable'), state: 'sideways' as never })),
        /state "sideways" is not one of running/,
      );
      assert.deepEqual(await store.list(), []);
    } finally {
      await store.close();
    }
  });

  test(`${name}: concurrent changes all land (each reads what the one before wrote)`, async () => {
    const store = await open();
    try {
      await store.update('stable', () => rollout('stable'));
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          store.update('stable', (current) => ({
            ...current!,
            moved: [...current!.moved, { mac: `02:00:00:00:00:${String(i).padStart(2, '0')}`, movedAt: i }],
          })),
        ),
      );
      assert.equal((await store.list())[0]!.moved.length, 13);
    } finally {
      await store.close();
    }
  });

  if (reopen !== undefined) {
    test(`${name}: rollouts outlive the store`, async () => {
      const store = await open();
      await store.update('stable', () => ({ ...rollout('stable'), state: 'failed', reason: '52:54:00:00:00:01: reported a failure: x' }));
      const again = await reopen(store);
      try {
        assert.deepEqual(await again.list(), [{ ...rollout('stable'), state: 'failed', reason: '52:54:00:00:00:01: reported a failure: x' }]);
      } finally {
        await again.close();
      }
    });
  }
}
