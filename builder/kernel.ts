import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BuildStepError } from './errors.js';
import { dependsOf, moduleNameOf, parseModinfo, selectModules, softPreOf, type ModuleIndex, type ModuleInfo, type ModuleSelection } from './modules.js';
import { TarParser, type TarHeader } from './tar.js';

/**
 * The parts of a linux-image package the build uses: the kernel image and
 * the modules the runtime ships. The package's data is streamed through
 * `dpkg-deb --fsys-tarfile`: once to learn every module's dependencies from
 * its .modinfo (skipped when a saved index for this very .deb exists), once
 * to keep the selected modules. None of its 400 MB of modules is written to
 * disk; decompressing is what costs (about 2-3 s a pass on two cores).
 */

export interface KernelParts {
  version: string;
  vmlinuz: Buffer;
  selection: ModuleSelection;
  /** Selected modules and modules.builtin / modules.order, by path relative to /lib/modules/<version>. */
  files: Map<string, Buffer>;
  /** Every module of the kernel and what it needs, and the built-in ones, for sub-selections (see kernelSubset). */
  index: ModuleIndex;
  builtin: ReadonlySet<string>;
}

/**
 * The same kernel with only what `wanted` needs: for an image that carries
 * fewer modules than were read (the demo guest needs xen-netfront, dom0 its
 * NICs and Xen's backends). Every module of `wanted` must have been read.
 */
export function kernelSubset(kernel: KernelParts, wanted: readonly string[]): KernelParts {
  const selection = selectModules(kernel.index, kernel.builtin, wanted);
  const files = new Map<string, Buffer>();
  for (const [path, data] of kernel.files) {
    if (!path.endsWith('.ko') || selection.dep.has(path)) files.set(path, data);
  }
  const absent = selection.order.filter((p) => !files.has(p));
  if (absent.length > 0) throw new Error(`modules not read from the kernel package: ${absent.join(', ')}`);
  return { ...kernel, selection, files };
}

/** Stream the package's file system tarball through a parser. */
function streamDeb(debPath: string, parser: TarParser, onBytes?: (bytes: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('dpkg-deb', ['--fsys-tarfile', debPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let failure: unknown;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      if (failure !== undefined) return;
      onBytes?.(chunk.length);
      try {
        parser.push(chunk);
      } catch (error) {
        failure = error;
        child.kill();
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (failure !== undefined) return reject(failure);
      if (code !== 0) return reject(new Error(`dpkg-deb --fsys-tarfile exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
      try {
        parser.end();
        resolve();
      } catch (error) {
        reject(error);
      }
    });
  });
}

/** Every module's dependencies, saved beside the download cache so a later build reads the package once, not twice. */
interface SavedIndex {
  /** sha256 of the .deb the index was read from. */
  sha256: string;
  modules: ModuleInfo[];
  builtin: string[];
}

async function loadIndex(path: string, sha256: string): Promise<SavedIndex | undefined> {
  try {
    const saved = JSON.parse(await readFile(path, 'utf8')) as SavedIndex;
    if (saved.sha256 !== sha256 || !Array.isArray(saved.modules) || !Array.isArray(saved.builtin)) return undefined;
    return saved;
  } catch {
    return undefined;
  }
}

async function saveIndex(path: string, saved: SavedIndex): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, JSON.stringify(saved));
  await rename(temp, path);
}

export interface KernelPackage {
  /** The verified .deb. */
  path: string;
  /** Its sha256, which keys the saved module index. */
  sha256: string;
  /** Package name, for errors. */
  name: string;
  /** Kernel release, e.g. "6.1.0-56-amd64". */
  version: string;
}

/**
 * Read the kernel image and the modules `wanted` needs from a linux-image
 * package. With `indexPath`, the module dependencies learnt on the first read
 * are kept there and the next build streams the package only once.
 */
export async function readKernelPackage(
  deb: KernelPackage,
  wanted: readonly string[],
  options: { indexPath?: string; onBytes?: (bytesRead: number) => void } = {},
): Promise<KernelParts & { indexReused: boolean }> {
  // The package's files as a tar stream, counted over every pass (for progress: the total is not known up front).
  let bytesRead = 0;
  const counted = (n: number): void => {
    bytesRead += n;
    options.onBytes?.(bytesRead);
  };
  const moduleDir = `lib/modules/${deb.version}/`;
  const vmlinuzPath = `boot/vmlinuz-${deb.version}`;
  const extras = ['modules.builtin', 'modules.order'];
  const isModule = (h: TarHeader): boolean => h.type === 'file' && h.path.startsWith(`${moduleDir}kernel/`) && h.path.endsWith('.ko');
  const isExtra = (h: TarHeader): boolean => h.type === 'file' && (h.path === vmlinuzPath || extras.some((e) => h.path === moduleDir + e));
  try {
    const files = new Map<string, Buffer>();
    let vmlinuz: Buffer | undefined;
    const keep = (h: TarHeader, data: Buffer): void => {
      if (h.path === vmlinuzPath) vmlinuz = data;
      else files.set(h.path.slice(moduleDir.length), data);
    };

    let saved = options.indexPath === undefined ? undefined : await loadIndex(options.indexPath, deb.sha256);
    const indexReused = saved !== undefined;
    if (saved === undefined) {
      const modules: ModuleInfo[] = [];
      await streamDeb(
        deb.path,
        new TarParser(
          (h) => isModule(h) || isExtra(h),
          (h, data) => {
            if (!isModule(h)) return keep(h, data);
            const info = parseModinfo(data);
            modules.push({ path: h.path.slice(moduleDir.length), depends: dependsOf(info), softPre: softPreOf(info) });
          },
        ),
        counted,
      );
      if (modules.length === 0) throw new Error(`the package has no modules in /${moduleDir}`);
      const builtinText = files.get('modules.builtin')?.toString('utf8') ?? '';
      saved = { sha256: deb.sha256, modules, builtin: builtinText.split('\n').filter(Boolean).map(moduleNameOf) };
      if (options.indexPath !== undefined) await saveIndex(options.indexPath, saved);
    }
    const index: ModuleIndex = new Map(saved.modules.map((m) => [moduleNameOf(m.path), m]));
    const builtin = new Set(saved.builtin);
    const selection = selectModules(index, builtin, wanted);

    const selected = new Set(selection.order.map((p) => moduleDir + p));
    await streamDeb(deb.path, new TarParser((h) => (h.type === 'file' && selected.has(h.path)) || (indexReused && isExtra(h)), keep), counted);
    if (vmlinuz === undefined) throw new Error(`the package has no /${vmlinuzPath}`);
    const absent = selection.order.filter((p) => !files.has(p));
    if (absent.length > 0) throw new Error(`modules missing from the package: ${absent.join(', ')}`);
    return { version: deb.version, vmlinuz, selection, files, index, builtin, indexReused };
  } catch (error) {
    throw new BuildStepError('kernel', deb.name, error instanceof Error ? error.message : String(error), { cause: error });
  }
}
