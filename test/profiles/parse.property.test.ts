import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { normaliseMac } from '../../server/profiles/mac.js';
import { parseProfile } from '../../server/profiles/parse.js';

const source = 'profiles/node01.yaml';

/**
 * The property every input must have: parseProfile returns (never throws),
 * and every error points inside the text. Lines are split on "\n" only, as
 * the YAML parser does (a lone "\r" is not a line break to it).
 */
function checkResult(text: string, file = source): void {
  const result = parseProfile(text, file);
  if (result.ok) {
    assert.equal(result.profile.source, file);
    if (result.profile.mac !== null) assert.equal(normaliseMac(result.profile.mac), result.profile.mac);
    return;
  }
  assert.ok(result.errors.length > 0, 'a failure has at least one error');
  const lines = text.split('\n');
  for (const error of result.errors) {
    assert.equal(error.file, file);
    assert.ok(Number.isInteger(error.line) && error.line >= 1 && error.line <= lines.length, `line ${error.line} of ${lines.length}`);
    const lineLength = lines[error.line - 1]!.length;
    assert.ok(Number.isInteger(error.column) && error.column >= 1 && error.column <= lineLength + 1, `column ${error.column} of ${lineLength}`);
    assert.equal(typeof error.field, 'string');
    assert.ok(error.message.length > 0);
  }
}

const validProfile = [
  'mac: 52:54:00:12:34:56',
  'hostname: node01',
  'network:',
  '  mode: static',
  '  address: 198.18.0.50/24',
  '  gateway: 198.18.0.1',
  '  dns: [198.18.0.1]',
  'rootPasswordHash: "$6$rackbootexample$c9gz068gbVCrsYzUZYmQ8TU/sRRVG5tWMG5CXM1Q7QLswbTNXm167ej2CvLwSMwrKXI/lbjW68imEa2vjpNk7/"',
  'ssh: true',
  'timezone: Etc/UTC',
  'boot:',
  '  entry: standard',
  '  xenArgs: "dom0_mem=512M"',
  '  kernelArgs: ""',
  'domains: []',
].join('\n');

/** Lines a profile is made of, right and wrong, with YAML's special characters among them. */
const profileLine = fc.oneof(
  fc.constantFrom(...validProfile.split('\n')),
  fc.constantFrom('---', '...', '%YAML 1.1', '- item', '? key', ': value', '&anchor x', '*anchor', '!!str', '|', '>-', '"', "'", '#', '{', '}', '[', ']', ''),
  fc.tuple(fc.constantFrom('', '  ', '    ', '\t'), fc.string({ maxLength: 30 })).map(([indent, rest]) => indent + rest),
);

test('parseProfile never throws on arbitrary text, and errors point inside it', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => checkResult(text)),
    { numRuns: 2000 },
  );
});

test('parseProfile never throws on arrangements of profile-like lines', () => {
  fc.assert(
    fc.property(fc.array(profileLine, { maxLength: 20 }), fc.constantFrom('\n', '\r\n'), (lines, lineEnd) => checkResult(lines.join(lineEnd))),
    { numRuns: 2000 },
  );
});

test('parseProfile never throws on a valid profile with characters inserted or removed', () => {
  const edit = fc.record({
    at: fc.nat({ max: validProfile.length }),
    remove: fc.nat({ max: 5 }),
    insert: fc.string({ unit: 'binary-ascii', maxLength: 5 }),
  });
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), fc.boolean(), (edits, isDefault) => {
      let text = validProfile;
      for (const { at, remove, insert } of edits) {
        const position = Math.min(at, text.length);
        text = text.slice(0, position) + insert + text.slice(position + remove);
      }
      checkResult(text, isDefault ? 'profiles/default.yaml' : source);
    }),
    { numRuns: 3000 },
  );
});

test('parseProfile never throws on any YAML value under the profile field names', () => {
  const fieldNames = [
    'mac',
    'hostname',
    'network',
    'mode',
    'address',
    'gateway',
    'dns',
    'rootPasswordHash',
    'ssh',
    'timezone',
    'boot',
    'entry',
    'xenArgs',
    'kernelArgs',
    'domains',
    'sshAuthorizedKeys',
    'aptUpdate',
    'menuTimeout',
    'name',
    'memory',
    'vcpus',
    'kernel',
    'ramdisk',
    'extraArgs',
    'bridge',
    'autostart',
    'restart',
  ];
  const value = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small' },
      fc.constantFrom(null, true, false, 0, -1, 1.5, '', 'static', 'dhcp', '52:54:00:12:34:56', '198.18.0.50/24', '198.18.0.1'),
      fc.string({ maxLength: 20 }),
      fc.integer(),
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom(...fieldNames), tie('node'), { maxKeys: 5 }),
    ),
  })).node;
  fc.assert(
    fc.property(value, (document) => checkResult(stringify(document))),
    { numRuns: 2000 },
  );
});

/** Valid host profiles built from parts, to check what goes in comes out. */
const validHost = fc.record({
  macBytes: fc.uint8Array({ minLength: 6, maxLength: 6 }),
  separator: fc.constantFrom(':', '-', ''),
  upper: fc.boolean(),
  labels: fc.array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/), { minLength: 1, maxLength: 3 }),
  hostByte: fc.integer({ min: 1, max: 254 }),
  gatewayByte: fc.integer({ min: 1, max: 254 }),
  ssh: fc.boolean(),
  entry: fc.constantFrom('standard', 'testing', 'guest', 'memtest'),
  menuTimeout: fc.integer({ min: 0, max: 3600 }),
  domains: fc.uniqueArray(
    fc.record({
      name: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/),
      memory: fc.integer({ min: 32, max: 65536 }),
      vcpus: fc.integer({ min: 1, max: 512 }),
      restart: fc.boolean(),
    }),
    { selector: (domain) => domain.name, maxLength: 5 },
  ),
});

test('valid profiles built from parts parse to what was written', () => {
  fc.assert(
    fc.property(validHost, (host) => {
      fc.pre(host.hostByte !== host.gatewayByte);
      const hex = [...host.macBytes].map((byte) => byte.toString(16).padStart(2, '0'));
      const written = hex.join(host.separator);
      const hostname = host.labels.join('.');
      const text = stringify({
        mac: host.upper ? written.toUpperCase() : written,
        hostname,
        network: { mode: 'static', address: `198.18.7.${host.hostByte}/24`, gateway: `198.18.7.${host.gatewayByte}` },
        ssh: host.ssh,
        boot: { entry: host.entry, menuTimeout: host.menuTimeout },
        domains: host.domains,
      });
      const result = parseProfile(text, source);
      assert.ok(result.ok, result.ok ? '' : JSON.stringify(result.errors));
      assert.equal(result.profile.mac, hex.join(':'));
      assert.equal(result.profile.hostname, hostname);
      assert.deepEqual(result.profile.network, {
        mode: 'static',
        address: `198.18.7.${host.hostByte}`,
        prefixLength: 24,
        gateway: `198.18.7.${host.gatewayByte}`,
        dns: [],
      });
      assert.equal(result.profile.ssh, host.ssh);
      assert.equal(result.profile.boot.entry, host.entry);
      assert.equal(result.profile.boot.menuTimeout, host.menuTimeout);
      assert.deepEqual(
        result.profile.domains,
        host.domains.map((domain) => ({ kernel: 'vmlinuz', ramdisk: 'guest.initrd.gz', extraArgs: '', bridge: 'xenbr0', autostart: true, ...domain })),
      );
    }),
    { numRuns: 500 },
  );
});
