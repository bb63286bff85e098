/**
 * How many requests per second the pure path (decode, decide, apply, encode)
 * handles in this process: a number to compare between changes, with a low
 * floor that only catches an accidental slowdown by orders of magnitude.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decide } from '../../server/dhcp/decide/answer.js';
import { DhcpDecodeError } from '../../server/dhcp/wire/errors.js';
import { applyLeaseChanges } from '../../server/dhcp/leases/leases.js';
import { decodePacket, encodePacket } from '../../server/dhcp/wire/packet.js';
import { FuzzGenerator } from './fuzz-packets.js';
import { fixtureRequests, testContext } from '../support/dhcp.js';

function measure(inputs: Buffer[]): { perSecond: number; replies: number } {
  const context = testContext({ pool: { start: '198.18.0.10', end: '198.18.0.250' } });
  let replies = 0;
  const started = process.hrtime.bigint();
  let now = 1_700_000_000_000;
  for (const bytes of inputs) {
    now += 1;
    let packet;
    try {
      packet = decodePacket(bytes);
    } catch (error) {
      if (error instanceof DhcpDecodeError) continue;
      throw error;
    }
    const decision = decide(packet, context, now);
    if (decision.kind === 'ignore') continue;
    applyLeaseChanges(context.leases, decision.leaseChanges, now);
    if (decision.kind === 'reply') {
      encodePacket(decision.packet);
      replies++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { perSecond: Math.round(inputs.length / seconds), replies };
}

test('in-process throughput: firmware DISCOVERs from 200 MACs, and the fuzz mix', (t) => {
  const discovers = fixtureRequests().filter((b) => decodePacket(b).options.messageType === 1);
  const firmware = Array.from({ length: 20_000 }, (_, i) => {
    const bytes = Buffer.from(discovers[i % discovers.length]!);
    bytes.writeUInt16BE(i % 200, 32); // last two bytes of chaddr: 200 different clients
    return bytes;
  });
  const generator = new FuzzGenerator(7, fixtureRequests());
  const fuzz = Array.from({ length: 20_000 }, () => generator.next().bytes);
  const a = measure(firmware);
  const b = measure(fuzz);
  t.diagnostic(`firmware DISCOVERs: ${a.perSecond} requests/s (${a.replies} replies)`);
  t.diagnostic(`fuzz mix: ${b.perSecond} packets/s (${b.replies} replies)`);
  assert.equal(a.replies, firmware.length);
  assert.ok(a.perSecond > 1000 && b.perSecond > 1000);
});
