/** fast-check arbitraries for DHCP values (loaded as a test file by the runner too; it defines no tests). */
import fc from 'fast-check';
import { typedOptionName, type DhcpOptions } from '../../server/dhcp/wire/options.js';
import type { DhcpPacket } from '../../server/dhcp/wire/packet.js';

const ipv4 = fc.ipV4();
const bytes = (min = 0, max = 300) => fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
/** latin1 text; never ends with NUL (text options drop trailing NULs on reading). */
const text = (max = 300) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a).toString('latin1').replace(/\0+$/, ''));
/** A header string field: latin1 without NUL. */
const fieldText = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a.filter((b) => b !== 0)).toString('latin1'));
const u32 = fc.integer({ min: 0, max: 0xffffffff });

const options: fc.Arbitrary<DhcpOptions> = fc.record(
  {
    subnetMask: ipv4,
    routers: fc.array(ipv4, { minLength: 1, maxLength: 70 }),
    dnsServers: fc.array(ipv4, { minLength: 1, maxLength: 5 }),
    hostname: text(),
    domainName: text(40),
    broadcastAddress: ipv4,
    vendorSpecific: bytes(),
    requestedAddress: ipv4,
    leaseSeconds: u32,
    messageType: fc.integer({ min: 0, max: 255 }),
    serverIdentifier: ipv4,
    parameterRequestList: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 300 }),
    message: text(),
    maxMessageSize: fc.integer({ min: 0, max: 0xffff }),
    renewalSeconds: u32,
    rebindingSeconds: u32,
    vendorClass: text(),
    clientIdentifier: bytes(2),
    tftpServerName: text(),
    bootFileName: text(600),
    userClass: bytes(),
    clientArch: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 1, maxLength: 4 }),
    networkInterfaceId: fc.record(
      { type: fc.integer({ min: 0, max: 255 }), major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }) },
      { noNullPrototype: true },
    ),
    clientMachineId: fc.record({ type: fc.integer({ min: 0, max: 255 }), id: bytes(16, 16) }, { noNullPrototype: true }),
    ipxeEncapsulated: bytes(),
  },
  { requiredKeys: [], noNullPrototype: true },
);

const rawOptions = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 254 }), bytes(0, 400)), { maxLength: 5 })
  .map((entries) => new Map(entries.filter(([code]) => code !== 52 && typedOptionName(code) === undefined)));

/** Any packet encodePacket accepts, in the shape decodePacket returns. */
export const packetArbitrary: fc.Arbitrary<DhcpPacket> = fc
  .record(
    {
      op: fc.constantFrom(1 as const, 2 as const),
      hardwareType: fc.integer({ min: 0, max: 255 }),
      hardwareAddress: bytes(0, 16),
      hops: fc.integer({ min: 0, max: 255 }),
      transactionId: u32,
      secondsElapsed: fc.integer({ min: 0, max: 0xffff }),
      broadcast: fc.boolean(),
      clientAddress: ipv4,
      yourAddress: ipv4,
      serverAddress: ipv4,
      relayAddress: ipv4,
      serverName: fieldText(64),
      bootFile: fieldText(128),
      options,
      rawOptions,
    },
    { noNullPrototype: true },
  )
  .map(({ rawOptions: raw, ...packet }) => (raw.size > 0 ? { ...packet, rawOptions: raw } : packet));
