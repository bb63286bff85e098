import { switchCurrent } from '../server/assets/builds.js';
import { debianGuestImage } from '../server/profiles/domain.js';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { createGzip, gunzipSync } from 'node:zlib';
import type { Logger } from '../server/log.js';
import { AptClient, sha256File, type FetchedPackage } from './apt.js';
import { DEFAULT_BUILD_SETTINGS, DEFAULT_CHANNEL, packagesVariantProblem, PINNED_PACKAGES, type BuildSettings, type PinnedPart } from './config.js';
import { encodeCpio, type CpioEntry } from './cpio.js';
import { BuildStepError } from './errors.js';
import {
  ALL_MODULES,
  DEBIAN_ON_DEMAND_MODULES,
  DEBIAN_RUNTIME_MODULES,
  debianRuntimeFiles,
  debianRuntimeTree,
  INITRD_MTIME,
  ROOT_MOUNT_MODULES,
  GUEST_MODULES,
  guestTree,
  RUNTIME_MODULES,
  runtimeTree,
} from './initrd.js';
import { ISO_NAME, isoLabel, isoToolVersions, makeIso } from './iso.js';
import { kernelSubset, readKernelPackage } from './kernel.js';
import {
  buildId,
  contentDigestInput,
  createManifest,
  MANIFEST_NAME,
  RUNTIME_PACKAGE,
  type RuntimeVariant,
  type BuildFileName,
  type Manifest,
  type ManifestChanges,
  type ManifestFile,
  type PackageRef,
} from '../server/assets/manifest.js';
import { findMultibootHeaders, isElf } from './multiboot.js';
import { NO_PROGRESS, type BuildProgress, type BuildStep, type ProgressUnit } from './progress.js';
import { builderRecipe, packageRoot } from './recipe.js';

export { packageRoot };
import { debianGuestFiles, ensureRootfs, GUEST_IMAGE_PACKAGES, machineSources, mirrorOfUri, ROOTFS_PACKAGES, squashRootfs, type Rootfs } from './rootfs.js';
import type { PartSummary } from './summary.js';
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
  cacheDir?: string | undefined;
  /** Release, package versions, variant, parts and image settings; default DEFAULT_BUILD_SETTINGS (builder/build.yaml). */
  settings?: BuildSettings;
  /** The runtime initrd, over settings.variant: "debian" or "tiny" (busybox only). */
  variant?: RuntimeVariant;
  /** Make the CD/USB image (rackboot.iso), over settings.parts.iso (`--no-iso` turns it off). */
  iso?: boolean;
  /**
   * The channel the build is for (settings already chosen with
   * settingsForChannel): recorded in the manifest, and the build becomes
   * that channel's current one instead of ASSETS/current.
   */
  channel?: string;
  /** What changed since the channel's current build (`--if-changed`), recorded in the manifest. */
  changes?: ManifestChanges;
  /** Where each step's start, amount done and end go (a terminal's bars, plain lines); default nowhere. */
  progress?: BuildProgress;
  log: Logger;
}

export interface BuildResult {
  id: string;
  /** Absolute path of OUT/builds/<id>. */
  dir: string;
  manifest: Manifest;
  /** Debian packages fetched from the mirror in this build, and those the cache already held. */
  packages: { downloaded: string[]; cached: string[] };
  /** Each file of the build with the time the step(s) that made it took. */
  parts: PartSummary[];
  /** The steps that ran, in the order they ended, and their durations. */
  steps: Array<{ step: BuildStep; ms: number }>;
  durationMs: number;
}

const XEN_PACKAGE = PINNED_PACKAGES.xen;
const XEN_MULTIBOOT = '/boot/xen-4.17-amd64.gz';
const XEN_EFI = '/boot/xen-4.17-amd64.efi';
const KERNEL_META_PACKAGE = PINNED_PACKAGES.kernel;
const IPXE_PACKAGE = PINNED_PACKAGES.ipxe;
const BUSYBOX_PACKAGE = PINNED_PACKAGES.busybox;
const MEMTEST_PACKAGE = PINNED_PACKAGES.memtest;
/** Any package of the release's main archive: its download URI names the mirror debootstrap uses. */
const MIRROR_PROBE_PACKAGE = 'base-files';

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'rackboot');
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
  const progress = options.progress ?? NO_PROGRESS;
  const settings = options.settings ?? DEFAULT_BUILD_SETTINGS;
  const variant = options.variant ?? settings.variant;
  const parts = { ...settings.parts, iso: options.iso ?? settings.parts.iso };
  const release = settings.release;
  const out = resolve(options.out);
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  const root = packageRoot();
  const runtimeVersion = (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const apt = new AptClient({ cacheDir, log });
  log.info({ out, cacheDir, channel: options.channel ?? DEFAULT_CHANNEL, variant, release, versions: settings.versions, parts }, 'build started');

  // Each step reports its start and end (with duration) to the log and the
  // progress display, and any failure inside it leaves as a BuildStepError
  // naming it.
  const stepMs = new Map<BuildStep, number>();
  const step = async <T>(name: BuildStep, run: (report: StepReport) => Promise<T>): Promise<T> => {
    const stepStarted = Date.now();
    progress.start(name);
    log.info({ step: name }, 'step started');
    const report: StepReport = {
      total: (amount, unit) => progress.total(name, amount, unit),
      done: (amount, unit) => progress.update(name, amount, unit),
    };
    try {
      const value = await run(report);
      const ms = Date.now() - stepStarted;
      stepMs.set(name, ms);
      progress.end(name, { ok: true, ms });
      log.info({ step: name, ms }, 'step done');
      return value;
    } catch (error) {
      const ms = Date.now() - stepStarted;
      progress.end(name, { ok: false, ms });
      throw stepFailure(name, error, { release, out });
    }
  };

  const work = await mkdtemp(join(tmpdir(), 'rackboot-build-'));
  const partial = join(out, 'builds', `.partial-${randomBytes(6).toString('hex')}`);
  let published: string | undefined;
  /** The Debian guest image's tree, made beside the rest of the build (see below). */
  let debianGuestTree: Promise<Rootfs> | undefined;
  try {
    // The Debian tree is made by debootstrap and read whole by mksquashfs
    // (every file with its owner, /etc/shadow too): both want root, so say
    // so before spending minutes on downloads.
    const packagesProblem = packagesVariantProblem({ variant, packages: settings.packages });
    if (packagesProblem !== undefined) throw new BuildStepError('rootfs', undefined, packagesProblem);
    if (variant === 'debian' && process.getuid?.() !== 0) {
      throw new BuildStepError(
        'rootfs',
        undefined,
        `the debian variant needs root (debootstrap, and mksquashfs reading every file of the tree), and this is uid ${process.getuid?.()}: run "rackboot build" as root, or use --variant tiny`,
      );
    }

    const fetch = await step('fetch packages', async (report) => {
      const spec = (part: PinnedPart): string =>
        settings.versions[part] === '' ? PINNED_PACKAGES[part] : `${PINNED_PACKAGES[part]}=${settings.versions[part]}`;
      const { kernelPackage, kernelSpec } = await resolveKernel(apt, settings.versions.kernel);
      const specs = [spec('xen'), kernelSpec, spec('ipxe'), spec('busybox'), ...(parts.memtest ? [spec('memtest')] : [])];
      const files = await apt.resolveAll(specs);
      report.total(
        files.reduce((n, f) => n + f.size, 0),
        'bytes',
      );
      const fetched = new Map<string, FetchedPackage>((await apt.fetchAll(files, { onBytes: report.done })).map((f) => [f.file.package, f]));
      const mirror = variant === 'debian' || parts.debianGuest ? mirrorOfUri((await apt.resolve(MIRROR_PROBE_PACKAGE)).uri) : undefined;
      return { fetched, kernelPackage, mirror };
    });
    const { fetched, kernelPackage } = fetch;
    // The guest image's tree is made while the rest of the build goes on: a
    // debootstrap waits on downloads and on dpkg, one package at a time, so
    // two trees made one after the other took most of a build with no cached
    // tree. Its step below waits for it and reports its failure.
    if (parts.debianGuest) {
      debianGuestTree = ensureRootfs(cacheDir, { release, mirror: fetch.mirror!, packages: GUEST_IMAGE_PACKAGES, sources: await machineSources() }, log);
      debianGuestTree.catch(() => undefined);
    }
    const kernelVersion = kernelVersionOf(kernelPackage);
    const ref = (pkg: string): PackageRef => ({ package: pkg, version: fetched.get(pkg)!.file.version });

    await mkdir(join(out, 'builds'), { recursive: true });
    await mkdir(partial);
    const made: Array<{ name: BuildFileName; source: PackageRef; contains?: PackageRef[]; step: BuildStep[] }> = [];

    // The kernel package is streamed (400 MB of modules, of which the
    // runtime needs a few); the small ones are unpacked meanwhile.
    const unpacked = new Map<string, string>();
    const smallPackages = [XEN_PACKAGE, IPXE_PACKAGE, BUSYBOX_PACKAGE, ...(parts.memtest ? [MEMTEST_PACKAGE] : [])];
    // Both steps run to their end before a failure of either is thrown, so
    // the clean-up below never races a write into the partial folder.
    const [kernel] = await allOrFirstFailure([
      step('kernel modules', async (report) => {
        const deb = fetched.get(kernelPackage)!;
        const kernel = await readKernelPackage({ path: deb.path, sha256: deb.file.sha256, name: kernelPackage, version: kernelVersion }, ALL_MODULES, {
          indexPath: join(cacheDir, 'kernel-index', `${deb.file.fileName}.json`),
          onBytes: (bytes) => report.done(bytes, 'bytes'),
        });
        await writeFile(join(partial, 'vmlinuz'), kernel.vmlinuz);
        made.push({ name: 'vmlinuz', source: ref(kernelPackage), step: ['kernel modules'] });
        return kernel;
      }),
      step('unpack', async (report) => {
        report.total(smallPackages.length, 'items');
        let done = 0;
        await Promise.all(
          smallPackages.map(async (pkg) => {
            const into = join(work, pkg);
            await unpackDeb(fetched.get(pkg)!.path, into, pkg);
            unpacked.set(pkg, into);
            report.done(++done);
          }),
        );
        const from = async (pkg: string, path: string): Promise<string> => {
          try {
            return await resolveInRoot(unpacked.get(pkg)!, path);
          } catch (error) {
            throw new BuildStepError('unpack', pkg, error instanceof Error ? error.message : String(error), { cause: error });
          }
        };
        // xen: iPXE's multiboot loader wants the ELF, not Debian's gzip of it.
        const xen = gunzipSync(await readFile(await from(XEN_PACKAGE, XEN_MULTIBOOT)));
        if (!isElf(xen) || !findMultibootHeaders(xen).some((h) => h.version === 1)) {
          throw new BuildStepError('unpack', XEN_PACKAGE, `${XEN_MULTIBOOT} is not an ELF with a Multiboot header`);
        }
        await writeFile(join(partial, 'xen'), xen);
        made.push({ name: 'xen', source: ref(XEN_PACKAGE), step: ['unpack'] });
        await copyFile(await from(XEN_PACKAGE, XEN_EFI), join(partial, 'xen.efi'));
        made.push({ name: 'xen.efi', source: ref(XEN_PACKAGE), step: ['unpack'] });
        for (const name of ['undionly.kpxe', 'ipxe.efi', 'snponly.efi'] as const) {
          await copyFile(await from(IPXE_PACKAGE, `/usr/lib/ipxe/${name}`), join(partial, name));
          made.push({ name, source: ref(IPXE_PACKAGE), step: ['unpack'] });
        }
        // memtest86+ for BIOS (a Linux-boot-protocol image) and EFI (a PE application).
        if (parts.memtest) {
          for (const name of ['memtest86+x64.bin', 'memtest86+x64.efi'] as const) {
            await copyFile(await from(MEMTEST_PACKAGE, `/boot/${name}`), join(partial, name));
            made.push({ name, source: ref(MEMTEST_PACKAGE), step: ['unpack'] });
          }
        }
      }),
    ]);

    const runtimeDir = join(root, 'builder', 'runtime');
    // The Debian tree: debootstrap'd once and cached by its inputs, then squashed with the runtime's files.
    const rootfs =
      variant === 'debian'
        ? await step('rootfs', async () => {
            const tree = await ensureRootfs(
              cacheDir,
              { release, mirror: fetch.mirror!, packages: ROOTFS_PACKAGES, extra: settings.packages, sources: await machineSources() },
              log,
            );
            const image = await squashRootfs(
              tree.dir,
              await debianRuntimeFiles(
                kernelSubset(kernel, [...DEBIAN_RUNTIME_MODULES, ...DEBIAN_ON_DEMAND_MODULES, ...ROOT_MOUNT_MODULES]),
                runtimeDir,
                runtimeVersion,
              ),
            );
            return { ...tree, image };
          })
        : undefined;

    await step('initrd', async (report) => {
      const tree =
        rootfs !== undefined
          ? await debianRuntimeTree({
              rootImage: rootfs.image,
              busyboxRoot: unpacked.get(BUSYBOX_PACKAGE)!,
              kernel: kernelSubset(kernel, ROOT_MOUNT_MODULES),
              runtimeDir,
              runtimeVersion,
            })
          : await runtimeTree({ busyboxRoot: unpacked.get(BUSYBOX_PACKAGE)!, kernel: kernelSubset(kernel, RUNTIME_MODULES), runtimeDir, runtimeVersion });
      const initrd = await compressInitrd(tree.entries, report);
      await writeFile(join(partial, 'initrd.gz'), initrd);
      log.info(
        {
          variant,
          modules: tree.modules.order.length,
          builtin: tree.modules.builtin,
          moduleIndex: kernel.indexReused ? 'cached' : 'read',
          members: tree.entries.length,
          ...(rootfs !== undefined ? { rootfs: rootfs.cached ? 'cached' : 'debootstrap', rootImageBytes: rootfs.image.length } : {}),
          bytes: initrd.length,
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
        step: rootfs !== undefined ? ['rootfs', 'initrd'] : ['initrd'],
      });
    });

    if (parts.guest) {
      await step('guest', async (report) => {
        const guest = await guestTree({ busyboxRoot: unpacked.get(BUSYBOX_PACKAGE)!, kernel: kernelSubset(kernel, GUEST_MODULES), runtimeDir, runtimeVersion });
        await writeFile(join(partial, 'guest.initrd.gz'), await compressInitrd(guest, report));
        made.push({
          name: 'guest.initrd.gz',
          source: { package: RUNTIME_PACKAGE, version: runtimeVersion },
          contains: [ref(BUSYBOX_PACKAGE), ref(kernelPackage)],
          step: ['guest'],
        });
      });
    }

    // The Debian guest image: its own debootstrap'd tree (cached like the runtime's), squashed with rackboot's first-boot files.
    if (parts.debianGuest) {
      await step('debian-guest', async () => {
        const tree = await debianGuestTree!;
        const image = await squashRootfs(tree.dir, await debianGuestFiles(runtimeDir, runtimeVersion), 'zstd');
        await writeFile(join(partial, debianGuestImage), image);
        log.info({ rootfs: tree.cached ? 'cached' : 'debootstrap', packages: tree.packages.length, bytes: image.length }, 'Debian guest image written');
        made.push({
          name: debianGuestImage,
          source: { package: RUNTIME_PACKAGE, version: runtimeVersion },
          contains: tree.packages,
          step: ['debian-guest'],
        });
      });
    }

    // Sizes and hashes of what is made so far: the image needs them, and so does the manifest.
    const describe = async (): Promise<ManifestFile[]> => {
      const files: ManifestFile[] = [];
      for (const m of made) {
        const path = join(partial, m.name);
        const entry: ManifestFile = { name: m.name, size: (await stat(path)).size, sha256: await sha256File(path), ...m.source };
        if (m.contains) entry.contains = m.contains;
        files.push(entry);
      }
      return files;
    };
    let manifestFiles: ManifestFile[] | undefined;

    // The CD/USB image, made from the very files above; it carries their
    // content hash, not the build id, so the same parts give the same image.
    if (parts.iso) {
      manifestFiles = await step('iso', async () => {
        const files = await describe();
        const image = await makeIso({
          partsDir: partial,
          parts: files,
          output: join(partial, ISO_NAME),
          label: isoLabel(files),
          volumeLabel: settings.iso.volumeLabel,
          epochSeconds: settings.iso.sourceDateEpoch,
        });
        files.push({
          name: ISO_NAME,
          size: image.size,
          sha256: image.sha256,
          package: RUNTIME_PACKAGE,
          version: runtimeVersion,
          contains: await isoToolVersions(),
        });
        made.push({ name: ISO_NAME, source: { package: RUNTIME_PACKAGE, version: runtimeVersion }, step: ['iso'] });
        log.info({ size: image.size, sha256: image.sha256, parts: image.parts }, 'CD/USB image written');
        return files;
      });
    }

    const manifest = await step('publish', async () => {
      const files = manifestFiles ?? (await describe());
      const created = new Date();
      const id = buildId(created, createHash('sha256').update(contentDigestInput(files)).digest('hex'));
      const channel = options.channel === DEFAULT_CHANNEL ? undefined : options.channel;
      const manifest = createManifest(id, created, files, variant, await builderRecipe(root), channel, {
        ...(rootfs === undefined ? {} : { extraPackages: rootfs.extras }),
        ...(options.changes === undefined ? {} : { changes: options.changes }),
      });
      await writeFile(join(partial, MANIFEST_NAME), `${JSON.stringify(manifest, null, 2)}\n`);
      const dir = join(out, 'builds', id);
      await rename(partial, dir);
      published = dir;
      await publishCurrent(out, id, channel);
      return manifest;
    });

    const downloaded = [...fetched.values()].filter((f) => !f.cached).map((f) => f.file.package);
    const cached = [...fetched.values()].filter((f) => f.cached).map((f) => f.file.package);
    const stepsOf = new Map(made.map((m) => [m.name, m.step]));
    const summary: PartSummary[] = manifest.files.map((f) => ({
      name: f.name,
      size: f.size,
      sha256: f.sha256,
      ms: (stepsOf.get(f.name) ?? []).reduce((n, s) => n + (stepMs.get(s) ?? 0), 0),
    }));
    const durationMs = Date.now() - started;
    log.info(
      {
        id: manifest.id,
        dir: published,
        downloaded,
        cached,
        parts: summary,
        ...(manifest.extraPackages === undefined ? {} : { extraPackages: manifest.extraPackages }),
        ms: durationMs,
      },
      downloaded.length === 0 ? 'build done; nothing downloaded' : 'build done',
    );
    return {
      id: manifest.id,
      dir: published!,
      manifest,
      packages: { downloaded, cached },
      parts: summary,
      steps: [...stepMs].map(([name, ms]) => ({ step: name, ms })),
      durationMs,
    };
  } catch (error) {
    // Clean-up must not hide the failure (a full disk or a folder this user cannot read is also why it failed).
    for (const leftover of [partial, ...(published === undefined ? [] : [published])]) {
      await rm(leftover, { recursive: true, force: true }).catch((cleanup: unknown) =>
        log.warn({ path: leftover, err: cleanup }, 'cannot remove the failed build folder'),
      );
    }
    log.error(
      error instanceof BuildStepError ? { step: error.step, package: error.package, reason: error.reason } : { err: error },
      'build failed; current left as it was',
    );
    throw error;
  } finally {
    // A build that failed elsewhere still lets the guest tree finish or clean up after itself before it returns.
    await debianGuestTree?.catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  }
}

/** Promise.all that waits for every promise to settle, then throws the failure that came first in time. */
async function allOrFirstFailure<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  let first: { reason: unknown } | undefined;
  const settled = await Promise.allSettled(
    (promises as readonly Promise<unknown>[]).map((p) =>
      p.catch((reason: unknown) => {
        first ??= { reason };
        throw reason;
      }),
    ),
  );
  if (first !== undefined) throw first.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

interface StepReport {
  /** The amount of work in this step, once known. */
  total(amount: number, unit: ProgressUnit): void;
  /** How much of it is done (in `unit` when there is no total). */
  done(amount: number, unit?: ProgressUnit): void;
}

/** gzip the initrd's cpio in pieces, reporting the cpio bytes compressed so far (same bytes as encodeInitrd). */
async function compressInitrd(entries: CpioEntry[], report: StepReport): Promise<Buffer> {
  const cpio = encodeCpio(entries, { mtime: INITRD_MTIME });
  report.total(cpio.length, 'bytes');
  const gzip = createGzip({ level: 9 });
  const chunks: Buffer[] = [];
  gzip.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    gzip.once('end', resolve);
    gzip.once('error', reject);
  });
  const piece = 1 << 20;
  for (let offset = 0; offset < cpio.length; offset += piece) {
    if (!gzip.write(cpio.subarray(offset, offset + piece))) await once(gzip, 'drain');
    report.done(Math.min(cpio.length, offset + piece));
  }
  gzip.end();
  await ended;
  return Buffer.concat(chunks);
}

/**
 * The kernel package: the linux-image-<abi>-amd64 that linux-image-amd64
 * depends on, at its pinned version or the newest. When pinned, the kernel
 * package is asked for at the exact version the meta package names.
 */
export async function resolveKernel(apt: AptClient, pin: string): Promise<{ kernelPackage: string; kernelSpec: string }> {
  const fields = await apt.control(pin === '' ? KERNEL_META_PACKAGE : `${KERNEL_META_PACKAGE}=${pin}`);
  const kernel = parseDepends(fields.get('Depends') ?? '').find((d) => /^linux-image-\d.*-amd64$/.test(d.name));
  if (kernel === undefined) throw new BuildStepError('fetch packages', KERNEL_META_PACKAGE, 'its Depends names no linux-image-<version>-amd64 package');
  const kernelSpec = pin !== '' && kernel.exactVersion !== undefined ? `${kernel.name}=${kernel.exactVersion}` : kernel.name;
  return { kernelPackage: kernel.name, kernelSpec };
}

/** A Depends entry: the package and, for "(= V)", the exact version. */
export function parseDepends(depends: string): Array<{ name: string; exactVersion?: string }> {
  return depends
    .split(',')
    .map((d) => d.trim().split('|')[0]!.trim())
    .filter(Boolean)
    .map((d) => {
      const m = /^([^\s(:]+)(?::\S+)?\s*(?:\(\s*=\s*([^\s)]+)\s*\))?/.exec(d);
      return m?.[2] === undefined ? { name: m?.[1] ?? d } : { name: m[1]!, exactVersion: m[2] };
    });
}

/**
 * A failure inside a step, as the step's BuildStepError with a reason a
 * person can act on: apt's and the file system's wording turned into what
 * it means for the build.
 */
export function stepFailure(step: BuildStep, error: unknown, context: { release: string; out: string }): BuildStepError {
  if (error instanceof BuildStepError && error.step === step) return error;
  const inner = error instanceof BuildStepError ? error : undefined;
  const raw = inner?.reason ?? (error instanceof Error ? error.message : String(error));
  const explained = explainFailure(raw, errorCode(error), context);
  return new BuildStepError(step, explained === raw ? inner?.package : undefined, explained, { cause: error });
}

/** The errno code (ENOSPC, EACCES...) of an error or of any error it wraps. */
function errorCode(error: unknown): { code: string; path?: string } | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      const dest = (e as NodeJS.ErrnoException & { dest?: string }).dest;
      const path = dest ?? (e as NodeJS.ErrnoException).path;
      return path === undefined ? { code } : { code, path };
    }
  }
  return undefined;
}

export function explainFailure(reason: string, errno: { code: string; path?: string } | undefined, context: { release: string; out: string }): string {
  const version = /Version '([^']+)' for '([^']+)' was not found/.exec(reason);
  if (version) return `package ${version[2]}=${version[1]} not found in ${context.release}`;
  const unknown = /Unable to locate package (\S+)/.exec(reason);
  if (unknown) return `package ${unknown[1]} not found in ${context.release}`;
  const fetch = /Failed to fetch (\S+)\s+(.*)$/.exec(reason);
  if (fetch) return `cannot reach the apt mirror: ${fetch[2]!.trim()} (fetching ${fetch[1]})`;
  if (errno?.code === 'ENOSPC' || /ENOSPC|No space left on device/i.test(reason)) {
    return `no space left on device${errno?.path ? ` writing ${errno.path}` : ` (under ${context.out} or ${tmpdir()})`}`;
  }
  if (errno?.code === 'EACCES' || errno?.code === 'EPERM') return `permission denied${errno.path ? ` on ${errno.path}` : ''}: ${reason}`;
  return reason;
}

/** switchCurrent, its failure reported as the publish step's. */
async function publishCurrent(out: string, id: string, channel: string | undefined): Promise<void> {
  try {
    await switchCurrent(out, id, channel);
  } catch (error) {
    throw new BuildStepError('publish', undefined, (error as Error).message, { cause: (error as Error).cause ?? error });
  }
}
