import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decide } from '../../server/dhcp/decide/answer.js';
import { type DhcpDecision } from '../../server/dhcp/decide/types.js';
import { clientFacts } from '../../server/dhcp/decide/client-facts.js';
import { MessageType, type DhcpOptions } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { decideProxy, type ProxyArrival, type ProxyContext } from '../../server/dhcp/decide/proxy.js';
import { pxeVendorOptions } from '../../server/dhcp/wire/pxe.js';
import { clientRequest, fixtureDhcp, fixtureNames, server, testBootFile, testContext, type FixtureName } from '../support/dhcp.js';

const mac = '52:54:00:12:35:01';
const broadcast = { address: '255.255.255.255', port: 68 };
const uuid = { type: 0, id: Buffer.alloc(16, 0xab) };
const onDhcpPort: ProxyArrival = { port: 'dhcp' };

const context: ProxyContext = { serverAddress: server, prefixLength: 24, bootFile: testBootFile, serverPort: 67, clientPort: 68 };

const biosPxe: DhcpOptions = { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0], clientMachineId: uuid };
const uefiPxe: DhcpOptions = { vendorClass: 'PXEClient:Arch:00007:UNDI:003016', clientArch: [7], clientMachineId: uuid };
const ipxe: DhcpOptions = { vendorClass: 'PXEClient:Arch:00000:UNDI:002001', clientArch: [0], userClass: Buffer.from('\x04iPXE', 'latin1') };
const httpBoot: DhcpOptions = { vendorClass: 'HTTPClient:Arch:00016:UNDI:003000', clientArch: [16] };

const discover = (options: DhcpOptions, fields: Partial<DhcpPacket> = {}) =>
  clientRequest({ mac, ...fields, options: { messageType: MessageType.discover, ...options } });
const request = (options: DhcpOptions, fields: Partial<DhcpPacket> = {}) =>
  clientRequest({ mac, ...fields, options: { messageType: MessageType.request, ...options } });

/** decideProxy, and check that every reply survives the wire and hands out nothing. */
function proxy(packet: DhcpPacket, arrival: ProxyArrival = onDhcpPort): DhcpDecision {
  const decision = decideProxy(packet, context, arrival);
  if (decision.kind === 'reply') {
    const bytes = encodePacket(decision.packet);
    assert.ok(bytes.length >= 300);
    assert.deepEqual(decodePacket(bytes), decision.packet);
    assert.equal(decision.packet.yourAddress, '0.0.0.0', 'a proxy reply gives no address');
    assert.deepEqual(decision.leaseChanges, [], 'proxy mode keeps no leases');
    assert.equal(decision.address, undefined);
    for (const name of ['leaseSeconds', 'subnetMask', 'routers', 'dnsServers', 'renewalSeconds'] as const) {
      assert.equal(decision.packet.options[name], undefined, `no ${name} in a proxy reply`);
    }
  }
  return decision;
}

function reply(decision: DhcpDecision) {
  assert.equal(decision.kind, 'reply', `expected a reply, got ${JSON.stringify(decision)}`);
  return decision as Extract<DhcpDecision, { kind: 'reply' }>;
}

function ignored(decision: DhcpDecision): string {
  assert.equal(decision.kind, 'ignore', `expected ignore, got ${JSON.stringify(decision)}`);
  return (decision as Extract<DhcpDecision, { kind: 'ignore' }>).reason;
}

describe('proxyDHCP: DHCPDISCOVER on port 67 gets a ProxyDHCPOFFER', () => {
  test('BIOS PXE ROM: undionly.kpxe by TFTP, PXEClient, discovery control 8, UUID echoed, broadcast', () => {
    const offer = reply(proxy(discover(biosPxe)));
    assert.equal(offer.result, 'offer');
    assert.deepEqual(offer.destination, broadcast);
    assert.deepEqual(offer.boot, { kind: 'tftp', file: 'undionly.kpxe' });
    const { packet } = offer;
    assert.equal(packet.op, 2);
    assert.equal(packet.clientAddress, '0.0.0.0');
    assert.equal(packet.serverAddress, server, 'siaddr: next server');
    assert.equal(packet.bootFile, 'undionly.kpxe');
    assert.equal(packet.broadcast, true);
    assert.equal(packet.transactionId, 0x1234abcd);
    assert.deepEqual(packet.options, {
      messageType: MessageType.offer,
      serverIdentifier: server,
      tftpServerName: server,
      bootFileName: 'undionly.kpxe',
      vendorClass: 'PXEClient',
      vendorSpecific: pxeVendorOptions(),
      clientMachineId: uuid,
    });
  });

  test('UEFI PXE: ipxe.efi, siaddr set and no option 43, so the firmware asks again on port 4011', () => {
    const { packet, boot } = reply(proxy(discover(uefiPxe)));
    assert.deepEqual(boot, { kind: 'tftp', file: 'ipxe.efi' });
    assert.equal(packet.serverAddress, server);
    assert.equal(packet.bootFile, 'ipxe.efi');
    assert.equal(packet.options.vendorClass, 'PXEClient');
    assert.equal(packet.options.vendorSpecific, undefined);
    assert.deepEqual(packet.options.clientMachineId, uuid);
  });

  test('iPXE: boot.ipxe by URL with siaddr and option 67, so it needs no port-4011 round', () => {
    const { packet, boot } = reply(proxy(discover(ipxe)));
    assert.deepEqual(boot, { kind: 'http', url: 'http://198.18.0.1:8080/boot.ipxe' });
    assert.equal(packet.serverAddress, server, 'iPXE uses a proxy offer directly only with siaddr and a boot file');
    assert.equal(packet.options.bootFileName, 'http://198.18.0.1:8080/boot.ipxe');
    assert.equal(packet.bootFile, 'http://198.18.0.1:8080/boot.ipxe');
    assert.equal(packet.options.vendorClass, 'PXEClient');
    assert.deepEqual(packet.options.vendorSpecific, pxeVendorOptions());
    assert.equal(packet.options.tftpServerName, undefined);
  });

  test('iPXE without option 60 (only its option 175) still gets "PXEClient": the marker of a proxy offer', () => {
    const { packet } = reply(proxy(discover({ ipxeEncapsulated: Buffer.from([0x13, 0x01, 0x01]) })));
    assert.equal(packet.options.vendorClass, 'PXEClient');
    assert.equal(packet.options.bootFileName, 'http://198.18.0.1:8080/boot.ipxe');
  });

  test('UEFI HTTP Boot: "HTTPClient" and the URL of ipxe.efi, no PXE options', () => {
    const { packet, boot } = reply(proxy(discover(httpBoot)));
    assert.deepEqual(boot, { kind: 'http', url: 'http://198.18.0.1:8080/ipxe.efi' });
    assert.equal(packet.options.vendorClass, 'HTTPClient');
    assert.equal(packet.options.bootFileName, 'http://198.18.0.1:8080/ipxe.efi');
    assert.equal(packet.options.vendorSpecific, undefined);
  });

  test('the client identifier is echoed (RFC 6842) and the parameter request list orders the options', () => {
    const clientIdentifier = Buffer.from([1, 0x52, 0x54, 0, 0x12, 0x35, 1]);
    const { packet } = reply(proxy(discover({ ...biosPxe, clientIdentifier, parameterRequestList: [67, 60, 43] })));
    assert.deepEqual(packet.options.clientIdentifier, clientIdentifier);
    assert.deepEqual(Object.keys(packet.options).slice(0, 5), ['messageType', 'serverIdentifier', 'bootFileName', 'vendorClass', 'vendorSpecific']);
  });

  test('through a relay: to giaddr on the server port', () => {
    const offer = reply(proxy(discover(biosPxe, { relayAddress: '198.18.0.254' })));
    assert.deepEqual(offer.destination, { address: '198.18.0.254', port: 67 });
    assert.equal(offer.packet.relayAddress, '198.18.0.254');
  });

  test('a boot file name too long for the file field goes in option 67 only', () => {
    const long = `http://198.18.0.1:8080/${'x'.repeat(200)}`;
    const decision = decideProxy(discover(ipxe), { ...context, bootFile: () => ({ kind: 'http', url: long }) }, onDhcpPort);
    const { packet } = reply(decision);
    assert.equal(packet.bootFile, '');
    assert.equal(packet.options.bootFileName, long);
  });
});

describe('proxyDHCP: what it leaves alone', () => {
  const cases: Array<[string, DhcpPacket, ProxyArrival, string | RegExp]> = [
    ['a plain DHCP client', discover({ hostname: 'laptop' }), onDhcpPort, /not a PXE, iPXE or HTTP Boot client/],
    ['a plain client on port 4011', request({}, { clientAddress: '198.18.0.120' }), { port: 'boot-server' }, /not a PXE, iPXE or HTTP Boot client/],
    ['a BOOTREPLY', clientRequest({ op: 2 }), onDhcpPort, 'not a BOOTREQUEST (op 2 is for clients)'],
    ['BOOTP', clientRequest({ options: {} }), onDhcpPort, 'BOOTP request without option 53; only DHCP is served'],
    ['not Ethernet', clientRequest({ hardwareType: 6 }), onDhcpPort, 'hardware type 6 with hlen 6 is not Ethernet'],
    [
      'a relay outside our subnet',
      discover(biosPxe, { relayAddress: '198.19.0.1' }),
      onDhcpPort,
      'relayed by 198.19.0.1, outside 198.18.0.0/24 and every relay subnet',
    ],
    [
      "the DHCPREQUEST that selects the address server's offer",
      request({ ...ipxe, serverIdentifier: '198.18.0.2', requestedAddress: '198.18.0.120' }),
      onDhcpPort,
      /^DHCPREQUEST for server 198\.18\.0\.2; boot information went in the proxy offer/,
    ],
    [
      'a DHCPREQUEST without server identifier (renewing, rebooting)',
      request({ ...biosPxe, requestedAddress: '198.18.0.120' }),
      onDhcpPort,
      'DHCPREQUEST without a server identifier is for the address server',
    ],
    [
      'DHCPRELEASE',
      clientRequest({ mac, clientAddress: '198.18.0.120', options: { messageType: MessageType.release, ...biosPxe } }),
      onDhcpPort,
      'DHCPRELEASE is not answered in proxy mode',
    ],
    ['DHCPDECLINE', clientRequest({ mac, options: { messageType: MessageType.decline, ...biosPxe } }), onDhcpPort, 'DHCPDECLINE is not answered in proxy mode'],
    [
      'DHCPDISCOVER on port 4011',
      discover(uefiPxe),
      { port: 'boot-server', source: { address: '198.18.0.120', port: 4011 } },
      'DHCPDISCOVER on port 4011 (only DHCPREQUEST is answered there)',
    ],
    [
      'a port-4011 request naming another server',
      request({ ...uefiPxe, serverIdentifier: '198.18.0.9' }, { clientAddress: '198.18.0.120' }),
      { port: 'boot-server', source: { address: '198.18.0.120', port: 4011 } },
      'port 4011 request for server 198.18.0.9',
    ],
    ['a port-4011 request with nowhere to reply', request(uefiPxe), { port: 'boot-server' }, 'port 4011 request without ciaddr or a source address'],
    [
      'a port-4011 request from outside our subnet',
      request(uefiPxe, { clientAddress: '198.19.0.5' }),
      { port: 'boot-server', source: { address: '198.19.0.5', port: 4011 } },
      'port 4011 request from 198.19.0.5, outside 198.18.0.0/24',
    ],
    ['32-bit UEFI PXE (nothing to boot)', discover({ vendorClass: 'PXEClient:Arch:00006:UNDI:003016', clientArch: [6] }), onDhcpPort, /client architecture 6/],
  ];
  for (const [label, packet, arrival, reason] of cases) {
    test(`${label}: ignored`, () => {
      const why = ignored(decideProxy(packet, { ...context, bootFile: (facts) => testBootFileWithArch(facts) }, arrival));
      if (typeof reason === 'string') assert.equal(why, reason);
      else assert.match(why, reason);
    });
  }
});

/** The test boot table, plus chooseBootFile's refusal of architectures other than BIOS and x64 UEFI. */
function testBootFileWithArch(facts: Parameters<typeof testBootFile>[0]) {
  if (facts.isPxe && !facts.isIpxe && facts.arch !== undefined && ![0, 7, 9].includes(facts.arch)) {
    return { kind: 'none' as const, reason: `client architecture ${facts.arch} is not supported (BIOS x86 0, UEFI x64 7 or 9)` };
  }
  return testBootFile(facts);
}

describe('proxyDHCP: DHCPREQUEST on port 4011 gets the ACK', () => {
  test('UEFI PXE: ACK back to its address and port 4011, ciaddr kept, the same boot file, no option 43', () => {
    const source = { address: '198.18.0.120', port: 4011 };
    const ack = reply(proxy(request(uefiPxe, { clientAddress: '198.18.0.120' }), { port: 'boot-server', source }));
    assert.equal(ack.result, 'ack');
    assert.deepEqual(ack.destination, source);
    const { packet } = ack;
    assert.equal(packet.clientAddress, '198.18.0.120');
    assert.equal(packet.serverAddress, server);
    assert.equal(packet.bootFile, 'ipxe.efi');
    assert.deepEqual(packet.options, {
      messageType: MessageType.ack,
      serverIdentifier: server,
      tftpServerName: server,
      bootFileName: 'ipxe.efi',
      vendorClass: 'PXEClient',
      clientMachineId: uuid,
    });
  });

  test("iPXE's ProxyDHCPREQUEST (from port 68, naming us): ACK to port 68 with boot.ipxe", () => {
    const source = { address: '198.18.0.121', port: 68 };
    const ack = reply(proxy(request({ ...ipxe, serverIdentifier: server }, { clientAddress: '198.18.0.121' }), { port: 'boot-server', source }));
    assert.deepEqual(ack.destination, source);
    assert.equal(ack.packet.options.bootFileName, 'http://198.18.0.1:8080/boot.ipxe');
  });

  test('without a source address the ACK goes to ciaddr on the client port', () => {
    const ack = reply(proxy(request(uefiPxe, { clientAddress: '198.18.0.122' }), { port: 'boot-server' }));
    assert.deepEqual(ack.destination, { address: '198.18.0.122', port: 68 });
  });

  test('the boot file is the same one decision as in the offer', () => {
    for (const options of [biosPxe, uefiPxe, ipxe, httpBoot]) {
      const offer = reply(proxy(discover(options)));
      const ack = reply(proxy(request(options, { clientAddress: '198.18.0.123' }), { port: 'boot-server', source: { address: '198.18.0.123', port: 4011 } }));
      assert.deepEqual(ack.boot, offer.boot);
      assert.equal(ack.packet.options.bootFileName, offer.packet.options.bootFileName);
      assert.deepEqual(ack.boot, testBootFile(clientFacts(discover(options))));
    }
  });
});

describe('proxyDHCP: decide() in proxy mode', () => {
  test('delegates to decideProxy for packets on port 67, and writes no leases', () => {
    const full = testContext({ mode: 'proxy' });
    const offer = reply(decide(discover(biosPxe), full, 0));
    assert.equal(offer.packet.yourAddress, '0.0.0.0');
    assert.deepEqual(offer.leaseChanges, []);
    assert.match(ignored(decide(discover({}), full, 0)), /not a PXE, iPXE or HTTP Boot client/);
    assert.deepEqual(full.leases.all(), []);
  });
});

describe('proxyDHCP against packets captured from real firmware', () => {
  const firmware: Partial<Record<FixtureName, { vendorClass: string; optionFortyThree: boolean }>> = {
    'qemu-bios-ipxe-rom': { vendorClass: 'PXEClient', optionFortyThree: true },
    'ovmf-x64-uefi-pxe': { vendorClass: 'PXEClient', optionFortyThree: false },
    'ovmf-x64-uefi-httpboot': { vendorClass: 'HTTPClient', optionFortyThree: false },
  };
  for (const name of fixtureNames) {
    const expected = firmware[name];
    if (expected === undefined) {
      test(`${name}: a plain DHCP client, every packet left to the address server`, () => {
        const requests = fixtureDhcp(name)
          .filter((d) => d.destination.port === 67)
          .map((d) => decodePacket(d.payload));
        assert.ok(requests.length > 0);
        for (const packet of requests) {
          assert.match(ignored(proxy(packet)), /not a PXE, iPXE or HTTP Boot client/);
          assert.match(ignored(proxy(packet, { port: 'boot-server', source: { address: '198.18.0.130', port: 68 } })), /not a PXE, iPXE or HTTP Boot client/);
        }
      });
      continue;
    }
    test(`${name}: the first DISCOVER gets a proxy offer; REQUESTs on 67 are left to the address server; on 4011 they get the ACK`, () => {
      const requests = fixtureDhcp(name)
        .filter((d) => d.destination.port === 67)
        .map((d) => decodePacket(d.payload));
      const discovers = requests.filter((p) => p.options.messageType === MessageType.discover);
      assert.ok(discovers.length > 0, `${name} has a DISCOVER`);
      const offer = reply(proxy(discovers[0]!));
      assert.equal(offer.packet.options.vendorClass, expected.vendorClass);
      assert.equal(offer.packet.options.vendorSpecific !== undefined, expected.optionFortyThree);
      assert.equal(offer.packet.serverAddress, server);
      assert.deepEqual(offer.boot, testBootFile(clientFacts(discovers[0]!)));
      assert.deepEqual(offer.destination, broadcast);
      for (const packet of requests.filter((p) => p.options.messageType === MessageType.request)) {
        assert.equal(proxy(packet).kind, 'ignore');
        const source = { address: '198.18.0.130', port: 4011 };
        const ack = reply(proxy({ ...packet, clientAddress: '198.18.0.130' }, { port: 'boot-server', source }));
        assert.deepEqual(ack.destination, source);
        assert.deepEqual(ack.boot, testBootFile(clientFacts(packet)));
      }
    });
  }
});

test('--dhcp-known-only in proxy mode: a PXE client without a profile gets no proxy offer, on port 67 or 4011', () => {
  const known = { ...context, knownOnly: (candidate: string) => candidate === mac };
  assert.equal(decideProxy(discover(biosPxe), known, onDhcpPort).kind, 'reply');
  const stranger = clientRequest({ mac: '52:54:00:12:35:02', options: { messageType: MessageType.discover, ...biosPxe } });
  for (const arrival of [onDhcpPort, { port: 'boot-server', source: { address: '198.18.0.50', port: 4011 } }] as const) {
    const decision = decideProxy(stranger, known, arrival);
    assert.ok(decision.kind === 'ignore' && decision.quiet === 'unknown', JSON.stringify(decision));
  }
});
