import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenBucket } from '../../server/dhcp/rate-limit.js';

test('TokenBucket: a burst of the rate, then the rate per second; a clock going back gives nothing extra', () => {
  const bucket = new TokenBucket(5);
  const at = 1_000_000;
  const taken = Array.from({ length: 7 }, () => bucket.take(at));
  assert.deepEqual(taken, [true, true, true, true, true, false, false]);
  assert.equal(bucket.take(at + 100), false, 'half a token after 100 ms');
  assert.equal(bucket.take(at + 200), true, 'one token after 200 ms');
  assert.equal(bucket.take(at + 200), false);
  assert.equal(bucket.take(at), false, 'the clock went back');
  // Idle for a minute: never more than one second's worth.
  const later = Array.from({ length: 7 }, () => bucket.take(at + 60_000));
  assert.equal(later.filter(Boolean).length, 5);
  assert.throws(() => new TokenBucket(0), /rate 0 is not a positive number/);
});
