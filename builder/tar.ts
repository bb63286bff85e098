/**
 * A push parser for tar streams (POSIX ustar with GNU long-name and pax
 * extended headers, which is what `dpkg-deb --fsys-tarfile` writes). It lets
 * the build read the kernel package's 400 MB of modules as a stream, keeping
 * only the few files it wants, instead of writing them all to disk.
 * No I/O: bytes are pushed in, wanted files come out through a callback.
 */

export interface TarHeader {
  /** As stored, without a leading "./" ("lib/modules/.../e1000.ko"). */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  size: number;
  mode: number;
  /** Symlink or hard link target; '' otherwise. */
  linkTarget: string;
}

const BLOCK = 512;

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

function octal(buf: Buffer, start: number, length: number, field: string): number {
  // GNU base-256 for values that do not fit in octal: high bit of the first byte set.
  if ((buf[start]! & 0x80) !== 0) {
    let value = buf[start]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + buf[start + i]!;
    return value;
  }
  const text = cString(buf, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar header field ${field} is "${text}", not octal`);
  return parseInt(text, 8);
}

/** Pax extended header records: "LEN key=value\n" (POSIX.1-2001, pax "Extended Header" format). */
export function parsePaxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const length = Number(data.toString('ascii', at, space));
    if (!Number.isInteger(length) || length <= 0 || at + length > data.length) throw new Error(`pax record at byte ${at} has a bad length`);
    const record = data.toString('utf8', space + 1, at + length - 1); // drop the trailing newline
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}

function normalise(path: string): string {
  return path
    .replace(/^(\.\/)+/, '')
    .replace(/^\/+/, '')
    .replace(/\/+$/, '');
}

type State =
  | { kind: 'header' }
  | { kind: 'data'; header: TarHeader; remaining: number; padding: number; chunks: Buffer[] | undefined; meta: 'L' | 'K' | 'x' | undefined }
  | { kind: 'end' };

export class TarParser {
  private pending: Buffer = Buffer.alloc(0);
  private state: State = { kind: 'header' };
  private longName: string | undefined;
  private longLink: string | undefined;
  private pax: Map<string, string> | undefined;
  private offset = 0;

  /**
   * @param want which entries' data to collect (others are skipped without copying)
   * @param onEntry called for each wanted entry with its data
   */
  constructor(
    private readonly want: (header: TarHeader) => boolean,
    private readonly onEntry: (header: TarHeader, data: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    let input = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (input.length > 0) {
      const state = this.state;
      if (state.kind === 'end') return; // trailing blocks after the end marker
      if (state.kind === 'header') {
        if (input.length < BLOCK) {
          this.pending = Buffer.from(input);
          return;
        }
        this.header(input.subarray(0, BLOCK));
        input = input.subarray(BLOCK);
        this.offset += BLOCK;
        continue;
      }
      if (state.remaining > 0) {
        const take = Math.min(state.remaining, input.length);
        state.chunks?.push(Buffer.from(input.subarray(0, take)));
        state.remaining -= take;
        input = input.subarray(take);
        this.offset += take;
        if (state.remaining > 0) return;
      }
      if (state.padding > 0) {
        const take = Math.min(state.padding, input.length);
        state.padding -= take;
        input = input.subarray(take);
        this.offset += take;
        if (state.padding > 0) return;
      }
      this.finishEntry(state);
    }
    const state = this.state;
    if (state.kind === 'data' && state.remaining === 0 && state.padding === 0) this.finishEntry(state);
  }

  /** Call after the last chunk; a stream that stops inside an entry is an error. */
  end(): void {
    const state = this.state;
    if (state.kind === 'data' && state.remaining === 0 && state.padding === 0) this.finishEntry(state);
    if (this.state.kind === 'data' || this.pending.length > 0) {
      throw new Error(`tar stream ends inside an entry (at byte ${this.offset + this.pending.length})`);
    }
  }

  private header(block: Buffer): void {
    if (block.every((b) => b === 0)) {
      this.state = { kind: 'end' };
      return;
    }
    const stored = octal(block, 148, 8, 'checksum');
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== stored) throw new Error(`tar header at byte ${this.offset} has checksum ${stored}, computed ${sum}`);
    const typeflag = String.fromCharCode(block[156]!);
    let path = cString(block, 0, 100);
    const magic = block.toString('ascii', 257, 263);
    if (magic === 'ustar\0') {
      const prefix = cString(block, 345, 155);
      if (prefix !== '') path = `${prefix}/${path}`;
    }
    let size = octal(block, 124, 12, 'size');
    let linkTarget = cString(block, 157, 100);
    const mode = octal(block, 100, 8, 'mode');

    if (typeflag === 'L' || typeflag === 'K' || typeflag === 'x' || typeflag === 'g') {
      const meta = typeflag === 'g' ? undefined : typeflag;
      const header: TarHeader = { path, type: 'other', size, mode, linkTarget };
      this.state = { kind: 'data', header, remaining: size, padding: (BLOCK - (size % BLOCK)) % BLOCK, chunks: meta ? [] : undefined, meta };
      return;
    }
    if (this.longName !== undefined) path = this.longName;
    if (this.longLink !== undefined) linkTarget = this.longLink;
    if (this.pax !== undefined) {
      path = this.pax.get('path') ?? path;
      linkTarget = this.pax.get('linkpath') ?? linkTarget;
      const paxSize = this.pax.get('size');
      if (paxSize !== undefined) size = Number(paxSize);
    }
    this.longName = this.longLink = this.pax = undefined;
    const type: TarHeader['type'] =
      typeflag === '0' || typeflag === '\0' || typeflag === '7'
        ? 'file'
        : typeflag === '5'
          ? 'directory'
          : typeflag === '2'
            ? 'symlink'
            : typeflag === '1'
              ? 'hardlink'
              : 'other';
    if (type === 'directory' || type === 'symlink' || type === 'hardlink') size = 0;
    const header: TarHeader = { path: normalise(path), type, size, mode, linkTarget };
    const chunks = this.want(header) ? [] : undefined;
    this.state = { kind: 'data', header, remaining: size, padding: (BLOCK - (size % BLOCK)) % BLOCK, chunks, meta: undefined };
  }

  private finishEntry(state: Extract<State, { kind: 'data' }>): void {
    this.state = { kind: 'header' };
    if (state.chunks === undefined) return;
    const data = Buffer.concat(state.chunks);
    switch (state.meta) {
      case 'L':
        this.longName = cString(data, 0, data.length);
        return;
      case 'K':
        this.longLink = cString(data, 0, data.length);
        return;
      case 'x':
        this.pax = parsePaxRecords(data);
        return;
      default:
        this.onEntry(state.header, data);
    }
  }
}
