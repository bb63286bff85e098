import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decide } from '../../server/dhcp/decide/answer.js';
import { anyAddress } from '../../server/net/ipv4.js';
import { applyLeaseChanges, holdsAddress } from '../../server/dhcp/leases/leases.js';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { assertConsistent } from './lease-store-contract.js';
import { packetArbitrary } from './arbitraries.js';
import { clientRequest, server, testContext } from '../support/dhcp.js';

const runs = Number(process.env.FC_RUNS ?? 300);
const t0 = 1_700_000_000_000;
const macs = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03', '02:00:00:00:00:04', '02:00:00:00:00:05', '02:00:00:00:00:06'];
const reservations = { '02:00:00:00:00:01': { address: '198.18.0.101', hostname: 'one' }, '02:00:00:00:00:02': { address: '198.18.0.20' } };
const owners = new Map(Object.entries(reservations).map(([mac, r]) => [r.address, mac]));
/** Addresses clients ask for: pool, reserved, infrastructure, off-subnet. */
const addresses = ['198.18.0.100', '198.18.0.101', '198.18.0.102', '198.18.0.103', '198.18.0.20', '198.18.0.1', '198.18.0.50', '198.19.0.1'];

const action = fc.record({
  mac: fc.constantFrom(...macs),
  kind: fc.constantFrom('discover', 'select', 'select-other', 'init-reboot', 'renew', 'release', 'decline', 'inform'),
  address: fc.constantFrom(...addresses),
  /** Use the address the client was last given, instead of `address`. */
  useOwn: fc.boolean(),
  advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 55_000, max: 700_000 })),
});
type Action = typeof action extends fc.Arbitrary<infer T> ? T : never;

function packetFor(a: Action, own: string | undefined): DhcpPacket {
  const address = a.useOwn && own !== undefined ? own : a.address;
  const base = { mac: a.mac, transactionId: 7 };
  switch (a.kind) {
    case 'discover':
      return clientRequest({ ...base, options: { messageType: MessageType.discover, requestedAddress: address } });
    case 'select':
    case 'select-other':
      return clientRequest({
        ...base,
        options: { messageType: MessageType.request, serverIdentifier: a.kind === 'select' ? server : '198.18.0.2', requestedAddress: address },
      });
    case 'init-reboot':
      return clientRequest({ ...base, options: { messageType: MessageType.request, requestedAddress: address } });
    case 'renew':
      return clientRequest({ ...base, clientAddress: address, options: { messageType: MessageType.request } });
    case 'release':
      return clientRequest({ ...base, clientAddress: address, options: { messageType: MessageType.release, serverIdentifier: server } });
    case 'decline':
      return clientRequest({ ...base, options: { messageType: MessageType.decline, serverIdentifier: server, requestedAddress: address } });
    case 'inform':
      return clientRequest({ ...base, clientAddress: address, options: { messageType: MessageType.inform } });
    default:
      throw new Error(`unknown action ${String(a.kind)}`);
  }
}

test('any sequence of client messages: no address is promised to two clients, reservations hold', () => {
  fc.assert(
    fc.property(fc.array(action, { maxLength: 80 }), (actions) => {
      const context = testContext({ pool: { start: '198.18.0.100', end: '198.18.0.103' }, reservations });
      /** What each client was last told it may use, and until when (from OFFERs and ACKs). */
      const promised = new Map<string, { address: string; until: number; binding: boolean }>();
      let now = t0;
      for (const a of actions) {
        now += a.advanceMs;
        const decision = decide(packetFor(a, promised.get(a.mac)?.address), context, now);
        if (decision.kind === 'ignore') continue;
        applyLeaseChanges(context.leases, decision.leaseChanges, now);
        assertConsistent(context.leases);
        if (decision.kind === 'update') {
          promised.delete(a.mac);
          continue;
        }
        if (decision.result === 'nak') {
          promised.delete(a.mac);
          continue;
        }
        const address = decision.packet.yourAddress;
        if (address === anyAddress) continue; // INFORM
        // A reservation wins; reserved addresses go to their owner only.
        const reserved = reservations[a.mac as keyof typeof reservations];
        if (reserved) assert.equal(address, reserved.address);
        const owner = owners.get(address);
        assert.ok(owner === undefined || owner === a.mac, `${address} is reserved for ${owner}, given to ${a.mac}`);
        if (!reserved) assert.match(address, /^198\.18\.0\.10[0-3]$/, 'pool addresses only');
        // Nobody else holds a live lease (ACK) on this address. An unanswered
        // offer is not binding: a full pool reclaims the oldest one.
        for (const [mac, promise] of promised) {
          if (mac !== a.mac && promise.address === address) {
            assert.ok(
              promise.until <= now || !promise.binding,
              `${address} given to ${a.mac} while leased to ${mac} until ${promise.until - t0} (now ${now - t0})`,
            );
          }
        }
        const binding = decision.result === 'ack';
        promised.set(a.mac, { address, until: now + (binding ? 3_600_000 : 60_000), binding });
        // And the store agrees: the address is held by this client now.
        const record = context.leases.byAddress(address);
        assert.ok(record && record.mac === a.mac && holdsAddress(record, now), `store does not hold ${address} for ${a.mac}`);
      }
    }),
    { numRuns: runs },
  );
});

test('decide never throws on any decodable packet, and every reply encodes', () => {
  const typed = packetArbitrary.map((packet) => ({
    ...packet,
    op: 1 as const,
    hardwareType: 1,
    hardwareAddress: Buffer.from([2, 0, 0, 0, 0, packet.transactionId & 0xff]),
  }));
  fc.assert(
    fc.property(fc.array(typed, { maxLength: 20 }), fc.integer({ min: 1, max: 8 }), (packets, type) => {
      const context = testContext();
      for (const packet of packets) {
        packet.options.messageType ??= type;
        const decision = decide(packet, context, t0);
        if (decision.kind === 'reply') decodePacket(encodePacket(decision.packet));
        if (decision.kind !== 'ignore') applyLeaseChanges(context.leases, decision.leaseChanges, t0);
      }
    }),
    { numRuns: runs },
  );
});
