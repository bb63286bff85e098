/**
 * The lease table as `rackboot leases` prints it: pure rendering of records
 * already read, as aligned text or as JSON.
 */
import { ipv4ToNumber, isIpv4 } from '../../net/ipv4.js';
import { holdsAddress, type Lease } from './leases.js';

/** One row of `rackboot leases --json`. */
export interface LeaseRow {
  mac: string;
  address: string;
  state: Lease['state'];
  /** ISO 8601, UTC. */
  expires: string;
  /** Whether the record keeps the address from other clients at the time of reading. */
  holdsAddress: boolean;
  hostname: string | null;
  /** From a PostgreSQL database: the server that made the record's last change, and when. */
  server?: string | null;
  changed?: string | null;
}

/** A record as read: from PostgreSQL it also names the server of its last change. */
type ReadLease = Lease & { server?: string | null; changedAt?: string | null };

/** Records in address order (numerically, 198.18.0.9 before 198.18.0.10). */
export function leaseRows(leases: readonly ReadLease[], now: number): LeaseRow[] {
  const key = (address: string) => (isIpv4(address) ? ipv4ToNumber(address) : Number.MAX_SAFE_INTEGER);
  return [...leases]
    .sort((a, b) => key(a.address) - key(b.address) || a.address.localeCompare(b.address))
    .map((lease) => ({
      mac: lease.mac,
      address: lease.address,
      state: lease.state,
      expires: new Date(lease.expiresAt).toISOString(),
      holdsAddress: holdsAddress(lease, now),
      hostname: lease.hostname ?? null,
      ...(lease.server === undefined ? {} : { server: lease.server, changed: lease.changedAt ?? null }),
    }));
}

/** "in 59m 58s", "3m 2s ago": how far the expiry is from now. */
export function describeExpiry(expiresAt: number, now: number): string {
  const seconds = Math.round(Math.abs(expiresAt - now) / 1000);
  const units: Array<[string, number]> = [
    ['d', Math.floor(seconds / 86_400)],
    ['h', Math.floor((seconds % 86_400) / 3600)],
    ['m', Math.floor((seconds % 3600) / 60)],
    ['s', seconds % 60],
  ];
  // The largest unit that is not zero and the one after it: "1h 0m", "59m 58s", "5s".
  const largest = units.findIndex(([, value]) => value > 0);
  const first = largest < 0 ? units.length - 1 : largest;
  const span = units
    .slice(first, first + 2)
    .map(([unit, value]) => `${value}${unit}`)
    .join(' ');
  return expiresAt > now ? `in ${span}` : `${span} ago`;
}

/** An aligned text table, one line per record, with a header; a note when there is none. */
export function renderLeaseTable(leases: readonly ReadLease[], now: number): string {
  if (leases.length === 0) return 'no leases\n';
  // From PostgreSQL: which server made each record's last change.
  const servers = leases.some((lease) => lease.server !== undefined);
  const header = ['MAC', 'ADDRESS', 'STATE', 'EXPIRES (UTC)', 'ENDS', ...(servers ? ['SERVER'] : []), 'HOSTNAME'];
  const body = leaseRows(leases, now).map((row) => [
    row.mac,
    row.address,
    row.state,
    row.expires.replace('T', ' ').replace(/\.\d+Z$/, ''),
    describeExpiry(Date.parse(row.expires), now),
    ...(servers ? [row.server ?? '-'] : []),
    row.hostname ?? '-',
  ]);
  const widths = header.map((_, column) => Math.max(...[header, ...body].map((cells) => cells[column]!.length)));
  const line = (cells: string[]) => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return `${[header, ...body].map(line).join('\n')}\n`;
}
