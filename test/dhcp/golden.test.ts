import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { answer, type Arrival } from '../../server/dhcp/decide/answer.js';
import { type DhcpContext, type DhcpDecision } from '../../server/dhcp/decide/types.js';
import { applyLeaseChanges, MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { messageTypeName } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { Subnet } from '../../server/net/ipv4.js';
import { fixtureDhcp, fixtureNames, repoRoot, testContext, type FixtureName } from '../support/dhcp.js';

/**
 * Golden decisions: every request of every captured client (QEMU's iPXE
 * ROM and iPXE, OVMF's UEFI PXE and HTTP Boot, udhcpc, dhclient, dhcpcd)
 * is answered in full mode, in proxy mode (on port 67 and again on 4011)
 * and through a relay agent, and each reply is compared byte for byte, with
 * where it goes, to test/dhcp/golden/decisions/. A change to any answer
 * fails here and shows which request changed. After a change meant to
 * alter answers, RACKBOOT_UPDATE_GOLDEN=1 writes the files anew, for the
 * diff to be read and committed.
 */

const goldenDir = path.join(repoRoot, 'test', 'dhcp', 'golden', 'decisions');
const start = Date.parse('2026-12-01T00:00:00.000Z');

type Scenario = 'full' | 'proxy' | 'relay';

const relayAddress = '198.18.2.1';
const rackScope = { subnet: new Subnet('198.18.2.0', 24), pool: { start: '198.18.2.10', end: '198.18.2.20' }, router: '198.18.2.1', dns: ['198.18.2.53'] };

function contextFor(scenario: Scenario): DhcpContext {
  const cursors = new Map<string, number>();
  const context = testContext({
    mode: scenario === 'proxy' ? 'proxy' : 'full',
    allocationCursors: cursors,
    relayScopes: [rackScope],
    leases: new MemoryLeaseStore(),
  });
  return context;
}

/** The request as a relay agent forwards it: its address in giaddr, one hop more. */
function relayed(packet: DhcpPacket): DhcpPacket {
  return { ...packet, relayAddress, hops: packet.hops + 1 };
}

function describeDecision(decision: DhcpDecision): string[] {
  if (decision.kind === 'ignore') return [`ignored: ${decision.reason}`];
  if (decision.kind === 'update') return [`${decision.result} ${decision.address}: ${decision.reason}`];
  const { destination, packet } = decision;
  const lines = [
    `${decision.result} ${packet.yourAddress} to ${destination.address}:${destination.port}${decision.boot === undefined ? '' : ` boot ${JSON.stringify(decision.boot)}`}`,
  ];
  const bytes = encodePacket(packet).toString('hex');
  for (let i = 0; i < bytes.length; i += 96) lines.push(`  ${bytes.slice(i, i + 96)}`);
  return lines;
}

/** Every request of one capture through one scenario, in order, with the leases each answer leaves. */
function run(fixture: FixtureName, scenario: Scenario): string {
  const context = contextFor(scenario);
  const cursors = context.allocationCursors as Map<string, number>;
  const lines = [`# ${fixture}, ${scenario}`];
  const requests = fixtureDhcp(fixture).filter((datagram) => datagram.destination.port === 67);
  requests.forEach((datagram, index) => {
    const now = start + index * 1000;
    const original = decodePacket(datagram.payload);
    const packet = scenario === 'relay' ? relayed(original) : original;
    const arrivals: Arrival[] =
      scenario === 'proxy' ? [{ port: 'dhcp' }, { port: 'boot-server', source: { address: '198.18.0.77', port: 4011 } }] : [{ port: 'dhcp' }];
    for (const arrival of arrivals) {
      const decision = answer(packet, context, now, arrival);
      if (decision.kind !== 'ignore') applyLeaseChanges(context.leases as MemoryLeaseStore, decision.leaseChanges, now);
      if (decision.kind === 'reply' && decision.cursor !== undefined) cursors.set(decision.cursor.pool, decision.cursor.next);
      const mac = [...packet.hardwareAddress].map((byte) => byte.toString(16).padStart(2, '0')).join(':');
      lines.push(
        `${index + 1} ${messageTypeName(packet.options.messageType)} ${mac} on ${arrival.port}`,
        ...describeDecision(decision).map((line) => `  ${line}`),
      );
    }
  });
  return `${lines.join('\n')}\n`;
}

describe('golden decisions: captured requests in, replies out, byte for byte', () => {
  for (const fixture of fixtureNames) {
    for (const scenario of ['full', 'proxy', 'relay'] as const) {
      test(`${fixture}, ${scenario}`, async () => {
        const actual = run(fixture, scenario);
        const file = path.join(goldenDir, `${fixture}.${scenario}.txt`);
        if (process.env.RACKBOOT_UPDATE_GOLDEN === '1') {
          await mkdir(goldenDir, { recursive: true });
          await writeFile(file, actual);
        }
        const expected = await readFile(file, 'utf8').catch(() => '');
        assert.ok(expected !== '', `${file} is missing; make it with RACKBOOT_UPDATE_GOLDEN=1`);
        assert.equal(actual, expected);
        // Something was answered: a capture whose requests are all ignored would lock in nothing.
        assert.ok(scenario !== 'full' || /\n {2}(offer|ack) /.test(actual), `${fixture}: no offer or ack in full mode`);
      });
    }
  }
});
