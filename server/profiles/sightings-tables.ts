/**
 * The slot sightings table, in SQL that SQLite and PostgreSQL run alike
 * (sqlite-sightings.ts, postgres-sightings.ts). An absent remote-id is ''
 * so that the slot's unique index means the same in both (NULLs are
 * distinct in indexes). Never edited once released.
 */
export const sightingsTables: readonly string[] = [
  `CREATE TABLE slot_sightings (
     mac TEXT NOT NULL PRIMARY KEY,
     circuit_id TEXT NOT NULL,
     remote_id TEXT NOT NULL,
     seen BIGINT NOT NULL
   )`,
  `CREATE UNIQUE INDEX slot_sightings_slot ON slot_sightings (circuit_id, remote_id)`,
];
