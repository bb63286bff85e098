import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCode } from '../../server/tftp/wire/codes.js';
import { fileInRoot, OutsideRootError } from '../../server/tftp/io/root.js';
import { NotRegularFileError } from '../../server/tftp/io/file.js';
import { startServer, type ServerFixture } from '../support/tftp/fixture.js';
import { download, RawClient } from '../support/tftp/raw-client.js';

/**
 * Nothing outside the served folder can be read: the server with a
 * resolve() that maps into one folder through fileInRoot, asked for `..`,
 * absolute paths, links that lead out, and device files. Each refusal is an
 * ERROR packet and nothing else; the secret never leaves.
 *
 * Layout (in a fresh temporary folder):
 *   outside/secret.txt                 what must never be served
 *   root/boot.ipxe                     a normal file
 *   root/inside-link -> boot.ipxe      a link that stays inside: served
 *   root/escape -> ../outside/secret.txt
 *   root/absolute-escape -> /.../outside/secret.txt
 *   root/outside-dir -> ../outside     a folder link out
 *   root/zero -> /dev/zero, root/null (character device made with mknod)
 *   root/fifo (named pipe), root/sub/ (a folder)
 */

describe('TFTP safety: nothing outside the served folder', () => {
  let base: string;
  let root: string;
  let fixture: ServerFixture;
  const secret = 'the root password is hunter2\n';

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'rackboot-tftp-safety-'));
    root = join(base, 'root');
    mkdirSync(root);
    mkdirSync(join(base, 'outside'));
    writeFileSync(join(base, 'outside', 'secret.txt'), secret);
    writeFileSync(join(root, 'boot.ipxe'), '#!ipxe\n');
    symlinkSync('boot.ipxe', join(root, 'inside-link'));
    symlinkSync('../outside/secret.txt', join(root, 'escape'));
    symlinkSync(join(base, 'outside', 'secret.txt'), join(root, 'absolute-escape'));
    symlinkSync('../outside', join(root, 'outside-dir'));
    symlinkSync('/dev/zero', join(root, 'zero'));
    mkdirSync(join(root, 'sub'));
    // Needs root, as the suite's namespace tests do; fails (never skips) without it.
    execFileSync('mknod', [join(root, 'null'), 'c', '1', '3']);
    execFileSync('mkfifo', [join(root, 'fifo')]);
    fixture = await startServer({ resolve: (path) => fileInRoot(root, path) });
  });
  after(async () => {
    await fixture?.close();
    rmSync(base, { recursive: true, force: true });
  });

  /** Send one RRQ and return the single reply, which must be an ERROR. */
  async function refusal(fileName: string): Promise<{ kind: string; code: number; message: string }> {
    const client = await RawClient.open();
    try {
      await client.readRequest(fixture.port, fileName);
      const reply = await client.receive();
      assert.equal(reply.packet.kind, 'error', `${JSON.stringify(fileName)} got ${reply.packet.kind}`);
      assert.ok(!reply.bytes.includes(Buffer.from('hunter2')), 'the secret is not in the reply');
      const more = await client.collect(100);
      assert.deepEqual(more, [], 'nothing after the ERROR');
      return reply.packet as { kind: string; code: number; message: string };
    } finally {
      client.close();
    }
  }

  test('a normal file and a link that stays inside are served', async () => {
    assert.equal((await download(fixture.port, 'boot.ipxe')).content.toString(), '#!ipxe\n');
    assert.equal((await download(fixture.port, 'inside-link')).content.toString(), '#!ipxe\n');
    assert.equal(await download(fixture.port, 'sub/../boot.ipxe').catch((err: Error) => err.message), 'server error 2: file name has a ".." segment');
  });

  test('".." segments are refused, in every spelling firmware might use', async () => {
    for (const name of [
      '../outside/secret.txt',
      '..\\outside\\secret.txt',
      'sub/../../outside/secret.txt',
      '/../outside/secret.txt',
      '..',
      'sub\\..\\..\\outside/secret.txt',
    ]) {
      assert.deepEqual(await refusal(name), { kind: 'error', code: ErrorCode.accessViolation, message: 'file name has a ".." segment' }, name);
    }
  });

  test('absolute paths are taken as relative to the folder, so they name nothing outside it', async () => {
    for (const name of [join(base, 'outside', 'secret.txt'), '/etc/passwd', '\\etc\\passwd', '//etc/passwd']) {
      assert.deepEqual(await refusal(name), { kind: 'error', code: ErrorCode.fileNotFound, message: 'file not found' }, name);
    }
  });

  test('links that lead outside are refused: to a file, by absolute target, through a folder link', async () => {
    for (const name of ['escape', 'absolute-escape', 'outside-dir/secret.txt']) {
      assert.deepEqual(await refusal(name), { kind: 'error', code: ErrorCode.accessViolation, message: 'access violation' }, name);
    }
  });

  test('device files are refused: /dev/zero through a link, a character device and a FIFO inside the folder, a folder', async () => {
    assert.deepEqual(await refusal('zero'), { kind: 'error', code: ErrorCode.accessViolation, message: 'access violation' });
    for (const name of ['null', 'fifo', 'sub']) {
      assert.deepEqual(await refusal(name), { kind: 'error', code: ErrorCode.accessViolation, message: 'not a regular file' }, name);
    }
    assert.equal(fixture.server.activeTransfers, 0, 'nothing left open');
  });

  test('fileInRoot on its own: the same answers, whatever path it is handed', async () => {
    assert.equal((await fileInRoot(root, 'boot.ipxe'))?.size, 7);
    assert.equal(await fileInRoot(root, 'no-such-file'), undefined);
    assert.equal(await fileInRoot(root, 'boot.ipxe/below-a-file'), undefined);
    await assert.rejects(fileInRoot(root, '../outside/secret.txt'), OutsideRootError);
    await assert.rejects(fileInRoot(root, join(base, 'outside', 'secret.txt')), OutsideRootError);
    await assert.rejects(fileInRoot(root, 'escape'), OutsideRootError);
    await assert.rejects(fileInRoot(root, 'zero'), OutsideRootError);
    await assert.rejects(fileInRoot(root, 'fifo'), NotRegularFileError);
    // A root given through a link works the same.
    symlinkSync(root, join(base, 'root-link'));
    assert.equal((await fileInRoot(join(base, 'root-link'), 'inside-link'))?.size, 7);
    await assert.rejects(fileInRoot(join(base, 'root-link'), 'escape'), OutsideRootError);
  });
});
