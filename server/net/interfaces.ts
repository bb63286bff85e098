import { execFileSync } from 'node:child_process';
import { networkInterfaces } from 'node:os';
import { ipv4ToNumber, isIpv4, numberToIpv4, Subnet } from './ipv4.js';

export interface InterfaceAddress {
  interfaceName: string;
  address: string;
  prefixLength: number;
}

/**
 * The IPv4 addresses (with prefix length) of an interface, or undefined when
 * there is no such interface.
 *
 * Node's os.networkInterfaces() (libuv) leaves out interfaces that are up but
 * have no carrier: a switch port not yet cabled, or a tap no VM holds yet.
 * rackboot must start on those too, so it asks iproute2 first and falls back
 * to Node's list where `ip` is missing.
 */
export function ipv4AddressesOf(interfaceName: string): Array<{ address: string; prefixLength: number }> | undefined {
  try {
    const output = execFileSync('ip', ['-j', '-4', 'addr', 'show', 'dev', interfaceName], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const links = JSON.parse(output) as Array<{ addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }> }>;
    // With -4, a device that has no IPv4 address is left out: it exists, with none.
    if (links.length === 0) return linkExists(interfaceName) ? [] : undefined;
    return links.flatMap((link) =>
      (link.addr_info ?? [])
        .filter((info) => info.family === 'inet' && info.local !== undefined)
        .map((info) => ({ address: info.local!, prefixLength: info.prefixlen ?? 32 })),
    );
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '');
    if (/does not exist|Cannot find device/i.test(stderr)) return undefined;
    const entries = networkInterfaces()[interfaceName];
    if (!entries) return undefined;
    return entries
      .filter((entry) => entry.family === 'IPv4')
      .map((entry) => ({ address: entry.address, prefixLength: Number(entry.cidr?.split('/')[1] ?? 32) }));
  }
}

function linkExists(interfaceName: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', interfaceName], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The IPv4 address rackboot serves on: the one given (which must be on the
 * interface), or the interface's first IPv4 address.
 */
export function interfaceAddress(interfaceName: string, wanted?: string): InterfaceAddress {
  const ipv4 = ipv4AddressesOf(interfaceName);
  if (!ipv4) {
    const known = Object.keys(networkInterfaces()).join(', ');
    throw new Error(`--interface ${interfaceName}: no such interface (interfaces with an address: ${known})`);
  }
  const match = wanted === undefined ? ipv4[0] : ipv4.find((entry) => entry.address === wanted);
  if (!match) {
    const have = ipv4.map((entry) => `${entry.address}/${entry.prefixLength}`).join(', ') || 'no IPv4 address';
    throw new Error(
      wanted === undefined
        ? `--interface ${interfaceName}: it has no IPv4 address; give it one (rackboot serves on an address of its own on that network)`
        : `address ${wanted} is not on interface "${interfaceName}" (it has ${have})`,
    );
  }
  return { interfaceName, address: match.address, prefixLength: match.prefixLength };
}

/**
 * `--tftp-server ADDR`: the TFTP server that DHCP replies name (siaddr and
 * option 66) instead of this one. A unicast IPv4 address, and only with
 * `--dhcp full`: in proxy mode UEFI PXE sends its port-4011 request to the
 * offer's siaddr, which must stay this server; with `--dhcp off` the site's
 * DHCP server names the TFTP server itself.
 */
export function parseTftpServer(text: string, dhcp: 'full' | 'proxy' | 'off'): string {
  if (!isIpv4(text)) throw new Error(`--tftp-server "${text}": not an IPv4 address (want a.b.c.d, the host that serves ipxe.efi and undionly.kpxe)`);
  const first = Number(text.split('.')[0]);
  if (text === '0.0.0.0' || text === '255.255.255.255' || first === 0 || first === 127 || first >= 224) {
    throw new Error(`--tftp-server ${text}: not a unicast address that booting machines can reach`);
  }
  if (dhcp !== 'full') {
    throw new Error(
      dhcp === 'proxy'
        ? `--tftp-server ${text}: only with --dhcp full (in proxy mode UEFI PXE asks this server again on port 4011 at siaddr, so siaddr stays this server's address)`
        : `--tftp-server ${text}: only with --dhcp full (with --dhcp off, your DHCP server names the TFTP server)`,
    );
  }
  return text;
}

/** Parse "START-END" and check both ends lie in the served subnet, in order. */
export function parsePool(text: string, served: InterfaceAddress): { start: string; end: string } {
  const [start, end, extra] = text.split('-').map((part) => part.trim());
  if (!start || !end || extra !== undefined) throw new Error(`--pool "${text}": want START-END, e.g. 198.18.0.100-198.18.0.199`);
  const subnet = new Subnet(served.address, served.prefixLength);
  for (const address of [start, end]) {
    if (!isIpv4(address)) throw new Error(`--pool "${text}": "${address}" is not an IPv4 address`);
    if (!subnet.isHostAddress(address)) {
      throw new Error(`--pool "${text}": ${address} is not a host address of ${served.interfaceName}'s subnet ${subnet.toString()}`);
    }
  }
  if (ipv4ToNumber(start) > ipv4ToNumber(end)) throw new Error(`--pool "${text}": the start is after the end`);
  return { start, end };
}

/**
 * The pool serve suggests when full mode is started without one: the upper
 * half of the served subnet, less the broadcast address.
 */
export function defaultPool(served: InterfaceAddress): { start: string; end: string } {
  const subnet = new Subnet(served.address, served.prefixLength);
  const size = 2 ** (32 - served.prefixLength);
  if (size < 8) throw new Error(`subnet ${subnet.toString()} is too small to suggest a pool; give --pool`);
  return { start: numberToIpv4(subnet.network + size / 2), end: numberToIpv4(subnet.broadcast - 1) };
}

/** A subnet behind a DHCP relay agent, as `--relay-subnet` gives it. */
export interface RelaySubnet {
  subnet: Subnet;
  pool: { start: string; end: string };
  router: string | undefined;
  dns: string[];
}

/** A subnet a.b.c.d/n given as `flag`; a clear error naming the flag otherwise. */
export function parseCidr(text: string, flag: string): Subnet {
  const [network, prefix, extra] = text.trim().split('/');
  if (!network || !isIpv4(network) || prefix === undefined || !/^\d{1,2}$/.test(prefix) || Number(prefix) > 32 || extra !== undefined) {
    throw new Error(`${flag} "${text}": want a subnet a.b.c.d/n, such as 198.18.0.0/24`);
  }
  return new Subnet(network, Number(prefix));
}

/**
 * `--relay-subnet` in proxy mode: the network's DHCP server hands out the
 * addresses, so only the subnet counts. "CIDR" alone is enough; the full
 * form is accepted (and checked) too, so one command line works in both modes.
 */
export function parseProxyRelaySubnet(text: string): { subnet: Subnet } {
  if (text.includes(',')) return { subnet: parseRelaySubnet(text).subnet };
  const [network, prefix, extra] = text.trim().split('/');
  if (!network || !isIpv4(network) || prefix === undefined || !/^\d{1,2}$/.test(prefix) || Number(prefix) > 30 || extra !== undefined) {
    throw new Error(`--relay-subnet "${text}": "${text}" is not a subnet a.b.c.d/n (n up to 30) (want CIDR in proxy mode, e.g. 198.18.2.0/24)`);
  }
  return { subnet: new Subnet(network, Number(prefix)) };
}

/**
 * Parse `--relay-subnet CIDR,START-END[,ROUTER[,DNS...]]`, e.g.
 * "198.18.2.0/24,198.18.2.100-198.18.2.199,198.18.2.1,198.18.2.53".
 */
export function parseRelaySubnet(text: string): RelaySubnet {
  const fail = (why: string): never => {
    throw new Error(`--relay-subnet "${text}": ${why} (want CIDR,START-END[,ROUTER[,DNS...]], e.g. 198.18.2.0/24,198.18.2.100-198.18.2.199,198.18.2.1)`);
  };
  const [cidr, range, router, ...dns] = text.split(',').map((part) => part.trim());
  const [network, prefix, extra] = (cidr ?? '').split('/');
  if (!network || !isIpv4(network) || prefix === undefined || !/^\d{1,2}$/.test(prefix) || Number(prefix) > 30 || extra !== undefined) {
    fail(`"${cidr ?? ''}" is not a subnet a.b.c.d/n (n up to 30)`);
  }
  const subnet = new Subnet(network!, Number(prefix));
  if (range === undefined || range === '') return fail('no pool');
  const pool = parsePool(range, { interfaceName: 'the relay', address: network!, prefixLength: Number(prefix) });
  for (const address of [router, ...dns]) {
    if (address === undefined || address === '') continue;
    if (!isIpv4(address)) fail(`"${address}" is not an IPv4 address`);
  }
  if (router !== undefined && router !== '' && !subnet.isHostAddress(router)) fail(`router ${router} is not a host address of ${subnet.toString()}`);
  return { subnet, pool, router: router === '' ? undefined : router, dns: dns.filter(Boolean) };
}
