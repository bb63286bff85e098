import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { failureReport, plainText, watchOutput } from './support/failure-report.js';

/**
 * The report a failing QEMU test prints (test/support/failure-report.ts):
 * the tail of each watched output, labelled, with the whole text saved.
 */

test('plainText: a serial console without ANSI escapes, carriage returns or other control characters', () => {
  assert.equal(plainText('\x1b[2J\x1b[1;1HiPXE\r\r\n\x1b[6nready\x07\tdone\n'), 'iPXE\nready\tdone\n');
});

test('failureReport: the last lines of every watched output, under its label, and all of it saved to a file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-report-test-'));
  const console = Array.from({ length: 100 }, (_, i) => `console line ${i + 1}`).join('\r\n');
  watchOutput('QEMU console of 52:54:00:12:34:56 (bios)', () => console, { lines: 3 });
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
    stopServer();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a shared output that is released stays in the report of the test running now', () => {
  const release = watchOutput('rackboot serve log', () => "stopped in the test's finally block", { shared: true });
  release();
  assert.match(failureReport('x', undefined), /stopped in the test's finally block/);
});

test('outputs of a test, and shared ones it released, are gone after it; nothing watched, no report', () => {
  assert.equal(failureReport('nothing watched', undefined), '');
});

test('failureReport: an output that cannot be read says so, and the others still print', () => {
  watchOutput('broken', () => {
    throw new Error('gone');
  });
  watchOutput('rackboot serve log', () => 'last words');
  const report = failureReport('x', undefined);
  assert.match(report, /----- broken: last 1 of 1 lines -----\n\(cannot read it: gone\)\n/);
  assert.match(report, /----- rackboot serve log: last 1 of 1 lines -----\nlast words\n/);
});
