import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClientArch, type ClientFacts } from '../../server/core/facts.js';
import { chooseBootFile } from '../../server/core/resolve.js';
import { decide } from '../../server/dhcp/decide/answer.js';
import { parseTftpServer } from '../../server/net/interfaces.js';
import { clientRequest, server, testContext } from '../support/dhcp.js';

const elsewhere = '198.18.0.2';
const endpoints = { address: server, httpPort: 8080, tftpServer: elsewhere };

function facts(overrides: Partial<ClientFacts>): ClientFacts {
  return { mac: '52:54:00:12:34:56', arch: undefined, platform: 'bios', isPxe: false, isHttpBoot: false, isIpxe: false, ...overrides };
}

test('--tftp-server: firmware loaders name the other TFTP server; HTTP URLs stay on this one', () => {
  assert.deepEqual(chooseBootFile(facts({ isPxe: true, arch: ClientArch.biosX86 }), endpoints), { kind: 'tftp', file: 'undionly.kpxe', server: elsewhere });
  assert.deepEqual(chooseBootFile(facts({ isPxe: true, arch: ClientArch.efiBc, platform: 'efi64' }), endpoints), {
    kind: 'tftp',
    file: 'ipxe.efi',
    server: elsewhere,
  });
  assert.deepEqual(chooseBootFile(facts({ isPxe: true, isIpxe: true }), endpoints), { kind: 'http', url: 'http://198.18.0.1:8080/boot.ipxe' });
  assert.deepEqual(chooseBootFile(facts({ isHttpBoot: true, arch: 16, platform: 'efi64' }), endpoints), {
    kind: 'http',
    url: 'http://198.18.0.1:8080/ipxe.efi',
  });
});

test('--tftp-server: a UEFI PXE offer carries it in siaddr and option 66; the server identifier stays ours', () => {
  const context = testContext({ bootFile: (clientFacts) => chooseBootFile(clientFacts, endpoints) });
  const request = clientRequest({
    mac: '52:54:00:12:34:57',
    options: { messageType: 1, vendorClass: 'PXEClient:Arch:00007:UNDI:003000', clientArch: [ClientArch.efiBc] },
  });
  const decision = decide(request, context, 1_000_000);
  assert.equal(decision.kind, 'reply');
  assert.ok(decision.kind === 'reply');
  assert.equal(decision.packet.serverAddress, elsewhere, 'siaddr');
  assert.equal(decision.packet.options.tftpServerName, elsewhere, 'option 66');
  assert.equal(decision.packet.bootFile, 'ipxe.efi');
  assert.equal(decision.packet.options.serverIdentifier, server, 'option 54 names the DHCP server');

  // Without the option, this server is the TFTP server.
  const plain = decide(request, testContext({ bootFile: (clientFacts) => chooseBootFile(clientFacts, { address: server, httpPort: 8080 }) }), 1_000_000);
  assert.ok(plain.kind === 'reply');
  assert.equal(plain.packet.serverAddress, server);
  assert.equal(plain.packet.options.tftpServerName, server);
});

test('--tftp-server: validated, with the value and the reason in the error', () => {
  assert.equal(parseTftpServer('198.18.0.2', 'full'), '198.18.0.2');
  assert.throws(() => parseTftpServer('tftp.example', 'full'), /^Error: --tftp-server "tftp\.example": not an IPv4 address/);
  assert.throws(() => parseTftpServer('198.18.0.256', 'full'), /--tftp-server "198\.18\.0\.256": not an IPv4 address/);
  for (const address of ['0.0.0.0', '255.255.255.255', '127.0.0.1', '224.0.0.1']) {
    assert.throws(() => parseTftpServer(address, 'full'), new RegExp(`--tftp-server ${address.replaceAll('.', '\\.')}: not a unicast address`));
  }
  assert.throws(() => parseTftpServer('198.18.0.2', 'proxy'), /only with --dhcp full \(in proxy mode UEFI PXE asks this server again on port 4011/);
  assert.throws(() => parseTftpServer('198.18.0.2', 'off'), /only with --dhcp full \(with --dhcp off, your DHCP server names the TFTP server\)/);
});
