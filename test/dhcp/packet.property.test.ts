import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DhcpDecodeError } from '../../server/dhcp/errors.js';
import { typedOptionName, type DhcpOptions } from '../../server/dhcp/options.js';
import { decodePacket, encodePacket, encodingLength, type DhcpPacket } from '../../server/dhcp/packet.js';
import { FuzzGenerator } from './fuzz-packets.js';
import { fixtureRequests } from './support.js';

const runs = Number(process.env.FC_RUNS ?? 2000);

/** decodePacket either returns a packet or throws DhcpDecodeError; never anything else. */
function decodeOrReason(bytes: Buffer): DhcpPacket | DhcpDecodeError {
  try {
    return decodePacket(bytes);
  } catch (error) {
    if (error instanceof DhcpDecodeError) return error;
    throw error;
  }
}

/** A decoded packet re-encodes, and decoding that gives the same packet. */
function assertStable(packet: DhcpPacket): void {
  const bytes = encodePacket(packet);
  assert.equal(bytes.length, encodingLength(packet));
  assert.deepEqual(decodePacket(bytes), packet);
}

test('random bytes: decode returns a packet or a DhcpDecodeError, and what decodes is stable', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 800 }), (raw) => {
      const result = decodeOrReason(Buffer.from(raw));
      if (!(result instanceof DhcpDecodeError)) assertStable(result);
    }),
    { numRuns: runs },
  );
});

test('random bytes after a valid header and cookie: the same', () => {
  const header = fixtureRequests()[0]!.subarray(0, 240);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (tail) => {
      const result = decodeOrReason(Buffer.concat([header, Buffer.from(tail)]));
      if (!(result instanceof DhcpDecodeError)) assertStable(result);
    }),
    { numRuns: runs },
  );
});

test('captured packets with bytes changed or cut: the same', () => {
  const samples = fixtureRequests();
  fc.assert(
    fc.property(
      fc.nat(samples.length - 1),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 10 }),
      fc.option(fc.nat()),
      (index, edits, cut) => {
        const bytes = Buffer.from(samples[index]!);
        for (const [at, value] of edits) bytes[at % bytes.length] = value;
        const result = decodeOrReason(cut === null ? bytes : bytes.subarray(0, cut % bytes.length));
        if (!(result instanceof DhcpDecodeError)) assertStable(result);
      },
    ),
    { numRuns: runs },
  );
});

test('the seeded fuzz generator used by the live flood: the same, 20,000 cases', () => {
  const generator = new FuzzGenerator(0xdec0de, fixtureRequests());
  for (let i = 0; i < 20_000; i++) {
    const result = decodeOrReason(generator.next().bytes);
    if (!(result instanceof DhcpDecodeError)) assertStable(result);
  }
});

// --- arbitrary valid packets ---------------------------------------------

const ipv4 = fc.ipV4();
const bytes = (min = 0, max = 300) => fc.uint8Array({ minLength: min, maxLength: max }).map((a) => Buffer.from(a));
/** latin1 text; never ends with NUL (text options drop trailing NULs on reading). */
const text = (max = 300) =>
  fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a).toString('latin1').replace(/\0+$/, ''));
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
    networkInterfaceId: fc.record({ type: fc.integer({ min: 0, max: 255 }), major: fc.integer({ min: 0, max: 255 }), minor: fc.integer({ min: 0, max: 255 }) }, { noNullPrototype: true }),
    clientMachineId: fc.record({ type: fc.integer({ min: 0, max: 255 }), id: bytes(16, 16) }, { noNullPrototype: true }),
    ipxeEncapsulated: bytes(),
  },
  { requiredKeys: [], noNullPrototype: true },
);

const rawOptions = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 254 }), bytes(0, 400)), { maxLength: 5 })
  .map((entries) => new Map(entries.filter(([code]) => code !== 52 && typedOptionName(code) === undefined)));

const packets: fc.Arbitrary<DhcpPacket> = fc
  .record({
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
  }, { noNullPrototype: true })
  .map(({ rawOptions: raw, ...packet }) => (raw.size > 0 ? { ...packet, rawOptions: raw } : packet));

test('arbitrary valid packets: decode(encode(p)) equals p, and the length is predicted', () => {
  fc.assert(
    fc.property(packets, (packet) => {
      const encoded = encodePacket(packet);
      assert.equal(encoded.length, encodingLength(packet));
      assert.ok(encoded.length >= 300);
      assert.deepEqual(decodePacket(encoded), packet);
    }),
    { numRuns: runs },
  );
});

export { packets as packetArbitrary };
