import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { Logger } from '../server/log.js';
import { AptClient, sha256File, type FetchedPackage } from './apt.js';
import { BuildStepError } from './errors.js';
import { ALL_MODULES, DEBIAN_RUNTIME_MODULES, debianRuntimeFiles, debianRuntimeTree, encodeInitrd, ROOT_MOUNT_MODULES, GUEST_MODULES, guestTree, RUNTIME_MODULES, runtimeTree } from './initrd.js';
import { ISO_NAME, isoLabel, isoToolVersions, makeIso } from './iso.js';
import { kernelSubset, readKernelPackage } from './kernel.js';
import {
  buildId,
  contentDigestInput,
  createManifest,
  MANIFEST_NAME,
  RELEASE,
  RUNTIME_PACKAGE,
  type RuntimeVariant,
  type BuildFileName,
  type Manifest,
  type ManifestFile,
  type PackageRef,
} from './manifest.js';
import { findMultibootHeaders, isElf } from './multiboot.js';
import { ensureRootfs, machineSources, mirrorOfUri, ROOTFS_PACKAGES, squashRootfs } from './rootfs.js';
import { resolveInRoot, unpackDeb } from './unpack.js';

/**
 * `rackboot build`: fetch Debian's packages, take the boot files out of them,
 * make the runtime initrd, and publish it all as OUT/builds/<id>/ with a
 * manifest, then point OUT/current at it in one rename. Nothing is published
 * until every file is written and checked.
 */

export interface BuildOptions {
  /** Assets folder, e.g. boot-assets. */
  out: string;
  /** Download cache; default $XDG_CACHE_HOME/rackboot or ~/.cache/rackboot. */
  cacheDir?: string;
  /** The runtime initrd: "debian" (default) or "tiny" (busybox only). */
  variant?: RuntimeVariant;
  /** Make the CD/USB image (rackboot.iso) from the build's parts; default true (`--no-iso` turns it off). */
  iso?: boolean;
  log: Logger;
}

export interface BuildResult {
  id: string;
  /** Absolute path of OUT/builds/<id>. */
  dir: string;
  manifest: Manifest;
  /** Debian packages fetched from the mirror in this build, and those the cache already held. */
  packages: { downloaded: string[]; cached: string[] };
  durationMs: number;
}

const XEN_PACKAGE = 'xen-hypervisor-4.17-amd64';
const XEN_MULTIBOOT = '/boot/xen-4.17-amd64.gz';
const XEN_EFI = '/boot/xen-4.17-amd64.efi';
const KERNEL_META_PACKAGE = 'linux-image-amd64';
const IPXE_PACKAGE = 'ipxe';
const BUSYBOX_PACKAGE = 'busybox-static';
const MEMTEST_PACKAGE = 'memtest86+';
/** Any package of the release's main archive: its download URI names the mirror debootstrap uses. */
const MIRROR_PROBE_PACKAGE = 'base-files';

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'rackboot');
}

/** The folder holding rackboot's package.json (the source tree or the installed package). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'builder', 'runtime', 'init'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find rackboot package root (package.json with builder/runtime/init)');
    dir = parent;
  }
}

/** "linux-image-6.1.0-56-amd64" -> "6.1.0-56-amd64". */
export function kernelVersionOf(pkg: string): string {
  const m = /^linux-image-(\d.*-amd64)$/.exec(pkg);
  if (m === null) throw new Error(`package ${pkg} is not a linux-image-<version>-amd64 package`);
  return m[1]!;
}

export async function build(options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const log = options.log.child({ component: 'build' });
  const out = resolve(options.out);
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  const root = packageRoot();
  const runtimeVersion = (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const apt = new AptClient({ cacheDir, log });
  const variant = options.variant ?? 'debian';
  log.info({ out, cacheDir, variant }, 'build started');

  // What to fetch: the kernel is whatever linux-image-amd64 points at today.
  const kernelPackage = (await apt.depends(KERNEL_META_PACKAGE)).find((d) => /^linux-image-\d.*-amd64$/.test(d));
  if (kernelPackage === undefined) {
    throw new BuildStepError('resolve', KERNEL_META_PACKAGE, 'its Depends names no linux-image-<version>-amd64 package');
  }
  const kernelVersion = kernelVersionOf(kernelPackage);
  const names = [XEN_PACKAGE, kernelPackage, IPXE_PACKAGE, BUSYBOX_PACKAGE, MEMTEST_PACKAGE];
  const files = await apt.resolveAll(names);
  const fetched = new Map<string, FetchedPackage>((await apt.fetchAll(files)).map((f) => [f.file.package, f]));
  const ref = (pkg: string): PackageRef => ({ package: pkg, version: fetched.get(pkg)!.file.version });

  // The Debian tree comes first: it is the slow part, and cached by its inputs.
  const rootfs =
    variant === 'debian'
      ? await ensureRootfs(
          cacheDir,
          {
            release: RELEASE,
            mirror: mirrorOfUri((await apt.resolve(MIRROR_PROBE_PACKAGE)).uri),
            packages: ROOTFS_PACKAGES,
            sources: await machineSources(),
          },
          log,
        )
      : undefined;

  await mkdir(join(out, 'builds'), { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'rackboot-build-'));
  const partial = join(out, 'builds', `.partial-${randomBytes(6).toString('hex')}`);
  let published: string | undefined;
  try {
    await mkdir(partial);
    // The kernel package is streamed (400 MB of modules, of which the
    // runtime needs a few); the small ones are unpacked meanwhile.
    const unpacked = new Map<string, string>();
    const [kernel] = await Promise.all([
      readKernelPackage(
        { path: fetched.get(kernelPackage)!.path, sha256: fetched.get(kernelPackage)!.file.sha256, name: kernelPackage, version: kernelVersion },
        ALL_MODULES,
        { indexPath: join(cacheDir, 'kernel-index', `${fetched.get(kernelPackage)!.file.fileName}.json`) },
      ),
      ...[XEN_PACKAGE, IPXE_PACKAGE, BUSYBOX_PACKAGE, MEMTEST_PACKAGE].map(async (pkg) => {
        const into = join(work, pkg);
        await unpackDeb(fetched.get(pkg)!.path, into, pkg);
        unpacked.set(pkg, into);
      }),
    ]);
    const from = async (pkg: string, path: string): Promise<string> => {
      try {
        return await resolveInRoot(unpacked.get(pkg)!, path);
      } catch (error) {
        throw new BuildStepError('extract', pkg, error instanceof Error ? error.message : String(error), { cause: error });
      }
    };

    const made: Array<{ name: BuildFileName; source: PackageRef; contains?: PackageRef[] }> = [];

    // xen: iPXE's multiboot loader wants the ELF, not Debian's gzip of it.
    const xen = gunzipSync(await readFile(await from(XEN_PACKAGE, XEN_MULTIBOOT)));
    if (!isElf(xen) || !findMultibootHeaders(xen).some((h) => h.version === 1)) {
      throw new BuildStepError('extract', XEN_PACKAGE, `${XEN_MULTIBOOT} is not an ELF with a Multiboot header`);
    }
    await writeFile(join(partial, 'xen'), xen);
    made.push({ name: 'xen', source: ref(XEN_PACKAGE) });
    await copyFile(await from(XEN_PACKAGE, XEN_EFI), join(partial, 'xen.efi'));
    made.push({ name: 'xen.efi', source: ref(XEN_PACKAGE) });

    await writeFile(join(partial, 'vmlinuz'), kernel.vmlinuz);
    made.push({ name: 'vmlinuz', source: ref(kernelPackage) });

    for (const name of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const) {
      await copyFile(await from(IPXE_PACKAGE, `/usr/lib/ipxe/${name}`), join(partial, name));
      made.push({ name, source: ref(IPXE_PACKAGE) });
    }

    // memtest86+ for BIOS (a Linux-boot-protocol image) and EFI (a PE application).
    for (const name of ['memtest86+x64.bin', 'memtest86+x64.efi'] as const) {
      await copyFile(await from(MEMTEST_PACKAGE, `/boot/${name}`), join(partial, name));
      made.push({ name, source: ref(MEMTEST_PACKAGE) });
    }

    const runtimeDir = join(root, 'builder', 'runtime');
    const initrdStarted = Date.now();
    let tree;
    let rootfsBytes = 0;
    try {
      if (rootfs !== undefined) {
        const rootImage = await squashRootfs(rootfs.dir, await debianRuntimeFiles(kernelSubset(kernel, [...DEBIAN_RUNTIME_MODULES, ...ROOT_MOUNT_MODULES]), runtimeDir, runtimeVersion));
        rootfsBytes = rootImage.length;
        tree = await debianRuntimeTree({ rootImage, busyboxRoot: unpacked.get(BUSYBOX_PACKAGE)!, kernel: kernelSubset(kernel, ROOT_MOUNT_MODULES), runtimeDir, runtimeVersion });
      } else {
        tree = await runtimeTree({ busyboxRoot: unpacked.get(BUSYBOX_PACKAGE)!, kernel: kernelSubset(kernel, RUNTIME_MODULES), runtimeDir, runtimeVersion });
      }
    } catch (error) {
      throw new BuildStepError('initrd', undefined, error instanceof Error ? error.message : String(error), { cause: error });
    }
    const initrd = encodeInitrd(tree.entries);
    await writeFile(join(partial, 'initrd.gz'), initrd);
    log.info(
      {
        variant,
        modules: tree.modules.order.length,
        builtin: tree.modules.builtin,
        moduleIndex: kernel.indexReused ? 'cached' : 'read',
        members: tree.entries.length,
        ...(rootfs !== undefined ? { rootfs: rootfs.cached ? 'cached' : 'debootstrap', rootImageBytes: rootfsBytes } : {}),
        bytes: initrd.length,
        ms: Date.now() - initrdStarted,
      },
      'runtime initrd written',
    );
    made.push({
      name: 'initrd.gz',
      source: { package: RUNTIME_PACKAGE, version: runtimeVersion },
      contains:
        rootfs !== undefined
          ? [...rootfs.packages.filter((p) => p.package !== BUSYBOX_PACKAGE), ref(BUSYBOX_PACKAGE), ref(kernelPackage)]
          : [ref(BUSYBOX_PACKAGE), ref(kernelPackage)],
    });

    let guest;
    try {
      guest = await guestTree({ busyboxRoot: unpacked.get(BUSYBOX_PACKAGE)!, kernel: kernelSubset(kernel, GUEST_MODULES), runtimeDir, runtimeVersion });
    } catch (error) {
      throw new BuildStepError('guest', undefined, error instanceof Error ? error.message : String(error), { cause: error });
    }
    await writeFile(join(partial, 'guest.initrd.gz'), encodeInitrd(guest));
    made.push({
      name: 'guest.initrd.gz',
      source: { package: RUNTIME_PACKAGE, version: runtimeVersion },
      contains: [ref(BUSYBOX_PACKAGE), ref(kernelPackage)],
    });

    const manifestFiles: ManifestFile[] = [];
    for (const m of made) {
      const path = join(partial, m.name);
      const entry: ManifestFile = { name: m.name, size: (await stat(path)).size, sha256: await sha256File(path), ...m.source };
      if (m.contains) entry.contains = m.contains;
      manifestFiles.push(entry);
    }

    // The CD/USB image, made from the very files above; it carries their
    // content hash, not the build id, so the same parts give the same image.
    if (options.iso ?? true) {
      const isoStarted = Date.now();
      const image = await makeIso({
        partsDir: partial,
        parts: manifestFiles,
        output: join(partial, ISO_NAME),
        label: isoLabel(manifestFiles),
      });
      manifestFiles.push({
        name: ISO_NAME,
        size: image.size,
        sha256: image.sha256,
        package: RUNTIME_PACKAGE,
        version: runtimeVersion,
        contains: await isoToolVersions(),
      });
      log.info({ size: image.size, sha256: image.sha256, parts: image.parts, ms: Date.now() - isoStarted }, 'CD/USB image written');
    }
    const created = new Date();
    const id = buildId(created, createHash('sha256').update(contentDigestInput(manifestFiles)).digest('hex'));
    const manifest = createManifest(id, created, manifestFiles, variant);
    await writeFile(join(partial, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);

    const dir = join(out, 'builds', id);
    await rename(partial, dir);
    published = dir;
    await switchCurrent(out, id);

    const downloaded = [...fetched.values()].filter((f) => !f.cached).map((f) => f.file.package);
    const cached = [...fetched.values()].filter((f) => f.cached).map((f) => f.file.package);
    const durationMs = Date.now() - started;
    log.info({ id, dir, downloaded, cached, ms: durationMs }, downloaded.length === 0 ? 'build done; nothing downloaded' : 'build done');
    return { id, dir, manifest, packages: { downloaded, cached }, durationMs };
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    if (published !== undefined) await rm(published, { recursive: true, force: true });
    log.error({ err: error }, 'build failed; current left as it was');
    throw error;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Point OUT/current at builds/<id>: a new symlink under a temporary name,
 * renamed over the old one (rename(2) replaces atomically, so a reader sees
 * the old build or the new one, never neither).
 */
export async function switchCurrent(out: string, id: string): Promise<void> {
  const temp = join(out, `.current-${randomBytes(6).toString('hex')}`);
  await symlink(join('builds', id), temp);
  try {
    await rename(temp, join(out, 'current'));
  } catch (error) {
    await rm(temp, { force: true });
    throw new BuildStepError('publish', undefined, `cannot switch ${join(out, 'current')}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
