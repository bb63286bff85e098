import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { failureReport, plainText, watchOutput } from './helpers/failure-report.js';

/**
 * The report a failing QEMU test prints (test/helpers/failure-report.ts):
 * the tail of each watched output, labelled, with the whole text saved.
 */

test('plainText: a serial console without ANSI escapes, carriage returns or other control characters', () => {
  assert.equal(plainText('\x1b[2J\x1b[1;1HiPXE\r\r\n\x1b[6nready\x07\tdone\n'), 'iPXE\nready\tdone\n');
});

test('failureReport: the last lines of every watched output, under its label, and all of it saved to a file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-report-test-'));
  const console = Array.from({ length: 100 }, (_, i) => `console line ${i + 1}`).join('\r\n');
  const stopConsole = watchOutput('QEMU console of 52:54:00:12:34:56 (bios)', () => console, { lines: 3 });
  const stopServer = watchOutput('rackboot serve log', () => '{"msg":"rackboot is serving"}\n{"msg":"dhcp offer"}', { shared: true });
  try {
    const report = failureReport('a boot', dir);
    const lines = report.split('\n');
    assert.equal(lines[0], '===== "a boot" failed; what its processes printed =====');
    const files = (await readdir(dir)).sort();
    assert.deepEqual(files, ['1-QEMU-console-of-52-54-00-12-34-56-bios-.log', '2-rackboot-serve-log.log']);
    assert.equal(lines[1], `----- QEMU console of 52:54:00:12:34:56 (bios): last 3 of 100 lines, all of it in ${join(dir, files[0]!)} -----`);
    assert.deepEqual(lines.slice(2, 5), ['console line 98', 'console line 99', 'console line 100']);
    assert.equal(lines[5], `----- rackboot serve log: last 2 of 2 lines, all of it in ${join(dir, files[1]!)} -----`);
    assert.deepEqual(lines.slice(6, 8), ['{"msg":"rackboot is serving"}', '{"msg":"dhcp offer"}']);
    assert.equal(lines[8], '===== end of the report for "a boot" =====');
    assert.equal((await readFile(join(dir, files[0]!), 'utf8')).split('\n').length, 100);
  } finally {
    stopConsole();
    stopServer();
    await rm(dir, { recursive: true, force: true });
  }
  assert.equal(failureReport('nothing watched', undefined), '', 'no report when nothing is watched');
});

test('failureReport: an output that cannot be read says so, and the others still print', () => {
  const stopBroken = watchOutput('broken', () => {
    throw new Error('gone');
  });
  const stopServer = watchOutput('rackboot serve log', () => 'last words');
  try {
    const report = failureReport('x', undefined);
    assert.match(report, /----- broken: last 1 of 1 lines -----\n\(cannot read it: gone\)\n/);
    assert.match(report, /----- rackboot serve log: last 1 of 1 lines -----\nlast words\n/);
  } finally {
    stopBroken();
    stopServer();
  }
});
