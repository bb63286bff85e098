import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { environmentName, loadServeConfig, parseServeConfig, parseServeEnvironment } from '../server/serve-config.js';
import { runRackboot } from './support/run.js';

test('parseServeConfig: every flag a key, typed; every problem with file:line:column and the key', () => {
  const good = parseServeConfig(
    'interface: eth1\npool: 198.18.0.100-198.18.0.199\nhttp-port: 8080\ndhcp-known-only: true\ndns: [198.18.0.53, 198.18.0.54]\nrelay-subnet:\n  - 198.18.2.0/24,198.18.2.100-198.18.2.199\n',
    'rb.yaml',
  );
  assert.deepEqual(good.problems, []);
  assert.deepEqual(good.values, {
    interface: 'eth1',
    pool: '198.18.0.100-198.18.0.199',
    'http-port': 8080,
    'dhcp-known-only': true,
    dns: ['198.18.0.53', '198.18.0.54'],
    'relay-subnet': ['198.18.2.0/24,198.18.2.100-198.18.2.199'],
  });
  const bad = parseServeConfig('interface: eth1\nhttp-port: eighty\nlease-tme: 30\nlease-time: 10\ndhcp: maybe\nrouter: 198.18.0\ncheck: true\n', 'rb.yaml');
  assert.deepEqual(bad.problems, [
    'rb.yaml:2:12: http-port: want a number, not "eighty"',
    'rb.yaml:3:1: lease-tme: unknown setting; did you mean lease-time?',
    'rb.yaml:4:13: lease-time: want a whole number of seconds from 60',
    'rb.yaml:5:7: dhcp: want one of full, proxy, off, not "maybe"',
    'rb.yaml:6:9: router: want an IPv4 address, such as 198.18.0.1',
    'rb.yaml:7:1: check: not a setting of the file',
  ]);
  // A list's problem is at its item; a single value where a list is wanted is a list of one.
  assert.deepEqual(parseServeConfig('dns: [198.18.0.53, ns1]\n', 'rb.yaml').problems, ['rb.yaml:1:20: dns: want an IPv4 address']);
  assert.deepEqual(parseServeConfig('relay-subnet: 198.18.2.0/24\n', 'rb.yaml').values, { 'relay-subnet': ['198.18.2.0/24'] });
  assert.match(parseServeConfig('interface: [a\n', 'rb.yaml').problems[0]!, /^rb\.yaml:\d+:\d+: /);
  assert.deepEqual(parseServeConfig('- a\n', 'rb.yaml').problems, ['rb.yaml:1:1: want a mapping of settings (key: value), one per line']);
  assert.deepEqual(parseServeConfig('a: &x 1\nb: *x\n', 'rb.yaml').problems, ['rb.yaml:2:4: aliases are not supported here; write the value out']);
  assert.deepEqual(parseServeConfig('', 'rb.yaml'), { values: {}, problems: [] });
  // Folders are relative to the file's own folder.
  assert.deepEqual(parseServeConfig('profiles: profiles\nstate: /var/lib/rackboot\nassets: ../builds\n', '/etc/rackboot/rackboot.yaml').values, {
    profiles: '/etc/rackboot/profiles',
    state: '/var/lib/rackboot',
    assets: '/etc/builds',
  });
});

test('parseServeEnvironment: RACKBOOT_<FLAG> for every setting, lists split on spaces; other RACKBOOT_ variables are not settings', () => {
  assert.equal(environmentName('http-port'), 'RACKBOOT_HTTP_PORT');
  const { values, problems } = parseServeEnvironment({
    RACKBOOT_HTTP_PORT: '8080',
    RACKBOOT_DHCP_KNOWN_ONLY: '1',
    RACKBOOT_DNS: '198.18.0.53 198.18.0.54',
    RACKBOOT_LOG_LEVEL: 'debug',
    RACKBOOT_TOKEN: 'x',
  });
  assert.deepEqual(problems, []);
  assert.deepEqual(values, { 'http-port': 8080, 'dhcp-known-only': true, dns: ['198.18.0.53', '198.18.0.54'] });
  assert.deepEqual(parseServeEnvironment({ RACKBOOT_HTTP_PORT: 'eighty', RACKBOOT_LEASE_TIME: '5', RACKBOOT_DHCP: 'maybe' }).problems.sort(), [
    'RACKBOOT_DHCP="maybe": want one of full, proxy, off',
    'RACKBOOT_HTTP_PORT="eighty": want a number',
    'RACKBOOT_LEASE_TIME="5": want a whole number of seconds from 60',
  ]);
});

test('loadServeConfig: the environment over the file; the default path may be absent, a named one may not', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-config-'));
  try {
    const file = path.join(dir, 'rb.yaml');
    await writeFile(file, 'interface: eth1\nhttp-port: 8080\n');
    assert.deepEqual(loadServeConfig(file, { implicit: false, env: { RACKBOOT_HTTP_PORT: '8081' } }), { interface: 'eth1', 'http-port': 8081 });
    assert.deepEqual(loadServeConfig(path.join(dir, 'none.yaml'), { implicit: true, env: {} }), {});
    assert.throws(() => loadServeConfig(path.join(dir, 'none.yaml'), { implicit: false, env: {} }), /--config \S+none\.yaml: cannot read it \(ENOENT\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('serve --check: flags over RACKBOOT_ variables over the file; problems and warnings listed at once, exit 1; nothing is made', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'rackboot-check-'));
  try {
    const file = path.join(dir, 'rb.yaml');
    const profiles = path.join(dir, 'profiles');
    const state = path.join(dir, 'state');
    await writeFile(file, `interface: lo\ndhcp: proxy\nhttp-port: 8080\nprofiles: ${profiles}\nstate: ${state}\nassets: ${dir}/assets\n`);
    const missing = await runRackboot(['serve', '--check', '--config', file]);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, 'configuration has 1 problem\n');
    assert.match(missing.stderr, new RegExp(`^--profiles ${profiles}: no such folder`));
    const { mkdir, access } = await import('node:fs/promises');
    await assert.rejects(access(state), 'no state folder was made');
    await mkdir(profiles);
    await writeFile(path.join(profiles, 'a.yaml'), 'mac: 02:00:00:00:0c:01\nhostname: a\n');
    // The file says 8080, the environment 8081, the flag 8082: the flag wins; the environment wins over the file.
    const ok = await runRackboot(['serve', '--check', '--config', file, '--http-port', '8082'], {
      env: { RACKBOOT_HTTP_PORT: '8081', RACKBOOT_TFTP_PORT: '6969' },
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'configuration OK: would serve 127.0.0.1/8 on lo: DHCP proxy, TFTP port 6969, HTTP port 8082; 1 profile file; build none\n');
    assert.match(ok.stderr, /assets: warning: no build yet/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
