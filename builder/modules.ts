/**
 * Kernel module dependencies, pure. Debian's linux-image package ships no
 * modules.dep (depmod writes it at install time), so the build reads each
 * module's own ".modinfo" section ("depends=a,b") and writes a modules.dep for
 * exactly the modules the runtime carries, in depmod's format, so busybox
 * modprobe works there too.
 */

/**
 * modules.dep as a map: module path relative to /lib/modules/KVER
 * ("kernel/net/bridge/bridge.ko") to the paths of everything it needs,
 * transitively, in depmod's order (modprobe loads the list from its end).
 */
export type ModulesDep = Map<string, string[]>;

/** "kernel/drivers/net/xen-netback/xen-netback.ko" -> "xen_netback" (the kernel treats - and _ alike). */
export function moduleNameOf(pathOrName: string): string {
  const base = pathOrName.slice(pathOrName.lastIndexOf('/') + 1);
  return base.replace(/\.ko(\.(xz|gz|zst))?$/, '').replaceAll('-', '_');
}

/** Parse modules.dep text ("path: dep dep ..."); blank lines and # comments are skipped. */
export function parseModulesDep(text: string): ModulesDep {
  const dep: ModulesDep = new Map();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon < 1) throw new Error(`modules.dep line ${index + 1} has no "path:" prefix: "${line}"`);
    const path = line.slice(0, colon).trim();
    const deps = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    dep.set(path, deps);
  });
  return dep;
}

/** modules.dep text, one line per module, sorted by path. */
export function formatModulesDep(dep: ModulesDep): string {
  return [...dep.keys()]
    .sort()
    .map((path) => {
      const deps = dep.get(path)!;
      return deps.length === 0 ? `${path}:\n` : `${path}: ${deps.join(' ')}\n`;
    })
    .join('');
}

/**
 * Everything the named modules need, in an order insmod can load them
 * (dependencies first; among equals, the order the names were asked for).
 * `direct` gives a module's direct dependencies by path; it may be a full
 * modules.dep, whose transitive lists give the same answer.
 */
export function loadOrder(direct: ModulesDep, roots: string[]): { order: string[]; missing: string[] } {
  const byName = new Map<string, string>();
  for (const path of direct.keys()) byName.set(moduleNameOf(path), path);
  const order: string[] = [];
  const missing: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (path: string, chain: string[]): void => {
    const seen = state.get(path);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new Error(`module dependency cycle: ${[...chain, path].map(moduleNameOf).join(' -> ')}`);
    const deps = direct.get(path);
    if (deps === undefined) {
      if (!missing.includes(path)) missing.push(path);
      return;
    }
    state.set(path, 'visiting');
    for (const d of deps) visit(d, [...chain, path]);
    state.set(path, 'done');
    order.push(path);
  };
  for (const root of roots) {
    const path = byName.get(moduleNameOf(root));
    if (path === undefined) {
      if (!missing.includes(root)) missing.push(root);
      continue;
    }
    visit(path, []);
  }
  return { order, missing };
}

/**
 * Turn direct dependencies into depmod's transitive form for the modules in
 * `paths`: each module lists all it needs, the first to load last.
 */
export function transitiveModulesDep(direct: ModulesDep, paths: string[]): ModulesDep {
  const out: ModulesDep = new Map();
  for (const path of paths) {
    const { order, missing } = loadOrder(direct, [path]);
    if (missing.length > 0) throw new Error(`module ${path} needs ${missing.join(', ')}, which is not known`);
    out.set(path, order.filter((p) => p !== path).reverse());
  }
  return out;
}

/**
 * The strings of an ELF relocatable's ".modinfo" section ("license=GPL",
 * "depends=mii", ...), as key -> values. Only little-endian ELF64 (x86-64
 * modules) is read; anything else is an error naming what was found.
 */
export function parseModinfo(elf: Uint8Array): Map<string, string[]> {
  const buf = Buffer.from(elf.buffer, elf.byteOffset, elf.length);
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('module is not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error(`module has ELF class ${buf[4]} data ${buf[5]}, want 2 (64-bit) and 1 (little-endian)`);
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  if (shentsize !== 64 || shoff + shnum * 64 > buf.length || shstrndx >= shnum) {
    throw new Error(`module section table is malformed (offset ${shoff}, ${shnum} entries of ${shentsize} bytes)`);
  }
  const section = (i: number): { name: number; offset: number; size: number } => {
    const at = shoff + i * 64;
    return { name: buf.readUInt32LE(at), offset: Number(buf.readBigUInt64LE(at + 0x18)), size: Number(buf.readBigUInt64LE(at + 0x20)) };
  };
  const names = section(shstrndx);
  const nameOf = (offset: number): string => {
    const start = names.offset + offset;
    const end = buf.indexOf(0, start);
    return buf.toString('latin1', start, end < 0 ? buf.length : end);
  };
  const info = new Map<string, string[]>();
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    if (nameOf(s.name) !== '.modinfo') continue;
    if (s.offset + s.size > buf.length) throw new Error('module .modinfo section runs past the end of the file');
    for (const item of buf.toString('utf8', s.offset, s.offset + s.size).split('\0')) {
      const eq = item.indexOf('=');
      if (eq < 1) continue;
      const key = item.slice(0, eq);
      info.set(key, [...(info.get(key) ?? []), item.slice(eq + 1)]);
    }
    return info;
  }
  throw new Error('module has no .modinfo section');
}

/** Module names from a modinfo "depends" value ("" or "a,b"). */
export function dependsOf(info: Map<string, string[]>): string[] {
  return (info.get('depends') ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean)
    .map(moduleNameOf);
}

/** modinfo "softdep=pre: a b post: c": the modules to load before this one. */
export function softPreOf(info: Map<string, string[]>): string[] {
  const names: string[] = [];
  for (const value of info.get('softdep') ?? []) {
    let pre = false;
    for (const word of value.split(/\s+/).filter(Boolean)) {
      if (word === 'pre:') pre = true;
      else if (word === 'post:') pre = false;
      else if (pre) names.push(moduleNameOf(word));
    }
  }
  return names;
}

/** What the build learns from one module file: where it is and what it needs, by name. */
export interface ModuleInfo {
  path: string;
  depends: string[];
  softPre: string[];
}

/** Every module of a kernel, by name. */
export type ModuleIndex = Map<string, ModuleInfo>;

export interface ModuleSelection {
  /** modules.dep for the shipped modules only (closed: every listed dependency is shipped). */
  dep: ModulesDep;
  /** Shipped module paths, in a load order insmod can follow. */
  order: string[];
  /** Requested modules the kernel has built in, which need no loading. */
  builtin: string[];
}

/**
 * The modules to ship for `wanted`: their hard dependencies (which must each
 * be a module or built in), and soft "pre:" dependencies when the kernel has
 * them as modules, folded in as hard ones since busybox modprobe reads no
 * modules.softdep.
 */
export function selectModules(index: ModuleIndex, builtin: ReadonlySet<string>, wanted: readonly string[]): ModuleSelection {
  const direct: ModulesDep = new Map();
  const builtinWanted: string[] = [];
  const queue = wanted.map((name) => ({ name: moduleNameOf(name), neededBy: undefined as string | undefined, soft: false }));
  const seen = new Set<string>();
  while (queue.length > 0) {
    const { name, neededBy, soft } = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const info = index.get(name);
    if (info === undefined) {
      if (builtin.has(name)) {
        if (neededBy === undefined) builtinWanted.push(name);
        continue;
      }
      if (soft) continue;
      throw new Error(`kernel module ${name}${neededBy ? ` (needed by ${neededBy})` : ''} is neither a module of this kernel nor built in`);
    }
    direct.set(
      info.path,
      [...info.softPre, ...info.depends].filter((d) => index.has(d)).map((d) => index.get(d)!.path),
    );
    for (const d of info.depends) queue.push({ name: d, neededBy: name, soft: false });
    for (const d of info.softPre) queue.push({ name: d, neededBy: name, soft: true });
  }
  const roots = wanted.map(moduleNameOf).filter((w) => !builtinWanted.includes(w));
  const { order, missing } = loadOrder(direct, roots);
  if (missing.length > 0) throw new Error(`kernel modules not resolved: ${missing.join(', ')}`);
  return { dep: transitiveModulesDep(direct, order), order, builtin: builtinWanted };
}
