/**
 * Programs the live DHCP tests run inside a network namespace (a Node
 * process cannot enter one, so the test spawns this file with
 * `ip netns exec`). Without arguments it does nothing: the test runner also
 * loads every file under dist/test.
 *
 *   server <json>           run a DhcpServer; events on stdout as JSON lines,
 *                           pino logs (debug) on stderr; stdin "stats" prints
 *                           counters and leases, "close" stops it.
 *   flood <json>            send fuzz packets to a server; print a summary.
 *   broadcast-probe <json>  send to 255.255.255.255 from a socket bound to
 *                           0.0.0.0 and from one bound to an address; print both outcomes.
 *   exchange <json>         send one DHCP packet from a given address and port,
 *                           print the replies heard within a wait as JSON.
 */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import type { BootFileChoice, ClientFacts } from '../../server/core/facts.js';
import type { Reservation } from '../../server/dhcp/decide/types.js';
import { MemoryLeaseStore } from '../../server/dhcp/leases/leases.js';
import { decodePacket, encodePacket, type DhcpPacket } from '../../server/dhcp/wire/packet.js';
import { DhcpServer } from '../../server/dhcp/server.js';
import { readPcap } from '../support/pcap.js';
import { FuzzGenerator } from './fuzz-packets.js';
import { clientRequest } from '../support/dhcp.js';
import { runChildMode } from '../support/child-main.js';

export const childScript = fileURLToPath(import.meta.url);

export interface ChildServerConfig {
  interfaceName: string;
  serverAddress: string;
  prefixLength: number;
  pool?: { start: string; end: string };
  leaseSeconds: number;
  router?: string;
  dns: string[];
  reservations: Record<string, Reservation>;
  /** Leave malformed-packet and ignore events off stdout (the flood makes thousands). */
  quiet?: boolean;
  firstLeaseSeconds?: number;
  newClientsPerSecond?: number;
  /** MACs with a profile of their own; with knownOnly, the only ones answered. */
  profiledMacs?: string[];
  knownOnly?: boolean;
}

export interface ExchangeConfig {
  localAddress: string;
  localPort: number;
  destination: string;
  destinationPort: number;
  /** The packet's fields besides options and the MAC, as clientRequest takes them. */
  mac: string;
  clientAddress?: string;
  options: Record<string, unknown>;
  waitMs: number;
}

export interface FloodConfig {
  /** Address the flood socket binds to (it needs one to send broadcasts without a default route). */
  localAddress: string;
  serverAddress: string;
  count: number;
  seed: number;
  /** Packets between two barriers. */
  batch: number;
}

export interface FloodSummary {
  sent: number;
  barriers: number;
  barrierRetries: number;
  seconds: number;
  byKind: Record<string, number>;
}

/** The boot table used by the live tests: what rackboot's resolver would answer, in small. */
export function liveBootFile(serverAddress: string) {
  return (facts: ClientFacts): BootFileChoice => {
    if (facts.isIpxe) return { kind: 'http', url: `http://${serverAddress}:8080/boot.ipxe` };
    if (facts.isHttpBoot) return { kind: 'http', url: `http://${serverAddress}:8080/ipxe.efi` };
    if (facts.isPxe) return { kind: 'tftp', file: facts.platform === 'bios' ? 'undionly.kpxe' : 'ipxe.efi' };
    return { kind: 'none', reason: 'not a network-boot client' };
  };
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function runServer(config: ChildServerConfig): Promise<void> {
  const reservations = new Map(Object.entries(config.reservations));
  const owners = new Map([...reservations].map(([mac, reservation]) => [reservation.address, mac]));
  const leases = new MemoryLeaseStore();
  const log = pino({ level: 'debug', base: undefined }, pino.destination({ fd: 2, sync: true }));
  const server = new DhcpServer({
    interfaceName: config.interfaceName,
    serverAddress: config.serverAddress,
    prefixLength: config.prefixLength,
    ...(config.pool ? { pool: config.pool } : {}),
    leaseSeconds: config.leaseSeconds,
    ...(config.firstLeaseSeconds !== undefined ? { firstLeaseSeconds: config.firstLeaseSeconds } : {}),
    ...(config.newClientsPerSecond !== undefined ? { newClientsPerSecond: config.newClientsPerSecond } : {}),
    knownOnly: config.knownOnly === true,
    hasOwnProfile: (mac) => (config.profiledMacs ?? []).includes(mac),
    ...(config.router ? { router: config.router } : {}),
    dns: config.dns,
    reservationFor: (mac) => reservations.get(mac),
    reservationOwner: (address) => owners.get(address),
    bootFile: liveBootFile(config.serverAddress),
    leases,
    log,
    onEvent: (event) => {
      if (config.quiet && (event.kind === 'malformed' || event.kind === 'ignore')) return;
      print(event);
    },
  });
  await server.start();
  print({ kind: 'ready' });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'stats') print({ kind: 'stats', stats: server.stats, leases: leases.all() });
    if (line === 'close') break;
  }
  await server.close();
  print({ kind: 'closed' });
}

async function flood(config: FloodConfig): Promise<void> {
  const fixtures = new URL('../../../test/fixtures/', import.meta.url);
  const samples = ['qemu-bios-ipxe-rom', 'ovmf-x64-uefi-pxe', 'ovmf-x64-uefi-httpboot'].flatMap((name) =>
    readPcap(fileURLToPath(new URL(`${name}.pcap`, fixtures)))
      .filter((d) => d.destination.port === 67)
      .map((d) => d.payload),
  );
  const generator = new FuzzGenerator(config.seed, samples);
  // Bound to our address and port 68: receives the unicast ACKs to our
  // barrier INFORMs (and no broadcasts, which go to 0.0.0.0-bound sockets).
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.bind({ address: config.localAddress, port: 68 });
  await once(socket, 'listening');
  socket.setBroadcast(true);
  const send = (bytes: Buffer, address: string) =>
    new Promise<void>((resolve, reject) => socket.send(bytes, 67, address, (error) => (error ? reject(error) : resolve())));

  const acks = new Set<number>();
  let ackWaiter: (() => void) | undefined;
  socket.on('message', (message) => {
    try {
      const reply = decodePacket(message);
      acks.add(reply.transactionId);
      ackWaiter?.();
    } catch {
      /* not for us */
    }
  });

  // A DHCPINFORM from our own address: the server answers in order, so its
  // ACK means every packet sent before it has been read and handled. This
  // keeps the flood from overrunning the server's socket buffer.
  let barrierXid = 0x7b000000;
  let barriers = 0;
  let barrierRetries = 0;
  const barrier = async () => {
    const xid = barrierXid++;
    const inform: DhcpPacket = clientRequest({ mac: '02:fb:00:00:00:02', transactionId: xid, clientAddress: config.localAddress, options: { messageType: 8 } });
    for (let attempt = 0; attempt < 10; attempt++) {
      if (attempt > 0) barrierRetries++;
      await send(encodePacket(inform), config.serverAddress);
      const deadline = Date.now() + 1000;
      while (!acks.has(xid) && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          ackWaiter = resolve;
          setTimeout(resolve, 50);
        });
      }
      if (acks.has(xid)) {
        barriers++;
        return;
      }
    }
    throw new Error(`barrier ${xid.toString(16)} got no answer`);
  };

  const byKind: Record<string, number> = {};
  const started = process.hrtime.bigint();
  for (let sent = 0; sent < config.count; sent++) {
    const fuzz = generator.next();
    byKind[fuzz.kind] = (byKind[fuzz.kind] ?? 0) + 1;
    // Alternate unicast (the server's address socket) and broadcast (its wildcard socket).
    await send(fuzz.bytes, sent % 2 === 0 ? config.serverAddress : '255.255.255.255');
    if ((sent + 1) % config.batch === 0) await barrier();
  }
  await barrier();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  socket.close();
  const summary: FloodSummary = { sent: config.count, barriers, barrierRetries, seconds, byKind };
  print(summary);
}

async function broadcastProbe(config: { boundAddress: string; port: number }): Promise<void> {
  const attempt = async (address: string) => {
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    socket.bind({ address, port: 0 });
    await once(socket, 'listening');
    socket.setBroadcast(true);
    const outcome = await new Promise<string>((resolve) =>
      socket.send(Buffer.from('probe'), config.port, '255.255.255.255', (error) =>
        resolve(error ? ((error as NodeJS.ErrnoException).code ?? error.message) : 'sent'),
      ),
    );
    socket.close();
    return outcome;
  };
  print({ wildcard: await attempt('0.0.0.0'), bound: await attempt(config.boundAddress) });
}

async function exchange(config: ExchangeConfig): Promise<void> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.bind({ address: config.localAddress, port: config.localPort });
  await once(socket, 'listening');
  socket.setBroadcast(true);
  const replies: DhcpPacket[] = [];
  socket.on('message', (message) => {
    try {
      replies.push(decodePacket(message));
    } catch {
      // not a DHCP reply
    }
  });
  const packet = clientRequest({
    mac: config.mac,
    ...(config.clientAddress !== undefined ? { clientAddress: config.clientAddress } : {}),
    options: config.options as DhcpPacket['options'],
  });
  await new Promise<void>((resolve, reject) =>
    socket.send(encodePacket(packet), config.destinationPort, config.destination, (error) => (error ? reject(error) : resolve())),
  );
  await new Promise((resolve) => setTimeout(resolve, config.waitMs));
  socket.close();
  print({
    replies: replies.map((reply) => ({
      messageType: reply.options.messageType,
      yourAddress: reply.yourAddress,
      leaseSeconds: reply.options.leaseSeconds ?? null,
    })),
  });
}

runChildMode({ server: runServer, flood, 'broadcast-probe': broadcastProbe, exchange });
