/**
 * The one place a DHCP request goes to full mode (full.ts) or proxy mode
 * (proxy.ts): by the port it arrived on and the server's mode. Pure, like
 * both modes: the server hands in the packet, its context and the clock,
 * and gets a decision back.
 */
import { decideFull } from './full.js';
import { decideProxy } from './proxy.js';
import type { DhcpContext, DhcpDecision, ReplyDestination } from './types.js';
import type { DhcpPacket } from '../wire/packet.js';

/**
 * Where a request arrived: the DHCP port (67), with the datagram's source
 * address when known, or the PXE boot server port (4011, proxy mode), with
 * the source address and port its reply goes back to.
 */
export type Arrival = { port: 'dhcp'; source?: string | undefined } | { port: 'boot-server'; source: ReplyDestination };

/**
 * What to do with one request. On port 67, `arrival.source` decides whether
 * a DHCPRELEASE is honoured and a renewal gets the full lease time: only
 * when it comes from the address it is about.
 */
export function answer(packet: DhcpPacket, context: DhcpContext, now: number, arrival: Arrival): DhcpDecision {
  if (arrival.port === 'boot-server') return decideProxy(packet, context, arrival);
  if (context.mode === 'proxy') return decideProxy(packet, context, { port: 'dhcp' });
  return decideFull(packet, context, now, arrival.source);
}

/** answer() for a request on port 67 from `source`. */
export function decide(packet: DhcpPacket, context: DhcpContext, now: number, source?: string): DhcpDecision {
  return answer(packet, context, now, { port: 'dhcp', source });
}
