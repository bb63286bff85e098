import type { Logger } from './log.js';
import { httpFileLabel, type Metrics } from './metrics.js';
import type { NeighborTable } from './net/neighbors.js';
import { summariseHost, type TimelineEvent } from './status/timeline.js';

/** Where timeline events are kept (the event store), as the observer needs it. */
export interface TimelineSink {
  appendAll(events: readonly TimelineEvent[]): unknown;
  listByHost(mac: string, options?: { limit?: number }): TimelineEvent[];
}

/** A DHCP reply or lease update, as the DHCP server decided it. */
export interface DhcpObservation {
  mac: string;
  /** The request's message type name (DHCPDISCOVER, ...). */
  type: string;
  /** offer, ack, nak, release, decline, ignored, ... */
  result: string;
  address?: string;
  proxy?: boolean;
}

export interface TftpObservation {
  client: string;
  file: string;
  result: 'complete' | 'failed' | 'refused';
  bytes: number;
  reason?: string;
}

export interface HttpObservation {
  path: string;
  status: number;
  bytes: number;
  client: string | undefined;
  /** The host a per-host request was proven to come from (it was handed or showed that host's token). */
  host?: string;
}

/** Timeline events written in one turn of the event loop by the timer's flush (about 3 ms of SQLite). */
const writeChunk = 512;

/** Results of a DHCP exchange that move a host along its timeline. */
const timelineResults: ReadonlySet<string> = new Set(['offer', 'ack', 'nak', 'release', 'decline']);

/**
 * One place where protocol events become the boot timeline and the metrics.
 * The servers call it beside their log line; it never throws into them, and
 * a DHCP packet costs it one array push: timeline writes are queued and
 * written together every `flushMs`, off the packet path, at most
 * `writeChunk` events a turn of the event loop.
 */
export class BootObserver {
  private queue: TimelineEvent[] = [];
  /** Neighbour-table lookups under way; their events join the queue when they end. */
  private readonly lookups = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly flushMs: number;
  private readonly now: () => number;
  private readonly partNames: () => ReadonlySet<string>;
  /** When each host fetched its boot script, and when its runtime first reported after it: iPXE fetches its files in between. */
  private readonly firmware = new Map<string, { since: number; until?: number }>();

  constructor(
    private readonly options: {
      timeline: TimelineSink;
      metrics: Metrics;
      neighbors: NeighborTable;
      log: Logger;
      /** Names of the current build's parts, for HTTP metric labels. */
      partNames: () => ReadonlySet<string>;
      /**
       * iPXE's fetches as the server answered them (its boot script, then the
       * files up to the runtime's first report), for the host's log: iPXE
       * itself has no syslog.
       */
      firmwareLog?: (mac: string, text: string, at: number) => void;
      flushMs?: number;
      now?: () => number;
    },
  ) {
    this.flushMs = options.flushMs ?? 200;
    this.now = options.now ?? Date.now;
    this.partNames = options.partNames;
  }

  dhcp(observation: DhcpObservation): void {
    this.options.metrics.dhcpPacket(observation.type, observation.result);
    if (!timelineResults.has(observation.result)) return;
    const prefix = observation.proxy ? 'proxy' : 'dhcp';
    const time = this.now();
    // The request (dhcp-discover, dhcp-request, ...) and what it got (dhcp-offer, dhcp-ack, ...).
    const request = `${prefix}-${observation.type.replace(/^DHCP/, '').toLowerCase()}`;
    const stage = `${prefix}-${observation.result}`;
    if (request !== stage) this.enqueue({ time, mac: observation.mac, source: 'dhcp', stage: request });
    this.enqueue({ time, mac: observation.mac, source: 'dhcp', stage, ...(observation.address ? { detail: observation.address } : {}) });
  }

  tftp(observation: TftpObservation): void {
    this.options.metrics.tftpTransfer(observation.result, observation.bytes);
    const time = this.now();
    // TFTP knows the client's address only; the kernel's neighbour table knows its MAC.
    this.lookup(observation.client, (mac) => {
      const failed = observation.result !== 'complete';
      const detail = failed && observation.reason ? `${observation.file}: ${observation.reason}` : observation.file;
      this.enqueue({ time, mac, source: 'tftp', stage: failed ? 'tftp-failed' : 'tftp', detail });
    });
  }

  http(observation: HttpObservation): void {
    const label = httpFileLabel(observation.path, (name) => this.partNames().has(name));
    if (observation.status < 400) this.options.metrics.httpFile(label, observation.bytes);
    const time = this.now();
    const hostMac = /^\/hosts\/([^/?]+)\//.exec(observation.path)?.[1];
    // A request about a host goes on its timeline only when it came from that
    // host: anyone may ask for /hosts/<mac>/..., and a stranger's probe, refused
    // or not, is no stage of that host's boot (it is logged and counted instead).
    if (observation.status >= 400 || label === 'other' || observation.path.includes('/events')) return;
    const stage = label.startsWith('host:') ? label.slice('host:'.length) : 'boot-file';
    const record = (mac: string) => {
      this.enqueue({ time, mac, source: 'http', stage, ...(stage === 'boot-file' ? { detail: label } : {}) });
      this.firmwareFetch(mac, stage, label, observation.bytes, time);
    };
    if (hostMac !== undefined) {
      if (observation.host !== undefined) record(observation.host);
    } else if (observation.client !== undefined) {
      this.lookup(observation.client.replace(/^::ffff:/, ''), record);
    }
  }

  /** A request for a host's secrets, or a report about it, without that host's token (token-use.ts). */
  hostRefused(what: string): void {
    this.options.metrics.hostRefused(what);
  }

  /**
   * A host token shown in a way that signals trouble (token-use.ts): an
   * `alarm` on the host's timeline (the status page shows it) and a warning.
   */
  alarm(mac: string, detail: string, client: string | undefined): void {
    this.options.metrics.hostAlarm();
    this.options.log.warn({ event: 'host-alarm', mac, remote: client, reason: detail }, 'host alarm');
    this.enqueue({ time: this.now(), mac, source: 'http', stage: 'alarm', detail });
  }

  private lookup(address: string, then: (mac: string) => void): void {
    const pending: Promise<void> = this.options.neighbors
      .macOf(address)
      .then((mac) => {
        if (mac !== undefined) then(mac);
      })
      .catch((error: unknown) => this.options.log.warn({ err: error, client: address }, 'timeline: neighbour lookup failed'))
      .finally(() => this.lookups.delete(pending));
    this.lookups.add(pending);
  }

  /** A runtime report was stored: a ready report ends a boot, timed for the histogram. */
  async reported(mac: string, stage: string): Promise<void> {
    const firmware = this.firmware.get(mac);
    if (firmware !== undefined && firmware.until === undefined) firmware.until = this.now();
    if (stage !== 'ready') return;
    await this.settle();
    const summary = summariseHost(mac, this.options.timeline.listByHost(mac, { limit: 500 }));
    if (summary?.lastBootSeconds !== null && summary?.lastBootSeconds !== undefined) this.options.metrics.bootCompleted(summary.lastBootSeconds);
  }

  /** Wait for the lookups under way, then write everything queued (before reading the timeline). */
  async settle(): Promise<void> {
    while (this.lookups.size > 0) await Promise.all([...this.lookups]);
    this.flush();
  }

  /** Write what is queued now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const events = this.queue;
    this.queue = [];
    this.write(events);
  }

  /**
   * The timer's flush: the first `writeChunk` events queued, and the rest
   * in the next turns. A storm queues thousands of events in `flushMs`
   * (four an exchange), and writing them in one go held the DHCP server
   * off its sockets for tens of milliseconds, long enough for its replies
   * to leave in one burst after it.
   */
  private readonly flushChunk = (): void => {
    this.timer = undefined;
    const events = this.queue.length > writeChunk ? this.queue.splice(0, writeChunk) : this.queue.splice(0);
    this.write(events);
    if (this.queue.length > 0) {
      this.timer = setTimeout(this.flushChunk, 0);
      this.timer.unref();
    }
  };

  private write(events: TimelineEvent[]): void {
    if (events.length === 0) return;
    try {
      this.options.timeline.appendAll(events);
    } catch (error) {
      this.options.log.warn({ err: error, events: events.length }, 'timeline: events not recorded');
    }
  }

  async close(): Promise<void> {
    await this.settle();
  }

  private firmwareFetch(mac: string, stage: string, label: string, bytes: number, time: number): void {
    const log = this.options.firmwareLog;
    if (log === undefined) return;
    const firmware = this.firmware.get(mac);
    if (stage === 'boot.ipxe') {
      this.firmware.delete(mac);
      this.firmware.set(mac, { since: time });
      if (this.firmware.size > 65_536) this.firmware.delete(this.firmware.keys().next().value!);
      log(mac, `iPXE fetched its boot script (${bytes} bytes)`, time);
    } else if (
      firmware !== undefined &&
      time >= firmware.since &&
      (firmware.until === undefined || time < firmware.until) &&
      (stage === 'boot-file' || stage === 'xen.cfg')
    ) {
      log(mac, `iPXE fetched ${stage === 'boot-file' ? label : stage} (${bytes} bytes)`, time);
    }
  }

  private enqueue(event: TimelineEvent): void {
    this.queue.push(event);
    if (this.timer === undefined) {
      this.timer = setTimeout(this.flushChunk, this.flushMs);
      this.timer.unref();
    }
  }
}

/** The DHCP server's events, as the observer takes them (serve.ts passes this as onEvent). */
export function observeDhcp(
  observer: Pick<BootObserver, 'dhcp'>,
  event: { kind: string; mac?: string; type?: string; result?: string; address?: string },
  proxy: boolean,
): void {
  if (event.kind === 'malformed') {
    observer.dhcp({ mac: '', type: 'malformed', result: 'dropped', proxy });
    return;
  }
  if (event.mac === undefined || event.type === undefined) return;
  const result = event.kind === 'ignore' ? 'ignored' : event.kind === 'error' ? 'error' : (event.result ?? event.kind);
  observer.dhcp({ mac: event.mac, type: event.type, result, ...(event.address ? { address: event.address } : {}), proxy });
}
