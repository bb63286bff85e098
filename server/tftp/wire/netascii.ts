/**
 * RFC 1350 netascii (RFC 764 NVT ASCII) as sent by a Unix server: LF becomes
 * CR LF and a bare CR becomes CR NUL. Each byte maps on its own, so chunks
 * can be converted independently.
 */
export function toNetascii(bytes: Uint8Array): Buffer {
  let extra = 0;
  for (const byte of bytes) if (byte === 0x0a || byte === 0x0d) extra += 1;
  if (extra === 0) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = Buffer.alloc(bytes.length + extra);
  let offset = 0;
  for (const byte of bytes) {
    if (byte === 0x0a) {
      out[offset++] = 0x0d;
      out[offset++] = 0x0a;
    } else if (byte === 0x0d) {
      out[offset++] = 0x0d;
      out[offset++] = 0x00;
    } else {
      out[offset++] = byte;
    }
  }
  return out;
}
