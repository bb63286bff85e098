import osUtils from 'node-os-utils';

/** The server's own load, as the status page shows it. */
export interface LoadSample {
  /** Whole machine, percent of all cores, over the last sampling interval. */
  cpuPercent: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  /** This rackboot process. */
  processRssBytes: number;
  /** The served interface, bytes per second over the last interval; undefined until two samples exist. */
  network?: { interface: string; rxBytesPerSecond: number; txBytesPerSecond: number };
  at: string;
}

/**
 * Samples CPU, memory and the served interface's traffic every `intervalMs`
 * with node-os-utils (which reads /proc here). Only local counters are read:
 * nothing that would reach out to the network.
 */
export class LoadSampler {
  private readonly os = new osUtils.OSUtils({ cacheEnabled: false });
  private timer: NodeJS.Timeout | undefined;
  private previous: { at: number; rx: number; tx: number } | undefined;
  private latest: LoadSample | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly interfaceName: string | undefined,
    private readonly intervalMs = 2000,
  ) {}

  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.running ??= this.sample().finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  current(): LoadSample | undefined {
    return this.latest;
  }

  private async sample(): Promise<void> {
    const [cpu, memory, network] = await Promise.all([
      this.os.cpu.usage(),
      this.os.memory.info(),
      this.interfaceName === undefined ? undefined : this.os.network.statsByInterface(this.interfaceName),
    ]);
    const now = Date.now();
    const sample: LoadSample = {
      cpuPercent: cpu.success ? Math.round(cpu.data * 10) / 10 : Number.NaN,
      memoryUsedBytes: memory.success ? memory.data.used.bytes : Number.NaN,
      memoryTotalBytes: memory.success ? memory.data.total.bytes : Number.NaN,
      processRssBytes: process.memoryUsage.rss(),
      at: new Date(now).toISOString(),
    };
    if (network?.success && network.data) {
      const rx = network.data.rxBytes.bytes;
      const tx = network.data.txBytes.bytes;
      if (this.previous && now > this.previous.at) {
        const seconds = (now - this.previous.at) / 1000;
        sample.network = {
          interface: this.interfaceName!,
          rxBytesPerSecond: Math.max(0, Math.round((rx - this.previous.rx) / seconds)),
          txBytesPerSecond: Math.max(0, Math.round((tx - this.previous.tx) / seconds)),
        };
      }
      this.previous = { at: now, rx, tx };
    }
    this.latest = sample;
  }
}
