import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  applySwitches,
  BuildConfigError,
  DEFAULT_BUILD_SETTINGS,
  OPTIONAL_PARTS,
  parseBuildConfig,
  PINNED_PARTS,
  settingsForChannel,
  settingsFromText,
} from '../../builder/config.js';
import { BUILD_SWITCHES, switchesFromArgs } from '../../builder/switches.js';
import { loadBuildConfig } from '../../builder/config-file.js';
import { formatProfileError } from '../../server/profiles/error.js';

const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

function problems(text: string, source = 'build.yaml'): string[] {
  const result = parseBuildConfig(text, source);
  assert.equal(result.ok, false, 'the file must be refused');
  return result.ok ? [] : result.errors.map(formatProfileError);
}

test('builder/build.yaml holds exactly the defaults, with a comment above every setting', async () => {
  const path = repo('builder/build.yaml');
  assert.deepEqual(await loadBuildConfig(path), DEFAULT_BUILD_SETTINGS);
  const lines = (await readFile(path, 'utf8')).split('\n');
  const settings = lines.map((line, i) => ({ line, i })).filter(({ line }) => /^\s*[A-Za-z]+:/.test(line));
  // release, versions: and each pin, variant, parts: and each part, packages, iso: and its two settings, channels.
  assert.equal(settings.length, 2 + PINNED_PARTS.length + 2 + OPTIONAL_PARTS.length + 1 + 1 + 2 + 1, 'every setting and section is in the file');
  for (const { line, i } of settings) assert.match(lines[i - 1]!, /^\s*#/, `line ${i + 1} "${line.trim()}" has a comment above it`);
});

test('a file sets every field; what it leaves out keeps its default', () => {
  const settings = settingsFromText(
    [
      'release: bookworm',
      'variant: tiny',
      'versions:',
      '  xen: 4.17.5+72-g01140da4e8-1',
      '  memtest: 6.10-4',
      '  busybox: "1:1.35.0-4+deb12u1+b1"',
      'parts:',
      '  memtest: false',
      '  debianGuest: true',
      '  iso: false',
      'iso:',
      '  sourceDateEpoch: 1700000000',
      '  volumeLabel: RB_TEST_01',
      '',
    ].join('\n'),
    'mine.yaml',
  );
  assert.deepEqual(settings, {
    release: 'bookworm',
    variant: 'tiny',
    versions: { xen: '4.17.5+72-g01140da4e8-1', kernel: '', ipxe: '', memtest: '6.10-4', busybox: '1:1.35.0-4+deb12u1+b1' },
    parts: { memtest: false, guest: true, debianGuest: true, iso: false },
    packages: [],
    iso: { sourceDateEpoch: 1_700_000_000, volumeLabel: 'RB_TEST_01' },
    channels: {},
  });
  assert.deepEqual(settingsFromText('# nothing set\n', 'empty.yaml'), DEFAULT_BUILD_SETTINGS);
  assert.deepEqual(
    settingsFromText('versions:\n  # xen: 4.17.5+72-g01140da4e8-1\nparts:\niso:\n', 'commented.yaml'),
    DEFAULT_BUILD_SETTINGS,
    'sections with every setting commented out',
  );
  // A version YAML would read as a number keeps its text.
  assert.equal(settingsFromText('versions:\n  memtest: 6.10\n', 'n.yaml').versions.memtest, '6.10');
});

test('every problem names the file, line, column and field; unknown fields are refused', () => {
  assert.deepEqual(
    problems(
      [
        'release: trixie', // 1
        'varient: tiny', // 2
        'versions:', // 3
        '  xen: latest', // 4
        '  qemu: 1.0', // 5
        'parts:', // 6
        '  iso: no', // 7
        '  memtest: 1', // 8
        'iso:', // 9
        '  sourceDateEpoch: -5', // 10
        '  volumeLabel: rackboot live', // 11
        '',
      ].join('\n'),
    ),
    [
      'build.yaml:1:10: release: "trixie" is not a release this build knows (want bookworm: the package names are bookworm\'s)',
      'build.yaml:2:1: varient: unknown field; known fields here: release, versions, variant, parts, packages, iso, channels',
      'build.yaml:4:8: versions.xen: "latest" is not a Debian version (want e.g. 4.17.5+72-g01140da4e8-1 or 1:1.35.0-4, or "" for the newest)',
      'build.yaml:5:3: versions.qemu: unknown field; known fields here: xen, kernel, ipxe, memtest, busybox',
      'build.yaml:7:8: parts.iso: want true or false',
      'build.yaml:8:12: parts.memtest: want true or false',
      'build.yaml:10:20: iso.sourceDateEpoch: "-5" is not a whole number of seconds since 1970 (want e.g. 1686355200)',
      'build.yaml:11:16: iso.volumeLabel: "rackboot live" is not an ISO 9660 volume label (want 1 to 32 of A-Z, 0-9 and _)',
    ],
  );
  assert.deepEqual(problems('variant: [tiny]\n'), ['build.yaml:1:10: variant: want a single value']);
  assert.deepEqual(problems('variant: huge\n'), ['build.yaml:1:10: variant: "huge" is not a variant (want debian or tiny)']);
  assert.deepEqual(problems('parts: yes\n'), ['build.yaml:1:8: parts: want a mapping of memtest, guest, debianGuest, iso']);
  assert.deepEqual(problems('versions:\n  1: x\n'), [
    'build.yaml:2:3: versions: field names are plain words; known fields here: xen, kernel, ipxe, memtest, busybox',
  ]);
  assert.deepEqual(problems('- release\n'), ['build.yaml:1:1: want a mapping of release, versions, variant, parts, packages, iso, channels']);
  assert.deepEqual(problems('variant: &x tiny\nrelease: *x\n'), ['build.yaml:2:10: aliases (*x) are not supported here; write the value out']);
  // The parser notices the missing quote at the end of the file.
  assert.deepEqual(problems('versions:\n  xen: "4.17\n'), ['build.yaml:3:1: Missing closing "quote']);
  assert.deepEqual(problems('variant: tiny\nvariant: debian\n').length, 1, 'a repeated key is refused');
});

test("channels: each lays its variant, versions and parts over the top level's; a bad or unknown channel is named", () => {
  const text = [
    'variant: tiny', // 1
    'versions:', // 2
    '  xen: 4.17.5+72-g01140da4e8-1', // 3
    'channels:', // 4
    '  testing:', // 5
    '    versions:', // 6
    '      kernel: 6.1.158-1', // 7
    '    parts:', // 8
    '      debianGuest: true', // 9
    '  fat:', // 10
    '    variant: debian', // 11
    '  empty:', // 12
    '',
  ].join('\n');
  const settings = settingsFromText(text, 'build.yaml');
  assert.deepEqual(Object.keys(settings.channels), ['testing', 'fat', 'empty']);
  // The default channel (none named, or "default") takes the top level as it is.
  assert.equal(settingsForChannel(settings, undefined, 'build.yaml'), settings);
  assert.equal(settingsForChannel(settings, 'default', 'build.yaml'), settings);
  const testing = settingsForChannel(settings, 'testing', 'build.yaml');
  assert.equal(testing.variant, 'tiny');
  assert.deepEqual(testing.versions, { ...DEFAULT_BUILD_SETTINGS.versions, xen: '4.17.5+72-g01140da4e8-1', kernel: '6.1.158-1' });
  assert.deepEqual(testing.parts, { ...DEFAULT_BUILD_SETTINGS.parts, debianGuest: true });
  assert.equal(settingsForChannel(settings, 'fat', 'build.yaml').variant, 'debian');
  assert.deepEqual(settingsForChannel(settings, 'empty', 'build.yaml').versions, settings.versions);
  // Switches still win over the channel's settings.
  assert.equal(applySwitches(testing, { versions: { kernel: '6.1.159-1' } }).versions.kernel, '6.1.159-1');
  assert.throws(
    () => settingsForChannel(settings, 'nightly', 'build.yaml'),
    (error: unknown) =>
      error instanceof BuildConfigError && error.message === '--channel nightly: no channel of that name in build.yaml (it has testing, fat, empty)',
  );
  assert.throws(
    () => settingsForChannel(DEFAULT_BUILD_SETTINGS, 'testing', 'b.yaml'),
    /--channel testing: no channel of that name in b\.yaml \(it names none\)/,
  );
  assert.throws(() => settingsForChannel(settings, 'Testing!', 'build.yaml'), /--channel Testing!: "Testing!" is not a channel name/);
  assert.throws(() => settingsForChannel(settings, '__proto__', 'build.yaml'), /--channel __proto__: "__proto__" is not a channel name/);
  assert.deepEqual(
    problems(
      [
        'channels:', // 1
        '  Testing:', // 2
        '    variant: tiny', // 3
        '  default:', // 4
        '    variant: tiny', // 5
        '  nightly:', // 6
        '    release: trixie', // 7
        '    versions:', // 8
        '      xen: latest', // 9
        '  weekly: tiny', // 10
        '',
      ].join('\n'),
    ),
    [
      'build.yaml:2:3: channels.Testing: "Testing" is not a channel name (want a lower-case letter, then up to 31 of a-z, 0-9 and -)',
      'build.yaml:4:3: channels.default: "default" is the channel of builds made without --channel; its settings are the top-level ones',
      'build.yaml:7:5: channels.nightly.release: unknown field; known fields here: versions, variant, parts, packages',
      'build.yaml:9:12: channels.nightly.versions.xen: "latest" is not a Debian version (want e.g. 4.17.5+72-g01140da4e8-1 or 1:1.35.0-4, or "" for the newest)',
      'build.yaml:10:11: channels.weekly: want a mapping of versions, variant, parts, packages',
    ],
  );
  assert.deepEqual(problems('channels: [testing]\n'), [
    'build.yaml:1:11: channels: want a mapping of channel names to their settings (versions, variant, parts, packages)',
  ]);
});

test("packages: extra Debian packages at the top level, a channel's list replacing it; bad names, repeats and the tiny variant are refused", () => {
  const settings = settingsFromText(
    [
      'packages: [htop, tcpdump]',
      'channels:',
      '  fat:',
      '    packages: [htop, tcpdump, ethtool, g++]',
      '  lean:',
      '    packages: []',
      '  same:',
      '    variant: debian',
      '',
    ].join('\n'),
    'build.yaml',
  );
  assert.deepEqual(settings.packages, ['htop', 'tcpdump']);
  assert.deepEqual(settingsForChannel(settings, 'fat', 'build.yaml').packages, ['htop', 'tcpdump', 'ethtool', 'g++']);
  assert.deepEqual(settingsForChannel(settings, 'lean', 'build.yaml').packages, []);
  assert.deepEqual(settingsForChannel(settings, 'same', 'build.yaml').packages, ['htop', 'tcpdump']);
  assert.deepEqual(problems(['packages: htop', 'channels:', '  fat:', '    packages: [htop, "htop", Tcpdump, "vim=2:9.0", ""]', ''].join('\n')), [
    'build.yaml:1:11: packages: want a list of Debian package names, such as [htop, tcpdump]',
    'build.yaml:4:22: channels.fat.packages[1]: "htop" is listed twice',
    'build.yaml:4:30: channels.fat.packages[2]: "Tcpdump" is not a Debian package name (want lower-case letters, digits, +, - and ., such as htop or tcpdump; no version)',
    'build.yaml:4:39: channels.fat.packages[3]: "vim=2:9.0" is not a Debian package name (want lower-case letters, digits, +, - and ., such as htop or tcpdump; no version)',
    'build.yaml:4:52: channels.fat.packages[4]: empty; want a Debian package name',
  ]);
  // The tiny runtime has no package manager: said before anything is built, naming the setting.
  assert.throws(
    () => applySwitches(settings, { variant: 'tiny' }),
    (error: unknown) =>
      error instanceof BuildConfigError &&
      error.message === 'packages: extra packages (htop, tcpdump) go into the Debian runtime; variant tiny has no package manager (use variant debian)',
  );
});

test('switches win over the file, the file over the defaults; a bad switch is named', () => {
  const file = settingsFromText('variant: tiny\nversions:\n  ipxe: 1.0.0+git-20190125.36a4c85-5.1\nparts:\n  guest: false\n', 'f.yaml');
  const settings = applySwitches(file, {
    variant: 'debian',
    versions: { xen: '4.17.5+72-g01140da4e8-1' },
    parts: { iso: false },
    iso: { sourceDateEpoch: '1700000000', volumeLabel: 'X' },
  });
  assert.deepEqual(settings, {
    release: 'bookworm',
    variant: 'debian',
    versions: { xen: '4.17.5+72-g01140da4e8-1', kernel: '', ipxe: '1.0.0+git-20190125.36a4c85-5.1', memtest: '', busybox: '' },
    parts: { memtest: true, guest: false, debianGuest: false, iso: false },
    packages: [],
    iso: { sourceDateEpoch: 1_700_000_000, volumeLabel: 'X' },
    channels: {},
  });
  assert.deepEqual(applySwitches(file, {}), file, 'no switches: the file as it was');
  assert.throws(
    () => applySwitches(file, { release: 'sid', versions: { kernel: 'new' }, iso: { sourceDateEpoch: 'now', volumeLabel: 'a b' } }),
    (error: unknown) => {
      assert.ok(error instanceof BuildConfigError);
      assert.deepEqual(error.problems, [
        '--release: "sid" is not a release this build knows (want bookworm: the package names are bookworm\'s)',
        '--kernel-version: "new" is not a Debian version (want e.g. 4.17.5+72-g01140da4e8-1 or 1:1.35.0-4, or "" for the newest)',
        '--source-date-epoch: "now" is not a whole number of seconds since 1970 (want e.g. 1686355200)',
        '--volume-label: "a b" is not an ISO 9660 volume label (want 1 to 32 of A-Z, 0-9 and _)',
      ]);
      return true;
    },
  );
});

test('a file that cannot be read is named', async () => {
  await assert.rejects(
    loadBuildConfig('/nonexistent/build.yaml'),
    /^BuildConfigError: \/nonexistent\/build\.yaml: cannot read the build configuration: ENOENT$/,
  );
});

test('rackboot build has a switch for every setting, and the CLI refuses a bad file naming the line', async () => {
  const cli = repo('dist/server/cli.js');
  const help = execFileSync('node', [cli, 'build', '--help'], { encoding: 'utf8' });
  const switches = [
    '--config',
    '--release',
    ...PINNED_PARTS.map((p) => `--${p}-version`),
    '--variant',
    ...OPTIONAL_PARTS.map((p) => `--${p.replace(/[A-Z]/g, (upper) => `-${upper.toLowerCase()}`)}`),
    '--source-date-epoch',
    '--volume-label',
  ];
  for (const name of switches) assert.match(help, new RegExp(`^\\s+${name}\\s`, 'm'), name);

  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-config-'));
  try {
    await writeFile(join(dir, 'bad.yaml'), 'variant: tiny\nparts:\n  isos: false\n');
    let stderr = '';
    let status = 0;
    try {
      execFileSync('node', [cli, 'build', '--out', join(dir, 'out'), '--config', join(dir, 'bad.yaml')], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (error) {
      ({ stderr, status } = error as { stderr: string; status: number });
    }
    assert.equal(status, 2);
    assert.equal(stderr, `rackboot build: ${join(dir, 'bad.yaml')}:3:3: parts.isos: unknown field; known fields here: memtest, guest, debianGuest, iso\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('each build switch names a setting of the file, and the switches given become settings over the file', () => {
  for (const { flag, setting } of BUILD_SWITCHES) {
    const path = setting.split('.');
    const parent = path.slice(0, -1).reduce<unknown>((at, key) => (at as Record<string, unknown> | undefined)?.[key], DEFAULT_BUILD_SETTINGS);
    assert.ok(typeof parent === 'object' && parent !== null && path.at(-1)! in parent, `--${flag}: ${setting} is a setting`);
  }
  assert.deepEqual(
    switchesFromArgs({ 'xen-version': '4.17.1', 'no-such': 1, iso: false, 'volume-label': 'RB', variant: 'tiny', xenVersion: '4.17.1', $0: 'rackboot' }),
    { versions: { xen: '4.17.1' }, parts: { iso: false }, iso: { volumeLabel: 'RB' }, variant: 'tiny' },
  );
  assert.deepEqual(switchesFromArgs({}), {});
  const settings = applySwitches(DEFAULT_BUILD_SETTINGS, switchesFromArgs({ 'memtest-version': '6.10-4', guest: false }));
  assert.equal(settings.versions.memtest, '6.10-4');
  assert.equal(settings.parts.guest, false);
  assert.equal(settings.parts.iso, DEFAULT_BUILD_SETTINGS.parts.iso, "what is not switched keeps the file's value");
});
