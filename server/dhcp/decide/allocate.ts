/**
 * The pool search of full mode's DHCPDISCOVER, for a client without a
 * reservation: which pool address to offer. Pure: it reads the leases and
 * the allocation cursors it is handed and says what to change.
 */
import { ipv4ToNumber, isIpv4, numberToIpv4, type Subnet } from '../../net/ipv4.js';
import { holdsAddress, type Lease, type LeaseChange, type LeaseStore } from '../leases/leases.js';
import type { AddressRange, AllocationCursor } from './types.js';

/**
 * An address to offer, with the changes that make it free (and why) and,
 * for a never-used address, where the pool's next search starts; or why
 * there is none.
 */
export type Allocation = { address: string; changes: LeaseChange[]; note?: string; cursor?: AllocationCursor } | { reason: string };

export function inPool(pool: AddressRange | undefined, address: string): boolean {
  if (pool === undefined || !isIpv4(address)) return false;
  const n = ipv4ToNumber(address);
  return n >= ipv4ToNumber(pool.start) && n <= ipv4ToNumber(pool.end);
}

/** The record of an address when another client than `mac` holds it at `now`, or it is quarantined. */
export function heldByOther(leases: Pick<LeaseStore, 'byAddress'>, address: string, mac: string, now: number): Lease | undefined {
  const record = leases.byAddress(address);
  if (record === undefined || !holdsAddress(record, now)) return undefined;
  return record.mac !== mac || record.state === 'declined' ? record : undefined;
}

/** What the pool search reads: the pool, the client, the leases and the addresses nobody gets. */
export interface PoolSearch {
  pool: AddressRange;
  subnet: Subnet;
  mac: string;
  /** The address the client asks for (option 50). */
  requested: string | undefined;
  now: number;
  leases: Pick<LeaseStore, 'byMac' | 'byAddress' | 'all'>;
  /** Where each pool's search for a never-used address starts (DhcpContext.allocationCursors). */
  cursors: ReadonlyMap<string, number> | undefined;
  /** The server's or the router's address: given to nobody. */
  isInfrastructure(address: string): boolean;
  /** Who an address is reserved for, if anyone: the pool never gives it to another client. */
  reservationOwner(address: string): string | undefined;
  /**
   * Servers sharing the pool through one database: whether this server
   * gives out this never-used address first (each server its own share, so
   * two servers rarely race for one address); the others' come after.
   */
  prefers?: ((address: string) => boolean) | undefined;
}

/**
 * The pool address to offer: the client's previous address, the one it
 * asks for (option 50), an address never given out, the address free the
 * longest, and last the oldest unanswered offer to another client (so a
 * flood of DISCOVERs with made-up MACs cannot lock the pool; that client
 * gets a NAK if it asks).
 */
export function allocateFromPool(search: PoolSearch): Allocation {
  const { pool, subnet, mac, now, leases } = search;
  const usable = (address: string) =>
    inPool(pool, address) &&
    subnet.isHostAddress(address) &&
    !search.isInfrastructure(address) &&
    search.reservationOwner(address) === undefined &&
    heldByOther(leases, address, mac, now) === undefined;

  const previous = leases.byMac(mac)?.address;
  if (previous !== undefined && usable(previous)) return { address: previous, changes: [] };
  const { requested } = search;
  if (requested !== undefined && usable(requested)) return { address: requested, changes: [] };

  // An address never given out, searched from where the last search for
  // one stopped (wrapping round the pool), so a busy pool costs one lookup
  // per new client instead of a walk over every address handed out before.
  let longestFree: Lease | undefined;
  let notPreferred: Allocation | undefined;
  const start = ipv4ToNumber(pool.start);
  const size = ipv4ToNumber(pool.end) - start + 1;
  const cursorKey = `${pool.start}-${pool.end}`;
  const from = search.cursors?.get(cursorKey) ?? 0;
  for (let i = 0; i < size; i++) {
    const offset = (from + i) % size;
    const address = numberToIpv4(start + offset);
    if (!subnet.isHostAddress(address) || search.isInfrastructure(address)) continue;
    if (search.reservationOwner(address) !== undefined) continue;
    const record = leases.byAddress(address);
    if (record === undefined) {
      const found = { address, changes: [], cursor: { pool: cursorKey, next: (offset + 1) % size } };
      if (search.prefers === undefined || search.prefers(address)) return found;
      notPreferred ??= { address, changes: [] };
      continue;
    }
    if (holdsAddress(record, now) && (record.mac !== mac || record.state === 'declined')) continue;
    if (longestFree === undefined || record.expiresAt < longestFree.expiresAt) longestFree = record;
  }
  if (notPreferred !== undefined) return notPreferred;
  if (longestFree !== undefined) return { address: longestFree.address, changes: [] };

  const oldestOffer = leases
    .all()
    .filter(
      (record) => record.state === 'offered' && record.mac !== mac && inPool(pool, record.address) && search.reservationOwner(record.address) === undefined,
    )
    .sort((a, b) => a.expiresAt - b.expiresAt)[0];
  if (oldestOffer !== undefined) {
    return { address: oldestOffer.address, changes: [{ kind: 'remove', address: oldestOffer.address }] };
  }
  return { reason: `no free address in the pool ${pool.start}-${pool.end}` };
}
