import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { test } from 'node:test';
import { addClient, httpPort, serverAddress, startRack } from '../support/boot.js';
import { attachSiteDhcp, siteDhcpAddress } from '../support/site-dhcp.js';

/**
 * Full mode beside another DHCP server on the same wire (dnsmasq, in a
 * namespace of its own): when a client takes that server's offer, rackboot
 * warns in its log and on the status page, naming the other server. The
 * client is unknown to rackboot (--dhcp-known-only), so only dnsmasq offers
 * and the outcome does not depend on which answers first. Needs root and
 * dnsmasq; fails (never skips) without them.
 */

test(
  "full mode: a client that takes another DHCP server's offer makes rackboot warn, in the log and on the status page, naming that server",
  { timeout: 60_000 },
  async () => {
    const rack = await startRack({}, { bridge: true, serveArgs: ['--dhcp-known-only'] });
    const site = await attachSiteDhcp(rack.ns);
    try {
      const client = await addClient(rack, '02:00:00:00:d0:01');
      const address = client.dhcp();
      assert.match(address, /^198\.18\.0\.\d+$/);
      const warned = () =>
        rack
          .events()
          .find((event) => event.level === 40 && typeof event.msg === 'string' && event.msg.startsWith('another DHCP server answers on this network'));
      for (let i = 0; i < 50 && !warned(); i++) await delay(100);
      const warning = warned();
      assert.ok(warning, 'a warning in the log');
      assert.equal(warning.server, siteDhcpAddress);
      assert.equal(warning.mac, '02:00:00:00:d0:01');
      const state = JSON.parse(rack.ns.exec('curl', ['-sSf', `http://${serverAddress}:${httpPort}/status/state.json`])) as { server: { warnings: string[] } };
      assert.equal(state.server.warnings.length, 1);
      assert.match(state.server.warnings[0]!, /^Another DHCP server answers on this network: 198\.18\.0\.2 \(02:00:00:00:d0:01 took its offer at /);
    } finally {
      await site.close();
      await rack.close();
    }
  },
);
