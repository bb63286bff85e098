/**
 * Slot sightings (option 82: which MAC was last seen in which slot) in a
 * SQLite file of the state folder, slots.sqlite, so that a restarted server
 * still boots a machine as its slot's profile: a machine that had its DHCP
 * answer before the restart fetches its boot script, xen.cfg and runtime.env
 * (by MAC alone) after it, and the status page names its slot's host.
 *
 * Lookups read a copy in memory (MemorySlotSightings), loaded at open; a
 * record that changes something writes through to the file before it
 * returns, in one transaction. Durability: synchronous=NORMAL in WAL mode,
 * as for the timeline: a record survives a crash or kill -9 once record()
 * returns, and a power cut may lose the newest few, which each machine's
 * next DHCP request puts back. An fsync per sighting would not do: behind
 * switches that add option 82 to every request, a site's first boot makes
 * every MAC a new sighting, and those would each wait for the disk on the
 * event loop, outside the leases' group commit. Portability: plain tables and statements, as in the other
 * stores; an absent remote-id is stored as '' so that the slot's unique
 * index means the same in every database (NULLs are distinct in indexes).
 */
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { openExclusiveStore, storeError, StoreDatabaseError, type StoreErrors, type StoreFailure } from '../sqlite/open.js';
import { MemorySlotSightings, type SlotSightings } from './sightings.js';
import { sightingsTables } from './sightings-tables.js';
import { sameSlot, type RelaySlot } from './slot.js';

/** Schema migrations: entry i takes the file from version i to i + 1. Append only. */
const migrations: readonly (readonly string[])[] = [sightingsTables];

export const sightingsSchemaVersion = migrations.length;

/** Why a sightings database could not be used; the message names the file. */
export class SightingsDatabaseError extends StoreDatabaseError {
  override readonly name = 'SightingsDatabaseError';
  constructor(file: string, code: StoreFailure, message: string, options?: { cause?: unknown }) {
    super(file, code, 'slot sightings database', message, options);
  }
}

/** Every sighting of a file, replayed oldest first, so that each slot is left to its latest MAC. */
function loadSightings(db: Database.Database): MemorySlotSightings {
  const sightings = new MemorySlotSightings();
  for (const row of db.prepare<[], Row>('SELECT mac, circuit_id, remote_id FROM slot_sightings ORDER BY seen, mac').all())
    sightings.record(row.mac, fromRow(row));
  return sightings;
}

interface Row {
  mac: string;
  circuit_id: string;
  remote_id: string;
}

export class SqliteSlotSightings implements SlotSightings {
  private readonly memory: MemorySlotSightings;
  private readonly statements: ReturnType<SqliteSlotSightings['prepare']>;

  private constructor(
    readonly file: string,
    private readonly db: Database.Database,
    private readonly now: () => number,
    private readonly onWriteError: (error: unknown, mac: string) => void,
  ) {
    this.statements = this.prepare();
    this.memory = loadSightings(db);
  }

  /**
   * Opens (creating or migrating) the file; throws SightingsDatabaseError.
   * A sighting the file could not take is kept in memory and handed to
   * onWriteError (the default throws it).
   */
  static open(file: string, options: { now?: () => number; onWriteError?: (error: unknown, mac: string) => void } = {}): SqliteSlotSightings {
    const errors = sightingsErrors(file);
    const db = openExclusiveStore(file, { synchronous: 'NORMAL', migrations, errors });
    try {
      const rethrow = (error: unknown) => {
        throw error;
      };
      return new SqliteSlotSightings(file, db, options.now ?? Date.now, options.onWriteError ?? rethrow);
    } catch (error) {
      db.close();
      throw errors.make('OPEN', error instanceof Error ? error.message : String(error), error);
    }
  }

  private prepare() {
    const db = this.db;
    return {
      leaveSlot: db.prepare<[string, string]>('DELETE FROM slot_sightings WHERE circuit_id = ? AND remote_id = ?'),
      leaveMac: db.prepare<[string]>('DELETE FROM slot_sightings WHERE mac = ?'),
      insert: db.prepare<[string, string, string, number]>('INSERT INTO slot_sightings (mac, circuit_id, remote_id, seen) VALUES (?, ?, ?, ?)'),
    };
  }

  slotOf(mac: string): RelaySlot | undefined {
    return this.memory.slotOf(mac);
  }

  macAt(slot: RelaySlot): string | undefined {
    return this.memory.macAt(slot);
  }

  record(mac: string, slot: RelaySlot): string | undefined {
    const held = this.memory.slotOf(mac);
    if (held !== undefined && sameSlot(held, slot)) return undefined; // seen there before: nothing to write
    try {
      this.db.transaction(() => {
        this.statements.leaveSlot.run(slot.circuitId, slot.remoteId ?? '');
        this.statements.leaveMac.run(mac);
        this.statements.insert.run(mac, slot.circuitId, slot.remoteId ?? '', this.now());
      })();
    } catch (error) {
      // The machine is in that slot now whether or not the disk took it
      // (full, gone): it is served as the slot's host, and the failure is
      // reported; the next sighting writes again.
      this.onWriteError(error, mac);
    }
    return this.memory.record(mac, slot);
  }

  entries(): Array<{ mac: string; slot: RelaySlot }> {
    return this.memory.entries();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function fromRow(row: Row): RelaySlot {
  return row.remote_id === '' ? { circuitId: row.circuit_id } : { circuitId: row.circuit_id, remoteId: row.remote_id };
}

function sightingsErrors(file: string): StoreErrors<SightingsDatabaseError> {
  return {
    make: (code, message, cause) => new SightingsDatabaseError(file, code, message, { cause }),
    isOwn: (e): e is SightingsDatabaseError => e instanceof SightingsDatabaseError,
    whenCorrupt: 'move it aside to start with no sightings (machines are placed again at their next DHCP request)',
  };
}

/**
 * The sightings of a state folder's file, read-only, for `rackboot hosts`
 * when no server runs; none when there is no file yet. A running server
 * holds the file exclusively: then this fails with LOCKED.
 */
export function readSightingsFile(file: string): MemorySlotSightings {
  if (!existsSync(file)) return new MemorySlotSightings();
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 500');
    return loadSightings(db);
  } catch (error) {
    throw storeError(error, sightingsErrors(file));
  } finally {
    db?.close();
  }
}
