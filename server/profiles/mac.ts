/**
 * MAC addresses as profiles and packets spell them.
 *
 * Accepted forms (any letter case):
 *   52:54:00:12:34:56   colons, as Linux and most firmware print it
 *   52-54-00-12-34-56   dashes, as Windows and some BMC web pages print it
 *   525400123456        twelve hex digits, as switch tables and `{mac}` host names show it
 * Rejected: mixed separators, Cisco's dotted form (5254.0012.3456), one-digit
 * groups (52:54:0:12:34:56) and anything that is not 48 bits; each of these is
 * more likely a typo than a MAC.
 */

const separated = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;
const bare = /^([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i;

/** The MAC in canonical form (lower case, colon separated), or undefined if `text` is not one. */
export function normaliseMac(text: string): string | undefined {
  const trimmed = text.trim();
  const withSeparators = separated.exec(trimmed);
  if (withSeparators) {
    const [, a, , b, c, d, e, f] = withSeparators;
    return [a, b, c, d, e, f].join(':').toLowerCase();
  }
  const withoutSeparators = bare.exec(trimmed);
  if (withoutSeparators) return withoutSeparators.slice(1).join(':').toLowerCase();
  return undefined;
}
