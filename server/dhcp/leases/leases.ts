/**
 * Leases: who holds which address until when. The store is synchronous on
 * purpose: decide() reads it and the server applies the changes decide()
 * returns before the next request is decided, so two clients can never be
 * given the same address between a read and a write. (SqliteLeaseStore
 * fits behind it with better-sqlite3; only the fsync that makes a batch
 * durable is asynchronous, see transactionSyncedLater.)
 *
 * Invariants every store keeps, checked by test/dhcp/lease-store-contract.ts:
 * - at most one record per address, and at most one client lease per MAC;
 * - upsert never lets a second client hold an address someone holds now;
 * - a bound lease (what a DHCPACK promises) is only written in a durable
 *   transaction, so it is on stable storage before the ACK leaves.
 *
 * Group commit: the server decides a whole batch of requests inside one
 * transaction() (each request in a nested one, so a refused change undoes
 * only that request) and a durable store commits the batch with one fsync
 * before any reply of the batch is sent.
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

/**
 * transactionSyncedLater's `synced` when only some of the transactions
 * nested in its work were kept (a store several servers share refuses a
 * change another server's conflicts with): `refused` holds, by the order
 * of each nested call (the first is 1), why it was not kept; every other
 * nested transaction was kept.
 */
export class PartialCommitError extends Error {
  override readonly name = 'PartialCommitError';
  constructor(readonly refused: ReadonlyMap<number, Error>) {
    super(
      `${refused.size} of the batch's changes refused: ${[...refused.values()]
        .slice(0, 3)
        .map((error) => error.message)
        .join('; ')}${refused.size > 3 ? '; …' : ''}`,
    );
  }
}

export interface TransactionOptions {
  /** Commit to stable storage before returning (needed to write a bound lease). Default false. */
  durable?: boolean;
}

/** A bound lease (or a durable transaction) asked for inside a transaction that is not durable: a bug in the caller. */
export class NotDurableError extends Error {
  override readonly name = 'NotDurableError';
}

export function notDurable(lease: Lease): NotDurableError {
  return new NotDurableError(`bound lease of ${lease.address} for ${lease.mac} written in a transaction that is not durable`);
}

export interface LeaseStore {
  /**
   * Commits travel to a database other servers share (PostgreSQL): even a
   * batch with no ACK in it waits for transactionSyncedLater's `synced`
   * before its replies go, so no offer names an address the database
   * gave someone else.
   */
  readonly commitsRemotely?: boolean;
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
  /** Every record, in address order (as text, as SQL's ORDER BY sorts it). */
  all(): Lease[];
  /**
   * Runs `work` as one unit: when it throws, every change it made is undone
   * and the error is rethrown; reads inside see the changes made so far. A
   * nested call undoes only its own changes when it throws, and commits with
   * the outermost one. The outermost call returns only once the unit is
   * committed; with `durable` it is then on stable storage (a store that
   * keeps nothing across restarts has nothing to sync). Throws, with
   * nothing committed, when the commit fails. Writing a bound lease in a
   * transaction that is not durable throws NotDurableError; so does a
   * durable transaction nested in one that is not.
   */
  transaction<T>(work: () => T, options?: TransactionOptions): T;
  /**
   * Group commit with the sync in the background: runs `work` as a durable
   * transaction (bound leases allowed) and returns once it is committed,
   * before it is on stable storage; `synced` resolves once it is, or
   * rejects if it cannot be. The caller keeps every promise that depends
   * on the transaction (the DHCPACKs) until `synced` resolves, and may run
   * further transactions meanwhile: their reads see this one's writes.
   * `synced` rejects with PartialCommitError when only some of the
   * transactions nested directly in `work` were kept.
   * Throws, with nothing committed, like transaction(); not nested.
   */
  transactionSyncedLater<T>(work: () => T): { result: T; synced: Promise<void> };
  /**
   * Ends the holds that have run out by `now`: offers and quarantines are
   * dropped, bound leases become 'expired'. Returns the records as they were.
   */
  expire(now: number): Lease[];
}

/** A change decide() asks for; the server applies it with applyLeaseChanges. */
export type LeaseChange = { kind: 'upsert'; lease: Lease } | { kind: 'release'; mac: string } | { kind: 'remove'; address: string };

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
  /**
   * While a transaction is open: how to undo each change made in it, in
   * order. Undoing a nested transaction runs its entries backwards.
   */
  private undo: Array<() => void> | undefined;
  private durable = false;

  transaction<T>(work: () => T, options: TransactionOptions = {}): T {
    const durable = options.durable === true;
    if (this.undo !== undefined) {
      if (durable && !this.durable) throw new NotDurableError('a durable transaction cannot nest inside one that is not durable');
      const mark = this.undo.length;
      try {
        return work();
      } catch (error) {
        this.rollBackTo(mark);
        throw error;
      }
    }
    this.undo = [];
    this.durable = durable;
    try {
      return work();
    } catch (error) {
      this.rollBackTo(0);
      throw error;
    } finally {
      this.undo = undefined;
      this.durable = false;
    }
  }

  transactionSyncedLater<T>(work: () => T): { result: T; synced: Promise<void> } {
    return { result: this.transaction(work, { durable: true }), synced: Promise.resolve() };
  }

  private rollBackTo(mark: number): void {
    const undo = this.undo!;
    while (undo.length > mark) undo.pop()!();
  }

  private setRecord(address: string, record: Lease): void {
    this.journal(this.records, address);
    this.records.set(address, record);
  }

  private deleteRecord(address: string): void {
    this.journal(this.records, address);
    this.records.delete(address);
  }

  private setAddressOfMac(mac: string, address: string): void {
    this.journal(this.addressOfMac, mac);
    this.addressOfMac.set(mac, address);
  }

  private deleteAddressOfMac(mac: string): void {
    this.journal(this.addressOfMac, mac);
    this.addressOfMac.delete(mac);
  }

  /** Records how to put map[key] back as it is now. Records are never changed in place, so keeping the object is enough. */
  private journal<V>(map: Map<string, V>, key: string): void {
    if (this.undo === undefined) return;
    const had = map.has(key);
    const value = map.get(key);
    this.undo.push(had ? () => map.set(key, value as V) : () => map.delete(key));
  }

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
    if (lease.state === 'bound' && this.undo !== undefined && !this.durable) throw notDurable(lease);
    const current = this.records.get(lease.address);
    if (current !== undefined && holdsAddress(current, now)) {
      const quarantined = current.state === 'declined' && lease.state !== 'declined';
      if (current.mac !== lease.mac || quarantined) throw new LeaseConflictError(lease.address, { ...current }, lease.mac);
    }
    if (current !== undefined && this.addressOfMac.get(current.mac) === current.address) {
      this.deleteAddressOfMac(current.mac);
    }
    if (lease.state !== 'declined') {
      const previous = this.addressOfMac.get(lease.mac);
      if (previous !== undefined && previous !== lease.address) this.deleteRecord(previous);
      this.setAddressOfMac(lease.mac, lease.address);
    }
    this.setRecord(lease.address, { ...lease });
  }

  release(mac: string, now: number): Lease | undefined {
    const address = this.addressOfMac.get(mac);
    const record = address === undefined ? undefined : this.records.get(address);
    if (record === undefined) return undefined;
    if (record.state === 'offered' || record.state === 'bound') {
      const released: Lease = { ...record, state: 'released', expiresAt: now };
      this.setRecord(record.address, released);
      return { ...released };
    }
    return { ...record };
  }

  remove(address: string): void {
    const record = this.records.get(address);
    if (record === undefined) return;
    this.deleteRecord(address);
    if (this.addressOfMac.get(record.mac) === address) this.deleteAddressOfMac(record.mac);
  }

  all(): Lease[] {
    const addresses = [...this.records.keys()].sort();
    return addresses.map((address) => ({ ...this.records.get(address)! }));
  }

  /**
   * Makes the records of `addresses` what another source says they are now
   * (`records`, each at one of those addresses), with no checks: for a view
   * kept in step with a database that is the authority (PostgresLeaseStore).
   * A client's record elsewhere gives way to its record here. Not inside a
   * transaction.
   */
  adopt(addresses: Iterable<string>, records: readonly Lease[]): void {
    if (this.undo !== undefined) throw new Error('adopt() inside a transaction');
    for (const address of addresses) this.remove(address);
    for (const record of records) {
      this.remove(record.address);
      if (record.state !== 'declined') {
        const elsewhere = this.addressOfMac.get(record.mac);
        if (elsewhere !== undefined) this.remove(elsewhere);
        this.addressOfMac.set(record.mac, record.address);
      }
      this.records.set(record.address, { ...record });
    }
  }

  /** Every record replaced by `records` (see adopt), except those at `keep`. */
  adoptAll(records: readonly Lease[], keep: ReadonlySet<string> = new Set()): void {
    const addresses = [...this.records.keys(), ...records.map((record) => record.address)].filter((address) => !keep.has(address));
    this.adopt(
      addresses,
      records.filter((record) => !keep.has(record.address)),
    );
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
        this.setRecord(record.address, { ...record, state: 'expired' });
      }
    }
    return ended;
  }
}
