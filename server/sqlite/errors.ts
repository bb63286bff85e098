/** How opening a store's SQLite file failed, as the stores' errors name it. */
export type OpenFailure = 'LOCKED' | 'CORRUPT' | 'OPEN';

/**
 * A store's error for what better-sqlite3 threw while opening or reading its
 * file: a lock held by another process (another rackboot on the same state
 * folder), a file that is not a usable database (with what to do about it:
 * `whenCorrupt`), or anything else as it came. An error the store made
 * itself (`isOwn`) passes through.
 */
export function storeOpenError<E extends Error>(
  error: unknown,
  isOwn: (error: unknown) => error is E,
  make: (code: OpenFailure, message: string, cause: unknown) => E,
  whenCorrupt: string,
): E {
  if (isOwn(error)) return error;
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return make('LOCKED', `locked by another process (is another rackboot serving from this state folder?): ${message}`, error);
  }
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') return make('CORRUPT', `not a usable SQLite database (${message}); ${whenCorrupt}`, error);
  return make('OPEN', message, error);
}
