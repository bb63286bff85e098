import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { HostTokens, maximumTokenLength } from '../../server/tokens/host-token.js';

const secret = randomBytes(32);
const tokens = new HostTokens(secret);
const mac = '52:54:00:12:34:56';
const other = '52:54:00:12:34:57';
const now = Date.parse('2026-12-04T16:00:00.500Z');

test('a boot token names its MAC, the address it was handed to and when, and reads for its own MAC only', () => {
  const minted = tokens.mintBoot(mac, '198.18.0.100', now);
  const { token } = minted;
  assert.match(token, /^b\.[A-Za-z0-9_-]{12}\.[0-9a-z]+\.[0-9a-f]{8}\.[A-Za-z0-9_-]{22}$/);
  assert.ok(token.length <= 54, `${token.length} characters`);
  assert.ok(token.length <= maximumTokenLength);
  const claims = tokens.read(mac, token);
  assert.deepEqual(claims, { kind: 'boot', mac, nonce: token.split('.')[1], issuedAt: Date.parse('2026-12-04T16:00:00Z'), address: '198.18.0.100' });
  assert.deepEqual(minted.claims, claims, 'what minting says is what reading says');
  assert.equal(tokens.read(other, token), undefined);
  assert.notEqual(tokens.mintBoot(mac, '198.18.0.100', now).token, token, 'each boot gets its own nonce');
  // Another server with the same key (or this one after a restart) reads it; one with another key does not.
  assert.deepEqual(new HostTokens(Buffer.from(secret)).read(mac, token), claims);
  assert.equal(new HostTokens(randomBytes(32)).read(mac, token), undefined);
  assert.equal(tokens.read(mac, undefined), undefined);
  assert.equal(tokens.read(mac, ''), undefined);
  assert.throws(() => new HostTokens(randomBytes(16)), /at least 32 bytes/);
  assert.throws(() => tokens.mintBoot(mac, '::1', now), /IPv4 address/);
});

test('image and guest tokens: an image token is the same for the same nonce; a guest token reads only for its own guest', () => {
  const nonce = 'AAAAAAAAAAAA';
  const image = tokens.mintImage(mac, nonce);
  assert.equal(tokens.mintImage(mac, nonce), image);
  assert.deepEqual(tokens.read(mac, image), { kind: 'image', mac, nonce });
  assert.equal(tokens.read(other, image), undefined);

  const guest = tokens.mintGuest(mac, nonce, 'web1');
  assert.deepEqual(tokens.read(mac, guest, 'web1'), { kind: 'guest', mac, nonce, domain: 'web1' });
  assert.equal(tokens.read(mac, guest, 'web2'), undefined, 'another guest of the host');
  assert.equal(tokens.read(mac, guest), undefined, 'a guest token says nothing without its guest');
  assert.equal(tokens.read(other, guest, 'web1'), undefined);
  // The kinds are signed apart: a token of one kind relabelled as another is refused.
  assert.equal(tokens.read(mac, `i${guest.slice(1)}`), undefined);
  assert.equal(tokens.read(mac, `g${image.slice(1)}`, 'web1'), undefined);
});

test('no altered token reads: any change to its nonce, time, address or signature is refused', () => {
  for (const token of [tokens.mintBoot(mac, '198.18.0.100', now).token, tokens.mintImage(mac, 'BBBBBBBBBBBB')]) {
    fc.assert(
      fc.property(fc.nat(token.length - 1), fc.constantFrom(...'ABCabc019-_.=f'), (index, replacement) => {
        fc.pre(token[index] !== replacement);
        const altered = token.slice(0, index) + replacement + token.slice(index + 1);
        assert.equal(tokens.read(mac, altered), undefined, altered);
      }),
      { numRuns: 500 },
    );
    for (const altered of [`${token}x`, token.slice(1), token.replace('.', ''), token.toUpperCase(), 'x'.repeat(10_000)]) {
      assert.equal(tokens.read(mac, altered), undefined, altered);
    }
  }
  // The address is inside the signature: the same token shown with another address part fails.
  const { token } = tokens.mintBoot(mac, '198.18.0.100', now);
  const moved = token.replace(/\.c6120064\./, '.c6120065.');
  assert.notEqual(moved, token);
  assert.equal(tokens.read(mac, moved), undefined);
});
