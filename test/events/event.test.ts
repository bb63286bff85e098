import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseEventReport } from '../../server/events/event.js';
import { RepeatedReports } from '../../server/events/repeats.js';

test('reports the runtime and guests send are accepted, with their source', () => {
  assert.deepEqual(parseEventReport({ stage: 'booted' }), { ok: true, event: { source: 'runtime', stage: 'booted' } });
  assert.deepEqual(parseEventReport({ stage: 'setting-failed', detail: 'timezone: Europe/Nowhere not found\n' }), {
    ok: true,
    event: { source: 'runtime', stage: 'setting-failed', detail: 'timezone: Europe/Nowhere not found\n' },
  });
  assert.deepEqual(parseEventReport({ stage: 'guest-ready', domain: 'demo1', detail: 'ip=198.18.0.120/24 mac=02:aa:bb:cc:dd:ee' }), {
    ok: true,
    event: { source: 'guest', stage: 'guest-ready', domain: 'demo1', detail: 'ip=198.18.0.120/24 mac=02:aa:bb:cc:dd:ee' },
  });
  assert.deepEqual(parseEventReport({ stage: 'ready', detail: '' }), { ok: true, event: { source: 'runtime', stage: 'ready' } });
  // A report id is the sender's, for its retries; it is not part of the event.
  assert.deepEqual(parseEventReport({ stage: 'guest-ready', domain: 'deb1', report: '0f7c6a2e-1b5d-4f3a-9c8e-7d6b5a4c3b2a' }), {
    ok: true,
    event: { source: 'guest', stage: 'guest-ready', domain: 'deb1' },
    reportId: '0f7c6a2e-1b5d-4f3a-9c8e-7d6b5a4c3b2a',
  });
  assert.deepEqual(parseEventReport({ stage: 'booted', report: '' }), { ok: true, event: { source: 'runtime', stage: 'booted' } });
});

test('bad reports name the field', () => {
  const rows: Array<[unknown, string, RegExp]> = [
    [null, 'body', /want form fields or a JSON object/],
    [['stage'], 'body', /want form fields/],
    [{}, 'stage', /missing; want one of booted, configured/],
    [{ stage: '' }, 'stage', /missing/],
    [{ stage: 'exploding' }, 'stage', /"exploding" is not a stage/],
    [{ stage: 5 }, 'stage', /want text, got number/],
    [{ stage: ['ready', 'failed'] }, 'stage', /given twice/],
    [{ stage: 'ready', colour: 'blue' }, 'colour', /unknown field; known fields: stage, detail, domain/],
    [{ stage: 'failed', detail: 'x'.repeat(1001) }, 'detail', /1001 characters long; at most 1000/],
    [{ stage: 'failed', detail: 'a\u0000b' }, 'detail', /control character \(U\+0000\)/],
    [{ stage: 'domain-started', domain: 'web/1' }, 'domain', /contains "\/"/],
    [{ stage: 'domain-failed', detail: 'xl create: out of memory' }, 'domain', /missing; stage domain-failed is about one domain/],
    [{ stage: 'guest-ready' }, 'domain', /missing/],
    [{ stage: 'ready', report: 'a b' }, 'report', /want 1 to 64 letters, digits, dots, dashes or underscores/],
    [{ stage: 'ready', report: 'r'.repeat(65) }, 'report', /want 1 to 64/],
    [{ stage: 'ready', report: 7 }, 'report', /want text, got number/],
  ];
  for (const [body, field, message] of rows) {
    const result = parseEventReport(body);
    assert.equal(result.ok, false, JSON.stringify(body));
    if (!result.ok) {
      assert.equal(result.field, field, JSON.stringify(body));
      assert.match(result.message, message);
    }
  }
});

test('parseEventReport never throws, whatever the body (property)', () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.anything(), fc.dictionary(fc.constantFrom('stage', 'detail', 'domain', 'report', 'x'), fc.oneof(fc.string(), fc.anything()))),
      (body) => {
        const result = parseEventReport(body);
        if (!result.ok) assert.ok(result.field.length > 0 && result.message.length > 0);
      },
    ),
    { numRuns: 2000 },
  );
});

test('RepeatedReports: an id is a repeat for 15 minutes, per host, and at most 4096 ids are kept (the oldest go first)', () => {
  const seen = new RepeatedReports();
  const t0 = Date.parse('2026-12-07T12:00:00Z');
  assert.equal(seen.repeated('52:54:00:00:00:01', 'r1', t0), false);
  assert.equal(seen.repeated('52:54:00:00:00:01', 'r1', t0 + 5_000), true);
  assert.equal(seen.repeated('52:54:00:00:00:02', 'r1', t0 + 5_000), false, "another host's id");
  assert.equal(seen.repeated('52:54:00:00:00:01', 'r1', t0 + 15 * 60_000 - 1), true);
  assert.equal(seen.repeated('52:54:00:00:00:01', 'r1', t0 + 15 * 60_000), false, 'forgotten after 15 min, then taken again');
  assert.equal(seen.repeated('52:54:00:00:00:01', 'r1', t0 + 15 * 60_000 + 1), true);

  const small = new RepeatedReports(60_000, 3);
  for (const id of ['a', 'b', 'c', 'd']) assert.equal(small.repeated('m', id, t0), false);
  assert.equal(small.size, 3);
  assert.equal(small.repeated('m', 'd', t0), true);
  assert.equal(small.repeated('m', 'a', t0), false, 'the oldest went first');
  // Expired ids go as new ones come, whatever the capacity.
  assert.equal(small.repeated('m', 'e', t0 + 60_000), false);
  assert.equal(small.size, 1);
});
