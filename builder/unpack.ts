import { lstat, readlink } from 'node:fs/promises';
import { isAbsolute, join, posix, relative } from 'node:path';
import { BuildStepError } from './errors.js';
import { runCommand } from './exec.js';

/** Unpack a .deb's files (not its scripts) into a folder, as `dpkg -x` does. */
export async function unpackDeb(debPath: string, into: string, pkg: string): Promise<void> {
  try {
    await runCommand('dpkg-deb', ['-x', debPath, into]);
  } catch (error) {
    throw new BuildStepError('unpack', pkg, error instanceof Error ? error.message : String(error), { cause: error });
  }
}

/**
 * The real location of `path` (absolute, as inside the package) under an
 * unpacked root, following symlinks the way they would resolve on the
 * installed system: Debian's ipxe ships /usr/lib/ipxe/ipxe.efi ->
 * /boot/ipxe.efi, which must not be read from the build machine's /boot.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  let parts = path.split('/').filter(Boolean);
  const done: string[] = [];
  for (let hops = 0; parts.length > 0;) {
    const part = parts.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = join(root, ...done, part);
    let isLink = false;
    try {
      isLink = (await lstat(candidate)).isSymbolicLink();
    } catch {
      throw new Error(`${path} is not in the unpacked package (no ${posix.join('/', ...done, part)})`);
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++hops > 40) throw new Error(`${path}: too many symbolic links`);
    const target = await readlink(candidate);
    const rest = target.split('/').filter(Boolean);
    if (isAbsolute(target)) done.length = 0;
    parts = [...rest, ...parts];
  }
  const resolved = join(root, ...done);
  if (relative(root, resolved).startsWith('..')) throw new Error(`${path} resolves outside the unpacked package`);
  return resolved;
}
