import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { LeaseConflictError } from '../../server/dhcp/leases/leases.js';
import { LeaseDatabaseError, leaseSchemaVersion, readLeaseFile, SqliteLeaseStore } from '../../server/dhcp/leases/sqlite.js';
import { leaseStoreContract } from './lease-store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'rackboot-leases-'));
const opened: SqliteLeaseStore[] = [];
let files = 0;
function open(file = join(dir, `leases-${files++}.sqlite`)): SqliteLeaseStore {
  const store = SqliteLeaseStore.open(file);
  opened.push(store);
  return store;
}
after(() => {
  for (const store of opened) store.close();
  rmSync(dir, { recursive: true, force: true });
});

leaseStoreContract('SqliteLeaseStore', () => open());

const t0 = 1_700_000_000_000;

describe('SqliteLeaseStore', () => {
  test('a reopened file keeps every record, hostnames included', () => {
    const file = join(dir, 'reopen.sqlite');
    const first = open(file);
    first.upsert({ mac: '02:00:00:00:00:01', address: '198.18.0.100', state: 'bound', expiresAt: t0 + 3_600_000, hostname: 'node-1' }, t0);
    first.upsert({ mac: '02:00:00:00:00:02', address: '198.18.0.101', state: 'offered', expiresAt: t0 + 60_000 }, t0);
    first.upsert({ mac: '02:00:00:00:00:03', address: '198.18.0.102', state: 'declined', expiresAt: t0 + 600_000 }, t0);
    first.release('02:00:00:00:00:02', t0 + 1);
    const before = first.all();
    first.close();
    const second = open(file);
    assert.deepEqual(second.all(), before);
    assert.equal(before.length, 3);
    assert.throws(
      () => second.upsert({ mac: '02:00:00:00:00:09', address: '198.18.0.100', state: 'offered', expiresAt: t0 + 60_000 }, t0 + 2),
      LeaseConflictError,
    );
  });

  test('a file that is not a database is refused with its name', () => {
    const file = join(dir, 'garbage.sqlite');
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    assert.throws(
      () => open(file),
      (error: unknown) => error instanceof LeaseDatabaseError && error.code === 'CORRUPT' && error.message.includes(file),
    );
  });

  for (const [where, page] of [
    ['an early page', 2],
    ['the last page', -1],
  ] as const) {
    test(`a database with ${where} damaged is refused with its name`, () => {
      const file = join(dir, `damaged${page}.sqlite`);
      const store = open(file);
      for (let i = 0; i < 400; i++) {
        const mac = `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
        store.upsert({ mac, address: `198.18.${i >> 8}.${i & 255}`, state: 'bound', expiresAt: t0 + 1000 }, t0);
      }
      store.close();
      // Closing checkpoints the WAL into the file; scribble over a table or index page.
      // An early one breaks opening itself; the last one only quick_check finds.
      const bytes = readFileSync(file);
      assert.ok(bytes.length >= 4 * 4096, `${bytes.length} bytes`);
      const start = page >= 0 ? page * 4096 : bytes.length - 4096;
      bytes.fill(0x5a, start + 100, start + 4096);
      writeFileSync(file, bytes);
      assert.throws(
        () => open(file),
        (error: unknown) => error instanceof LeaseDatabaseError && error.code === 'CORRUPT' && error.message.includes(file),
      );
    });
  }

  test('a file another server holds is refused as locked, with its name', () => {
    const file = join(dir, 'locked.sqlite');
    open(file);
    const started = Date.now();
    assert.throws(
      () => SqliteLeaseStore.open(file, { busyTimeoutMs: 100 }),
      (error: unknown) =>
        error instanceof LeaseDatabaseError && error.code === 'LOCKED' && error.message.includes(file) && /another rackboot/.test(error.message),
    );
    assert.ok(Date.now() - started < 2000, 'fails after the busy timeout, not hanging');
  });

  test('while a store is open, other connections read the file; once closed, another store opens it', () => {
    const file = join(dir, 'shared.sqlite');
    const store = open(file);
    store.upsert({ mac: '02:00:00:00:00:01', address: '198.18.0.100', state: 'bound', expiresAt: t0 + 3_600_000 }, t0);
    assert.deepEqual(readLeaseFile(file), store.all());
    const reader = new Database(file, { readonly: true });
    assert.deepEqual(reader.prepare('SELECT mac, state FROM leases').all(), [{ mac: '02:00:00:00:00:01', state: 'bound' }]);
    // A reader in the middle of a read transaction does not hold the store up.
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM leases').get();
    store.upsert({ mac: '02:00:00:00:00:02', address: '198.18.0.101', state: 'bound', expiresAt: t0 + 3_600_000 }, t0);
    reader.prepare('COMMIT').run();
    assert.equal(readLeaseFile(file).length, 2);
    reader.close();
    assert.throws(
      () => SqliteLeaseStore.open(file, { busyTimeoutMs: 50 }),
      (error: unknown) => error instanceof LeaseDatabaseError && error.code === 'LOCKED',
    );
    store.close();
    assert.equal(open(file).all().length, 2);
  });

  test('a file from a newer schema is refused', () => {
    const file = join(dir, 'newer.sqlite');
    open(file).close();
    const db = new Database(file);
    db.prepare('UPDATE schema_version SET version = ?').run(leaseSchemaVersion + 1);
    db.close();
    assert.throws(
      () => open(file),
      (error: unknown) => error instanceof LeaseDatabaseError && error.code === 'NEWER_SCHEMA' && error.message.includes(file),
    );
  });

  test('the file is in WAL mode and records its schema version', () => {
    const file = join(dir, 'mode.sqlite');
    open(file).close();
    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.deepEqual(db.prepare('SELECT version FROM schema_version').all(), [{ version: leaseSchemaVersion }]);
    db.close();
  });

  test('a bound lease commits with synchronous=FULL (fsynced), an offer with NORMAL', () => {
    const store = open();
    // The connection is private; its level is what the commit just ran at.
    const level = () => (store as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true });
    store.upsert({ mac: '02:00:00:00:00:01', address: '198.18.0.100', state: 'offered', expiresAt: t0 + 60_000 }, t0);
    assert.equal(level(), 1, 'NORMAL');
    store.upsert({ mac: '02:00:00:00:00:01', address: '198.18.0.100', state: 'bound', expiresAt: t0 + 3_600_000 }, t0);
    assert.equal(level(), 2, 'FULL');
    store.release('02:00:00:00:00:01', t0 + 1);
    assert.equal(level(), 1, 'NORMAL');
  });

  test('transactionSyncedLater commits without an fsync of its own (NORMAL), then syncs the WAL', async () => {
    const file = join(dir, 'later.sqlite');
    const store = open(file);
    const level = () => (store as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true });
    const { synced } = store.transactionSyncedLater(() =>
      store.upsert({ mac: '02:00:00:00:00:01', address: '198.18.0.100', state: 'bound', expiresAt: t0 + 3_600_000 }, t0),
    );
    assert.equal(level(), 1, 'NORMAL');
    // Committed: another connection sees it before the sync is done.
    assert.deepEqual(
      readLeaseFile(file).map((lease) => lease.state),
      ['bound'],
    );
    await synced;
    assert.throws(() => store.transaction(() => store.transactionSyncedLater(() => undefined)), /cannot be nested/);
  });

  test('expire reclaims ended holds for good', () => {
    const file = join(dir, 'expire.sqlite');
    const store = open(file);
    store.upsert({ mac: '02:00:00:00:00:01', address: '198.18.0.100', state: 'offered', expiresAt: t0 + 10 }, t0);
    store.upsert({ mac: '02:00:00:00:00:02', address: '198.18.0.101', state: 'bound', expiresAt: t0 + 10 }, t0);
    assert.equal(store.expire(t0 + 10).length, 2);
    store.close();
    const reopened = open(file);
    assert.deepEqual(reopened.all(), [{ mac: '02:00:00:00:00:02', address: '198.18.0.101', state: 'expired', expiresAt: t0 + 10 }]);
    // The expired client's address can now go to someone else.
    reopened.upsert({ mac: '02:00:00:00:00:03', address: '198.18.0.101', state: 'offered', expiresAt: t0 + 100 }, t0 + 11);
    assert.equal(reopened.byMac('02:00:00:00:00:02'), undefined);
  });

  test('reads come from memory, and a write SQLite refuses leaves memory as the file: nothing of its transaction, nested or not', () => {
    const file = join(dir, 'refused.sqlite');
    open(file).close();
    // A trigger planted in the file refuses one address, the way a full disk or an I/O error would refuse a write.
    const planted = new Database(file);
    planted.exec(`CREATE TRIGGER refuse BEFORE INSERT ON leases WHEN NEW.address = '198.18.0.199' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`);
    planted.close();
    const store = open(file);
    const mac = (n: number): string => `02:00:00:00:01:${String(n).padStart(2, '0')}`;
    store.upsert({ mac: mac(1), address: '198.18.0.100', state: 'offered', expiresAt: t0 + 60_000 }, t0);
    store.upsert({ mac: mac(2), address: '198.18.0.101', state: 'bound', expiresAt: t0 + 60_000 }, t0);
    const before = store.all();
    // Outermost: a client moving to the refused address keeps its record, and the release before it in the same transaction is undone.
    assert.throws(
      () =>
        store.transaction(
          () => {
            store.release(mac(2), t0 + 1);
            store.upsert({ mac: mac(1), address: '198.18.0.199', state: 'bound', expiresAt: t0 + 60_000 }, t0 + 1);
          },
          { durable: true },
        ),
      /refused by the test/,
    );
    assert.deepEqual(store.all(), before);
    assert.equal(store.byMac(mac(1))?.address, '198.18.0.100');
    assert.equal(store.byAddress('198.18.0.199'), undefined);
    assert.equal(store.byMac(mac(2))?.state, 'bound');
    // Nested: the inner transaction's changes go, the outer one's stay and commit.
    store.transaction(() => {
      store.upsert({ mac: mac(3), address: '198.18.0.102', state: 'offered', expiresAt: t0 + 60_000 }, t0 + 2);
      assert.throws(
        () =>
          store.transaction(() => {
            store.remove('198.18.0.100');
            store.upsert({ mac: mac(4), address: '198.18.0.199', state: 'offered', expiresAt: t0 + 60_000 }, t0 + 2);
          }),
        /refused by the test/,
      );
    });
    assert.equal(store.byAddress('198.18.0.100')?.mac, mac(1), 'the nested remove was undone');
    assert.equal(store.byMac(mac(4)), undefined);
    const inMemory = store.all();
    assert.deepEqual(
      inMemory.map((lease) => lease.address),
      ['198.18.0.100', '198.18.0.101', '198.18.0.102'],
    );
    // What memory answers is what the file holds.
    assert.deepEqual(readLeaseFile(file), inMemory);
    store.close();
    assert.deepEqual(open(file).all(), inMemory);
  });
});
