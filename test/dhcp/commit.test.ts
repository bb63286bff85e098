/**
 * The group commit policy (server/dhcp/leases/commit.ts) without sockets:
 * a memory store that can be told to fail its commit or its fsync, a flush
 * run by hand, and decisions made up for the purpose.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientFacts } from '../../server/dhcp/decide/client-facts.js';
import type { DhcpDecision } from '../../server/dhcp/decide/types.js';
import { GroupCommit, type CommitFailure } from '../../server/dhcp/leases/commit.js';
import { LeaseConflictError, MemoryLeaseStore, PartialCommitError, type Lease } from '../../server/dhcp/leases/leases.js';
import { clientRequest } from '../support/dhcp.js';

const now = 1_700_000_000_000;

/** A memory store whose commit can fail (nothing kept) or whose fsync can fail or be held back. */
class ScriptedStore extends MemoryLeaseStore {
  /** 'plain' or 'durable' per outermost transaction. */
  readonly commits: string[] = [];
  failCommit: Error | undefined;
  synced: Promise<void> = Promise.resolve();
  private depth = 0;

  override transaction<T>(work: () => T, options: { durable?: boolean } = {}): T {
    if (this.depth === 0 && options.durable !== true) this.commits.push('plain');
    return this.nested(() => super.transaction(work, options));
  }

  override transactionSyncedLater<T>(work: () => T): { result: T; synced: Promise<void> } {
    this.commits.push('durable');
    const fail = this.failCommit;
    const result = this.nested(() =>
      super.transaction(
        () => {
          const value = work();
          if (fail !== undefined) throw fail; // the COMMIT itself fails: every change is undone
          return value;
        },
        { durable: true },
      ),
    );
    return { result, synced: this.synced };
  }

  private nested<T>(run: () => T): T {
    this.depth++;
    try {
      return run();
    } finally {
      this.depth--;
    }
  }
}

/** One request of a test: the client, what it is given, and whether deciding it throws. */
interface Ask {
  mac: string;
  address: string;
  state?: 'offered' | 'bound';
  ignore?: boolean;
  throws?: boolean;
}

interface Outcome {
  ask: Ask;
  decision: DhcpDecision;
  /** What the store held for the client's address when it was decided. */
  seen: Lease | undefined;
}

function harness(store: ScriptedStore, options: { durable: boolean }) {
  const carried: string[] = [];
  const failures: Array<{ mac: string; failure: CommitFailure; error: string }> = [];
  const seen = new Map<string, Lease | undefined>();
  let pending: (() => void) | undefined;
  let scheduled = 0;
  let batches = 0;
  const commits = new GroupCommit<Ask, Outcome>(store, {
    schedule: (flush) => {
      scheduled++;
      pending = flush;
    },
    beginBatch: () => {
      batches++;
      return now;
    },
    decide: (ask, at) => {
      const facts = clientFacts(clientRequest({ mac: ask.mac }));
      const before = store.byAddress(ask.address);
      seen.set(ask.mac, before);
      if (ask.ignore === true) return { ask, seen: before, decision: { kind: 'ignore', reason: 'not for us', facts } };
      const lease: Lease = { mac: ask.mac, address: ask.address, state: ask.state ?? 'offered', expiresAt: at + 60_000 };
      if (ask.throws === true) {
        store.upsert(lease, at); // a change made before the failure, which must be undone
        throw new Error(`cannot decide ${ask.mac}`);
      }
      return {
        ask,
        seen: before,
        decision: { kind: 'update', result: 'decline', facts, address: ask.address, reason: 'test', leaseChanges: [{ kind: 'upsert', lease }] },
      };
    },
    applied: () => {},
    mayBind: () => options.durable,
    carryOut: ({ ask }) => carried.push(ask.mac),
    failed: (ask, error, failure) => failures.push({ mac: ask.mac, failure, error: error instanceof Error ? error.message : String(error) }),
  });
  return {
    commits,
    carried,
    failures,
    seen,
    get scheduled() {
      return scheduled;
    },
    get batches() {
      return batches;
    },
    flush() {
      const run = pending;
      pending = undefined;
      run?.();
    },
  };
}

test('a batch is decided in one transaction: later requests see earlier changes, outcomes go in arrival order', async () => {
  const store = new ScriptedStore();
  const run = harness(store, { durable: true });
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10' });
  run.commits.add({ mac: '52:54:00:00:00:02', address: '198.18.0.11' });
  run.commits.add({ mac: '52:54:00:00:00:03', address: '198.18.0.10', ignore: true });
  assert.equal(run.scheduled, 1, 'one flush per batch');
  assert.deepEqual(run.carried, [], 'nothing before the flush');
  run.flush();
  assert.deepEqual(store.commits, ['durable'], 'one commit for the batch');
  assert.equal(run.batches, 1);
  assert.equal(run.seen.get('52:54:00:00:00:03')?.mac, '52:54:00:00:00:01', "the third request saw the first one's offer");
  await run.commits.close();
  assert.deepEqual(run.carried, ['52:54:00:00:00:01', '52:54:00:00:00:02', '52:54:00:00:00:03']);
  assert.deepEqual(run.failures, []);
  assert.deepEqual(
    store.all().map((lease) => [lease.address, lease.mac]),
    [
      ['198.18.0.10', '52:54:00:00:00:01'],
      ['198.18.0.11', '52:54:00:00:00:02'],
    ],
  );
});

test('a durable batch is carried out only once its fsync is done', async () => {
  const store = new ScriptedStore();
  let sync!: () => void;
  store.synced = new Promise((resolve) => (sync = resolve));
  const run = harness(store, { durable: true });
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10', state: 'bound' });
  run.flush();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(run.carried, [], 'committed but not yet on disk: no reply');
  assert.equal(store.byMac('52:54:00:00:00:01')?.state, 'bound', 'later batches already read the commit');
  sync();
  await run.commits.close();
  assert.deepEqual(run.carried, ['52:54:00:00:00:01']);
});

test('a batch that cannot bind commits without waiting for durability, and is carried out at once', () => {
  const store = new ScriptedStore();
  const run = harness(store, { durable: false });
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10' });
  run.flush();
  assert.deepEqual(store.commits, ['plain']);
  assert.deepEqual(run.carried, ['52:54:00:00:00:01']);
});

test('a request that fails to be decided is undone alone; the rest keep their order', async () => {
  const store = new ScriptedStore();
  const run = harness(store, { durable: true });
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10' });
  run.commits.add({ mac: '52:54:00:00:00:02', address: '198.18.0.11', throws: true });
  run.commits.add({ mac: '52:54:00:00:00:03', address: '198.18.0.12' });
  run.flush();
  await run.commits.close();
  assert.deepEqual(run.carried, ['52:54:00:00:00:01', '52:54:00:00:00:03']);
  assert.deepEqual(run.failures, [{ mac: '52:54:00:00:00:02', failure: 'decide', error: 'cannot decide 52:54:00:00:00:02' }]);
  assert.equal(store.byAddress('198.18.0.11'), undefined, "the failed request's change was undone");
  assert.equal(store.all().length, 2);
});

test('a failing commit sends no reply: nothing is kept, every request but the ignored ones fails', async () => {
  const store = new ScriptedStore();
  store.failCommit = new Error('disk full');
  const run = harness(store, { durable: true });
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10', state: 'bound' });
  run.commits.add({ mac: '52:54:00:00:00:02', address: '198.18.0.11', ignore: true });
  run.commits.add({ mac: '52:54:00:00:00:03', address: '198.18.0.12' });
  run.flush();
  await run.commits.close();
  assert.deepEqual(run.carried, ['52:54:00:00:00:02'], 'only the ignored request, which promised nothing');
  assert.deepEqual(run.failures, [
    { mac: '52:54:00:00:00:01', failure: 'commit', error: 'disk full' },
    { mac: '52:54:00:00:00:03', failure: 'commit', error: 'disk full' },
  ]);
  assert.deepEqual(store.all(), []);
});

test('a failing fsync sends no reply either', async () => {
  const store = new ScriptedStore();
  store.synced = Promise.reject(new Error('fsync failed'));
  const run = harness(store, { durable: true });
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10', state: 'bound' });
  run.commits.add({ mac: '52:54:00:00:00:02', address: '198.18.0.11', ignore: true });
  run.flush();
  await run.commits.close();
  assert.deepEqual(run.carried, ['52:54:00:00:00:02']);
  assert.deepEqual(run.failures, [{ mac: '52:54:00:00:00:01', failure: 'commit', error: 'fsync failed' }]);
});

test('close() drops the requests not decided yet and waits for the batches being synced', async () => {
  const store = new ScriptedStore();
  let sync!: () => void;
  store.synced = new Promise((resolve) => (sync = resolve));
  const run = harness(store, { durable: true });
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10' });
  run.flush();
  run.commits.add({ mac: '52:54:00:00:00:02', address: '198.18.0.11' });
  let closed = false;
  const closing = run.commits.close().then(() => (closed = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(closed, false, 'waits for the fsync');
  sync();
  await closing;
  run.flush(); // the flush scheduled for the dropped request finds nothing
  assert.deepEqual(run.carried, ['52:54:00:00:00:01']);
  assert.equal(run.batches, 1);
  assert.equal(store.byAddress('198.18.0.11'), undefined);
});

test('a batch the store keeps but for one request’s changes (another server’s conflict): only that request goes unanswered, as a failed request', async () => {
  const store = new ScriptedStore();
  const run = harness(store, { durable: true });
  const conflict = new LeaseConflictError(
    '198.18.0.11',
    { mac: '52:54:00:00:00:99', address: '198.18.0.11', state: 'bound', expiresAt: now + 60_000 },
    '52:54:00:00:00:02',
  );
  // Units count the requests' nested transactions in order, the one whose deciding threw too.
  store.synced = Promise.reject(new PartialCommitError(new Map([[3, conflict]])));
  run.commits.add({ mac: '52:54:00:00:00:01', address: '198.18.0.10' });
  run.commits.add({ mac: '52:54:00:00:00:04', address: '198.18.0.13', throws: true });
  run.commits.add({ mac: '52:54:00:00:00:02', address: '198.18.0.11' });
  run.commits.add({ mac: '52:54:00:00:00:03', address: '198.18.0.12' });
  run.flush();
  await run.commits.close();
  assert.deepEqual(run.carried, ['52:54:00:00:00:01', '52:54:00:00:00:03']);
  assert.deepEqual(
    run.failures.map(({ mac, failure }) => [mac, failure]),
    [
      ['52:54:00:00:00:04', 'decide'],
      ['52:54:00:00:00:02', 'decide'],
    ],
  );
  assert.match(run.failures[1]!.error, /198\.18\.0\.11 is held by 52:54:00:00:00:99/);
});
