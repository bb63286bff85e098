import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { RandomAccessContent } from '../../server/tftp/file.js';
import { WindowBuffer } from '../../server/tftp/window-buffer.js';

/** Random access over bytes in memory, counting reads. */
function memoryContent(bytes: Buffer): RandomAccessContent & { reads: number } {
  const content = {
    reads: 0,
    read: async (buffer: Buffer, offset: number, length: number, position: number) => {
      content.reads += 1;
      return bytes.copy(buffer, offset, position, Math.min(bytes.length, position + length));
    },
    close: () => undefined,
  };
  return content;
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
      received.push(Buffer.from(window.block(acked + 1)));
      if (acked + 2 <= end) received.push(Buffer.from(window.block(acked + 2)));
      acked = Math.min(acked + 2, end);
    }
    assert.deepEqual(Buffer.concat(received), bytes, `size ${size}`);
    assert.equal(received.at(-1)!.length, size % 8, 'the last block is the short one (empty for a multiple of 8)');
  }
});

test('WindowBuffer: a small file asked for with big blocks and windows gets a small buffer; a short file fails the read', async () => {
  const window = new WindowBuffer(memoryContent(randomBytes(300)), 300, 65464, 64);
  await window.fill(1, 64, false);
  assert.equal(window.block(1).length, 300);
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
    received.push(Buffer.from(window.block(index)));
  }
  assert.deepEqual(Buffer.concat(received), bytes);
  assert.equal(content.reads, Math.ceil(window.finalIndex / window.capacity));
});
