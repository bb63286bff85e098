import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeExpiry, leaseRows, renderLeaseTable } from '../../server/dhcp/leases/table.js';
import type { Lease } from '../../server/dhcp/leases/leases.js';

const now = Date.parse('2026-01-02T03:04:05.000Z');
const leases: Lease[] = [
  { mac: '02:00:00:00:00:02', address: '198.18.0.10', state: 'offered', expiresAt: now + 59_000 },
  { mac: '02:00:00:00:00:01', address: '198.18.0.9', state: 'bound', expiresAt: now + 3_600_000, hostname: 'node-1' },
  { mac: '02:00:00:00:00:03', address: '198.18.0.200', state: 'expired', expiresAt: now - 183_000 },
  { mac: '02:00:00:00:00:04', address: '198.18.0.11', state: 'declined', expiresAt: now + 90_061_000 },
];

test('the lease table: numeric address order, expiry in UTC and from now, hostname or a dash', () => {
  assert.equal(
    renderLeaseTable(leases, now),
    [
      'MAC                ADDRESS       STATE     EXPIRES (UTC)        ENDS       HOSTNAME',
      '02:00:00:00:00:01  198.18.0.9    bound     2026-01-02 04:04:05  in 1h 0m   node-1',
      '02:00:00:00:00:02  198.18.0.10   offered   2026-01-02 03:05:04  in 59s     -',
      '02:00:00:00:00:04  198.18.0.11   declined  2026-01-03 04:05:06  in 1d 1h   -',
      '02:00:00:00:00:03  198.18.0.200  expired   2026-01-02 03:01:02  3m 3s ago  -',
      '',
    ].join('\n'),
  );
  assert.equal(renderLeaseTable([], now), 'no leases\n');
});

test('the JSON rows say whether each record holds its address now', () => {
  assert.deepEqual(leaseRows(leases, now), [
    { mac: '02:00:00:00:00:01', address: '198.18.0.9', state: 'bound', expires: '2026-01-02T04:04:05.000Z', holdsAddress: true, hostname: 'node-1' },
    { mac: '02:00:00:00:00:02', address: '198.18.0.10', state: 'offered', expires: '2026-01-02T03:05:04.000Z', holdsAddress: true, hostname: null },
    { mac: '02:00:00:00:00:04', address: '198.18.0.11', state: 'declined', expires: '2026-01-03T04:05:06.000Z', holdsAddress: true, hostname: null },
    { mac: '02:00:00:00:00:03', address: '198.18.0.200', state: 'expired', expires: '2026-01-02T03:01:02.000Z', holdsAddress: false, hostname: null },
  ]);
});

test('expiry spans: the largest unit that is not zero and the next', () => {
  assert.equal(describeExpiry(now, now), '0s ago');
  assert.equal(describeExpiry(now + 61_000, now), 'in 1m 1s');
  assert.equal(describeExpiry(now + 3_599_000, now), 'in 59m 59s');
});
