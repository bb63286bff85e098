import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../server/dhcp/decide/answer.js';
import { type DhcpDecision, type Scope } from '../../server/dhcp/decide/types.js';
import { applyLeaseChanges } from '../../server/dhcp/leases/leases.js';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { Subnet } from '../../server/net/ipv4.js';
import { clientRequest, server, testContext, type TestContext } from '../support/dhcp.js';

const now = 1_700_000_000_000;
const rack2: Scope = {
  subnet: new Subnet('198.18.2.0', 24),
  pool: { start: '198.18.2.100', end: '198.18.2.101' },
  router: '198.18.2.1',
  dns: ['198.18.2.53'],
};
const rack3: Scope = { subnet: new Subnet('198.18.3.0', 24), pool: { start: '198.18.3.10', end: '198.18.3.20' }, router: '198.18.3.1', dns: [] };

// Relay Agent Information (82): circuit-id (1) "rack2/port7", remote-id (2) "tor-2".
const agentInformation = Buffer.from([1, 11, ...Buffer.from('rack2/port7'), 2, 5, ...Buffer.from('tor-2')]);

function step(context: TestContext, packet: DhcpPacket): DhcpDecision {
  const decision = decide(packet, context, now);
  if (decision.kind !== 'ignore') applyLeaseChanges(context.leases, decision.leaseChanges, now);
  if (decision.kind === 'reply') assert.deepEqual(decodePacket(encodePacket(decision.packet)), decision.packet, 'survives the wire');
  return decision;
}

function relayed(mac: string, type: number, giaddr: string, extra: Partial<DhcpPacket> = {}, options = {}): DhcpPacket {
  return clientRequest({ mac, relayAddress: giaddr, hops: 1, ...extra, options: { messageType: type, ...options } });
}

describe('requests from DHCP relay agents (giaddr)', () => {
  test('each relay subnet has its own pool, router and DNS; the reply goes to the relay on port 67', () => {
    const context = testContext({ relayScopes: [rack2, rack3] });
    const offer = step(context, relayed('02:00:00:00:02:01', MessageType.discover, '198.18.2.1'));
    assert.ok(offer.kind === 'reply');
    assert.equal(offer.address, '198.18.2.100');
    assert.deepEqual(offer.destination, { address: '198.18.2.1', port: 67 });
    assert.equal(offer.packet.relayAddress, '198.18.2.1');
    assert.equal(offer.packet.options.subnetMask, '255.255.255.0');
    assert.deepEqual(offer.packet.options.routers, ['198.18.2.1']);
    assert.deepEqual(offer.packet.options.dnsServers, ['198.18.2.53']);
    assert.equal(offer.packet.options.serverIdentifier, server);

    const other = step(context, relayed('02:00:00:00:03:01', MessageType.discover, '198.18.3.1'));
    assert.ok(other.kind === 'reply');
    assert.equal(other.address, '198.18.3.10');
    assert.equal(other.packet.options.dnsServers, undefined);

    const local = step(context, clientRequest({ mac: '02:00:00:00:00:01', options: { messageType: MessageType.discover } }));
    assert.ok(local.kind === 'reply');
    assert.equal(local.address, '198.18.0.100', 'the local wire keeps its own pool');
    assert.deepEqual(local.packet.options.routers, ['198.18.0.1']);
  });

  test('a client behind a relay renews by unicast without giaddr (RFC 2131 4.4.5): ACKed in its relay subnet, answered at its own address', () => {
    const context = testContext({ relayScopes: [rack2] });
    const mac = '02:00:00:00:02:09';
    const offer = step(context, relayed(mac, MessageType.discover, '198.18.2.1'));
    assert.ok(offer.kind === 'reply');
    const ack = step(context, relayed(mac, MessageType.request, '198.18.2.1', {}, { requestedAddress: offer.address, serverIdentifier: server }));
    assert.ok(ack.kind === 'reply' && ack.result === 'ack');
    const renewal = step(context, clientRequest({ mac, clientAddress: offer.address!, options: { messageType: MessageType.request } }));
    assert.ok(renewal.kind === 'reply', renewal.kind === 'ignore' ? renewal.reason : '');
    assert.equal(renewal.result, 'ack', renewal.reason);
    assert.equal(renewal.address, '198.18.2.100');
    assert.deepEqual(renewal.destination, { address: '198.18.2.100', port: 68 });
    assert.deepEqual(renewal.packet.options.routers, ['198.18.2.1']);
    assert.equal(context.leases.byMac(mac)?.state, 'bound');

    // A renewal for an address in no served subnet is still refused.
    const stray = step(context, clientRequest({ mac: '02:00:00:00:09:09', clientAddress: '198.18.9.5', options: { messageType: MessageType.request } }));
    assert.ok(stray.kind !== 'reply' || stray.result === 'nak');
  });

  test('the relay pool fills up on its own, then says so', () => {
    const context = testContext({ relayScopes: [rack2] });
    for (const [i, want] of [
      [1, '198.18.2.100'],
      [2, '198.18.2.101'],
    ] as const) {
      const mac = `02:00:00:00:02:0${i}`;
      const offer = step(context, relayed(mac, MessageType.discover, '198.18.2.1'));
      assert.ok(offer.kind === 'reply' && offer.address === want);
      const ack = step(context, relayed(mac, MessageType.request, '198.18.2.1', {}, { serverIdentifier: server, requestedAddress: want }));
      assert.ok(ack.kind === 'reply' && ack.result === 'ack', JSON.stringify(ack));
    }
    const full = step(context, relayed('02:00:00:00:02:09', MessageType.discover, '198.18.2.1'));
    assert.ok(full.kind === 'ignore');
    assert.match(full.reason, /no free address in the pool 198\.18\.2\.100-198\.18\.2\.101/);
  });

  test('a relay from a subnet rackboot does not serve is ignored, naming it', () => {
    const decision = step(testContext({ relayScopes: [rack2] }), relayed('02:00:00:00:09:01', MessageType.discover, '198.18.9.1'));
    assert.ok(decision.kind === 'ignore');
    assert.equal(decision.reason, 'relayed by 198.18.9.1, outside 198.18.0.0/24 and every relay subnet');
  });

  test('a request for the local pool through a relay on another subnet gets a NAK', () => {
    const context = testContext({ relayScopes: [rack2] });
    const nak = step(
      context,
      relayed('02:00:00:00:02:05', MessageType.request, '198.18.2.1', {}, { serverIdentifier: server, requestedAddress: '198.18.0.100' }),
    );
    assert.ok(nak.kind === 'reply');
    assert.equal(nak.result, 'nak');
    assert.deepEqual(nak.destination, { address: '198.18.2.1', port: 67 });
  });

  test('option 82 is echoed unchanged in offers, ACKs and NAKs (RFC 3046 section 2.2)', () => {
    const context = testContext({ relayScopes: [rack2] });
    const withAgent = { rawOptions: new Map([[82, agentInformation]]) };
    const offer = step(context, relayed('02:00:00:00:02:01', MessageType.discover, '198.18.2.1', withAgent));
    assert.ok(offer.kind === 'reply');
    assert.deepEqual(offer.packet.rawOptions?.get(82), agentInformation);
    // On the wire it comes after the options rackboot writes (the relay strips it).
    const bytes = encodePacket(offer.packet);
    const at = bytes.indexOf(Buffer.from([82, agentInformation.length, ...agentInformation]));
    assert.ok(at > 240, 'option 82 is in the options field');
    assert.equal(bytes[at + 2 + agentInformation.length], 255, 'option 82 is the last option before END');

    const ack = step(
      context,
      relayed('02:00:00:00:02:01', MessageType.request, '198.18.2.1', withAgent, { serverIdentifier: server, requestedAddress: '198.18.2.100' }),
    );
    assert.ok(ack.kind === 'reply' && ack.result === 'ack');
    assert.deepEqual(ack.packet.rawOptions?.get(82), agentInformation);

    const nak = step(
      context,
      relayed('02:00:00:00:02:01', MessageType.request, '198.18.2.1', withAgent, { serverIdentifier: server, requestedAddress: '198.18.2.7' }),
    );
    assert.ok(nak.kind === 'reply' && nak.result === 'nak');
    assert.deepEqual(nak.packet.rawOptions?.get(82), agentInformation);

    const plain = step(context, relayed('02:00:00:00:02:02', MessageType.discover, '198.18.2.1'));
    assert.ok(plain.kind === 'reply');
    assert.equal(plain.packet.rawOptions, undefined, 'nothing to echo, nothing added');
  });

  test('proxy mode echoes option 82 too', () => {
    const context = testContext({ mode: 'proxy' });
    const pxe = relayed(
      '02:00:00:00:00:07',
      MessageType.discover,
      '198.18.0.254',
      { rawOptions: new Map([[82, agentInformation]]) },
      {
        vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
        clientArch: [0],
      },
    );
    const offer = step(context, pxe);
    assert.ok(offer.kind === 'reply', JSON.stringify(offer));
    assert.deepEqual(offer.packet.rawOptions?.get(82), agentInformation);
  });
});
