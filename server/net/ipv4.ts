/**
 * IPv4 addresses as dotted quads at the edges and as unsigned 32-bit numbers
 * for arithmetic (pool ranges, subnet tests).
 */

/**
 * A dotted quad as a number, or -1: four decimal parts of 0-255 without
 * leading zeros (so "010.0.0.1", which some parsers read as octal, is
 * refused). One pass over the characters, no regular expression and no
 * strings made: the DHCP server converts addresses several times per packet.
 */
function parseDottedQuad(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    if (c < 0x30 || c > 0x39 || (digits === 1 && part === 0)) return -1;
    part = part * 10 + (c - 0x30);
    digits++;
    if (part > 255) return -1;
  }
  return dots === 3 && digits > 0 ? value * 256 + part : -1;
}

export function isIpv4(text: string): boolean {
  return parseDottedQuad(text) >= 0;
}

/** Dotted quad to an unsigned 32-bit number; throws on anything else. */
export function ipv4ToNumber(text: string): number {
  const n = parseDottedQuad(text);
  if (n < 0) throw new RangeError(`'${text}' is not an IPv4 address`);
  return n;
}

export function numberToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

export function readIpv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

export function writeIpv4(buf: Buffer, offset: number, text: string): void {
  buf.writeUInt32BE(ipv4ToNumber(text), offset);
}

export const anyAddress = '0.0.0.0';
export const limitedBroadcast = '255.255.255.255';

/** A subnet given by one of its addresses and a prefix length. */
export class Subnet {
  readonly network: number;
  readonly mask: number;

  constructor(
    address: string,
    readonly prefixLength: number,
  ) {
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) {
      throw new RangeError(`prefix length ${prefixLength} is not in 0-32`);
    }
    this.mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
    this.network = (ipv4ToNumber(address) & this.mask) >>> 0;
  }

  get broadcast(): number {
    return (this.network | ~this.mask) >>> 0;
  }

  get maskAddress(): string {
    return numberToIpv4(this.mask);
  }

  get broadcastAddress(): string {
    return numberToIpv4(this.broadcast);
  }

  contains(address: string): boolean {
    return isIpv4(address) && (ipv4ToNumber(address) & this.mask) >>> 0 === this.network;
  }

  /** In the subnet and usable by a host: not the network or broadcast address (prefixes up to /30). */
  isHostAddress(address: string): boolean {
    if (!this.contains(address)) return false;
    if (this.prefixLength >= 31) return true;
    const n = ipv4ToNumber(address);
    return n !== this.network && n !== this.broadcast;
  }

  toString(): string {
    return `${numberToIpv4(this.network)}/${this.prefixLength}`;
  }
}
