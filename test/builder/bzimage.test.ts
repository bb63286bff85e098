import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, test } from 'node:test';
import { bzImagePayload, kernelElfOf } from '../../builder/bzimage.js';
import { ensureTestBuild } from '../support/build.js';

/**
 * The kernel ELF inside Debian's vmlinuz (the build's own, from the
 * linux-image package), as the Debian runtime ships it for xl to map.
 */

let vmlinuz: Buffer;

before(async () => {
  vmlinuz = await readFile(path.join(await ensureTestBuild(), 'current', 'vmlinuz'));
});

/** ELF64 little-endian program headers: type, file offset and size. */
function programHeaders(elf: Buffer): Array<{ type: number; offset: number; fileSize: number }> {
  const at = Number(elf.readBigUInt64LE(0x20));
  const size = elf.readUInt16LE(0x36);
  const count = elf.readUInt16LE(0x38);
  return Array.from({ length: count }, (_, i) => {
    const h = at + i * size;
    return { type: elf.readUInt32LE(h), offset: Number(elf.readBigUInt64LE(h + 8)), fileSize: Number(elf.readBigUInt64LE(h + 32)) };
  });
}

/** Names and types of the notes in the PT_NOTE segments. */
function notes(elf: Buffer): Array<{ name: string; type: number }> {
  const found: Array<{ name: string; type: number }> = [];
  for (const header of programHeaders(elf).filter((h) => h.type === 4)) {
    for (let at = header.offset; at + 12 <= header.offset + header.fileSize;) {
      const nameSize = elf.readUInt32LE(at);
      const descSize = elf.readUInt32LE(at + 4);
      found.push({ name: elf.toString('latin1', at + 12, at + 12 + nameSize).replace(/\0+$/, ''), type: elf.readUInt32LE(at + 8) });
      at += 12 + Math.ceil(nameSize / 4) * 4 + Math.ceil(descSize / 4) * 4;
    }
  }
  return found;
}

test("Debian's vmlinuz: an xz payload that unpacks to a 64-bit ELF with Xen's PV notes", async () => {
  const payload = bzImagePayload(vmlinuz);
  assert.equal(payload.compression, 'xz');
  assert.ok(payload.data.length > 4_000_000 && payload.data.length < vmlinuz.length, `payload of ${payload.data.length} bytes`);
  const elf = await kernelElfOf(vmlinuz);
  assert.equal(elf[4], 2, 'ELFCLASS64');
  assert.equal(elf.readUInt16LE(0x10), 2, 'ET_EXEC');
  assert.equal(elf.readUInt16LE(0x12), 0x3e, 'EM_X86_64');
  const loads = programHeaders(elf).filter((h) => h.type === 1);
  assert.ok(loads.length >= 2, `${loads.length} PT_LOAD segments`);
  for (const load of loads) assert.ok(load.offset + load.fileSize <= elf.length, 'every loaded segment lies inside the file');
  const xen = notes(elf)
    .filter((n) => n.name === 'Xen')
    .map((n) => n.type);
  // XEN_ELFNOTE_ENTRY (1) and XEN_ELFNOTE_GUEST_OS (6): what makes it bootable as a PV guest without the bzImage.
  assert.ok(xen.includes(1) && xen.includes(6), `Xen notes ${JSON.stringify(xen)}`);
  process.stdout.write(`# vmlinuz ${vmlinuz.length} bytes; its ELF ${elf.length} bytes\n`);
});

test('bzImagePayload: a file that is not a bzImage is refused with the field that is wrong', () => {
  assert.throws(() => bzImagePayload(vmlinuz.subarray(0, 0x100)), /bzImage: 256 bytes is shorter than the setup header/);
  const unsigned = Buffer.from(vmlinuz.subarray(0, 0x1000));
  unsigned.write('NoHd', 0x202, 'latin1');
  assert.throws(() => bzImagePayload(unsigned), /no "HdrS" setup header signature at 0x202/);
  const old = Buffer.from(vmlinuz.subarray(0, 0x1000));
  old.writeUInt16LE(0x0204, 0x206);
  assert.throws(() => bzImagePayload(old), /boot protocol 2\.04 has no payload_offset \(want 2\.08 or later\)/);
  assert.throws(() => bzImagePayload(vmlinuz.subarray(0, 0x1000)), /bzImage: payload at \d+ with length \d+ lies outside the 4096-byte image/);
  const unknown = Buffer.from(vmlinuz);
  const start = (unknown[0x1f1]! + 1) * 512 + unknown.readUInt32LE(0x248);
  unknown.fill(0xaa, start, start + 8);
  assert.throws(() => bzImagePayload(unknown), /payload starts with aaaaaaaaaaaa, no known compression/);
});

test("kernelElfOf: a damaged payload fails with the decompressor's reason", async () => {
  const damaged = Buffer.from(vmlinuz);
  const start = (damaged[0x1f1]! + 1) * 512 + damaged.readUInt32LE(0x248);
  damaged.fill(0, start + 1000, start + 3000);
  await assert.rejects(kernelElfOf(damaged), /xz --decompress --stdout --single-stream exited with 1: /);
});
