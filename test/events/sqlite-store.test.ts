import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { EventDatabaseError, eventSchemaVersion, SqliteEventStore } from '../../server/events/sqlite-store.js';
import { eventStoreContract } from './event-store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'rackboot-events-'));
let files = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

eventStoreContract('SqliteEventStore', () => SqliteEventStore.open(join(dir, `events-${files++}.sqlite`)));

const t0 = 1_700_000_000_000;

describe('SqliteEventStore', () => {
  test('a reopened file keeps every event, and ids go on from the last one', () => {
    const file = join(dir, 'reopen.sqlite');
    const first = SqliteEventStore.open(file);
    const booted = first.append({ time: t0, mac: '52:54:00:12:34:56', source: 'runtime', stage: 'booted' });
    const guest = first.append({
      time: t0 + 1,
      mac: '52:54:00:12:34:56',
      source: 'guest',
      stage: 'guest-ready',
      domain: 'demo1',
      detail: "ip=198.18.0.9/24 'quoted'\nsecond line",
    });
    first.close();
    const again = SqliteEventStore.open(file);
    assert.deepEqual(again.listByHost('52:54:00:12:34:56'), [booted, guest]);
    const next = again.append({ time: t0 + 2, mac: '52:54:00:12:34:56', source: 'runtime', stage: 'ready' });
    assert.equal(next.id, guest.id + 1);
    again.close();
  });

  test('a burst with a row the table refuses keeps none of it, and the ids go on from where they were', () => {
    const file = join(dir, 'refused-burst.sqlite');
    const store = SqliteEventStore.open(file);
    try {
      const good = Array.from({ length: 20 }, (_, i) => ({ time: 1000 + i, mac: '52:54:00:00:00:01', source: 'dhcp' as const, stage: `s${i}` }));
      const before = store.append({ time: 999, mac: '52:54:00:00:00:01', source: 'dhcp', stage: 'first' });
      // A source outside the table's CHECK, after a full statement's worth of rows.
      assert.throws(
        () => store.appendAll([...good, { time: 2000, mac: '52:54:00:00:00:01', source: 'nowhere' as never, stage: 'x' }]),
        /CHECK constraint failed/,
      );
      assert.deepEqual(store.listByHost('52:54:00:00:00:01'), [before]);
      assert.equal(store.append({ time: 2001, mac: '52:54:00:00:00:01', source: 'dhcp', stage: 'next' }).id, before.id + 1);
    } finally {
      store.close();
    }
  });

  test('a second server on the same file fails, naming it', () => {
    const file = join(dir, 'locked.sqlite');
    const owner = SqliteEventStore.open(file);
    try {
      assert.throws(
        () => SqliteEventStore.open(file),
        (error: unknown) => {
          assert.ok(error instanceof EventDatabaseError);
          assert.equal(error.code, 'LOCKED');
          assert.match(error.message, new RegExp(`^events database ${file.replaceAll('.', '\\.')}: locked by another process`));
          return true;
        },
      );
    } finally {
      owner.close();
    }
  });

  test('a timeline from the first schema gains host reports and keeps its events', () => {
    const file = join(dir, 'schema1.sqlite');
    const db = new Database(file);
    db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version (version) VALUES (1);
      CREATE TABLE events (id BIGINT NOT NULL PRIMARY KEY, time BIGINT NOT NULL, mac TEXT NOT NULL, source TEXT NOT NULL, stage TEXT NOT NULL, detail TEXT, domain TEXT);
      INSERT INTO events VALUES (1, 1700000000000, '52:54:00:12:34:56', 'runtime', 'ready', NULL, NULL);`);
    db.close();
    const store = SqliteEventStore.open(file);
    try {
      assert.deepEqual(store.listByHost('52:54:00:12:34:56'), [{ id: 1, time: 1700000000000, mac: '52:54:00:12:34:56', source: 'runtime', stage: 'ready' }]);
      store.putHostReport({ mac: '52:54:00:12:34:56', kind: 'storage', time: 1, body: '{}' });
      assert.equal(store.hostReport('52:54:00:12:34:56', 'storage')?.body, '{}');
    } finally {
      store.close();
    }
    const reopened = new Database(file, { readonly: true });
    assert.equal(reopened.prepare<[], { version: number }>('SELECT version FROM schema_version').get()?.version, eventSchemaVersion);
    reopened.close();
  });

  test('a file that is no database, and one from a newer rackboot, are refused by name', () => {
    const garbage = join(dir, 'garbage.sqlite');
    writeFileSync(garbage, 'this is not a database, just text long enough to have a header '.repeat(20));
    assert.throws(
      () => SqliteEventStore.open(garbage),
      (error: unknown) => error instanceof EventDatabaseError && error.code === 'CORRUPT' && error.message.includes(garbage),
    );

    const newer = join(dir, 'newer.sqlite');
    SqliteEventStore.open(newer).close();
    const db = new Database(newer);
    db.prepare('UPDATE schema_version SET version = ?').run(eventSchemaVersion + 1);
    db.close();
    assert.throws(
      () => SqliteEventStore.open(newer),
      (error: unknown) => error instanceof EventDatabaseError && error.code === 'NEWER_SCHEMA' && error.message.includes(newer),
    );
  });
});
