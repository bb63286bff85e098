/**
 * The contract every HostLogStore keeps. Run it against each implementation:
 * logStoreContract('name', () => Store.open(...), { verify, reopen }).
 * `reopen` (for stores that keep their lines) gives a second store on the
 * same storage; it may close the first.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { maxTextBytes } from '../../server/logs/syslog.js';
import type { HostLogStore, LoggedBoot, LogLine, NewLogLine } from '../../server/logs/store.js';
import { contractStores, type ContractOptions } from '../support/contract.js';

const t0 = 1_700_000_000_000;
const hostA = '52:54:00:12:34:56';
const hostB = '52:54:00:ab:cd:ef';
const hostC = '02:00:00:00:00:01';

export interface LogStoreContractOptions<S> extends ContractOptions<S> {
  reopen?: (store: S) => Promise<S>;
}

/** A syslog line of `mac`'s boot `boot`, received at t0 + `at`. */
function line(mac: string, boot: number, at: number, text: string, extra: Partial<NewLogLine> = {}): NewLogLine {
  return { mac, boot, receivedAt: t0 + at, source: 'syslog', text, ...extra };
}

/** UTF-8 bytes, counted here rather than by the store's own helper, so a model built with it checks the store. */
const textBytes = (text: string) => Buffer.byteLength(text, 'utf8');
const bytesOf = (lines: readonly LogLine[]) => lines.reduce((sum, each) => sum + textBytes(each.text), 0);

/** Each boot's counts agree with its lines, every line's boot is listed, and stats() adds them up (`macs`: every host in the store). */
async function assertCounted(store: HostLogStore, macs: readonly string[]): Promise<void> {
  const total = { hosts: 0, lines: 0, bytes: 0 };
  for (const mac of macs) {
    const lines = await store.list(mac);
    const boots = await store.boots(mac);
    for (const boot of boots) {
      const own = lines.filter((each) => each.boot === boot.boot);
      assert.deepEqual([boot.lines, boot.bytes], [own.length, bytesOf(own)], `${mac} boot ${boot.boot}: counts against its lines`);
    }
    const listed = new Set(boots.map((boot) => boot.boot));
    assert.deepEqual(
      lines.filter((each) => !listed.has(each.boot)),
      [],
      `${mac}: every line's boot is in boots()`,
    );
    if (lines.length > 0) total.hosts += 1;
    total.lines += lines.length;
    total.bytes += bytesOf(lines);
  }
  assert.deepEqual(await store.stats(), total);
}

export function logStoreContract<S extends HostLogStore>(name: string, make: () => S | Promise<S>, options: LogStoreContractOptions<S> = {}): void {
  describe(`HostLogStore contract: ${name}`, () => {
    const { create, settle, runs } = contractStores(make, options);

    test('startBoot numbers each host’s boots from 1, recording when each began; currentBoot follows', async () => {
      const store = await create();
      assert.equal(await store.currentBoot(hostA), undefined);
      assert.deepEqual(await store.boots(hostA), []);
      assert.equal(await store.startBoot(hostA, t0), 1);
      assert.equal(await store.startBoot(hostB, t0 + 5), 1);
      assert.equal(await store.startBoot(hostA, t0 + 10), 2);
      assert.equal(await store.currentBoot(hostA), 2);
      assert.equal(await store.currentBoot(hostB), 1);
      assert.deepEqual(await store.boots(hostA), [
        { boot: 1, startedAt: t0, lines: 0, bytes: 0 },
        { boot: 2, startedAt: t0 + 10, lines: 0, bytes: 0 },
      ]);
      assert.deepEqual(await store.stats(), { hosts: 0, lines: 0, bytes: 0 }, 'a host without a line is not counted');
    });

    test('append keeps a batch in order with increasing ids; list gives a host its own lines, oldest first, every field back', async () => {
      const store = await create();
      const boot = await store.startBoot(hostA, t0);
      const batch = [
        line(hostA, boot, 1, 'Linux version 6.1.0', { source: 'netconsole', severity: 6 }),
        line(hostB, 0, 2, 'dhcp: lease of 198.18.0.120', { app: 'udhcpc', severity: 5 }),
        line(hostA, boot, 3, 'rackboot-runtime: configured', { source: 'runtime', app: 'rackboot-runtime' }),
        line(hostA, boot, 4, 'iPXE 1.21.1 starting', { source: 'ipxe' }),
        line(hostA, boot, 5, "guest 'web1' ready", { source: 'guest', severity: 0, app: '' }),
      ];
      const stored = await store.append(batch);
      assert.deepEqual(
        stored.map(({ id: _, ...rest }) => rest),
        batch,
      );
      assert.ok(stored.every((each, i) => i === 0 || each.id > stored[i - 1]!.id));
      assert.deepEqual(await store.list(hostA), [stored[0], stored[2], stored[3], stored[4]]);
      assert.deepEqual(await store.list(hostB), [stored[1]]);
      assert.deepEqual(await store.list(hostC), []);
      assert.deepEqual(await store.append([]), []);
      const next = await store.append([line(hostB, 0, 6, 'again')]);
      assert.ok(next[0]!.id > stored[4]!.id, 'ids keep increasing across batches');
      await assertCounted(store, [hostA, hostB, hostC]);
    });

    test('a batch longer than one statement writes keeps every line and field, in order', async () => {
      const store = await create();
      const batch = Array.from({ length: 53 }, (_, i) =>
        line(i % 3 === 0 ? hostB : hostA, 1, i, `line ${i} ${'é'.repeat(i)}`, {
          ...(i % 2 === 0 ? { severity: i % 8 } : {}),
          ...(i % 5 === 0 ? { app: `app${i}` } : {}),
        }),
      );
      const stored = await store.append(batch);
      assert.deepEqual(
        stored.map(({ id: _, ...rest }) => rest),
        batch,
      );
      assert.deepEqual(
        [...(await store.list(hostA)), ...(await store.list(hostB))].sort((x, y) => x.id - y.id),
        stored,
      );
      await assertCounted(store, [hostA, hostB]);
    });

    test('list narrows by boot, by time and after an id; a limit keeps the newest, but the first ones after sinceId', async () => {
      const store = await create();
      await store.startBoot(hostA, t0);
      const first = await store.append([1, 2, 3].map((i) => line(hostA, 1, i * 10, `first ${i}`)));
      await store.startBoot(hostA, t0 + 100);
      const second = await store.append([1, 2, 3, 4].map((i) => line(hostA, 2, 100 + i * 10, `second ${i}`)));
      await store.append([line(hostB, 1, 115, 'another host')]);
      assert.deepEqual(await store.list(hostA, { boot: 1 }), first);
      assert.deepEqual(await store.list(hostA, { boot: 2 }), second);
      assert.deepEqual(await store.list(hostA, { boot: 3 }), []);
      assert.deepEqual(await store.list(hostA, { since: t0 + 30 }), [first[2], ...second], 'since is inclusive');
      assert.deepEqual(await store.list(hostA, { sinceId: first[1]!.id }), [first[2], ...second], 'sinceId is exclusive');
      assert.deepEqual(await store.list(hostA, { limit: 2 }), second.slice(2), 'the newest two, oldest first');
      assert.deepEqual(await store.list(hostA, { boot: 1, limit: 2 }), first.slice(1));
      assert.deepEqual(await store.list(hostA, { sinceId: first[0]!.id, limit: 2 }), first.slice(1, 3), 'the two right after the id');
      assert.deepEqual(await store.list(hostA, { boot: 2, sinceId: second[0]!.id, since: t0 + 130, limit: 5 }), second.slice(2));
      assert.deepEqual(await store.list(hostA, { limit: 0 }), []);
      assert.deepEqual(await store.list(hostA, { sinceId: second[3]!.id }), [], 'nothing after the newest');
      await assert.rejects(store.list(hostA, { limit: -1 }), RangeError);
      await assert.rejects(store.list(hostA, { sinceId: 1.5 }), RangeError);
    });

    test('a follower reads the tail, then pages on with sinceId and a small limit: every line once, in order, while more keep coming', async () => {
      const store = await create();
      const boot = await store.startBoot(hostA, t0);
      let at = 0;
      const some = (count: number) => Array.from({ length: count }, () => line(hostA, boot, at++, `line ${at}`));
      const appended = await store.append(some(5));
      const read = await store.list(hostA, { boot, limit: 2 });
      assert.deepEqual(read, appended.slice(3), 'the tail: the newest two');
      for (const count of [0, 1, 7, 2, 0, 5, 3]) {
        appended.push(...(await store.append(some(count))));
        await store.append([line(hostB, 1, at, 'noise from another host')]);
        for (;;) {
          const page = await store.list(hostA, { boot, sinceId: read.at(-1)!.id, limit: 3 });
          if (page.length === 0) break;
          assert.ok(page.length <= 3);
          read.push(...page);
        }
      }
      assert.deepEqual(read, appended.slice(3));
    });

    test('boots: a line of a boot never started begins it at the line’s time; a newer one becomes current and the next is numbered after it', async () => {
      const store = await create();
      assert.equal(await store.startBoot(hostA, t0), 1);
      await store.append([line(hostA, 1, 10, 'one'), line(hostA, 1, 11, 'two')]);
      await store.append([line(hostA, 0, -100, 'before any boot script'), line(hostA, 0, -90, 'more')]);
      assert.equal(await store.currentBoot(hostA), 1, 'an older boot does not become current');
      await store.append([line(hostA, 5, 50, 'from boot five')]);
      assert.equal(await store.currentBoot(hostA), 5);
      assert.equal(await store.startBoot(hostA, t0 + 60), 6);
      assert.deepEqual(await store.boots(hostA), [
        { boot: 0, startedAt: t0 - 100, lines: 2, bytes: 26 },
        { boot: 1, startedAt: t0, lines: 2, bytes: 6 },
        { boot: 5, startedAt: t0 + 50, lines: 1, bytes: 14 },
        { boot: 6, startedAt: t0 + 60, lines: 0, bytes: 0 },
      ] satisfies LoggedBoot[]);
      await store.append([line(hostC, 3, 0, 'first word from C')]);
      assert.equal(await store.currentBoot(hostC), 3);
      await assertCounted(store, [hostA, hostC]);
    });

    test('bytes are the UTF-8 bytes of the text: accents, CJK, emoji, and texts as long as the codec keeps', async () => {
      const store = await create();
      // 2, 6, 4, 8192, 8190 and 24 bytes.
      const texts = ['é', '中文', '😀', 'a'.repeat(maxTextBytes), '€'.repeat(2730), 'naïve 🦀 über 日本'];
      const stored = await store.append(texts.map((text, i) => line(hostA, 1, i, text)));
      assert.deepEqual(
        (await store.list(hostA)).map((each) => each.text),
        texts,
        'read back exactly',
      );
      const expected = 2 + 6 + 4 + 8192 + 8190 + 24;
      assert.equal(bytesOf(stored), expected);
      assert.deepEqual(await store.boots(hostA), [{ boot: 1, startedAt: t0, lines: texts.length, bytes: expected }]);
      assert.deepEqual(await store.stats(), { hosts: 1, lines: texts.length, bytes: expected });

      // 'ab' 2 bytes, '😀😀' 8 (4 UTF-16 units, 2 characters), 'é' 2 (1 unit): 12 bytes, over 10 only counted in bytes.
      await store.append([line(hostB, 1, 0, 'ab'), line(hostB, 1, 1, '😀😀'), line(hostB, 1, 2, 'é')]);
      assert.equal(await store.prune({ maxBytesPerHost: maxTextBytes * 3 }), 0, 'host A is within a budget of three long lines');
      assert.equal(await store.prune({ maxBytesPerHost: 10 }), 5 + 1, 'A keeps its newest (24 bytes); B drops "ab"');
      assert.deepEqual(
        (await store.list(hostB)).map((each) => each.text),
        ['😀😀', 'é'],
      );
      await assertCounted(store, [hostA, hostB]);
    });

    test('a batch with a line no store can keep is refused whole, naming the line; the next batch goes on from the same ids', async () => {
      const store = await create();
      const before = await store.append([line(hostA, 1, 0, 'kept')]);
      const bad: Array<[Partial<NewLogLine>, RegExp]> = [
        [{ severity: 9 }, /log line 2 of 3 \(52:54:00:12:34:56\): severity 9 is not 0 to 7/],
        [{ source: 'kernel' as never }, /source "kernel" is not one of syslog, netconsole, ipxe, runtime, guest/],
        [{ boot: -1 }, /boot -1 is not a whole number from 0/],
        [{ receivedAt: t0 + 0.5 }, /receivedAt .* is not a time in whole milliseconds/],
        [{ text: 'a\0b' }, /text has NUL at character 1/],
        [{ mac: '' }, /mac is empty/],
      ];
      for (const [change, message] of bad) {
        await assert.rejects(
          store.append([line(hostA, 1, 1, 'good'), { ...line(hostA, 1, 2, 'bad'), ...change }, line(hostA, 1, 3, 'good')]),
          (error: unknown) => {
            assert.ok(error instanceof RangeError);
            assert.match(error.message, message);
            return true;
          },
        );
      }
      assert.deepEqual(await store.list(hostA), before);
      const after = await store.append([line(hostA, 1, 4, 'next')]);
      assert.ok(after[0]!.id > before[0]!.id);
      await assertCounted(store, [hostA]);
    });

    test('prune by bytes: the oldest lines of a host past its budget go, a host within it keeps all, the newest line stays however long', async () => {
      const store = await create();
      await store.startBoot(hostA, t0);
      await store.append([0, 1, 2].map((i) => line(hostA, 1, i, `a-line-${i}!!`)));
      await store.startBoot(hostA, t0 + 10);
      const a2 = await store.append([0, 1].map((i) => line(hostA, 2, 10 + i, `a-line-${3 + i}!!`)));
      const b = await store.append([0, 1].map((i) => line(hostB, 1, i, `b-line-${i}!!`)));
      assert.equal(bytesOf(b), 20);
      assert.equal(await store.prune({ maxBytesPerHost: 25 }), 3, 'A: 50 bytes, keeps its newest 20');
      assert.deepEqual(await store.list(hostA), a2);
      assert.deepEqual(await store.list(hostB), b, 'B is within its budget');
      assert.deepEqual(
        (await store.boots(hostA)).map((each) => [each.boot, each.lines, each.bytes]),
        [
          [1, 0, 0],
          [2, 2, 20],
        ],
        'a boot emptied for room is still listed (only time forgets boots)',
      );
      const long = await store.append([line(hostA, 2, 20, 'x'.repeat(100))]);
      assert.equal(await store.prune({ maxBytesPerHost: 25 }), 2);
      assert.deepEqual(await store.list(hostA), long, 'the newest line stays over budget');
      assert.equal(await store.prune({ maxBytesPerHost: 0 }), 1, "B's older line goes; each host keeps its newest");
      assert.deepEqual(await store.list(hostB), b.slice(1));
      await assertCounted(store, [hostA, hostB]);
    });

    test('prune by time: lines received before go but each host’s newest; old emptied boots are forgotten, never the current; numbering goes on', async () => {
      const store = await create();
      await store.startBoot(hostA, t0);
      await store.append([line(hostA, 1, 0, 'a1'), line(hostA, 1, 1, 'a2')]);
      await store.startBoot(hostA, t0 + 1000);
      const a2 = await store.append([line(hostA, 2, 1000, 'a3'), line(hostA, 2, 1001, 'a4')]);
      await store.startBoot(hostB, t0);
      const b = await store.append([line(hostB, 1, 0, 'only line of B')]);
      await store.startBoot(hostC, t0);
      assert.equal(await store.prune({ before: t0 + 1000 }), 2);
      assert.deepEqual(await store.list(hostA), a2);
      assert.deepEqual(await store.list(hostB), b, "B's old line is its newest");
      assert.deepEqual(await store.boots(hostA), [{ boot: 2, startedAt: t0 + 1000, lines: 2, bytes: 4 }], 'boot 1 started before and has nothing left');
      assert.deepEqual(await store.boots(hostC), [{ boot: 1, startedAt: t0, lines: 0, bytes: 0 }], "C's only boot is its current one");
      assert.equal(await store.prune({ before: t0 + 1_000_000 }), 1);
      assert.deepEqual(await store.list(hostA), a2.slice(1));
      assert.equal(await store.startBoot(hostA, t0 + 2000), 3);
      assert.equal(await store.startBoot(hostC, t0 + 2000), 2);
      assert.equal(await store.prune({ before: t0 + 1_000_000 }), 0);
      assert.deepEqual(
        (await store.boots(hostC)).map((each) => each.boot),
        [2],
      );
      await assert.rejects(store.prune({ before: -1 }), RangeError);
      await assertCounted(store, [hostA, hostB, hostC]);
    });

    test('random boots, batches and a prune: what stays is exactly what the retention rules keep (property)', async () => {
      const macs = [hostA, hostB, hostC];
      const text = fc.array(fc.constantFrom('a', 'é', '中', '😀', 'boot ok', ' '), { maxLength: 4 }).map((parts) => parts.join(''));
      const step = fc.oneof(
        fc.record({ kind: fc.constant('boot' as const), mac: fc.constantFrom(...macs), gap: fc.integer({ min: 0, max: 500 }) }),
        fc.record({
          kind: fc.constant('lines' as const),
          lines: fc.array(fc.record({ mac: fc.constantFrom(...macs), gap: fc.integer({ min: 0, max: 500 }), text }), { minLength: 1, maxLength: 5 }),
        }),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(step, { maxLength: 25 }),
          fc.option(fc.integer({ min: 0, max: 6000 })),
          fc.option(fc.integer({ min: 0, max: 40 })),
          async (steps, cutoff, budget) => {
            const store = await create();
            try {
              let time = t0;
              const current = new Map<string, number>();
              const boots = new Map<string, Array<{ boot: number; startedAt: number }>>();
              const known = (mac: string) => boots.get(mac) ?? (boots.set(mac, []), boots.get(mac)!);
              const appended: LogLine[] = [];
              for (const entry of steps) {
                if (entry.kind === 'boot') {
                  time += entry.gap;
                  const boot = await store.startBoot(entry.mac, time);
                  assert.equal(boot, (current.get(entry.mac) ?? 0) + 1);
                  current.set(entry.mac, boot);
                  known(entry.mac).push({ boot, startedAt: time });
                  continue;
                }
                const batch = entry.lines.map((each) => line(each.mac, current.get(each.mac) ?? 0, (time += each.gap) - t0, each.text));
                for (const each of batch) {
                  if (!known(each.mac).some((b) => b.boot === each.boot)) known(each.mac).push({ boot: each.boot, startedAt: each.receivedAt });
                  if (!current.has(each.mac)) current.set(each.mac, each.boot);
                }
                appended.push(...(await store.append(batch)));
              }
              const retention = { ...(cutoff !== null ? { before: t0 + cutoff } : {}), ...(budget !== null ? { maxBytesPerHost: budget } : {}) };
              // The model: the time cut (but each host's newest line), then newest first while the bytes fit (and the newest anyway).
              const keptByHost = new Map<string, LogLine[]>();
              let expectedRemoved = 0;
              for (const mac of macs) {
                const own = appended.filter((each) => each.mac === mac);
                const afterTime = own.filter((each, i) => i === own.length - 1 || retention.before === undefined || each.receivedAt >= retention.before);
                let sum = 0;
                const kept = [...afterTime]
                  .reverse()
                  .filter((each, i) => {
                    sum += textBytes(each.text);
                    return i === 0 || retention.maxBytesPerHost === undefined || sum <= retention.maxBytesPerHost;
                  })
                  .reverse();
                keptByHost.set(mac, kept);
                expectedRemoved += own.length - kept.length;
                const forgotten = (b: { boot: number; startedAt: number }) =>
                  retention.before !== undefined && b.startedAt < retention.before && b.boot < current.get(mac)! && !kept.some((each) => each.boot === b.boot);
                boots.set(
                  mac,
                  known(mac)
                    .filter((b) => !forgotten(b))
                    .sort((x, y) => x.boot - y.boot),
                );
              }
              assert.equal(await store.prune(retention), expectedRemoved);
              for (const mac of macs) {
                assert.deepEqual(await store.list(mac), keptByHost.get(mac));
                assert.deepEqual(
                  (await store.boots(mac)).map((each) => [each.boot, each.startedAt]),
                  boots.get(mac)!.map((each) => [each.boot, each.startedAt]),
                );
              }
              await assertCounted(store, macs);
            } finally {
              await settle(store);
            }
          },
        ),
        { numRuns: runs(60) },
      );
    });

    test('after close, calls fail; closing again does nothing', async () => {
      const store = await create();
      await store.append([line(hostA, 1, 0, 'before close')]);
      await store.close();
      await store.close();
      await assert.rejects(store.list(hostA), /closed/);
      await assert.rejects(store.append([line(hostA, 1, 1, 'after close')]), /closed/);
      await assert.rejects(store.append([]), /closed/);
    });

    if (options.reopen !== undefined) {
      const reopen = options.reopen;
      test('a store opened again on the same storage sees every committed line and boot; ids and boot numbers go on', async () => {
        const store = await create();
        await store.startBoot(hostA, t0);
        const lines = await store.append([line(hostA, 1, 1, 'committed 😀'), line(hostB, 0, 2, 'committed too')]);
        const again = await reopen(store);
        try {
          assert.deepEqual(await again.list(hostA), [lines[0]]);
          assert.deepEqual(await again.list(hostB), [lines[1]]);
          assert.deepEqual(await again.boots(hostA), [{ boot: 1, startedAt: t0, lines: 1, bytes: textBytes('committed 😀') }]);
          assert.equal(await again.currentBoot(hostB), 0);
          assert.equal(await again.startBoot(hostA, t0 + 10), 2);
          const next = await again.append([line(hostA, 2, 11, 'after reopening')]);
          assert.ok(next[0]!.id > lines[1]!.id, 'ids go on from the last one');
          await assertCounted(again, [hostA, hostB]);
        } finally {
          await again.close();
        }
      });
    }
  });
}
