import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findMultibootHeaders, isElf } from '../../builder/multiboot.js';

function image(headers: Array<{ at: number; words: number[] }>, size = 40000): Buffer {
  const buf = Buffer.alloc(size);
  buf.set([0x7f, 0x45, 0x4c, 0x46], 0);
  for (const h of headers) h.words.forEach((w, i) => buf.writeUInt32LE(w >>> 0, h.at + i * 4));
  return buf;
}

test('finds Multiboot 1 and 2 headers with valid checksums', () => {
  const flags = 0x00010003;
  const mb1 = { at: 0x1000, words: [0x1badb002, flags, -(0x1badb002 + flags)] };
  const mb2 = { at: 0x2008, words: [0xe85250d6, 0, 24, -(0xe85250d6 + 0 + 24)] };
  assert.deepEqual(findMultibootHeaders(image([mb1, mb2])), [
    { version: 1, offset: 0x1000 },
    { version: 2, offset: 0x2008 },
  ]);
  assert.ok(isElf(image([])));
  assert.ok(!isElf(Buffer.from('MZ\x90\x00')));
});

test('ignores a bad checksum, a misaligned header and one past the search window', () => {
  const flags = 3;
  assert.deepEqual(findMultibootHeaders(image([{ at: 0x100, words: [0x1badb002, flags, 0] }])), []);
  assert.deepEqual(findMultibootHeaders(image([{ at: 0x102, words: [0x1badb002, flags, -(0x1badb002 + flags)] }])), []);
  assert.deepEqual(findMultibootHeaders(image([{ at: 8192, words: [0x1badb002, flags, -(0x1badb002 + flags)] }])), []);
  assert.deepEqual(findMultibootHeaders(image([{ at: 0x2004, words: [0xe85250d6, 0, 16, -(0xe85250d6 + 16)] }])), []);
});
