/**
 * The steps full mode (full.ts) and proxy mode (proxy.ts) take the same way
 * to build a reply: refusing unknown clients, ordering options, echoing the
 * client identifier, the reply packet, and where it goes. Pure.
 */
import type { ClientFacts } from '../../core/facts.js';
import { anyAddress, limitedBroadcast, type Subnet } from '../../net/ipv4.js';
import { typedOptionName, type DhcpOptions } from '../wire/options.js';
import { BootOp, type DhcpPacket } from '../wire/packet.js';
import { relayAgentInformation } from '../wire/relay-agent.js';
import { echoedRelayInformation } from './screen.js';
import type { DhcpContext, DhcpDecision, ReplyDestination } from './types.js';

/**
 * Under `--dhcp-known-only`, the refusal of a client without a profile of
 * its own: by MAC, or by slot (the request's option 82, or where the MAC was
 * last seen). Quiet: on a shared segment every other machine's DHCP traffic
 * ends here, which is not worth a log line each.
 */
export function unknownClient(packet: DhcpPacket, facts: ClientFacts, context: Pick<DhcpContext, 'knownOnly' | 'slotOf'>): DhcpDecision | undefined {
  if (context.knownOnly === undefined) return undefined;
  const information = relayAgentInformation(packet);
  const slot = information.kind === 'slot' ? information.slot : context.slotOf?.(facts.mac);
  if (context.knownOnly(facts.mac, slot)) return undefined;
  return { kind: 'ignore', reason: 'no profile of its own for this MAC or slot (--dhcp-known-only)', facts, quiet: 'unknown' };
}

/**
 * Options in wire order: `first` (message type and server identifier, which
 * some clients look for first), then what the client asked for in its
 * parameter request list (option 55) in its order, then the rest. Nothing is
 * left out for not being asked for: PXE ROMs need the boot options whether or
 * not they listed them.
 */
export function orderOptions(first: DhcpOptions, offered: DhcpOptions, requestList: readonly number[]): DhcpOptions {
  // Gathered as entries and made into one object at the end: adding the
  // names one by one, in an order each client chooses, would make the
  // engine build and look up an object shape per order, per reply (the
  // dearest step of a decision; see docs/performance.md).
  const values = offered as Record<string, unknown>;
  const entries: Array<[string, unknown]> = Object.entries(first);
  const taken = new Set(entries.map(([name]) => name));
  const take = (name: string) => {
    if (taken.has(name) || values[name] === undefined) return;
    taken.add(name);
    entries.push([name, values[name]]);
  };
  for (const code of requestList) {
    const name = typedOptionName(code);
    if (name !== undefined) take(name);
  }
  for (const name in values) take(name);
  return Object.fromEntries(entries) as DhcpOptions;
}

/** RFC 6842: a reply carries the client identifier (61) the request had. */
export function echoedClientId(request: DhcpPacket): DhcpOptions {
  const id = request.options.clientIdentifier;
  return id === undefined ? {} : { clientIdentifier: id };
}

/**
 * A reply to `request`, RFC 2131 table 3: what it copies from the request
 * (hardware address, transaction id, giaddr, option 82) and what the
 * decision says (addresses, broadcast bit, boot server and file, options).
 */
export function replyPacket(
  request: DhcpPacket,
  fields: {
    yourAddress: string;
    clientAddress: string;
    broadcast: boolean;
    nextServer?: string | undefined;
    bootFile?: string | undefined;
    options: DhcpOptions;
  },
): DhcpPacket {
  return {
    op: BootOp.reply,
    hardwareType: request.hardwareType,
    hardwareAddress: Buffer.from(request.hardwareAddress),
    hops: 0,
    transactionId: request.transactionId,
    secondsElapsed: 0,
    broadcast: fields.broadcast,
    clientAddress: fields.clientAddress,
    yourAddress: fields.yourAddress,
    serverAddress: fields.nextServer ?? anyAddress,
    relayAddress: request.relayAddress,
    serverName: '',
    bootFile: fields.bootFile ?? '',
    options: fields.options,
    ...echoedRelayInformation(request),
  };
}

/**
 * How a reply may reach its client, when no relay agent carries it:
 * - 'client': to ciaddr when the client has one on our link, else broadcast
 *   (full mode's offers and ACKs);
 * - 'broadcast': always broadcast (a NAK; a proxy offer, to a client with
 *   no address yet);
 * - bootServer: back where a port 4011 request came from (iPXE sends from
 *   port 68, UEFI PXE from 4011, each listening there), else to ciaddr.
 */
export type ReplyRoute = 'client' | 'broadcast' | { bootServer: ReplyDestination | undefined };

/**
 * Where a reply goes, RFC 2131 section 4.1, for full and proxy mode alike:
 * to the relay (giaddr) at the server port, else by `route`. RFC 2131 would
 * unicast to yiaddr when the broadcast bit is clear, but that needs an ARP
 * entry for an address the client does not yet answer for, which Node
 * cannot add; broadcast is allowed. Undefined only for a port 4011 request
 * that names no address to answer.
 */
export function routeReply(
  request: DhcpPacket,
  route: 'client' | 'broadcast',
  subnet: Subnet,
  ports: { serverPort: number; clientPort: number },
): ReplyDestination;
export function routeReply(
  request: DhcpPacket,
  route: ReplyRoute,
  subnet: Subnet,
  ports: { serverPort: number; clientPort: number },
): ReplyDestination | undefined;
export function routeReply(
  request: DhcpPacket,
  route: ReplyRoute,
  subnet: Subnet,
  ports: { serverPort: number; clientPort: number },
): ReplyDestination | undefined {
  if (request.relayAddress !== anyAddress) return { address: request.relayAddress, port: ports.serverPort };
  if (typeof route === 'object') {
    if (route.bootServer !== undefined && route.bootServer.address !== anyAddress) return route.bootServer;
    return request.clientAddress !== anyAddress ? { address: request.clientAddress, port: ports.clientPort } : undefined;
  }
  if (route === 'client' && request.clientAddress !== anyAddress && subnet.contains(request.clientAddress)) {
    return { address: request.clientAddress, port: ports.clientPort };
  }
  return { address: limitedBroadcast, port: ports.clientPort };
}
