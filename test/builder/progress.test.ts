import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LineProgress, NO_PROGRESS, progressFor, renderStepLine, TerminalProgress, type ProgressStream } from '../../builder/progress.js';
import { renderExtraPackages, renderSummaryTable } from '../../builder/summary.js';

/** A stream that keeps what is written, posing as a terminal or not. */
function captured(isTTY: boolean, columns = 100): ProgressStream & { text: string } {
  const stream = {
    text: '',
    isTTY,
    columns,
    write(chunk: string) {
      stream.text += chunk;
      return true;
    },
  };
  return stream;
}

test('a running step with a known total is a bar with percent, amounts and time', () => {
  const line = renderStepLine({ step: 'fetch packages', total: 4 * 1024 * 1024, unit: 'bytes', done: 1024 * 1024, startedMs: 1000 }, 5200, 100);
  assert.equal(line, 'fetch packages  [########......................]   25%  1.0 MiB / 4.0 MiB  4.2 s');
  assert.equal(
    renderStepLine({ step: 'unpack', total: 4, unit: 'items', done: 4, startedMs: 0 }, 400, 100),
    'unpack          [##############################]  100%  4 / 4 items  0.4 s',
  );
  assert.equal(renderStepLine({ step: 'rootfs', total: undefined, unit: 'items', done: 0, startedMs: 0 }, 81_000, 100), 'rootfs          81.0 s');
  assert.equal(
    renderStepLine({ step: 'kernel modules', total: undefined, unit: 'bytes', done: 300 * 1024 * 1024, startedMs: 0 }, 2000, 100),
    'kernel modules  300 MiB  2.0 s',
  );
  assert.equal(renderStepLine({ step: 'fetch packages', total: 100, unit: 'bytes', done: 50, startedMs: 0 }, 0, 30).length, 30, 'cut to the terminal width');
});

test('off a terminal: one plain line per step start and end, with the duration and amount, no escape codes', () => {
  const stream = captured(false);
  const progress = progressFor(stream);
  assert.ok(progress instanceof LineProgress);
  progress.start('fetch packages');
  progress.total('fetch packages', 3 * 1024 * 1024, 'bytes');
  progress.update('fetch packages', 1024);
  progress.end('fetch packages', { ok: true, ms: 1234 });
  progress.start('iso');
  progress.end('iso', { ok: false, ms: 50 });
  assert.equal(
    stream.text,
    [
      'build: step "fetch packages" started',
      'build: step "fetch packages" done in 1.2 s (3.0 MiB)',
      'build: step "iso" started',
      'build: step "iso" failed after 0.1 s',
      '',
    ].join('\n'),
  );
});

test('on a terminal: live lines redrawn in place, a finished step leaves its line above them', () => {
  const stream = captured(true, 81);
  let now = 0;
  const progress = progressFor(stream);
  assert.ok(progress instanceof TerminalProgress);
  const terminal = new TerminalProgress(stream, () => now);
  terminal.start('kernel modules');
  terminal.start('unpack');
  terminal.total('unpack', 4, 'items');
  now = 500;
  terminal.update('unpack', 2);
  now = 550;
  terminal.update('unpack', 3); // within 100 ms of the last draw: not drawn
  now = 560;
  terminal.update('unpack', 4); // the last amount is drawn however soon
  now = 700;
  terminal.end('unpack', { ok: true, ms: 700 });
  now = 900;
  terminal.end('kernel modules', { ok: true, ms: 900 });
  const frames = stream.text.split('\r').filter(Boolean);
  assert.deepEqual(frames, [
    '\x1b[Jkernel modules  0.0 s\n',
    '\x1b[1A\x1b[Jkernel modules  0.0 s\nunpack          0.0 s\n',
    '\x1b[2A\x1b[Jkernel modules  0.0 s\nunpack          [..............................]    0%  0 / 4 items  0.0 s\n',
    '\x1b[2A\x1b[Jkernel modules  0.5 s\nunpack          [###############...............]   50%  2 / 4 items  0.5 s\n',
    '\x1b[2A\x1b[Jkernel modules  0.6 s\nunpack          [##############################]  100%  4 / 4 items  0.6 s\n',
    '\x1b[2A\x1b[Jbuild: step "unpack" done in 0.7 s\nkernel modules  0.7 s\n',
    '\x1b[1A\x1b[Jbuild: step "kernel modules" done in 0.9 s\n',
  ]);
  NO_PROGRESS.start('iso');
});

test('the summary table: full sha256 off a terminal, 16 digits on one; sizes and times aligned right', () => {
  const parts = [
    { name: 'xen', size: 2_500_000, sha256: 'a'.repeat(64), ms: 420 },
    { name: 'undionly.kpxe', size: 73_000, sha256: 'b'.repeat(64), ms: 420 },
    { name: 'initrd.gz', size: 512, sha256: 'c'.repeat(64), ms: 12_345 },
  ];
  assert.equal(
    renderSummaryTable(parts, { terminal: true, totalMs: 20_000 }),
    [
      'part              size  sha256              time',
      '-------------  -------  ----------------  ------',
      `xen            2.4 MiB  ${'a'.repeat(16)}   0.4 s`,
      `undionly.kpxe   71 KiB  ${'b'.repeat(16)}   0.4 s`,
      `initrd.gz        512 B  ${'c'.repeat(16)}  12.3 s`,
      '3 parts, 2.5 MiB, built in 20.0 s',
      '',
    ].join('\n'),
  );
  const full = renderSummaryTable(parts, { terminal: false });
  assert.ok(full.includes(`xen            2.4 MiB  ${'a'.repeat(64)}   0.4 s\n`));
  assert.equal(full.split('\n').length, 6, 'no total line without a total time');
});

test('the extra packages under the summary: each with its version and installed size, dependencies marked, and the total', () => {
  assert.equal(renderExtraPackages([]), '');
  assert.equal(
    renderExtraPackages([
      { package: 'htop', version: '3.2.2-2', installedKiB: 412 },
      { package: 'libnl-3-200', version: '3.7.0-0.2+b1', installedKiB: 175, dependency: true },
      { package: 'tcpdump', version: '4.99.3-1', installedKiB: 1234 },
    ]),
    [
      'extra packages in the runtime (installed size, before pruning):',
      '  htop         3.2.2-2         412 KiB',
      '  libnl-3-200  3.7.0-0.2+b1    175 KiB  (a dependency)',
      '  tcpdump      4.99.3-1        1.2 MiB',
      '  3 packages, 1.8 MiB',
      '',
    ].join('\n'),
  );
});
