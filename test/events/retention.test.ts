import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteEventStore } from '../../server/events/sqlite-store.js';
import { startEventRetention } from '../../server/events/retention.js';
import { capturingLogger } from '../support/tftp/logs.js';

const day = 24 * 3600_000;
const now = Date.UTC(2026, 10, 26);

test('the timeline file is pruned at start: older than the days kept, past the events kept per host; every host keeps its newest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rackboot-retention-'));
  try {
    const file = join(dir, 'events.sqlite');
    const store = SqliteEventStore.open(file);
    const macs = Array.from({ length: 20 }, (_, index) => `52:54:00:00:01:${index.toString(16).padStart(2, '0')}`);
    // 20 hosts, 200 days of one boot a day (5 events each): 20,000 events.
    for (let age = 200; age >= 1; age -= 1) {
      store.appendAll(
        macs.flatMap((mac) =>
          ['dhcp-ack', 'tftp', 'booted', 'configured', 'ready'].map((stage, index) => ({
            time: now - age * day + index * 1000,
            mac,
            source: 'runtime' as const,
            stage,
          })),
        ),
      );
    }
    // A host last seen a year ago.
    const gone = store.append({ time: now - 365 * day, mac: '52:54:00:00:02:00', source: 'runtime', stage: 'ready' });
    const { log, lines } = capturingLogger();
    const stop = startEventRetention(store, { days: 30, perHost: 100 }, log, () => now);
    stop();
    for (const mac of macs) {
      const kept = store.listByHost(mac);
      assert.equal(kept.length, 100, 'the newest 100 of 150 from the last 30 days');
      assert.ok(kept.every((event) => event.time >= now - 30 * day));
      assert.equal(kept.at(-1)!.stage, 'ready');
    }
    assert.deepEqual(store.listByHost(gone.mac), [gone], 'a host keeps its newest event however old');
    assert.equal(store.latestByHost().length, 21);
    const pruned = lines.find((line) => line.msg === 'timeline: old events pruned');
    assert.equal(pruned?.removed, 20 * 1000 - 20 * 100);
    store.close();
    assert.ok(statSync(file).size > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
