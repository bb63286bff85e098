/**
 * Whose log line is it: syslog and netconsole carry no token, so a line is
 * the host's only when what rackboot itself saw of the sender's address
 * says so (as for boot tokens, tokens/grant.ts):
 *
 * - the address is on the served segment, where the kernel's neighbour
 *   table names the MAC behind it (behind a router it names the router);
 * - full DHCP: the address is the one rackboot's DHCP last gave that MAC,
 *   or the static address of its profile;
 * - proxy DHCP or none: the MAC is a host rackboot boots (its own profile,
 *   or it was handed a boot script).
 *
 * Anything else is a stranger's: dropped and counted, never attributed. Pure.
 */

export interface LogSourceFacts {
  mode: 'full' | 'proxy' | 'off';
  /** The sender's IPv4 address. */
  address: string;
  /** The address is on the served interface's subnet. */
  onSegment: boolean;
  /** The MAC the neighbour table holds for the address on the served interface. */
  neighborMac: string | undefined;
  /** The newest address rackboot's DHCP gave neighborMac. */
  dhcpAddress: string | undefined;
  /** The static address of neighborMac's profile. */
  staticAddress: string | undefined;
  /** neighborMac has its own profile, or was handed a boot script. */
  known: boolean;
}

export type LogSource = { kind: 'host'; mac: string } | { kind: 'stranger'; reason: string };

export function attributeLogSource(facts: LogSourceFacts): LogSource {
  const { address, neighborMac: mac } = facts;
  if (!facts.onSegment) return stranger(`${address} is behind a router: the neighbour table cannot tell which machine sent it`);
  if (mac === undefined) return stranger(`the neighbour table has no MAC for ${address}`);
  if (facts.mode === 'full') {
    if (address === facts.dhcpAddress || address === facts.staticAddress) return { kind: 'host', mac };
    return stranger(
      `${address} (${mac}) is not the address rackboot's DHCP gave ${mac}${facts.dhcpAddress === undefined ? '' : ` (${facts.dhcpAddress})`}, nor its profile's static address`,
    );
  }
  return facts.known ? { kind: 'host', mac } : stranger(`${mac} at ${address} has no profile of its own and was handed no boot script`);
}

function stranger(reason: string): LogSource {
  return { kind: 'stranger', reason };
}
