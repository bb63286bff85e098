import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics for GET /metrics. The servers call the record methods
 * next to their log line for the same event; labels are kept to small fixed
 * sets (message types, results, boot part names), never MACs or addresses,
 * so the series count stays bounded however many machines boot.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly dhcpPackets = new Counter({
    name: 'rackboot_dhcp_packets_total',
    help: 'DHCP packets received, by message type and what rackboot did with them',
    labelNames: ['type', 'result'] as const,
    registers: [this.registry],
  });
  private readonly tftpTransfers = new Counter({
    name: 'rackboot_tftp_transfers_total',
    help: 'TFTP transfers ended, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly tftpBytes = new Counter({
    name: 'rackboot_tftp_bytes_total',
    help: 'Bytes of file content sent by TFTP',
    registers: [this.registry],
  });
  private readonly httpBytes = new Counter({
    name: 'rackboot_http_bytes_total',
    help: 'Bytes sent over HTTP, by boot file (generated per-host files are grouped by kind)',
    labelNames: ['file'] as const,
    registers: [this.registry],
  });
  private readonly httpConnectionsRefused = new Counter({
    name: 'rackboot_http_connections_refused_total',
    help: 'HTTP connections closed on arrival, by the cap they passed (total or per-address)',
    labelNames: ['cap'] as const,
    registers: [this.registry],
  });
  private readonly bootDuration = new Histogram({
    name: 'rackboot_boot_duration_seconds',
    help: "From a machine's first DHCP packet to its runtime's ready report",
    buckets: [10, 20, 30, 45, 60, 90, 120, 180, 300, 600],
    registers: [this.registry],
  });

  private readonly hostRefusals = new Counter({
    name: 'rackboot_host_refusals_total',
    help: "Requests for a host's secrets, or reports about a host, refused for want of that host's token, by what was asked",
    labelNames: ['what'] as const,
    registers: [this.registry],
  });
  private readonly hostAlarms = new Counter({
    name: 'rackboot_host_alarms_total',
    help: 'Host tokens shown in a way that signals trouble (a copied token, two boots of one MAC, a second runtime.env fetch)',
    registers: [this.registry],
  });

  constructor(hostsPerStage?: () => Map<string, number>) {
    collectDefaultMetrics({ register: this.registry, prefix: 'rackboot_' });
    if (hostsPerStage) {
      new Gauge({
        name: 'rackboot_hosts',
        help: 'Hosts by the last stage they reached',
        labelNames: ['stage'] as const,
        registers: [this.registry],
        collect() {
          this.reset();
          for (const [stage, count] of hostsPerStage()) this.set({ stage }, count);
        },
      });
    }
  }

  /** Syslog datagrams the receiver took (logs/receiver.ts), by what became of them: read from its counts at each scrape. */
  syslogCounts(counts: () => { attributed: number; strangers: number; overRate: number; malformed: number; tcpRefused: number }): void {
    new Counter({
      name: 'rackboot_syslog_tcp_refused_total',
      help: "TCP syslog connections closed as they opened: a stranger's, or past the per-sender or total cap",
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(counts().tcpRefused);
      },
    });
    new Counter({
      name: 'rackboot_syslog_datagrams_total',
      help: "Syslog and netconsole datagrams (and TCP frames) received, by result: kept in a host's log, or dropped (a stranger's, past its sender's rate, unreadable)",
      labelNames: ['result'] as const,
      registers: [this.registry],
      collect() {
        const now = counts();
        this.reset();
        this.inc({ result: 'kept' }, now.attributed);
        this.inc({ result: 'stranger' }, now.strangers);
        this.inc({ result: 'over-rate' }, now.overRate);
        this.inc({ result: 'unreadable' }, now.malformed);
      },
    });
  }

  dhcpPacket(type: string, result: string): void {
    this.dhcpPackets.inc({ type, result });
  }

  tftpTransfer(result: 'complete' | 'failed' | 'refused', bytes: number): void {
    this.tftpTransfers.inc({ result });
    if (bytes > 0) this.tftpBytes.inc(bytes);
  }

  httpFile(file: string, bytes: number): void {
    if (bytes > 0) this.httpBytes.inc({ file }, bytes);
  }

  /** what: runtime.env, domain.cfg or event. */
  hostRefused(what: string): void {
    this.hostRefusals.inc({ what });
  }

  hostAlarm(): void {
    this.hostAlarms.inc();
  }

  httpConnectionRefused(cap: string): void {
    this.httpConnectionsRefused.inc({ cap });
  }

  bootCompleted(seconds: number): void {
    this.bootDuration.observe(seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The label for an HTTP path: a boot part's own name when `isPart` knows it
 * (the names of a build manifest: a small fixed set), the kind of a
 * generated per-host file, or "other": a label never takes a name straight
 * from a request, or anyone could make series without end.
 */
export function httpFileLabel(path: string, isPart: (name: string) => boolean): string {
  const clean = path.split('?')[0]!;
  if (/^\/hosts\/[^/]+\/domains\/[^/]+$/.test(clean)) return 'host:domain.cfg';
  const host = /^\/hosts\/[^/]+\/(?:builds\/[^/]+\/)?(boot\.ipxe|xen\.cfg|runtime\.env)$/.exec(clean);
  if (host) return `host:${host[1]}`;
  // /<part>, /builds/<id>/<part>, or /b/<digest>/<part> (BIOS multiboot lines, resolve.ts).
  const part = /^\/(?:(?:builds\/[^/]+|b\/[0-9a-f]{8})\/)?([^/]+)$/.exec(clean)?.[1];
  return part !== undefined && isPart(part) ? part : 'other';
}
