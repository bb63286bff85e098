/**
 * The checks every request passes before full or proxy mode looks at it:
 * a client's BOOTREQUEST, Ethernet, DHCP (not plain BOOTP), and either sent
 * on our wire or relayed from inside the served subnet.
 */
import type { ClientFacts } from '../boot/facts.js';
import { anyAddress, Subnet } from '../net/ipv4.js';
import { clientFacts } from './facts.js';
import { BootOp, hardwareTypeEthernet, type DhcpPacket } from './packet.js';

export type ScreenedRequest =
  | { kind: 'request'; type: number; facts: ClientFacts; subnet: Subnet }
  | { kind: 'ignore'; reason: string; facts?: ClientFacts };

export function ignore(reason: string, facts?: ClientFacts): { kind: 'ignore'; reason: string; facts?: ClientFacts } {
  return facts === undefined ? { kind: 'ignore', reason } : { kind: 'ignore', reason, facts };
}

export function screenRequest(packet: DhcpPacket, served: { serverAddress: string; prefixLength: number }): ScreenedRequest {
  if (packet.op !== BootOp.request) return ignore('not a BOOTREQUEST (op 2 is for clients)');
  if (packet.hardwareType !== hardwareTypeEthernet || packet.hardwareAddress.length !== 6) {
    return ignore(`hardware type ${packet.hardwareType} with hlen ${packet.hardwareAddress.length} is not Ethernet`);
  }
  const type = packet.options.messageType;
  if (type === undefined) return ignore('BOOTP request without option 53; only DHCP is served');
  const facts = clientFacts(packet);
  const subnet = new Subnet(served.serverAddress, served.prefixLength);
  if (packet.relayAddress !== anyAddress && !subnet.contains(packet.relayAddress)) {
    return ignore(`relayed by ${packet.relayAddress}, outside ${subnet}`, facts);
  }
  if (packet.relayAddress === served.serverAddress) {
    // Not a relay: a reply to it would come straight back to us.
    return ignore(`giaddr is our own address ${packet.relayAddress}`, facts);
  }
  return { kind: 'request', type, facts, subnet };
}
