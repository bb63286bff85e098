import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { capabilityMask, excessPrivileges, parseThreadStatus } from '../server/privileges.js';
import { handOver, secureStateFolder } from '../server/state-folder.js';

/** A /proc/<pid>/status as Linux 6 writes it (trimmed), of a root process with full capabilities. */
const rootStatus = [
  'Name:\tnode',
  'Umask:\t0022',
  'State:\tS (sleeping)',
  'Tgid:\t4242',
  'Pid:\t4242',
  'Uid:\t0\t0\t0\t0',
  'Gid:\t0\t0\t0\t0',
  'Groups:\t0 ',
  'SigBlk:\t0000000000000000',
  'CapInh:\t0000000000000000',
  'CapPrm:\t000001ffffffffff',
  'CapEff:\t000001ffffffffff',
  'CapBnd:\t000001ffffffffff',
  'CapAmb:\t0000000000000000',
  '',
].join('\n');

test('a thread status is read into ids and capability masks', () => {
  const thread = parseThreadStatus(4242, rootStatus);
  assert.deepEqual(thread, {
    tid: 4242,
    name: 'node',
    uids: [0, 0, 0, 0],
    gids: [0, 0, 0, 0],
    effective: 0x1ffffffffffn,
    permitted: 0x1ffffffffffn,
    ambient: 0n,
    inheritable: 0n,
  });
  assert.throws(() => parseThreadStatus(7, 'Name:\tnode\n'), /\/proc status of thread 7: no Uid line/);
});

test('excess privileges: another uid, or any capability past those kept, in any set', () => {
  const clean = {
    tid: 1,
    name: 'node',
    uids: [65534, 65534, 65534, 65534],
    gids: [65534, 65534, 65534, 65534],
    effective: 0n,
    permitted: 0n,
    ambient: 0n,
    inheritable: 0n,
  };
  const bind = capabilityMask([10]);
  assert.equal(bind, 0x400n);
  assert.deepEqual(excessPrivileges([clean], 65534, 0n), []);
  assert.deepEqual(excessPrivileges([{ ...clean, uids: [65534, 65534, 0, 65534] }], 65534, 0n).length, 1, 'a saved uid 0 is root still');
  for (const set of ['effective', 'permitted', 'ambient'] as const) {
    assert.equal(excessPrivileges([{ ...clean, [set]: bind }], 65534, 0n).length, 1, `${set} beyond none`);
    assert.equal(excessPrivileges([{ ...clean, [set]: bind }], 65534, bind).length, 0, `${set} within what is kept`);
  }
  assert.equal(excessPrivileges([{ ...clean, inheritable: bind }], 65534, bind).length, 1, 'nothing stays inheritable');
});

const scratch = await mkdtemp(path.join(tmpdir(), 'rackboot-state-folder-'));
after(() => rm(scratch, { recursive: true, force: true }));

test('the state folder: made 0700, wider files set back to 0600 and reported, handed to an owner; links are not followed', async () => {
  const made = path.join(scratch, 'fresh', 'state');
  assert.deepEqual((await secureStateFolder(made)).tightened, []);
  assert.equal((await stat(made)).mode & 0o777, 0o700);

  const old = path.join(scratch, 'old');
  await mkdir(old, { mode: 0o755 });
  await writeFile(path.join(old, 'leases.sqlite'), '', { mode: 0o644 });
  await writeFile(path.join(old, 'admin.token'), 'x', { mode: 0o600 });
  const outside = path.join(scratch, 'outside.txt');
  await writeFile(outside, '', { mode: 0o644 });
  await symlink(outside, path.join(old, 'link'));
  const result = await secureStateFolder(old);
  await handOver(old, { uid: 65534, gid: 65534 });
  assert.deepEqual(result.tightened.sort(), [old, path.join(old, 'leases.sqlite')].sort());
  for (const [name, mode] of [
    ['', 0o700],
    ['leases.sqlite', 0o600],
    ['admin.token', 0o600],
  ] as const) {
    const info = await stat(path.join(old, name));
    assert.equal(info.mode & 0o777, mode, `${name || 'the folder'} mode`);
    assert.equal(info.uid, 65534, `${name || 'the folder'} owner`);
  }
  const target = await stat(outside);
  assert.equal(target.mode & 0o777, 0o644, 'the file a link points to keeps its mode');
  assert.equal(target.uid, 0, 'and its owner');
  assert.equal((await lstat(path.join(old, 'link'))).uid, 0);
});
