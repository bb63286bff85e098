import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide } from '../../server/dhcp/decide/answer.js';
import { type DhcpDecision } from '../../server/dhcp/decide/types.js';
import { applyLeaseChanges, MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { clientRequest, testContext } from '../support/dhcp.js';

const now = 1_700_000_000_000;

/** What the server does with each decision's cursor: hands it to the next decision (DhcpContext.allocationCursors). */
function keepCursor(cursors: Map<string, number>, decision: DhcpDecision): void {
  if (decision.kind === 'reply' && decision.cursor !== undefined) cursors.set(decision.cursor.pool, decision.cursor.next);
}

/** A lease store that counts address lookups, the cost that grows with a busy pool. */
class CountingStore extends MemoryLeaseStore {
  lookups = 0;
  override byAddress(address: string) {
    this.lookups++;
    return super.byAddress(address);
  }
}

test('a busy pool: each new client costs a few lookups, not a walk over every address handed out', () => {
  const leases = new CountingStore();
  const cursors = new Map<string, number>();
  const context = testContext({ pool: { start: '198.18.0.10', end: '198.18.0.250' }, leases, allocationCursors: cursors });
  const given: string[] = [];
  for (let i = 0; i < 200; i++) {
    const mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    leases.lookups = 0;
    const decision = decide(clientRequest({ mac, options: { messageType: MessageType.discover } }), context, now);
    assert.equal(decision.kind, 'reply');
    if (decision.kind !== 'reply') return;
    applyLeaseChanges(leases, decision.leaseChanges, now);
    keepCursor(cursors, decision);
    given.push(decision.address!);
    assert.ok(leases.lookups <= 4, `client ${i}: ${leases.lookups} address lookups`);
  }
  assert.equal(new Set(given).size, 200, 'no address twice');
  assert.deepEqual(given.slice(0, 3), ['198.18.0.10', '198.18.0.11', '198.18.0.12'], 'in order from the start of the pool');
});

test('the search wraps round the pool and still finds the free addresses behind it', () => {
  const cursors = new Map<string, number>();
  const context = testContext({ pool: { start: '198.18.0.10', end: '198.18.0.13' }, allocationCursors: cursors });
  const offer = (mac: string) => {
    const decision = decide(clientRequest({ mac, options: { messageType: MessageType.discover } }), context, now);
    if (decision.kind !== 'ignore') applyLeaseChanges(context.leases, decision.leaseChanges, now);
    keepCursor(cursors, decision);
    return decision.kind === 'reply' ? decision.address : decision.kind;
  };
  assert.deepEqual(['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'].map(offer), ['198.18.0.10', '198.18.0.11', '198.18.0.12']);
  context.leases.remove('198.18.0.10');
  assert.equal(offer('02:00:00:00:00:04'), '198.18.0.13');
  assert.equal(offer('02:00:00:00:00:05'), '198.18.0.10', 'wrapped round to the freed address');
});

test('a decision depends only on its inputs: the same request in the same context gets the same answer, and says where the next search starts', () => {
  const context = testContext({ pool: { start: '198.18.0.10', end: '198.18.0.13' } });
  const request = clientRequest({ mac: '02:00:00:00:00:01', options: { messageType: MessageType.discover } });
  const first = decide(request, context, now);
  const second = decide(request, context, now);
  assert.deepEqual(second, first);
  assert.deepEqual(first.kind === 'reply' && [first.address, first.cursor], ['198.18.0.10', { pool: '198.18.0.10-198.18.0.13', next: 1 }]);
  // Given where an earlier search stopped, it starts there.
  const later = decide(request, { ...context, allocationCursors: new Map([['198.18.0.10-198.18.0.13', 2]]) }, now);
  assert.deepEqual(later.kind === 'reply' && [later.address, later.cursor], ['198.18.0.12', { pool: '198.18.0.10-198.18.0.13', next: 3 }]);
});

test("servers sharing a pool give out their own share of never-used addresses first, then the others'", () => {
  const cursors = new Map<string, number>();
  // This server's share: the even addresses of 198.18.0.10-198.18.0.15.
  const context = testContext({
    pool: { start: '198.18.0.10', end: '198.18.0.15' },
    allocationCursors: cursors,
    prefersAddress: (address) => Number(address.split('.')[3]) % 2 === 0,
  });
  const offer = (mac: string) => {
    const decision = decide(clientRequest({ mac, options: { messageType: MessageType.discover } }), context, now);
    if (decision.kind !== 'ignore') applyLeaseChanges(context.leases, decision.leaseChanges, now);
    keepCursor(cursors, decision);
    return decision.kind === 'reply' ? decision.address : decision.kind;
  };
  const given = ['01', '02', '03', '04', '05', '06'].map((n) => offer(`02:00:00:00:00:${n}`));
  assert.deepEqual(given.slice(0, 3), ['198.18.0.10', '198.18.0.12', '198.18.0.14'], 'its own share first');
  assert.deepEqual([...given.slice(3)].sort(), ['198.18.0.11', '198.18.0.13', '198.18.0.15'], "then the others' share, the pool being full otherwise");
});
