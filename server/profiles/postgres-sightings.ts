/**
 * Slot sightings in the PostgreSQL database several servers share
 * (`serve --database`): a machine placed in its slot by one server's DHCP
 * is that slot's host at every server. As SqliteSlotSightings, lookups read
 * a copy in memory; a sighting that changes something is written by
 * rackboot_sighting() (the slot and the MAC each held once, however two
 * servers race) in the order they were made, and notified on
 * rackboot_sightings, so the other servers read that MAC's row into their
 * copy. A sighting the database could not take stays in memory and is
 * handed to onWriteError; the machine's next request writes it again.
 */
import { DatabaseConnection, DatabaseListener } from '../postgres/connection.js';
import { asDatabaseError, migrateDatabase, withDatabase } from '../postgres/database.js';
import { MemorySlotSightings, type SlotSightings } from './sightings.js';
import { sightingsTables } from './sightings-tables.js';
import { sameSlot, type RelaySlot } from './slot.js';

const CHANNEL = 'rackboot_sightings';

const migrations: readonly string[][] = [
  [
    ...sightingsTables,
    // The MAC is in the slot now: whoever held the slot, and wherever the MAC was, leave.
    // Two servers recording one slot at once: the later retries and wins.
    `CREATE FUNCTION rackboot_sighting(the_mac text, circuit text, remote text, seen_at bigint) RETURNS void LANGUAGE plpgsql AS $$
     BEGIN
       LOOP
         BEGIN
           DELETE FROM slot_sightings WHERE (circuit_id = circuit AND remote_id = remote) OR mac = the_mac;
           INSERT INTO slot_sightings (mac, circuit_id, remote_id, seen) VALUES (the_mac, circuit, remote, seen_at);
           PERFORM pg_notify('${CHANNEL}', the_mac);
           RETURN;
         EXCEPTION WHEN unique_violation THEN
           -- another server's sighting of this slot or MAC committed meanwhile: again
         END;
       END LOOP;
     END
     $$`,
  ],
];

export const postgresSightingsSchemaVersion = migrations.length;

/** Every sighting in the database, for `rackboot hosts --database` (reads only; none when no server has made the table). Throws PostgresDatabaseError. */
export async function readSightingsDatabase(url: string): Promise<MemorySlotSightings> {
  return withDatabase(
    url,
    'rackboot hosts',
    async (client) => placed((await client.query<Row>(`SELECT ${columns} FROM slot_sightings ORDER BY seen, mac`)).rows, new MemorySlotSightings()),
    () => new MemorySlotSightings(),
  );
}

interface Row {
  mac: string;
  circuit_id: string;
  remote_id: string;
}

function fromRow(row: Row): RelaySlot {
  return row.remote_id === '' ? { circuitId: row.circuit_id } : { circuitId: row.circuit_id, remoteId: row.remote_id };
}

const columns = 'mac, circuit_id, remote_id';

/** Rows read oldest first, each placed in turn: every slot is left to its latest MAC. */
function placed(rows: readonly Row[], sightings: MemorySlotSightings): MemorySlotSightings {
  for (const row of rows) sightings.record(row.mac, fromRow(row));
  return sightings;
}

export class PostgresSlotSightings implements SlotSightings {
  private readonly memory = new MemorySlotSightings();
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  private listener: DatabaseListener | undefined;

  private constructor(
    private readonly client: DatabaseConnection,
    private readonly now: () => number,
    private readonly onWriteError: (error: unknown, mac: string) => void,
  ) {}

  /** The database's URL without its password. */
  get database(): string {
    return this.client.database;
  }

  /** Connects, brings the table to the newest schema and reads every sighting. Throws PostgresDatabaseError. */
  static async open(url: string, options: { now?: () => number; onWriteError?: (error: unknown, mac: string) => void } = {}): Promise<PostgresSlotSightings> {
    const client = new DatabaseConnection(url, 'rackboot sightings');
    try {
      await migrateDatabase(client, client.database, 'sightings', migrations);
      const sightings = new PostgresSlotSightings(client, options.now ?? Date.now, options.onWriteError ?? (() => undefined));
      sightings.listener = await DatabaseListener.open(url, CHANNEL, {
        applicationName: 'rackboot sighting changes',
        onNotification: (payload, processId) => {
          if (processId !== client.processId && payload !== '') sightings.readMac(payload);
        },
        onReconnected: () => sightings.inTurn(() => sightings.readAll()),
        onProblem: (_message, error) => sightings.onWriteError(error, ''),
      });
      await sightings.readAll();
      return sightings;
    } catch (error) {
      await client.end();
      throw asDatabaseError(client.database, error);
    }
  }

  /** Every sighting, as the database has them, into the copy (at open, and after a lost connection). */
  private async readAll(): Promise<void> {
    placed((await this.client.query<Row>(`SELECT ${columns} FROM slot_sightings ORDER BY seen, mac`)).rows, this.memory);
  }

  slotOf(mac: string): RelaySlot | undefined {
    return this.memory.slotOf(mac);
  }

  macAt(slot: RelaySlot): string | undefined {
    return this.memory.macAt(slot);
  }

  record(mac: string, slot: RelaySlot): string | undefined {
    const held = this.memory.slotOf(mac);
    if (held !== undefined && sameSlot(held, slot) && this.memory.macAt(slot) === mac) return undefined;
    const seen = this.now();
    this.inTurn(async () => {
      try {
        await this.client.query('SELECT rackboot_sighting($1, $2, $3, $4)', [mac, slot.circuitId, slot.remoteId ?? '', seen]);
      } catch (error) {
        this.onWriteError(asDatabaseError(this.database, error), mac);
      }
    });
    return this.memory.record(mac, slot);
  }

  entries(): Array<{ mac: string; slot: RelaySlot }> {
    return this.memory.entries();
  }

  /** Resolves once every sighting so far has been written (or failed) and every notification read. */
  async flush(): Promise<void> {
    await this.tail;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    void this.tail.then(() => Promise.all([this.client.end(), this.listener?.end()])).catch(() => undefined);
  }

  /** Another server saw this MAC: its row, as the database has it now, into the copy. */
  private readMac(mac: string): void {
    this.inTurn(async () => {
      try {
        const rows = await this.client.query<Row>(`SELECT ${columns} FROM slot_sightings WHERE mac = $1`, [mac]);
        const row = rows.rows[0];
        if (row !== undefined) this.memory.record(row.mac, fromRow(row));
      } catch (error) {
        this.onWriteError(asDatabaseError(this.database, error), mac);
      }
    });
  }

  private inTurn(work: () => Promise<void>): void {
    if (this.closed) return;
    this.tail = this.tail.then(work).catch((error: unknown) => this.onWriteError(error, ''));
  }
}
