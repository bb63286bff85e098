/**
 * The DHCP server shell: receive, decode (drop and log what is malformed),
 * decide, commit the lease changes, encode, send. What to answer is decided
 * in decide/ (answer.ts); how lease changes are committed and when replies
 * may go, in leases/commit.ts. This file owns sockets, timers, the clock
 * and logging, and picks once what differs between full and proxy mode.
 *
 * Every socket is bound to interfaceName (SO_BINDTODEVICE, see
 * net/device-socket.ts): a 0.0.0.0 socket would otherwise hear the
 * broadcasts of every interface of the host, and a DHCP server must never
 * answer on a network it was not given. Datagrams from other interfaces are
 * not even received.
 */
import { heldBy } from '../net/port-holder.js';
import { pino } from 'pino';
import type { BootFileChoice, ClientFacts } from '../core/facts.js';
import { RateLimitedLog, type Logger } from '../log.js';
import { DeviceSocket, type Outgoing } from '../net/device-socket.js';
import { ipv4AddressesOf } from '../net/interfaces.js';
import { answer, type Arrival } from './decide/answer.js';
import { otherServerShown } from './decide/full.js';
import { defaultFirstLeaseSeconds, type AddressRange, type DhcpContext, type DhcpDecision, type Reservation, type Scope } from './decide/types.js';
import { bootServerPort } from './decide/proxy.js';
import { DhcpDecodeError, type DhcpDecodeErrorCode } from './wire/errors.js';
import { formatMac } from './decide/client-facts.js';
import { anyAddress, ipv4ToNumber, isIpv4, numberToIpv4, Subnet } from '../net/ipv4.js';
import { GroupCommit, type CommitFailure } from './leases/commit.js';
import { holdsAddress, MemoryLeaseStore, type LeaseStore } from './leases/leases.js';
import { TokenBucket } from './rate-limit.js';
import { MessageType, messageTypeName } from './wire/options.js';
import { clientPacket, decodePacket, encodePacket, type DhcpPacket } from './wire/packet.js';
import type { SlotSightings } from '../profiles/sightings.js';
import { formatSlot, type RelaySlot } from '../profiles/slot.js';

export interface DhcpServerOptions {
  /**
   * 'full' (default): hand out addresses. 'proxy': proxyDHCP beside another
   * DHCP server, boot information only (proxy.ts); also listens on the PXE
   * boot server port, and writes no leases.
   */
  mode?: 'full' | 'proxy';
  /** The interface serverAddress lives on; start() checks it. */
  interfaceName: string;
  serverAddress: string;
  prefixLength: number;
  pool?: AddressRange;
  /** Subnets behind DHCP relay agents, each with its own pool (full mode). */
  relayScopes?: readonly Scope[];
  leaseSeconds: number;
  /** The lease of a client until it renews from its bound address (see DhcpContext.firstLeaseSeconds). Default 300, or leaseSeconds if shorter. */
  firstLeaseSeconds?: number;
  /**
   * Whether a MAC (seen in `slot`) has a profile of its own, not the default
   * one: such clients are never held back by newClientsPerSecond, and with
   * knownOnly they are the only ones answered.
   */
  hasOwnProfile?: (mac: string, slot?: RelaySlot) => boolean;
  /** `--dhcp-known-only`: answer only clients hasOwnProfile says yes to. */
  knownOnly?: boolean;
  /**
   * `--dhcp-new-clients-per-second`: at most this many clients that hold no
   * lease (and have no profile of their own) are offered or given an
   * address per second, on average; the rest are ignored (counted, and
   * summed up in the log). Undefined: no limit.
   */
  newClientsPerSecond?: number;
  router?: string;
  dns: string[];
  /** A MAC's reservation; `slot` is where the request came from (option 82), if known. Full mode only. */
  reservationFor?(mac: string, slot?: RelaySlot): Reservation | undefined;
  /** Who an address is reserved for (a MAC or a slot); keeps reserved addresses out of the pool. Full mode only. */
  reservationOwner?(address: string): string | undefined;
  bootFile(facts: ClientFacts): BootFileChoice;
  /** Where leases are kept: needed in full mode; proxy mode writes none. */
  leases?: LeaseStore;
  /** Several servers on one database: whether this one answers the MAC's broadcasts now (see decide/peers.ts). */
  answersFor?: (mac: string) => boolean;
  /** Several servers on one database: the never-used pool addresses this one gives out first. */
  prefersAddress?: (address: string) => boolean;
  /** Where MACs were seen (option 82), recorded on every offer and ack through a relay; read back for later requests and by HTTP/TFTP lookups. */
  sightings?: SlotSightings;
  log: Logger;
  /** Server port, 67. */
  port?: number;
  /** Client port, 68. */
  clientPort?: number;
  /** PXE boot server port for proxy mode, 4011. */
  bootServerPort?: number;
  onEvent?: (event: DhcpEvent) => void;
  /**
   * How long the first request of a batch waits for the ones that follow it
   * before the batch is decided and committed as one lease transaction;
   * default 5 ms. 0 takes what one turn of the event loop read.
   */
  commitWindowMs?: number;
  /** Default 60. */
  offerHoldSeconds?: number;
  /** Default 600. */
  declineHoldSeconds?: number;
  /** Milliseconds since the epoch; Date.now by default. */
  now?: () => number;
  /** Where replies go instead of the sockets (the warm-up's, see DhcpServer.warmUp). */
  replyTo?: (bytes: Buffer, port: number, address: string, sent: (error: Error | null) => void) => void;
}

/** One protocol event; also written as one log line. */
export type DhcpEvent =
  /** TOO_LONG: a datagram over the 8 KiB a socket read keeps (never a DHCP message), dropped before decoding. */
  | { kind: 'malformed'; source: string; code: DhcpDecodeErrorCode | 'TOO_LONG'; reason: string }
  | {
      kind: 'reply';
      mac: string;
      type: string;
      result: 'offer' | 'ack' | 'nak';
      address?: string;
      destination: string;
      boot?: BootFileChoice;
      reason?: string;
      /** The slot the request came through (option 82), and the MAC seen there before, if another. */
      slot?: string;
      replacedInSlot?: string;
      note?: string;
      xid: number;
    }
  | { kind: 'update'; mac: string; type: string; result: 'release' | 'decline' | 'withdraw-offer'; address: string; reason: string }
  | { kind: 'ignore'; mac?: string; type?: string; source: string; reason: string }
  /** Full mode: a client took the offer of another DHCP server on the segment (see otherServerShown). */
  | { kind: 'other-server'; mac: string; server: string }
  | { kind: 'error'; mac?: string; type?: string; source: string; error: string };

export interface DhcpServerStats {
  received: number;
  /** Group commits: lease transactions, each deciding the requests of one event-loop turn. */
  batches: number;
  malformed: number;
  replies: number;
  updates: number;
  ignored: number;
  /** Of `ignored`: requests of clients without a profile under --dhcp-known-only. */
  unknownIgnored: number;
  /** Of `ignored`: new clients past --dhcp-new-clients-per-second. */
  rateLimited: number;
  /** Of `ignored`: clients another server on the database answers. */
  peerIgnored: number;
  errors: number;
}

const expirySweepMs = 60_000;

/**
 * Each socket's receive buffer: what queues while the server is busy for a
 * moment (a checkpoint, a garbage collection) instead of being dropped. The
 * kernel's default (208 KiB, about 150 requests as the kernel counts them)
 * is 40 ms of a storm at 4000 requests a second; 4 MiB is most of a second.
 */
const receiveBufferBytes = 4 * 1024 * 1024;

/** The warm-up's n-th client: a locally administered MAC. */
function warmUpMac(n: number): Buffer {
  return Buffer.from([0x02, 0x72, 0x62, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/**
 * The relays the warm-up's made-up clients come through: a host of the
 * server's own subnet (a relay may sit on the server's wire) and the first
 * host of each relay subnet, so that each scope's path is compiled too.
 */
function warmUpRelays(options: DhcpServerOptions): string[] {
  const local = new Subnet(options.serverAddress, options.prefixLength);
  const first = local.network + 1;
  const neighbour = numberToIpv4(numberToIpv4(first) === options.serverAddress ? first + 1 : first);
  return [neighbour, ...(options.relayScopes ?? []).map((scope) => numberToIpv4(scope.subnet.network + 1))];
}

/**
 * A request from a made-up client of the warm-up: as iPXE sends it for an
 * even-numbered MAC, as an operating system's client (no PXE options) for
 * an odd one; on the server's own wire for two MACs of four, through a
 * relay (relayAddress) for the other two. A rack sees all of these, and
 * each takes its own path through the decision and the encoder.
 */
function warmUpRequest(mac: Buffer, transactionId: number, options: DhcpPacket['options'], relayAddress: string): DhcpPacket {
  const last = mac.at(-1)!;
  const pxe = (last & 1) === 0;
  return clientPacket({
    hardwareAddress: mac,
    transactionId,
    ...((last & 2) === 0 ? {} : { relayAddress, hops: 1 }),
    options: pxe
      ? {
          ...options,
          vendorClass: 'PXEClient:Arch:00000:UNDI:002001',
          clientArch: [0],
          userClass: Buffer.from('iPXE'),
          parameterRequestList: [1, 3, 6, 12, 15, 43, 54, 60, 66, 67, 119, 175],
        }
      : { ...options, parameterRequestList: [1, 3, 6, 12, 15, 28, 42] },
  });
}

const defaultCommitWindowMs = 5;

/** Replies sent in one system call at most; the slice's log lines are written before the next slice goes. */
const sendSliceMax = 16;

/**
 * How fast replies leave a socket: at most `sendPerMs` a millisecond on
 * average, at most `sendBurstMax` at once; the rest wait, in order, for
 * the next turn of the timers, and replies carried out meanwhile queue
 * behind them. A batch decided after the server was held up (its first
 * second of requests, a slow fsync) carries out hundreds of replies at
 * once, and they often go to one receiver: a relay agent (a switch's CPU,
 * behind its control-plane policer) or a load generator's socket, and
 * sent in one go they overflow it (bench:dhcp's perfdhcp at 4000/s; the
 * figures are in docs/performance.md). 32 a millisecond is four times the
 * replies of a storm of 4000 exchanges a second.
 */
const sendPerMs = 32;
const sendBurstMax = 64;
/**
 * But no reply waits longer than this (milliseconds): past what the server
 * can decide (a storm beyond its CPU) its turns are long, replies would
 * queue without end and reach their clients after they gave up.
 */
const sendWaitMax = 50;

/** Datagrams read from a socket at a time: a batch larger than this reads the rest at its next wake-up or window. */
const readBatchMax = 512;

export class DhcpServer {
  readonly stats: DhcpServerStats = {
    received: 0,
    batches: 0,
    malformed: 0,
    replies: 0,
    updates: 0,
    ignored: 0,
    unknownIgnored: 0,
    rateLimited: 0,
    peerIgnored: 0,
    errors: 0,
  };
  private readonly context: DhcpContext;
  private readonly leases: LeaseStore;
  /** Where each pool's next search for a never-used address starts: the decisions' cursors, handed back to them (DhcpContext.allocationCursors). */
  private readonly allocationCursors = new Map<string, number>();
  private readonly port: number;
  private readonly now: () => number;
  /** Bound to 0.0.0.0: receives the broadcasts of clients that have no address yet. */
  private broadcastSocket: DeviceSocket | undefined;
  /**
   * Bound to serverAddress: receives unicast (renewals, relays) and sends
   * every reply. A broadcast sent from a 0.0.0.0 socket needs a route for
   * 255.255.255.255 (ENETUNREACH without a default route, or the default
   * route's interface, which may be the wrong one); from a socket bound to
   * an address, Linux sends it out of the interface that owns the address.
   */
  private addressSocket: DeviceSocket | undefined;
  /**
   * Proxy mode: bound to serverAddress on the boot server port (4011). Its
   * replies leave from it too: iPXE takes a ProxyDHCPACK only from port 4011.
   */
  private bootServerSocket: DeviceSocket | undefined;
  /**
   * Sockets not watched while a batch gathers: what arrives on them during
   * the commit window is read in one go when it ends (readBatch), so a
   * batch costs one wake-up, not one per request.
   */
  private readonly unwatched = new Set<DeviceSocket>();
  /** Each open socket, and whether it is the boot server port's (proxy mode). */
  private readonly sockets = new Map<DeviceSocket, boolean>();
  /** Whether a batch is gathering (its flush is scheduled). */
  private gathering = false;
  /** The replies carried out and not sent yet, by the socket they leave from (sendReplies). */
  private readonly outbox = new Map<DeviceSocket, Array<Outgoing & { sent: (error: Error | null) => void; queuedAt: number }>>();
  /** Whether sendReplies is due (at the end of this turn, or in a later one while replies wait). */
  private sendDue = false;
  /** Replies that may leave now (sendPerMs, sendBurstMax), as of sendCreditAt (performance.now()). */
  private sendCredit = sendBurstMax;
  private sendCreditAt = 0;
  /** The next turn's sendReplies, while replies wait beyond a turn's worth. */
  private sendTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The commit window of the batch being gathered. */
  private flushTimer: NodeJS.Timeout | undefined;
  /** Requests received in one turn of the event loop, decided and committed together. */
  private readonly commits: GroupCommit<Request, Outcome>;
  /** Full mode only: proxy mode gives no addresses, so it has no new clients to hold back. */
  private readonly newClients: TokenBucket | undefined;
  /** In proxy mode most traffic on the wire is the address server's business: its ignores are debug lines. */
  private readonly ignoredLevel: 'info' | 'debug';
  /** Full mode: the other DHCP server a request shows (otherServerShown); proxy mode expects one. */
  private readonly otherServerOf: (packet: DhcpPacket) => string | undefined;
  /** Requests ignored quietly (--dhcp-known-only, the new-client rate): summed up in one info line at most every 10 s. */
  private readonly quietIgnores: RateLimitedLog;
  /** Other DHCP servers seen, and when each was last warned about. */
  private readonly otherServersWarned = new Map<string, number>();
  /**
   * While lease commits fail (the database is down or cut off): since when,
   * how many requests went unanswered, and the latest reason. The first
   * failure is an error line, the rest are summed up every 10 s, and the
   * first commit that works again ends it with one line.
   */
  private commitOutage: { since: number; unanswered: number; reason: string } | undefined;
  private readonly outageSummary: RateLimitedLog;

  constructor(private readonly options: DhcpServerOptions) {
    this.quietIgnores = new RateLimitedLog((ignored) => options.log.info({ ignored }, 'DHCP requests ignored (summed up)'));
    this.outageSummary = new RateLimitedLog((unanswered, last) => {
      const count = Object.values(unanswered).reduce((sum, n) => sum + n, 0);
      if (count > 0 && this.commitOutage !== undefined) {
        options.log.warn({ unanswered: count, ...last }, `DHCP lease commits still failing: ${count} more requests unanswered; ${this.commitOutage.reason}`);
      }
    });
    validateOptions(options);
    // Proxy mode decides with an empty store: it gives no addresses.
    this.leases = options.leases ?? new MemoryLeaseStore();
    this.port = options.port ?? 67;
    this.now = options.now ?? Date.now;
    this.context = {
      allocationCursors: this.allocationCursors,
      mode: options.mode ?? 'full',
      serverAddress: options.serverAddress,
      prefixLength: options.prefixLength,
      pool: options.pool,
      leaseSeconds: options.leaseSeconds,
      firstLeaseSeconds: options.firstLeaseSeconds ?? defaultFirstLeaseSeconds,
      offerHoldSeconds: options.offerHoldSeconds ?? 60,
      declineHoldSeconds: options.declineHoldSeconds ?? 600,
      router: options.router,
      dns: options.dns,
      relayScopes: options.relayScopes ?? [],
      reservationFor: (mac, slot) => (slot === undefined ? options.reservationFor?.(mac) : options.reservationFor?.(mac, slot)),
      reservationOwner: (address) => options.reservationOwner?.(address),
      slotOf: (mac) => options.sightings?.slotOf(mac),
      bootFile: (facts) => options.bootFile(facts),
      knownOnly: options.knownOnly === true ? (mac, slot) => options.hasOwnProfile?.(mac, slot) === true : undefined,
      answersFor: options.answersFor,
      prefersAddress: options.prefersAddress,
      leases: this.leases,
      serverPort: this.port,
      clientPort: options.clientPort ?? 68,
    };
    const full = this.context.mode === 'full';
    this.newClients = full && options.newClientsPerSecond !== undefined ? new TokenBucket(options.newClientsPerSecond) : undefined;
    this.ignoredLevel = full ? 'info' : 'debug';
    this.otherServerOf = full ? (packet) => otherServerShown(packet, this.context) : () => undefined;
    const commitWindowMs = options.commitWindowMs ?? defaultCommitWindowMs;
    this.commits = new GroupCommit<Request, Outcome>(this.leases, {
      // A lease transaction costs the same system calls (file locks, WAL
      // writes, an fsync for ACKs) for one request as for twenty, and at a
      // few thousand requests a second one turn of the event loop reads
      // just one: the batch waits 5 ms for those that follow (at 1000/s,
      // about ten requests a transaction; a client waits seconds for a reply).
      schedule: (flush) => {
        this.gathering = true;
        const run = () => {
          this.flushTimer = undefined;
          try {
            this.readBatch();
            flush();
          } finally {
            // Whatever happened to the batch, the sockets are heard again.
            this.gathering = false;
            for (const socket of this.unwatched) socket.resume();
            this.unwatched.clear();
          }
        };
        if (commitWindowMs === 0) setImmediate(run);
        else this.flushTimer = setTimeout(run, commitWindowMs);
      },
      beginBatch: () => {
        this.stats.batches++;
        return this.now();
      },
      decide: (request, now) => this.decideOne(request, now),
      applied: ({ decision }) => {
        if (decision.kind === 'reply' && decision.cursor !== undefined) this.allocationCursors.set(decision.cursor.pool, decision.cursor.next);
      },
      // Proxy mode writes no leases, so nothing needs to be durable.
      mayBind: full ? (request) => mayBind(request.packet) : () => false,
      carryOut: (outcome) => this.carryOut(outcome),
      failed: (request, error, failure) => this.failed(request, error, failureMessages[failure], failure),
    });
  }

  /**
   * Runs the request path (decode, decide, commit, encode, the reply's log
   * line) for `clients` made-up clients, each a DISCOVER and a REQUEST,
   * against a scratch lease store and a log that goes nowhere, with no
   * socket, event or timeline. V8 compiles JavaScript as it runs it: a
   * server that has not run its path yet decides a request several times
   * slower, and a rack that powers on with its server meets that server
   * cold, its first second of requests the one that counts. The server's
   * own state (its store, its allocation cursors) is not touched.
   */
  static async warmUp(options: DhcpServerOptions, scratch: LeaseStore, clients: number): Promise<{ exchanges: number; ms: number }> {
    const started = performance.now();
    const replies: Buffer[] = [];
    // Every request ends in one event (a reply once sent, an ignore, an update, an error): the batch is done when each has.
    let outstanding = 0;
    let batchDone = (): void => undefined;
    const server = new DhcpServer({
      ...options,
      mode: 'full',
      leases: scratch,
      knownOnly: false,
      log: pino({ level: 'info' }, { write: () => undefined }),
      onEvent: (event) => {
        if (event.kind !== 'other-server' && --outstanding === 0) batchDone();
      },
      sightings: undefined,
      answersFor: undefined,
      prefersAddress: undefined,
      newClientsPerSecond: undefined,
      commitWindowMs: 0,
      replyTo: (bytes, _port, _address, sent) => {
        replies.push(bytes);
        process.nextTick(sent, null);
      },
    });
    const clientPort = options.clientPort ?? 68;
    const exchange = async (packets: DhcpPacket[]): Promise<DhcpPacket[]> => {
      replies.length = 0;
      outstanding = packets.length;
      // Replies come once their batch is committed (an ACK's after its fsync).
      const done = new Promise<void>((resolve) => (batchDone = resolve));
      // From where the kernel would say: the relay's server port, or the client's port with no address yet.
      for (const packet of packets) {
        const relayed = packet.relayAddress !== anyAddress;
        server.receive(encodePacket(packet), relayed ? packet.relayAddress : anyAddress, relayed ? (options.port ?? 67) : clientPort);
      }
      // A request that ended without its event would hold the start forever: a warm-up is never worth that.
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${outstanding} made-up requests still unanswered after 10 s`)), 10_000);
      });
      await Promise.race([done, late]).finally(() => clearTimeout(timer));
      return replies.map((reply) => decodePacket(reply));
    };
    const relays = warmUpRelays(options);
    const relayOf = (mac: Buffer) => relays[(mac.readUIntBE(3, 3) >> 2) % relays.length]!;
    let exchanges = 0;
    const perBatch = 16;
    try {
      for (let first = 0; first < clients; first += perBatch) {
        const macs = Array.from({ length: Math.min(perBatch, clients - first) }, (_, i) => warmUpMac(first + i));
        const offers = await exchange(macs.map((mac, i) => warmUpRequest(mac, i, { messageType: MessageType.discover }, relayOf(mac))));
        const requests = offers
          .filter((offer) => offer.options.messageType === MessageType.offer)
          .map((offer) =>
            warmUpRequest(
              offer.hardwareAddress,
              offer.transactionId,
              { messageType: MessageType.request, requestedAddress: offer.yourAddress, serverIdentifier: options.serverAddress },
              relayOf(offer.hardwareAddress),
            ),
          );
        if (requests.length === 0) break; // nothing to offer: no pool, or a pool all reserved
        const acks = await exchange(requests);
        exchanges += acks.filter((ack) => ack.options.messageType === MessageType.ack).length;
      }
    } finally {
      await server.close();
    }
    return { exchanges, ms: Math.round(performance.now() - started) };
  }

  async start(): Promise<void> {
    const { interfaceName, serverAddress } = this.options;
    const addresses = ipv4AddressesOf(interfaceName);
    if (addresses === undefined) throw new Error(`DHCP: interface ${interfaceName} does not exist`);
    if (!addresses.some((a) => a.address === serverAddress)) {
      throw new Error(`DHCP: interface ${interfaceName} does not have address ${serverAddress}`);
    }
    // Both sockets need SO_REUSEADDR to share the port; the kernel hands a
    // unicast datagram to the socket with the exact address and a broadcast
    // to the wildcard one, so nothing arrives twice.
    this.broadcastSocket = this.bind(anyAddress);
    try {
      this.addressSocket = this.bind(serverAddress);
      if (this.context.mode === 'proxy') this.bootServerSocket = this.bind(serverAddress, this.options.bootServerPort ?? bootServerPort);
    } catch (error) {
      await this.close();
      throw error;
    }
    this.sweepTimer = setInterval(() => this.sweep(), expirySweepMs);
    this.sweepTimer.unref();
    // Linux reports twice what it was asked for (the other half is its bookkeeping).
    const receiveBuffer = this.broadcastSocket.receiveBufferSize();
    if (receiveBuffer < receiveBufferBytes) {
      this.options.log.warn(
        { interface: interfaceName, receiveBuffer, wanted: receiveBufferBytes },
        `DHCP: the receive buffer is ${Math.round(receiveBuffer / 1024)} KiB, not the ${receiveBufferBytes / 1024 / 1024} MiB asked for (no CAP_NET_ADMIN at start, and net.core.rmem_max is lower): requests that come while the server is busy for a moment are dropped sooner; raise net.core.rmem_max`,
      );
    }
    this.options.log.info(
      this.context.mode === 'proxy'
        ? {
            interface: interfaceName,
            address: serverAddress,
            port: this.port,
            bootServerPort: this.options.bootServerPort ?? bootServerPort,
            mode: 'proxy',
            receiveBuffer,
          }
        : { interface: interfaceName, address: serverAddress, port: this.port, pool: this.options.pool, receiveBuffer },
      'DHCP server listening',
    );
  }

  async close(): Promise<void> {
    this.quietIgnores.stop();
    this.outageSummary.stop();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // Requests not decided yet are dropped unanswered: the lease store may be
    // closed next. Committed batches get their replies once synced.
    await this.commits.close();
    // What the committed batches answered goes now, unpaced.
    clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    this.sendWaiting(Number.POSITIVE_INFINITY);
    for (const socket of this.sockets.keys()) socket.close();
    this.broadcastSocket = this.addressSocket = this.bootServerSocket = undefined;
    this.unwatched.clear();
    this.sockets.clear();
  }

  /** A socket on interfaceName only, with SO_REUSEADDR and SO_BROADCAST. */
  private bind(address: string, port = this.port): DeviceSocket {
    const device = this.options.interfaceName;
    const onBootServerPort = port !== this.port;
    try {
      const socket: DeviceSocket = new DeviceSocket({ device, address, port, receiveBufferBytes }, () => {
        this.readFrom(socket, onBootServerPort);
        // A request read starts a batch: the rest of its window is read when the window ends.
        if (this.gathering) this.unwatched.add(socket);
        else socket.resume();
      });
      this.sockets.set(socket, onBootServerPort);
      return socket;
    } catch (error) {
      throw new Error(`DHCP: cannot bind ${address}:${port}: ${error instanceof Error ? error.message : String(error)}${heldBy(error, 'udp', port)}`);
    }
  }

  /** The batch's window ended: what queued on every socket meanwhile joins it. */
  private readBatch(): void {
    for (const [socket, onBootServerPort] of this.sockets) this.readFrom(socket, onBootServerPort);
  }

  /** Hands each datagram queued on the socket to receive(). */
  private readFrom(socket: DeviceSocket, onBootServerPort: boolean): void {
    let datagrams;
    try {
      datagrams = socket.read(readBatchMax);
    } catch (error) {
      this.stats.errors++;
      this.options.log.error({ err: error }, 'DHCP socket error');
      return;
    }
    for (const { message, address, port } of datagrams) this.receive(message, address, port, onBootServerPort);
  }

  /** Sends the replies waiting, as many as may leave now (sendPerMs, sendBurstMax); the rest in the next turns. */
  private readonly sendReplies = (): void => {
    this.sendDue = false;
    this.sendTimer = undefined;
    const now = performance.now();
    this.sendCredit = Math.min(sendBurstMax, this.sendCredit + (now - this.sendCreditAt) * sendPerMs);
    this.sendCreditAt = now;
    const sent = this.sendWaiting(Math.max(1, Math.floor(this.sendCredit)), now - sendWaitMax);
    // Overdue replies may take more than the credit; they are not held against the replies after them.
    this.sendCredit = Math.max(0, this.sendCredit - sent);
    if (this.outbox.size > 0) {
      this.sendDue = true;
      this.sendTimer = setTimeout(this.sendReplies, 0);
    }
  };

  /**
   * Sends up to `max` of the replies waiting, the oldest socket's first, a
   * system call per slice; each is logged once the kernel has it, or its
   * failure. How many were sent.
   */
  private sendWaiting(max: number, overdue = Number.NEGATIVE_INFINITY): number {
    let sent = 0;
    for (const [socket, replies] of this.outbox) {
      let count = Math.min(replies.length, Math.max(0, max - sent));
      while (count < replies.length && replies[count]!.queuedAt <= overdue) count++;
      if (count === 0) continue;
      sent += count;
      for (let first = 0; first < count; first += sendSliceMax) {
        const slice = replies.slice(first, Math.min(count, first + sendSliceMax));
        const results = socket.send(slice);
        for (let i = 0; i < slice.length; i++) slice[i]!.sent(results[i] ?? null);
      }
      if (count < replies.length) this.outbox.set(socket, replies.slice(count));
      else this.outbox.delete(socket);
    }
    return sent;
  }

  private sweep(): void {
    for (const lease of this.leases.expire(this.now())) {
      this.options.log.debug({ mac: lease.mac, address: lease.address, state: lease.state }, 'DHCP lease hold ended');
    }
  }

  private emit(event: DhcpEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch (error) {
      this.options.log.error({ err: error }, 'DHCP onEvent handler threw');
    }
  }

  /** message is null for a datagram longer than a socket read keeps, which was dropped. */
  private receive(message: Buffer | null, remoteAddress: string, remotePort: number, onBootServerPort = false): void {
    this.stats.received++;
    const source = `${remoteAddress}:${remotePort}`;
    if (message === null) {
      this.dropMalformed(source, 'TOO_LONG', 'the datagram is longer than the 8 KiB a read keeps (a DHCP message over Ethernet is at most 1500 bytes)');
      return;
    }
    let packet: DhcpPacket;
    try {
      packet = decodePacket(message);
    } catch (error) {
      if (!(error instanceof DhcpDecodeError)) {
        // A codec bug, not a client's fault; keep serving.
        this.stats.errors++;
        this.options.log.error({ err: error, source }, 'DHCP decoder failed');
        this.emit({ kind: 'error', source, error: error instanceof Error ? error.message : String(error) });
        return;
      }
      this.dropMalformed(source, error.code, error.message, message.length);
      return;
    }
    const other = this.otherServerOf(packet);
    if (other !== undefined) this.noteOtherServer(other, formatMac(packet.hardwareAddress));
    const request: Request = {
      packet,
      source,
      sourceAddress: remoteAddress,
      mac: formatMac(packet.hardwareAddress),
      type: messageTypeName(packet.options.messageType),
      bootServerSource: onBootServerPort ? { address: remoteAddress, port: remotePort } : undefined,
    };
    this.commits.add(request);
  }

  /** A packet that cannot be read: counted, one debug line and an event; the server goes on. */
  private dropMalformed(source: string, code: DhcpDecodeErrorCode | 'TOO_LONG', reason: string, bytes?: number): void {
    this.stats.malformed++;
    this.options.log.debug({ source, code, reason, ...(bytes === undefined ? {} : { bytes }) }, 'malformed DHCP packet dropped');
    this.emit({ kind: 'malformed', source, code, reason });
  }

  /** Another DHCP server answers here: a warning per server at most every 10 minutes, an event each time. */
  private noteOtherServer(server: string, mac: string): void {
    const now = Date.now();
    const warned = this.otherServersWarned.get(server);
    if (warned === undefined || now - warned >= 600_000) {
      this.otherServersWarned.set(server, now);
      this.options.log.warn(
        { server, mac },
        `another DHCP server answers on this network: ${mac} took the offer of ${server}; clients may get their addresses and boot files from it. Stop it, or run rackboot with --dhcp proxy beside it`,
      );
    }
    this.emit({ kind: 'other-server', mac, server });
  }

  private failed(request: Request, error: unknown, message: string, failure: CommitFailure): void {
    const { mac, type, source } = request;
    const reason = error instanceof Error ? error.message : String(error);
    this.stats.errors++;
    this.emit({ kind: 'error', mac, type, source, error: reason });
    if (failure !== 'commit') {
      this.options.log.error({ err: error, mac, type, source }, message);
      return;
    }
    // One error line when commits start failing; then each request a debug line and a summary every 10 s.
    if (this.commitOutage === undefined) {
      this.commitOutage = { since: Date.now(), unanswered: 1, reason };
      this.options.log.error({ err: error, mac, type, source }, `${message}; no request that needs a lease is answered until commits work again`);
      return;
    }
    this.commitOutage.unanswered++;
    this.commitOutage.reason = reason;
    this.options.log.debug({ mac, type, source, reason }, message);
    this.outageSummary.note('unanswered', { mac, type });
  }

  /** A lease was committed: if commits were failing, they work again. */
  private committed(): void {
    const outage = this.commitOutage;
    if (outage === undefined) return;
    this.commitOutage = undefined;
    this.outageSummary.stop();
    const seconds = Math.round((Date.now() - outage.since) / 100) / 10;
    this.options.log.warn(
      { unanswered: outage.unanswered, seconds },
      `DHCP lease commits work again: ${outage.unanswered} requests went unanswered over ${seconds} s (last reason: ${outage.reason})`,
    );
  }

  /** Decides one request (inside the batch's transaction; GroupCommit applies its lease changes). */
  private decideOne(request: Request, now: number): Outcome {
    const { packet, bootServerSource } = request;
    const arrival: Arrival =
      bootServerSource !== undefined ? { port: 'boot-server', source: bootServerSource } : { port: 'dhcp', source: request.sourceAddress };
    const decision: DhcpDecision = answer(packet, this.context, now, arrival);
    if (decision.kind === 'ignore') return { request, decision };
    if (this.overNewClientRate(request, decision, now)) {
      return { request, decision: { kind: 'ignore', reason: 'new clients over --dhcp-new-clients-per-second', facts: decision.facts, quiet: 'rate' } };
    }
    // Encoded before the changes are applied: a reply that cannot be encoded changes no lease.
    const bytes = decision.kind === 'reply' ? encodePacket(decision.packet) : undefined;
    return { request, decision, bytes };
  }

  /**
   * Whether this offer or ACK goes to a new client (one that holds no
   * lease and has no profile of its own) past the rate of new clients.
   * Decided before the lease changes are applied, so the client's lease
   * is the one it held before this request.
   */
  private overNewClientRate(request: Request, decision: DhcpDecision, now: number): boolean {
    if (this.newClients === undefined || decision.kind !== 'reply' || decision.result === 'nak') return false;
    const type = request.packet.options.messageType;
    // INFORM is answered without giving an address.
    if (type !== MessageType.discover && type !== MessageType.request) return false;
    const own = this.leases.byMac(request.mac);
    if (own !== undefined && holdsAddress(own, now) && own.state !== 'declined') return false;
    if (this.options.hasOwnProfile?.(request.mac, decision.slot ?? this.context.slotOf?.(request.mac)) === true) return false;
    return !this.newClients.take(now);
  }

  /** After the commit: one log line per request, and the reply. */
  private carryOut({ request, decision, bytes }: Outcome): void {
    const { packet, source, mac, type, bootServerSource } = request;
    const { log } = this.options;
    // An ACK binds a lease, so its batch was committed for certain (an offer may have changed nothing).
    if (decision.kind === 'reply' && decision.result === 'ack') this.committed();
    switch (decision.kind) {
      case 'ignore':
        this.stats.ignored++;
        if (decision.quiet !== undefined) {
          if (decision.quiet === 'unknown') this.stats.unknownIgnored++;
          else if (decision.quiet === 'peer') this.stats.peerIgnored++;
          else this.stats.rateLimited++;
          this.quietIgnores.note(decision.reason);
          log.debug({ mac, type, result: 'ignore', reason: decision.reason, source }, `${type} ignored`);
          this.emit({ kind: 'ignore', mac, type, source, reason: decision.reason });
          return;
        }
        log[this.ignoredLevel]({ mac, type, result: 'ignore', reason: decision.reason, source }, `${type} ignored`);
        this.emit({ kind: 'ignore', mac, type, source, reason: decision.reason });
        return;
      case 'update':
        this.stats.updates++;
        log.info({ mac, type, result: decision.result, address: decision.address, reason: decision.reason }, `${type} ${decision.result}`);
        this.emit({ kind: 'update', mac, type, result: decision.result, address: decision.address, reason: decision.reason });
        return;
      case 'reply': {
        // Which machine sits in the slot (option 82), recorded once the lease is committed.
        const replaced = decision.slot === undefined ? undefined : this.options.sightings?.record(mac, decision.slot);
        const { address, port } = decision.destination;
        const destination = `${address}:${port}`;
        this.stats.replies++;
        const fields = {
          mac,
          type,
          result: decision.result,
          address: decision.address,
          destination,
          xid: packet.transactionId,
          ...(decision.boot && decision.boot.kind !== 'none' ? { boot: decision.boot } : {}),
          ...(decision.reason === undefined ? {} : { reason: decision.reason }),
          ...(decision.slot === undefined ? {} : { slot: formatSlot(decision.slot) }),
          ...(replaced === undefined ? {} : { replacedInSlot: replaced }),
          ...(decision.note === undefined ? {} : { note: decision.note }),
          arch: decision.facts.arch,
        };
        // Logged once the kernel has the datagram, so a logged reply is one
        // that went out: a line read from the log before a kill -9 is an
        // answer the client can have.
        const sent = (error: Error | null) => {
          if (error) {
            this.stats.errors++;
            log.warn({ ...fields, err: error }, `${type} ${decision.result} not sent`);
            this.emit({ kind: 'error', mac, type, source, error: `send to ${destination}: ${error.message}` });
            return;
          }
          log.info(fields, `${type} ${decision.result}`);
          this.emit({ kind: 'reply', ...fields });
        };
        const socket = bootServerSource !== undefined ? this.bootServerSocket : this.addressSocket;
        if (this.options.replyTo !== undefined) this.options.replyTo(bytes!, port, address, sent);
        else if (socket === undefined) sent(new Error('the server is closed'));
        else {
          // Sent with the rest of this turn's replies (GroupCommit carries out a batch's outcomes in one go), behind any still waiting.
          const replies = this.outbox.get(socket);
          const reply = { bytes: bytes!, port, address, sent, queuedAt: performance.now() };
          if (replies === undefined) this.outbox.set(socket, [reply]);
          else replies.push(reply);
          if (!this.sendDue) {
            this.sendDue = true;
            queueMicrotask(this.sendReplies);
          }
        }
        return;
      }
    }
  }
}

/** A decoded request waiting for its batch. */
interface Request {
  packet: DhcpPacket;
  source: string;
  /** The datagram's IP source address. */
  sourceAddress: string;
  mac: string;
  type: string;
  /** Set for a packet that came in on the boot server port (proxy mode). */
  bootServerSource: { address: string; port: number } | undefined;
}

interface Outcome {
  request: Request;
  decision: DhcpDecision;
  /** The encoded reply, when the decision is one. */
  bytes?: Buffer | undefined;
}

/** The error line of a request that gets no reply, by why. */
const failureMessages: Record<CommitFailure, string> = {
  // A bug, a failing reservation/boot lookup or a lease store refusing a
  // change: this request's changes are undone, the batch goes on.
  decide: 'DHCP request failed',
  commit: 'DHCP lease commit failed, no reply sent',
};

/**
 * Whether answering the request may bind a lease, so its batch must commit
 * durably. Only a DHCPREQUEST is ACKed with a lease (RFC 2131 section
 * 4.3.2); anything but a DISCOVER counts, to err on the durable side. A
 * wrong answer here cannot lose an ACK: the store refuses a bound lease in
 * a transaction that is not durable.
 */
function mayBind(packet: DhcpPacket): boolean {
  return packet.options.messageType !== MessageType.discover;
}

function validateOptions(options: DhcpServerOptions): void {
  const fail = (message: string): never => {
    throw new Error(`DHCP configuration: ${message}`);
  };
  if (!isIpv4(options.serverAddress)) fail(`serverAddress '${options.serverAddress}' is not an IPv4 address`);
  if ((options.mode ?? 'full') === 'full' && (options.leases === undefined || options.reservationFor === undefined || options.reservationOwner === undefined)) {
    fail('full mode needs leases, reservationFor and reservationOwner');
  }
  if (!Number.isInteger(options.prefixLength) || options.prefixLength < 1 || options.prefixLength > 30) {
    fail(`prefixLength ${options.prefixLength} is not in 1-30`);
  }
  const window = options.commitWindowMs;
  if (window !== undefined && !(Number.isInteger(window) && window >= 0 && window <= 100)) fail(`commitWindowMs ${window} is not a whole number in 0-100`);
  const subnet = new Subnet(options.serverAddress, options.prefixLength);
  if (!subnet.isHostAddress(options.serverAddress)) fail(`serverAddress ${options.serverAddress} is not a host address of ${subnet}`);
  if (options.pool !== undefined) {
    const { start, end } = options.pool;
    for (const address of [start, end]) {
      if (!subnet.isHostAddress(address)) fail(`pool address ${address} is not a host address of ${subnet}`);
    }
    if (ipv4ToNumber(start) > ipv4ToNumber(end)) fail(`pool start ${start} is after its end ${end}`);
  }
  if (options.router !== undefined && !subnet.isHostAddress(options.router)) fail(`router ${options.router} is not a host address of ${subnet}`);
  for (const dns of options.dns) if (!isIpv4(dns)) fail(`DNS server '${dns}' is not an IPv4 address`);
  if (!Number.isInteger(options.leaseSeconds) || options.leaseSeconds < 60 || options.leaseSeconds > 0xffffffff) {
    fail(`leaseSeconds ${options.leaseSeconds} is not an integer of at least 60`);
  }
  if (options.firstLeaseSeconds !== undefined && (!Number.isInteger(options.firstLeaseSeconds) || options.firstLeaseSeconds < 60)) {
    fail(`firstLeaseSeconds ${options.firstLeaseSeconds} is not an integer of at least 60`);
  }
  if (options.newClientsPerSecond !== undefined && !(options.newClientsPerSecond > 0 && Number.isFinite(options.newClientsPerSecond))) {
    fail(`newClientsPerSecond ${options.newClientsPerSecond} is not a positive number`);
  }
  if (options.knownOnly === true && options.hasOwnProfile === undefined) fail('knownOnly needs hasOwnProfile');
}
