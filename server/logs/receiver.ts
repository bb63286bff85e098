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
import type { Logger } from 'pino';
import type { LogSource } from './attribution.js';
import { parseSyslog, type SyslogMessage } from './syslog.js';

export interface LogReceiverOptions {
  address: string;
  port: number;
  /** Whose line a datagram from `address` is; cached per address for `attributionCacheMs`. */
  attribute(address: string): Promise<LogSource>;
  /** An attributed line. */
  onLine(mac: string, message: SyslogMessage, address: string): void;
  log: Logger;
  /** Lines a second each sender may send, and the burst above it (default 200 and 2000). */
  perSenderRate?: { perSecond: number; burst: number };
  attributionCacheMs?: number;
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

/** Senders remembered at most (their rate and attribution); the oldest are forgotten first. */
const maxSenders = 4096;

export class LogReceiver {
  readonly counts: LogReceiverCounts = { received: 0, attributed: 0, strangers: 0, overRate: 0, malformed: 0 };
  private socket: Socket | undefined;
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

  get port(): number | undefined {
    return this.socket?.address().port;
  }

  close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }

  private sender(address: string): Sender {
    let sender = this.senders.get(address);
    if (sender === undefined) {
      const burst = this.options.perSenderRate?.burst ?? 2000;
      sender = { tokens: burst, refilledAt: this.now(), attributedAt: 0 };
      this.senders.set(address, sender);
      if (this.senders.size > maxSenders) this.senders.delete(this.senders.keys().next().value!);
    }
    return sender;
  }

  private async receive(bytes: Buffer, address: string): Promise<void> {
    this.counts.received += 1;
    const sender = this.sender(address);
    const { perSecond, burst } = this.options.perSenderRate ?? { perSecond: 200, burst: 2000 };
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
      if (sender.strangerLoggedAt === undefined || now - sender.strangerLoggedAt >= strangerLogEveryMs) {
        sender.strangerLoggedAt = now;
        this.options.log.info(
          { event: 'syslog', remote: address, reason: source.reason },
          "syslog: a stranger's lines dropped (said once a minute per sender)",
        );
      }
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
