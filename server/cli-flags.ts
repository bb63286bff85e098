import { isIPv4 } from 'node:net';
import { closest } from './text/closest.js';

/**
 * Checks of command-line values that yargs' own types let through: "eighty"
 * and "69x" for a port (yargs makes them NaN), -5 seconds, 0 transfers, an
 * address that is not one. Each problem names the flag and the text given,
 * as typed. Pure: the CLI hands in the parsed values and the raw arguments.
 */

export interface NumberRule {
  /** Smallest value allowed (inclusive), or above which values must lie when `above` is set. */
  min: number;
  max?: number;
  integer: boolean;
  /** The value must be greater than `min`, not equal to it. */
  above?: boolean;
  /** What the number counts, for the message: "seconds", "builds". */
  unit?: string;
  /** What it is, when not "a (whole) number": "a port number". */
  noun?: string;
}

// 0 asks for any free port (tests do).
const port: NumberRule = { min: 0, max: 65535, integer: true, noun: 'a port number' };
const count: NumberRule = { min: 1, integer: true };

/** `rackboot serve`'s numeric flags and what each takes. */
export const serveNumberFlags: Readonly<Record<string, NumberRule>> = {
  'http-port': port,
  'tftp-port': port,
  'syslog-port': port,
  'keep-log-mb': count,
  'dhcp-port': port,
  'lease-time': { min: 60, integer: true, unit: 'seconds' },
  'first-lease-time': { min: 60, integer: true, unit: 'seconds' },
  'dhcp-new-clients-per-second': { min: 0, above: true, integer: false },
  'tftp-max-transfers': count,
  'tftp-max-per-client': count,
  'keep-days': { min: 0, above: true, integer: false, unit: 'days' },
  'keep-events': count,
  'http-max-connections': count,
  'http-max-per-address': count,
  'unknown-hosts-max': count,
  'unknown-hosts-hours': { min: 0, above: true, integer: false, unit: 'hours' },
  'host-image-cache-mb': count,
  'drain-seconds': { min: 0, integer: false, unit: 'seconds' },
};

/** The text given for `--flag` on the command line (`--flag=x` or `--flag x`), last one wins; undefined when absent. */
export function rawFlagText(args: readonly string[], flag: string): string | undefined {
  let text: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg.startsWith(`--${flag}=`)) text = arg.slice(flag.length + 3);
    else if (arg === `--${flag}` && i + 1 < args.length) text = args[i + 1];
  }
  return text;
}

function describeRule(rule: NumberRule): string {
  const kind = rule.noun ?? (rule.integer ? 'a whole number' : 'a number');
  const range = rule.above ? `above ${rule.min}` : rule.max !== undefined ? `from ${rule.min} to ${rule.max}` : `from ${rule.min}`;
  return `${kind}${rule.unit ? ` of ${rule.unit}` : ''} ${range}`;
}

/** The first numeric flag whose value breaks its rule, as a message; undefined when all are good. */
export function checkNumberFlags(
  values: Readonly<Record<string, unknown>>,
  rules: Readonly<Record<string, NumberRule>>,
  args: readonly string[],
): string | undefined {
  for (const [flag, rule] of Object.entries(rules)) {
    const value = values[flag];
    if (value === undefined) continue;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (!rule.integer || Number.isInteger(value)) &&
      (rule.above ? value > rule.min : value >= rule.min) &&
      (rule.max === undefined || value <= rule.max);
    if (!ok) {
      const given = rawFlagText(args, flag) ?? String(value);
      return `--${flag} ${JSON.stringify(given)}: want ${describeRule(rule)}`;
    }
  }
  return undefined;
}

/** Flags that hold one IPv4 address, or a list of them; and --pool's START-END. */
export function checkAddressFlags(values: {
  address?: string;
  router?: string;
  'tftp-server'?: string;
  dns?: readonly string[];
  pool?: string;
}): string | undefined {
  for (const flag of ['address', 'router', 'tftp-server'] as const) {
    const value = values[flag];
    if (value !== undefined && !isIPv4(value)) return `--${flag} ${JSON.stringify(value)}: want an IPv4 address, such as 198.18.0.1`;
  }
  for (const value of values.dns ?? []) {
    if (!isIPv4(value)) return `--dns ${JSON.stringify(value)}: want an IPv4 address`;
  }
  if (values.pool !== undefined) {
    const [start, end, ...rest] = values.pool.split('-');
    if (rest.length > 0 || start === undefined || end === undefined || !isIPv4(start) || !isIPv4(end)) {
      return `--pool ${JSON.stringify(values.pool)}: want START-END, two IPv4 addresses, such as 198.18.0.100-198.18.0.150`;
    }
  }
  return undefined;
}

/**
 * Flags on the command line that the command does not know, each with the
 * known flag it most likely meant. `known` holds the command's option names
 * (dashed, without "--"); booleans may also be given as --no-NAME.
 */
export function unknownFlags(args: readonly string[], known: readonly string[]): Array<{ flag: string; suggestion?: string }> {
  const names = new Set(known);
  const found: Array<{ flag: string; suggestion?: string }> = [];
  for (const arg of args) {
    if (arg === '--') break;
    if (!arg.startsWith('--') || arg.length <= 2) continue;
    const name = arg.slice(2).split('=')[0]!;
    if (names.has(name) || (name.startsWith('no-') && names.has(name.slice(3)))) continue;
    const suggestion = closest(name, known);
    found.push({ flag: `--${name}`, ...(suggestion ? { suggestion: `--${suggestion}` } : {}) });
  }
  return found;
}

/** `--server` as given: a URL, or a host name or address (and port) with http:// implied. */
export function serverUrl(given: string): URL {
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`--server ${JSON.stringify(given)}: want the server's HTTP address, such as 198.18.0.1 or http://198.18.0.1:8080`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--server ${JSON.stringify(given)}: want an http:// or https:// address`);
  return url;
}
