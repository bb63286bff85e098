import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino, type Logger } from 'pino';
import { FlightRecorder } from '../../server/logs/recorder.js';
import { SqliteLogStore } from '../../server/logs/sqlite-store.js';
import type { HostLogStore, LogLine, NewLogLine } from '../../server/logs/store.js';

let dir: string;
let files = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rackboot-recorder-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mac = '52:54:00:00:71:01';
const other = '52:54:00:00:71:02';
const t0 = Date.parse('2026-12-07T12:00:00Z');

/** A SQLite log store whose writes wait while `held` is set: the store falling behind its senders. */
function gatedStore(): { store: HostLogStore; hold(): void; release(): void; appends: number[] } {
  const inner = SqliteLogStore.open(join(dir, `logs-${files++}.sqlite`));
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  const appends: number[] = [];
  const store: HostLogStore = {
    startBoot: (host, at) => inner.startBoot(host, at),
    currentBoot: (host) => inner.currentBoot(host),
    append: async (lines: readonly NewLogLine[]): Promise<LogLine[]> => {
      appends.push(lines.length);
      await gate;
      return inner.append(lines);
    },
    list: (host, query) => inner.list(host, query),
    boots: (host) => inner.boots(host),
    prune: (retention) => inner.prune(retention),
    stats: () => inner.stats(),
    close: () => inner.close(),
  };
  return {
    store,
    appends,
    hold: () => {
      gate = new Promise((resolve) => (open = resolve));
    },
    release: () => {
      gate = undefined;
      open?.();
    },
  };
}

function capture(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    log: pino({ level: 'info', base: undefined, timestamp: false }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
  };
}

test('the recorder writes lines in batches, each with the boot the host is in, tokens left out', async () => {
  const { store, appends } = gatedStore();
  const { log } = capture();
  const recorder = new FlightRecorder(store, log, { flushMs: 3_600_000, retention: { maxBytesPerHost: 1 << 20, keepMs: 86_400_000 }, now: () => t0 });
  try {
    recorder.add(mac, 'syslog', 'before any boot script', 6, 'kernel', t0);
    recorder.startBoot(mac);
    recorder.add(mac, 'syslog', 'Command line: console=hvc0 rackboot.token=h.AAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBBBBBBBB quiet', 6, 'kernel', t0 + 1);
    recorder.add(other, 'netconsole', 'another host', undefined, undefined, t0 + 2);
    await recorder.flush();
    assert.deepEqual(appends, [3], 'one write for the three lines');
    const lines = await store.list(mac);
    assert.deepEqual(
      lines.map((line) => [line.boot, line.text]),
      [
        [1, 'before any boot script'],
        [1, 'Command line: console=hvc0 rackboot.token=(not kept) quiet'],
      ],
      'the lines gathered before the flush go with the boot the host is in at the flush',
    );
    recorder.startBoot(mac);
    recorder.add(mac, 'syslog', 'second boot', 6, 'kernel', t0 + 3);
    await recorder.flush();
    assert.deepEqual((await store.list(mac)).map((line) => [line.boot, line.text]).at(-1), [2, 'second boot']);
    assert.deepEqual(
      (await store.list(other)).map((line) => [line.boot, line.source, line.text]),
      [[0, 'netconsole', 'another host']],
    );
  } finally {
    await recorder.close();
    await store.close();
  }
});

test('while the store is behind, lines past maxPending drop the oldest, and the drop is logged with its count', async () => {
  const { store, hold, release, appends } = gatedStore();
  const { log, lines: logLines } = capture();
  const recorder = new FlightRecorder(store, log, {
    flushMs: 3_600_000,
    maxPending: 100,
    retention: { maxBytesPerHost: 1 << 20, keepMs: 86_400_000 },
    now: () => t0,
  });
  try {
    recorder.startBoot(mac);
    recorder.add(mac, 'syslog', 'first', 6, 'app', t0);
    hold();
    const stuck = recorder.flush(); // the store holds this write
    while (appends.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // 1050 lines while it is stuck: 100 kept, the 950 oldest of them dropped.
    for (let i = 0; i < 1050; i++) recorder.add(mac, 'syslog', `line ${i}`, 6, 'app', t0 + 1 + i);
    release();
    await stuck;
    await recorder.flush();
    assert.deepEqual(appends, [1, 100]);
    const kept = (await store.list(mac, { limit: 1000 })).map((line) => line.text);
    assert.equal(kept.length, 101);
    assert.equal(kept[0], 'first');
    assert.equal(kept[1], 'line 950', 'the oldest went');
    assert.equal(kept.at(-1), 'line 1049', 'the newest stayed');
    const drops = logLines.filter((line) => String(line.msg).startsWith('logs: the log store fell behind'));
    assert.deepEqual(
      drops.map((line) => line.dropped),
      [950],
    );
    // Below the limit again, nothing more is dropped.
    for (let i = 0; i < 100; i++) recorder.add(mac, 'syslog', `after ${i}`, 6, 'app', t0 + 2000 + i);
    await recorder.flush();
    assert.equal((await store.list(mac, { limit: 1000 })).length, 201);
    assert.equal(logLines.filter((line) => String(line.msg).startsWith('logs: the log store fell behind')).length, 1);
  } finally {
    release();
    await recorder.close();
    await store.close();
  }
});

test('a write the store refuses is logged with the lines and hosts lost, and the recorder goes on', async () => {
  const { store } = gatedStore();
  const { log, lines: logLines } = capture();
  const recorder = new FlightRecorder(store, log, { flushMs: 3_600_000, retention: { maxBytesPerHost: 1 << 20, keepMs: 86_400_000 }, now: () => t0 });
  try {
    recorder.startBoot(mac);
    // NUL is refused by every store (PostgreSQL's text cannot hold it): the whole batch with it.
    recorder.add(mac, 'syslog', 'kept?', 6, 'app', t0);
    recorder.add(other, 'syslog', 'bad \0 line', 6, 'app', t0);
    await recorder.flush();
    const lost = logLines.find((line) => line.msg === 'logs: lines not written to the log store');
    assert.ok(lost, JSON.stringify(logLines));
    assert.equal(lost.lines, 2);
    assert.equal(lost.hosts, 2);
    recorder.add(mac, 'syslog', 'after the failure', 6, 'app', t0 + 1);
    await recorder.flush();
    assert.deepEqual(
      (await store.list(mac)).map((line) => line.text),
      ['after the failure'],
    );
  } finally {
    await recorder.close();
    await store.close();
  }
});
