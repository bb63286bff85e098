/**
 * decide() with slot profiles (relay: circuitId, DHCP option 82), fed by a
 * real ProfileDirectory and MemorySlotSightings; `step` plays the server
 * shell: it applies the lease changes and records the slot of each offer
 * and ack, as DhcpServer does.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { pino } from 'pino';
import { decide } from '../../server/dhcp/decide/answer.js';
import { type DhcpDecision, type Scope } from '../../server/dhcp/decide/types.js';
import { applyLeaseChanges } from '../../server/dhcp/leases/leases.js';
import { MessageType } from '../../server/dhcp/wire/options.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { relayAgentInformation } from '../../server/dhcp/wire/relay-agent.js';
import { Subnet } from '../../server/net/ipv4.js';
import { MemorySlotSightings } from '../../server/profiles/sightings.js';
import { ProfileDirectory } from '../../server/profiles/store.js';
import { clientRequest, server, testContext, type TestContext } from '../support/dhcp.js';

const now = 1_700_000_000_000;
const relay = '198.18.2.1';
const rack2: Scope = { subnet: new Subnet('198.18.2.0', 24), pool: { start: '198.18.2.76', end: '198.18.2.78' }, router: relay, dns: [] };
/** Option 82 as ISC dhcrelay -a sends it from interface r1: circuit-id (1) "r1". */
const fromR1 = Buffer.from([1, 2, ...Buffer.from('r1')]);
const fromR2 = Buffer.from([1, 2, ...Buffer.from('r2')]);
const ownDhcpMac = '02:00:00:00:0a:0a';
const ownStaticMac = '02:00:00:00:0b:0b';
const slotAddress = '198.18.2.77';

let dir: string;
let profiles: ProfileDirectory;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rackboot-slot-decide-'));
  await writeFile(join(dir, 'default.yaml'), 'hostname: node-{mac}\n');
  await writeFile(
    join(dir, 'rack2-r1.yaml'),
    `hostname: rack2-r1\nrelay:\n  circuitId: "r1"\nnetwork:\n  mode: static\n  address: ${slotAddress}/24\n  gateway: 198.18.2.1\n`,
  );
  await writeFile(join(dir, 'own-dhcp.yaml'), `mac: ${ownDhcpMac}\nhostname: own-dhcp\n`);
  await writeFile(
    join(dir, 'own-static.yaml'),
    `mac: ${ownStaticMac}\nhostname: own-static\nnetwork:\n  mode: static\n  address: 198.18.2.50/24\n  gateway: 198.18.2.1\n`,
  );
  profiles = await ProfileDirectory.open(dir, pino({ level: 'silent' }));
  assert.deepEqual(profiles.errors(), []);
});

after(async () => {
  profiles?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function slotContext(): { context: TestContext; sightings: MemorySlotSightings } {
  const sightings = new MemorySlotSightings();
  const context = testContext({
    relayScopes: [rack2],
    reservationFor: (mac, slot) => profiles.reservationFor(mac, slot),
    reservationOwner: (address) => profiles.reservationOwner(address),
    slotOf: (mac) => sightings.slotOf(mac),
  });
  return { context, sightings };
}

function step(state: { context: TestContext; sightings: MemorySlotSightings }, packet: DhcpPacket): DhcpDecision {
  const decision = decide(packet, state.context, now);
  if (decision.kind !== 'ignore') applyLeaseChanges(state.context.leases, decision.leaseChanges, now);
  if (decision.kind === 'reply') {
    if (decision.slot !== undefined) state.sightings.record(decision.facts.mac, decision.slot);
    assert.deepEqual(decodePacket(encodePacket(decision.packet)), decision.packet, 'survives the wire');
  }
  return decision;
}

function relayed(mac: string, type: number, agent: Buffer | undefined, options = {}): DhcpPacket {
  const rawOptions = agent === undefined ? {} : { rawOptions: new Map([[82, agent]]) };
  return clientRequest({ mac, relayAddress: relay, hops: 1, ...rawOptions, options: { messageType: type, ...options } });
}

function bind(state: ReturnType<typeof slotContext>, mac: string, agent: Buffer | undefined): DhcpDecision {
  const offer = step(state, relayed(mac, MessageType.discover, agent));
  assert.ok(offer.kind === 'reply' && offer.address !== undefined, JSON.stringify(offer));
  return step(state, relayed(mac, MessageType.request, agent, { serverIdentifier: server, requestedAddress: offer.address }));
}

const holders = (context: TestContext, address: string) =>
  context.leases
    .all()
    .filter((lease) => lease.address === address)
    .map((lease) => [lease.mac, lease.state]);

describe('option 82 sub-options', () => {
  test('circuit-id and remote-id are read as hex; a truncated option is reported, not thrown', () => {
    const packet = (agent: Buffer) => clientRequest({ rawOptions: new Map([[82, agent]]) });
    assert.deepEqual(relayAgentInformation(clientRequest()), { kind: 'none' });
    assert.deepEqual(relayAgentInformation(packet(Buffer.from([2, 2, 0xab, 0xcd, 1, 2, 0x72, 0x31]))), {
      kind: 'slot',
      slot: { circuitId: '7231', remoteId: 'abcd' },
    });
    assert.deepEqual(relayAgentInformation(packet(Buffer.from([2, 1, 9]))), { kind: 'none' }, 'a remote-id alone names no port');
    assert.deepEqual(relayAgentInformation(packet(Buffer.from([1, 5, 0x72]))), {
      kind: 'malformed',
      reason: 'option 82 sub-option 1 at byte 0 has length 5, but only 1 bytes follow',
    });
    assert.deepEqual(relayAgentInformation(packet(Buffer.from([1, 2, 0x72, 0x31, 2]))), {
      kind: 'malformed',
      reason: 'option 82 sub-option 2 at byte 4 has no length byte',
    });
  });
});

test('option 82 property: any bytes give none, a slot or a reason, never an exception; well-formed sub-options read back', () => {
  const packet = (agent: Uint8Array) => clientRequest({ rawOptions: new Map([[82, Buffer.from(agent)]]) });
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 255 }), (bytes) => {
      const information = relayAgentInformation(packet(bytes));
      assert.ok(['none', 'slot', 'malformed'].includes(information.kind));
    }),
    { numRuns: 2000 },
  );
  const subOption = fc.record({ code: fc.integer({ min: 0, max: 255 }), value: fc.uint8Array({ minLength: 1, maxLength: 40 }) });
  fc.assert(
    fc.property(fc.array(subOption, { maxLength: 6 }), (subOptions) => {
      const bytes = Buffer.concat(subOptions.map(({ code, value }) => Buffer.from([code, value.length, ...value])));
      const first = (code: number) => subOptions.find((option) => option.code === code);
      const circuit = first(1);
      const remote = first(2);
      const want =
        circuit === undefined
          ? { kind: 'none' }
          : {
              kind: 'slot',
              slot: { circuitId: Buffer.from(circuit.value).toString('hex'), ...(remote ? { remoteId: Buffer.from(remote.value).toString('hex') } : {}) },
            };
      assert.deepEqual(relayAgentInformation(packet(bytes)), want);
    }),
    { numRuns: 1000 },
  );
});

describe('decide() with slot profiles', () => {
  test("any MAC relayed from the slot gets the slot profile's address and hostname, and is recorded there", () => {
    const state = slotContext();
    const mac = '02:00:00:00:02:01';
    const offer = step(state, relayed(mac, MessageType.discover, fromR1));
    assert.ok(offer.kind === 'reply');
    assert.equal(offer.address, slotAddress);
    assert.equal(offer.packet.options.hostname, 'rack2-r1');
    assert.deepEqual(offer.slot, { circuitId: '7231' });
    const ack = step(state, relayed(mac, MessageType.request, fromR1, { serverIdentifier: server, requestedAddress: slotAddress }));
    assert.ok(ack.kind === 'reply' && ack.result === 'ack', JSON.stringify(ack));
    assert.equal(ack.packet.options.hostname, 'rack2-r1');
    assert.deepEqual(holders(state.context, slotAddress), [[mac, 'bound']]);
    assert.deepEqual(state.sightings.slotOf(mac), { circuitId: '7231' });
    assert.equal(state.context.leases.byMac(mac)?.hostname, 'rack2-r1');
  });

  test('the slot is remembered for requests without option 82 (a relay that strips it, a renewal)', () => {
    const state = slotContext();
    const mac = '02:00:00:00:02:02';
    bind(state, mac, fromR1);
    const renewal = step(state, relayed(mac, MessageType.request, undefined, { requestedAddress: slotAddress }));
    assert.ok(renewal.kind === 'reply' && renewal.result === 'ack', JSON.stringify(renewal));
    assert.equal(renewal.address, slotAddress);
    assert.equal(renewal.slot, undefined, 'nothing new to record');
  });

  test("a MAC's own profile wins over the slot's: dhcp gets the pool, static its own address", () => {
    const state = slotContext();
    const pool = bind(state, ownDhcpMac, fromR1);
    assert.ok(pool.kind === 'reply' && pool.result === 'ack');
    assert.equal(pool.address, '198.18.2.76');
    assert.equal(pool.packet.options.hostname, undefined);
    const own = bind(state, ownStaticMac, fromR1);
    assert.ok(own.kind === 'reply' && own.result === 'ack');
    assert.equal(own.address, '198.18.2.50');
    assert.equal(own.packet.options.hostname, 'own-static');
  });

  test("the pool never hands out a slot's address, and a client outside the slot asking for it is NAKed", () => {
    const state = slotContext();
    assert.equal((bind(state, '02:00:00:00:03:01', fromR2) as { address?: string }).address, '198.18.2.76');
    assert.equal((bind(state, '02:00:00:00:03:02', undefined) as { address?: string }).address, '198.18.2.78', '.77 is skipped');
    const asks = step(state, relayed('02:00:00:00:03:03', MessageType.request, fromR2, { requestedAddress: slotAddress }));
    assert.ok(asks.kind === 'reply' && asks.result === 'nak');
    assert.equal(asks.reason, '198.18.2.77 is reserved for slot circuit-id "r1"');
  });

  test("a machine swapped in the slot gets its address; the old machine's lease is freed and its renewal NAKed", () => {
    const state = slotContext();
    const oldMac = '02:00:00:00:04:01';
    const newMac = '02:00:00:00:04:02';
    bind(state, oldMac, fromR1);
    assert.deepEqual(holders(state.context, slotAddress), [[oldMac, 'bound']]);

    const offer = step(state, relayed(newMac, MessageType.discover, fromR1));
    assert.ok(offer.kind === 'reply' && offer.result === 'offer', JSON.stringify(offer));
    assert.equal(offer.address, slotAddress);
    assert.equal(offer.note, `198.18.2.77 freed from ${oldMac} (bound): ${newMac} is now in slot circuit-id "r1"`);
    assert.deepEqual(offer.leaseChanges[0], { kind: 'remove', address: slotAddress });
    assert.deepEqual(holders(state.context, slotAddress), [[newMac, 'offered']], 'never two MACs on one address');
    assert.equal(state.sightings.macAt({ circuitId: '7231' }), newMac);
    assert.equal(state.sightings.slotOf(oldMac), undefined);

    const ack = step(state, relayed(newMac, MessageType.request, fromR1, { serverIdentifier: server, requestedAddress: slotAddress }));
    assert.ok(ack.kind === 'reply' && ack.result === 'ack');
    assert.deepEqual(holders(state.context, slotAddress), [[newMac, 'bound']]);

    // The old machine, wherever it is now, renews without option 82: it is in no slot, and the address is the slot's.
    const renewal = step(state, relayed(oldMac, MessageType.request, undefined, { requestedAddress: slotAddress }));
    assert.ok(renewal.kind === 'reply' && renewal.result === 'nak');
    assert.equal(renewal.reason, '198.18.2.77 is reserved for slot circuit-id "r1"');
    assert.deepEqual(holders(state.context, slotAddress), [[newMac, 'bound']]);
  });

  test('a swapped-in machine that skips DISCOVER (INIT-REBOOT through the slot) frees the address too', () => {
    const state = slotContext();
    bind(state, '02:00:00:00:05:01', fromR1);
    const reboot = step(state, relayed('02:00:00:00:05:02', MessageType.request, fromR1, { requestedAddress: slotAddress }));
    assert.ok(reboot.kind === 'reply' && reboot.result === 'ack', JSON.stringify(reboot));
    assert.deepEqual(
      reboot.leaseChanges.map((change) => change.kind),
      ['remove', 'upsert'],
    );
    assert.deepEqual(holders(state.context, slotAddress), [['02:00:00:00:05:02', 'bound']]);
  });

  test('only a request through the slot frees its address: a remembered slot does not', () => {
    const state = slotContext();
    const first = '02:00:00:00:06:01';
    const second = '02:00:00:00:06:02';
    bind(state, first, fromR1);
    // The second machine was placed in the slot (sighting), but asks without option 82 while the first still holds the address.
    state.sightings.record(second, { circuitId: '7231' });
    state.sightings.record(first, { circuitId: '7231' });
    state.sightings.record(second, { circuitId: '7231' });
    const asks = step(state, relayed(second, MessageType.request, undefined, { requestedAddress: slotAddress }));
    assert.ok(asks.kind === 'reply' && asks.result === 'nak');
    assert.equal(asks.reason, `198.18.2.77 is held by ${first} (bound)`);
  });

  test('a quarantined slot address (DHCPDECLINE) is not freed for the next machine', () => {
    const state = slotContext();
    const first = '02:00:00:00:07:01';
    bind(state, first, fromR1);
    const declined = step(state, relayed(first, MessageType.decline, fromR1, { serverIdentifier: server, requestedAddress: slotAddress }));
    assert.ok(declined.kind === 'update' && declined.result === 'decline');
    const next = step(state, relayed('02:00:00:00:07:02', MessageType.discover, fromR1));
    assert.ok(next.kind === 'ignore');
    assert.equal(next.reason, 'reserved address 198.18.2.77 is quarantined after a DHCPDECLINE');
  });

  test('a malformed option 82 is served without a slot, and the reply says why', () => {
    const state = slotContext();
    const offer = step(state, relayed('02:00:00:00:08:01', MessageType.discover, Buffer.from([1, 9, 0x72])));
    assert.ok(offer.kind === 'reply');
    assert.equal(offer.address, '198.18.2.76');
    assert.equal(offer.note, 'option 82 sub-option 1 at byte 0 has length 9, but only 1 bytes follow; not matched to a slot');
    assert.equal(offer.slot, undefined);
  });
});

test('--dhcp-known-only with slot profiles: a machine in a profiled slot is answered, one in another slot or without option 82 is not', () => {
  const state = slotContext();
  state.context.knownOnly = (mac, slot) => profiles.hasOwnProfile(mac, slot);
  const stranger = '02:00:00:00:0c:0c';
  const inSlot = step(state, relayed(stranger, MessageType.discover, fromR1));
  assert.ok(inSlot.kind === 'reply' && inSlot.address === slotAddress, JSON.stringify(inSlot));
  for (const agent of [fromR2, undefined]) {
    const other = step(state, relayed('02:00:00:00:0d:0d', MessageType.discover, agent));
    assert.ok(other.kind === 'ignore' && other.quiet === 'unknown', JSON.stringify(other));
  }
  // A MAC with a file of its own is known wherever it is plugged in.
  assert.equal(step(state, relayed(ownDhcpMac, MessageType.discover, fromR2)).kind, 'reply');
});
