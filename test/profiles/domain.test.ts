import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { deriveDomainMac, domainMacs, domainNameProblem, guestMacProblem } from '../../server/profiles/domain.js';

const hostMac = '52:54:00:12:34:56';

test('deriveDomainMac: stable, unicast, locally administered, different per host and per name', () => {
  const mac = deriveDomainMac(hostMac, 'demo1');
  assert.equal(mac, deriveDomainMac(hostMac, 'demo1'), 'the same every boot');
  assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(parseInt(mac.slice(0, 2), 16) & 0b11, 0b10, 'locally administered unicast');
  assert.notEqual(mac, deriveDomainMac(hostMac, 'demo2'));
  assert.notEqual(mac, deriveDomainMac('52:54:00:12:34:57', 'demo1'));
  // A clash with a taken address moves on to another one.
  const other = deriveDomainMac(hostMac, 'demo1', new Set([mac]));
  assert.notEqual(other, mac);
  assert.equal(guestMacProblem(other), undefined);
});

test('domainMacs: written MACs kept, derived ones avoid them and the host (property)', () => {
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/);
  const writtenMac = fc.constantFrom('02:00:00:00:00:01', '02:00:00:00:00:02', '0a:00:00:00:00:03');
  fc.assert(
    fc.property(fc.uniqueArray(fc.record({ name, mac: fc.option(writtenMac, { nil: undefined }) }), { selector: (d) => d.name, maxLength: 12 }), (domains) => {
      // Written MACs are unique within a profile (the parser refuses others).
      const seen = new Set<string>();
      const input = domains.map((domain) => {
        if (domain.mac === undefined || seen.has(domain.mac)) return { name: domain.name };
        seen.add(domain.mac);
        return { name: domain.name, mac: domain.mac };
      });
      const macs = domainMacs(hostMac, input);
      assert.equal(macs.length, input.length);
      assert.equal(new Set([hostMac, ...macs]).size, macs.length + 1, 'no two NICs share a MAC');
      input.forEach((domain, index) => {
        if (domain.mac !== undefined) assert.equal(macs[index], domain.mac);
        else assert.equal(guestMacProblem(macs[index]!), undefined);
      });
      assert.deepEqual(domainMacs(hostMac, input), macs, 'stable');
    }),
    { numRuns: 300 },
  );
});

test('domainNameProblem: xl names that travel in URLs, file names and shell lists', () => {
  for (const good of ['web', 'web1', 'db.primary', 'a_b-c', '1web', 'x'.repeat(64)]) assert.equal(domainNameProblem(good), undefined, good);
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['x'.repeat(65), /65 characters/],
    ['-web', /start with a letter or digit/],
    ['.hidden', /start with a letter or digit/],
    ['web/1', /contains "\/"/],
    ['web 1', /contains " "/],
    ['12', /all digits/],
    ['Domain-0', /dom0 itself/],
  ];
  for (const [name, want] of bad) assert.match(domainNameProblem(name) ?? 'accepted', want, name);
});
