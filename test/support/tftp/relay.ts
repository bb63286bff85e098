import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { seededRandom } from '../random.js';

/**
 * A lossy, slow link made of UDP sockets, for a kernel without the netem
 * qdisc: clients send to the relay's port as if it were the server's, and
 * every datagram, each way, is dropped with probability `lossRate` or else
 * delivered `delayMs` later (in order: equal delays fire in order).
 *
 * TFTP moves to a new server port per transfer (the server's TID), so the
 * relay follows it: each client address:port gets its own upstream socket
 * towards the server, and each server port that answers it gets its own
 * front socket towards the client. The client sees the relay change ports
 * exactly as the server did, and the server sees one steady port per client.
 */

export interface RelayOptions {
  /** Where the real server listens (its request port). */
  serverAddress: string;
  serverPort: number;
  /** Address the relay listens on for clients. */
  listenAddress: string;
  /** Port for clients' requests; default 0, picked freely (69 stands in for a TFTP server). */
  listenPort?: number;
  /** Address the relay's upstream sockets bind; default listenAddress. */
  upstreamAddress?: string;
  lossRate: number;
  delayMs: number;
  /** Seed for the loss pattern, so a failing run can be repeated. */
  seed?: number;
  /**
   * Besides the random losses, drop the n-th datagram (from 1) that each
   * server transfer port sends: every transfer of more than n blocks then
   * meets a loss, whatever the random pattern gives it.
   */
  alsoDropNth?: number;
}

export interface RelayCounters {
  forwarded: number;
  dropped: number;
  /** Server ports followed (one per transfer, plus the request port). */
  serverPortsFollowed: number;
}

interface Session {
  client: RemoteInfo;
  upstream: Socket;
  /** Front socket per server port that answered this client. */
  fronts: Map<number, Socket>;
  /** Datagrams each server port sent this client. */
  sent: Map<number, number>;
}

export class UdpRelay {
  readonly counters: RelayCounters = { forwarded: 0, dropped: 0, serverPortsFollowed: 0 };
  private readonly sessions = new Map<string, Session>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  private closed = false;

  private constructor(
    private readonly options: RelayOptions,
    private readonly listener: Socket,
  ) {
    this.random = seededRandom(options.seed ?? 0x7f7f7f7f);
    listener.on('message', (message, remote) => this.fromClient(message, remote, this.options.serverPort));
  }

  static async start(options: RelayOptions): Promise<UdpRelay> {
    const listener = createSocket('udp4');
    listener.bind(options.listenPort ?? 0, options.listenAddress);
    await once(listener, 'listening');
    return new UdpRelay(options, listener);
  }

  /** The port clients send their requests to. */
  get port(): number {
    return this.listener.address().port;
  }

  get address(): string {
    return this.options.listenAddress;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.listener.close();
    for (const session of this.sessions.values()) {
      session.upstream.close();
      for (const front of session.fronts.values()) front.close();
    }
    this.sessions.clear();
  }

  /** A datagram from a client, arriving on the front socket that stands for `serverPort`. */
  private fromClient(message: Buffer, client: RemoteInfo, serverPort: number): void {
    const session = this.session(client);
    this.carry(message, session.upstream, serverPort, this.options.serverAddress);
  }

  private session(client: RemoteInfo): Session {
    const key = `${client.address}:${client.port}`;
    let session = this.sessions.get(key);
    if (session !== undefined) return session;
    const upstream = createSocket('udp4');
    // Sends queue until the bind completes.
    upstream.bind(0, this.options.upstreamAddress ?? this.options.listenAddress);
    upstream.on('error', () => undefined);
    const created: Session = { client, upstream, fronts: new Map(), sent: new Map() };
    upstream.on('message', (message, remote) => this.fromServer(message, remote, created));
    this.sessions.set(key, created);
    return created;
  }

  /** A datagram from the server to a client, sent on from the front socket for its source port. */
  private fromServer(message: Buffer, remote: RemoteInfo, session: Session): void {
    let front = remote.port === this.options.serverPort ? this.listener : session.fronts.get(remote.port);
    if (front === undefined) {
      const created = createSocket('udp4');
      created.bind(0, this.options.listenAddress);
      created.on('error', () => undefined);
      const serverPort = remote.port;
      created.on('message', (reply, client) => this.fromClient(reply, client, serverPort));
      session.fronts.set(remote.port, created);
      this.counters.serverPortsFollowed += 1;
      front = created;
    }
    const sent = (session.sent.get(remote.port) ?? 0) + 1;
    session.sent.set(remote.port, sent);
    this.carry(message, front, session.client.port, session.client.address, remote.port !== this.options.serverPort && sent === this.options.alsoDropNth);
  }

  private carry(message: Buffer, via: Socket, port: number, address: string, drop = false): void {
    if (this.closed) return;
    if (this.random() < this.options.lossRate || drop) {
      this.counters.dropped += 1;
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return;
      this.counters.forwarded += 1;
      via.send(message, port, address, () => undefined);
    }, this.options.delayMs);
    this.timers.add(timer);
  }
}
