/**
 * Full mode: rackboot is the network's DHCP server and hands out addresses.
 * What to do with one request is a pure function of the packet, the
 * server's context (configuration, reservations, boot choice, a read-only
 * view of the leases) and the clock. It never writes: lease changes come
 * back in the decision and the server applies them.
 *
 * The pipeline, in order: drop what is not for us, drop what is unusable,
 * read the facts once, then handle the message type (RFC 2131 section 4.3).
 */
import type { ClientFacts } from '../../core/facts.js';
import { allocateFromPool, heldByOther, inPool, type Allocation } from './allocate.js';
import { bootReplyFields } from './boot-options.js';
import { echoedClientId, orderOptions, replyPacket, routeReply, unknownClient } from './reply.js';
import type { DhcpContext, DhcpDecision, Reservation, ReplyDestination, Scope } from './types.js';
import { ignore, screenRequest } from './screen.js';
import { anyAddress, ipv4ToNumber, Subnet } from '../../net/ipv4.js';
import { holdsAddress, type Lease, type LeaseChange } from '../leases/leases.js';
import { MessageType, messageTypeName, type DhcpOptions } from '../wire/options.js';
import type { DhcpPacket } from '../wire/packet.js';
import { relayAgentInformation } from '../wire/relay-agent.js';
import { formatSlot, type RelaySlot } from '../../profiles/slot.js';

/**
 * Full mode's answer to a request on port 67 from `source` (the datagram's
 * source address, when known).
 */
export function decideFull(packet: DhcpPacket, context: DhcpContext, now: number, source: string | undefined): DhcpDecision {
  const screened = screenRequest(packet, context);
  if (screened.kind === 'ignore') return screened;
  const { type, facts, subnet } = screened;
  const unknown = unknownClient(packet, facts, context);
  if (unknown !== undefined) return unknown;
  const peer = answeredByPeer(packet, type, facts, context);
  if (peer !== undefined) return peer;
  const scope = scopeFor(subnet, context);
  return new Decision(packet, facts, context, scope, now, source).full(type);
}

/**
 * With servers sharing a database, a client's broadcasts (DHCPDISCOVER,
 * DHCPINFORM, and a DHCPREQUEST that names no server: INIT-REBOOT,
 * RENEWING, REBINDING) are answered by one of them alone (answersFor); a
 * message naming a server (SELECTING, DECLINE, RELEASE) by the one named.
 * A renewal unicast to a server that no longer answers the client goes
 * unanswered, and the client rebinds (RFC 2131 4.4.5) with the one that does.
 */
function answeredByPeer(packet: DhcpPacket, type: number, facts: ClientFacts, context: DhcpContext): DhcpDecision | undefined {
  if (context.answersFor === undefined || packet.options.serverIdentifier !== undefined) return undefined;
  if (type !== MessageType.discover && type !== MessageType.request && type !== MessageType.inform) return undefined;
  if (context.answersFor(facts.mac)) return undefined;
  return { kind: 'ignore', reason: 'another server on the database answers this client', facts, quiet: 'peer' };
}

/** The scope of a screened request's subnet: our own wire, or a relay's. */
export function scopeFor(subnet: Subnet, context: DhcpContext): Scope {
  const relayed = context.relayScopes?.find((scope) => scope.subnet.network === subnet.network && scope.subnet.prefixLength === subnet.prefixLength);
  return relayed ?? { subnet, pool: context.pool, router: context.router, dns: context.dns };
}

/** Where a full-mode reply of `replyType` goes (routeReply): a NAK is broadcast, an offer or ACK goes to the client. */
export function replyDestination(request: DhcpPacket, replyType: number, subnet: Subnet, ports: { serverPort: number; clientPort: number }): ReplyDestination {
  return routeReply(request, replyType === MessageType.nak ? 'broadcast' : 'client', subnet, ports);
}

/** May this client have the address: yes, with the changes that make it free (and why), or the refusal. */
type AddressClaim = { changes: LeaseChange[]; note?: string } | { reason: string };

class Decision {
  private readonly mac: string;
  private readonly reservation: Reservation | undefined;
  /** The slot in this request's option 82: proof the client is in it now. */
  private readonly seenSlot: RelaySlot | undefined;
  /** What the log should know about option 82 (malformed). */
  private readonly relayNote: string | undefined;

  constructor(
    private readonly request: DhcpPacket,
    private readonly facts: ClientFacts,
    private readonly context: DhcpContext,
    private readonly scope: Scope,
    private readonly now: number,
    private readonly source: string | undefined,
  ) {
    // Clients are known by MAC (chaddr), not by client identifier (option
    // 61): profiles and reservations are per MAC, and the firmware, iPXE and
    // the booted OS send different identifiers (or none) for the same NIC.
    this.mac = facts.mac;
    const information = relayAgentInformation(request);
    this.seenSlot = information.kind === 'slot' ? information.slot : undefined;
    this.relayNote = information.kind === 'malformed' ? `${information.reason}; not matched to a slot` : undefined;
    const slot = this.seenSlot ?? context.slotOf?.(this.mac);
    this.reservation = slot === undefined ? context.reservationFor(this.mac) : context.reservationFor(this.mac, slot);
  }

  full(type: number): DhcpDecision {
    switch (type) {
      case MessageType.discover:
        return this.discover();
      case MessageType.request:
        return this.requestMessage();
      case MessageType.decline:
        return this.decline();
      case MessageType.release:
        return this.release();
      case MessageType.inform:
        return this.inform();
      default:
        return ignore(`${messageTypeName(type)} is not a client message`, this.facts);
    }
  }

  // --- message types -------------------------------------------------------

  /** RFC 2131 section 4.3.1. */
  private discover(): DhcpDecision {
    const allocation = this.allocate();
    if ('reason' in allocation) return ignore(allocation.reason, this.facts);
    const { address } = allocation;
    const changes = [...allocation.changes];
    const { note, cursor } = allocation;
    const holdUntil = this.now + this.context.offerHoldSeconds * 1000;
    const own = this.context.leases.byMac(this.mac);
    // A client that still has a bound lease keeps it; an offer must not shorten it.
    const keepsBinding = own !== undefined && own.address === address && own.state === 'bound' && own.expiresAt >= holdUntil;
    if (!keepsBinding) changes.push({ kind: 'upsert', lease: this.lease(address, 'offered', holdUntil) });
    // The lease a REQUEST for this offer gets: a first lease.
    const leaseSeconds = this.firstLeaseSeconds();
    const decision = this.reply(MessageType.offer, { yourAddress: address, leaseSeconds, changes, note });
    if (cursor !== undefined && decision.kind === 'reply') decision.cursor = cursor;
    return decision;
  }

  /** RFC 2131 section 4.3.2: SELECTING, INIT-REBOOT, RENEWING and REBINDING. */
  private requestMessage(): DhcpDecision {
    const { options, clientAddress } = this.request;
    const serverId = options.serverIdentifier;
    const requested = options.requestedAddress;
    let address: string;
    let renewing = false;
    if (serverId !== undefined) {
      // SELECTING: the client names the server whose offer it took.
      if (serverId !== this.context.serverAddress) return this.otherServerChosen(serverId);
      const named = requested ?? (clientAddress !== anyAddress ? clientAddress : undefined);
      if (named === undefined) return this.nak('DHCPREQUEST names us but no address (option 50)');
      address = named;
    } else if (requested !== undefined) {
      // INIT-REBOOT: a client that remembers its address after a restart.
      address = requested;
    } else if (clientAddress !== anyAddress) {
      // RENEWING (unicast to us) or REBINDING (broadcast): the address is in ciaddr.
      address = clientAddress;
      renewing = true;
    } else {
      return ignore('DHCPREQUEST with no server identifier, requested address or ciaddr', this.facts);
    }
    // rackboot is authoritative for its network: a request for an address it
    // would not give is NAKed (rather than ignored, RFC 2131 4.3.2 lets a
    // server without a record stay silent) and a valid one is ACKed even
    // without a record, so clients keep their address across a restart of a
    // server whose lease store was lost. dnsmasq's --dhcp-authoritative does the same.
    const claim = this.claim(address);
    if ('reason' in claim) return this.nak(claim.reason);
    const leaseSeconds = renewing && this.renewsBinding(address) ? this.context.leaseSeconds : this.firstLeaseSeconds();
    const until = this.now + leaseSeconds * 1000;
    return this.reply(MessageType.ack, {
      yourAddress: address,
      clientAddress,
      leaseSeconds,
      changes: [...claim.changes, { kind: 'upsert', lease: this.lease(address, 'bound', until) }],
      note: claim.note,
    });
  }

  private firstLeaseSeconds(): number {
    return Math.min(this.context.firstLeaseSeconds ?? this.context.leaseSeconds, this.context.leaseSeconds);
  }

  /**
   * Whether a RENEWING or REBINDING request (RFC 2131 section 4.3.2, ciaddr
   * set, no option 50) renews a binding the client holds: it comes from the
   * address it has bound now. A renewal is unicast from that address; one
   * rebinding through a relay comes from the relay. Only such a client gets
   * the full lease time: one that merely went through DISCOVER and REQUEST
   * (every made-up MAC does) gets a first lease, which ends soon unless it
   * comes back.
   */
  private renewsBinding(address: string): boolean {
    const { clientAddress, relayAddress } = this.request;
    const fromItself = relayAddress !== anyAddress ? this.source === relayAddress : this.source === clientAddress;
    if (!fromItself) return false;
    const own = this.context.leases.byMac(this.mac);
    return own !== undefined && own.address === address && own.state === 'bound' && holdsAddress(own, this.now);
  }

  /** The client took another server's offer: free the address we held for it. */
  private otherServerChosen(serverId: string): DhcpDecision {
    const own = this.context.leases.byMac(this.mac);
    const reason = `client chose server ${serverId}`;
    // With servers on one database, the client's offer record is the database's, and may be the chosen server's.
    if (own === undefined || own.state !== 'offered' || this.context.answersFor !== undefined) return ignore(reason, this.facts);
    return {
      kind: 'update',
      result: 'withdraw-offer',
      facts: this.facts,
      address: own.address,
      reason,
      leaseChanges: [{ kind: 'remove', address: own.address }],
    };
  }

  /** RFC 2131 section 4.3.3: the client found the address in use; nobody gets it for a while. */
  private decline(): DhcpDecision {
    const { serverIdentifier, requestedAddress } = this.request.options;
    if (serverIdentifier !== undefined && serverIdentifier !== this.context.serverAddress) {
      return ignore(`DHCPDECLINE for server ${serverIdentifier}`, this.facts);
    }
    if (requestedAddress === undefined) return ignore('DHCPDECLINE without option 50', this.facts);
    const own = this.context.leases.byMac(this.mac);
    const isOwn = (own !== undefined && own.address === requestedAddress) || this.reservation?.address === requestedAddress;
    if (!isOwn) return ignore(`DHCPDECLINE of ${requestedAddress}, which this client was not given`, this.facts);
    const quarantined = this.quarantinedInPool(requestedAddress);
    if (quarantined !== undefined && quarantined.count >= quarantined.limit) {
      // Any MAC can be given a pool address and decline it; without a bound,
      // made-up MACs could keep the whole pool in quarantine. Past a quarter
      // of the pool, a declined address is only taken from the client.
      return {
        kind: 'update',
        result: 'decline',
        facts: this.facts,
        address: requestedAddress,
        reason: `not quarantined: ${quarantined.count} of the pool's addresses are quarantined already (at most ${quarantined.limit}); freed`,
        leaseChanges: own?.address === requestedAddress ? [{ kind: 'remove', address: requestedAddress }] : [],
      };
    }
    const until = this.now + this.context.declineHoldSeconds * 1000;
    return {
      kind: 'update',
      result: 'decline',
      facts: this.facts,
      address: requestedAddress,
      reason: `quarantined for ${this.context.declineHoldSeconds} s`,
      leaseChanges: [{ kind: 'upsert', lease: { mac: this.mac, address: requestedAddress, state: 'declined', expiresAt: until } }],
    };
  }

  /** For a pool address: how many of the pool's addresses are quarantined now, and how many may be. */
  private quarantinedInPool(address: string): { count: number; limit: number } | undefined {
    const { pool } = this.scope;
    if (pool === undefined || !this.inPool(address)) return undefined;
    const limit = Math.max(1, Math.floor((ipv4ToNumber(pool.end) - ipv4ToNumber(pool.start) + 1) / 4));
    const count = this.context.leases
      .all()
      .filter((record) => record.state === 'declined' && holdsAddress(record, this.now) && this.inPool(record.address)).length;
    return { count, limit };
  }

  /** RFC 2131 section 4.3.4. */
  private release(): DhcpDecision {
    const { serverIdentifier } = this.request.options;
    if (serverIdentifier !== undefined && serverIdentifier !== this.context.serverAddress) {
      return ignore(`DHCPRELEASE for server ${serverIdentifier}`, this.facts);
    }
    const address = this.request.clientAddress;
    const own = this.context.leases.byMac(this.mac);
    if (own === undefined || own.address !== address || !holdsAddress(own, this.now) || own.state === 'declined') {
      return ignore(`DHCPRELEASE of ${address}, which this client does not hold`, this.facts);
    }
    // RFC 2131 section 4.4.6: the client unicasts its RELEASE from the
    // address it gives up. Anyone can write a MAC into chaddr; a RELEASE
    // from another address is a stranger trying to free someone's lease.
    if (this.source !== address) {
      return ignore(`DHCPRELEASE of ${address} sent from ${this.source ?? 'an unknown address'}, not from the address itself`, this.facts);
    }
    return {
      kind: 'update',
      result: 'release',
      facts: this.facts,
      address,
      reason: 'released by the client',
      leaseChanges: [{ kind: 'release', mac: this.mac }],
    };
  }

  /** RFC 2131 section 4.3.5: configuration (and boot information) for a client that has an address. */
  private inform(): DhcpDecision {
    const address = this.request.clientAddress;
    if (address === anyAddress) return ignore('DHCPINFORM without ciaddr', this.facts);
    if (this.request.relayAddress === anyAddress && !this.scope.subnet.contains(address)) {
      return ignore(`DHCPINFORM from ${address}, outside ${this.scope.subnet}`, this.facts);
    }
    return this.reply(MessageType.ack, { yourAddress: anyAddress, clientAddress: address, informOnly: true, changes: [] });
  }

  // --- addresses -----------------------------------------------------------

  private inPool(address: string): boolean {
    return inPool(this.scope.pool, address);
  }

  /** Someone else holds the address now, or it is quarantined. */
  private heldByOther(address: string): Lease | undefined {
    return heldByOther(this.context.leases, address, this.mac, this.now);
  }

  private describeHolder(record: Lease): string {
    return record.state === 'declined' ? 'quarantined after a DHCPDECLINE' : `held by ${record.mac} (${record.state})`;
  }

  /**
   * Whether this client may have the address. A slot's address held by
   * another machine is freed when this request comes through the slot
   * (option 82): the machine in a slot was swapped, and a lab admin expects
   * the new one to get the slot's address. The old machine loses the slot
   * (the server records the new MAC there), so its next renewal is NAKed
   * and one address is never bound to two MACs. A remembered slot (a
   * request without option 82) never frees anything: only a request through
   * the slot proves the machine is there now.
   */
  private claim(address: string): AddressClaim {
    const refusal = this.refusal(address);
    if (refusal !== undefined) return { reason: refusal };
    const holder = this.heldByOther(address);
    if (holder === undefined) return { changes: [] };
    const freed = this.slotTakeover(address, holder);
    return freed ?? { reason: `${address} is ${this.describeHolder(holder)}` };
  }

  /** The changes that free a slot's address from the slot's previous machine, when this request may take it. */
  private slotTakeover(address: string, holder: Lease): { changes: LeaseChange[]; note: string } | undefined {
    const slot = this.reservation?.slot;
    if (slot === undefined || this.seenSlot === undefined || this.reservation?.address !== address || holder.state === 'declined') return undefined;
    return {
      changes: [{ kind: 'remove', address }],
      note: `${address} freed from ${holder.mac} (${holder.state}): ${this.mac} is now in slot ${formatSlot(slot)}`,
    };
  }

  /** Why this client may not have the address, leaving aside who holds it now, or undefined when it may. */
  private refusal(address: string): string | undefined {
    if (!this.scope.subnet.isHostAddress(address)) return `${address} is not a host address in ${this.scope.subnet}`;
    if (this.reservation !== undefined) {
      if (address !== this.reservation.address) return `client has reserved address ${this.reservation.address}`;
    } else {
      const owner = this.context.reservationOwner(address);
      if (owner !== undefined) return `${address} is reserved for ${owner}`;
      if (!this.inPool(address)) return `${address} is outside the pool`;
    }
    // Reserved or not: the server's and the scope's router's address go to nobody.
    if (this.isInfrastructure(address)) return `${address} is the server's or router's address`;
    return undefined;
  }

  private isInfrastructure(address: string): boolean {
    return address === this.context.serverAddress || address === this.scope.router;
  }

  /** The address to offer: the reservation if there is one, else one from the pool (allocateFromPool). */
  private allocate(): Allocation {
    if (this.reservation !== undefined) {
      const { address } = this.reservation;
      if (!this.scope.subnet.isHostAddress(address)) return { reason: `reservation ${address} is outside ${this.scope.subnet}` };
      if (this.isInfrastructure(address)) return { reason: `reservation ${address} is the server's or router's address` };
      const holder = this.heldByOther(address);
      if (holder === undefined) return { address, changes: [] };
      const freed = this.slotTakeover(address, holder);
      if (freed === undefined) return { reason: `reserved address ${address} is ${this.describeHolder(holder)}` };
      return { address, ...freed };
    }
    const { pool, subnet } = this.scope;
    if (pool === undefined) return { reason: `no reservation for this client and no pool on ${subnet}` };
    return allocateFromPool({
      pool,
      subnet,
      mac: this.mac,
      requested: this.request.options.requestedAddress,
      now: this.now,
      leases: this.context.leases,
      cursors: this.context.allocationCursors,
      isInfrastructure: (address) => this.isInfrastructure(address),
      reservationOwner: (address) => this.context.reservationOwner(address),
      prefers: this.context.prefersAddress,
    });
  }

  private lease(address: string, state: 'offered' | 'bound', expiresAt: number): Lease {
    const lease: Lease = { mac: this.mac, address, state, expiresAt };
    if (this.reservation?.address === address && this.reservation.hostname !== undefined) lease.hostname = this.reservation.hostname;
    return lease;
  }

  // --- replies -------------------------------------------------------------

  private nak(reason: string): DhcpDecision {
    const type = MessageType.nak;
    const relayed = this.request.relayAddress !== anyAddress;
    const packet = replyPacket(this.request, {
      yourAddress: anyAddress,
      clientAddress: anyAddress,
      // RFC 2131 section 4.1: a NAK through a relay asks the relay to broadcast it.
      broadcast: this.request.broadcast || relayed,
      options: { messageType: type, serverIdentifier: this.context.serverAddress, message: reason, ...echoedClientId(this.request) },
    });
    return {
      kind: 'reply',
      result: 'nak',
      packet,
      destination: replyDestination(this.request, type, this.scope.subnet, this.context),
      facts: this.facts,
      reason,
      leaseChanges: [],
    };
  }

  private reply(
    type: typeof MessageType.offer | typeof MessageType.ack,
    parts: { yourAddress: string; clientAddress?: string; leaseSeconds?: number; informOnly?: boolean; changes: LeaseChange[]; note?: string | undefined },
  ): DhcpDecision {
    const { context } = this;
    const boot = context.bootFile(this.facts);
    const bootFields = bootReplyFields(this.request, this.facts, boot, context.serverAddress);

    // Everything we can say, in our default order; sorted by the client's
    // parameter request list below.
    const offered: DhcpOptions = {};
    if (!parts.informOnly) {
      // RFC 2131 section 4.3.5: no lease time in a reply to DHCPINFORM.
      const seconds = parts.leaseSeconds ?? context.leaseSeconds;
      offered.leaseSeconds = seconds;
      offered.renewalSeconds = Math.floor(seconds * 0.5); // T1, RFC 2131 section 4.4.5
      offered.rebindingSeconds = Math.floor(seconds * 0.875); // T2
    }
    offered.subnetMask = this.scope.subnet.maskAddress;
    offered.broadcastAddress = this.scope.subnet.broadcastAddress;
    if (this.scope.router !== undefined) offered.routers = [this.scope.router];
    if (this.scope.dns.length > 0) offered.dnsServers = [...this.scope.dns];
    if (this.reservation?.hostname !== undefined) offered.hostname = this.reservation.hostname;
    Object.assign(offered, bootFields?.options, echoedClientId(this.request));

    const packet = replyPacket(this.request, {
      yourAddress: parts.yourAddress,
      clientAddress: parts.clientAddress ?? anyAddress,
      broadcast: this.request.broadcast,
      nextServer: bootFields?.nextServer,
      bootFile: bootFields?.bootFile,
      options: orderOptions({ messageType: type, serverIdentifier: context.serverAddress }, offered, this.request.options.parameterRequestList ?? []),
    });
    const decision: DhcpDecision = {
      kind: 'reply',
      result: type === MessageType.offer ? 'offer' : 'ack',
      packet,
      destination: replyDestination(this.request, type, this.scope.subnet, context),
      facts: this.facts,
      address: parts.informOnly ? (parts.clientAddress ?? anyAddress) : parts.yourAddress,
      boot,
      leaseChanges: parts.changes,
    };
    const note = [parts.note, this.relayNote].filter((part) => part !== undefined).join('; ');
    if (note !== '') decision.note = note;
    if (this.seenSlot !== undefined && !parts.informOnly) decision.slot = { ...this.seenSlot };
    return decision;
  }
}

/**
 * Full mode: another DHCP server on the served segment, as a request shows
 * it: a DHCPREQUEST that names another server identifier (the client took
 * that server's offer). Relayed requests do not count (a relay may forward
 * to several servers on purpose), nor does proxy mode, where the network's
 * own server is expected. Pure.
 */
export function otherServerShown(packet: DhcpPacket, context: Pick<DhcpContext, 'mode' | 'serverAddress'>): string | undefined {
  if (context.mode === 'proxy' || packet.options.messageType !== MessageType.request) return undefined;
  if (packet.relayAddress !== anyAddress) return undefined;
  const serverId = packet.options.serverIdentifier;
  return serverId !== undefined && serverId !== context.serverAddress ? serverId : undefined;
}
