import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { formatProfileError } from '../../server/profiles/error.js';
import { profileWarnings, formatProfileWarning } from '../../server/profiles/lint.js';
import { parseProfile, parseProfileFile } from '../../server/profiles/parse.js';
import { groupMembers, isGroupProfile, profileOrigin } from '../../server/profiles/profile.js';
import { ProfileDirectory } from '../../server/profiles/store.js';
import { Subnet } from '../../server/net/ipv4.js';
import { silentLogger } from '../../server/log.js';

const rack = `# rack 3: every node alike but for its name and address
network:
  mode: static
  gateway: 198.18.3.1
  dns: [198.18.3.1]
ssh: true
boot:
  kernelArgs: "console=ttyS0"
domains:
  - name: web
    memory: 128
hosts:
  - mac: 52:54:00:03:00:01
    hostname: r3n01
    address: 198.18.3.11/24
  - {mac: 52-54-00-03-00-02, hostname: r3n02, address: 198.18.3.12/24}
  - mac: 525400030003
    hostname: r3n03
    address: 198.18.3.13/24
`;

function errorsOf(text: string, source = 'profiles/rack3.yaml'): string[] {
  const result = parseProfileFile(text, source);
  assert.equal(result.ok, false, 'expected the group to be refused');
  return result.ok ? [] : result.errors.map(formatProfileError);
}

describe('group files: parsing', () => {
  test('one profile per hosts: entry, with the group settings and the entry MAC, hostname and address', () => {
    const result = parseProfileFile(rack, 'profiles/rack3.yaml');
    assert.ok(result.ok, JSON.stringify(!result.ok && result.errors));
    assert.ok(isGroupProfile(result.profile));
    const members = groupMembers(result.profile);
    assert.deepEqual(
      members.map((member) => [member.mac, member.hostname, member.network, member.groupEntry]),
      [
        [
          '52:54:00:03:00:01',
          'r3n01',
          { mode: 'static', address: '198.18.3.11', prefixLength: 24, gateway: '198.18.3.1', dns: ['198.18.3.1'] },
          { index: 0, line: 13 },
        ],
        [
          '52:54:00:03:00:02',
          'r3n02',
          { mode: 'static', address: '198.18.3.12', prefixLength: 24, gateway: '198.18.3.1', dns: ['198.18.3.1'] },
          { index: 1, line: 16 },
        ],
        [
          '52:54:00:03:00:03',
          'r3n03',
          { mode: 'static', address: '198.18.3.13', prefixLength: 24, gateway: '198.18.3.1', dns: ['198.18.3.1'] },
          { index: 2, line: 17 },
        ],
      ],
    );
    for (const member of members) {
      assert.equal(member.source, 'profiles/rack3.yaml');
      assert.equal(member.ssh, true);
      assert.equal(member.boot.kernelArgs, 'console=ttyS0');
      assert.deepEqual(
        member.domains.map((domain) => [domain.name, domain.memory, domain.mac]),
        [['web', 128, undefined]],
      );
    }
    assert.equal(profileOrigin(members[1]!), 'profiles/rack3.yaml (group entry hosts[1], line 16)');
  });

  test('a DHCP group needs only MAC and hostname per machine', () => {
    const result = parseProfileFile('hosts:\n  - {mac: 52:54:00:03:00:01, hostname: a}\n  - {mac: 52:54:00:03:00:02, hostname: b}\n', 'profiles/lab.yaml');
    assert.ok(result.ok);
    assert.deepEqual(
      groupMembers(result.profile).map((member) => [member.hostname, member.network]),
      [
        ['a', { mode: 'dhcp' }],
        ['b', { mode: 'dhcp' }],
      ],
    );
  });

  test('parseProfile, which reads one profile, refuses a group and says so', () => {
    const result = parseProfile(rack, 'profiles/rack3.yaml');
    assert.equal(result.ok, false);
    assert.deepEqual(!result.ok && result.errors.map(formatProfileError), [
      'profiles/rack3.yaml:13:3: hosts: a table of hosts: this is a group file, not one profile',
    ]);
  });

  test('what each machine needs of its own is refused at the group level, with line and field', () => {
    assert.deepEqual(errorsOf('mac: 52:54:00:03:00:09\nhostname: r3\nhosts:\n  - {mac: 52:54:00:03:00:01, hostname: a}\n'), [
      'profiles/rack3.yaml:1:1: mac: not allowed in a group file (one with hosts:): a group names its machines in hosts:, each with its own mac:',
      'profiles/rack3.yaml:2:1: hostname: not allowed in a group file (one with hosts:): a group names each machine in its hosts: entry (hostname:)',
    ]);
    assert.deepEqual(errorsOf('network:\n  mode: static\n  address: 198.18.3.11/24\nhosts:\n  - {mac: 52:54:00:03:00:01, hostname: a}\n'), [
      "profiles/rack3.yaml:3:3: network.address: not allowed in a group file: each machine's address is in its hosts: entry (address: 198.18.0.50/24)",
    ]);
    assert.deepEqual(errorsOf('relay:\n  circuitId: r1\nhosts:\n  - {mac: 52:54:00:03:00:01, hostname: a}\n'), [
      'profiles/rack3.yaml:1:1: relay: not allowed in a group file (one with hosts:): a group is for the MACs of its hosts: table; give the slot a file of its own',
    ]);
    assert.deepEqual(errorsOf('domains:\n  - name: web\n    mac: 02:00:00:00:00:01\nhosts:\n  - {mac: 52:54:00:03:00:01, hostname: a}\n'), [
      'profiles/rack3.yaml:3:5: domains[0].mac: not allowed in a group file: every machine of its hosts: table would give this guest the same MAC; leave it out to derive one per host',
    ]);
    assert.deepEqual(errorsOf('hosts:\n  - {mac: 52:54:00:03:00:01, hostname: a}\n', 'profiles/default.yaml'), [
      'profiles/default.yaml:1:1: hosts: not allowed in default.yaml, the profile for hosts without a file of their own; put the group in a file of its own',
    ]);
  });

  test('each entry is checked: missing, malformed, repeated and unknown fields, the gateway against its subnet', () => {
    const text = `network:
  mode: static
  gateway: 198.18.3.1
hosts:
  - {mac: 52:54:00:03:00:01, hostname: r3n01, address: 198.18.3.11/24}
  - {mac: 52:54:00:03:00:01, hostname: R3N01, address: 198.18.3.11/24}
  - {hostname: r3n03, address: 198.18.3.13}
  - {mac: 52:54:00:03:00:04, address: 198.18.4.14/24}
  - {mac: 52:54:00:03:00:05, hostname: r3n05}
  - {mac: 52:54:00:03:00:06, hostname: r3n06, address: 198.18.3.16/24, colour: red}
`;
    assert.deepEqual(errorsOf(text), [
      "profiles/rack3.yaml:3:12: network.gateway: 198.18.3.1 is outside the host's subnet 198.18.4.0/24; the gateway must be directly reachable (hosts[3], 198.18.4.14/24)",
      'profiles/rack3.yaml:6:11: hosts[1].mac: 52:54:00:03:00:01 is already the MAC of hosts[0]; every machine of a group has its own',
      'profiles/rack3.yaml:6:40: hosts[1].hostname: r3n01 is already the hostname of hosts[0]; every machine of a group has its own',
      'profiles/rack3.yaml:6:56: hosts[1].address: 198.18.3.11 is already the address of hosts[0]; every machine of a group has its own',
      'profiles/rack3.yaml:7:5: hosts[2].mac: missing; every machine of a group is named by its MAC (- {mac: 52:54:00:12:34:56, hostname: node01, address: 198.18.0.50/24})',
      'profiles/rack3.yaml:7:32: hosts[2].address: "198.18.3.13" is not an IPv4 address with a prefix (want a.b.c.d/n); add the prefix length, such as 198.18.3.13/24',
      "profiles/rack3.yaml:8:5: hosts[3].hostname: missing; want the machine's name, such as node01",
      "profiles/rack3.yaml:8:39: hosts[3].address: network.gateway 198.18.3.1 is outside the host's subnet 198.18.4.0/24; the gateway must be directly reachable",
      "profiles/rack3.yaml:9:5: hosts[4].address: missing; the group's network.mode is static, so each machine needs its address with its prefix, such as 198.18.0.50/24",
      'profiles/rack3.yaml:10:72: hosts[5].colour: unknown field; known fields here: mac, hostname, address',
    ]);
    assert.deepEqual(errorsOf('hosts: []\n'), [
      'profiles/rack3.yaml:1:8: hosts: lists no machines; want at least one (- {mac: 52:54:00:12:34:56, hostname: node01})',
    ]);
    assert.deepEqual(errorsOf('hosts:\n  - {mac: 52:54:00:03:00:01, hostname: a, address: 198.18.3.11/24}\n'), [
      "profiles/rack3.yaml:2:43: hosts[0].address: only used when the group's network.mode is static",
    ]);
  });
});

const macOwn = '52:54:00:03:00:02';

describe('group files: the profile directory', () => {
  let dir: string;
  let directory: ProfileDirectory | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackboot-groups-'));
  });
  afterEach(async () => {
    directory?.close();
    directory = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string) => writeFile(join(dir, name), text);
  const open = async () => {
    directory = await ProfileDirectory.open(dir, silentLogger());
    return directory;
  };

  test("each entry is served as its MAC's profile, with a reservation, over the slot and the default", async () => {
    await write('default.yaml', 'hostname: node-{mac}\n');
    await write('rack3.yaml', rack);
    await write('slot1.yaml', 'hostname: slot1\nrelay:\n  circuitId: r1\n');
    const profiles = await open();
    assert.deepEqual(profiles.errors(), []);
    const member = profiles.lookup('52-54-00-03-00-03', { circuitId: '7231' });
    assert.equal(member?.hostname, 'r3n03');
    assert.equal(profileOrigin(member!), `${join(dir, 'rack3.yaml')} (group entry hosts[2], line 17)`);
    assert.equal(profiles.hasOwnProfile('52:54:00:03:00:01'), true);
    assert.equal(profiles.lookup('52:54:00:03:00:99', { circuitId: '7231' })?.hostname, 'slot1');
    assert.equal(profiles.lookup('52:54:00:03:00:99')?.hostname, 'node-525400030099');
    assert.equal(profiles.reservationFor('52:54:00:03:00:01')?.address, '198.18.3.11');
    assert.equal(profiles.reservationOwner('198.18.3.12'), '52:54:00:03:00:02');
    assert.deepEqual([...profiles.reservations().keys()].sort(), ['52:54:00:03:00:01', '52:54:00:03:00:02', '52:54:00:03:00:03']);
    assert.deepEqual(
      profiles.all().map((profile) => profile.hostname),
      ['node-{mac}', 'r3n01', 'r3n02', 'r3n03', 'slot1'],
    );
    const status = profiles.fileStatuses().find((file) => file.name === 'rack3.yaml');
    assert.ok(status?.served !== undefined && isGroupProfile(status.served) && status.served.hosts.length === 3);
  });

  test("a host's own file wins over its group entry, even with the same address, and says which entry it overrides", async () => {
    await write('rack3.yaml', rack);
    await write('r3n02.yaml', `mac: ${macOwn}\nhostname: r3n02-debug\nnetwork:\n  mode: static\n  address: 198.18.3.12/24\nboot:\n  entry: testing\n`);
    const profiles = await open();
    assert.deepEqual(profiles.errors(), []);
    const own = profiles.lookup(macOwn);
    assert.equal(own?.hostname, 'r3n02-debug');
    assert.equal(own?.boot.entry, 'testing');
    assert.equal(profileOrigin(own!), `${join(dir, 'r3n02.yaml')} (its own file, over its group entry in ${join(dir, 'rack3.yaml')} line 16)`);
    // The overridden entry is not served, so it is no duplicate, and its address is the own file's.
    assert.deepEqual(
      profiles.all().map((profile) => profile.hostname),
      ['r3n02-debug', 'r3n01', 'r3n03'],
    );
    assert.equal(profiles.reservationOwner('198.18.3.12'), macOwn);
    // Removing the own file gives the machine back to its group.
    await rm(join(dir, 'r3n02.yaml'));
    await profiles.reload();
    assert.equal(profiles.lookup(macOwn)?.hostname, 'r3n02');
  });

  test("two groups naming one MAC, or a file taking an entry's address, conflict: the later file is refused, naming both", async () => {
    await write('a-rack.yaml', rack);
    await write('b-rack.yaml', 'hosts:\n  - {mac: 52:54:00:03:00:01, hostname: other}\n');
    await write('c-node.yaml', 'mac: 52:54:00:03:00:77\nhostname: c\nnetwork:\n  mode: static\n  address: 198.18.3.13/24\n');
    const profiles = await open();
    assert.deepEqual(profiles.errors().map(formatProfileError), [
      `${join(dir, 'b-rack.yaml')}:2:11: hosts[0].mac: 52:54:00:03:00:01 is already the MAC of ${join(dir, 'a-rack.yaml')} (hosts[0])`,
      `${join(dir, 'c-node.yaml')}:5:12: network.address: 198.18.3.13 is already the static address of ${join(dir, 'a-rack.yaml')} (hosts[2])`,
    ]);
    assert.equal(profiles.lookup('52:54:00:03:00:01')?.hostname, 'r3n01');
    assert.equal(profiles.lookup('52:54:00:03:00:77'), undefined, 'a host whose own file is refused waits rather than boot the default');
    // The admin API's check says the same before anything is written.
    const check = profiles.check('d-rack.yaml', 'hosts:\n  - {mac: 52:54:00:03:00:03, hostname: again}\n');
    assert.deepEqual(!check.ok && check.errors.map(formatProfileError), [
      `${join(dir, 'd-rack.yaml')}:2:11: hosts[0].mac: 52:54:00:03:00:03 is already the MAC of ${join(dir, 'a-rack.yaml')} (hosts[2])`,
    ]);
    assert.equal(profiles.check('r3n01.yaml', 'mac: 52:54:00:03:00:01\nhostname: r3n01\n').ok, true, 'an own file for an entry is no conflict');
  });

  test('a broken edit keeps the last good group; a group that never parsed makes its machines wait', async () => {
    await write('default.yaml', 'hostname: node-{mac}\n');
    await write('rack3.yaml', rack);
    const profiles = await open();
    await write('rack3.yaml', rack.replace('198.18.3.12/24', '198.18.3.12'));
    await profiles.reload();
    assert.equal(profiles.errors().length, 1);
    assert.equal(profiles.lookup('52:54:00:03:00:02')?.hostname, 'r3n02', 'still the last good version');
    profiles.close();
    directory = undefined;
    const fresh = await open();
    assert.equal(fresh.lookup('52:54:00:03:00:02'), undefined);
    assert.equal(fresh.lookup('52:54:00:03:00:01'), undefined, 'every machine the broken file names waits, not only the broken entry');
    assert.match(fresh.problemsFor('52:54:00:03:00:01').map(formatProfileError).join('\n'), /rack3\.yaml:16:\d+: hosts\[1\]\.address/);
    assert.equal(fresh.lookup('52:54:00:03:00:99')?.hostname, 'node-525400030099');
  });

  test('warnings see each machine of a group: duplicate hostnames across files and addresses off the served subnets', async () => {
    await write('rack3.yaml', rack);
    await write('other.yaml', 'mac: 52:54:00:09:00:01\nhostname: R3N01\n');
    const profiles = await open();
    const addressWarnings = (subnets: Subnet[]) =>
      profileWarnings(profiles.all(), subnets)
        .map(formatProfileWarning)
        .filter((line) => line.includes('static address'));
    assert.deepEqual(addressWarnings([new Subnet('198.18.3.0', 25), new Subnet('198.18.9.0', 24)]), []);
    assert.deepEqual(
      addressWarnings([new Subnet('198.18.0.0', 24)]).filter((line) => line.includes('r3n02')),
      [
        `${join(dir, 'rack3.yaml')}: warning: static address 198.18.3.12 (r3n02) is on none of the subnets rackboot serves (198.18.0.0/24): its DHCP gives that machine no reservation, and the machine may not reach the server`,
      ],
    );
    assert.deepEqual(profileWarnings(profiles.all()).map(formatProfileWarning), [
      `${join(dir, 'other.yaml')}: warning: hostname r3n01 is also the hostname in ${join(dir, 'rack3.yaml')}`,
      `${join(dir, 'rack3.yaml')}: warning: hostname r3n01 is also the hostname in ${join(dir, 'other.yaml')}`,
    ]);
  });
});
