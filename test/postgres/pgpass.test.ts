import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parsePgpassLine, pgpassFileName, pgpassPassword, readPgpassPassword } from '../../server/postgres/pgpass.js';

const target = { host: 'db.example', port: 5432, database: 'site', user: 'rackboot' };

test('pgpass lines: five fields, "\\:" and "\\\\" escaped, colons free in the password, comments and short lines skipped', () => {
  assert.deepEqual(parsePgpassLine('db:5432:site:rackboot:secret'), ['db', '5432', 'site', 'rackboot', 'secret']);
  assert.deepEqual(parsePgpassLine('db:5432:si\\:te:rack\\\\boot:pa:ss\\:word'), ['db', '5432', 'si:te', 'rack\\boot', 'pa:ss:word']);
  assert.equal(parsePgpassLine('# db:5432:site:rackboot:secret'), undefined);
  assert.equal(parsePgpassLine('   '), undefined);
  assert.equal(parsePgpassLine('db:5432:site:rackboot'), undefined);
});

test('pgpass matching: the first line that matches wins, "*" matches anything, localhost stands for a Unix socket', () => {
  const text = [
    'other:5432:site:rackboot:wrong-host',
    'db.example:5433:site:rackboot:wrong-port',
    'db.example:*:site:rackboot:first',
    '*:*:*:*:second',
    '',
  ].join('\n');
  assert.equal(pgpassPassword(text, target), 'first');
  assert.equal(pgpassPassword(text, { ...target, user: 'someone' }), 'second');
  assert.equal(pgpassPassword('localhost:5432:site:rackboot:socket\r\n', { ...target, host: '/run/postgresql' }), 'socket');
  assert.equal(pgpassPassword('db.example:5432:site:rackboot:x', { ...target, database: 'other' }), undefined);
});

test('the file: PGPASSFILE, else ~/.pgpass; none is no password; one others may read is refused by name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-pgpass-'));
  try {
    assert.equal(pgpassFileName({ HOME: '/home/x' }), '/home/x/.pgpass');
    const file = join(dir, 'pgpass');
    assert.deepEqual(await readPgpassPassword(target, { PGPASSFILE: file }), { file, password: undefined });
    writeFileSync(file, '*:*:site:rackboot:secret\n', { mode: 0o600 });
    assert.deepEqual(await readPgpassPassword(target, { PGPASSFILE: file }), { file, password: 'secret' });
    writeFileSync(join(dir, 'open'), '*:*:site:rackboot:secret\n', { mode: 0o644 });
    await assert.rejects(readPgpassPassword(target, { PGPASSFILE: join(dir, 'open') }), /password file .*open may be read by group or others \(mode 644\)/);
    await assert.rejects(readPgpassPassword(target, { PGPASSFILE: dir }), /is not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
