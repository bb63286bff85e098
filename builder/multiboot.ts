/**
 * Multiboot header search, pure. iPXE's BIOS build and QEMU's -kernel load
 * Xen as a Multiboot (version 1) kernel; the header must sit 4-byte aligned in
 * the first 8192 bytes (Multiboot 0.6.96 section 3.1.1). Multiboot2 headers
 * are 8-byte aligned in the first 32768 bytes (Multiboot2 section 3.1.1).
 */

export interface MultibootHeader {
  version: 1 | 2;
  offset: number;
}

const MB1_MAGIC = 0x1badb002;
const MB2_MAGIC = 0xe85250d6;

export function isElf(image: Uint8Array): boolean {
  return image.length >= 4 && image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46;
}

/** Every valid Multiboot 1 and 2 header in the search windows, checksums verified. */
export function findMultibootHeaders(image: Uint8Array): MultibootHeader[] {
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const found: MultibootHeader[] = [];
  for (let at = 0; at + 12 <= Math.min(image.length, 8192); at += 4) {
    if (view.getUint32(at, true) !== MB1_MAGIC) continue;
    const flags = view.getUint32(at + 4, true);
    const checksum = view.getUint32(at + 8, true);
    if ((MB1_MAGIC + flags + checksum) >>> 0 === 0) found.push({ version: 1, offset: at });
  }
  for (let at = 0; at + 16 <= Math.min(image.length, 32768); at += 8) {
    if (view.getUint32(at, true) !== MB2_MAGIC) continue;
    const architecture = view.getUint32(at + 4, true);
    const length = view.getUint32(at + 8, true);
    const checksum = view.getUint32(at + 12, true);
    if ((MB2_MAGIC + architecture + length + checksum) >>> 0 === 0) found.push({ version: 2, offset: at });
  }
  return found;
}
