/**
 * Shared pieces of the DHCP tests: the fixture captures and small packet
 * builders. (Loaded as a test file by the runner too; it defines no tests.)
 */
import path from 'node:path';
import { repoRoot } from './repo.js';
import type { BootFileChoice, ClientFacts } from '../../server/core/facts.js';
import type { DhcpContext, Reservation } from '../../server/dhcp/decide/types.js';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { clientPacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { readPcap, type UdpDatagram } from './pcap.js';
import dgram from 'node:dgram';
import { once } from 'node:events';

export { repoRoot };

export const fixtureNames = ['qemu-bios-ipxe-rom', 'ovmf-x64-uefi-pxe', 'ovmf-x64-uefi-httpboot', 'busybox-udhcpc', 'isc-dhclient', 'dhcpcd'] as const;
export type FixtureName = (typeof fixtureNames)[number];

/** The DHCP datagrams (ports 67/68) of a fixture capture. */
export function fixtureDhcp(name: FixtureName): UdpDatagram[] {
  return readPcap(path.join(repoRoot, 'test', 'fixtures', `${name}.pcap`)).filter(
    (d) => [67, 68].includes(d.destination.port) && [67, 68].includes(d.source.port),
  );
}

/** Client requests (to port 67) of every fixture. */
export function fixtureRequests(): Buffer[] {
  return fixtureNames.flatMap((name) =>
    fixtureDhcp(name)
      .filter((d) => d.destination.port === 67)
      .map((d) => d.payload),
  );
}

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((part) => parseInt(part, 16)));
}

/** A client request with sensible defaults. */
export function clientRequest(fields: Partial<DhcpPacket> & { mac?: string } = {}): DhcpPacket {
  const { mac = '02:00:00:00:00:01', ...rest } = fields;
  return clientPacket({ hardwareAddress: macBytes(mac), transactionId: 0x1234abcd, options: { messageType: 1 }, ...rest });
}

export const server = '198.18.0.1';

/** The boot table the decision tests use. */
export function testBootFile(facts: ClientFacts): BootFileChoice {
  if (facts.isIpxe) return { kind: 'http', url: 'http://198.18.0.1:8080/boot.ipxe' };
  if (facts.isHttpBoot) return { kind: 'http', url: 'http://198.18.0.1:8080/ipxe.efi' };
  if (facts.isPxe) return { kind: 'tftp', file: facts.platform === 'bios' ? 'undionly.kpxe' : 'ipxe.efi' };
  return { kind: 'none', reason: 'not a network-boot client' };
}

export interface TestContext extends DhcpContext {
  leases: MemoryLeaseStore;
}

export function testContext(overrides: Partial<DhcpContext> & { reservations?: Record<string, Reservation> } = {}): TestContext {
  const { reservations = {}, ...rest } = overrides;
  const owners = new Map(Object.entries(reservations).map(([mac, r]) => [r.address, mac]));
  return {
    mode: 'full',
    serverAddress: server,
    prefixLength: 24,
    pool: { start: '198.18.0.100', end: '198.18.0.109' },
    leaseSeconds: 3600,
    offerHoldSeconds: 60,
    declineHoldSeconds: 600,
    router: '198.18.0.1',
    dns: ['198.18.0.53'],
    reservationFor: (mac) => reservations[mac],
    reservationOwner: (address) => owners.get(address),
    bootFile: testBootFile,
    serverPort: 67,
    clientPort: 68,
    ...rest,
    leases: (rest.leases as MemoryLeaseStore | undefined) ?? new MemoryLeaseStore(),
  };
}

/** A UDP port free on loopback right now, for servers and clients under test. */
export async function freePort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  socket.close();
  return port;
}
