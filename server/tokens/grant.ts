/**
 * Who gets a boot token: a boot script or xen.cfg carries a host's token
 * only when the requester is proven to be that MAC. HTTP and TFTP see an
 * address, not a MAC, so the proof is what rackboot itself saw of that
 * address (README, "Security model"):
 *
 * - full DHCP: rackboot offered or ACKed this very address to the MAC in
 *   the last few minutes (this boot's DHCP exchange; a reservation alone
 *   proves nothing), and, on the served segment, the kernel's neighbour
 *   entry for the address holds the MAC. Behind a relay the neighbour entry
 *   is the router's, so the DHCP exchange is all there is.
 * - proxy DHCP or no DHCP: rackboot gave no address, so only the neighbour
 *   entry can tell, which exists on the served segment alone: a requester
 *   behind a router gets no token.
 *
 * A stranger that takes both the MAC and the address of a machine that is
 * off looks exactly like it; that is beyond what DHCP can tell apart, and
 * token-use.ts raises an alarm when both boot at once. Pure.
 */

export type ProofMode = 'full' | 'proxy' | 'off';

export interface GrantFacts {
  mode: ProofMode;
  /** Normalised MAC the file is for. */
  mac: string;
  /** The requester's IPv4 address, as the socket saw it. */
  requester: string | undefined;
  /** The requester is on the served interface's subnet (not behind a router). */
  onSegment: boolean;
  /** The MAC the kernel's neighbour table holds for the requester on the served interface. */
  neighborMac: string | undefined;
  /** The newest address rackboot's DHCP offered or ACKed to the MAC, and when. */
  dhcp: { address: string; at: number } | undefined;
  now: number;
}

export type TokenGrant = { kind: 'grant' } | { kind: 'withhold'; reason: string };

/** How long a DHCP exchange proves that its address is the MAC's: one boot's way from DHCP to the boot script, with room. */
export const dhcpProofMs = 10 * 60 * 1000;

export function decideTokenGrant(facts: GrantFacts): TokenGrant {
  const { mac, requester } = facts;
  if (requester === undefined) return withhold("the requester's address is unknown");
  const neighbor = (): TokenGrant =>
    facts.neighborMac === mac
      ? { kind: 'grant' }
      : withhold(
          facts.neighborMac === undefined
            ? `the server's neighbour table has no MAC for ${requester}`
            : `the server's neighbour table has ${facts.neighborMac} for ${requester}, not ${mac}`,
        );
  if (facts.mode === 'full') {
    const given = facts.dhcp;
    if (given === undefined || facts.now - given.at > dhcpProofMs) {
      return withhold(`rackboot's DHCP has not offered or acknowledged an address to ${mac} in the last ${dhcpProofMs / 60_000} minutes`);
    }
    if (given.address !== requester) return withhold(`${requester} is not the address rackboot's DHCP gave ${mac} (${given.address})`);
    return facts.onSegment ? neighbor() : { kind: 'grant' };
  }
  if (!facts.onSegment) {
    return withhold(`${requester} is behind a router, and with the network's own DHCP server rackboot cannot tell which machine that is`);
  }
  return neighbor();
}

function withhold(reason: string): TokenGrant {
  return { kind: 'withhold', reason };
}

/**
 * The newest address rackboot's DHCP offered or ACKed to each MAC, and
 * when: the DHCP half of the full-mode proof. In memory and bounded: a
 * restart forgets it, and a host's next DHCP exchange (iPXE makes one right
 * before it asks for its boot script) puts it back.
 */
export class DhcpAnswers {
  private readonly answers = new Map<string, { address: string; at: number }>();

  constructor(private readonly capacity = 65_536) {}

  record(mac: string, address: string, at: number): void {
    this.answers.delete(mac);
    this.answers.set(mac, { address, at });
    if (this.answers.size > this.capacity) this.answers.delete(this.answers.keys().next().value!);
  }

  of(mac: string): { address: string; at: number } | undefined {
    return this.answers.get(mac);
  }
}
