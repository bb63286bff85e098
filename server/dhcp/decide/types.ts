/**
 * The vocabulary of a DHCP decision, shared by full mode (full.ts), proxy
 * mode (proxy.ts) and the server: the context a server hands in and the
 * decision it gets back. Types and one default; no code.
 */
import type { BootFileChoice, ClientFacts } from '../../core/facts.js';
import type { Subnet } from '../../net/ipv4.js';
import type { LeaseChange, LeaseStore } from '../leases/leases.js';
import type { DhcpPacket } from '../wire/packet.js';
import type { RelaySlot } from '../../profiles/slot.js';

/** An address reserved for one MAC, with the hostname it is given (option 12). */
export interface Reservation {
  address: string;
  hostname?: string;
  /**
   * Set when the address is a slot's (a profile naming option 82's
   * circuit-id), not the MAC's own: the machine now in the slot gets it,
   * and a lease the slot's previous machine holds on it is freed.
   */
  slot?: RelaySlot;
}

/** An inclusive range of addresses. */
export interface AddressRange {
  start: string;
  end: string;
}

/**
 * A subnet rackboot hands out addresses on: its own wire (from serverAddress,
 * prefixLength, pool, router and dns) or one behind a DHCP relay agent, which
 * is picked by the relay's address (giaddr) as RFC 2131 section 4.3.1 says.
 */
export interface Scope {
  subnet: Subnet;
  pool: AddressRange | undefined;
  router: string | undefined;
  dns: readonly string[];
}

/** `--first-lease-time`'s default: five minutes for a client until it renews from its address. */
export const defaultFirstLeaseSeconds = 300;

export interface DhcpContext {
  /**
   * 'full': rackboot is the network's DHCP server and hands out addresses.
   * 'proxy' (PXE proxyDHCP, proxy.ts): another server hands out addresses
   * and rackboot only answers network-boot clients with boot information.
   */
  mode: 'full' | 'proxy';
  /** Our address on the client's network: server identifier (54), next server. */
  serverAddress: string;
  prefixLength: number;
  /** Addresses handed out to clients without a reservation; none when undefined. */
  pool: AddressRange | undefined;
  leaseSeconds: number;
  /**
   * The lease a client gets until it renews from its bound address (RENEWING
   * or REBINDING, ciaddr and the datagram's source both that address): a
   * client that never comes back, such as a made-up MAC grabbing the pool,
   * holds its address this long instead of leaseSeconds. At most
   * leaseSeconds; leaseSeconds when undefined.
   */
  firstLeaseSeconds?: number;
  /** How long an offered address is kept for the client before another may get it. */
  offerHoldSeconds: number;
  /** How long an address a client declined (DHCPDECLINE) is kept from everyone. */
  declineHoldSeconds: number;
  router: string | undefined;
  dns: readonly string[];
  /** Subnets behind relay agents (full mode); a relayed request from anywhere else is ignored. */
  relayScopes?: readonly Scope[];
  /**
   * The reservation of a MAC seen in `slot` (the request's option 82, or
   * the slot the MAC was last seen in): the MAC's own profile first, then
   * the slot's.
   */
  reservationFor(mac: string, slot?: RelaySlot): Reservation | undefined;
  /** Who an address is reserved for (a MAC or a slot), if anyone; the pool never gives that address to another client. */
  reservationOwner(address: string): string | undefined;
  /**
   * The slot a MAC was last seen in (see profiles/sightings.ts), for
   * requests that come without option 82: renewals are unicast straight to
   * the server, past the relay agent.
   */
  slotOf?(mac: string): RelaySlot | undefined;
  bootFile(facts: ClientFacts): BootFileChoice;
  /**
   * `--dhcp-known-only`: set, only clients it says yes to are answered (a
   * MAC or slot with a profile of its own, not the default one); every
   * other request is ignored, in full and proxy mode alike.
   */
  knownOnly?: ((mac: string, slot?: RelaySlot) => boolean) | undefined;
  /**
   * Several servers on one segment and one database (`--database`):
   * whether this server is the one that answers this MAC's broadcasts now
   * (decide/peers.ts). Undefined: this server answers every client.
   */
  answersFor?: ((mac: string) => boolean) | undefined;
  /** With servers on one database: the never-used pool addresses this server gives out first (see allocateFromPool). */
  prefersAddress?: ((address: string) => boolean) | undefined;
  leases: Pick<LeaseStore, 'byMac' | 'byAddress' | 'all'>;
  /**
   * Where each pool's search for a never-used address starts, by pool
   * ("start-end"): what earlier offers returned as `cursor`, kept by the
   * server. Only a hint for speed (any start finds a never-used address
   * when there is one); absent, the search starts at the pool's start.
   */
  allocationCursors?: ReadonlyMap<string, number>;
  /** UDP ports: replies to relays go to serverPort (67), to clients to clientPort (68). */
  serverPort: number;
  clientPort: number;
}

/** A pool ("start-end") and the offset its next search for a never-used address starts at. */
export interface AllocationCursor {
  pool: string;
  next: number;
}

export interface ReplyDestination {
  address: string;
  port: number;
}

export type DhcpDecision =
  | {
      kind: 'reply';
      result: 'offer' | 'ack' | 'nak';
      packet: DhcpPacket;
      destination: ReplyDestination;
      facts: ClientFacts;
      /** The address given (yiaddr), or for INFORM the client's own. */
      address?: string;
      boot?: BootFileChoice;
      /** Why a NAK was sent; also in its option 56. */
      reason?: string;
      /** Something the log should say about an offer or ack (a lease freed for a slot's new machine). */
      note?: string;
      /** The slot (option 82) the request came from, for an offer or ack: the server records the MAC there. */
      slot?: RelaySlot;
      leaseChanges: LeaseChange[];
      /** For an offer of a never-used address: where the pool's next search starts (see allocationCursors). */
      cursor?: AllocationCursor;
    }
  | {
      /** No reply, but the leases change (RELEASE, DECLINE, a client that chose another server). */
      kind: 'update';
      result: 'release' | 'decline' | 'withdraw-offer';
      facts: ClientFacts;
      address: string;
      reason: string;
      leaseChanges: LeaseChange[];
    }
  | {
      kind: 'ignore';
      reason: string;
      facts?: ClientFacts;
      /**
       * Counted and summed up in the log now and then, rather than a line
       * each (see DhcpServer): a client without a profile under
       * --dhcp-known-only, a new client past the rate of new clients, or a
       * client another server on the database answers.
       */
      quiet?: 'unknown' | 'rate' | 'peer';
    };
