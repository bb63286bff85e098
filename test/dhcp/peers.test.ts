import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { answeringServer } from '../../server/dhcp/decide/peers.js';

const mac = (n: number) => `52:54:00:${[16, 8, 0].map((shift) => ((n >> shift) & 0xff).toString(16).padStart(2, '0')).join(':')}`;

test('each MAC has exactly one answering server, the same whatever order the list comes in', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.ipV4(), { minLength: 1, maxLength: 6 }), fc.nat(0xffffff), (servers, n) => {
      const chosen = answeringServer(mac(n), servers);
      assert.ok(chosen !== undefined && servers.includes(chosen));
      assert.equal(answeringServer(mac(n), [...servers].reverse()), chosen);
    }),
  );
  assert.equal(answeringServer(mac(1), []), undefined);
});

test('clients spread evenly, and when a server goes only its own clients move', () => {
  const servers = ['198.18.0.1', '198.18.0.2', '198.18.0.3'];
  const count = new Map<string, number>();
  for (let n = 0; n < 3000; n++) {
    const chosen = answeringServer(mac(n), servers)!;
    count.set(chosen, (count.get(chosen) ?? 0) + 1);
    const survivors = servers.filter((server) => server !== '198.18.0.3');
    const after = answeringServer(mac(n), survivors)!;
    if (chosen !== '198.18.0.3') assert.equal(after, chosen, `${mac(n)} moved from a server that stayed`);
  }
  for (const server of servers) {
    const share = (count.get(server) ?? 0) / 3000;
    assert.ok(share > 0.28 && share < 0.39, `${server} answers ${(share * 100).toFixed(1)}% of the clients`);
  }
});
