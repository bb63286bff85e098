/**
 * ClientFacts from a DHCP request: read the packet once, so the decision and
 * the boot file choice never look at raw options.
 */
import { platformOf, type ClientFacts } from '../../core/facts.js';
import { userClasses } from '../wire/options.js';
import type { DhcpPacket } from '../wire/packet.js';

/** Two lower-case hex digits for each byte value. */
const hexPairs: readonly string[] = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** Lower-case, colon-separated hex of a hardware address ("52:54:00:12:34:56"). */
export function formatMac(address: Buffer): string {
  // Runs for every request: string concatenation over a table, not an array of strings joined.
  if (address.length === 0) return '';
  let text = hexPairs[address[0]!]!;
  for (let i = 1; i < address.length; i++) text += `:${hexPairs[address[i]!]!}`;
  return text;
}

export function clientFacts(packet: DhcpPacket): ClientFacts {
  const { options } = packet;
  const vendorClass = options.vendorClass ?? '';
  // RFC 4578 allows a list of architectures; every client seen sends one.
  const arch = options.clientArch?.[0];
  return {
    mac: formatMac(packet.hardwareAddress),
    arch,
    platform: platformOf(arch),
    isPxe: vendorClass.startsWith('PXEClient'),
    isHttpBoot: vendorClass.startsWith('HTTPClient'),
    // iPXE sends user class "iPXE" and its own option 175; a chainloaded iPXE
    // built without one still sends the other.
    isIpxe: options.ipxeEncapsulated !== undefined || (options.userClass !== undefined && userClasses(options.userClass).includes('iPXE')),
  };
}
