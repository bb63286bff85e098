import type { RandomAccessContent } from './file.js';

/**
 * The blocks of a transfer's window and those just after it, read from
 * random-access content into one buffer that the transfer reuses for its
 * whole life: block `index` (counted from 1) lives in slot (index - 1) mod
 * slots. A slot is only overwritten once the block that held it is
 * acknowledged (the caller says how far that is).
 *
 * There are at least enough slots for 64 KiB, so small windows read ahead
 * in 64 KiB reads rather than one read per block: at windowsize 1 a read
 * per block (a trip through libuv's thread pool per ACK) ran at a third of
 * dnsmasq's speed.
 */
const readAheadBytes = 64 * 1024;

export class WindowBuffer {
  private buffer: Buffer;
  private readonly slots: number;
  /** Blocks 1..filledTo have been read (the last `slots` of them are held). */
  private filledTo = 0;

  constructor(
    private readonly content: RandomAccessContent,
    private readonly size: number,
    private readonly blockSize: number,
    windowSize: number,
  ) {
    // Never more room than the file needs: a 300-byte file asked for with
    // blksize 65464 and windowsize 64 gets one block, not 4 MB.
    this.slots = Math.max(1, Math.min(Math.max(windowSize, Math.ceil(readAheadBytes / blockSize)), this.finalIndex));
    this.buffer = Buffer.allocUnsafeSlow(this.slots * blockSize);
  }

  /** Index of the last block: the one shorter than blockSize, possibly empty. */
  get finalIndex(): number {
    return Math.floor(this.size / this.blockSize) + 1;
  }

  /** Blocks held at once: read at most this far past the last acknowledged block. */
  get capacity(): number {
    return this.slots;
  }

  /**
   * Read blocks from..to (from must be the block after the last one read;
   * to at most the last acknowledged block + capacity)
   * in at most two reads (the run of slots may wrap around the buffer).
   * `busy`: sends from the buffer may still be queued, so take a new one
   * rather than overwrite what they carry.
   */
  async fill(from: number, to: number, busy: boolean): Promise<void> {
    if (from !== this.filledTo + 1) throw new Error(`WindowBuffer: asked for block ${from} after ${this.filledTo}`);
    const last = Math.min(to, this.finalIndex);
    if (last < from) return;
    if (busy) this.buffer = Buffer.allocUnsafeSlow(this.buffer.length);
    let index = from;
    while (index <= last) {
      const slot = (index - 1) % this.slots;
      const run = Math.min(last - index + 1, this.slots - slot);
      const position = (index - 1) * this.blockSize;
      const wanted = Math.min(run * this.blockSize, this.size - position);
      const got = wanted === 0 ? 0 : await this.content.read(this.buffer, slot * this.blockSize, wanted, position);
      if (got < wanted) throw new Error(`file ended at ${position + got} bytes, ${this.size} expected`);
      index += run;
    }
    this.filledTo = last;
  }

  /** Block `index`, read by fill() and not yet overwritten. */
  block(index: number): Buffer {
    if (index > this.filledTo || index <= this.filledTo - this.slots) throw new Error(`WindowBuffer: block ${index} is not held`);
    const slot = (index - 1) % this.slots;
    const length = Math.min(this.blockSize, this.size - (index - 1) * this.blockSize);
    return this.buffer.subarray(slot * this.blockSize, slot * this.blockSize + length);
  }

  get highestRead(): number {
    return this.filledTo;
  }

  close(): void {
    this.content.close();
  }
}
