import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../../builder/apt.js';
import { isoLabel, makeIso } from '../../builder/iso.js';
import type { IsoXenEntry } from '../../builder/iso-menu.js';
import type { Build } from '../assets/builds.js';
import { hostBuild } from '../core/build-choice.js';
import { bootEntries, resolveHostBoot, type BootPlan, type HostBoot } from '../core/resolve.js';
import type { HostSecrets, HostSources } from '../core/host-files.js';
import { nonceLength } from '../tokens/host-token.js';
import { normaliseMac } from '../profiles/mac.js';
import type { Profile } from '../profiles/profile.js';

/**
 * A CD/USB image for one host: the current build's parts with that host's
 * boot lines (static network, hostname, its Xen and kernel arguments), as
 * the network boot would render them. The rest of the profile (root hash,
 * ssh, timezone) still travels by runtime.env. Made on demand and kept,
 * keyed by build id and a hash of what the image is made from.
 */

export const HOST_ISO_NAME = 'rackboot.iso';

export interface HostIsoMenu {
  xenEntries: IsoXenEntry[];
  defaultEntry: string;
}

/**
 * Every menu entry of the host image from the one boot decision: the
 * profile's own entry is the default, and each other entry is what the host
 * would get had its profile asked for that one. Pure.
 */
export function hostIsoMenu(plan: BootPlan, resolve: (profile: Profile) => HostBoot): HostIsoMenu {
  const xenEntries = Object.keys(bootEntries).map((name): IsoXenEntry => {
    const boot = resolve({ ...plan.profile, boot: { ...plan.profile.boot, entry: name } });
    if (boot.kind !== 'boot') throw new Error(`entry ${name}: the boot decision gave ${boot.kind}`);
    return { id: name, title: boot.plan.entry.title, xenCommandLine: boot.plan.xenCommandLine, kernelCommandLine: boot.plan.kernelCommandLine };
  });
  return { xenEntries, defaultEntry: plan.entry.name };
}

/** The cache key: build id plus a hash of the menu (profile and server address are all in it). */
export function hostIsoKey(build: Build, mac: string, menu: HostIsoMenu): string {
  const hash = createHash('sha256').update(JSON.stringify({ mac, menu })).digest('hex').slice(0, 16);
  return `${build.id}-${hash}`;
}

export type HostIsoSources = Pick<HostSources, 'assets' | 'lookupProfile' | 'profileProblems' | 'endpoints'> & { secrets?: Pick<HostSecrets, 'tokens'> };

export type HostIsoPlan =
  { kind: 'plan'; mac: string; plan: BootPlan; menu: HostIsoMenu; key: string } | { kind: 'refused'; status: 400 | 404; message: string };

/** What a host's image holds, from its profile and its build (build-choice.ts), or why it gets none. */
export async function planHostIso(sources: HostIsoSources, macText: string): Promise<HostIsoPlan> {
  const mac = normaliseMac(macText);
  if (!mac) return { kind: 'refused', status: 400, message: `"${macText}" is not a MAC address` };
  const profile = sources.lookupProfile(mac);
  const { build, reason: buildReason } = await hostBuild(sources.assets, profile);
  const problems = sources.profileProblems?.(mac) ?? [];
  // The image is this host's boot medium for as long as the build lives: its
  // token is tied to the build (same build and MAC, same token, so the cached
  // image stays valid), and lets its runtime fetch the host's secrets.
  const nonce = build === undefined ? undefined : createHash('sha256').update(`host image\0${build.id}\0${mac}`).digest('base64url').slice(0, nonceLength);
  const tokens = nonce === undefined ? undefined : sources.secrets?.tokens;
  const token = tokens?.mintImage(mac, nonce!);
  const guestToken = tokens ? (domain: string) => tokens.mintGuest(mac, nonce!, domain) : undefined;
  const resolve = (profile: Profile | undefined) =>
    resolveHostBoot({
      mac,
      platform: 'bios',
      profile,
      problems,
      build,
      buildReason,
      endpoints: sources.endpoints,
      ...(token === undefined ? {} : { token }),
      ...(guestToken === undefined ? {} : { guestToken }),
    });
  const boot = resolve(profile);
  if (boot.kind === 'no-build') return { kind: 'refused', status: 404, message: `no build for ${boot.mac}: ${boot.reason}` };
  if (boot.kind !== 'boot') return { kind: 'refused', status: 404, message: `${boot.kind.replace('-', ' ')} for ${boot.mac}` };
  const menu = hostIsoMenu(boot.plan, resolve);
  return { kind: 'plan', mac, plan: boot.plan, menu, key: hostIsoKey(boot.plan.build, mac, menu) };
}

/** Write a host's image to `output`. */
export function writeHostIso(planned: Extract<HostIsoPlan, { kind: 'plan' }>, output: string) {
  const { plan, menu } = planned;
  return makeIso({
    partsDir: plan.build.dir,
    parts: plan.build.manifest.files,
    output,
    label: `${isoLabel(plan.build.manifest.files)} ${plan.profile.hostname}`,
    xenEntries: menu.xenEntries,
    defaultEntry: menu.defaultEntry,
  });
}

/** A host's image, held against eviction until `release()` (call it once the download ends). */
export type HostIsoImage = {
  kind: 'image';
  path: string;
  size: number;
  sha256: string;
  mtime: Date;
  build: string;
  mac: string;
  hostname: string;
  cached: boolean;
  release(): void;
};

export type HostIso = HostIsoImage | { kind: 'refused'; status: 400 | 404; message: string };

/** Default disk budget of the per-host image cache. */
export const defaultHostImageBudgetBytes = 2 * 1024 * 1024 * 1024;

/** Where a server keeps per-host images: beside the builds it makes them from. */
export function hostImageFolder(assetsDir: string): string {
  return path.join(assetsDir, 'host-images');
}

type ImageWriter = (planned: Extract<HostIsoPlan, { kind: 'plan' }>, output: string) => Promise<{ size: number; sha256: string }>;

/**
 * Per-host images under one folder, one per host (a newer key replaces the
 * older one); one build at a time per key. The folder holds at most
 * `budgetBytes` of images: past it the least recently served ones go (the
 * one just made always stays, and so do images handed out and not yet
 * released), so no run of requests can fill the disk.
 */
export class HostIsoCache {
  private readonly pending = new Map<string, Promise<{ size: number; sha256: string; mtime: Date }>>();
  /** Images on disk, least recently used first (Map order); the sha256 once known. */
  private readonly images = new Map<string, { size: number; sha256?: string }>();
  /** Images handed out and not yet released, and how many times: never evicted under a download. */
  private readonly held = new Map<string, number>();
  private scanned: Promise<void> | undefined;
  private bytes = 0;
  readonly budgetBytes: number;
  private readonly write: ImageWriter;

  constructor(
    readonly dir: string,
    options: { budgetBytes?: number; write?: ImageWriter } = {},
  ) {
    this.budgetBytes = options.budgetBytes ?? defaultHostImageBudgetBytes;
    this.write = options.write ?? writeHostIso;
  }

  /** Bytes of images on disk, as counted. */
  get cachedBytes(): number {
    return this.bytes;
  }

  /** Images left from an earlier run, oldest first by modification time. */
  private scan(): Promise<void> {
    this.scanned ??= (async () => {
      const found: Array<{ file: string; size: number; mtime: number }> = [];
      for (const host of await readdir(this.dir).catch(() => [] as string[])) {
        for (const name of await readdir(path.join(this.dir, host)).catch(() => [] as string[])) {
          if (!name.endsWith('.iso')) continue;
          const file = path.join(this.dir, host, name);
          const info = await stat(file).catch(() => undefined);
          if (info?.isFile()) found.push({ file, size: info.size, mtime: info.mtimeMs });
        }
      }
      found.sort((a, b) => a.mtime - b.mtime);
      for (const { file, size } of found) this.remember(file, size);
    })();
    return this.scanned;
  }

  /** Counts `file` as the most recently used. */
  private remember(file: string, size: number, sha256?: string): void {
    const known = this.images.get(file);
    this.forget(file);
    this.images.set(file, { size, ...((sha256 ?? known?.sha256) === undefined ? {} : { sha256: sha256 ?? known!.sha256 }) });
    this.bytes += size;
  }

  private forget(file: string): void {
    const known = this.images.get(file);
    if (known === undefined) return;
    this.images.delete(file);
    this.bytes -= known.size;
  }

  private async remove(file: string): Promise<void> {
    this.forget(file);
    await rm(file, { force: true });
    await rmdir(path.dirname(file)).catch(() => undefined); // only when it is empty
  }

  /** Holds `file` against eviction; the function given back lets it go (once). */
  private hold(file: string): () => void {
    this.held.set(file, (this.held.get(file) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(file) ?? 1) - 1;
      if (left > 0) this.held.set(file, left);
      else this.held.delete(file);
    };
  }

  /** The least recently used images go until the rest fits the budget; `keep` and held images stay. */
  private async evict(keep: string): Promise<void> {
    while (this.bytes > this.budgetBytes) {
      // The live order on each pass: an image used while another was removed is not the oldest any more.
      const victim = [...this.images.keys()].find((file) => file !== keep && !this.held.has(file));
      if (victim === undefined) return;
      await this.remove(victim);
    }
  }

  /** A host's image, made when missing, and held until its `release()`. */
  async image(sources: HostIsoSources, macText: string): Promise<HostIso> {
    const planned = await planHostIso(sources, macText);
    if (planned.kind !== 'plan') return planned;
    await this.scan();
    const { mac, plan, key } = planned;
    const hostDir = path.join(this.dir, mac.replaceAll(':', '-'));
    const file = path.join(hostDir, `${key}.iso`);
    const describe = { path: file, build: plan.build.id, mac, hostname: plan.profile.hostname };
    const existing = this.pending.has(key) ? undefined : await stat(file).catch(() => undefined);
    if (existing) {
      const sha256 = this.images.get(file)?.sha256 ?? (await sha256File(file));
      this.remember(file, existing.size, sha256); // now the most recently used
      return { kind: 'image', ...describe, size: existing.size, sha256, mtime: existing.mtime, cached: true, release: this.hold(file) };
    }
    let making = this.pending.get(key);
    if (!making) {
      making = (async () => {
        await mkdir(hostDir, { recursive: true });
        const made = await this.write(planned, file);
        this.remember(file, made.size, made.sha256);
        // The host's older images (other builds, older profiles) are not asked for again.
        for (const name of await readdir(hostDir)) {
          if (name !== path.basename(file) && name.endsWith('.iso')) await this.remove(path.join(hostDir, name));
        }
        await this.evict(file);
        return { ...made, mtime: (await stat(file)).mtime };
      })().finally(() => this.pending.delete(key));
      this.pending.set(key, making);
    }
    const made = await making;
    return { kind: 'image', ...describe, size: made.size, sha256: made.sha256, mtime: made.mtime, cached: false, release: this.hold(file) };
  }
}
