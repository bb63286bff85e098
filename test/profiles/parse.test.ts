import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { formatProfileError } from '../../server/profiles/error.js';
import { parseProfile } from '../../server/profiles/parse.js';
import type { Profile } from '../../server/profiles/profile.js';

/** The hash of "rackboot" from profiles/examples/node01.yaml. */
const hash = '$6$rackbootexample$c9gz068gbVCrsYzUZYmQ8TU/sRRVG5tWMG5CXM1Q7QLswbTNXm167ej2CvLwSMwrKXI/lbjW68imEa2vjpNk7/';

const file = 'profiles/node01.yaml';

function parsed(text: string, source = file): Profile {
  const result = parseProfile(text, source);
  assert.ok(result.ok, result.ok ? '' : result.errors.map(formatProfileError).join('\n'));
  return result.profile;
}

/** The rendered errors, as logs and the CLI show them. */
function errors(text: string, source = file): string[] {
  const result = parseProfile(text, source);
  assert.equal(result.ok, false, 'expected errors');
  return result.ok ? [] : result.errors.map(formatProfileError);
}

/** Keys made with ssh-keygen (test/fixtures/ssh-public-keys.txt). */
const fixtureKeys = readFileSync(new URL('../../../test/fixtures/ssh-public-keys.txt', import.meta.url), 'utf8').split('\n');
const ed25519Key = fixtureKeys.find((line) => line.startsWith('ssh-ed25519 '))!;
const dsaKey = fixtureKeys.find((line) => line.startsWith('ssh-dss '))!;

/** A valid static profile, one field a line, so tests can change a line and know its number. */
const staticLines = [
  'mac: 52:54:00:12:34:56', // 1
  'hostname: node01', // 2
  'network:', // 3
  '  mode: static', // 4
  '  address: 198.18.0.50/24', // 5
  '  gateway: 198.18.0.1', // 6
  '  dns: [198.18.0.1]', // 7
  `rootPasswordHash: "${hash}"`, // 8
  'ssh: true', // 9
  'timezone: Etc/UTC', // 10
  'boot:', // 11
  '  entry: standard', // 12
  '  xenArgs: "dom0_mem=512M"', // 13
  '  kernelArgs: ""', // 14
  'domains: []', // 15
];

/** staticLines with line `number` (1-based) replaced, or removed when `text` is undefined. */
function withLine(number: number, text: string | undefined): string {
  const lines = [...staticLines];
  if (text === undefined) lines.splice(number - 1, 1);
  else lines[number - 1] = text;
  return lines.join('\n') + '\n';
}

describe('parseProfile: valid profiles', () => {
  test('a full static profile', () => {
    assert.deepEqual(parsed(withLine(15, 'domains: []')), {
      source: file,
      mac: '52:54:00:12:34:56',
      hostname: 'node01',
      network: { mode: 'static', address: '198.18.0.50', prefixLength: 24, gateway: '198.18.0.1', dns: ['198.18.0.1'] },
      rootPasswordHash: hash,
      ssh: true,
      timezone: 'Etc/UTC',
      boot: { entry: 'standard', xenArgs: 'dom0_mem=512M', kernelArgs: '', menuTimeout: 5 },
      sshAuthorizedKeys: [],
      aptUpdate: false,
      domains: [],
    });
  });

  test('defaults for everything but mac and hostname', () => {
    assert.deepEqual(parsed('mac: 52-54-00-AB-CD-EF\nhostname: node02\n'), {
      source: file,
      mac: '52:54:00:ab:cd:ef',
      hostname: 'node02',
      network: { mode: 'dhcp' },
      ssh: false,
      timezone: 'Etc/UTC',
      boot: { entry: 'standard', xenArgs: 'dom0_mem=256M,max:256M', kernelArgs: '', menuTimeout: 5 },
      sshAuthorizedKeys: [],
      aptUpdate: false,
      domains: [],
    });
  });

  test('partial boot settings keep the other defaults', () => {
    const profile = parsed('mac: 52:54:00:12:34:56\nhostname: n\nboot:\n  entry: memtest\n');
    assert.deepEqual(profile.boot, { entry: 'memtest', xenArgs: 'dom0_mem=256M,max:256M', kernelArgs: '', menuTimeout: 5 });
  });

  test('boot.channel and boot.build: a channel by name ("default" too), or a build by id', () => {
    const base = 'mac: 52:54:00:12:34:56\nhostname: n\nboot:\n';
    assert.equal(parsed(`${base}  channel: testing\n`).boot.channel, 'testing');
    assert.equal(parsed(`${base}  channel: default\n`).boot.channel, 'default');
    assert.equal(parsed(`${base}  build: 20261206T074500.123Z-1a2b3c4d\n`).boot.build, '20261206T074500.123Z-1a2b3c4d');
    assert.equal(parsed(`${base}  entry: testing\n`).boot.channel, undefined);
    assert.equal(parsed(`${base}  allowReboot: false\n`).boot.allowReboot, false);
    assert.equal(parsed(`${base}  entry: testing\n`).boot.allowReboot, undefined, 'left out: allowed');
    assert.deepEqual(errors(`${base}  allowReboot: "no"\n`), [`${file}:4:16: boot.allowReboot: want true or false, got the string "no"`]);
  });

  test('static without gateway or dns', () => {
    const profile = parsed('mac: 52:54:00:12:34:56\nhostname: n\nnetwork: {mode: static, address: 198.19.2.3/8}\n');
    assert.deepEqual(profile.network, { mode: 'static', address: '198.19.2.3', prefixLength: 8, dns: [] });
  });

  test('/31 and /32 have no network or broadcast address (RFC 3021)', () => {
    const base = 'mac: 52:54:00:12:34:56\nhostname: n\nnetwork:\n  mode: static\n';
    assert.equal(parsed(`${base}  address: 198.18.0.0/31\n  gateway: 198.18.0.1\n`).network.mode, 'static');
    assert.equal(parsed(`${base}  address: 198.18.0.7/32\n`).network.mode, 'static');
  });

  test('domains: defaults for every field but name, and every field written out', () => {
    const profile = parsed(
      [
        'mac: 52:54:00:12:34:56',
        'hostname: n',
        'domains:',
        '  - name: web',
        '  - name: db.1',
        '    memory: 2048',
        '    vcpus: 2',
        '    kernel: vmlinuz-guest',
        '    ramdisk: db.initrd.gz',
        '    extraArgs: "quiet db.role=primary"',
        '    bridge: br-storage',
        '    mac: 02-00-00-AB-CD-01',
        '    autostart: false',
        '    restart: true',
        '',
      ].join('\n'),
    );
    assert.deepEqual(profile.domains, [
      { name: 'web', memory: 96, vcpus: 1, kernel: 'vmlinuz', ramdisk: 'guest.initrd.gz', extraArgs: '', bridge: 'xenbr0', autostart: true, restart: false },
      {
        name: 'db.1',
        memory: 2048,
        vcpus: 2,
        kernel: 'vmlinuz-guest',
        ramdisk: 'db.initrd.gz',
        extraArgs: 'quiet db.role=primary',
        bridge: 'br-storage',
        mac: '02:00:00:ab:cd:01',
        autostart: false,
        restart: true,
      },
    ]);
  });

  test('sshAuthorizedKeys: every key ssh-keygen makes that OpenSSH 9 accepts, aptUpdate, menuTimeout', () => {
    const keys = readFileSync(new URL('../../../test/fixtures/ssh-public-keys.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#') && !line.startsWith('ssh-dss'));
    assert.equal(keys.length, 6);
    const text = [
      'mac: 52:54:00:12:34:56',
      'hostname: n',
      'sshAuthorizedKeys:',
      ...keys.map((key) => `  - "${key}"`),
      'aptUpdate: true',
      'boot:',
      '  menuTimeout: 0',
      '',
    ].join('\n');
    const profile = parsed(text);
    assert.deepEqual(profile.sshAuthorizedKeys, keys);
    assert.equal(profile.aptUpdate, true);
    assert.equal(profile.boot.menuTimeout, 0);
  });

  test('hash with rounds, dotted host names, three-part time zones', () => {
    const rounds = '$6$rounds=5000$saltsalt$' + 'a'.repeat(86);
    const profile = parsed(`mac: 52:54:00:12:34:56\nhostname: node01.rack3.example\nrootPasswordHash: "${rounds}"\ntimezone: America/Argentina/Buenos_Aires\n`);
    assert.equal(profile.rootPasswordHash, rounds);
    assert.equal(profile.hostname, 'node01.rack3.example');
    assert.equal(profile.timezone, 'America/Argentina/Buenos_Aires');
    assert.equal(parsed('mac: 52:54:00:12:34:56\nhostname: n\ntimezone: UTC\n').timezone, 'UTC');
    assert.equal(parsed('mac: 52:54:00:12:34:56\nhostname: n\ntimezone: Etc/GMT+5\n').timezone, 'Etc/GMT+5');
  });

  test('the default profile: no mac, {mac} in the hostname, only in default.yaml or default.yml', () => {
    const text = 'hostname: node-{mac}\n';
    assert.equal(parsed(text, 'profiles/default.yaml').mac, null);
    assert.equal(parsed(text, 'profiles/default.yaml').hostname, 'node-{mac}');
    assert.equal(parsed(text, 'default.yml').mac, null);
  });

  test('CRLF line ends', () => {
    assert.equal(parsed('mac: 52:54:00:12:34:56\r\nhostname: node01\r\n').hostname, 'node01');
  });
});

describe('parseProfile: MAC forms', () => {
  const cases: Array<[string, string]> = [
    ['52:54:00:12:34:56', '52:54:00:12:34:56'],
    ['52:54:00:AB:cd:Ef', '52:54:00:ab:cd:ef'],
    ['52-54-00-12-34-56', '52:54:00:12:34:56'],
    ['"525400abcdef"', '52:54:00:ab:cd:ef'],
    // Unquoted, YAML reads these as numbers; the text as written is used.
    ['525400123456', '52:54:00:12:34:56'],
    ['000000000001', '00:00:00:00:00:01'],
  ];
  for (const [written, expected] of cases) {
    test(`mac: ${written}`, () => {
      assert.equal(parsed(`mac: ${written}\nhostname: n\n`).mac, expected);
    });
  }

  test('under %YAML 1.1, where 52:54:00:12:34:56 is a base-60 number', () => {
    assert.equal(parsed('%YAML 1.1\n---\nmac: 52:54:00:12:34:56\nhostname: node01\n').mac, '52:54:00:12:34:56');
  });

  test('under %YAML 1.1, where n is false', () => {
    assert.deepEqual(errors('%YAML 1.1\n---\nmac: 52:54:00:12:34:56\nhostname: n\n'), [
      `${file}:4:11: hostname: want a string, got false; put it in quotes if you meant the text "n"`,
    ]);
  });
});

describe('parseProfile: rejections, with file:line:column and field', () => {
  const cases: Array<{ name: string; text: string; source?: string; want: string[] }> = [
    {
      name: 'YAML syntax error',
      text: 'mac: 52:54:00:12:34:56\nhostname: [node01\n',
      want: [`${file}:3:1: Flow sequence in block collection must be sufficiently indented and end with a ]`],
    },
    {
      name: 'duplicate key',
      text: 'mac: 52:54:00:12:34:56\nhostname: a\nhostname: b\n',
      want: [`${file}:3:1: Map keys must be unique`],
    },
    {
      name: 'two YAML documents',
      text: 'mac: 52:54:00:12:34:56\nhostname: a\n---\nhostname: b\n',
      want: [`${file}:3:1: Source contains multiple documents; please use YAML.parseAllDocuments()`],
    },
    {
      name: 'an empty file',
      text: '# nothing yet\n',
      want: [`${file}:1:1: the file holds no profile; want at least mac: and hostname: (see profiles/default.yaml)`],
    },
    {
      name: 'a list instead of a mapping',
      text: '- mac: 52:54:00:12:34:56\n',
      want: [`${file}:1:1: want a mapping of fields (mac: ..., hostname: ...), got a list`],
    },
    {
      name: 'an alias',
      text: 'mac: &m 52:54:00:12:34:56\nhostname: *m\n',
      want: [`${file}:2:11: aliases (*m) are not supported in profiles; write the value out`],
    },
    {
      name: 'unknown top-level field, with a suggestion',
      text: withLine(9, 'sshd: true'),
      want: [`${file}:9:1: sshd: unknown field; did you mean ssh?`],
    },
    {
      name: 'unknown top-level field, with the list of known ones',
      text: withLine(15, 'colour: blue'),
      want: [
        `${file}:15:1: colour: unknown field; known fields here: mac, hostname, network, rootPasswordHash, ssh, sshAuthorizedKeys, timezone, aptUpdate, boot, domains, storage, relay, hosts, bmc`,
      ],
    },
    {
      name: 'unknown nested field',
      text: withLine(6, '  gatway: 198.18.0.1'),
      want: [`${file}:6:3: network.gatway: unknown field; did you mean gateway?`],
    },
    {
      name: 'unknown boot field',
      text: withLine(14, '  kernelargs: quiet'),
      want: [`${file}:14:3: boot.kernelargs: unknown field; did you mean kernelArgs?`],
    },
    {
      name: 'a field name that is not a word',
      text: withLine(15, '[a, b]: c'),
      want: [`${file}:15:1: field names are plain words; got a list as a field name`],
    },
    {
      name: 'bad MAC',
      text: withLine(1, 'mac: 52:54:00:12:34'),
      want: [`${file}:1:6: mac: "52:54:00:12:34" is not a MAC address (want six hex pairs: 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456)`],
    },
    {
      name: 'MAC with mixed separators',
      text: withLine(1, 'mac: 52:54-00:12:34:56'),
      want: [`${file}:1:6: mac: "52:54-00:12:34:56" is not a MAC address (want six hex pairs: 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456)`],
    },
    {
      name: 'MAC of the wrong type',
      text: withLine(1, 'mac: [52, 54]'),
      want: [`${file}:1:6: mac: want a string, got a list`],
    },
    {
      name: 'missing mac outside default.yaml',
      text: withLine(1, undefined),
      want: [
        `${file}:1:1: mac: missing; every profile names its host by MAC (or its slot, with relay:), except default.yaml (the profile for hosts without a file of their own)`,
      ],
    },
    {
      name: 'mac in default.yaml',
      text: 'hostname: node-{mac}\nmac: 52:54:00:12:34:56\n',
      source: 'profiles/default.yaml',
      want: [
        'profiles/default.yaml:2:1: mac: not allowed in default.yaml, the profile for hosts without a file of their own; give this host a file of its own',
      ],
    },
    {
      name: 'missing hostname',
      text: withLine(2, undefined),
      want: [`${file}:1:1: hostname: missing; want a name such as node01`],
    },
    {
      name: 'empty hostname value',
      text: withLine(2, 'hostname:'),
      want: [`${file}:2:1: hostname: want a string, got nothing (an empty value)`],
    },
    {
      name: 'hostname with an underscore',
      text: withLine(2, 'hostname: node_01'),
      want: [`${file}:2:11: hostname: "node_01" contains "_"; host names use letters, digits and "-" (RFC 1123)`],
    },
    {
      name: 'hostname label ending with a hyphen',
      text: withLine(2, 'hostname: node-.rack'),
      want: [`${file}:2:11: hostname: "node-.rack": label "node-" starts or ends with "-" (RFC 1123)`],
    },
    {
      name: 'hostname with a trailing dot',
      text: withLine(2, 'hostname: node01.'),
      want: [`${file}:2:11: hostname: "node01." has an empty label (two dots in a row, or a dot at the start or end)`],
    },
    {
      name: 'hostname label over 63 characters',
      text: withLine(2, `hostname: ${'a'.repeat(64)}`),
      want: [`${file}:2:11: hostname: "${'a'.repeat(64)}": label "aaaaaaaaaaaaaaaa..." is 64 characters long; at most 63 (RFC 1123)`],
    },
    {
      name: 'a number as hostname',
      text: withLine(2, 'hostname: 1234'),
      want: [`${file}:2:11: hostname: want a string, got the number 1234; put it in quotes if you meant the text "1234"`],
    },
    {
      name: '{mac} outside default.yaml',
      text: withLine(2, 'hostname: node-{mac}'),
      want: [`${file}:2:11: hostname: "node-{mac}": {mac} is only filled in by default.yaml; write this host's name`],
    },
    {
      name: 'unknown placeholder in default.yaml',
      text: 'hostname: node-{ip}\n',
      source: 'profiles/default.yaml',
      want: ['profiles/default.yaml:1:11: hostname: "node-{ip}": unknown placeholder {ip}; only {mac} is filled in'],
    },
    {
      name: 'default.yaml hostname too long once {mac} is filled in',
      text: `hostname: ${'n'.repeat(52)}{mac}\n`,
      source: 'profiles/default.yaml',
      want: [
        `profiles/default.yaml:1:11: hostname: "${'n'.repeat(52)}525400123456": label "nnnnnnnnnnnnnnnn..." is 64 characters long; at most 63 (RFC 1123) ({mac} filled in as 525400123456)`,
      ],
    },
    {
      name: 'network that is not a mapping',
      text: 'mac: 52:54:00:12:34:56\nhostname: n\nnetwork: dhcp\n',
      want: [`${file}:3:10: network: want a mapping of fields (mode: ..., address: ...), got the string "dhcp"`],
    },
    {
      name: 'unknown network mode',
      text: withLine(4, '  mode: manual'),
      want: [`${file}:4:9: network.mode: "manual" is not a network mode (want dhcp or static)`],
    },
    {
      name: 'the spec example: a bad address',
      text: 'mac: 52:54:00:12:34:56\nhostname: node01\nnetwork:\n  address: 198.18.0.500/24\n  mode: static\n',
      want: [`${file}:4:12: network.address: "198.18.0.500/24" is not an IPv4 address with a prefix (want a.b.c.d/n)`],
    },
    {
      name: 'address without prefix',
      text: withLine(5, '  address: 198.18.0.50'),
      want: [
        `${file}:5:12: network.address: "198.18.0.50" is not an IPv4 address with a prefix (want a.b.c.d/n); add the prefix length, such as 198.18.0.50/24`,
      ],
    },
    {
      name: 'address with leading zeros',
      text: withLine(5, '  address: 198.18.0.050/24'),
      want: [
        `${file}:5:12: network.address: "198.18.0.050/24" is not an IPv4 address with a prefix (want a.b.c.d/n); leading zeros are not allowed (some tools read them as octal)`,
      ],
    },
    {
      name: 'prefix over 32',
      text: withLine(5, '  address: 198.18.0.50/33'),
      want: [`${file}:5:12: network.address: "198.18.0.50/33" is not an IPv4 address with a prefix (want a.b.c.d/n)`],
    },
    {
      name: 'prefix 0',
      text: withLine(5, '  address: 198.18.0.50/0'),
      want: [`${file}:5:12: network.address: "198.18.0.50/0" has prefix length 0; want 1 to 32`],
    },
    {
      name: 'network address as host address',
      text: withLine(5, '  address: 198.18.0.0/24'),
      want: [`${file}:5:12: network.address: "198.18.0.0/24" is the network address of 198.18.0.0/24, not a host address`],
    },
    {
      name: 'broadcast address as host address',
      text: withLine(5, '  address: 198.18.0.255/24'),
      want: [`${file}:5:12: network.address: "198.18.0.255/24" is the broadcast address of 198.18.0.0/24, not a host address`],
    },
    {
      name: 'loopback address',
      text: withLine(5, '  address: 127.0.0.2/8'),
      want: [`${file}:5:12: network.address: "127.0.0.2/8" is a loopback address (127.0.0.0/8)`],
    },
    {
      name: 'static without address',
      text: withLine(5, undefined),
      want: [`${file}:4:9: network.address: missing; mode static needs the host address with its prefix, such as 198.18.0.50/24`],
    },
    {
      name: 'static settings with dhcp',
      text: withLine(4, '  mode: dhcp'),
      want: [
        `${file}:5:3: network.address: only used with mode: static (the DHCP server provides it)`,
        `${file}:6:3: network.gateway: only used with mode: static (the DHCP server provides it)`,
        `${file}:7:3: network.dns: only used with mode: static (the DHCP server provides it)`,
      ],
    },
    {
      name: 'address without mode',
      text: withLine(4, undefined),
      want: [
        `${file}:4:3: network.address: only used with mode: static (network.mode is dhcp when left out)`,
        `${file}:5:3: network.gateway: only used with mode: static (network.mode is dhcp when left out)`,
        `${file}:6:3: network.dns: only used with mode: static (network.mode is dhcp when left out)`,
      ],
    },
    {
      name: 'static in default.yaml',
      text: 'hostname: node-{mac}\nnetwork:\n  mode: static\n  address: 198.18.0.50/24\n',
      source: 'profiles/default.yaml',
      want: ['profiles/default.yaml:3:9: network.mode: static is not allowed in default.yaml: every host without a file of its own would get the same address'],
    },
    {
      name: 'bad gateway',
      text: withLine(6, '  gateway: 198.18.0.1.1'),
      want: [`${file}:6:12: network.gateway: "198.18.0.1.1" is not an IPv4 address (want a.b.c.d)`],
    },
    {
      name: 'gateway outside the subnet',
      text: withLine(6, '  gateway: 198.18.1.1'),
      want: [`${file}:6:12: network.gateway: "198.18.1.1" is outside the host's subnet 198.18.0.0/24; the gateway must be directly reachable`],
    },
    {
      name: 'gateway is the host itself',
      text: withLine(6, '  gateway: 198.18.0.50'),
      want: [`${file}:6:12: network.gateway: "198.18.0.50" is the host's own address`],
    },
    {
      name: 'gateway is the broadcast address',
      text: withLine(6, '  gateway: 198.18.0.255'),
      want: [`${file}:6:12: network.gateway: "198.18.0.255" is the broadcast address of 198.18.0.0/24, not a host address`],
    },
    {
      name: 'gateway is multicast',
      text: withLine(6, '  gateway: 224.0.0.1'),
      want: [`${file}:6:12: network.gateway: "224.0.0.1" is a multicast address (224.0.0.0/4)`],
    },
    {
      name: 'dns not a list',
      text: withLine(7, '  dns: 198.18.0.1'),
      want: [`${file}:7:8: network.dns: want a list of IPv4 addresses, such as [198.18.0.1], got the string "198.18.0.1"`],
    },
    {
      name: 'bad dns entry',
      text: withLine(7, '  dns: [198.18.0.1, 8.8.8]'),
      want: [`${file}:7:21: network.dns[1]: "8.8.8" is not an IPv4 address (want a.b.c.d)`],
    },
    {
      name: 'dns entry of the wrong type',
      text: withLine(7, '  dns: [198.18.0.1, 53]'),
      want: [`${file}:7:21: network.dns[1]: want a string, got the number 53; put it in quotes if you meant the text "53"`],
    },
    {
      name: 'too many name servers',
      text: withLine(7, '  dns: [198.18.0.1, 198.18.0.2, 198.18.0.3, 198.18.0.4]'),
      want: [`${file}:7:8: network.dns: lists 4 name servers; the resolver uses only the first 3`],
    },
    {
      name: 'a plain password',
      text: withLine(8, 'rootPasswordHash: hunter2'),
      want: [
        `${file}:8:19: rootPasswordHash: is not a crypt(3) hash (it may be a plain password, which must never be stored here); want "$6$salt$hash", make one with: openssl passwd -6`,
      ],
    },
    {
      name: 'an MD5 crypt hash',
      text: withLine(8, 'rootPasswordHash: "$1$salt$qJH7.N4xYta3aEG/dfqo/0"'),
      want: [`${file}:8:19: rootPasswordHash: is an MD5 crypt(3) hash; rackboot wants SHA-512 ("$6$..."), make one with: openssl passwd -6`],
    },
    {
      name: 'a yescrypt hash',
      text: withLine(8, 'rootPasswordHash: "$y$j9T$abc$def"'),
      want: [`${file}:8:19: rootPasswordHash: is a yescrypt crypt(3) hash; rackboot wants SHA-512 ("$6$..."), make one with: openssl passwd -6`],
    },
    {
      name: 'a SHA-512 hash cut short',
      text: withLine(8, `rootPasswordHash: "${hash.slice(0, -1)}"`),
      want: [`${file}:8:19: rootPasswordHash: has a hash part of 85 characters; SHA-512 crypt's is 86`],
    },
    {
      name: 'a salt of 17 characters',
      text: withLine(8, `rootPasswordHash: "$6$${'s'.repeat(17)}$${'a'.repeat(86)}"`),
      want: [`${file}:8:19: rootPasswordHash: has a salt of 17 characters; SHA-512 crypt uses at most 16`],
    },
    {
      name: 'an empty salt',
      text: withLine(8, `rootPasswordHash: "$6$$${'a'.repeat(86)}"`),
      want: [`${file}:8:19: rootPasswordHash: has an empty salt; want 1 to 16 characters, make one with: openssl passwd -6`],
    },
    {
      name: 'rounds out of range',
      text: withLine(8, `rootPasswordHash: "$6$rounds=999$salt$${'a'.repeat(86)}"`),
      want: [`${file}:8:19: rootPasswordHash: has rounds=999; crypt(3) uses 1000 to 999999999`],
    },
    {
      name: 'a character outside the crypt alphabet',
      text: withLine(8, `rootPasswordHash: "$6$salt$${'a'.repeat(85)}!"`),
      want: [
        `${file}:8:19: rootPasswordHash: is not a SHA-512 crypt(3) hash; want "$6$[rounds=N$]salt$hash" in the alphabet [./0-9A-Za-z], make one with: openssl passwd -6`,
      ],
    },
    {
      name: 'ssh: yes (a string in YAML 1.2)',
      text: withLine(9, 'ssh: yes'),
      want: [`${file}:9:6: ssh: want true or false, got the string "yes"`],
    },
    {
      name: 'timezone not of the tz form',
      text: withLine(10, 'timezone: CET'),
      want: [`${file}:10:11: timezone: "CET" is not of the form Area/Location; want a tz database name such as Etc/UTC, UTC or Europe/Paris`],
    },
    {
      name: 'timezone with an unknown area',
      text: withLine(10, 'timezone: Europa/Paris'),
      want: [
        `${file}:10:11: timezone: "Europa/Paris": "Europa" is not a tz database area (Africa, America, Antarctica, Arctic, Asia, Atlantic, Australia, Europe, Indian, Pacific, Etc)`,
      ],
    },
    {
      name: 'timezone with a path in it',
      text: withLine(10, 'timezone: Europe/../../etc/passwd'),
      want: [
        `${file}:10:11: timezone: "Europe/../../etc/passwd" is not of the form Area/Location; want a tz database name such as Etc/UTC, UTC or Europe/Paris`,
      ],
    },
    {
      name: 'unknown boot entry',
      text: withLine(12, '  entry: rescue'),
      want: [`${file}:12:10: boot.entry: "rescue" is not a boot entry (want standard, testing, guest or memtest)`],
    },
    {
      name: 'boot that is not a mapping',
      text: 'mac: 52:54:00:12:34:56\nhostname: n\nboot: standard\n',
      want: [`${file}:3:7: boot: want a mapping of fields (entry: ..., menuTimeout: ...), got the string "standard"`],
    },
    {
      name: 'xenArgs with a line break',
      text: withLine(13, '  xenArgs: "dom0_mem=512M\\nboot evil"'),
      want: [`${file}:13:12: boot.xenArgs: contains a line break (U+000A) at character 14; arguments must be one line`],
    },
    {
      name: 'kernelArgs with a control character',
      text: withLine(14, '  kernelArgs: "quiet\\tsplash"'),
      want: [`${file}:14:15: boot.kernelArgs: contains a control character (U+0009) at character 6; arguments must be one line`],
    },
    {
      name: 'kernelArgs with the password hash',
      text: withLine(14, `  kernelArgs: "rootpw=${hash}"`),
      want: [
        `${file}:14:15: boot.kernelArgs: contains the root password hash; command lines are readable by every user of the host (the runtime fetches the hash over HTTP instead)`,
      ],
    },
    {
      name: 'xenArgs of the wrong type',
      text: withLine(13, '  xenArgs: [dom0_mem=512M]'),
      want: [`${file}:13:12: boot.xenArgs: want a string, got a list`],
    },
    {
      name: 'domains that is not a list',
      text: withLine(15, 'domains: {}'),
      want: [`${file}:15:10: domains: want a list of domains (- name: web1 ...), got a mapping`],
    },
    {
      name: 'menuTimeout below zero',
      text: withLine(14, '  menuTimeout: -1'),
      want: [`${file}:14:16: boot.menuTimeout: -1 is below the minimum of 0 seconds`],
    },
    {
      name: 'menuTimeout with a unit',
      text: withLine(14, '  menuTimeout: 5s'),
      want: [
        `${file}:14:16: boot.menuTimeout: want a whole number of seconds (such as 5, or 0 to boot the entry at once without a menu), got the string "5s"; write the number alone, in seconds`,
      ],
    },
    {
      name: 'menuTimeout as a fraction',
      text: withLine(14, '  menuTimeout: 2.5'),
      want: [`${file}:14:16: boot.menuTimeout: want a whole number of seconds (such as 5, or 0 to boot the entry at once without a menu), got the number 2.5`],
    },
    {
      name: 'a channel that is no channel name',
      text: 'mac: 52:54:00:12:34:56\nhostname: n\nboot:\n  channel: Testing/1\n',
      want: [
        `${file}:4:12: boot.channel: "Testing/1" is not a channel name (want "default", or a lower-case letter then up to 31 of a-z, 0-9 and -, as in "rackboot build --channel testing")`,
      ],
    },
    {
      name: 'a build that is no build id',
      text: 'mac: 52:54:00:12:34:56\nhostname: n\nboot:\n  build: ../current\n',
      want: [`${file}:4:10: boot.build: "../current" is not a build id (want one as "rackboot builds list" prints it, such as 20261206T074500.123Z-1a2b3c4d)`],
    },
    {
      name: 'a build and a channel at once',
      text: 'mac: 52:54:00:12:34:56\nhostname: n\nboot:\n  channel: testing\n  build: 20261206T074500.123Z-1a2b3c4d\n',
      want: [`${file}:5:10: boot.build: names a build and a channel (boot.channel); a pinned build is the same whatever the channel, so leave one out`],
    },
    {
      name: 'menuTimeout of more than an hour',
      text: withLine(14, '  menuTimeout: 3601'),
      want: [`${file}:14:16: boot.menuTimeout: 3601 is above the maximum of 3600 seconds`],
    },
    {
      name: 'aptUpdate that is not a boolean',
      text: withLine(10, 'aptUpdate: "true"'),
      want: [`${file}:10:12: aptUpdate: want true or false, got the string "true"`],
    },
    {
      name: 'sshAuthorizedKeys as one string',
      text: withLine(9, 'sshAuthorizedKeys: "ssh-ed25519 AAAA"'),
      want: [`${file}:9:20: sshAuthorizedKeys: want a list of public keys, such as ["ssh-ed25519 AAAAC3Nza... user@host"], got the string "ssh-ed25519 AAAA"`],
    },
    {
      name: 'an SSH key of an unknown type, and a DSA key',
      text: withLine(9, `sshAuthorizedKeys: ["ssh-ed448 AAAA", "${dsaKey}"]`),
      want: [
        `${file}:9:21: sshAuthorizedKeys[0]: starts with "ssh-ed448", not a key type (want ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com); options before the type are not supported`,
        `${file}:9:39: sshAuthorizedKeys[1]: is a DSA key (ssh-dss), which OpenSSH 9 no longer accepts; make an Ed25519 key with: ssh-keygen -t ed25519`,
      ],
    },
    {
      name: 'an SSH key whose blob is of another type',
      text: withLine(9, `sshAuthorizedKeys: ["ssh-rsa ${ed25519Key.split(' ')[1]}"]`),
      want: [`${file}:9:21: sshAuthorizedKeys[0]: ssh-rsa key "AAAAC3NzaC1l...": the blob is a "ssh-ed25519" key, but the line says ssh-rsa`],
    },
    {
      name: 'an SSH key cut short',
      text: withLine(9, `sshAuthorizedKeys:\n  - ${ed25519Key.slice(0, 60)}`),
      want: [`${file}:10:5: sshAuthorizedKeys[0]: ssh-ed25519 key "AAAAC3NzaC1l...": the blob ends inside the Ed25519 key (32 bytes announced)`],
    },
    {
      name: 'an SSH key with broken base64',
      text: withLine(9, `sshAuthorizedKeys: ["ssh-ed25519 AAAAC3Nza!C1lZDI1NTE5 me"]`),
      want: [`${file}:9:21: sshAuthorizedKeys[0]: ssh-ed25519 key "AAAAC3Nza!C1..." is not valid base64`],
    },
    {
      name: 'a private key pasted instead of the public one',
      text: withLine(9, `sshAuthorizedKeys: ["-----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAA"]`),
      want: [`${file}:9:21: sshAuthorizedKeys[0]: is a PEM block, perhaps a private key; want the public key line from the .pub file`],
    },
    {
      name: 'domain without a name, and one with an unknown field',
      text: withLine(15, 'domains:\n  - memory: 256\n  - name: web\n    memroy: 256'),
      want: [
        `${file}:16:5: domains[0].name: missing; every domain needs a name, such as web1`,
        `${file}:18:5: domains[1].memroy: unknown field; did you mean memory?`,
      ],
    },
    {
      name: 'domain names: duplicate, bad character, all digits, Domain-0',
      text: withLine(15, 'domains:\n  - name: web\n  - name: web\n  - name: "we b"\n  - name: 42\n  - name: "007"\n  - name: Domain-0'),
      want: [
        `${file}:17:11: domains[1].name: "web" is already the name of domains[0]; names are unique within a profile`,
        `${file}:18:11: domains[2].name: "we b" contains " "; domain names use letters, digits, "_", "." and "-"`,
        `${file}:19:11: domains[3].name: want a string, got the number 42; put it in quotes if you meant the text "42"`,
        `${file}:20:11: domains[4].name: "007" is all digits, which xl reads as a domain id`,
        `${file}:21:11: domains[5].name: "Domain-0" is the name of dom0 itself`,
      ],
    },
    {
      name: 'domain memory and vcpus out of range or of the wrong kind',
      text: withLine(
        15,
        'domains:\n  - name: a\n    memory: 16\n    vcpus: 0\n  - name: b\n    memory: 512M\n    vcpus: 1000\n  - name: c\n    memory: 536870912',
      ),
      want: [
        `${file}:17:13: domains[0].memory: 16 is below the minimum of 32 MiB`,
        `${file}:18:12: domains[0].vcpus: 0 is below the minimum of 1 virtual CPUs`,
        `${file}:20:13: domains[1].memory: want a whole number of MiB (such as 256), got the string "512M"; write the number alone, in MiB`,
        `${file}:21:12: domains[1].vcpus: 1000 is above the maximum of 512 virtual CPUs`,
        `${file}:23:13: domains[2].memory: 536870912 is above the maximum of 16777216 MiB`,
      ],
    },
    {
      name: 'domain parts, bridge and arguments',
      text: withLine(
        15,
        'domains:\n  - name: a\n    kernel: ../vmlinuz\n    ramdisk: ""\n    bridge: a-bridge-name-too-long\n    extraArgs: "a\\nb"\n    restart: yes',
      ),
      want: [
        `${file}:17:13: domains[0].kernel: "../vmlinuz" is not a part name; want a file name of the build such as vmlinuz or guest.initrd.gz`,
        `${file}:18:14: domains[0].ramdisk: "" is not a part name; want a file name of the build such as vmlinuz or guest.initrd.gz`,
        `${file}:19:13: domains[0].bridge: "a-bridge-name-too-long" is 22 characters long; Linux interface names have at most 15`,
        `${file}:20:16: domains[0].extraArgs: contains a line break (U+000A) at character 2; arguments must be one line`,
        `${file}:21:14: domains[0].restart: want true or false, got the string "yes"`,
      ],
    },
    {
      name: "domain MACs: multicast, the host's own, shared by two guests",
      text: withLine(
        15,
        'domains:\n  - name: a\n    mac: 03:00:00:00:00:01\n  - name: b\n    mac: 52:54:00:12:34:56\n  - name: c\n    mac: 02:00:00:00:00:01\n  - name: d\n    mac: 02-00-00-00-00-01\n  - name: e\n    mac: 02:00:00:00:00',
      ),
      want: [
        `${file}:17:10: domains[0].mac: 03:00:00:00:00:01 is a multicast address (the first octet is odd); a NIC needs a unicast one`,
        `${file}:19:10: domains[1].mac: 52:54:00:12:34:56 is the host's own MAC; a guest needs one of its own`,
        `${file}:23:10: domains[3].mac: 02:00:00:00:00:01 is already the MAC of domains[2]; two guests never share one`,
        `${file}:25:10: domains[4].mac: "02:00:00:00:00" is not a MAC address (want six hex pairs: 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456)`,
      ],
    },
    {
      name: 'a domain MAC in default.yaml',
      text: 'hostname: node-{mac}\ndomains:\n  - name: a\n    mac: 02:00:00:00:00:01\n',
      source: 'profiles/default.yaml',
      want: [
        'profiles/default.yaml:4:5: domains[0].mac: not allowed in default.yaml: every host without a file of its own would give this guest the same MAC; leave it out to derive one per host',
      ],
    },
    {
      name: 'a domain that is not a mapping',
      text: withLine(15, 'domains:\n  - web'),
      want: [`${file}:16:5: domains[0]: want a mapping of fields (name: ..., memory: ...), got the string "web"`],
    },
  ];

  for (const { name, text, source, want } of cases) {
    test(name, () => {
      assert.deepEqual(errors(text, source), want);
    });
  }

  test('positions after a syntax error stay on their own line (found by the property test)', () => {
    assert.deepEqual(errors('- item\n$\n  address: 198.18.0.50/24'), [
      `${file}:2:1: Unexpected scalar at node end`,
      `${file}:3:10: Unexpected map-value-ind token in YAML stream: ":"`,
      `${file}:3:12: Unexpected scalar token in YAML stream: "198.18.0.50/24"`,
    ]);
  });

  test('every problem is reported at once, in file order', () => {
    const text = [
      'mac: 52:54:00:12:34:5g',
      'hostname: -node',
      'network:',
      '  mode: static',
      '  address: 198.18.0.50/24',
      '  gateway: 198.18.9.1',
      'ssh: 1',
      'boot:',
      '  entry: fast',
      'extra: 1',
    ].join('\n');
    assert.deepEqual(errors(text), [
      `${file}:1:6: mac: "52:54:00:12:34:5g" is not a MAC address (want six hex pairs: 52:54:00:12:34:56, 52-54-00-12-34-56 or 525400123456)`,
      `${file}:2:11: hostname: "-node": label "-node" starts or ends with "-" (RFC 1123)`,
      `${file}:6:12: network.gateway: "198.18.9.1" is outside the host's subnet 198.18.0.0/24; the gateway must be directly reachable`,
      `${file}:7:6: ssh: want true or false, got the number 1`,
      `${file}:9:10: boot.entry: "fast" is not a boot entry (want standard, testing, guest or memtest)`,
      `${file}:10:1: extra: unknown field; known fields here: mac, hostname, network, rootPasswordHash, ssh, sshAuthorizedKeys, timezone, aptUpdate, boot, domains, storage, relay, hosts, bmc`,
    ]);
  });

  test('errors about the hash never repeat it', () => {
    const result = parseProfile(withLine(8, 'rootPasswordHash: correct-horse-battery-staple'), file);
    assert.equal(result.ok, false);
    if (!result.ok) assert.ok(result.errors.every((error) => !error.message.includes('correct-horse')));
  });

  test('errors are plain objects with 1-based positions', () => {
    const result = parseProfile(withLine(9, 'ssh: maybe'), file);
    assert.deepEqual(result, {
      ok: false,
      errors: [{ file, line: 9, column: 6, field: 'ssh', message: 'want true or false, got the string "maybe"' }],
    });
  });
});
