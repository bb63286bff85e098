import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attributeLogSource, type LogSourceFacts } from '../../server/logs/attribution.js';

const mac = '52:54:00:00:19:01';
const base: LogSourceFacts = {
  mode: 'full',
  address: '198.18.0.120',
  onSegment: true,
  neighborMac: mac,
  dhcpAddress: '198.18.0.120',
  staticAddress: undefined,
  known: true,
};

test("a line is a host's when its address is the one rackboot gave the MAC the neighbour table names, or its static address", () => {
  assert.deepEqual(attributeLogSource(base), { kind: 'host', mac });
  assert.deepEqual(attributeLogSource({ ...base, address: '198.18.0.50', dhcpAddress: '198.18.0.120', staticAddress: '198.18.0.50' }), {
    kind: 'host',
    mac,
  });
});

test('strangers: behind a router, no neighbour entry, an address rackboot did not give that MAC, an unknown MAC beside another DHCP server', () => {
  assert.deepEqual(attributeLogSource({ ...base, onSegment: false }), {
    kind: 'stranger',
    reason: '198.18.0.120 is behind a router: the neighbour table cannot tell which machine sent it',
  });
  assert.deepEqual(attributeLogSource({ ...base, neighborMac: undefined }), { kind: 'stranger', reason: 'the neighbour table has no MAC for 198.18.0.120' });
  // A stranger with its own MAC, using an address of its own choosing.
  assert.deepEqual(attributeLogSource({ ...base, neighborMac: '02:66:66:66:66:66', dhcpAddress: undefined, known: false }), {
    kind: 'stranger',
    reason: "198.18.0.120 (02:66:66:66:66:66) is not the address rackboot's DHCP gave 02:66:66:66:66:66, nor its profile's static address",
  });
  // A known host's MAC, from an address other than its own.
  assert.deepEqual(attributeLogSource({ ...base, address: '198.18.0.99' }), {
    kind: 'stranger',
    reason: "198.18.0.99 (52:54:00:00:19:01) is not the address rackboot's DHCP gave 52:54:00:00:19:01 (198.18.0.120), nor its profile's static address",
  });
  assert.deepEqual(attributeLogSource({ ...base, mode: 'proxy', known: false }), {
    kind: 'stranger',
    reason: '52:54:00:00:19:01 at 198.18.0.120 has no profile of its own and was handed no boot script',
  });
  assert.deepEqual(attributeLogSource({ ...base, mode: 'off', dhcpAddress: undefined }), { kind: 'host', mac });
});
