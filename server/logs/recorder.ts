/**
 * The flight recorder: hosts' log lines into the log store, each with the
 * boot it belongs to. A boot begins when the host fetches its boot script
 * (startBoot); lines are gathered and written in batches, a few times a
 * second, so a chatty boot costs one transaction per batch. A write that
 * fails is logged with how many lines were lost, never thrown at the
 * receiver; old lines go by the byte budget and the retention time.
 */

import type { Logger } from 'pino';
import { redactTokens } from './redact.js';
import type { SyslogMessage } from './syslog.js';
import type { HostLogStore, LogLineSource, NewLogLine } from './store.js';

export interface RecorderOptions {
  /** How often gathered lines are written (default 250 ms). */
  flushMs?: number;
  /** Lines held at most before the oldest are dropped (the store is slower than the senders; default 50 000). */
  maxPending?: number;
  /** Byte budget of each host's lines, and how long lines are kept. */
  retention: { maxBytesPerHost: number; keepMs: number };
  /** How often old lines are pruned (default 10 min). */
  pruneEveryMs?: number;
  now?: () => number;
}

export class FlightRecorder {
  /** Lines gathered since the last write; those before `head` were dropped. */
  private pending: NewLogLine[] = [];
  /**
   * How many lines at the front of `pending` were dropped, the store having
   * fallen behind: a flood past maxPending costs a step of this index per
   * line, not a shift of the whole array.
   */
  private head = 0;
  private readonly boots = new Map<string, Promise<number>>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly pruneTimer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();
  private dropped = 0;
  private readonly now: () => number;

  constructor(
    private readonly store: HostLogStore,
    private readonly log: Logger,
    private readonly options: RecorderOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.flushTimer = setInterval(() => void this.flush(), options.flushMs ?? 250);
    this.flushTimer.unref();
    this.pruneTimer = setInterval(() => void this.prune(), options.pruneEveryMs ?? 600_000);
    this.pruneTimer.unref();
  }

  /** The host fetched a boot script: the lines from now on belong to a new boot. */
  startBoot(mac: string): void {
    const started = this.store.startBoot(mac, this.now());
    // A failed start keeps the host's lines on the boot before (or boot 0 for a host never seen).
    this.boots.set(
      mac,
      started.catch(async (error: unknown) => {
        this.log.warn({ err: error, mac }, 'logs: cannot start a new boot in the log store; its lines go with the boot before');
        return (await this.store.currentBoot(mac).catch(() => undefined)) ?? 0;
      }),
    );
  }

  /** A syslog or netconsole line from `mac`. */
  syslog(mac: string, message: SyslogMessage): void {
    const source: LogLineSource = message.format === 'netconsole' || message.format === 'plain' ? 'netconsole' : 'syslog';
    this.add(mac, source, message.text, message.severity, message.appName, message.receivedAt.getTime());
  }

  add(mac: string, source: LogLineSource, text: string, severity?: number, app?: string, at = this.now()): void {
    const maxPending = this.options.maxPending ?? 50_000;
    if (this.pending.length - this.head >= maxPending) {
      this.head += 1;
      this.dropped += 1;
      // Once as many are dropped as are kept, the array sheds them (amortised: one copy per maxPending drops).
      if (this.head >= maxPending) {
        this.pending = this.pending.slice(this.head);
        this.head = 0;
      }
    }
    // The boot is filled in at the flush, once the host's boot number is known.
    // Tokens are never kept (a kernel's command line carries its boot's).
    this.pending.push({
      mac,
      boot: -1,
      receivedAt: at,
      source,
      text: redactTokens(text),
      ...(severity === undefined ? {} : { severity }),
      ...(app === undefined ? {} : { app }),
    });
  }

  /** Writes what is gathered; resolves once it is written (or its loss logged). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.flushTimer);
    clearInterval(this.pruneTimer);
    await this.flush();
  }

  private bootOf(mac: string): Promise<number> {
    let boot = this.boots.get(mac);
    if (boot === undefined) {
      boot = this.store.currentBoot(mac).then(
        (current) => current ?? 0,
        () => 0,
      );
      this.boots.set(mac, boot);
    }
    return boot;
  }

  private async write(): Promise<void> {
    if (this.dropped > 0) {
      this.log.warn({ dropped: this.dropped }, 'logs: the log store fell behind; the oldest lines waiting were dropped');
      this.dropped = 0;
    }
    const batch = this.head === 0 ? this.pending : this.pending.slice(this.head);
    this.pending = [];
    this.head = 0;
    if (batch.length === 0) return;
    const lines = await Promise.all(batch.map(async (line) => ({ ...line, boot: await this.bootOf(line.mac) })));
    try {
      await this.store.append(lines);
    } catch (error) {
      this.log.error({ err: error, lines: lines.length, hosts: new Set(lines.map((line) => line.mac)).size }, 'logs: lines not written to the log store');
    }
  }

  private async prune(): Promise<void> {
    try {
      const gone = await this.store.prune({ maxBytesPerHost: this.options.retention.maxBytesPerHost, before: this.now() - this.options.retention.keepMs });
      if (gone > 0) this.log.info({ lines: gone }, 'logs: old lines let go (byte budget and retention)');
    } catch (error) {
      this.log.warn({ err: error }, 'logs: cannot prune the log store');
    }
  }
}
