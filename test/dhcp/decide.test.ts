import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../server/dhcp/decide/answer.js';
import { otherServerShown, replyDestination } from '../../server/dhcp/decide/full.js';
import { orderOptions } from '../../server/dhcp/decide/reply.js';
import type { DhcpDecision } from '../../server/dhcp/decide/types.js';
import { Subnet } from '../../server/net/ipv4.js';
import { applyLeaseChanges } from '../../server/dhcp/leases/leases.js';
import { MessageType, type DhcpOptions } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { clientRequest, fixtureDhcp, server, testContext, type TestContext } from '../support/dhcp.js';

const now = 1_700_000_000_000;
const macA = '02:00:00:00:00:0a';
const macB = '02:00:00:00:00:0b';
const broadcast = { address: '255.255.255.255', port: 68 };

/** decide, then apply its lease changes as the server would. */
function step(context: TestContext, packet: DhcpPacket, at = now, source?: string): DhcpDecision {
  const decision = decide(packet, context, at, source);
  if (decision.kind !== 'ignore') applyLeaseChanges(context.leases, decision.leaseChanges, at);
  if (decision.kind === 'reply') {
    // Every reply must survive the wire.
    const bytes = encodePacket(decision.packet);
    assert.ok(bytes.length >= 300);
    assert.deepEqual(decodePacket(bytes), decision.packet);
  }
  return decision;
}

function reply(decision: DhcpDecision) {
  assert.equal(decision.kind, 'reply', `expected a reply, got ${JSON.stringify(decision)}`);
  return decision as Extract<DhcpDecision, { kind: 'reply' }>;
}

function ignored(decision: DhcpDecision): string {
  assert.equal(decision.kind, 'ignore', `expected ignore, got ${decision.kind}`);
  return (decision as Extract<DhcpDecision, { kind: 'ignore' }>).reason;
}

const discover = (mac: string, options: DhcpOptions = {}, fields: Partial<DhcpPacket> = {}) =>
  clientRequest({ mac, ...fields, options: { messageType: MessageType.discover, ...options } });
const request = (mac: string, options: DhcpOptions = {}, fields: Partial<DhcpPacket> = {}) =>
  clientRequest({ mac, ...fields, options: { messageType: MessageType.request, ...options } });
const select = (mac: string, address: string, serverIdentifier = server) => request(mac, { serverIdentifier, requestedAddress: address });

describe('DHCPDISCOVER', () => {
  test('a plain client gets the first pool address, with network options and an offer hold', () => {
    const context = testContext();
    const decision = reply(step(context, discover(macA)));
    assert.equal(decision.result, 'offer');
    assert.equal(decision.address, '198.18.0.100');
    assert.deepEqual(decision.destination, broadcast);
    const { packet } = decision;
    assert.equal(packet.op, 2);
    assert.equal(packet.yourAddress, '198.18.0.100');
    assert.equal(packet.clientAddress, '0.0.0.0');
    assert.equal(packet.serverAddress, '0.0.0.0', 'no next server without a boot file');
    assert.equal(packet.transactionId, 0x1234abcd);
    assert.deepEqual(packet.hardwareAddress, Buffer.from([2, 0, 0, 0, 0, 0x0a]));
    assert.deepEqual(packet.options, {
      messageType: MessageType.offer,
      serverIdentifier: server,
      leaseSeconds: 3600,
      renewalSeconds: 1800,
      rebindingSeconds: 3150,
      subnetMask: '255.255.255.0',
      broadcastAddress: '198.18.0.255',
      routers: ['198.18.0.1'],
      dnsServers: ['198.18.0.53'],
    });
    assert.deepEqual(context.leases.byMac(macA), { mac: macA, address: '198.18.0.100', state: 'offered', expiresAt: now + 60_000 });
  });

  test("the offer hold keeps a second client off the first one's address", () => {
    const context = testContext({ pool: { start: '198.18.0.100', end: '198.18.0.101' } });
    assert.equal(reply(step(context, discover(macA))).address, '198.18.0.100');
    assert.equal(reply(step(context, discover(macB), now + 1)).address, '198.18.0.101');
    // Once A's hold has run out its address is free again; B's hold still stands.
    const third = reply(step(context, discover('02:00:00:00:00:0c'), now + 60_000));
    assert.equal(third.address, '198.18.0.100');
    assert.deepEqual(
      third.leaseChanges.map((c) => c.kind),
      ['upsert'],
      'nothing reclaimed',
    );
  });

  test('a reservation wins over the pool and over the requested address, and brings the hostname', () => {
    const context = testContext({ reservations: { [macA]: { address: '198.18.0.20', hostname: 'node-a' } } });
    const decision = reply(step(context, discover(macA, { requestedAddress: '198.18.0.105' })));
    assert.equal(decision.address, '198.18.0.20');
    assert.equal(decision.packet.options.hostname, 'node-a');
    assert.equal(context.leases.byMac(macA)?.hostname, 'node-a');
  });

  test('a reserved address inside the pool is never given to another client', () => {
    const context = testContext({ reservations: { [macB]: { address: '198.18.0.100' } } });
    assert.equal(reply(step(context, discover(macA))).address, '198.18.0.101');
    assert.equal(reply(step(context, discover(macA, { requestedAddress: '198.18.0.100' }))).address, '198.18.0.101');
  });

  test('the requested address (option 50) is honoured when free; the previous one comes first', () => {
    const context = testContext();
    assert.equal(reply(step(context, discover(macA, { requestedAddress: '198.18.0.107' }))).address, '198.18.0.107');
    assert.equal(reply(step(context, discover(macA, { requestedAddress: '198.18.0.108' }))).address, '198.18.0.107');
    assert.equal(reply(step(context, discover(macB, { requestedAddress: '198.18.0.107' }))).address, '198.18.0.100');
    assert.equal(reply(step(context, discover(macB, { requestedAddress: '198.18.0.10' }))).address, '198.18.0.100', 'outside the pool');
  });

  test('the server and router addresses are skipped when inside the pool', () => {
    const context = testContext({ pool: { start: '198.18.0.1', end: '198.18.0.3' }, router: '198.18.0.2' });
    assert.equal(reply(step(context, discover(macA))).address, '198.18.0.3');
  });

  test('a client with a bound lease is offered it again without shortening it', () => {
    const context = testContext();
    step(context, discover(macA));
    step(context, select(macA, '198.18.0.100'));
    const decision = reply(step(context, discover(macA), now + 1000));
    assert.equal(decision.address, '198.18.0.100');
    assert.deepEqual(decision.leaseChanges, []);
    assert.equal(context.leases.byMac(macA)?.state, 'bound');
  });

  test('a full pool: the oldest unanswered offer to another client is reclaimed; bound leases never are', () => {
    const context = testContext({ pool: { start: '198.18.0.100', end: '198.18.0.101' } });
    step(context, discover('02:00:00:00:00:01'), now);
    step(context, discover('02:00:00:00:00:02'), now + 10);
    const decision = reply(step(context, discover(macA), now + 20));
    assert.equal(decision.address, '198.18.0.100');
    assert.deepEqual(decision.leaseChanges[0], { kind: 'remove', address: '198.18.0.100' });
    assert.equal(context.leases.byMac('02:00:00:00:00:01'), undefined);
    // The client whose offer went is refused when it asks for it.
    assert.equal(reply(step(context, select('02:00:00:00:00:01', '198.18.0.100'), now + 30)).result, 'nak');
    // Bind both addresses; now nothing is free.
    step(context, select(macA, '198.18.0.100'), now + 40);
    step(context, select('02:00:00:00:00:02', '198.18.0.101'), now + 40);
    assert.equal(ignored(step(context, discover(macB), now + 50)), 'no free address in the pool 198.18.0.100-198.18.0.101');
  });

  test('no pool and no reservation: ignored', () => {
    assert.equal(ignored(step(testContext({ pool: undefined }), discover(macA))), 'no reservation for this client and no pool on 198.18.0.0/24');
  });

  test('a reserved address still leased to another client is not offered', () => {
    const context = testContext();
    step(context, discover(macB));
    step(context, select(macB, '198.18.0.100'));
    const reserved = testContext({ leases: context.leases, reservations: { [macA]: { address: '198.18.0.100' } } });
    assert.match(ignored(step(reserved, discover(macA))), /^reserved address 198\.18\.0\.100 is held by 02:00:00:00:00:0b \(bound\)/);
    // ...and the client holding it is refused at its next renewal.
    const renewal = request(macB, {}, { clientAddress: '198.18.0.100' });
    assert.equal(reply(step(reserved, renewal)).reason, '198.18.0.100 is reserved for 02:00:00:00:00:0a');
  });

  test('a reservation outside the subnet is not offered', () => {
    const context = testContext({ reservations: { [macA]: { address: '198.19.0.5' } } });
    assert.equal(ignored(step(context, discover(macA))), 'reservation 198.19.0.5 is outside 198.18.0.0/24');
  });

  test("a reservation of the server's or the router's address is not offered, nor ACKed", () => {
    for (const address of ['198.18.0.1', '198.18.0.254']) {
      const context = testContext({ router: '198.18.0.254', reservations: { [macA]: { address } } });
      assert.equal(ignored(step(context, discover(macA))), `reservation ${address} is the server's or router's address`);
      const asked = request(macA, { requestedAddress: address, serverIdentifier: '198.18.0.1' });
      assert.equal(reply(step(context, asked)).reason, `${address} is the server's or router's address`);
    }
  });
});

describe('boot options', () => {
  const fixtureRequest = (name: Parameters<typeof fixtureDhcp>[0], index = 0) =>
    decodePacket(fixtureDhcp(name).filter((d) => d.destination.port === 67)[index]!.payload);

  test('UEFI PXE (OVMF, arch 7): next server, file and 67/66, PXEClient, option 43 discovery control 8, UUID echoed', () => {
    const decision = reply(step(testContext(), fixtureRequest('ovmf-x64-uefi-pxe')));
    const { packet } = decision;
    assert.deepEqual(decision.boot, { kind: 'tftp', file: 'ipxe.efi' });
    assert.equal(packet.serverAddress, server);
    assert.equal(packet.bootFile, 'ipxe.efi');
    assert.equal(packet.broadcast, true, 'flags copied from the request');
    assert.deepEqual(decision.destination, broadcast);
    assert.equal(packet.options.bootFileName, 'ipxe.efi');
    assert.equal(packet.options.tftpServerName, server);
    assert.equal(packet.options.vendorClass, 'PXEClient');
    assert.deepEqual(packet.options.vendorSpecific, Buffer.from([6, 1, 8, 255]));
    assert.deepEqual(packet.options.clientMachineId, { type: 0, id: Buffer.alloc(16) });
    // Options follow the client's parameter request list (1 2 3 4 5 6 12 13 15 17 18 22 23 28 40 41 42 43 50 51 54 58 59 60 66 67 97 ...).
    assert.deepEqual(Object.keys(packet.options), [
      'messageType',
      'serverIdentifier',
      'subnetMask',
      'routers',
      'dnsServers',
      'broadcastAddress',
      'vendorSpecific',
      'leaseSeconds',
      'renewalSeconds',
      'rebindingSeconds',
      'vendorClass',
      'tftpServerName',
      'bootFileName',
      'clientMachineId',
    ]);
  });

  test('iPXE in a BIOS ROM (arch 0): the script URL in file and option 67, no next server', () => {
    const decision = reply(step(testContext(), fixtureRequest('qemu-bios-ipxe-rom')));
    const { packet } = decision;
    assert.equal(packet.serverAddress, '0.0.0.0');
    assert.equal(packet.bootFile, 'http://198.18.0.1:8080/boot.ipxe');
    assert.equal(packet.options.bootFileName, 'http://198.18.0.1:8080/boot.ipxe');
    assert.equal(packet.options.tftpServerName, undefined);
    assert.equal(packet.options.vendorClass, 'PXEClient', 'iPXE sends PXEClient too');
  });

  test('UEFI HTTP Boot (arch 16): URL, option 60 HTTPClient, no PXE option 43', () => {
    const { packet } = reply(step(testContext(), fixtureRequest('ovmf-x64-uefi-httpboot')));
    assert.equal(packet.bootFile, 'http://198.18.0.1:8080/ipxe.efi');
    assert.equal(packet.options.bootFileName, 'http://198.18.0.1:8080/ipxe.efi');
    assert.equal(packet.options.vendorClass, 'HTTPClient');
    assert.equal(packet.options.vendorSpecific, undefined);
    assert.deepEqual(packet.options.clientMachineId, { type: 0, id: Buffer.alloc(16) });
  });

  test('boot options are sent even when the parameter request list does not ask for them', () => {
    const pxe = discover(macA, { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0], parameterRequestList: [3, 1] });
    const { packet } = reply(step(testContext(), pxe));
    assert.deepEqual(Object.keys(packet.options).slice(0, 4), ['messageType', 'serverIdentifier', 'routers', 'subnetMask']);
    assert.equal(packet.options.bootFileName, 'undionly.kpxe');
    assert.deepEqual(packet.options.vendorSpecific, Buffer.from([6, 1, 8, 255]));
    assert.equal(packet.options.clientMachineId, undefined, 'nothing to echo');
  });

  test('the client identifier (61) is echoed in OFFER, ACK and NAK (RFC 6842)', () => {
    const context = testContext();
    const id = Buffer.from([1, 2, 0, 0, 0, 0, 0x0a]);
    assert.deepEqual(reply(step(context, discover(macA, { clientIdentifier: id }))).packet.options.clientIdentifier, id);
    assert.deepEqual(
      reply(step(context, request(macA, { clientIdentifier: id, serverIdentifier: server, requestedAddress: '198.18.0.100' }))).packet.options.clientIdentifier,
      id,
    );
    const nak = reply(step(context, request(macB, { clientIdentifier: id, requestedAddress: '198.19.0.1' })));
    assert.equal(nak.result, 'nak');
    assert.deepEqual(nak.packet.options.clientIdentifier, id);
    assert.equal(reply(step(context, discover(macB))).packet.options.clientIdentifier, undefined);
  });

  test('a URL too long for the file field goes in option 67 only', () => {
    const url = `http://198.18.0.1:8080/${'a'.repeat(120)}`;
    const context = testContext({ bootFile: () => ({ kind: 'http', url }) });
    const { packet } = reply(step(context, discover(macA, { userClass: Buffer.from('iPXE') })));
    assert.equal(packet.bootFile, '');
    assert.equal(packet.options.bootFileName, url);
  });

  test('nothing to boot: a plain reply that a PXE ROM will pass over', () => {
    const context = testContext({ bootFile: () => ({ kind: 'none', reason: 'no profile' }) });
    const { packet } = reply(step(context, fixtureRequest('ovmf-x64-uefi-pxe')));
    for (const name of ['bootFileName', 'tftpServerName', 'vendorClass', 'vendorSpecific', 'clientMachineId'] as const) {
      assert.equal(packet.options[name], undefined, name);
    }
    assert.equal(packet.bootFile, '');
    assert.equal(packet.yourAddress, '198.18.0.100');
  });
});

describe('DHCPREQUEST', () => {
  test('SELECTING our offer: ACK, bound for the lease time, broadcast', () => {
    const context = testContext({ reservations: { [macA]: { address: '198.18.0.20', hostname: 'node-a' } } });
    step(context, discover(macA));
    const decision = reply(step(context, select(macA, '198.18.0.20'), now + 500));
    assert.equal(decision.result, 'ack');
    assert.equal(decision.packet.options.messageType, MessageType.ack);
    assert.equal(decision.packet.yourAddress, '198.18.0.20');
    assert.equal(decision.packet.options.hostname, 'node-a');
    assert.deepEqual(decision.destination, broadcast);
    assert.deepEqual(context.leases.byMac(macA), {
      mac: macA,
      address: '198.18.0.20',
      state: 'bound',
      expiresAt: now + 500 + 3_600_000,
      hostname: 'node-a',
    });
  });

  test('SELECTING another server: never ACKed; our offer is withdrawn', () => {
    const context = testContext();
    step(context, discover(macA));
    const decision = step(context, select(macA, '198.18.0.100', '198.18.0.2'));
    assert.deepEqual(decision, {
      kind: 'update',
      result: 'withdraw-offer',
      facts: decision.kind === 'update' ? decision.facts : undefined,
      address: '198.18.0.100',
      reason: 'client chose server 198.18.0.2',
      leaseChanges: [{ kind: 'remove', address: '198.18.0.100' }],
    });
    assert.equal(context.leases.byMac(macA), undefined);
    // Without an offer of ours, it is simply ignored.
    assert.equal(ignored(step(context, select(macA, '198.18.0.100', '198.18.0.2'))), 'client chose server 198.18.0.2');
  });

  test('SELECTING an address another client holds: NAK, broadcast, with the reason in option 56', () => {
    const context = testContext();
    step(context, discover(macA));
    const decision = reply(step(context, select(macB, '198.18.0.100')));
    assert.equal(decision.result, 'nak');
    assert.deepEqual(decision.destination, broadcast);
    assert.deepEqual(decision.packet.options, {
      messageType: MessageType.nak,
      serverIdentifier: server,
      message: '198.18.0.100 is held by 02:00:00:00:00:0a (offered)',
    });
    assert.equal(decision.packet.yourAddress, '0.0.0.0');
    assert.equal(decision.packet.serverAddress, '0.0.0.0');
    assert.deepEqual(decision.leaseChanges, []);
  });

  test('SELECTING without a requested address: NAK', () => {
    const decision = reply(step(testContext(), request(macA, { serverIdentifier: server })));
    assert.equal(decision.reason, 'DHCPREQUEST names us but no address (option 50)');
  });

  test('INIT-REBOOT: a valid address is ACKed without a record (authoritative); a wrong one is NAKed', () => {
    const context = testContext({ reservations: { [macB]: { address: '198.18.0.20' } } });
    assert.equal(reply(step(context, request(macA, { requestedAddress: '198.18.0.104' }))).result, 'ack');
    assert.equal(context.leases.byMac(macA)?.state, 'bound');
    const cases: Array<[string, string, string]> = [
      [macA, '198.19.2.3', '198.19.2.3 is not a host address in 198.18.0.0/24'],
      [macA, '198.18.0.255', '198.18.0.255 is not a host address in 198.18.0.0/24'],
      [macA, '198.18.0.20', '198.18.0.20 is reserved for 02:00:00:00:00:0b'],
      [macA, '198.18.0.50', '198.18.0.50 is outside the pool'],
      [macA, '198.18.0.1', '198.18.0.1 is outside the pool'],
      [macB, '198.18.0.104', 'client has reserved address 198.18.0.20'],
    ];
    for (const [mac, address, reason] of cases) {
      const decision = reply(step(context, request(mac, { requestedAddress: address })));
      assert.equal(decision.result, 'nak', address);
      assert.equal(decision.reason, reason);
    }
  });

  test('RENEWING: ciaddr, unicast back to it, lease extended', () => {
    const context = testContext();
    step(context, discover(macA));
    step(context, select(macA, '198.18.0.100'));
    const later = now + 1_800_000;
    const decision = reply(step(context, request(macA, {}, { clientAddress: '198.18.0.100' }), later));
    assert.equal(decision.result, 'ack');
    assert.deepEqual(decision.destination, { address: '198.18.0.100', port: 68 });
    assert.equal(decision.packet.clientAddress, '198.18.0.100');
    assert.equal(decision.packet.yourAddress, '198.18.0.100');
    assert.equal(context.leases.byMac(macA)?.expiresAt, later + 3_600_000);
  });

  test('REBINDING for an address another client holds: NAK, broadcast (not to ciaddr)', () => {
    const context = testContext();
    step(context, discover(macA));
    step(context, select(macA, '198.18.0.100'));
    const decision = reply(step(context, request(macB, {}, { clientAddress: '198.18.0.100' })));
    assert.equal(decision.result, 'nak');
    assert.deepEqual(decision.destination, broadcast);
  });

  test('a request with nothing to go on is ignored', () => {
    assert.equal(ignored(step(testContext(), request(macA))), 'DHCPREQUEST with no server identifier, requested address or ciaddr');
  });
});

describe('relayed requests', () => {
  test('replies go to the relay at port 67; a NAK through a relay has the broadcast bit', () => {
    const context = testContext();
    const offer = reply(step(context, discover(macA, {}, { relayAddress: '198.18.0.254', hops: 1 })));
    assert.deepEqual(offer.destination, { address: '198.18.0.254', port: 67 });
    assert.equal(offer.packet.relayAddress, '198.18.0.254');
    assert.equal(offer.packet.hops, 0);
    const nak = reply(step(context, request(macB, { requestedAddress: '198.19.0.1' }, { relayAddress: '198.18.0.254' })));
    assert.equal(nak.result, 'nak');
    assert.deepEqual(nak.destination, { address: '198.18.0.254', port: 67 });
    assert.equal(nak.packet.broadcast, true);
  });

  test('a relay outside our subnet and every relay subnet is ignored', () => {
    assert.equal(
      ignored(step(testContext(), discover(macA, {}, { relayAddress: '198.19.1.1' }))),
      'relayed by 198.19.1.1, outside 198.18.0.0/24 and every relay subnet',
    );
  });

  test('giaddr naming the server itself is ignored (the reply would loop back)', () => {
    assert.equal(ignored(step(testContext(), discover(macA, {}, { relayAddress: server }))), 'giaddr is our own address 198.18.0.1');
  });
});

describe('DHCPRELEASE, DHCPDECLINE, DHCPINFORM', () => {
  function bound(context: TestContext, mac = macA): string {
    step(context, discover(mac));
    return reply(step(context, select(mac, context.leases.byMac(mac)!.address))).address!;
  }
  const release = (mac: string, address: string, serverIdentifier = server) =>
    clientRequest({ mac, clientAddress: address, options: { messageType: MessageType.release, serverIdentifier } });
  const decline = (mac: string, address: string) =>
    clientRequest({ mac, options: { messageType: MessageType.decline, serverIdentifier: server, requestedAddress: address } });
  const inform = (mac: string, address: string, options: DhcpOptions = {}) =>
    clientRequest({ mac, clientAddress: address, options: { messageType: MessageType.inform, ...options } });

  test("RELEASE frees the client's address but remembers it for the client", () => {
    const context = testContext();
    const address = bound(context);
    const decision = step(context, release(macA, address), now + 10, address);
    assert.equal(decision.kind, 'update');
    assert.equal(context.leases.byMac(macA)?.state, 'released');
    // Another client may now have it...
    assert.equal(reply(step(context, discover(macB, { requestedAddress: address }), now + 20)).address, address);
  });

  test('RELEASE of an address the client does not hold, or for another server, is ignored', () => {
    const context = testContext();
    const address = bound(context);
    assert.equal(ignored(step(context, release(macB, address), now, address)), `DHCPRELEASE of ${address}, which this client does not hold`);
    assert.equal(ignored(step(context, release(macA, address, '198.18.0.2'), now, address)), 'DHCPRELEASE for server 198.18.0.2');
    assert.equal(context.leases.byMac(macA)?.state, 'bound');
  });

  test("RELEASE naming the holder's MAC and address, sent from another address, frees nothing", () => {
    const context = testContext();
    const address = bound(context);
    assert.equal(
      ignored(step(context, release(macA, address), now + 10, '198.18.0.150')),
      `DHCPRELEASE of ${address} sent from 198.18.0.150, not from the address itself`,
    );
    assert.equal(
      ignored(step(context, release(macA, address), now + 10)),
      `DHCPRELEASE of ${address} sent from an unknown address, not from the address itself`,
    );
    assert.equal(context.leases.byMac(macA)?.state, 'bound');
  });

  test('DECLINE quarantines at most a quarter of the pool; past that an address is only taken from the client', () => {
    // A pool of 8: two quarantines at most.
    const context = testContext({ pool: { start: '198.18.0.100', end: '198.18.0.107' } });
    const macs = ['02:00:00:00:01:01', '02:00:00:00:01:02', '02:00:00:00:01:03'];
    const addresses = macs.map((mac) => bound(context, mac));
    for (const [index, mac] of macs.entries()) step(context, decline(mac, addresses[index]!));
    assert.equal(context.leases.byAddress(addresses[0]!)?.state, 'declined');
    assert.equal(context.leases.byAddress(addresses[1]!)?.state, 'declined');
    assert.equal(context.leases.byAddress(addresses[2]!), undefined, 'the third is freed, not quarantined');
    assert.equal(context.leases.byMac(macs[2]!), undefined);
  });

  test('DECLINE quarantines the address; the client gets another one', () => {
    const context = testContext();
    const address = bound(context);
    const decision = step(context, decline(macA, address));
    assert.equal(decision.kind, 'update');
    assert.deepEqual(context.leases.byAddress(address), { mac: macA, address, state: 'declined', expiresAt: now + 600_000 });
    assert.equal(reply(step(context, discover(macA))).address, '198.18.0.101');
    assert.equal(reply(step(context, discover(macB, { requestedAddress: address }))).address, '198.18.0.102');
    // After the quarantine it is given out again.
    assert.equal(reply(step(context, discover('02:00:00:00:00:0c', { requestedAddress: address }), now + 600_000)).address, address);
  });

  test('DECLINE of an address the client was not given is ignored', () => {
    const context = testContext();
    bound(context);
    assert.equal(ignored(step(context, decline(macB, '198.18.0.100'))), 'DHCPDECLINE of 198.18.0.100, which this client was not given');
  });

  test('INFORM: ACK to ciaddr with configuration but no lease time or yiaddr, boot options included', () => {
    const decision = reply(step(testContext(), inform(macA, '198.18.0.77', { vendorClass: 'PXEClient:Arch:00007:UNDI:003000', clientArch: [7] })));
    assert.equal(decision.result, 'ack');
    assert.equal(decision.address, '198.18.0.77');
    assert.deepEqual(decision.destination, { address: '198.18.0.77', port: 68 });
    assert.equal(decision.packet.yourAddress, '0.0.0.0');
    assert.equal(decision.packet.clientAddress, '198.18.0.77');
    assert.equal(decision.packet.options.leaseSeconds, undefined);
    assert.equal(decision.packet.options.renewalSeconds, undefined);
    assert.equal(decision.packet.options.bootFileName, 'ipxe.efi');
    assert.deepEqual(decision.leaseChanges, []);
  });

  test('INFORM without ciaddr or from outside the subnet is ignored', () => {
    assert.equal(ignored(step(testContext(), inform(macA, '0.0.0.0'))), 'DHCPINFORM without ciaddr');
    assert.equal(ignored(step(testContext(), inform(macA, '198.19.0.7'))), 'DHCPINFORM from 198.19.0.7, outside 198.18.0.0/24');
  });
});

describe('what is not for us', () => {
  const cases: Array<[string, DhcpPacket, string]> = [
    ['a BOOTREPLY', clientRequest({ op: 2 }), 'not a BOOTREQUEST (op 2 is for clients)'],
    ['not Ethernet', clientRequest({ hardwareType: 6 }), 'hardware type 6 with hlen 6 is not Ethernet'],
    ['a short chaddr', clientRequest({ hardwareAddress: Buffer.from([1, 2]) }), 'hardware type 1 with hlen 2 is not Ethernet'],
    ['BOOTP', clientRequest({ options: {} }), 'BOOTP request without option 53; only DHCP is served'],
    ['a DHCPOFFER from a client', clientRequest({ options: { messageType: 2 } }), 'DHCPOFFER is not a client message'],
    ['message type 13', clientRequest({ options: { messageType: 13 } }), 'DHCP13 is not a client message'],
  ];
  for (const [label, packet, reason] of cases) {
    test(`${label}: ignored`, () => assert.equal(ignored(decide(packet, testContext(), now)), reason));
  }

  test("in proxy mode a plain client is left to the network's DHCP server (proxy.test.ts has the rest)", () => {
    assert.match(ignored(decide(discover(macA), testContext({ mode: 'proxy' }), now)), /not a PXE, iPXE or HTTP Boot client/);
  });
});

describe('replyDestination (RFC 2131 section 4.1)', () => {
  const subnet = new Subnet('198.18.0.1', 24);
  const ports = { serverPort: 67, clientPort: 68 };
  const cases: Array<[string, Partial<DhcpPacket>, number, { address: string; port: number }]> = [
    ['relay', { relayAddress: '198.18.0.254', clientAddress: '198.18.0.9' }, MessageType.ack, { address: '198.18.0.254', port: 67 }],
    ['relayed NAK', { relayAddress: '198.18.0.254' }, MessageType.nak, { address: '198.18.0.254', port: 67 }],
    ['ciaddr', { clientAddress: '198.18.0.9' }, MessageType.ack, { address: '198.18.0.9', port: 68 }],
    ['NAK with ciaddr', { clientAddress: '198.18.0.9' }, MessageType.nak, broadcast],
    ['ciaddr off our link', { clientAddress: '198.19.0.9' }, MessageType.ack, broadcast],
    ['no address, broadcast bit', { broadcast: true }, MessageType.offer, broadcast],
    ['no address, no broadcast bit (no ARP entry possible)', {}, MessageType.offer, broadcast],
  ];
  for (const [label, fields, type, expected] of cases) {
    test(label, () => assert.deepEqual(replyDestination(clientRequest(fields), type, subnet, ports), expected));
  }
});

test('orderOptions: first, then the request list order, then the rest; nothing dropped', () => {
  const ordered = orderOptions(
    { messageType: 2, serverIdentifier: server },
    { leaseSeconds: 1, subnetMask: '255.0.0.0', bootFileName: 'x', vendorClass: 'PXEClient' },
    [67, 1, 250, 53],
  );
  assert.deepEqual(Object.keys(ordered), ['messageType', 'serverIdentifier', 'bootFileName', 'subnetMask', 'leaseSeconds', 'vendorClass']);
});

describe('first leases', () => {
  const renew = (mac: string, address: string) => request(mac, {}, { clientAddress: address });

  test('a new client is offered and ACKed the first lease; renewing from its address it gets the full lease time', () => {
    const context = testContext({ firstLeaseSeconds: 300 });
    const offer = reply(step(context, discover(macA)));
    assert.equal(offer.packet.options.leaseSeconds, 300);
    const ack = reply(step(context, select(macA, offer.address!)));
    assert.deepEqual([ack.packet.options.leaseSeconds, ack.packet.options.renewalSeconds, ack.packet.options.rebindingSeconds], [300, 150, 262]);
    assert.equal(context.leases.byMac(macA)?.expiresAt, now + 300_000);
    const renewed = reply(step(context, renew(macA, offer.address!), now + 150_000, offer.address));
    assert.equal(renewed.packet.options.leaseSeconds, 3600);
    assert.equal(context.leases.byMac(macA)?.expiresAt, now + 150_000 + 3_600_000);
  });

  test('a second SELECTING REQUEST, an INIT-REBOOT, or a renewal from another address gets the first lease again', () => {
    const context = testContext({ firstLeaseSeconds: 300 });
    const address = reply(step(context, discover(macA))).address!;
    step(context, select(macA, address));
    assert.equal(reply(step(context, select(macA, address), now + 1)).packet.options.leaseSeconds, 300);
    assert.equal(reply(step(context, request(macA, { requestedAddress: address }), now + 2)).packet.options.leaseSeconds, 300);
    assert.equal(reply(step(context, renew(macA, address), now + 3, '198.18.0.150')).packet.options.leaseSeconds, 300);
    assert.equal(reply(step(context, renew(macA, address), now + 4)).packet.options.leaseSeconds, 300, 'source unknown');
  });

  test('a renewal without a bound lease (a server that lost its store) is ACKed with the first lease', () => {
    const context = testContext({ firstLeaseSeconds: 300 });
    assert.equal(reply(step(context, renew(macA, '198.18.0.105'), now, '198.18.0.105')).packet.options.leaseSeconds, 300);
  });

  test('the first lease is never longer than the lease time', () => {
    const context = testContext({ firstLeaseSeconds: 7200 });
    assert.equal(reply(step(context, discover(macA))).packet.options.leaseSeconds, 3600);
  });

  test('60 made-up MACs take a pool of 51 addresses for the first lease only', () => {
    const context = testContext({ firstLeaseSeconds: 300, pool: { start: '198.18.0.100', end: '198.18.0.150' } });
    for (let i = 0; i < 60; i++) {
      const mac = `02:00:00:00:02:${i.toString(16).padStart(2, '0')}`;
      const offer = step(context, discover(mac));
      if (offer.kind === 'reply') step(context, select(mac, offer.address!));
    }
    const bound = context.leases.all().filter((lease) => lease.state === 'bound');
    assert.equal(bound.length, 51);
    assert.ok(bound.every((lease) => lease.expiresAt <= now + 300_000));
    // Five minutes on, the pool is free for the next real machine.
    context.leases.expire(now + 300_000);
    assert.equal(reply(step(context, discover(macB), now + 300_001)).result, 'offer');
  });
});

describe('--dhcp-known-only', () => {
  test('a MAC without a profile of its own is ignored quietly; one with a profile is answered', () => {
    const known = new Set([macA]);
    const context = testContext({ knownOnly: (mac) => known.has(mac) });
    assert.equal(reply(step(context, discover(macA))).result, 'offer');
    const decision = step(context, discover(macB));
    assert.deepEqual(decision.kind === 'ignore' && [decision.reason, decision.quiet], [
      'no profile of its own for this MAC or slot (--dhcp-known-only)',
      'unknown',
    ]);
    assert.equal(context.leases.byMac(macB), undefined);
  });

  test('the slot in option 82 is passed on, so a slot profile makes its machine known', () => {
    const seen: unknown[] = [];
    const context = testContext({
      knownOnly: (mac, slot) => {
        seen.push([mac, slot]);
        return slot !== undefined;
      },
      slotOf: () => undefined,
    });
    assert.equal(step(context, discover(macB)).kind, 'ignore');
    assert.deepEqual(seen, [[macB, undefined]]);
  });
});

test('otherServerShown: a direct DHCPREQUEST naming another server shows it, in full mode only; our own id, relayed requests and other types do not', () => {
  const context = testContext();
  const mac = '02:00:00:00:d0:02';
  assert.equal(otherServerShown(select(mac, '198.18.0.120', '198.18.0.2'), context), '198.18.0.2');
  assert.equal(otherServerShown(select(mac, '198.18.0.120'), context), undefined);
  assert.equal(
    otherServerShown(request(mac, { serverIdentifier: '198.18.0.2', requestedAddress: '198.18.2.120' }, { relayAddress: '198.18.2.1' }), context),
    undefined,
  );
  assert.equal(otherServerShown(discover(mac), context), undefined);
  assert.equal(otherServerShown(select(mac, '198.18.0.120', '198.18.0.2'), { ...context, mode: 'proxy' }), undefined);
});

describe('servers on one database (answersFor)', () => {
  test("a client's broadcasts are answered only by the server that answers it; a message naming a server, by the one named", () => {
    const mine = new Set([macA]);
    const context = testContext({ answersFor: (mac) => mine.has(mac) });
    const offer = reply(step(context, discover(macA)));
    assert.equal(offer.result, 'offer');
    const other = step(context, discover(macB));
    assert.deepEqual(other.kind === 'ignore' && [other.reason, other.quiet], ['another server on the database answers this client', 'peer']);
    assert.equal(context.leases.byMac(macB), undefined, 'nothing written for a client another server answers');
    // INIT-REBOOT (option 50, no server identifier) is a broadcast too.
    assert.equal(step(context, request(macB, { requestedAddress: '198.18.0.100' })).kind, 'ignore');
    // SELECTING our offer: ours to ACK, whoever answers the client's broadcasts.
    mine.clear();
    assert.equal(reply(step(context, select(macA, offer.packet.yourAddress))).result, 'ack');
    // SELECTING another server's offer: its record is the database's, maybe that server's: left alone.
    const taken = { ...context.leases.byMac(macA)!, state: 'offered' as const };
    context.leases.upsert(taken, now);
    assert.equal(ignored(step(context, select(macA, taken.address, '198.18.0.2'))), 'client chose server 198.18.0.2');
    assert.deepEqual(context.leases.byMac(macA), taken);
  });
});
