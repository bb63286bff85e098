/**
 * A minimal ELF64 relocatable with a .modinfo section, the part of a kernel
 * module the builder reads; built here so unit tests need no kernel package.
 */
export function fakeModule(modinfo: string[]): Buffer {
  const info = Buffer.from(modinfo.map((s) => `${s}\0`).join(''), 'utf8');
  const names = Buffer.from('\0.modinfo\0.shstrtab\0', 'latin1');
  const infoAt = 64;
  const namesAt = infoAt + info.length;
  const shoff = Math.ceil((namesAt + names.length) / 8) * 8;
  const out = Buffer.alloc(shoff + 3 * 64);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // ELF, 64-bit, little-endian, version 1
  out.writeUInt16LE(1, 0x10); // ET_REL
  out.writeUInt16LE(62, 0x12); // EM_X86_64
  out.writeBigUInt64LE(BigInt(shoff), 0x28);
  out.writeUInt16LE(64, 0x34); // e_ehsize
  out.writeUInt16LE(64, 0x3a); // e_shentsize
  out.writeUInt16LE(3, 0x3c); // e_shnum
  out.writeUInt16LE(2, 0x3e); // e_shstrndx
  info.copy(out, infoAt);
  names.copy(out, namesAt);
  const section = (index: number, name: number, type: number, offset: number, size: number): void => {
    const at = shoff + index * 64;
    out.writeUInt32LE(name, at);
    out.writeUInt32LE(type, at + 4);
    out.writeBigUInt64LE(BigInt(offset), at + 0x18);
    out.writeBigUInt64LE(BigInt(size), at + 0x20);
  };
  section(1, 1, 1, infoAt, info.length); // .modinfo, SHT_PROGBITS
  section(2, 10, 3, namesAt, names.length); // .shstrtab, SHT_STRTAB
  return out;
}
