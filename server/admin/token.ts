import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The admin API's bearer token: made once, at the first start, in the state
 * folder as `admin.token` with mode 0600 (root reads it; the CLI on the same
 * host reads it too). It stays the same across restarts; deleting the file
 * and restarting makes a new one.
 */
export const adminTokenFileName = 'admin.token';

/** 32 random bytes, base64url: 43 characters. Shorter files were not made by rackboot. */
const minimumTokenLength = 32;

export class AdminTokenError extends Error {
  override readonly name = 'AdminTokenError';
}

export interface AdminToken {
  /** Path of the token file. */
  file: string;
  /** True when this call made the file. */
  created: boolean;
  /** True when the file was readable by others and has been set back to 0600. */
  tightened: boolean;
  /** Constant-time check of a presented token. */
  matches(presented: string): boolean;
}

export async function loadOrCreateAdminToken(stateDir: string): Promise<AdminToken> {
  const { file, value: token, created, tightened } = await loadOrCreateSecret(stateDir, adminTokenFileName);
  const expected = digest(token);
  return {
    file,
    created,
    tightened,
    matches: (presented) => timingSafeEqual(digest(presented), expected),
  };
}

/**
 * The admin token servers on one database share (postgres/secrets.ts),
 * written to this server's state folder as `admin.token` (mode 0600, in
 * place of another) so the CLI on this host finds it as it always does.
 */
export async function adoptSharedAdminToken(stateDir: string, token: string, created: boolean): Promise<AdminToken> {
  await mkdir(stateDir, { recursive: true });
  const file = join(stateDir, adminTokenFileName);
  const current = await readFile(file, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  if (current !== token) {
    const temporary = `${file}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w', 0o600);
    try {
      await handle.writeFile(`${token}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  }
  const expected = digest(token);
  return { file, created, tightened: false, matches: (presented) => timingSafeEqual(digest(presented), expected) };
}

/**
 * A random secret kept in a file of the state folder, mode 0600: made the
 * first time (with 'wx', so two servers starting at once never overwrite
 * each other's), read after that. A file readable by others is set back to
 * 0600; one without a usable secret is refused, naming the file.
 */
export async function loadOrCreateSecret(stateDir: string, name: string): Promise<{ file: string; value: string; created: boolean; tightened: boolean }> {
  await mkdir(stateDir, { recursive: true });
  const file = join(stateDir, name);
  let created = false;
  try {
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(`${randomBytes(32).toString('base64url')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    created = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AdminTokenError(`${file}: cannot create: ${(error as Error).message}`, { cause: error });
    }
  }

  let tightened = false;
  const info = await stat(file);
  if (!info.isFile()) throw new AdminTokenError(`${file}: is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    await chmod(file, 0o600);
    tightened = true;
  }
  const value = (await readFile(file, 'utf8')).trim();
  if (value.length < minimumTokenLength || /\s/.test(value)) {
    throw new AdminTokenError(`${file}: holds no valid token (want at least ${minimumTokenLength} characters on one line); delete it to make a new one`);
  }
  return { file, value, created, tightened };
}

/** Read the token of a state folder, for the CLI talking to a running server. */
export async function readAdminToken(stateDir: string): Promise<string> {
  const file = join(stateDir, adminTokenFileName);
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new AdminTokenError(`${file}: cannot read the admin token (${(error as Error).message}); is --state the server's state folder?`, {
      cause: error,
    });
  }
}

/** Compare digests, not tokens: timingSafeEqual needs equal lengths, and the length must not leak either. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
