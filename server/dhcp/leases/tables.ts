/**
 * The lease table, in SQL that SQLite and PostgreSQL run alike: the first
 * migration of both stores (sqlite.ts, postgres.ts). Never edited once
 * released; a change is a new migration in each store.
 */
export const leaseTables: readonly string[] = [
  `CREATE TABLE leases (
     address TEXT NOT NULL PRIMARY KEY,
     mac TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('offered', 'bound', 'released', 'expired', 'declined')),
     expires_at BIGINT NOT NULL,
     hostname TEXT
   )`,
  // One client record per MAC; declined records (quarantines) are per address only.
  `CREATE UNIQUE INDEX leases_client_mac ON leases (mac) WHERE state <> 'declined'`,
  `CREATE INDEX leases_expires_at ON leases (expires_at)`,
];
