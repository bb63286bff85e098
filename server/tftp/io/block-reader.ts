import type { TftpSource } from './file.js';
import { toNetascii } from '../wire/netascii.js';

/**
 * Cuts a TftpSource into blocks of exactly the requested size; only the
 * last block is shorter (possibly empty, which is how TFTP ends a file whose
 * size is a multiple of the block size).
 */
export class BlockReader {
  private readonly memory: Buffer | undefined;
  private memoryOffset = 0;
  private readonly chunks: AsyncIterator<Uint8Array | string> | undefined;
  private readonly stream: { destroy?: () => void } | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private exhausted = false;
  private closed = false;

  constructor(
    source: TftpSource,
    private readonly netascii: boolean,
  ) {
    if (source instanceof Uint8Array) {
      const bytes = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
      this.memory = netascii ? toNetascii(bytes) : bytes;
    } else {
      const iterable = source as AsyncIterable<Uint8Array | string>;
      if (typeof iterable[Symbol.asyncIterator] !== 'function') {
        throw new TypeError('TftpFile.open() returned neither bytes nor an async iterable stream');
      }
      this.chunks = iterable[Symbol.asyncIterator]();
      this.stream = source as { destroy?: () => void };
    }
  }

  async read(size: number): Promise<Buffer> {
    if (this.memory !== undefined) {
      const block = this.memory.subarray(this.memoryOffset, this.memoryOffset + size);
      this.memoryOffset += block.length;
      return block;
    }
    while (this.pendingBytes < size && !this.exhausted) {
      const next = await this.chunks!.next();
      if (this.closed) return Buffer.alloc(0);
      if (next.done === true) {
        this.exhausted = true;
        break;
      }
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      const converted = this.netascii ? toNetascii(chunk) : chunk;
      if (converted.length === 0) continue;
      this.pending.push(converted);
      this.pendingBytes += converted.length;
    }
    return this.take(Math.min(size, this.pendingBytes));
  }

  private take(size: number): Buffer {
    const first = this.pending[0];
    if (first === undefined || size === 0) return Buffer.alloc(0);
    if (first.length >= size) {
      // The common case: the block lies inside one chunk; slice, no copy.
      const block = first.subarray(0, size);
      if (first.length === size) this.pending.shift();
      else this.pending[0] = first.subarray(size);
      this.pendingBytes -= size;
      return block;
    }
    const block = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.pending[0]!;
      const used = Math.min(chunk.length, size - filled);
      chunk.copy(block, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(used);
    }
    this.pendingBytes -= size;
    return block;
  }

  /** Stop reading and release the underlying stream. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    if (this.chunks !== undefined) {
      this.chunks.return?.().catch(() => undefined);
      this.stream?.destroy?.();
    }
  }
}
