import { chmod, chown, lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The state folder holds leases, the boot timeline, slot sightings and the
 * secrets that sign tokens: the folder is 0700 and every file in it 0600,
 * readable by the server's own user only. SQLite gives its -wal and -shm
 * files the mode of the database file, so once that is 0600 they follow.
 */

export interface FileOwner {
  uid: number;
  gid: number;
}

export interface SecuredFolder {
  /** Paths whose mode was wider and has been set back. */
  tightened: string[];
}

/**
 * Make the folder (0700) if missing and set it and its files to 0700/0600.
 * Symbolic links are left alone (never followed).
 */
export async function secureStateFolder(dir: string): Promise<SecuredFolder> {
  const tightened: string[] = [];
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const secure = async (path: string, mode: number) => {
    const info = await lstat(path);
    if (info.isSymbolicLink()) return;
    if ((info.mode & 0o777 & ~mode) !== 0) {
      await chmod(path, mode);
      tightened.push(path);
    }
  };
  await secure(dir, 0o700);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await secure(join(dir, entry.name), 0o600);
  }
  return { tightened };
}

/**
 * Hand a folder and all in it to `owner`: the server, started as root with
 * --user, opens its state (and the image cache) before it becomes that
 * user, and must still write them after. Symbolic links are left alone.
 */
export async function handOver(path: string, owner: FileOwner): Promise<void> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) return;
  if (info.uid !== owner.uid || info.gid !== owner.gid) await chown(path, owner.uid, owner.gid);
  if (info.isDirectory()) for (const name of await readdir(path)) await handOver(join(path, name), owner);
}

/** A folder the server writes after it gave up root (the per-host image cache): made if missing, 0700, owned by `owner` with what is in it. */
export async function ownedFolder(dir: string, owner: FileOwner): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await handOver(dir, owner);
  await chmod(dir, 0o700);
}

/**
 * Make `owner` the owner of the folder itself, not of its files, group and
 * mode unchanged: the admin API writes a profile as a new file renamed over
 * the old one, which needs write access to the folder only.
 */
export async function ownFolderItself(dir: string, owner: FileOwner): Promise<void> {
  const info = await lstat(dir);
  if (info.uid !== owner.uid) await chown(dir, owner.uid, info.gid);
}
