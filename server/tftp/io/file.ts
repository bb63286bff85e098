import { close, createReadStream, open, readv } from 'node:fs';
import { stat } from 'node:fs/promises';

/**
 * What a transfer reads from: bytes already in memory (generated scripts,
 * small configs), or a stream or async iterable of chunks (files on disk,
 * anything produced on the fly). Chunks may have any size; the sender cuts
 * them into blocks.
 */
export type TftpSource = Uint8Array | NodeJS.ReadableStream | AsyncIterable<Uint8Array | string>;

/** A file the server can send. */
export interface TftpFile {
  /**
   * Bytes the source yields, answered to an RFC 2349 tsize request. PXE ROMs
   * size their download buffer from it, so it must be exact.
   */
  readonly size: number;
  /**
   * The content from the first byte: a fresh stream on each call (one call
   * per transfer, and only once the client has accepted the options, so a
   * tsize probe opens nothing), or the same Buffer every time.
   */
  open(): TftpSource;
  /**
   * Random access to the same bytes, for sources that have it (files on
   * disk). Octet transfers then read each window straight into a buffer of
   * their own that they reuse, instead of streaming: no allocation per
   * block, so 200 transfers stay within a few tens of MB.
   */
  openRandomAccess?(): Promise<RandomAccessContent>;
}

/** Positional reads of a TftpFile's content. */
export interface RandomAccessContent {
  /**
   * Read the bytes at `position` into `buffers`, one after the other, in
   * one call (preadv); resolves with the count read, short at the end.
   */
  readv(buffers: Buffer[], position: number): Promise<number>;
  close(): void;
  /** The open file's descriptor, for readers that read it themselves (a transfer socket's pump); valid until close(). */
  readonly fd?: number;
}

/** fileFromDisk was handed a directory, FIFO, device or socket. */
export class NotRegularFileError extends Error {
  override readonly name = 'NotRegularFileError';
  readonly code = 'ENOTREGULAR';
  constructor(readonly path: string) {
    super(`${path} is not a regular file`);
  }
}

/**
 * A file on disk, streamed in 64 KiB reads, never loaded whole. Rejects with
 * the fs error (ENOENT, EACCES, ...) when it cannot be read, and with
 * NotRegularFileError for anything but a regular file (symbolic links to
 * one are followed): reading a FIFO or a device would hang or never end.
 * The size is taken now and each stream stops there, so a file that grows
 * while being sent still matches the tsize the client was told.
 */
export async function fileFromDisk(path: string): Promise<TftpFile> {
  const info = await stat(path);
  if (!info.isFile()) throw new NotRegularFileError(path);
  const size = info.size;
  return {
    size,
    open: () => (size === 0 ? Buffer.alloc(0) : createReadStream(path, { start: 0, end: size - 1, highWaterMark: 64 * 1024 })),
    openRandomAccess: () => openRandomAccess(path, size),
  };
}

/** Callback fs calls rather than FileHandle: one promise per read, no more. */
function openRandomAccess(path: string, size: number): Promise<RandomAccessContent> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (err, fd) => {
      if (err) {
        reject(err);
        return;
      }
      let closed = false;
      resolve({
        fd,
        readv: (buffers, position) =>
          new Promise((done, fail) => {
            // Nothing past the size taken when the file was resolved (see
            // fileFromDisk); callers size their buffers from it.
            if (buffers.length === 0 || position >= size || closed) {
              done(0);
              return;
            }
            readv(fd, buffers, position, (readErr, bytesRead) => (readErr ? fail(readErr) : done(bytesRead)));
          }),
        close: () => {
          if (closed) return;
          closed = true;
          close(fd, () => undefined);
        },
      });
    });
  });
}

/** Content already in memory; served by slicing, without copies. */
export function fileFromBuffer(content: Uint8Array): TftpFile {
  const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  return { size: bytes.length, open: () => bytes };
}
