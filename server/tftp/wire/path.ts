/**
 * What file a read request names, as a relative path with `/` separators.
 * Pure; the caller maps the result onto a folder.
 */

export type RequestPath = { kind: 'path'; path: string } | { kind: 'rejected'; reason: string };

/**
 * Characters some firmware leaves at the end of a file name:
 * - NUL: ROMs that copy a fixed-size, NUL padded DHCP `file` field (the
 *   codec already skips these between name and mode; a name handed in from
 *   elsewhere may still carry them).
 * - 0xFF: option-field padding that old PXE ROMs copy along with the name
 *   from DHCP option 67 (reported against dnsmasq and tftp-hpa for early Intel
 *   and Realtek boot agents).
 * - spaces, tabs, CR, LF: boot file names pasted into DHCP server configs,
 *   carried through verbatim by the firmware.
 */
// Spelled out rather than \s: \s also matches 0xA0, which can end a UTF-8
// sequence ("à" is C3 A0), and the name is still raw bytes at this point.
const trailingJunk = /[\u0000\u00ff \t\r\n\v\f]+$/u;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Normalise the file name from an RRQ (as decoded: one character per byte).
 * - strips trailing NUL, 0xFF and whitespace (see trailingJunk);
 * - decodes the bytes as UTF-8;
 * - treats `\` as a separator: Windows-built boot loaders (pxeboot.n12,
 *   bootmgr.exe, WDS) ask for `Boot\x64\wdsnbp.com`;
 * - drops leading `/` (ROMs that send the DHCP file name `/pxelinux.0`
 *   verbatim), empty segments and `.` segments;
 * - rejects `..` segments and control characters outright rather than
 *   resolving them: a well-behaved client never sends them.
 */
export function normaliseRequestPath(fileName: string): RequestPath {
  const trimmed = fileName.replace(trailingJunk, '');
  let text: string;
  try {
    text = strictUtf8.decode(Buffer.from(trimmed, 'latin1'));
  } catch {
    return { kind: 'rejected', reason: 'file name is not valid UTF-8' };
  }
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) {
      return { kind: 'rejected', reason: `file name has control character 0x${code.toString(16).padStart(2, '0')} at ${i}` };
    }
  }
  const segments = text.split(/[\\/]/u).filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..')) return { kind: 'rejected', reason: 'file name has a ".." segment' };
  if (segments.length === 0) return { kind: 'rejected', reason: 'file name is empty after normalisation' };
  return { kind: 'path', path: segments.join('/') };
}
