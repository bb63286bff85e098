import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DhcpDecodeError } from '../../server/dhcp/wire/errors.js';
import { decodePacket, encodePacket, encodingLength, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { packetArbitrary } from './arbitraries.js';
import { FuzzGenerator } from './fuzz-packets.js';
import { fixtureRequests } from '../support/dhcp.js';

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

test('arbitrary valid packets: decode(encode(p)) equals p, and the length is predicted', () => {
  fc.assert(
    fc.property(packetArbitrary, (packet) => {
      const encoded = encodePacket(packet);
      assert.equal(encoded.length, encodingLength(packet));
      assert.ok(encoded.length >= 300);
      assert.deepEqual(decodePacket(encoded), packet);
    }),
    { numRuns: runs },
  );
});
