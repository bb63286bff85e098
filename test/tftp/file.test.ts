import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { BlockReader } from '../../server/tftp/io/block-reader.js';
import { fileFromBuffer, fileFromDisk, NotRegularFileError, type TftpSource } from '../../server/tftp/io/file.js';
import { toNetascii } from '../../server/tftp/wire/netascii.js';

async function readAllBlocks(source: TftpSource, blockSize: number, netascii = false): Promise<Buffer[]> {
  const reader = new BlockReader(source, netascii);
  const blocks: Buffer[] = [];
  for (;;) {
    const block = await reader.read(blockSize);
    blocks.push(block);
    if (block.length < blockSize) break;
  }
  reader.close();
  return blocks;
}

/** A stream that hands out the content in chunks of awkward, varying sizes. */
function raggedStream(content: Buffer): Readable {
  const sizes = [1, 7, 511, 513, 1468, 3, 65536, 2];
  return Readable.from(
    (function* () {
      let offset = 0;
      for (let i = 0; offset < content.length; i += 1) {
        const size = sizes[i % sizes.length]!;
        yield content.subarray(offset, offset + size);
        offset += size;
      }
    })(),
  );
}

describe('TftpFile sources', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'rackboot-tftp-file-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('fileFromDisk streams a regular file and reports its size', async () => {
    const content = randomBytes(200_000);
    writeFileSync(join(dir, 'kernel'), content);
    const file = await fileFromDisk(join(dir, 'kernel'));
    assert.equal(file.size, 200_000);
    const source = file.open();
    assert.ok(source instanceof Readable, 'on-disk files are streamed, not read into memory');
    assert.deepEqual(Buffer.concat(await readAllBlocks(source, 1468)), content);
    // Each open() is a fresh stream from the first byte.
    assert.deepEqual(Buffer.concat(await readAllBlocks(file.open(), 512)), content);
  });

  test('fileFromDisk serves an empty file', async () => {
    writeFileSync(join(dir, 'empty'), '');
    const file = await fileFromDisk(join(dir, 'empty'));
    assert.equal(file.size, 0);
    assert.deepEqual(await readAllBlocks(file.open(), 512), [Buffer.alloc(0)]);
  });

  test('fileFromDisk stops at the size it reported when the file grows', async () => {
    writeFileSync(join(dir, 'growing'), 'abc');
    const file = await fileFromDisk(join(dir, 'growing'));
    writeFileSync(join(dir, 'growing'), 'abcdef');
    assert.equal(Buffer.concat(await readAllBlocks(file.open(), 512)).toString(), 'abc');
  });

  test('fileFromDisk follows a symbolic link to a regular file', async () => {
    writeFileSync(join(dir, 'target'), 'x');
    symlinkSync(join(dir, 'target'), join(dir, 'link'));
    assert.equal((await fileFromDisk(join(dir, 'link'))).size, 1);
  });

  test('fileFromDisk refuses directories, FIFOs and devices', async () => {
    mkdirSync(join(dir, 'folder'));
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    for (const path of [join(dir, 'folder'), join(dir, 'fifo'), '/dev/zero']) {
      await assert.rejects(fileFromDisk(path), (err: unknown) => {
        assert.ok(err instanceof NotRegularFileError);
        assert.equal(err.code, 'ENOTREGULAR');
        assert.equal(err.message, `${path} is not a regular file`);
        return true;
      });
    }
  });

  test('fileFromDisk passes on the fs error for a missing file', async () => {
    await assert.rejects(fileFromDisk(join(dir, 'missing')), { code: 'ENOENT' });
  });

  test('fileFromBuffer serves the same bytes on every open, without copying', async () => {
    const content = Buffer.from('#!ipxe\nchain http://198.18.0.1/boot\n');
    const file = fileFromBuffer(content);
    assert.equal(file.size, content.length);
    assert.equal(file.open(), content);
    assert.deepEqual(Buffer.concat(await readAllBlocks(file.open(), 8)), content);
  });
});

describe('BlockReader', () => {
  const content = randomBytes(100_003);

  for (const blockSize of [8, 512, 1468, 65464]) {
    test(`cuts ragged stream chunks into ${blockSize}-byte blocks`, async () => {
      const blocks = await readAllBlocks(raggedStream(content), blockSize);
      assert.deepEqual(Buffer.concat(blocks), content);
      assert.ok(blocks.slice(0, -1).every((block) => block.length === blockSize));
      assert.ok(blocks.at(-1)!.length < blockSize);
    });
  }

  test('ends with an empty block when the size is a multiple of the block size', async () => {
    const blocks = await readAllBlocks(Buffer.alloc(1024, 1), 512);
    assert.deepEqual(
      blocks.map((block) => block.length),
      [512, 512, 0],
    );
    const streamed = await readAllBlocks(Readable.from([Buffer.alloc(1024, 1)]), 512);
    assert.deepEqual(
      streamed.map((block) => block.length),
      [512, 512, 0],
    );
  });

  test('accepts strings and async generators', async () => {
    async function* generate(): AsyncGenerator<string | Uint8Array> {
      yield 'ab';
      yield new Uint8Array([0x63]);
    }
    assert.equal(Buffer.concat(await readAllBlocks(generate(), 2)).toString(), 'abc');
  });

  test('passes a stream error on to the reader', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk on fire'));
      },
    });
    const reader = new BlockReader(failing, false);
    await assert.rejects(reader.read(512), /disk on fire/u);
  });

  test('close() destroys the underlying stream', async () => {
    const stream = raggedStream(content);
    const reader = new BlockReader(stream, false);
    await reader.read(512);
    reader.close();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(stream.destroyed, true);
  });

  test('netascii: LF becomes CR LF and CR becomes CR NUL, across chunk boundaries', async () => {
    assert.deepEqual(toNetascii(Buffer.from('a\nb\rc')), Buffer.from('a\r\nb\r\0c', 'latin1'));
    assert.deepEqual(toNetascii(Buffer.from('plain')), Buffer.from('plain'));
    const text = Buffer.from('line one\nline two\r\n\n'.repeat(100));
    const expected = toNetascii(text);
    assert.deepEqual(Buffer.concat(await readAllBlocks(raggedStream(text), 512, true)), expected);
    assert.deepEqual(Buffer.concat(await readAllBlocks(text, 512, true)), expected);
  });

  test('refuses a source that is neither bytes nor iterable', () => {
    assert.throws(() => new BlockReader({} as unknown as TftpSource, false), /neither bytes nor an async iterable/u);
  });
});
