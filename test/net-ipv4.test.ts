import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ipv4ToNumber, isIpv4, numberToIpv4 } from '../server/net/ipv4.js';

/** The definition the parser implements: four parts of 0-255, no leading zeros. */
const dottedQuad = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

test('isIpv4 accepts exactly the dotted quads without leading zeros', () => {
  const near = fc.stringMatching(/^[0-9.]{0,17}$/);
  const quads = fc
    .array(fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('00', '01', '010', '', '1a', '-1', ' 1', '256')), {
      minLength: 3,
      maxLength: 5,
    })
    .map((parts) => parts.join('.'));
  fc.assert(
    fc.property(fc.oneof(near, quads, fc.string()), (text) => {
      assert.equal(isIpv4(text), dottedQuad.test(text), text);
    }),
    { numRuns: 20_000 },
  );
  for (const text of ['0.0.0.0', '255.255.255.255', '198.18.0.1']) assert.ok(isIpv4(text), text);
  for (const text of ['', '1.2.3', '1.2.3.4.', '.1.2.3', '1..2.3', '01.2.3.4', '256.1.1.1', '1.2.3.4 ', '1.2.3.1000']) assert.ok(!isIpv4(text), text);
});

test('ipv4ToNumber and numberToIpv4 are inverses; bad text is refused by name', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => assert.equal(ipv4ToNumber(numberToIpv4(n)), n)));
  assert.equal(ipv4ToNumber('198.18.0.1'), 0xc6120001);
  assert.throws(() => ipv4ToNumber('198.18.0'), { message: "'198.18.0' is not an IPv4 address" });
});
