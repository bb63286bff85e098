/**
 * The profile index without a folder: texts in, served profiles, claims and
 * errors out. A reload is a build with the index before as `previous`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatProfileError } from '../../server/profiles/error.js';
import { ProfileIndex, type InfrastructureAddress, type ProfileFileRead } from '../../server/profiles/profile-index.js';

const macA = '52:54:00:00:00:0a';
const macB = '52:54:00:00:00:0b';
const macC = '52:54:00:00:00:0c';

const hex = (text: string) => Buffer.from(text).toString('hex');

function host(mac: string, hostname: string, extra = ''): string {
  return `mac: ${mac}\nhostname: ${hostname}\n${extra}`;
}

/** The static address is on line 5, column 12. */
function staticHost(mac: string, hostname: string, address: string): string {
  return host(mac, hostname, `network:\n  mode: static\n  address: ${address}\n  gateway: 198.18.0.1\n`);
}

/** The index of the folder "profiles" holding `files` (a text, or a read error), built over `previous`. */
function build(files: Record<string, string | ProfileFileRead>, previous?: ProfileIndex, infrastructure?: InfrastructureAddress[]): ProfileIndex {
  const reads = new Map(Object.entries(files).map(([name, read]): [string, ProfileFileRead] => [name, typeof read === 'string' ? { text: read } : read]));
  return ProfileIndex.build({ dir: 'profiles', files: reads, previous, infrastructure });
}

const errors = (index: ProfileIndex) => index.errors().map(formatProfileError);

describe('ProfileIndex: versions', () => {
  test('a broken new version keeps the last good one, reported at its line; fixing it serves the fix', () => {
    const good = build({ 'node01.yaml': host(macA, 'node01', 'ssh: true\n') });
    assert.deepEqual(errors(good), []);
    assert.equal(good.lookup(macA)?.ssh, true);

    const broken = build({ 'node01.yaml': host(macA, 'node01-renamed', 'ssh: yes\n') }, good);
    assert.equal(broken.lookup(macA)?.hostname, 'node01', 'still the last good version');
    assert.deepEqual(errors(broken), ['profiles/node01.yaml:3:6: ssh: want true or false, got the string "yes"']);
    const [status] = broken.fileStatuses();
    assert.equal(status?.path, 'profiles/node01.yaml');
    assert.equal(status?.served !== undefined && 'hostname' in status.served ? status.served.hostname : undefined, 'node01');
    assert.equal(broken.servedText('node01.yaml'), host(macA, 'node01', 'ssh: true\n'));
    assert.deepEqual(broken.problemsFor(macA), [], 'a served MAC has no problems to wait for');
    assert.equal(broken.changed(good), true);

    // Broken again in another way: the last good version is still the first one.
    const yamlBroken = build({ 'node01.yaml': 'mac: [\n' }, broken);
    assert.equal(yamlBroken.lookup(macA)?.hostname, 'node01');
    assert.equal(build({ 'node01.yaml': 'mac: [\n' }, yamlBroken).changed(yamlBroken), false, 'the same text again changes nothing');

    const fixed = build({ 'node01.yaml': host(macA, 'node01-fixed') }, yamlBroken);
    assert.equal(fixed.lookup(macA)?.hostname, 'node01-fixed');
    assert.deepEqual(errors(fixed), []);
  });

  test('a file that cannot be read keeps serving its last good version', () => {
    const good = build({ 'node01.yaml': host(macA, 'node01') });
    const unreadable = build({ 'node01.yaml': { problem: 'cannot be read: EACCES: permission denied' } }, good);
    assert.equal(unreadable.lookup(macA)?.hostname, 'node01');
    assert.deepEqual(errors(unreadable), ['profiles/node01.yaml:1:1: cannot be read: EACCES: permission denied']);
  });

  test('a file with no good version is not served, and the MAC it names waits instead of booting the default', () => {
    const index = build({ 'default.yaml': 'hostname: node-{mac}\n', 'node0a.yaml': host(macA, 'bad_name'), 'node0b.yaml': 'mac: 52540000000b\nhostname: [\n' });
    assert.deepEqual(
      index.all().map((profile) => profile.hostname),
      ['node-{mac}'],
    );
    assert.equal(index.lookup(macA), undefined);
    assert.deepEqual(index.problemsFor(macA).map(formatProfileError), [
      'profiles/node0a.yaml:2:11: hostname: "bad_name" contains "_"; host names use letters, digits and "-" (RFC 1123)',
    ]);
    assert.equal(index.lookup(macB), undefined, 'a YAML syntax error still names its MAC');
    assert.equal(index.problemsFor(macB).length, 1);
    assert.equal(index.lookup(macC)?.hostname, 'node-52540000000c');
  });

  test('a file gone from the input stops being served', () => {
    const before = build({ 'node01.yaml': host(macA, 'node01'), 'node02.yaml': host(macB, 'node02') });
    const after = build({ 'node02.yaml': host(macB, 'node02') }, before);
    assert.equal(after.lookup(macA), undefined);
    assert.deepEqual(
      after.fileStatuses().map((file) => file.name),
      ['node02.yaml'],
    );
    assert.equal(after.changed(before), true);
  });

  test('an address of the server or the router is refused as a static address; the last good version stays', () => {
    const infrastructure = [{ address: '198.18.0.2', what: "this server's address" }];
    const good = build({ 'node01.yaml': staticHost(macA, 'node01', '198.18.0.50/24') }, undefined, infrastructure);
    const taken = build({ 'node01.yaml': staticHost(macA, 'node01', '198.18.0.2/24') }, good, infrastructure);
    assert.equal(taken.reservationFor(macA)?.address, '198.18.0.50');
    assert.deepEqual(errors(taken), [
      "profiles/node01.yaml:5:12: network.address: 198.18.0.2 is this server's address; a host cannot have it as its static address",
    ]);
    const check = taken.check('node02.yaml', staticHost(macB, 'node02', '198.18.0.2/24'));
    assert.equal(!check.ok && check.errors[0]?.field, 'network.address');
  });
});

describe('ProfileIndex: claims', () => {
  test('two files with one MAC or one static address: the later name is refused, its error naming the first at the line of the claim', () => {
    const index = build({
      'a.yaml': `# first\n${staticHost(macA, 'first', '198.18.0.50/24')}`,
      'b.yaml': host(macA, 'second'),
      'c.yaml': staticHost(macC, 'third', '198.18.0.50/25'),
    });
    assert.deepEqual(errors(index), [
      `profiles/b.yaml:1:6: mac: ${macA} is already the MAC of profiles/a.yaml`,
      'profiles/c.yaml:5:12: network.address: 198.18.0.50 is already the static address of profiles/a.yaml',
    ]);
    assert.equal(index.lookup(macA)?.hostname, 'first');
    assert.equal(index.lookup(macC), undefined, 'a host whose own file is refused waits');
    assert.deepEqual(index.problemsFor(macC).map(formatProfileError), [
      'profiles/c.yaml:5:12: network.address: 198.18.0.50 is already the static address of profiles/a.yaml',
    ]);
    assert.equal(index.reservationOwner('198.18.0.50'), macA);
    assert.deepEqual([...index.reservations().keys()], [macA]);
  });

  test('on a rebuild, files serving unchanged keep their claims: a new file earlier by name cannot take a MAC', () => {
    const before = build({ 'node01.yaml': host(macA, 'node01') });
    const copied = build({ 'node00.yaml': host(macA, 'copy-of-node01'), 'node01.yaml': host(macA, 'node01') }, before);
    assert.equal(copied.lookup(macA)?.hostname, 'node01');
    assert.deepEqual(errors(copied), [`profiles/node00.yaml:1:6: mac: ${macA} is already the MAC of profiles/node01.yaml`]);
    // Without the index before, the order of names decides.
    assert.equal(build({ 'node00.yaml': host(macA, 'copy-of-node01'), 'node01.yaml': host(macA, 'node01') }).lookup(macA)?.hostname, 'copy-of-node01');
    // Once node01.yaml lets the MAC go, node00.yaml gets it.
    const released = build({ 'node00.yaml': host(macA, 'copy-of-node01'), 'node01.yaml': host(macB, 'node01') }, copied);
    assert.equal(released.lookup(macA)?.hostname, 'copy-of-node01');
    assert.deepEqual(errors(released), []);
  });

  test('an edit that takes a held address keeps the last good version of the edited file', () => {
    const before = build({ 'node01.yaml': staticHost(macA, 'node01', '198.18.0.50/24'), 'node02.yaml': staticHost(macB, 'node02', '198.18.0.51/24') });
    const after = build({ 'node01.yaml': staticHost(macA, 'node01', '198.18.0.50/24'), 'node02.yaml': staticHost(macB, 'node02', '198.18.0.50/24') }, before);
    assert.equal(after.reservationFor(macB)?.address, '198.18.0.51');
    assert.deepEqual(errors(after), ['profiles/node02.yaml:5:12: network.address: 198.18.0.50 is already the static address of profiles/node01.yaml']);
  });

  test('check() refuses a text whose claims another file holds, and accepts a new version of the file itself', () => {
    const index = build({ 'a.yaml': staticHost(macA, 'first', '198.18.0.50/24'), 'default.yaml': 'hostname: node-{mac}\n' });
    const taken = index.check('b.yaml', staticHost(macB, 'second', '198.18.0.50/24'));
    assert.deepEqual(!taken.ok && taken.errors.map(formatProfileError), [
      'profiles/b.yaml:5:12: network.address: 198.18.0.50 is already the static address of profiles/a.yaml',
    ]);
    const sameMac = index.check('b.yaml', `# a copy\n${host(macA, 'second')}`);
    assert.deepEqual(!sameMac.ok && sameMac.errors.map(formatProfileError), [`profiles/b.yaml:2:6: mac: ${macA} is already the MAC of profiles/a.yaml`]);
    const broken = index.check('b.yaml', 'mac: [\n');
    assert.equal(broken.ok, false);
    assert.equal(!broken.ok && broken.errors[0]?.file, 'profiles/b.yaml');

    const edit = index.check('a.yaml', staticHost(macA, 'first-renamed', '198.18.0.50/24'));
    assert.equal(edit.ok && 'hostname' in edit.profile ? edit.profile.hostname : undefined, 'first-renamed');
    assert.equal(index.check('b.yaml', host(macB, 'second')).ok, true);
    assert.equal(index.hasOwnProfile(macB), false, 'a check serves nothing');
  });
});

describe('ProfileIndex: precedence', () => {
  const rack = `network:\n  mode: static\n  gateway: 198.18.3.1\nhosts:\n  - {mac: 52:54:00:03:00:01, hostname: r3n01, address: 198.18.3.11/24}\n  - {mac: 52:54:00:03:00:02, hostname: r3n02, address: 198.18.3.12/24}\n`;
  const own = 'mac: 52:54:00:03:00:02\nhostname: r3n02-debug\nnetwork:\n  mode: static\n  address: 198.18.3.12/24\n';

  test("a host's own file overrides its group entry, even with the same address, and names the entry", () => {
    const index = build({ 'rack3.yaml': rack, 'r3n02.yaml': own });
    assert.deepEqual(errors(index), []);
    const profile = index.lookup('52-54-00-03-00-02');
    assert.equal(profile?.hostname, 'r3n02-debug');
    assert.deepEqual(profile?.overrides, [{ source: 'profiles/rack3.yaml', line: 6 }]);
    assert.equal(index.lookup('52:54:00:03:00:01')?.groupEntry?.line, 5);
    assert.deepEqual(
      index.all().map((served) => served.hostname),
      ['r3n02-debug', 'r3n01'],
    );
    assert.equal(index.reservationOwner('198.18.3.12'), '52:54:00:03:00:02');
    assert.equal(index.check('r3n01.yaml', 'mac: 52:54:00:03:00:01\nhostname: r3n01\n').ok, true, 'an own file for an entry is no conflict');

    const withoutOwn = build({ 'rack3.yaml': rack }, index);
    assert.equal(withoutOwn.lookup('52:54:00:03:00:02')?.hostname, 'r3n02', 'without its own file the machine is its group entry again');
  });

  test('two groups naming one MAC conflict: the later group is refused at its entry', () => {
    const index = build({ 'a-rack.yaml': rack, 'b-rack.yaml': 'hosts:\n  - {mac: 52:54:00:03:00:01, hostname: other}\n' });
    assert.deepEqual(errors(index), ['profiles/b-rack.yaml:2:11: hosts[0].mac: 52:54:00:03:00:01 is already the MAC of profiles/a-rack.yaml (hosts[0])']);
  });

  test("the MAC's own file, then its group entry, then the most specific slot, then the default", () => {
    const r1 = { circuitId: hex('r1') };
    const r1OnRack3 = { circuitId: hex('r1'), remoteId: hex('sw-rack3') };
    const slotProfile = (hostname: string, relay: string) => `hostname: ${hostname}\nrelay:\n${relay}`;
    const index = build({
      'default.yaml': 'hostname: node-{mac}\n',
      'own.yaml': host(macA, 'own-a'),
      'port.yaml': slotProfile('port-r1', '  circuitId: "r1"\n'),
      'rack3.yaml': rack,
      'slot.yaml': `${slotProfile('rack3-r1', '  circuitId: "r1"\n  remoteId: "sw-rack3"\n')}network:\n  mode: static\n  address: 198.18.2.77/24\n`,
    });
    assert.deepEqual(errors(index), []);
    assert.equal(index.lookup(macA, r1OnRack3)?.hostname, 'own-a', 'own file over the slot');
    assert.equal(index.lookup('52:54:00:03:00:01', r1OnRack3)?.hostname, 'r3n01', 'group entry over the slot');
    assert.equal(index.lookup(macB, r1OnRack3)?.hostname, 'rack3-r1', 'circuit-id and remote-id over circuit-id alone');
    assert.equal(index.lookup(macB, r1)?.hostname, 'port-r1');
    assert.equal(index.lookup(macB, { circuitId: hex('r2') })?.hostname, 'node-52540000000b');
    assert.equal(index.lookup(macB)?.hostname, 'node-52540000000b', 'the default, filled in');
    assert.equal(index.hasOwnProfile(macB), false);
    assert.equal(index.hasOwnProfile(macB, r1), true);
    assert.equal(index.defaultProfile?.source, 'profiles/default.yaml');
    assert.equal(index.reservationFor(macB, r1OnRack3)?.slot?.remoteId, hex('sw-rack3'));
    assert.equal(index.reservationOwner('198.18.2.77'), 'slot circuit-id "r1" remote-id "sw-rack3"');
    assert.equal(build({ 'own.yaml': host(macA, 'own-a') }).lookup(macB), undefined, 'no default, no profile');
  });

  test('a machine in a slot whose file never parsed waits with its errors', () => {
    const index = build({
      'default.yaml': 'hostname: node-{mac}\n',
      'port.yaml': 'hostname: port-r1\nrelay:\n  circuitId: "r1"\n',
      'slot.yaml': 'hostname: -bad\nrelay:\n  circuitId: "r1"\n  remoteId: "sw-rack3"\n',
    });
    const r1OnRack3 = { circuitId: hex('r1'), remoteId: hex('sw-rack3') };
    assert.equal(index.lookup(macB, r1OnRack3), undefined);
    assert.deepEqual(index.problemsFor(macB, r1OnRack3).map(formatProfileError), [
      'profiles/slot.yaml:1:11: hostname: "-bad": label "-bad" starts or ends with "-" (RFC 1123)',
    ]);
    assert.equal(index.lookup(macB, { circuitId: hex('r1') })?.hostname, 'port-r1');
  });
});
