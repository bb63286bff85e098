/**
 * Leases: who holds which address until when. The store is synchronous on
 * purpose: decide() reads it and the server applies the changes decide()
 * returns before the next packet is read, so two clients can never be given
 * the same address between a read and a write. (A SQLite store fits behind
 * this interface with better-sqlite3 or node:sqlite, both synchronous.)
 *
 * Invariants every store keeps, checked by test/dhcp/lease-store-contract.ts:
 * - at most one record per address, and at most one client lease per MAC;
 * - upsert never lets a second client hold an address someone holds now.
 */

/**
 * - offered: held for a client between OFFER and REQUEST (the offer hold);
 * - bound: ACKed, held until the lease ends;
 * - released / expired: no longer held, remembered so the client gets the same address back;
 * - declined: a client reported the address in use (DHCPDECLINE); quarantined, nobody gets it.
 */
export type LeaseState = 'offered' | 'bound' | 'released' | 'expired' | 'declined';

export interface Lease {
  /** Normalised MAC; for a declined record, the client that declined. */
  mac: string;
  address: string;
  state: LeaseState;
  /** Milliseconds since the epoch at which the hold ends (or ended). */
  expiresAt: number;
  hostname?: string;
}

/** Whether the record keeps the address from everyone else at `now`. */
export function holdsAddress(lease: Lease, now: number): boolean {
  return (lease.state === 'offered' || lease.state === 'bound' || lease.state === 'declined') && lease.expiresAt > now;
}

export class LeaseConflictError extends Error {
  override readonly name = 'LeaseConflictError';
  constructor(
    readonly address: string,
    readonly heldBy: Lease,
    readonly wantedBy: string,
  ) {
    super(`${address} is held by ${heldBy.mac} (${heldBy.state} until ${new Date(heldBy.expiresAt).toISOString()}); ${wantedBy} cannot have it`);
  }
}

export interface LeaseStore {
  /** The client's lease record (never a declined record), whatever its state. */
  byMac(mac: string): Lease | undefined;
  /** The record of an address, whatever its state. */
  byAddress(address: string): Lease | undefined;
  /**
   * Inserts or replaces the client's record, or for state 'declined' the
   * address's quarantine record. A client keeps one record: its record for
   * another address is dropped. A stale record of the address (not held at
   * `now`) is replaced. Throws LeaseConflictError when the address is held at
   * `now` by another client, or quarantined.
   */
  upsert(lease: Lease, now: number): void;
  /** Marks the client's lease released as of `now`; returns the updated record. */
  release(mac: string, now: number): Lease | undefined;
  /** Drops the record of an address. */
  remove(address: string): void;
  all(): Lease[];
  /**
   * Ends the holds that have run out by `now`: offers and quarantines are
   * dropped, bound leases become 'expired'. Returns the records as they were.
   */
  expire(now: number): Lease[];
}

/** A change decide() asks for; the server applies it with applyLeaseChanges. */
export type LeaseChange =
  | { kind: 'upsert'; lease: Lease }
  | { kind: 'release'; mac: string }
  | { kind: 'remove'; address: string };

export function applyLeaseChanges(store: LeaseStore, changes: readonly LeaseChange[], now: number): void {
  for (const change of changes) {
    switch (change.kind) {
      case 'upsert':
        store.upsert(change.lease, now);
        break;
      case 'release':
        store.release(change.mac, now);
        break;
      case 'remove':
        store.remove(change.address);
        break;
    }
  }
}

/** Leases in memory; gone when the process ends. */
export class MemoryLeaseStore implements LeaseStore {
  private readonly records = new Map<string, Lease>();
  private readonly addressOfMac = new Map<string, string>();

  byMac(mac: string): Lease | undefined {
    const address = this.addressOfMac.get(mac);
    const record = address === undefined ? undefined : this.records.get(address);
    return record && { ...record };
  }

  byAddress(address: string): Lease | undefined {
    const record = this.records.get(address);
    return record && { ...record };
  }

  upsert(lease: Lease, now: number): void {
    const current = this.records.get(lease.address);
    if (current !== undefined && holdsAddress(current, now)) {
      const quarantined = current.state === 'declined' && lease.state !== 'declined';
      if (current.mac !== lease.mac || quarantined) throw new LeaseConflictError(lease.address, { ...current }, lease.mac);
    }
    if (current !== undefined && this.addressOfMac.get(current.mac) === current.address) {
      this.addressOfMac.delete(current.mac);
    }
    if (lease.state !== 'declined') {
      const previous = this.addressOfMac.get(lease.mac);
      if (previous !== undefined && previous !== lease.address) this.records.delete(previous);
      this.addressOfMac.set(lease.mac, lease.address);
    }
    this.records.set(lease.address, { ...lease });
  }

  release(mac: string, now: number): Lease | undefined {
    const address = this.addressOfMac.get(mac);
    const record = address === undefined ? undefined : this.records.get(address);
    if (record === undefined) return undefined;
    if (record.state === 'offered' || record.state === 'bound') {
      record.state = 'released';
      record.expiresAt = now;
    }
    return { ...record };
  }

  remove(address: string): void {
    const record = this.records.get(address);
    if (record === undefined) return;
    this.records.delete(address);
    if (this.addressOfMac.get(record.mac) === address) this.addressOfMac.delete(record.mac);
  }

  all(): Lease[] {
    return [...this.records.values()].map((record) => ({ ...record }));
  }

  expire(now: number): Lease[] {
    const ended: Lease[] = [];
    for (const record of [...this.records.values()]) {
      if (record.expiresAt > now) continue;
      if (record.state === 'offered' || record.state === 'declined') {
        ended.push({ ...record });
        this.remove(record.address);
      } else if (record.state === 'bound') {
        ended.push({ ...record });
        record.state = 'expired';
      }
    }
    return ended;
  }
}
