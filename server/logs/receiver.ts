/**
 * The syslog receiver: UDP datagrams (RFC 5426, and netconsole's plain
 * lines) on the served address, each parsed (syslog.ts) and attributed to
 * a host by its sender's address (attribution.ts). A stranger's lines are
 * dropped and counted, and the reason logged once a minute per sender; so are lines past a sender's rate, so one noisy or
 * hostile sender cannot fill the store or starve the others. A malformed
 * datagram is counted and logged (rate-limited by the caller's logger), and
 * never stops the receiver.
 */

import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import type { Logger } from 'pino';
import type { LogSource } from './attribution.js';
import { parseSyslog, splitTcpFrames, type SyslogMessage } from './syslog.js';

export interface LogReceiverOptions {
  address: string;
  port: number;
  /** Whose line a datagram from `address` is; cached per address for `attributionCacheMs`. */
  attribute(address: string): Promise<LogSource>;
  /** An attributed line. */
  onLine(mac: string, message: SyslogMessage, address: string): void;
  log: Logger;
  /**
   * Lines a second each sender may send, and the burst above it (default 200
   * and 5000: a Debian dom0's first minute, its kernel's buffer, Xen's log
   * and two guests' consoles, fits in the burst).
   */
  perSenderRate?: { perSecond: number; burst: number };
  attributionCacheMs?: number;
  /** TCP (RFC 6587): connections at once from one sender, and in all (default 4 and 256). */
  tcpConnections?: { perSender: number; total: number };
  /** A TCP connection that sends nothing for this long is closed (default 10 min). */
  tcpIdleMs?: number;
  now?: () => number;
}

export interface LogReceiverCounts {
  received: number;
  attributed: number;
  /** Dropped: the sender is no host of rackboot's. */
  strangers: number;
  /** Dropped: the sender went past its rate. */
  overRate: number;
  /** Dropped: not syslog rackboot can read. */
  malformed: number;
  /** TCP connections closed at once: a stranger's, or past the per-sender or total cap. */
  tcpRefused: number;
}

interface Sender {
  tokens: number;
  refilledAt: number;
  source?: LogSource;
  attributedAt: number;
  pending?: Promise<LogSource>;
  /** When a drop of this sender's lines as a stranger's was last logged. */
  strangerLoggedAt?: number;
}

/** A stranger's drops are logged, with the reason, at most this often per sender. */
const strangerLogEveryMs = 60_000;

const defaultRate = { perSecond: 200, burst: 5000 };

/** Senders remembered at most (their rate and attribution); the oldest are forgotten first. */
const maxSenders = 4096;

export class LogReceiver {
  readonly counts: LogReceiverCounts = { received: 0, attributed: 0, strangers: 0, overRate: 0, malformed: 0, tcpRefused: 0 };
  private socket: Socket | undefined;
  private tcp: Server | undefined;
  /** Open TCP connections, by sender address. */
  private readonly connections = new Map<string, Set<TcpSocket>>();
  /** Open TCP connections in all (the sum of the sets above). */
  private tcpOpen = 0;
  private readonly senders = new Map<string, Sender>();
  private readonly now: () => number;

  constructor(private readonly options: LogReceiverOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Binds the socket; rejects, naming the address and port, when it cannot. */
  async start(): Promise<void> {
    const socket = createSocket({ type: 'udp4', reuseAddr: false });
    socket.on('message', (bytes, remote) => void this.receive(bytes, remote.address));
    try {
      // once() rejects with the socket's error (EADDRINUSE, EACCES) when it cannot bind.
      const bound = once(socket, 'listening');
      socket.bind(this.options.port, this.options.address);
      await bound;
    } catch (error) {
      socket.close();
      throw new Error(`syslog: cannot listen on UDP ${this.options.address}:${this.options.port}: ${(error as Error).message}`);
    }
    socket.on('error', (error) => this.options.log.error({ err: error }, 'syslog: socket error'));
    this.socket = socket;
  }

  /**
   * Listens for TCP syslog (RFC 6587, octet-counted or LF-framed) on the
   * served address, on `port` (default: the UDP socket's). A sender is
   * judged when it connects: a stranger's connection is closed at once, so
   * a stranger cannot hold sockets; each frame then goes the way of a
   * datagram (rate, attribution, parse). Rejects, naming the address and
   * port, when it cannot listen.
   */
  async startTcp(port = this.port ?? this.options.port): Promise<void> {
    const server = createServer((connection) => void this.accept(connection));
    try {
      const listening = once(server, 'listening');
      server.listen({ port, host: this.options.address, exclusive: true });
      await listening;
    } catch (error) {
      server.close();
      throw new Error(`syslog: cannot listen on TCP ${this.options.address}:${port}: ${(error as Error).message}`);
    }
    server.on('error', (error) => this.options.log.error({ err: error }, 'syslog: TCP listener error'));
    this.tcp = server;
  }

  get port(): number | undefined {
    return this.socket?.address().port;
  }

  get tcpPort(): number | undefined {
    const address = this.tcp?.address();
    return address !== null && typeof address === 'object' ? address.port : undefined;
  }

  close(): Promise<void> {
    const socket = this.socket;
    const tcp = this.tcp;
    this.socket = undefined;
    this.tcp = undefined;
    for (const open of this.connections.values()) for (const connection of open) connection.destroy();
    this.connections.clear();
    return Promise.all([
      socket === undefined ? undefined : new Promise<void>((resolve) => socket.close(() => resolve())),
      tcp === undefined ? undefined : new Promise<void>((resolve) => tcp.close(() => resolve())),
    ]).then(() => undefined);
  }

  private async accept(connection: TcpSocket): Promise<void> {
    const address = connection.remoteAddress?.replace(/^::ffff:/, '');
    connection.on('error', () => undefined); // a reset by the sender is its own business
    if (address === undefined) {
      connection.destroy();
      return;
    }
    const limits = this.options.tcpConnections ?? { perSender: 4, total: 256 };
    const open = this.connections.get(address) ?? new Set<TcpSocket>();
    if (open.size >= limits.perSender || this.tcpOpen >= limits.total) {
      this.counts.tcpRefused += 1;
      connection.destroy();
      return;
    }
    open.add(connection);
    this.tcpOpen += 1;
    this.connections.set(address, open);
    connection.once('close', () => {
      this.tcpOpen -= 1;
      open.delete(connection);
      if (open.size === 0 && this.connections.get(address) === open) this.connections.delete(address);
    });
    connection.pause();
    const sender = this.sender(address);
    const source = await this.attribution(sender, address, this.now());
    if (source.kind === 'stranger') {
      this.counts.tcpRefused += 1;
      this.logStranger(sender, address, source.reason, this.now());
      connection.destroy();
      return;
    }
    connection.setTimeout(this.options.tcpIdleMs ?? 600_000, () => connection.destroy());
    let pending = Buffer.alloc(0);
    connection.on('data', (chunk: Buffer) => {
      const framed = splitTcpFrames(pending.length === 0 ? chunk : Buffer.concat([pending, chunk]));
      for (const frame of framed.frames) void this.receive(Buffer.from(frame), address);
      if (framed.problem !== undefined) {
        this.counts.malformed += 1;
        this.options.log.info({ event: 'syslog', remote: address, problem: framed.problem }, 'syslog: TCP stream cannot be framed; connection closed');
        connection.destroy();
        return;
      }
      // Copied, so a partial frame does not keep the whole chunk alive.
      pending = Buffer.from(framed.rest);
    });
    connection.resume();
  }

  private sender(address: string): Sender {
    let sender = this.senders.get(address);
    if (sender === undefined) {
      const burst = this.options.perSenderRate?.burst ?? defaultRate.burst;
      sender = { tokens: burst, refilledAt: this.now(), attributedAt: 0 };
      this.senders.set(address, sender);
      if (this.senders.size > maxSenders) this.senders.delete(this.senders.keys().next().value!);
    }
    return sender;
  }

  private async receive(bytes: Buffer, address: string): Promise<void> {
    this.counts.received += 1;
    const sender = this.sender(address);
    const { perSecond, burst } = this.options.perSenderRate ?? defaultRate;
    const now = this.now();
    sender.tokens = Math.min(burst, sender.tokens + ((now - sender.refilledAt) / 1000) * perSecond);
    sender.refilledAt = now;
    if (sender.tokens < 1) {
      this.counts.overRate += 1;
      return;
    }
    sender.tokens -= 1;
    const source = await this.attribution(sender, address, now);
    if (source.kind === 'stranger') {
      this.counts.strangers += 1;
      this.logStranger(sender, address, source.reason, now);
      return;
    }
    const message = parseSyslog(bytes, new Date(now));
    if (message.kind === 'problem') {
      this.counts.malformed += 1;
      this.options.log.debug({ event: 'syslog', mac: source.mac, remote: address, problem: message.problem }, 'syslog: unreadable datagram dropped');
      return;
    }
    this.counts.attributed += 1;
    this.options.onLine(source.mac, message, address);
  }

  private logStranger(sender: Sender, address: string, reason: string, now: number): void {
    if (sender.strangerLoggedAt !== undefined && now - sender.strangerLoggedAt < strangerLogEveryMs) return;
    sender.strangerLoggedAt = now;
    this.options.log.info({ event: 'syslog', remote: address, reason }, "syslog: a stranger's lines dropped (said once a minute per sender)");
  }

  /** The sender's attribution, asked again once it is older than the cache time; one question at a time per sender. */
  private async attribution(sender: Sender, address: string, now: number): Promise<LogSource> {
    if (sender.source !== undefined && now - sender.attributedAt < (this.options.attributionCacheMs ?? 1000)) return sender.source;
    sender.pending ??= this.options
      .attribute(address)
      .catch((error: unknown): LogSource => ({ kind: 'stranger', reason: `cannot tell: ${error instanceof Error ? error.message : String(error)}` }))
      .then((source) => {
        sender.source = source;
        sender.attributedAt = this.now();
        sender.pending = undefined;
        return source;
      });
    return sender.pending;
  }
}
