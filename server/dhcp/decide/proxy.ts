/**
 * proxyDHCP (PXE specification 2.1, sections 2.2.4 and 2.2.5): another DHCP
 * server on the network hands out addresses; rackboot only tells network-boot
 * clients what to boot. A pure function of the packet, where it arrived and
 * the server's context; it keeps no leases.
 *
 * Two conversations, both carrying the boot file from chooseBootFile (the
 * same decision as full mode):
 * - port 67: a DHCPDISCOVER gets a ProxyDHCPOFFER, an offer without an
 *   address (yiaddr 0.0.0.0) that the client pairs with the address
 *   server's offer. It is broadcast: the client has no address yet.
 * - port 4011: once the client has its address it may ask again with a
 *   DHCPREQUEST unicast to us (UEFI PXE always does, see boot-options.ts;
 *   iPXE does when the proxy offer lacked siaddr or a boot file). The ACK
 *   goes back to the address and port it came from.
 *
 * The DHCPREQUEST a client broadcasts to port 67 selects the address
 * server's offer and names that server (option 54); it is not ours to answer.
 * iPXE in particular only accepts the ACK to it from the server it named, and
 * takes its boot file from the ProxyDHCPOFFER (or asks on port 4011).
 */
import type { ClientFacts } from '../../core/facts.js';
import { bootReplyFields } from './boot-options.js';
import { echoedClientId, orderOptions, replyPacket, routeReply, unknownClient } from './reply.js';
import type { DhcpContext, DhcpDecision, ReplyDestination } from './types.js';
import { ignore, screenRequest } from './screen.js';
import { anyAddress, Subnet } from '../../net/ipv4.js';
import { MessageType, messageTypeName, type DhcpOptions } from '../wire/options.js';
import type { DhcpPacket } from '../wire/packet.js';

/**
 * What proxy mode reads of the server's context. relayScopes: subnets
 * behind relay agents whose network-boot clients are answered too (only
 * their subnets count here; their addresses are the DHCP server's business).
 */
export type ProxyContext = Pick<DhcpContext, 'serverAddress' | 'prefixLength' | 'bootFile' | 'serverPort' | 'clientPort'> &
  Partial<Pick<DhcpContext, 'relayScopes' | 'knownOnly' | 'slotOf'>>;

/** Where a request arrived: the DHCP port (67) or the PXE boot server port (4011). */
export interface ProxyArrival {
  port: 'dhcp' | 'boot-server';
  /** The datagram's source address and port; replies on port 4011 go back there. */
  source?: ReplyDestination;
}

/** The PXE boot server port (PXE 2.1 section 2.2.5; IANA "pxe"). */
export const bootServerPort = 4011;

export function decideProxy(packet: DhcpPacket, context: ProxyContext, arrival: ProxyArrival): DhcpDecision {
  const screened = screenRequest(packet, context);
  if (screened.kind === 'ignore') return screened;
  const { type, facts, subnet } = screened;
  const unknown = unknownClient(packet, facts, context);
  if (unknown !== undefined) return unknown;
  if (!facts.isPxe && !facts.isIpxe && !facts.isHttpBoot) {
    return ignore("not a PXE, iPXE or HTTP Boot client; in proxy mode the network's DHCP server serves it", facts);
  }
  const proxy = new ProxyReply(packet, facts, context, subnet);
  return arrival.port === 'boot-server' ? proxy.onBootServerPort(type, arrival.source) : proxy.onDhcpPort(type);
}

class ProxyReply {
  constructor(
    private readonly request: DhcpPacket,
    private readonly facts: ClientFacts,
    private readonly context: ProxyContext,
    private readonly subnet: Subnet,
  ) {}

  onDhcpPort(type: number): DhcpDecision {
    if (type === MessageType.discover) {
      // To the relay if there is one, else broadcast: the client has no address yet.
      return this.reply(MessageType.offer, routeReply(this.request, 'broadcast', this.subnet, this.context));
    }
    if (type === MessageType.request) {
      const serverId = this.request.options.serverIdentifier;
      return ignore(
        serverId === undefined
          ? 'DHCPREQUEST without a server identifier is for the address server'
          : `DHCPREQUEST for server ${serverId}; boot information went in the proxy offer (or comes on port ${bootServerPort})`,
        this.facts,
      );
    }
    return ignore(`${messageTypeName(type)} is not answered in proxy mode`, this.facts);
  }

  onBootServerPort(type: number, source: ReplyDestination | undefined): DhcpDecision {
    if (type !== MessageType.request && type !== MessageType.inform) {
      return ignore(`${messageTypeName(type)} on port ${bootServerPort} (only DHCPREQUEST is answered there)`, this.facts);
    }
    const serverId = this.request.options.serverIdentifier;
    if (serverId !== undefined && serverId !== this.context.serverAddress) {
      return ignore(`port ${bootServerPort} request for server ${serverId}`, this.facts);
    }
    // Back where it came from (EDK2 PxeBcDhcp4Discover listens on 4011).
    const destination = routeReply(this.request, { bootServer: source }, this.subnet, this.context);
    if (destination === undefined) return ignore(`port ${bootServerPort} request without ciaddr or a source address`, this.facts);
    // A client behind a relay asks on port 4011 straight from its address
    // (unicast, routed past the relay): its subnet is a relay subnet.
    const relayScopes = this.context.relayScopes ?? [];
    const reachable = (address: string) => this.subnet.contains(address) || relayScopes.some((scope) => scope.subnet.contains(address));
    if (destination.address !== this.request.relayAddress && !reachable(destination.address)) {
      const where = relayScopes.length > 0 ? `${this.subnet} and every relay subnet` : `${this.subnet}`;
      return ignore(`port ${bootServerPort} request from ${destination.address}, outside ${where}`, this.facts);
    }
    return this.reply(MessageType.ack, destination);
  }

  private reply(type: typeof MessageType.offer | typeof MessageType.ack, destination: ReplyDestination): DhcpDecision {
    const { context, request } = this;
    const boot = context.bootFile(this.facts);
    const fields = bootReplyFields(request, this.facts, boot, context.serverAddress, 'proxy');
    if (boot.kind === 'none' || fields === undefined) {
      return ignore(boot.kind === 'none' ? boot.reason : 'nothing to boot', this.facts);
    }
    const offered: DhcpOptions = { ...fields.options, ...echoedClientId(request) };
    const packet = replyPacket(request, {
      // The offer is broadcast; say so, as pixiecore and dnsmasq do.
      broadcast: type === MessageType.offer ? true : request.broadcast,
      // The ACK on port 4011 keeps the client's address; no address is ever given.
      clientAddress: type === MessageType.ack ? request.clientAddress : anyAddress,
      yourAddress: anyAddress,
      nextServer: fields.nextServer,
      bootFile: fields.bootFile,
      options: orderOptions({ messageType: type, serverIdentifier: context.serverAddress }, offered, request.options.parameterRequestList ?? []),
    });
    return {
      kind: 'reply',
      result: type === MessageType.offer ? 'offer' : 'ack',
      packet,
      destination,
      facts: this.facts,
      boot,
      leaseChanges: [],
    };
  }
}
