/**
 * A problem with one profile file, pointing at the place to fix it. Lines and
 * columns are 1-based, as editors and compilers print them.
 */
export interface ProfileError {
  /** The file, as passed to parseProfile (the store passes `<dir>/<name>`). */
  file: string;
  line: number;
  column: number;
  /** Dotted path of the field ("network.address", "dns.1"); '' for YAML syntax errors and whole-file problems. */
  field: string;
  message: string;
}

/**
 * The compiler-style one-liner used in logs and the CLI:
 *   profiles/node01.yaml:4:12: network.address: "198.18.0.500/24" is not an IPv4 address with a prefix (want a.b.c.d/n)
 * Errors without a field leave that part out:
 *   profiles/node01.yaml:3:1: Map keys must be unique
 */
export function formatProfileError(error: ProfileError): string {
  const where = `${error.file}:${error.line}:${error.column}`;
  return error.field === '' ? `${where}: ${error.message}` : `${where}: ${error.field}: ${error.message}`;
}

/** Order errors as they appear in their files, so output reads top to bottom. */
export function compareProfileErrors(a: ProfileError, b: ProfileError): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return a.line - b.line || a.column - b.column;
}

/** The most problems one log burst or one API answer lists; the rest are only counted. */
export const maxListedProblems = 20;

/** The first `max` problems, and how many more there were. */
export function firstProblems<T>(problems: readonly T[], max = maxListedProblems): { shown: T[]; more: number } {
  return { shown: problems.slice(0, max), more: Math.max(0, problems.length - max) };
}
