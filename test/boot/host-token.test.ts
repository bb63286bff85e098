import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { HostTokens } from '../../server/boot/host-token.js';

const secret = randomBytes(32);
const tokens = new HostTokens(secret);
const mac = '52:54:00:12:34:56';

test('a token verifies for its own MAC only, and each boot gets a new one', () => {
  const token = tokens.mint(mac);
  assert.match(token, /^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
  assert.equal(tokens.verify(mac, token), true);
  assert.equal(tokens.verify('52:54:00:12:34:57', token), false);
  assert.notEqual(tokens.mint(mac), token);
  // Another server with the same secret (or this one after a restart) accepts it; one with another secret does not.
  assert.equal(new HostTokens(Buffer.from(secret)).verify(mac, token), true);
  assert.equal(new HostTokens(randomBytes(32)).verify(mac, token), false);
  assert.equal(tokens.verify(mac, undefined), false);
  assert.equal(tokens.verify(mac, ''), false);
  assert.throws(() => new HostTokens(randomBytes(16)), /at least 32 bytes/);
});

test('no altered token verifies: any change to the nonce or signature is refused', () => {
  const token = tokens.mint(mac);
  fc.assert(
    fc.property(fc.nat(token.length - 1), fc.constantFrom(...'ABCabc019-_.='), (index, replacement) => {
      fc.pre(token[index] !== replacement);
      const altered = token.slice(0, index) + replacement + token.slice(index + 1);
      assert.equal(tokens.verify(mac, altered), false, altered);
    }),
    { numRuns: 500 },
  );
  for (const altered of [`${token}x`, token.slice(1), token.replace('.', ''), `${token.split('.')[0]}.`, token.toUpperCase()]) {
    assert.equal(tokens.verify(mac, altered), false, altered);
  }
});
