import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultPool, parsePool, parseRelaySubnet } from '../server/net/interfaces.js';

const served = { interfaceName: 'tap0', address: '198.18.0.1', prefixLength: 24 };

test('parsePool: a range inside the served subnet, in order', () => {
  assert.deepEqual(parsePool('198.18.0.100-198.18.0.150', served), { start: '198.18.0.100', end: '198.18.0.150' });
  assert.deepEqual(parsePool(' 198.18.0.100 - 198.18.0.100 ', served), { start: '198.18.0.100', end: '198.18.0.100' });
  assert.throws(() => parsePool('198.18.0.100', served), /want START-END/);
  assert.throws(() => parsePool('198.18.0.150-198.18.0.100', served), /the start is after the end/);
  assert.throws(() => parsePool('198.18.1.100-198.18.1.150', served), /198\.18\.1\.100 is not a host address of tap0's subnet 198\.18\.0\.0\/24/);
  assert.throws(() => parsePool('198.18.0.100-198.18.0.255', served), /198\.18\.0\.255 is not a host address/);
  assert.throws(() => parsePool('198.18.0.x-198.18.0.9', served), /"198\.18\.0\.x" is not an IPv4 address/);
});

test('defaultPool: the upper half of the subnet without the broadcast address', () => {
  assert.deepEqual(defaultPool(served), { start: '198.18.0.128', end: '198.18.0.254' });
  assert.deepEqual(defaultPool({ ...served, prefixLength: 16 }), { start: '198.18.128.0', end: '198.18.255.254' });
  assert.throws(() => defaultPool({ ...served, prefixLength: 30 }), /too small to suggest a pool/);
});

test('parseRelaySubnet: subnet, pool inside it, optional router and DNS', () => {
  const scope = parseRelaySubnet('198.18.2.0/24,198.18.2.100-198.18.2.199,198.18.2.1,198.18.2.53,198.18.2.54');
  assert.equal(scope.subnet.toString(), '198.18.2.0/24');
  assert.deepEqual(scope.pool, { start: '198.18.2.100', end: '198.18.2.199' });
  assert.equal(scope.router, '198.18.2.1');
  assert.deepEqual(scope.dns, ['198.18.2.53', '198.18.2.54']);
  assert.equal(parseRelaySubnet('198.18.3.0/25,198.18.3.10-198.18.3.20').router, undefined);
  assert.throws(() => parseRelaySubnet('198.18.2.0,198.18.2.100-198.18.2.199'), /"198\.18\.2\.0" is not a subnet a\.b\.c\.d\/n/);
  assert.throws(() => parseRelaySubnet('198.18.2.0/24'), /no pool/);
  assert.throws(
    () => parseRelaySubnet('198.18.2.0/24,198.18.3.100-198.18.3.199'),
    /198\.18\.3\.100 is not a host address of the relay's subnet 198\.18\.2\.0\/24/,
  );
  assert.throws(
    () => parseRelaySubnet('198.18.2.0/24,198.18.2.100-198.18.2.199,198.18.9.1'),
    /router 198\.18\.9\.1 is not a host address of 198\.18\.2\.0\/24/,
  );
});
