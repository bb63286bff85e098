/**
 * Tokens out of hosts' log lines. A kernel prints its command line, which
 * carries its boot's token (rackboot.token=, for dom0 and for each guest),
 * and klogd and the guests' consoles send it on: the log store keeps the
 * line with the token's value replaced. Pure.
 */

/** rackboot's host tokens (tokens/host-token.ts): boot `b.`, guest `g.` and image `i.`, each a nonce and a signature. */
const token = /\b[bgi]\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_.-]{22,}/g;
/** A token on a kernel command line, whatever it looks like. */
const tokenArgument = /\b(rackboot\.token=)\S+/g;

export const redacted = '(not kept)';

export function redactTokens(text: string): string {
  if (!text.includes('.')) return text;
  return text.replace(tokenArgument, `$1${redacted}`).replace(token, redacted);
}
