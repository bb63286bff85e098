import osUtils from 'node-os-utils';
import type { Logger } from '../log.js';

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
 *
 * Sampling may fail (EMFILE when a flood of connections holds every
 * descriptor): node-os-utils' monitors then emit 'error', which with no
 * listener would end the process. Here a failed sample keeps the last good
 * one, and the log gets one line when sampling starts failing and one when
 * it works again.
 */
export class LoadSampler {
  private readonly os = new osUtils.OSUtils({ cacheEnabled: false });
  private timer: NodeJS.Timeout | undefined;
  private previous: { at: number; rx: number; tx: number } | undefined;
  private latest: LoadSample | undefined;
  private running: Promise<void> | undefined;
  private failing = false;
  private readonly intervalMs: number;

  constructor(
    private readonly interfaceName: string | undefined,
    private readonly options: { intervalMs?: number; log?: Pick<Logger, 'warn' | 'info'> } = {},
  ) {
    this.intervalMs = options.intervalMs ?? 2000;
    // The monitors also return the error in their result; the event is only a second copy of it.
    for (const monitor of [this.os.cpu, this.os.memory, this.os.network]) monitor.on('error', () => undefined);
  }

  start(): void {
    if (this.timer) return;
    const tick = () => {
      this.running ??= this.sample()
        .then(
          () => {
            if (this.failing) this.options.log?.info({ event: 'load-sample-recovered' }, 'status: load sampling works again');
            this.failing = false;
          },
          (error: unknown) => {
            if (!this.failing)
              this.options.log?.warn(
                { event: 'load-sample-failed', err: error },
                'status: load sampling failed; the last sample is shown until it works again',
              );
            this.failing = true;
          },
        )
        .finally(() => (this.running = undefined));
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
    // node-os-utils answers a failed read with success: false rather than throwing.
    const failed = [cpu, memory, network].find((result) => result !== undefined && !result.success);
    if (failed || !cpu.success || !memory.success) throw (failed as { error?: unknown } | undefined)?.error ?? new Error('load sample failed');
    const now = Date.now();
    const sample: LoadSample = {
      cpuPercent: Math.round(cpu.data * 10) / 10,
      memoryUsedBytes: memory.data.used.bytes,
      memoryTotalBytes: memory.data.total.bytes,
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
