import type Database from 'better-sqlite3';

/**
 * Bring a store's database to the newest schema: `schema_version` holds how
 * many of `migrations` (lists of portable SQL statements) have run; the
 * missing ones run in one IMMEDIATE transaction, so two processes never
 * migrate at once and a failure leaves the old schema. A file written by a
 * newer rackboot is refused with the error `newer` makes.
 */
export function migrateSchema(db: Database.Database, migrations: readonly (readonly string[])[], newer: (message: string) => Error): void {
  db.transaction(() => {
    db.prepare('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)').run();
    const row = db.prepare<[], { version: number }>('SELECT version FROM schema_version').get();
    let version = row?.version ?? 0;
    if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (0)').run();
    if (version > migrations.length) {
      throw newer(`schema version ${version} was written by a newer rackboot (this one knows up to ${migrations.length})`);
    }
    for (; version < migrations.length; version++) {
      for (const statement of migrations[version]!) db.prepare(statement).run();
    }
    db.prepare('UPDATE schema_version SET version = ?').run(version);
  }).immediate();
}
