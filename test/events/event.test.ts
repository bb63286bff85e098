import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseEventReport } from '../../server/events/event.js';

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
    fc.property(fc.oneof(fc.anything(), fc.dictionary(fc.constantFrom('stage', 'detail', 'domain', 'x'), fc.oneof(fc.string(), fc.anything()))), (body) => {
      const result = parseEventReport(body);
      if (!result.ok) assert.ok(result.field.length > 0 && result.message.length > 0);
    }),
    { numRuns: 2000 },
  );
});
