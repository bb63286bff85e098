import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normaliseRequestPath } from '../../server/tftp/wire/path.js';

/** File names as the codec hands them over: one character per byte. */
const bytes = (text: string): string => Buffer.from(text, 'utf8').toString('latin1');

describe('normaliseRequestPath', () => {
  const accepted: Array<[string, string, string]> = [
    ['a plain name', 'pxelinux.0', 'pxelinux.0'],
    ['a nested path', 'pxelinux.cfg/01-52-54-00-12-34-56', 'pxelinux.cfg/01-52-54-00-12-34-56'],
    ['a leading slash', '/ipxe.efi', 'ipxe.efi'],
    ['several leading slashes', '///boot/ipxe.efi', 'boot/ipxe.efi'],
    ['backslashes (Windows boot loaders)', '\\Boot\\x64\\wdsnbp.com', 'Boot/x64/wdsnbp.com'],
    ['mixed separators and doubled slashes', 'boot\\\\efi//grubx64.efi', 'boot/efi/grubx64.efi'],
    ['"." segments', './boot/./ipxe.efi', 'boot/ipxe.efi'],
    ['a trailing NUL', 'undionly.kpxe\u0000', 'undionly.kpxe'],
    ['trailing 0xFF bytes', 'undionly.kpxe\u00ff\u00ff\u00ff', 'undionly.kpxe'],
    ['a trailing space', 'undionly.kpxe ', 'undionly.kpxe'],
    ['trailing CR LF and tabs', 'undionly.kpxe\t\r\n', 'undionly.kpxe'],
    ['a mix of trailing junk', 'undionly.kpxe \u0000\u00ff \u00ff', 'undionly.kpxe'],
    ['UTF-8 names', bytes('démarrage/à.efi'), 'démarrage/à.efi'],
    // 0xA0 ends the UTF-8 for "à": it is not whitespace to strip.
    ['a name ending in à', bytes('voilà'), 'voilà'],
    ['spaces inside a name', 'my file.bin', 'my file.bin'],
    ['dots that are not segments', '..hidden/a..b/c...', '..hidden/a..b/c...'],
  ];
  for (const [what, input, path] of accepted) {
    test(`accepts ${what}`, () => {
      assert.deepEqual(normaliseRequestPath(input), { kind: 'path', path });
    });
  }

  const rejected: Array<[string, string, string]> = [
    ['a ".." segment', '../etc/passwd', 'file name has a ".." segment'],
    ['a ".." segment after a leading slash', '/boot/../../etc/shadow', 'file name has a ".." segment'],
    ['a ".." segment spelled with backslashes', 'boot\\..\\..\\secret', 'file name has a ".." segment'],
    ['a ".." segment hidden by trailing junk', '..\u00ff', 'file name has a ".." segment'],
    ['only slashes', '///', 'file name is empty after normalisation'],
    ['only junk', ' \u00ff\u0000', 'file name is empty after normalisation'],
    ['a control character inside', 'a\u0001b', 'file name has control character 0x01 at 1'],
    ['a NUL inside', 'a\u0000b', 'file name has control character 0x00 at 1'],
    ['invalid UTF-8', 'caf\u00e9.bin', 'file name is not valid UTF-8'],
  ];
  for (const [what, input, reason] of rejected) {
    test(`rejects ${what}`, () => {
      assert.deepEqual(normaliseRequestPath(input), { kind: 'rejected', reason });
    });
  }
});
