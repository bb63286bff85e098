import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkAddressFlags, checkNumberFlags, rawFlagText, serveNumberFlags, serverUrl, unknownFlags } from '../server/cli-flags.js';

test('rawFlagText: the text as typed, in either spelling, the last one winning, nothing after --', () => {
  assert.equal(rawFlagText(['serve', '--http-port', 'eighty'], 'http-port'), 'eighty');
  assert.equal(rawFlagText(['--http-port=81', '--http-port', '82'], 'http-port'), '82');
  assert.equal(rawFlagText(['--http-port-x', '1'], 'http-port'), undefined);
  assert.equal(rawFlagText(['--', '--http-port', '1'], 'http-port'), undefined);
});

test('checkNumberFlags: NaN, fractions, out-of-range and negative values are named with the text given; good ones pass', () => {
  const args = ['--tftp-port', '69x'];
  assert.equal(checkNumberFlags({ 'tftp-port': Number.NaN }, serveNumberFlags, args), '--tftp-port "69x": want a port number from 0 to 65535');
  assert.equal(checkNumberFlags({ 'keep-days': 0 }, serveNumberFlags, []), '--keep-days "0": want a number of days above 0');
  assert.equal(checkNumberFlags({ 'keep-events': 1.5 }, serveNumberFlags, []), '--keep-events "1.5": want a whole number from 1');
  assert.equal(checkNumberFlags({ 'lease-time': 59 }, serveNumberFlags, []), '--lease-time "59": want a whole number of seconds from 60');
  assert.equal(checkNumberFlags({ 'http-port': 80, 'tftp-port': 0, 'keep-days': 0.5, 'dhcp-new-clients-per-second': 2.5 }, serveNumberFlags, []), undefined);
});

test('checkAddressFlags: every address flag and --pool', () => {
  assert.equal(checkAddressFlags({ address: '198.18.0.1', router: '198.18.0.254', dns: ['198.18.0.53'], pool: '198.18.0.100-198.18.0.150' }), undefined);
  assert.match(checkAddressFlags({ 'tftp-server': '198.18.0.300' })!, /^--tftp-server "198\.18\.0\.300": want an IPv4 address/);
  assert.match(checkAddressFlags({ pool: '198.18.0.100-198.18.0.150-1' })!, /^--pool/);
  assert.match(checkAddressFlags({ pool: 'a-b' })!, /^--pool "a-b"/);
});

test('unknownFlags: each unknown flag with the known one it is closest to; --no-BOOLEAN and values are not flags', () => {
  const known = ['interface', 'dhcp-known-only', 'http-port', 'help'];
  assert.deepEqual(unknownFlags(['serve', '--intreface', 'eth0', '--no-dhcp-known-only', '--http-port=80', '--frobnicate'], known), [
    { flag: '--intreface', suggestion: '--interface' },
    { flag: '--frobnicate' },
  ]);
});

test('serverUrl: a bare address gets http://, other schemes are refused', () => {
  assert.equal(serverUrl('198.18.0.1').href, 'http://198.18.0.1/');
  assert.equal(serverUrl('198.18.0.1:8080').href, 'http://198.18.0.1:8080/');
  assert.equal(serverUrl('https://rackboot.example').href, 'https://rackboot.example/');
  assert.throws(() => serverUrl('ftp://198.18.0.1'), /want an http:\/\/ or https:\/\/ address/);
  assert.throws(() => serverUrl('http://[nope'), /want the server's HTTP address/);
});
