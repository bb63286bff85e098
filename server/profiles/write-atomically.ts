import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/** Write a file so that readers see the old text or the new one, never a part. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const slash = path.lastIndexOf('/');
  // A hidden name: the profile directory ignores dot files while it is being written.
  const temp = `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}.${randomBytes(6).toString('hex')}.tmp`;
  // 0600: a profile may hold a root password hash.
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
