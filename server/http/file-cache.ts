import { readFile } from 'node:fs/promises';

/**
 * Hot boot files held in memory. A rack boots the same few files (Xen, the
 * kernel, the runtime initrd, the image) many times over; Node has no
 * sendfile(2), so streaming from disk costs a read copy per client on top
 * of the socket copy. A cached file is written to every socket from one
 * shared Buffer: memory grows with the files, not with the clients.
 *
 * Only immutable files are cached (build folders never change once
 * published); the key holds the sha256 from the manifest, so a rebuilt file
 * is another entry. Least recently used files go first when the budget is
 * exceeded; a file larger than the budget is never cached.
 */
export class FileCache {
  private readonly entries = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer | undefined>>();
  private bytes = 0;

  constructor(readonly budgetBytes: number) {}

  /** The file's bytes, loaded on first use; undefined when it does not fit the budget or cannot be read. */
  async get(path: string, size: number, sha256: string): Promise<Buffer | undefined> {
    if (size > this.budgetBytes || size === 0) return undefined;
    const key = `${sha256}:${path}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key); // re-insert: Map order is the LRU order
      this.entries.set(key, hit);
      return hit;
    }
    let pending = this.loading.get(key);
    if (!pending) {
      pending = readFile(path)
        .then(
          (data) => {
            if (data.length !== size) return undefined; // not what the manifest says: stream it, do not keep it
            while (this.bytes + data.length > this.budgetBytes && this.entries.size > 0) {
              const [oldest, buffer] = this.entries.entries().next().value as [string, Buffer];
              this.entries.delete(oldest);
              this.bytes -= buffer.length;
            }
            this.entries.set(key, data);
            this.bytes += data.length;
            return data;
          },
          () => undefined,
        )
        .finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
    }
    return pending;
  }

  /** The file's bytes if they are loaded already; never loads. */
  peek(path: string, sha256: string): Buffer | undefined {
    return this.entries.get(`${sha256}:${path}`);
  }

  get cachedBytes(): number {
    return this.bytes;
  }
}
