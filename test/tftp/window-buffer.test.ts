import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { RandomAccessContent } from '../../server/tftp/io/file.js';
import { WindowBuffer } from '../../server/tftp/io/window-buffer.js';

/** Random access over bytes in memory, counting reads. */
function memoryContent(bytes: Buffer): RandomAccessContent & { reads: number } {
  const content = {
    reads: 0,
    readv: async (buffers: Buffer[], position: number) => {
      content.reads += 1;
      let read = 0;
      for (const buffer of buffers) {
        const got = bytes.copy(buffer, 0, position + read, Math.min(bytes.length, position + read + buffer.length));
        read += got;
        if (got < buffer.length) break;
      }
      return read;
    },
    close: () => undefined,
  };
  return content;
}

/** Block `index` of the window as a DATA packet; checks its header and returns the payload. */
function block(window: WindowBuffer, index: number): Buffer {
  const packet = window.packet(index, index & 0xffff);
  assert.deepEqual([...packet.subarray(0, 4)], [0, 3, (index >> 8) & 0xff, index & 0xff], `DATA header of block ${index}`);
  return packet.subarray(4);
}

test('WindowBuffer: blocks come out right across many wraps of the buffer, one or two reads per window', async () => {
  for (const size of [0, 7, 8, 8 * 5, 8 * 37 + 3]) {
    const bytes = randomBytes(size);
    const content = memoryContent(bytes);
    const window = new WindowBuffer(content, size, 8, 3);
    assert.equal(window.finalIndex, Math.floor(size / 8) + 1);
    const received: Buffer[] = [];
    // Windows that advance by 2 of 3 blocks each time, so slots wrap unevenly.
    let acked = 0;
    while (acked < window.finalIndex) {
      const end = Math.min(acked + 3, window.finalIndex);
      if (window.highestRead < end) await window.fill(window.highestRead + 1, end, false);
      received.push(Buffer.from(block(window, acked + 1)));
      if (acked + 2 <= end) received.push(Buffer.from(block(window, acked + 2)));
      acked = Math.min(acked + 2, end);
    }
    assert.deepEqual(Buffer.concat(received), bytes, `size ${size}`);
    assert.equal(received.at(-1)!.length, size % 8, 'the last block is the short one (empty for a multiple of 8)');
  }
});

test('WindowBuffer: a small file asked for with big blocks and windows gets a small buffer; a short file fails the read', async () => {
  const window = new WindowBuffer(memoryContent(randomBytes(300)), 300, 65464, 64);
  await window.fill(1, 64, false);
  assert.equal(block(window, 1).length, 300);
  const shrunk = new WindowBuffer(memoryContent(randomBytes(100)), 1000, 512, 4);
  await assert.rejects(shrunk.fill(1, 4, false), /file ended at 100 bytes, 1000 expected/u);
});

test('WindowBuffer: at windowsize 1 it reads ahead 64 KiB at a time, never past what is acknowledged + capacity', async () => {
  const size = 1024 * 1024;
  const bytes = randomBytes(size);
  const content = memoryContent(bytes);
  const window = new WindowBuffer(content, size, 1468, 1);
  assert.equal(window.capacity, Math.ceil(65536 / 1468));
  const received: Buffer[] = [];
  for (let index = 1; index <= window.finalIndex; index += 1) {
    // Lock-step: block index - 1 is acknowledged when block index is wanted.
    if (index > window.highestRead) await window.fill(index, index - 1 + window.capacity, false);
    received.push(Buffer.from(block(window, index)));
  }
  assert.deepEqual(Buffer.concat(received), bytes);
  assert.equal(content.reads, Math.ceil(window.finalIndex / window.capacity));
});

test('WindowBuffer: prefetch reads the next blocks while earlier ones are out, so a lock-step reader never waits', async () => {
  const size = 1024 * 1024 + 17;
  const bytes = randomBytes(size);
  const content = memoryContent(bytes);
  const window = new WindowBuffer(content, size, 1468, 1);
  await window.fill(1, window.capacity, false);
  const received: Buffer[] = [];
  let waited = 0;
  for (let index = 1; index <= window.finalIndex; index += 1) {
    if (index > window.highestRead) {
      waited += 1;
      await window.fill(index, index - 1 + window.capacity, false);
    }
    received.push(Buffer.from(block(window, index)));
    // Block index is acknowledged: read ahead, and let the read finish as the client's reply would.
    window.prefetch(index, () => false);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  assert.deepEqual(Buffer.concat(received), bytes);
  assert.equal(waited, 0, 'every block was read before it was wanted');
  // Runs of at least half the buffer (two reads where a run wraps around it): never one read per block.
  assert.ok(content.reads <= 2 * (Math.ceil(window.finalIndex / Math.floor(window.capacity / 2)) + 1), `${content.reads} reads`);
});

test('WindowBuffer: a fill waits for the prefetch under way; a failed prefetch fails the next fill; close waits for the read', async () => {
  const bytes = randomBytes(1024 * 500);
  let release: (() => void) | undefined;
  let closed = 0;
  const slow: RandomAccessContent = {
    readv: async (buffers, position) => {
      await new Promise<void>((resolve) => (release = resolve));
      let read = 0;
      for (const buffer of buffers) read += bytes.copy(buffer, 0, position + read, position + read + buffer.length);
      return read;
    },
    close: () => (closed += 1),
  };
  // 64 slots of 1024 bytes: each read below is one run, one readv.
  const window = new WindowBuffer(slow, bytes.length, 1024, 4);
  const first = window.fill(1, window.capacity, false);
  release!();
  await first;
  window.prefetch(window.capacity, () => false);
  const filled = window.fill(window.capacity + 1, 2 * window.capacity, false);
  await new Promise<void>((resolve) => setImmediate(resolve));
  release!();
  await filled;
  assert.deepEqual(block(window, window.capacity + 1), bytes.subarray(1024 * window.capacity, 1024 * (window.capacity + 1)));

  window.prefetch(2 * window.capacity, () => false);
  window.close();
  assert.equal(closed, 0, 'the content stays open while a read is under way');
  release!();
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(closed, 1);

  const failing = new WindowBuffer({ readv: async () => 10, close: () => undefined }, 1000, 64, 4);
  failing.prefetch(0, () => false);
  await new Promise<void>((resolve) => setImmediate(resolve));
  await assert.rejects(failing.fill(1, 4, false), /file ended at 10 bytes, 1000 expected/u);
});
