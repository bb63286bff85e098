/**
 * The "newc" cpio format (the SVR4 portable format without checksums, magic
 * 070701) as the Linux kernel unpacks it for an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * Pure: entries in, bytes out, and back. Writing the archive here instead of
 * running cpio(1) lets the build create device nodes (/dev/console) without
 * root and makes the archive byte-for-byte reproducible: members are sorted,
 * owners are root unless an entry names another, every mtime is the same fixed value and inode numbers are
 * assigned in order.
 */

/** Owner and group; root (0) when left out. */
interface Owner {
  uid?: number;
  gid?: number;
}

export type CpioEntry =
  | ({ type: 'file'; path: string; mode: number; data: Uint8Array } & Owner)
  | ({ type: 'directory'; path: string; mode: number } & Owner)
  | ({ type: 'symlink'; path: string; target: string } & Owner)
  | ({ type: 'character-device'; path: string; mode: number; major: number; minor: number } & Owner);

export interface CpioOptions {
  /** Modification time of every member, seconds since the epoch. */
  mtime?: number;
}

const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';
const HEADER_LENGTH = 110;

// File type bits of st_mode (sys/stat.h).
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFMT = 0o170000;

/** Archive paths are relative ("bin/busybox"); a leading "/" or "./" is dropped. */
export function normalisePath(path: string): string {
  let p = path.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  p = p.replace(/\/{2,}/g, '/');
  if (p === '' || p === '.') throw new Error(`cpio path "${path}" names the archive root`);
  if (p.split('/').some((part) => part === '..' || part === '.')) {
    throw new Error(`cpio path "${path}" has a "." or ".." component`);
  }
  return p;
}

/** Add a directory entry (mode 0755) for every parent that has none, so the kernel can create each member. */
export function withParentDirectories(entries: CpioEntry[]): CpioEntry[] {
  const present = new Set(entries.map((e) => normalisePath(e.path)));
  const added: CpioEntry[] = [];
  for (const entry of entries) {
    const parts = normalisePath(entry.path).split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!present.has(parent)) {
        present.add(parent);
        added.push({ type: 'directory', path: parent, mode: 0o755 });
      }
    }
  }
  return [...entries, ...added];
}

function hex8(value: number, field: string): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new Error(`cpio field ${field} is ${value}, want an integer in 0..0xffffffff`);
  }
  return value.toString(16).padStart(8, '0');
}

function padding(length: number): number {
  return (4 - (length % 4)) % 4;
}

interface Member {
  path: string;
  mode: number;
  nlink: number;
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
  uid: number;
  gid: number;
}

function memberOf(entry: CpioEntry): Member {
  const path = normalisePath(entry.path);
  const none = new Uint8Array(0);
  const owner = { uid: entry.uid ?? 0, gid: entry.gid ?? 0 };
  switch (entry.type) {
    case 'file':
      return { path, mode: S_IFREG | (entry.mode & 0o7777), nlink: 1, data: entry.data, rdevMajor: 0, rdevMinor: 0, ...owner };
    case 'directory':
      return { path, mode: S_IFDIR | (entry.mode & 0o7777), nlink: 2, data: none, rdevMajor: 0, rdevMinor: 0, ...owner };
    case 'symlink':
      return { path, mode: S_IFLNK | 0o777, nlink: 1, data: new TextEncoder().encode(entry.target), rdevMajor: 0, rdevMinor: 0, ...owner };
    case 'character-device':
      return { path, mode: S_IFCHR | (entry.mode & 0o7777), nlink: 1, data: none, rdevMajor: entry.major, rdevMinor: entry.minor, ...owner };
  }
}

function encodeHeader(m: Member, ino: number, mtime: number): Buffer {
  const name = Buffer.from(m.path + '\0', 'utf8');
  const fields = [
    MAGIC,
    hex8(ino, 'ino'),
    hex8(m.mode, 'mode'),
    hex8(m.uid, 'uid'),
    hex8(m.gid, 'gid'),
    hex8(m.nlink, 'nlink'),
    hex8(mtime, 'mtime'),
    hex8(m.data.length, 'filesize'),
    hex8(0, 'devmajor'),
    hex8(0, 'devminor'),
    hex8(m.rdevMajor, 'rdevmajor'),
    hex8(m.rdevMinor, 'rdevminor'),
    hex8(name.length, 'namesize'),
    hex8(0, 'check'),
  ].join('');
  return Buffer.concat([Buffer.from(fields, 'ascii'), name, Buffer.alloc(padding(HEADER_LENGTH + name.length))]);
}

/** The archive, members sorted by path (so every directory precedes its contents), ending with the trailer. */
export function encodeCpio(entries: CpioEntry[], options: CpioOptions = {}): Buffer {
  const mtime = options.mtime ?? 0;
  const members = entries.map(memberOf).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (let i = 1; i < members.length; i++) {
    if (members[i]!.path === members[i - 1]!.path) throw new Error(`cpio path "${members[i]!.path}" appears twice`);
  }
  const chunks: Buffer[] = [];
  members.forEach((m, index) => {
    chunks.push(encodeHeader(m, index + 1, mtime));
    chunks.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length));
    chunks.push(Buffer.alloc(padding(m.data.length)));
  });
  const trailer: Member = { path: TRAILER, mode: 0, nlink: 1, data: new Uint8Array(0), rdevMajor: 0, rdevMinor: 0, uid: 0, gid: 0 };
  chunks.push(encodeHeader(trailer, 0, 0));
  return Buffer.concat(chunks);
}

/** The 13 numbers of a newc header, in the order they are written. */
type NewcHeaderFields = [number, number, number, number, number, number, number, number, number, number, number, number, number];

/** Members of a newc archive up to its trailer, with each member's mtime. Throws on malformed input. */
export function decodeCpio(archive: Uint8Array): Array<CpioEntry & { mtime: number }> {
  const buf = Buffer.from(archive.buffer, archive.byteOffset, archive.length);
  const out: Array<CpioEntry & { mtime: number }> = [];
  let offset = 0;
  for (;;) {
    if (offset + HEADER_LENGTH > buf.length) throw new Error(`cpio archive ends at byte ${buf.length} inside a header at ${offset}`);
    const magic = buf.toString('ascii', offset, offset + 6);
    if (magic !== MAGIC) throw new Error(`cpio header at byte ${offset} has magic "${magic}", want "${MAGIC}"`);
    const fields: number[] = [];
    for (let index = 0; index < 13; index++) {
      const text = buf.toString('ascii', offset + 6 + index * 8, offset + 14 + index * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(text)) throw new Error(`cpio header at byte ${offset} field ${index} is "${text}", not hex`);
      fields.push(parseInt(text, 16));
    }
    const [, mode, uid, gid, , mtime, size, , , rdevMajor, rdevMinor, nameSize] = fields as NewcHeaderFields;
    const nameStart = offset + HEADER_LENGTH;
    if (nameSize < 1 || nameStart + nameSize > buf.length) throw new Error(`cpio header at byte ${offset} has name size ${nameSize}`);
    const path = buf.toString('utf8', nameStart, nameStart + nameSize - 1);
    const dataStart = nameStart + nameSize + padding(HEADER_LENGTH + nameSize);
    if (dataStart + size > buf.length) throw new Error(`cpio member "${path}" has size ${size}, past the end of the archive`);
    const data = new Uint8Array(buf.subarray(dataStart, dataStart + size));
    offset = dataStart + size + padding(size);
    if (path === TRAILER) return out;
    const perm = mode & 0o7777;
    // Root ownership is the default and is left out, as encodeCpio takes it.
    const owner = { ...(uid !== 0 ? { uid } : {}), ...(gid !== 0 ? { gid } : {}) };
    switch (mode & S_IFMT) {
      case S_IFREG:
        out.push({ type: 'file', path, mode: perm, data, mtime, ...owner });
        break;
      case S_IFDIR:
        out.push({ type: 'directory', path, mode: perm, mtime, ...owner });
        break;
      case S_IFLNK:
        out.push({ type: 'symlink', path, target: Buffer.from(data).toString('utf8'), mtime, ...owner });
        break;
      case S_IFCHR:
        out.push({ type: 'character-device', path, mode: perm, major: rdevMajor, minor: rdevMinor, mtime, ...owner });
        break;
      default:
        throw new Error(`cpio member "${path}" has mode ${mode.toString(8)}, a file type this decoder does not know`);
    }
  }
}
