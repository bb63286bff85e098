import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { formatProfileError } from '../../server/profiles/error.js';
import { ProfileDirectory, type ProfileChange } from '../../server/profiles/store.js';

interface LogLine {
  level: number;
  msg: string;
  file?: string;
  line?: number;
  column?: number;
  field?: string;
}

/** A logger that keeps what it is given, to check what an operator would read. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug', base: undefined }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { log, lines };
}

function host(mac: string, hostname: string, extra = ''): string {
  return `mac: ${mac}\nhostname: ${hostname}\n${extra}`;
}

function staticHost(mac: string, hostname: string, address: string): string {
  return host(mac, hostname, `network:\n  mode: static\n  address: ${address}\n  gateway: 198.18.0.1\n`);
}

const macA = '52:54:00:00:00:0a';
const macB = '52:54:00:00:00:0b';

describe('ProfileDirectory', () => {
  let dir: string;
  let directory: ProfileDirectory | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackboot-profiles-'));
  });
  afterEach(async () => {
    directory?.close();
    directory = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function write(name: string, text: string): Promise<void> {
    await writeFile(join(dir, name), text);
  }

  async function open() {
    const { log, lines } = capturingLogger();
    directory = await ProfileDirectory.open(dir, log, { debounceMs: 20 });
    return { directory, lines };
  }

  test('loads *.yaml and *.yml, and ignores subfolders, hidden files and other names', async () => {
    await write('node01.yaml', host(macA, 'node01'));
    await write('node02.yml', host(macB, 'node02'));
    await write('.#node03.yaml', host('52:54:00:00:00:0c', 'lock'));
    await write('notes.txt', 'mac: 52:54:00:00:00:0d\n');
    await write('node04.yaml.bak', host('52:54:00:00:00:0e', 'backup'));
    await mkdir(join(dir, 'examples'));
    await writeFile(join(dir, 'examples', 'node05.yaml'), host('52:54:00:00:00:0f', 'example'));
    await mkdir(join(dir, 'folder.yaml'));
    // A link is followed (as with configuration management that links files in).
    await symlink(join(dir, 'examples', 'node05.yaml'), join(dir, 'linked.yaml'));

    const { directory } = await open();
    assert.deepEqual(
      directory.all().map((profile) => [profile.source, profile.hostname]),
      [
        [join(dir, 'linked.yaml'), 'example'],
        [join(dir, 'node01.yaml'), 'node01'],
        [join(dir, 'node02.yml'), 'node02'],
      ],
    );
    assert.deepEqual(directory.errors(), []);
  });

  test('lookup by any MAC spelling; default profile filled in for other hosts; undefined without one', async () => {
    await write('node01.yaml', host(macA, 'node01'));
    const { directory } = await open();
    assert.equal(directory.lookup('52-54-00-00-00-0A')?.hostname, 'node01');
    assert.equal(directory.lookup('52540000000a')?.hostname, 'node01');
    assert.equal(directory.lookup(macB), undefined);
    assert.equal(directory.lookup('not a mac'), undefined);
    const noDefault = directory.defaultProfile;
    assert.equal(noDefault, undefined);

    await write('default.yaml', 'hostname: node-{mac}\n');
    await directory.reload();
    assert.equal(directory.lookup(macA)?.hostname, 'node01');
    const other = directory.lookup(macB);
    assert.equal(other?.hostname, 'node-52540000000b');
    assert.equal(other?.mac, null);
    assert.equal(directory.defaultProfile?.hostname, 'node-{mac}');
    assert.equal(directory.lookup('garbage'), undefined);
  });

  test('a bad edit keeps the last good version, reports file:line:column and field, and logs it', async () => {
    await write('node01.yaml', host(macA, 'node01', 'ssh: true\n'));
    const { directory, lines } = await open();
    assert.equal(directory.lookup(macA)?.ssh, true);
    assert.deepEqual(directory.errors(), []);

    await write('node01.yaml', host(macA, 'node01-renamed', 'ssh: yes\n'));
    await directory.reload();
    assert.equal(directory.lookup(macA)?.hostname, 'node01', 'still the last good version');
    assert.deepEqual(directory.errors().map(formatProfileError), [`${join(dir, 'node01.yaml')}:3:6: ssh: want true or false, got the string "yes"`]);
    const logged = lines.filter((line) => line.level >= 50);
    assert.equal(logged.length, 1);
    assert.deepEqual(
      { file: logged[0]!.file, line: logged[0]!.line, column: logged[0]!.column, field: logged[0]!.field },
      { file: join(dir, 'node01.yaml'), line: 3, column: 6, field: 'ssh' },
    );
    assert.match(logged[0]!.msg, /ssh: want true or false.*\(still serving the last good version of this file\)$/);

    // The same bad text again is not logged again.
    await directory.reload();
    assert.equal(lines.filter((line) => line.level >= 50).length, 1);

    // A broken YAML file is no different.
    await write('node01.yaml', 'mac: [\n');
    await directory.reload();
    assert.equal(directory.lookup(macA)?.hostname, 'node01');
    assert.equal(directory.errors()[0]?.file, join(dir, 'node01.yaml'));

    await write('node01.yaml', host(macA, 'node01-fixed'));
    await directory.reload();
    assert.equal(directory.lookup(macA)?.hostname, 'node01-fixed');
    assert.deepEqual(directory.errors(), []);
  });

  test('a bad file with no good version is not served', async () => {
    await write('node01.yaml', host('52:54:00:00:00', 'node01'));
    const { directory, lines } = await open();
    assert.deepEqual(directory.all(), []);
    assert.deepEqual(
      directory.errors().map((error) => [error.line, error.column, error.field]),
      [[1, 6, 'mac']],
    );
    assert.match(lines.find((line) => line.level >= 50)?.msg ?? '', /\(this file is not served\)$/);
  });

  test('a host whose own file never parsed waits instead of booting the default profile', async () => {
    await write('default.yaml', 'hostname: "node-{mac}"\n');
    await write('node0a.yaml', host(macA, 'bad_name'));
    await write('node0b.yaml', 'mac: 52540000000b\nhostname: [\n');
    const { directory } = await open();
    assert.equal(directory.lookup(macA), undefined);
    assert.deepEqual(directory.problemsFor(macA).map(formatProfileError), [
      `${join(dir, 'node0a.yaml')}:2:11: hostname: "bad_name" contains "_"; host names use letters, digits and "-" (RFC 1123)`,
    ]);
    assert.equal(directory.lookup(macB), undefined, 'a YAML syntax error still names its MAC');
    assert.equal(directory.problemsFor(macB).length, 1);
    assert.equal(directory.lookup('52:54:00:00:00:0c')?.hostname, 'node-52540000000c');
    assert.deepEqual(directory.problemsFor('52:54:00:00:00:0c'), []);

    await write('node0a.yaml', host(macA, 'node0a'));
    await directory.reload();
    assert.equal(directory.lookup(macA)?.hostname, 'node0a');
    assert.deepEqual(directory.problemsFor(macA), []);
  });

  test('two files with one MAC: the later file name is rejected, pointing at its mac line', async () => {
    await write('b.yaml', host(macA, 'second'));
    await write('a.yaml', `# first\n${host(macA, 'first')}`);
    const { directory } = await open();
    assert.equal(directory.lookup(macA)?.hostname, 'first');
    assert.deepEqual(directory.errors().map(formatProfileError), [`${join(dir, 'b.yaml')}:1:6: mac: ${macA} is already the MAC of ${join(dir, 'a.yaml')}`]);
  });

  test("a guest MAC written in one file cannot be another host or another file's guest", async () => {
    await write('a.yaml', host(macA, 'first', 'domains:\n  - name: web\n    mac: 02:00:00:00:00:01\n'));
    await write('b.yaml', host(macB, 'second', 'domains:\n  - name: db\n    mac: 02-00-00-00-00-01\n'));
    await write('c.yaml', host('52:54:00:00:00:0c', 'third', `domains:\n  - name: db\n    mac: ${macA}\n`));
    const { directory } = await open();
    assert.equal(directory.lookup(macA)?.domains[0]?.mac, '02:00:00:00:00:01');
    assert.equal(directory.lookup(macB), undefined, 'the conflicting file is not served');
    assert.deepEqual(directory.errors().map(formatProfileError), [
      `${join(dir, 'b.yaml')}:5:10: domains[0].mac: 02:00:00:00:00:01 is already a MAC in ${join(dir, 'a.yaml')}; two NICs never share one`,
      `${join(dir, 'c.yaml')}:5:10: domains[0].mac: ${macA} is already a MAC in ${join(dir, 'a.yaml')}; two NICs never share one`,
    ]);
  });

  test('two files with one static address: the later file name is rejected', async () => {
    await write('node01.yaml', staticHost(macA, 'node01', '198.18.0.50/24'));
    await write('node02.yaml', staticHost(macB, 'node02', '198.18.0.50/25'));
    const { directory } = await open();
    assert.equal(directory.lookup(macA)?.hostname, 'node01');
    assert.equal(directory.lookup(macB), undefined);
    assert.deepEqual(directory.errors().map(formatProfileError), [
      `${join(dir, 'node02.yaml')}:5:12: network.address: 198.18.0.50 is already the static address of ${join(dir, 'node01.yaml')}`,
    ]);
  });

  test('default.yaml and default.yml: the second default is rejected', async () => {
    await write('default.yml', 'hostname: yml-{mac}\n');
    await write('default.yaml', 'hostname: yaml-{mac}\n');
    const { directory } = await open();
    assert.equal(directory.defaultProfile?.hostname, 'yaml-{mac}');
    assert.deepEqual(directory.errors().map(formatProfileError), [
      `${join(dir, 'default.yml')}:1:1: a second default profile; ${join(dir, 'default.yaml')} is the default profile already`,
    ]);
  });

  test('on reload a new file cannot take a MAC from a file already serving it', async () => {
    await write('node01.yaml', host(macA, 'node01'));
    const { directory } = await open();
    await write('node00.yaml', host(macA, 'copy-of-node01'));
    await directory.reload();
    assert.equal(directory.lookup(macA)?.hostname, 'node01');
    assert.deepEqual(
      directory.errors().map((error) => [error.file, error.field]),
      [[join(dir, 'node00.yaml'), 'mac']],
    );

    // Once node01.yaml lets the MAC go, node00.yaml gets it.
    await write('node01.yaml', host(macB, 'node01'));
    await directory.reload();
    assert.equal(directory.lookup(macA)?.hostname, 'copy-of-node01');
    assert.equal(directory.lookup(macB)?.hostname, 'node01');
    assert.deepEqual(directory.errors(), []);
  });

  test('an edit that conflicts keeps the last good version of the edited file', async () => {
    await write('node01.yaml', staticHost(macA, 'node01', '198.18.0.50/24'));
    await write('node02.yaml', staticHost(macB, 'node02', '198.18.0.51/24'));
    const { directory } = await open();
    await write('node02.yaml', staticHost(macB, 'node02', '198.18.0.50/24'));
    await directory.reload();
    const network = directory.lookup(macB)?.network;
    assert.equal(network?.mode === 'static' ? network.address : undefined, '198.18.0.51');
    assert.deepEqual(
      directory.errors().map((error) => [error.file, error.line, error.column, error.field]),
      [[join(dir, 'node02.yaml'), 5, 12, 'network.address']],
    );
  });

  test('a deleted file stops being served', async () => {
    await write('node01.yaml', host(macA, 'node01'));
    await write('node02.yaml', host(macB, 'node02', 'ssh: maybe\n'));
    const { directory } = await open();
    assert.equal(directory.errors().length, 1);
    await unlink(join(dir, 'node01.yaml'));
    await unlink(join(dir, 'node02.yaml'));
    await directory.reload();
    assert.equal(directory.lookup(macA), undefined);
    assert.deepEqual(directory.all(), []);
    assert.deepEqual(directory.errors(), []);
  });

  test('reservations: static addresses by MAC', async () => {
    await write('node01.yaml', staticHost(macA, 'node01', '198.18.0.50/24'));
    await write('node02.yaml', host(macB, 'node02'));
    await write('default.yaml', 'hostname: node-{mac}\n');
    const { directory } = await open();
    const reservation = {
      mac: macA,
      address: '198.18.0.50',
      prefixLength: 24,
      gateway: '198.18.0.1',
      dns: [],
      hostname: 'node01',
      source: join(dir, 'node01.yaml'),
    };
    assert.deepEqual([...directory.reservations()], [[macA, reservation]]);
    assert.deepEqual(directory.reservationFor('52-54-00-00-00-0A'), reservation);
    assert.equal(directory.reservationFor(macB), undefined);
    assert.equal(directory.reservationFor('52:54:00:99:99:99'), undefined);
  });

  test('onChange is told about changes, and only about changes', async () => {
    await write('node01.yaml', host(macA, 'node01'));
    const { directory } = await open();
    const changes: ProfileChange[] = [];
    const unsubscribe = directory.onChange((change) => changes.push(change));

    await directory.reload();
    assert.equal(changes.length, 0, 'nothing changed');

    await write('node01.yaml', host(macA, 'node01b'));
    await directory.reload();
    assert.equal(changes.length, 1);
    assert.deepEqual(
      changes[0]!.profiles.map((profile) => profile.hostname),
      ['node01b'],
    );

    await write('node01.yaml', 'hostname: [\n');
    await directory.reload();
    assert.equal(changes.length, 2, 'a new error is a change');
    assert.equal(changes[1]!.errors.length, 1);

    unsubscribe();
    await write('node01.yaml', host(macA, 'node01c'));
    await directory.reload();
    assert.equal(changes.length, 2);
  });

  test('watch() reloads after a file changes', async () => {
    await write('node01.yaml', host(macA, 'node01'));
    const { directory } = await open();
    directory.watch();
    const changed = new Promise<ProfileChange>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reload within 5 seconds of the change')), 5000);
      directory.onChange((change) => {
        clearTimeout(timer);
        resolve(change);
      });
    });
    await write('node02.yaml', host(macB, 'node02'));
    const change = await changed;
    assert.deepEqual(
      change.profiles.map((profile) => profile.hostname),
      ['node01', 'node02'],
    );
    assert.equal(directory.lookup(macB)?.hostname, 'node02');
  });

  test("a static address that is the server's or the router's is refused, naming file, line and field; the last good version stays", async () => {
    await write('node01.yaml', staticHost(macA, 'node01', '198.18.0.50/24'));
    const { log, lines } = capturingLogger();
    directory = await ProfileDirectory.open(dir, log, {
      debounceMs: 20,
      infrastructure: [
        { address: '198.18.0.1', what: "this server's address" },
        { address: '198.18.0.254', what: "the router's address (--router)" },
      ],
    });
    assert.equal(directory.reservationFor(macA)?.address, '198.18.0.50');
    await write('node01.yaml', host(macA, 'node01', 'network:\n  mode: static\n  address: 198.18.0.1/24\n  gateway: 198.18.0.254\n'));
    await directory.reload();
    assert.equal(directory.reservationFor(macA)?.address, '198.18.0.50', 'still the last good version');
    assert.deepEqual(directory.errors().map(formatProfileError), [
      `${join(dir, 'node01.yaml')}:5:12: network.address: 198.18.0.1 is this server's address; a host cannot have it as its static address`,
    ]);
    assert.match(lines.at(-1)!.msg, /network\.address: 198\.18\.0\.1 is this server's address.*\(still serving the last good version of this file\)$/);
    assert.equal(lines.at(-1)!.field, 'network.address');

    await write('node02.yaml', staticHost(macB, 'node02', '198.18.0.254/24'));
    await directory.reload();
    assert.equal(directory.reservationFor(macB), undefined, 'never served');
    assert.equal(directory.reservationOwner('198.18.0.254'), undefined);
    assert.match(
      directory.errors().map(formatProfileError).join('\n'),
      /node02\.yaml:5:12: network\.address: 198\.18\.0\.254 is the router's address \(--router\)/,
    );
    // The same rule for an edit checked before it is written (the admin API).
    const check = directory.check('node03.yaml', host('52:54:00:00:00:0c', 'node03', 'network:\n  mode: static\n  address: 198.18.0.1/24\n'));
    assert.equal(check.ok, false);
    assert.equal(!check.ok && check.errors[0]!.field, 'network.address');
  });

  test('a file of many problems logs the first 20 and how many more there were', async () => {
    const fields = Array.from({ length: 50 }, (_, index) => `unknown${index}: 1`).join('\n');
    await write('node01.yaml', `${host(macA, 'node01')}${fields}\n`);
    const { lines } = await open();
    const logged = lines.filter((line) => line.level === 50);
    assert.equal(logged.length, 21);
    assert.match(logged.at(-1)!.msg, /node01\.yaml: 30 more problems not listed \(this file is not served\)$/);
  });

  test('an alias bomb under the size limit gives one problem; a file over 64 KiB is refused unread', async () => {
    const bomb = `${host(macA, 'node01')}a: &a [x]\n${Array.from({ length: 6000 }, (_, index) => `k${index}: *a`).join('\n')}\n`;
    assert.ok(bomb.length < 64 * 1024);
    await write('bomb.yaml', bomb);
    await write('big.yaml', `${host(macB, 'node02')}# ${'x'.repeat(70 * 1024)}\n`);
    const { directory } = await open();
    const problems = directory.errors().map(formatProfileError);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems[0]!, /big\.yaml:1:1: is \d+ bytes; a profile is at most 65536$/);
    assert.match(problems[1]!, /bomb\.yaml:4:\d+: aliases \(\*a\) are not supported in profiles/);
  });

  test('open() fails when the directory cannot be read', async () => {
    const { log } = capturingLogger();
    await assert.rejects(ProfileDirectory.open(join(dir, 'missing'), log), { code: 'ENOENT' });
  });
});
