import { realpath } from 'node:fs/promises';
import { resolve as resolvePath, sep } from 'node:path';
import { fileFromDisk, type TftpFile } from './file.js';

/** A request that, once symbolic links are followed, leads out of the served folder. */
export class OutsideRootError extends Error {
  override readonly name = 'OutsideRootError';
  readonly code = 'EOUTSIDEROOT';
  constructor(readonly path: string) {
    super(`${path} leads outside the served folder`);
  }
}

/**
 * The file at a normalised request path (see normaliseRequestPath) inside
 * `root`, for a TftpServer resolve(). Undefined when there is none.
 *
 * The path is checked twice: as written (no `..` may climb out, whatever
 * the caller passes) and after every symbolic link is followed (realpath),
 * so a link inside the folder that points outside it, to /etc or to
 * /dev/zero, is refused with OutsideRootError. A link that stays inside is
 * served. What it finally names must be a regular file (fileFromDisk:
 * NotRegularFileError otherwise): no directories, FIFOs or devices, even
 * ones inside the folder.
 */
export async function fileInRoot(root: string, path: string): Promise<TftpFile | undefined> {
  const realRoot = await realpath(root);
  const wanted = resolvePath(realRoot, path);
  if (!isInside(realRoot, wanted)) throw new OutsideRootError(path);
  let real: string;
  try {
    real = await realpath(wanted);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
  if (!isInside(realRoot, real)) throw new OutsideRootError(path);
  return fileFromDisk(real);
}

function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}
