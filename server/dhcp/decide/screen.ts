/**
 * The checks every request passes before full or proxy mode looks at it:
 * a client's BOOTREQUEST, Ethernet, DHCP (not plain BOOTP), and either sent
 * on our wire or relayed from inside the served subnet or a relay subnet.
 */
import type { ClientFacts } from '../../core/facts.js';
import { anyAddress, Subnet } from '../../net/ipv4.js';
import { clientFacts } from './client-facts.js';
import { BootOp, hardwareTypeEthernet, type DhcpPacket } from '../wire/packet.js';

export type ScreenedRequest = { kind: 'request'; type: number; facts: ClientFacts; subnet: Subnet } | { kind: 'ignore'; reason: string; facts?: ClientFacts };

export function ignore(reason: string, facts?: ClientFacts): { kind: 'ignore'; reason: string; facts?: ClientFacts } {
  return facts === undefined ? { kind: 'ignore', reason } : { kind: 'ignore', reason, facts };
}

export function screenRequest(
  packet: DhcpPacket,
  served: { serverAddress: string; prefixLength: number; relayScopes?: readonly { subnet: Subnet }[] },
): ScreenedRequest {
  if (packet.op !== BootOp.request) return ignore('not a BOOTREQUEST (op 2 is for clients)');
  if (packet.hardwareType !== hardwareTypeEthernet || packet.hardwareAddress.length !== 6) {
    return ignore(`hardware type ${packet.hardwareType} with hlen ${packet.hardwareAddress.length} is not Ethernet`);
  }
  const type = packet.options.messageType;
  if (type === undefined) return ignore('BOOTP request without option 53; only DHCP is served');
  const facts = clientFacts(packet);
  const local = new Subnet(served.serverAddress, served.prefixLength);
  let subnet = local;
  if (packet.relayAddress !== anyAddress && !local.contains(packet.relayAddress)) {
    const relayed = served.relayScopes?.find((scope) => scope.subnet.contains(packet.relayAddress));
    if (relayed === undefined) return ignore(`relayed by ${packet.relayAddress}, outside ${local} and every relay subnet`, facts);
    subnet = relayed.subnet;
  } else if (packet.relayAddress === anyAddress && packet.clientAddress !== anyAddress && !local.contains(packet.clientAddress)) {
    // RFC 2131 section 4.4.5: a client RENEWING (and one sending INFORM or
    // RELEASE) unicasts straight to the server, without the relay, from its
    // own address. Behind a relay, that address is in the relay's subnet,
    // which is the scope to judge it by; judged by our own wire it would be
    // NAKed and lose an address it holds rightly.
    const routed = served.relayScopes?.find((scope) => scope.subnet.contains(packet.clientAddress));
    if (routed !== undefined) subnet = routed.subnet;
  }
  if (packet.relayAddress === served.serverAddress) {
    // Not a relay: a reply to it would come straight back to us.
    return ignore(`giaddr is our own address ${packet.relayAddress}`, facts);
  }
  return { kind: 'request', type, facts, subnet };
}

/** Relay Agent Information, RFC 3046. */
export const relayAgentInformationCode = 82;

/**
 * RFC 3046 section 2.2: a server that understands option 82 echoes it,
 * unchanged, in every reply to a relayed request, so the relay can forward
 * the reply to the right port and strip the option. Kept raw: its
 * sub-options (circuit-id, remote-id) are the relay's business.
 */
export function echoedRelayInformation(request: DhcpPacket): { rawOptions?: Map<number, Buffer> } {
  const information = request.rawOptions?.get(relayAgentInformationCode);
  return information === undefined ? {} : { rawOptions: new Map([[relayAgentInformationCode, Buffer.from(information)]]) };
}
