import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { LogDatabaseError, logSchemaVersion, SqliteLogStore } from '../../server/logs/sqlite-store.js';
import type { LogLine } from '../../server/logs/store.js';
import { runCommand } from '../support/run.js';
import { logStoreContract } from './log-store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'rackboot-logs-'));
let files = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

logStoreContract('SqliteLogStore', () => SqliteLogStore.open(join(dir, `logs-${files++}.sqlite`)), {
  reopen: async (store) => {
    await store.close();
    return SqliteLogStore.open(store.file);
  },
});

const mac = '52:54:00:12:34:56';
const t0 = 1_700_000_000_000;

/**
 * A child that appends, leaves a transaction open as a crash in the middle
 * of the next append would (through the store's own handle, the file being
 * locked to it), prints what it appended and kills itself with SIGKILL.
 */
const crashingChild = `
const [moduleUrl, file, mac, t0] = process.argv.slice(1);
const { SqliteLogStore } = await import(moduleUrl);
const store = SqliteLogStore.open(file);
const boot = await store.startBoot(mac, Number(t0));
const lines = [];
for (let batch = 0; batch < 4; batch++) {
  lines.push(...(await store.append(Array.from({ length: 10 }, (_, i) => ({
    mac, boot, receivedAt: Number(t0) + batch * 10 + i, source: 'netconsole', severity: 6, text: 'kernel line ' + (batch * 10 + i) + ' ✓',
  })))));
}
store.db.exec('BEGIN IMMEDIATE');
store.db.prepare("INSERT INTO log_lines (id, mac, boot, received_at, source, text, bytes) VALUES (?, ?, ?, 0, 'syslog', 'never committed', 15)")
  .run(lines.at(-1).id + 1, mac, boot);
process.stdout.write(JSON.stringify(lines), () => process.kill(process.pid, 'SIGKILL'));
`;

describe('SqliteLogStore', () => {
  test('after a SIGKILL, the file reopens with every committed line and boot, and none of the write that was cut short', async () => {
    const file = join(dir, 'crash.sqlite');
    const moduleUrl = new URL('../../server/logs/sqlite-store.js', import.meta.url).href;
    const child = await runCommand(process.execPath, ['--input-type=module', '-e', crashingChild, moduleUrl, file, mac, String(t0)], {
      timeoutMs: 30_000,
      what: 'the crashing child',
    });
    assert.equal(child.code, null, `killed by its signal, not exited: ${child.stderr}`);
    const committed = JSON.parse(child.stdout) as LogLine[];
    assert.equal(committed.length, 40);
    const store = SqliteLogStore.open(file);
    try {
      assert.deepEqual(await store.list(mac), committed);
      assert.deepEqual(await store.boots(mac), [
        { boot: 1, startedAt: t0, lines: 40, bytes: committed.reduce((sum, line) => sum + Buffer.byteLength(line.text), 0) },
      ]);
      const next = await store.append([{ mac, boot: 1, receivedAt: t0 + 100, source: 'syslog', text: 'after the crash' }]);
      assert.equal(next[0]!.id, committed.at(-1)!.id + 1, 'the id the cut write took is free again');
      assert.equal(await store.startBoot(mac, t0 + 200), 2);
    } finally {
      await store.close();
    }
  });

  test('the file: WAL, the schema version, the (mac, boot, id) index', async () => {
    const file = join(dir, 'schema.sqlite');
    await SqliteLogStore.open(file).close();
    const db = new Database(file, { readonly: true });
    try {
      assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
      assert.equal(db.prepare<[], { version: number }>('SELECT version FROM schema_version').get()?.version, logSchemaVersion);
      const index = db.prepare<[], { name: string }>("SELECT name FROM pragma_index_info('log_lines_mac_boot_id') ORDER BY seqno").all();
      assert.deepEqual(
        index.map((column) => column.name),
        ['mac', 'boot', 'id'],
      );
    } finally {
      db.close();
    }
  });

  test('a second server on the same file fails, naming it', async () => {
    const file = join(dir, 'locked.sqlite');
    const owner = SqliteLogStore.open(file);
    try {
      assert.throws(
        () => SqliteLogStore.open(file),
        (error: unknown) => {
          assert.ok(error instanceof LogDatabaseError);
          assert.equal(error.code, 'LOCKED');
          assert.match(error.message, new RegExp(`^logs database ${file.replaceAll('.', '\\.')}: locked by another process`));
          return true;
        },
      );
    } finally {
      await owner.close();
    }
  });

  test('a file that is no database, and one from a newer rackboot, are refused by name', async () => {
    const garbage = join(dir, 'garbage.sqlite');
    writeFileSync(garbage, 'this is not a database, just text long enough to have a header '.repeat(20));
    assert.throws(
      () => SqliteLogStore.open(garbage),
      (error: unknown) => error instanceof LogDatabaseError && error.code === 'CORRUPT' && error.message.includes(garbage),
    );

    const newer = join(dir, 'newer.sqlite');
    await SqliteLogStore.open(newer).close();
    const db = new Database(newer);
    db.prepare('UPDATE schema_version SET version = ?').run(logSchemaVersion + 1);
    db.close();
    assert.throws(
      () => SqliteLogStore.open(newer),
      (error: unknown) => error instanceof LogDatabaseError && error.code === 'NEWER_SCHEMA' && error.message.includes(newer),
    );
  });
});
