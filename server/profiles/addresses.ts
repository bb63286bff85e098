/**
 * IPv4 addresses as profiles write them: dotted quads, with a prefix length for
 * the host's own address. Addresses are handled as unsigned 32-bit numbers.
 */
import { ipv4ToNumber, isIpv4, numberToIpv4, Subnet } from '../net/ipv4.js';

/**
 * The address as a number, or undefined. Strict: exactly four decimal parts,
 * 0-255, and no leading zeros, because inet_aton and some shells read
 * "010.0.0.1" as octal (8.0.0.1) while others read it as decimal.
 */
export function parseIpv4(text: string): number | undefined {
  return isIpv4(text) ? ipv4ToNumber(text) : undefined;
}

/** "a.b.c.d/n" with n from 0 to 32, or undefined. */
export function parseIpv4WithPrefix(text: string): { address: number; prefixLength: number } | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseIpv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9]\d?)$/.test(prefixText)) return undefined;
  const prefixLength = Number(prefixText);
  if (prefixLength > 32) return undefined;
  return { address, prefixLength };
}

/**
 * Why `address` cannot be a host's own address, gateway or name server, or
 * undefined if it can. Checks the special ranges of RFC 6890 that are never
 * unicast to another machine.
 */
export function nonUnicastReason(address: number): string | undefined {
  const first = address >>> 24;
  if (first === 0) return 'is in 0.0.0.0/8 ("this network", RFC 1122 section 3.2.1.3)';
  if (first === 127) return 'is a loopback address (127.0.0.0/8)';
  if (first >= 224 && first <= 239) return 'is a multicast address (224.0.0.0/4)';
  if (address === 0xffffffff) return 'is the limited broadcast address';
  if (first >= 240) return 'is in the reserved range 240.0.0.0/4';
  return undefined;
}

/**
 * Why `address` cannot be a host on the subnet address/prefixLength, or
 * undefined. In subnets of /30 and larger the all-zeros host part names the
 * network and the all-ones part is the broadcast address; /31 (RFC 3021) and
 * /32 have neither.
 */
export function reservedInSubnetReason(address: number, prefixLength: number): string | undefined {
  if (prefixLength > 30) return undefined;
  const subnet = new Subnet(numberToIpv4(address), prefixLength);
  if (address === subnet.network) return `is the network address of ${subnet.toString()}, not a host address`;
  if (address === subnet.broadcast) return `is the broadcast address of ${subnet.toString()}, not a host address`;
  return undefined;
}
