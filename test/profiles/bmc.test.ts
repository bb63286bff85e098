import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatProfileError } from '../../server/profiles/error.js';
import { parseProfileFile } from '../../server/profiles/parse.js';

const host = (bmc: string) => `mac: 52:54:00:00:19:01\nhostname: n1\nbmc:\n${bmc}`;

function errorsOf(text: string, source = 'profiles/n1.yaml'): string[] {
  const result = parseProfileFile(text, source);
  assert.equal(result.ok, false, 'expected the profile to be refused');
  return result.ok ? [] : result.errors.map(formatProfileError);
}

describe('profiles: bmc', () => {
  test("a host's BMC: address, user and password file; port 623 and cipher suite 17 unless written", () => {
    const result = parseProfileFile(host('  address: 198.18.10.21\n  user: admin\n  passwordFile: /etc/rackboot/bmc/n1.password\n'), 'profiles/n1.yaml');
    assert.ok(result.ok && !('hosts' in result.profile), JSON.stringify(!result.ok && result.errors));
    assert.deepEqual(result.profile.bmc, { address: '198.18.10.21', port: 623, user: 'admin', passwordFile: '/etc/rackboot/bmc/n1.password', cipherSuite: 17 });
    const named = parseProfileFile(
      host('  address: n1-bmc.lab.example\n  port: 9623\n  user: ops\n  passwordFile: /run/pw\n  cipherSuite: 3\n'),
      'profiles/n1.yaml',
    );
    assert.ok(named.ok && !('hosts' in named.profile));
    assert.deepEqual(named.profile.bmc, { address: 'n1-bmc.lab.example', port: 9623, user: 'ops', passwordFile: '/run/pw', cipherSuite: 3 });
  });

  test('each field is checked, with its line: missing ones, a bad address, port, user, a relative password file, an unknown suite or field', () => {
    assert.deepEqual(errorsOf(host('  port: 623\n')), [
      'profiles/n1.yaml:3:1: bmc.address: missing; such as 198.18.10.21 or node01-bmc.lab.example',
      'profiles/n1.yaml:3:1: bmc.user: missing; such as admin',
      'profiles/n1.yaml:3:1: bmc.passwordFile: missing; such as /etc/rackboot/bmc/node01.password',
    ]);
    assert.deepEqual(
      errorsOf(host('  address: 198.18.10.021\n  port: 70000\n  user: a-user-name-longer-than-16\n  passwordFile: secret\n  cipherSuite: 1\n  pasword: x\n')),
      [
        'profiles/n1.yaml:4:12: bmc.address: "198.18.10.021" is not an IPv4 address or a DNS name; leading zeros are not allowed (some tools read them as octal)',
        'profiles/n1.yaml:5:9: bmc.port: 70000 is above the maximum of 65535 (a UDP port)',
        'profiles/n1.yaml:6:9: bmc.user: "a-user-name-longer-than-16" is not an IPMI user name (1 to 16 bytes, no control characters)',
        'profiles/n1.yaml:7:17: bmc.passwordFile: "secret" is not an absolute path; want the file that holds the password (never the password itself), such as /etc/rackboot/bmc/node01.password',
        'profiles/n1.yaml:8:16: bmc.cipherSuite: 1 is not a cipher suite rackboot uses; want 17 (HMAC-SHA256) or 3 (HMAC-SHA1)',
        'profiles/n1.yaml:9:3: bmc.pasword: unknown field; known fields here: address, port, user, passwordFile, cipherSuite',
      ],
    );
    assert.deepEqual(errorsOf(host('  address: 198.18.10.21\n  user: admin\n  passwordFile: /p\n  cipherSuite: 8\n')), [
      'profiles/n1.yaml:7:16: bmc.cipherSuite: 8 is not a cipher suite rackboot uses; want 17 (HMAC-SHA256) or 3 (HMAC-SHA1)',
    ]);
  });

  test('refused where it would name the BMC of more than one machine: default.yaml and group files', () => {
    const bmc = 'bmc:\n  address: 198.18.10.21\n  user: admin\n  passwordFile: /p\n';
    assert.deepEqual(errorsOf(`hostname: node-{mac}\n${bmc}`, 'profiles/default.yaml'), [
      "profiles/default.yaml:2:1: bmc: not allowed in default.yaml, the profile for hosts without a file of their own: a BMC is one machine's; put it in that host's file",
    ]);
    assert.deepEqual(errorsOf(`${bmc}hosts:\n  - {mac: 52:54:00:03:00:01, hostname: a}\n`, 'profiles/rack3.yaml'), [
      "profiles/rack3.yaml:1:1: bmc: not allowed in a group file (one with hosts:): a BMC is one machine's; put it in that host's own file",
    ]);
  });
});
