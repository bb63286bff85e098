/**
 * Passwords from a pgpass file (PGPASSFILE, else ~/.pgpass), read as libpq
 * reads them: the first line whose host, port, database and user match
 * the connection ("*" matches anything), fields split at ":" with "\:"
 * and "\\" as escapes, "#" lines ignored. A file that group or others may
 * read is not used: libpq ignores it with a warning; rackboot says so in
 * the connection's error, naming the file.
 *
 * Why not pg's own pgpass support: pg deprecates it (pg 9 drops it), and
 * its misses say nothing; this one names the file and the connection.
 */
import { readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface PgpassTarget {
  /** A host name, an address, or a Unix socket's folder (starts with "/"). */
  host: string;
  port: number;
  database: string;
  user: string;
}

/** The fields of one pgpass line, unescaped; undefined for comments, blank lines and lines of fewer than five fields. */
export function parsePgpassLine(line: string): [string, string, string, string, string] | undefined {
  if (line.startsWith('#') || line.trim() === '') return undefined;
  const fields: string[] = [];
  let field = '';
  for (let i = 0; i < line.length; i += 1) {
    const char = line[i]!;
    if (char === '\\' && i + 1 < line.length) {
      field += line[i + 1];
      i += 1;
    } else if (char === ':' && fields.length < 4) {
      fields.push(field);
      field = '';
    } else {
      field += char;
    }
  }
  fields.push(field);
  return fields.length === 5 ? (fields as [string, string, string, string, string]) : undefined;
}

/** The password of the first line of `text` that matches `target`, or undefined. Pure. */
export function pgpassPassword(text: string, target: PgpassTarget): string | undefined {
  // "localhost" also stands for a Unix socket, as in libpq.
  const host = target.host.startsWith('/') ? 'localhost' : target.host;
  const wanted = [host, String(target.port), target.database, target.user];
  for (const line of text.split(/\r?\n/)) {
    const fields = parsePgpassLine(line);
    if (fields === undefined) continue;
    if (wanted.every((value, i) => fields[i] === '*' || fields[i] === value)) return fields[4];
  }
  return undefined;
}

/** The pgpass file libpq would read: PGPASSFILE, else ~/.pgpass. */
export function pgpassFileName(env: NodeJS.ProcessEnv = process.env): string {
  return env.PGPASSFILE || join(env.HOME || homedir(), '.pgpass');
}

/**
 * The password for `target` from the pgpass file: undefined when there is
 * no such file or no line matches; an error naming the file when it cannot
 * be read or others may read it.
 */
export async function readPgpassPassword(target: PgpassTarget, env: NodeJS.ProcessEnv = process.env): Promise<{ file: string; password: string | undefined }> {
  const file = pgpassFileName(env);
  let info;
  try {
    info = await stat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { file, password: undefined };
    throw new Error(`password file ${file}: ${(error as Error).message}`, { cause: error });
  }
  if (!info.isFile()) throw new Error(`password file ${file} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(
      `password file ${file} may be read by group or others (mode ${(info.mode & 0o777).toString(8)}); make it u=rw (chmod 0600), as libpq wants`,
    );
  }
  const text = await readFile(file, 'utf8').catch((error: Error) => {
    throw new Error(`password file ${file}: ${error.message}`, { cause: error });
  });
  return { file, password: pgpassPassword(text, target) };
}
