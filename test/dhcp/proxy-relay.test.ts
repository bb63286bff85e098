/**
 * proxyDHCP for clients behind DHCP relay agents on other subnets
 * (`--dhcp proxy --relay-subnet CIDR`): the offer goes to the relay (giaddr)
 * on port 67 with option 82 echoed; the port-4011 request such a client then
 * unicasts from its own address is answered there; relays and clients from
 * subnets not given stay ignored.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DhcpDecision, Scope } from '../../server/dhcp/decide/types.js';
import { MessageType, type DhcpOptions } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { decideProxy, type ProxyArrival, type ProxyContext } from '../../server/dhcp/decide/proxy.js';
import { parseProxyRelaySubnet } from '../../server/net/interfaces.js';
import { Subnet } from '../../server/net/ipv4.js';
import { clientRequest, server, testBootFile } from '../support/dhcp.js';

const mac = '52:54:00:12:36:01';
const rack2: Scope = { subnet: new Subnet('198.18.2.0', 24), pool: undefined, router: undefined, dns: [] };
const withRelays: ProxyContext = { serverAddress: server, prefixLength: 24, bootFile: testBootFile, serverPort: 67, clientPort: 68, relayScopes: [rack2] };
const withoutRelays: ProxyContext = { serverAddress: server, prefixLength: 24, bootFile: testBootFile, serverPort: 67, clientPort: 68 };
const biosPxe: DhcpOptions = { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0] };
const uefiPxe: DhcpOptions = { vendorClass: 'PXEClient:Arch:00007:UNDI:003016', clientArch: [7] };
const agent = Buffer.from([1, 2, ...Buffer.from('r1')]);

function proxy(context: ProxyContext, packet: DhcpPacket, arrival: ProxyArrival = { port: 'dhcp' }): DhcpDecision {
  const decision = decideProxy(packet, context, arrival);
  if (decision.kind === 'reply') assert.deepEqual(decodePacket(encodePacket(decision.packet)), decision.packet);
  return decision;
}

describe('proxyDHCP through relays on other subnets', () => {
  test('a relayed DISCOVER from a --relay-subnet gets the offer at giaddr:67, option 82 echoed', () => {
    const discover = clientRequest({
      mac,
      relayAddress: '198.18.2.1',
      hops: 1,
      rawOptions: new Map([[82, agent]]),
      options: { messageType: MessageType.discover, ...biosPxe },
    });
    const offer = proxy(withRelays, discover);
    assert.ok(offer.kind === 'reply', JSON.stringify(offer));
    assert.equal(offer.result, 'offer');
    assert.deepEqual(offer.destination, { address: '198.18.2.1', port: 67 });
    assert.equal(offer.packet.relayAddress, '198.18.2.1');
    assert.equal(offer.packet.yourAddress, '0.0.0.0', "no address: that is the DHCP server's");
    assert.equal(offer.packet.bootFile, 'undionly.kpxe');
    assert.deepEqual(offer.packet.rawOptions?.get(82), agent);

    const unserved = proxy(withoutRelays, discover);
    assert.ok(unserved.kind === 'ignore');
    assert.equal(unserved.reason, 'relayed by 198.18.2.1, outside 198.18.0.0/24 and every relay subnet');
    const elsewhere = proxy(withRelays, { ...discover, relayAddress: '198.18.9.1' });
    assert.ok(elsewhere.kind === 'ignore');
    assert.equal(elsewhere.reason, 'relayed by 198.18.9.1, outside 198.18.0.0/24 and every relay subnet');
  });

  test('the port-4011 request a client behind a relay unicasts from its address is answered there', () => {
    const source = { address: '198.18.2.120', port: 4011 };
    const request = clientRequest({ mac, clientAddress: '198.18.2.120', options: { messageType: MessageType.request, ...uefiPxe } });
    const ack = proxy(withRelays, request, { port: 'boot-server', source });
    assert.ok(ack.kind === 'reply', JSON.stringify(ack));
    assert.deepEqual(ack.destination, source);
    assert.equal(ack.packet.bootFile, 'ipxe.efi');

    const unserved = proxy(withoutRelays, request, { port: 'boot-server', source });
    assert.ok(unserved.kind === 'ignore');
    assert.equal(unserved.reason, 'port 4011 request from 198.18.2.120, outside 198.18.0.0/24');
    const elsewhere = proxy(
      withRelays,
      { ...request, clientAddress: '198.18.9.120' },
      { port: 'boot-server', source: { address: '198.18.9.120', port: 4011 } },
    );
    assert.ok(elsewhere.kind === 'ignore');
    assert.equal(elsewhere.reason, 'port 4011 request from 198.18.9.120, outside 198.18.0.0/24 and every relay subnet');
  });

  test('--relay-subnet in proxy mode: CIDR alone, or the full-mode form (checked, only its subnet used)', () => {
    assert.equal(parseProxyRelaySubnet('198.18.2.0/24').subnet.toString(), '198.18.2.0/24');
    assert.equal(parseProxyRelaySubnet('198.18.3.0/24,198.18.3.100-198.18.3.199,198.18.3.1').subnet.toString(), '198.18.3.0/24');
    assert.throws(() => parseProxyRelaySubnet('198.18.2.0'), {
      message: '--relay-subnet "198.18.2.0": "198.18.2.0" is not a subnet a.b.c.d/n (n up to 30) (want CIDR in proxy mode, e.g. 198.18.2.0/24)',
    });
    assert.throws(() => parseProxyRelaySubnet('198.18.3.0/24,198.18.4.1-198.18.4.9'), {
      message: '--pool "198.18.4.1-198.18.4.9": 198.18.4.1 is not a host address of the relay\'s subnet 198.18.3.0/24',
    });
  });
});
