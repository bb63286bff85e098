import type { RandomAccessContent } from './file.js';
import { Opcode } from '../wire/codes.js';

/**
 * The blocks of a transfer's window and those just after it, read from
 * random-access content into one buffer that the transfer reuses for its
 * whole life: block `index` (counted from 1) lives in slot (index - 1) mod
 * slots. A slot is only overwritten once the block that held it is
 * acknowledged (the caller says how far that is).
 *
 * Each slot is a whole DATA packet: four bytes of header, then the block,
 * read there by one preadv per run of slots. block() writes the header and
 * hands out the packet, which goes to the socket as one buffer: no header
 * allocated and no two-part send per packet.
 *
 * There are at least enough slots for 64 KiB, so small windows read ahead
 * in 64 KiB reads rather than one read per block (a trip through libuv's
 * thread pool per ACK). And the transfer calls prefetch() as ACKs come in, so
 * the next blocks are read while the client still works on the ones sent:
 * an ACK then finds its answer in memory and costs only a send, never a
 * wait for the thread pool.
 */
const readAheadBytes = 64 * 1024;
const dataHeaderLength = 4;
/** Under IOV_MAX (1024): tiny blocks make long runs of slots. */
const maxBuffersPerRead = 512;

export class WindowBuffer {
  private buffer: Buffer;
  private readonly slots: number;
  /** Bytes per slot: a DATA header and a block. */
  private readonly stride: number;
  /** Blocks heldFrom..filledTo have been read (the last `slots` of them are held). */
  private filledTo = 0;
  /**
   * The first block read since the last jump: a transfer whose blocks were
   * sent by other means for a while (a pump, see transfer.ts) asks for a
   * block past filledTo + 1, and the slots of the blocks in between hold
   * older blocks.
   */
  private heldFrom = 1;
  /** A read started by prefetch() and not finished; fill() waits for it. */
  private reading: Promise<void> | undefined;
  /** Why the last prefetch failed, for the fill() that needed its blocks. */
  private failure: unknown;
  private closed = false;

  constructor(
    private readonly content: RandomAccessContent,
    private readonly size: number,
    private readonly blockSize: number,
    windowSize: number,
  ) {
    // Never more room than the file needs: a 300-byte file asked for with
    // blksize 65464 and windowsize 64 gets one block, not 4 MB.
    this.slots = Math.max(1, Math.min(Math.max(windowSize, Math.ceil(readAheadBytes / blockSize)), this.finalIndex));
    this.stride = blockSize + dataHeaderLength;
    this.buffer = Buffer.allocUnsafeSlow(this.slots * this.stride);
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
   * Read blocks from..to (from at most the block after the last one read,
   * or any block after it when the ones between are acknowledged; to at
   * most the last acknowledged block + capacity)
   * in at most two reads (the run of slots may wrap around the buffer).
   * `busy`: sends from the buffer may still be queued, so take a new one
   * rather than overwrite what they carry.
   */
  async fill(from: number, to: number, busy: boolean): Promise<void> {
    // A prefetch may be reading these blocks already: wait for it, then read what it did not.
    while (this.reading !== undefined) await this.reading;
    if (this.failure !== undefined) throw this.failure;
    if (from <= this.filledTo) from = this.filledTo + 1;
    await this.read(from, to, busy);
  }

  /**
   * Start reading the blocks after the last one read, up to
   * `acknowledged` + capacity, without waiting, once at least half the
   * slots hold acknowledged blocks (so reads stay large). `busy()`: as for
   * fill(), asked only when a read starts.
   */
  prefetch(acknowledged: number, busy: () => boolean): void {
    if (this.reading !== undefined || this.closed || this.failure !== undefined || this.filledTo >= this.finalIndex) return;
    if (acknowledged + this.slots - this.filledTo < this.slots / 2) return;
    const reading = this.read(Math.max(this.filledTo, acknowledged) + 1, acknowledged + this.slots, busy());
    this.reading = reading;
    reading.then(
      () => {
        this.reading = undefined;
        if (this.closed) this.content.close();
      },
      (err: unknown) => {
        this.reading = undefined;
        this.failure = err;
        if (this.closed) this.content.close();
      },
    );
  }

  private async read(from: number, to: number, busy: boolean): Promise<void> {
    const last = Math.min(to, this.finalIndex);
    if (last < from) return;
    if (from !== this.filledTo + 1) this.heldFrom = from;
    if (busy) {
      // Read blocks not sent yet may sit in the buffer: they move along.
      const fresh = Buffer.allocUnsafeSlow(this.buffer.length);
      this.buffer.copy(fresh);
      this.buffer = fresh;
    }
    let index = from;
    while (index <= last) {
      const slot = (index - 1) % this.slots;
      const run = Math.min(last - index + 1, this.slots - slot, maxBuffersPerRead);
      const position = (index - 1) * this.blockSize;
      const wanted = Math.min(run * this.blockSize, this.size - position);
      const parts: Buffer[] = [];
      for (let offset = 0; offset < wanted; offset += this.blockSize) {
        const start = (slot + parts.length) * this.stride + dataHeaderLength;
        parts.push(this.buffer.subarray(start, start + Math.min(this.blockSize, wanted - offset)));
      }
      const got = wanted === 0 ? 0 : await this.content.readv(parts, position);
      if (got < wanted) throw new Error(`file ended at ${position + got} bytes, ${this.size} expected`);
      index += run;
    }
    this.filledTo = last;
  }

  /** The content's file descriptor, when it has one. */
  get fd(): number | undefined {
    return this.content.fd;
  }

  /**
   * Block `index`, read by fill() and not yet overwritten, as a DATA packet
   * numbered `wireBlock` (the index modulo 65536, RFC 7440 wraps it).
   */
  packet(index: number, wireBlock: number): Buffer {
    if (index > this.filledTo || index <= this.filledTo - this.slots || index < this.heldFrom) throw new Error(`WindowBuffer: block ${index} is not held`);
    const start = ((index - 1) % this.slots) * this.stride;
    const length = Math.min(this.blockSize, this.size - (index - 1) * this.blockSize);
    const buffer = this.buffer;
    buffer[start] = 0;
    buffer[start + 1] = Opcode.data;
    buffer[start + 2] = wireBlock >>> 8;
    buffer[start + 3] = wireBlock & 0xff;
    return buffer.subarray(start, start + dataHeaderLength + length);
  }

  get highestRead(): number {
    return this.filledTo;
  }

  /** Release the content; a prefetch still reading releases it when done. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reading === undefined) this.content.close();
  }
}
