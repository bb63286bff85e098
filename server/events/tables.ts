/**
 * The timeline's tables, in SQL that SQLite and PostgreSQL run alike
 * (sqlite-store.ts, postgres-store.ts). Never edited once released.
 */
export const eventsTable = `CREATE TABLE events (
       id BIGINT NOT NULL PRIMARY KEY,
       time BIGINT NOT NULL,
       mac TEXT NOT NULL,
       source TEXT NOT NULL CHECK (source IN ('runtime', 'guest', 'dhcp', 'tftp', 'http')),
       stage TEXT NOT NULL,
       detail TEXT,
       domain TEXT
     )`;

export const hostReportsTable = `CREATE TABLE host_reports (
       mac TEXT NOT NULL,
       kind TEXT NOT NULL,
       time BIGINT NOT NULL,
       body TEXT NOT NULL,
       PRIMARY KEY (mac, kind)
     )`;
