import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SightingsDatabaseError, sightingsSchemaVersion, SqliteSlotSightings } from '../../server/profiles/sqlite-sightings.js';
import { slotSightingsContract } from './sightings-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'rackboot-sightings-'));
let files = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

slotSightingsContract('SqliteSlotSightings', () => SqliteSlotSightings.open(join(dir, `slots-${files++}.sqlite`)));

const moduleUrl = new URL('../../server/profiles/sqlite-sightings.js', import.meta.url).href;

describe('SqliteSlotSightings', () => {
  test('a reopened file places every machine again, swaps and moves included', () => {
    const file = join(dir, 'reopen.sqlite');
    let clock = 1_700_000_000_000;
    const first = SqliteSlotSightings.open(file, { now: () => clock++ });
    first.record('52:54:00:00:00:01', { circuitId: '7231', remoteId: '01' });
    first.record('52:54:00:00:00:02', { circuitId: '7232' });
    first.record('52:54:00:00:00:03', { circuitId: '7231', remoteId: '01' }); // a swap: 01 leaves the slot
    first.record('52:54:00:00:00:02', { circuitId: '7233' }); // a move
    const byMac = (a: { mac: string }, b: { mac: string }) => a.mac.localeCompare(b.mac);
    const before = first.entries().sort(byMac);
    assert.equal(before.length, 2);
    first.close();
    const again = SqliteSlotSightings.open(file);
    assert.deepEqual(again.entries().sort(byMac), before);
    assert.equal(again.slotOf('52:54:00:00:00:01'), undefined);
    assert.deepEqual(again.slotOf('52:54:00:00:00:03'), { circuitId: '7231', remoteId: '01' });
    assert.equal(again.macAt({ circuitId: '7232' }), undefined);
    assert.equal(again.macAt({ circuitId: '7233' }), '52:54:00:00:00:02');
    again.close();
  });

  test('a sighting recorded before kill -9 is there after it', async () => {
    const file = join(dir, 'killed.sqlite');
    const script = `
      const { SqliteSlotSightings } = await import(${JSON.stringify(moduleUrl)});
      const sightings = SqliteSlotSightings.open(${JSON.stringify(file)});
      sightings.record('52:54:00:00:00:09', { circuitId: '7239', remoteId: '0a' });
      process.stdout.write('recorded\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    assert.equal(line, 'recorded');
    child.kill('SIGKILL');
    await once(child, 'exit');
    const after = SqliteSlotSightings.open(file);
    assert.deepEqual(after.slotOf('52:54:00:00:00:09'), { circuitId: '7239', remoteId: '0a' });
    after.close();
  });

  test('a sighting the file refuses is still served from memory, and reported', () => {
    const file = join(dir, 'refusing.sqlite');
    SqliteSlotSightings.open(file).close();
    const raw = new Database(file);
    raw.exec("CREATE TRIGGER refuse BEFORE INSERT ON slot_sightings BEGIN SELECT RAISE(ABORT, 'no room'); END");
    raw.close();
    const failures: Array<{ message: string; mac: string }> = [];
    const sightings = SqliteSlotSightings.open(file, { onWriteError: (error, mac) => failures.push({ message: (error as Error).message, mac }) });
    assert.equal(sightings.record('52:54:00:00:00:07', { circuitId: '7237' }), undefined);
    assert.deepEqual(sightings.slotOf('52:54:00:00:00:07'), { circuitId: '7237' });
    assert.deepEqual(failures, [{ message: 'no room', mac: '52:54:00:00:00:07' }]);
    sightings.close();
    const reopened = SqliteSlotSightings.open(file);
    assert.equal(reopened.slotOf('52:54:00:00:00:07'), undefined, 'nothing half-written');
    assert.throws(() => reopened.record('52:54:00:00:00:08', { circuitId: '7238' }), /no room/, 'without onWriteError the failure is thrown');
    assert.equal(reopened.slotOf('52:54:00:00:00:08'), undefined);
    reopened.close();
  });

  test('a second server on the same file fails, naming it; so do a file that is no database and one from a newer rackboot', () => {
    const file = join(dir, 'locked.sqlite');
    const owner = SqliteSlotSightings.open(file);
    try {
      assert.throws(
        () => SqliteSlotSightings.open(file),
        (error: unknown) => {
          assert.ok(error instanceof SightingsDatabaseError);
          assert.equal(error.code, 'LOCKED');
          assert.match(error.message, new RegExp(`^slot sightings database ${file.replaceAll('.', '\\.')}: locked by another process`));
          return true;
        },
      );
    } finally {
      owner.close();
    }

    const garbage = join(dir, 'garbage.sqlite');
    writeFileSync(garbage, 'this is not a database, just text long enough to have a header '.repeat(20));
    assert.throws(
      () => SqliteSlotSightings.open(garbage),
      (error: unknown) => {
        assert.ok(error instanceof SightingsDatabaseError);
        assert.equal(error.code, 'CORRUPT');
        assert.match(error.message, /move it aside to start with no sightings/);
        return true;
      },
    );

    const newer = join(dir, 'newer.sqlite');
    SqliteSlotSightings.open(newer).close();
    const db = new Database(newer);
    db.prepare('UPDATE schema_version SET version = ?').run(sightingsSchemaVersion + 1);
    db.close();
    assert.throws(
      () => SqliteSlotSightings.open(newer),
      (error: unknown) => error instanceof SightingsDatabaseError && error.code === 'NEWER_SCHEMA' && error.message.includes(newer),
    );
  });
});
