import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeCpio, withParentDirectories, type CpioEntry } from './cpio.js';
import { runCommand } from './exec.js';
import { dependsOf, formatModulesDep, loadOrder, moduleNameOf, parseModinfo, transitiveModulesDep, type ModulesDep } from './modules.js';

/**
 * The runtime initrd: busybox, the kernel modules a dom0 needs for its NICs
 * and Xen's backends, and builder/runtime/init. Assembled in memory from the
 * unpacked packages and written as one reproducible gzip'd cpio.
 */

/**
 * Modules the runtime loads at boot, with whatever they depend on. NICs first:
 * those QEMU offers (e1000, e1000e, virtio) and common server and desktop
 * ones that work without firmware files; then the bridge for guest networking
 * and the Xen backends and devices a dom0 toolstack opens.
 */
export const RUNTIME_MODULES = [
  'e1000',
  'e1000e',
  'igb',
  'igc',
  'ixgbe',
  'r8169',
  'tg3',
  'virtio_pci',
  'virtio_net',
  'bridge',
  'xen-evtchn',
  'xen-gntdev',
  'xen-gntalloc',
  'xen-privcmd',
  'xen-netback',
  'xen-blkback',
] as const;

/** Every member's modification time (2000-01-01T00:00:00Z): fixed, so the archive is reproducible. */
export const INITRD_MTIME = 946684800;

export interface ModuleSelection {
  /** modules.dep for the shipped modules only (closed: every listed dependency is shipped). */
  dep: ModulesDep;
  /** Shipped module paths, in a load order insmod can follow. */
  order: string[];
  /** Requested modules the kernel has built in, which need no loading. */
  builtin: string[];
}

async function listModules(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listModules(full, base)));
    else if (entry.name.endsWith('.ko')) out.push(relative(base, full));
  }
  return out;
}

async function readBuiltin(moduleDir: string): Promise<Set<string>> {
  try {
    const text = await readFile(join(moduleDir, 'modules.builtin'), 'utf8');
    return new Set(text.split('\n').filter(Boolean).map(moduleNameOf));
  } catch {
    return new Set();
  }
}

/** modinfo "softdep=pre: a b post: c": the modules to load before this one. */
function softPre(info: Map<string, string[]>): string[] {
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

/**
 * Walk the dependencies of `wanted` through the modules' own .modinfo (only
 * the modules reached are read). A hard dependency that is neither a module
 * nor built in is an error; a missing soft ("pre:") dependency is skipped.
 */
export async function selectModules(moduleDir: string, wanted: readonly string[]): Promise<ModuleSelection> {
  const paths = new Map((await listModules(join(moduleDir, 'kernel'))).map((p) => [moduleNameOf(p), `kernel/${p}`]));
  const builtin = await readBuiltin(moduleDir);
  const direct: ModulesDep = new Map();
  const builtinWanted: string[] = [];
  const queue: Array<{ name: string; neededBy: string | undefined; soft: boolean }> = wanted.map((name) => ({ name: moduleNameOf(name), neededBy: undefined, soft: false }));
  const seen = new Set<string>();
  while (queue.length > 0) {
    const { name, neededBy, soft } = queue.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const path = paths.get(name);
    if (path === undefined) {
      if (builtin.has(name)) {
        if (neededBy === undefined) builtinWanted.push(name);
        continue;
      }
      if (soft) continue;
      throw new Error(`kernel module ${name}${neededBy ? ` (needed by ${neededBy})` : ''} is neither in ${moduleDir} nor built in`);
    }
    const info = parseModinfo(await readFile(join(moduleDir, path)));
    const hard = dependsOf(info);
    const pre = softPre(info).filter((d) => paths.has(d));
    direct.set(path, [...pre, ...hard].filter((d) => paths.has(d)).map((d) => paths.get(d)!));
    for (const d of hard) queue.push({ name: d, neededBy: name, soft: false });
    for (const d of softPre(info)) queue.push({ name: d, neededBy: name, soft: true });
  }
  const { order, missing } = loadOrder(
    direct,
    wanted.map((w) => moduleNameOf(w)).filter((w) => !builtinWanted.includes(w)),
  );
  if (missing.length > 0) throw new Error(`kernel modules not resolved: ${missing.join(', ')}`);
  return { dep: transitiveModulesDep(direct, order), order, builtin: builtinWanted };
}

/** Busybox applet paths ("usr/bin/wget"), from the binary itself. */
export async function busyboxApplets(busybox: string): Promise<string[]> {
  const { stdout } = await runCommand(busybox, ['--list-full']);
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && line !== 'bin/busybox' && line.includes('/'));
}

export interface RuntimeInputs {
  /** Unpacked busybox-static. */
  busyboxRoot: string;
  /** Unpacked linux-image-*. */
  kernelRoot: string;
  kernelVersion: string;
  /** builder/runtime: init, udhcpc.script. */
  runtimeDir: string;
  /** Written to /etc/rackboot-release. */
  runtimeVersion: string;
  modules?: readonly string[];
}

export interface RuntimeTree {
  entries: CpioEntry[];
  modules: ModuleSelection;
}

/** Every member of the runtime initrd, parents included. */
export async function runtimeTree(inputs: RuntimeInputs): Promise<RuntimeTree> {
  const entries: CpioEntry[] = [];
  const file = (path: string, data: Uint8Array | string, mode = 0o644): void => {
    entries.push({ type: 'file', path, mode, data: typeof data === 'string' ? Buffer.from(data, 'utf8') : data });
  };
  const dir = (path: string, mode = 0o755): void => {
    entries.push({ type: 'directory', path, mode });
  };

  const busybox = join(inputs.busyboxRoot, 'bin/busybox');
  file('bin/busybox', await readFile(busybox), 0o755);
  for (const applet of await busyboxApplets(busybox)) {
    entries.push({ type: 'symlink', path: applet, target: '/bin/busybox' });
  }

  file('init', await readFile(join(inputs.runtimeDir, 'init')), 0o755);
  file('usr/share/udhcpc/default.script', await readFile(join(inputs.runtimeDir, 'udhcpc.script')), 0o755);
  file('etc/rackboot-release', `rackboot-runtime ${inputs.runtimeVersion}\n`);

  // The kernel opens /dev/console for init before anything mounts devtmpfs.
  entries.push({ type: 'character-device', path: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  entries.push({ type: 'character-device', path: 'dev/null', mode: 0o666, major: 1, minor: 3 });
  for (const d of ['proc', 'sys', 'run', 'root', 'mnt', 'etc', 'var/log']) dir(d, d === 'root' ? 0o700 : 0o755);
  dir('tmp', 0o1777);
  entries.push({ type: 'symlink', path: 'var/run', target: '/run' });

  const moduleDir = join(inputs.kernelRoot, 'lib/modules', inputs.kernelVersion);
  const modules = await selectModules(moduleDir, inputs.modules ?? RUNTIME_MODULES);
  const target = `lib/modules/${inputs.kernelVersion}`;
  for (const path of modules.order) file(`${target}/${path}`, await readFile(join(moduleDir, path)));
  file(`${target}/modules.dep`, formatModulesDep(modules.dep));
  for (const extra of ['modules.builtin', 'modules.order']) {
    try {
      file(`${target}/${extra}`, await readFile(join(moduleDir, extra)));
    } catch {
      /* optional */
    }
  }
  file('etc/rackboot/modules', modules.order.map((p) => `${p}\n`).join(''));

  return { entries: withParentDirectories(entries), modules };
}

/** gzip'd newc cpio of the tree; the same inputs give the same bytes. */
export function encodeInitrd(entries: CpioEntry[]): Buffer {
  // Node's gzip header has mtime 0 and no file name, so the output depends only on the input.
  return gzipSync(encodeCpio(entries, { mtime: INITRD_MTIME }), { level: 9 });
}
