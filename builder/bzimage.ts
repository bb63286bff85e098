import { spawn } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { isElf } from './multiboot.js';

/**
 * The kernel ELF inside an x86 bzImage. Linux's boot protocol (version 2.08
 * and later, Documentation/arch/x86/boot.rst) records where the compressed
 * payload lies in the protected-mode part: `payload_offset` (0x248) and
 * `payload_length` (0x24c), counted from the start of that part, which
 * follows the (setup_sects + 1) 512-byte sectors of the real-mode setup.
 * The payload is arch/x86/boot/compressed/vmlinux.bin.*: the kernel as a
 * stripped ELF (objcopy -S), followed by its relocation table.
 *
 * Xen's domain builder (libxenguest's bzImage loader) does this same
 * unpacking into dom0's memory each time it starts a PV guest from a
 * bzImage; with the ELF at hand it maps the file instead.
 */

export type PayloadCompression = 'xz' | 'gzip' | 'zstd' | 'lzma' | 'lz4' | 'bzip2' | 'lzo';

export interface BzImagePayload {
  compression: PayloadCompression;
  data: Uint8Array;
}

const magics: Array<[PayloadCompression, number[]]> = [
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['gzip', [0x1f, 0x8b]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
  ['lz4', [0x02, 0x21, 0x4c, 0x18]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['lzo', [0x89, 0x4c, 0x5a, 0x4f]],
  ['lzma', [0x5d, 0x00, 0x00]],
];

/** The compressed payload of a bzImage, or an error naming the header field that is wrong. Pure. */
export function bzImagePayload(image: Uint8Array): BzImagePayload {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 0x250) throw new Error(`bzImage: ${image.length} bytes is shorter than the setup header`);
  if (view.getUint32(0x202, true) !== 0x53726448) throw new Error('bzImage: no "HdrS" setup header signature at 0x202');
  const version = view.getUint16(0x206, true);
  if (version < 0x208)
    throw new Error(`bzImage: boot protocol ${version >> 8}.${(version & 0xff).toString().padStart(2, '0')} has no payload_offset (want 2.08 or later)`);
  const setupSectors = image[0x1f1] === 0 ? 4 : image[0x1f1]!;
  const start = (setupSectors + 1) * 512 + view.getUint32(0x248, true);
  const length = view.getUint32(0x24c, true);
  if (length === 0 || start + length > image.length) {
    throw new Error(`bzImage: payload at ${start} with length ${length} lies outside the ${image.length}-byte image`);
  }
  const data = image.subarray(start, start + length);
  const found = magics.find(([, magic]) => magic.every((byte, i) => data[i] === byte));
  if (found === undefined) throw new Error(`bzImage: payload starts with ${Buffer.from(data.subarray(0, 6)).toString('hex')}, no known compression`);
  return { compression: found[0], data };
}

/** Decompress with a command's stdin and stdout (xz-utils and zstd read their own formats). */
function decompressWith(cmd: string, args: string[], input: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(chunks));
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
    });
    child.stdin.on('error', () => undefined); // a failing decompressor closes its input early; its exit code says why
    child.stdin.end(input);
  });
}

/** The kernel ELF of a bzImage (the payload unpacked: the stripped vmlinux and its relocations). */
export async function kernelElfOf(bzImage: Uint8Array): Promise<Buffer> {
  const payload = bzImagePayload(bzImage);
  let elf: Buffer;
  switch (payload.compression) {
    case 'gzip':
      elf = gunzipSync(payload.data);
      break;
    case 'xz':
      // The kernel's xz stream carries a CRC32 check, which xz verifies.
      elf = await decompressWith('xz', ['--decompress', '--stdout', '--single-stream'], payload.data);
      break;
    case 'zstd':
      elf = await decompressWith('zstd', ['--decompress', '--stdout', '--quiet'], payload.data);
      break;
    default:
      throw new Error(`bzImage: a ${payload.compression} payload is not supported (xz, gzip or zstd)`);
  }
  if (!isElf(elf)) throw new Error(`bzImage: the ${payload.compression} payload does not unpack to an ELF`);
  return elf;
}
