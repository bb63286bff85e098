import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { RateLimitedLog } from '../server/log.js';

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
afterEach(() => mock.timers.reset());

/** The lines a RateLimitedLog writes, with the fake clock's time of each. */
function recorder(): { log: RateLimitedLog; lines: Array<[number, Record<string, number>, Record<string, unknown>]> } {
  const lines: Array<[number, Record<string, number>, Record<string, unknown>]> = [];
  const log = new RateLimitedLog((counts, last) => lines.push([Date.now(), counts, last]), 10_000);
  return { log, lines };
}

test('the first event of each reason is written at once, even in the middle of another reason’s flood', () => {
  const { log, lines } = recorder();
  log.note('per-address', { remote: 'a' });
  for (let i = 0; i < 99; i += 1) log.note('per-address', { remote: 'b' });
  mock.timers.tick(3000);
  log.note('total', { remote: 'c' });
  assert.deepEqual(lines, [
    [0, { 'per-address': 1 }, { remote: 'a' }],
    [3000, { total: 1 }, { remote: 'c' }],
  ]);
  mock.timers.tick(7000);
  // The rest of the window is one line, with the fields of the last event.
  assert.deepEqual(lines.at(-1), [10_000, { 'per-address': 99 }, { remote: 'b' }]);
  assert.equal(lines.length, 3);
});

test('a flood costs one line per window; a reason quiet for a whole window is written at once again', () => {
  const { log, lines } = recorder();
  for (let second = 0; second < 30; second += 1) {
    for (let i = 0; i < 10; i += 1) log.note('flood');
    mock.timers.tick(1000);
  }
  assert.deepEqual(
    lines.map(([time, counts]) => [time, counts]),
    [
      [0, { flood: 1 }],
      [10_000, { flood: 99 }],
      [20_000, { flood: 100 }],
      [30_000, { flood: 100 }],
    ],
  );
  // Quiet from 30 s to 50 s: the next event is written when it happens.
  mock.timers.tick(20_000);
  assert.equal(lines.length, 4);
  log.note('flood', { again: true });
  assert.deepEqual(lines.at(-1), [50_000, { flood: 1 }, { again: true }]);
});

test('stop() forgets what was counted: nothing stale is written later, and the next event is written at once', () => {
  const { log, lines } = recorder();
  log.note('down');
  log.note('down');
  log.stop();
  mock.timers.tick(60_000);
  assert.equal(lines.length, 1);
  log.note('down');
  assert.deepEqual(lines.at(-1), [60_000, { down: 1 }, {}]);
});
