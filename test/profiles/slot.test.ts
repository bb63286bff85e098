/**
 * Slot profiles (relay: circuitId/remoteId, DHCP option 82): parsing and
 * validation, conflicts between files, the precedence of lookups, and the
 * record of which MAC was seen in which slot.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { formatProfileError } from '../../server/profiles/error.js';
import { parseProfile } from '../../server/profiles/parse.js';
import { MemorySlotSightings } from '../../server/profiles/sightings.js';
import { slotSightingsContract } from './sightings-contract.js';
import { formatSlot, selectSlotProfile, slotIdFromText, slotMatches } from '../../server/profiles/slot.js';
import { ProfileDirectory } from '../../server/profiles/store.js';

const file = 'profiles/rack3-slot1.yaml';
const hex = (text: string) => Buffer.from(text).toString('hex');

function errors(text: string, source = file): string[] {
  const result = parseProfile(text, source);
  assert.equal(result.ok, false, 'expected errors');
  return result.ok ? [] : result.errors.map(formatProfileError);
}

describe('slot identifiers', () => {
  test('text is its UTF-8 bytes, 0x... is hex in any case', () => {
    assert.deepEqual(slotIdFromText('r1'), { hex: '7231' });
    assert.deepEqual(slotIdFromText('0x7231'), { hex: '7231' });
    assert.deepEqual(slotIdFromText('0X00040A0B'), { hex: '00040a0b' });
    assert.deepEqual(slotIdFromText('port é'), { hex: hex('port é') });
  });

  test('formatting shows printable ids as text, others as hex', () => {
    assert.equal(formatSlot({ circuitId: '7231' }), 'circuit-id "r1"');
    assert.equal(formatSlot({ circuitId: '00040a0b', remoteId: hex('sw-rack3') }), 'circuit-id 0x00040a0b remote-id "sw-rack3"');
  });

  test('a profile without remote-id matches the port on any relay; with one, only on that relay', () => {
    const port = { circuitId: '7231' };
    const onSwitch = { circuitId: '7231', remoteId: hex('sw-rack3') };
    assert.equal(slotMatches(port, { circuitId: '7231' }), true);
    assert.equal(slotMatches(port, onSwitch), true);
    assert.equal(slotMatches(onSwitch, { circuitId: '7231' }), false);
    assert.equal(slotMatches(onSwitch, { circuitId: '7231', remoteId: hex('sw-rack4') }), false);
    assert.equal(slotMatches(port, { circuitId: '7232' }), false);
  });

  test('the most specific slot profile wins, whatever the order', () => {
    const portOnly = { name: 'port', relay: { circuitId: '7231' } };
    const exact = { name: 'exact', relay: { circuitId: '7231', remoteId: hex('sw-rack3') } };
    const seen = { circuitId: '7231', remoteId: hex('sw-rack3') };
    assert.equal(selectSlotProfile([portOnly, exact], seen)?.name, 'exact');
    assert.equal(selectSlotProfile([exact, portOnly], seen)?.name, 'exact');
    assert.equal(selectSlotProfile([exact, portOnly], { circuitId: '7231', remoteId: hex('sw-rack4') })?.name, 'port');
    assert.equal(selectSlotProfile([exact, portOnly], { circuitId: '7232' }), undefined);
  });
});

describe('parseProfile: relay', () => {
  test('a slot-only profile: no MAC, circuit-id and remote-id as hex of their bytes', () => {
    const result = parseProfile('relay:\n  circuitId: "r1"\n  remoteId: "sw-rack3"\nhostname: rack3-slot1\n', file);
    assert.ok(result.ok, result.ok ? '' : result.errors.map(formatProfileError).join('\n'));
    assert.equal(result.profile.mac, null);
    assert.deepEqual(result.profile.relay, { circuitId: '7231', remoteId: hex('sw-rack3') });
  });

  test('MAC and slot together; unquoted hex and numbers are read as written', () => {
    const result = parseProfile('mac: 52:54:00:12:34:56\nhostname: n1\nrelay:\n  circuitId: 0x0004000A\n  remoteId: 42\n', file);
    assert.ok(result.ok, result.ok ? '' : result.errors.map(formatProfileError).join('\n'));
    assert.equal(result.profile.mac, '52:54:00:12:34:56');
    assert.deepEqual(result.profile.relay, { circuitId: '0004000a', remoteId: '3432' });
  });

  test('profiles/examples/rack3-slot1.yaml parses as a slot profile', async () => {
    const relative = 'profiles/examples/rack3-slot1.yaml';
    const text = await readFile(fileURLToPath(new URL(`../../../${relative}`, import.meta.url)), 'utf8');
    const result = parseProfile(text, relative);
    assert.ok(result.ok, result.ok ? '' : result.errors.map(formatProfileError).join('\n'));
    assert.equal(result.profile.mac, null);
    assert.equal(result.profile.hostname, 'rack3-slot1');
    assert.deepEqual(result.profile.relay, { circuitId: hex('r1'), remoteId: hex('sw-rack3') });
    assert.deepEqual(result.profile.network, { mode: 'static', address: '198.18.3.11', prefixLength: 24, gateway: '198.18.3.1', dns: ['198.18.3.1'] });
  });

  const cases: Array<{ name: string; text: string; source?: string; want: string[] }> = [
    {
      name: 'neither mac nor relay',
      text: 'hostname: n1\n',
      want: [
        `${file}:1:1: mac: missing; every profile names its host by MAC (or its slot, with relay:), except default.yaml (the profile for hosts without a file of their own)`,
      ],
    },
    {
      name: 'relay without circuitId',
      text: 'hostname: n1\nrelay:\n  remoteId: "sw-rack3"\n',
      want: [`${file}:2:1: relay.circuitId: missing; a slot is named by the circuit-id its relay agent sends (sub-option 1), such as "r1"`],
    },
    {
      name: 'unknown field under relay',
      text: 'hostname: n1\nrelay:\n  circuitID: "r1"\n',
      want: [
        `${file}:2:1: relay.circuitId: missing; a slot is named by the circuit-id its relay agent sends (sub-option 1), such as "r1"`,
        `${file}:3:3: relay.circuitID: unknown field; did you mean circuitId?`,
      ],
    },
    {
      name: 'relay that is not a mapping',
      text: 'hostname: n1\nrelay: r1\n',
      want: [`${file}:2:8: relay: want a mapping of fields (circuitId: ..., remoteId: ...), got the string "r1"`],
    },
    {
      name: 'odd hex',
      text: 'hostname: n1\nrelay:\n  circuitId: "0x123"\n',
      want: [`${file}:3:14: relay.circuitId: "0x123" is not hex bytes; after 0x want an even number of hex digits, such as 0x0004000a0001`],
    },
    {
      name: 'empty circuit-id',
      text: 'hostname: n1\nrelay:\n  circuitId: ""\n',
      want: [`${file}:3:14: relay.circuitId: is empty; want the text the relay sends (such as "r1") or its bytes in hex (such as 0x0004000a0001)`],
    },
    {
      name: 'too long for a sub-option',
      text: `hostname: n1\nrelay:\n  circuitId: "r1"\n  remoteId: "${'x'.repeat(256)}"\n`,
      want: [`${file}:4:13: relay.remoteId: is 256 bytes long; a relay agent sub-option holds at most 255`],
    },
    {
      name: 'a control character',
      text: 'hostname: n1\nrelay:\n  circuitId: "r\\t1"\n',
      want: [`${file}:3:14: relay.circuitId: contains a control character (U+0009); write binary identifiers in hex (0x...)`],
    },
    {
      name: 'a list instead of text',
      text: 'hostname: n1\nrelay:\n  circuitId: [r1]\n',
      want: [`${file}:3:14: relay.circuitId: want a string, got a list`],
    },
    {
      name: 'relay in default.yaml',
      source: 'profiles/default.yaml',
      text: 'hostname: node-{mac}\nrelay:\n  circuitId: "r1"\n',
      want: [
        'profiles/default.yaml:2:1: relay: not allowed in default.yaml, the profile for hosts without a file of their own; give the slot a file of its own',
      ],
    },
  ];
  for (const { name, text, source, want } of cases) {
    test(name, () => assert.deepEqual(errors(text, source), want));
  }
});

describe('ProfileDirectory with slot profiles', () => {
  let dir: string;
  let directory: ProfileDirectory | undefined;
  const log = pino({ level: 'silent' });
  const macA = '52:54:00:00:00:0a';
  const macB = '52:54:00:00:00:0b';
  const r1 = { circuitId: '7231' };
  const r1OnRack3 = { circuitId: '7231', remoteId: hex('sw-rack3') };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackboot-slots-'));
  });
  afterEach(async () => {
    directory?.close();
    directory = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => writeFile(join(dir, name), text);
  const slotProfile = (hostname: string, address: string, relay: string) =>
    `hostname: ${hostname}\nnetwork:\n  mode: static\n  address: ${address}\n  gateway: 198.18.2.1\nrelay:\n${relay}`;

  test("precedence: the MAC's own profile, then the most specific slot, then the default", async () => {
    await write('default.yaml', 'hostname: node-{mac}\n');
    await write('port.yaml', slotProfile('port-r1', '198.18.2.70/24', '  circuitId: "r1"\n'));
    await write('slot.yaml', slotProfile('rack3-r1', '198.18.2.77/24', '  circuitId: "r1"\n  remoteId: "sw-rack3"\n'));
    await write('own.yaml', `mac: ${macA}\nhostname: own-a\n`);
    directory = await ProfileDirectory.open(dir, log);
    assert.deepEqual(directory.errors(), []);

    assert.equal(directory.lookup(macA, r1OnRack3)?.hostname, 'own-a', 'own profile wins over the slot');
    assert.equal(directory.reservationFor(macA, r1OnRack3), undefined, 'own profile (dhcp) decides: no reservation');
    assert.equal(directory.lookup(macB, r1OnRack3)?.hostname, 'rack3-r1');
    assert.equal(directory.lookup(macB, r1)?.hostname, 'port-r1');
    assert.equal(directory.lookup(macB, { circuitId: '7231', remoteId: hex('sw-rack4') })?.hostname, 'port-r1');
    assert.equal(directory.lookup(macB, { circuitId: '7232' })?.hostname, 'node-52540000000b');
    assert.equal(directory.lookup(macB)?.hostname, 'node-52540000000b');
    assert.equal(directory.defaultProfile?.source, join(dir, 'default.yaml'), 'a slot-only profile is not the default');

    assert.deepEqual(directory.reservationFor(macB, r1OnRack3), {
      mac: macB,
      address: '198.18.2.77',
      prefixLength: 24,
      gateway: '198.18.2.1',
      dns: [],
      hostname: 'rack3-r1',
      source: join(dir, 'slot.yaml'),
      slot: r1OnRack3,
    });
    assert.equal(directory.reservationOwner('198.18.2.77'), 'slot circuit-id "r1" remote-id "sw-rack3"');
    assert.equal(directory.reservationOwner('198.18.2.70'), 'slot circuit-id "r1"');
    assert.deepEqual([...directory.reservations().keys()], [], 'slot addresses belong to no MAC');
  });

  test('a MAC whose own file is broken waits, even in a slot', async () => {
    await write('slot.yaml', slotProfile('rack3-r1', '198.18.2.77/24', '  circuitId: "r1"\n'));
    await write('own.yaml', `mac: ${macA}\nhostname: -bad\n`);
    directory = await ProfileDirectory.open(dir, log);
    assert.equal(directory.lookup(macA, r1), undefined);
    assert.equal(directory.reservationFor(macA, r1), undefined);
    assert.equal(directory.lookup(macB, r1)?.hostname, 'rack3-r1');
  });

  test('a machine in a slot whose file never parsed waits with its errors, as one with a broken own file does', async () => {
    await write('default.yaml', 'hostname: node-{mac}\n');
    await write('port.yaml', slotProfile('port-r1', '198.18.2.70/24', '  circuitId: "r1"\n'));
    // More specific than port.yaml, so it would win for sw-rack3; broken (hostname), it makes that slot wait.
    await write('slot.yaml', `hostname: -bad\nrelay:\n  circuitId: "r1"\n  remoteId: "sw-rack3"\n`);
    directory = await ProfileDirectory.open(dir, log);
    const wanted = [`${join(dir, 'slot.yaml')}:1:11: hostname: "-bad": label "-bad" starts or ends with "-" (RFC 1123)`];
    assert.equal(directory.lookup(macB, r1OnRack3), undefined);
    assert.deepEqual(directory.problemsFor(macB, r1OnRack3).map(formatProfileError), wanted);
    assert.equal(directory.reservationFor(macB, r1OnRack3), undefined);
    assert.equal(directory.lookup(macB, r1)?.hostname, 'port-r1', "another relay's port r1 is port.yaml's");
    assert.deepEqual(directory.problemsFor(macB, r1), []);
    assert.equal(directory.lookup(macB)?.hostname, 'node-52540000000b', 'outside the slot: the default');

    await write('slot.yaml', slotProfile('rack3-r1', '198.18.2.77/24', '  circuitId: "r1"\n  remoteId: "sw-rack3"\n'));
    await directory.reload();
    assert.equal(directory.lookup(macB, r1OnRack3)?.hostname, 'rack3-r1', 'fixed: served');
    assert.deepEqual(directory.problemsFor(macB, r1OnRack3), []);
  });

  test('two files claiming one slot: the first by name is served, the second reported at its circuitId', async () => {
    await write('a.yaml', slotProfile('first', '198.18.2.77/24', '  circuitId: "r1"\n  remoteId: "sw-rack3"\n'));
    // The same bytes written in hex are the same slot.
    await write('b.yaml', slotProfile('second', '198.18.2.78/24', `  circuitId: 0x7231\n  remoteId: "0x${hex('sw-rack3')}"\n`));
    await write('c.yaml', slotProfile('port', '198.18.2.79/24', '  circuitId: "r1"\n'));
    directory = await ProfileDirectory.open(dir, log);
    assert.deepEqual(directory.errors().map(formatProfileError), [
      `${join(dir, 'b.yaml')}:7:14: relay.circuitId: circuit-id "r1" remote-id "sw-rack3" is already the slot of ${join(dir, 'a.yaml')}`,
    ]);
    assert.deepEqual(
      directory.all().map((profile) => profile.hostname),
      ['first', 'port'],
    );
    assert.equal(directory.lookup(macB, r1OnRack3)?.hostname, 'first');
    assert.equal(directory.reservationOwner('198.18.2.78'), undefined, 'the refused file reserves nothing');
  });

  test("an edit that takes another file's slot keeps the last good version", async () => {
    await write('a.yaml', slotProfile('first', '198.18.2.77/24', '  circuitId: "r1"\n'));
    await write('b.yaml', slotProfile('second', '198.18.2.78/24', '  circuitId: "r2"\n'));
    directory = await ProfileDirectory.open(dir, log);
    await write('b.yaml', slotProfile('second-edited', '198.18.2.78/24', '  circuitId: "r1"\n'));
    await directory.reload();
    assert.equal(directory.errors().length, 1);
    assert.match(formatProfileError(directory.errors()[0]!), /b\.yaml:7:14: relay\.circuitId: circuit-id "r1" is already the slot of .*a\.yaml/);
    assert.equal(directory.lookup(macB, { circuitId: hex('r2') })?.hostname, 'second');
    assert.equal(directory.lookup(macB, r1)?.hostname, 'first');
  });
});

slotSightingsContract('MemorySlotSightings', () => new MemorySlotSightings());
