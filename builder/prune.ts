import { randomBytes } from 'node:crypto';
import { readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';

export interface PruneResult {
  kept: string[];
  removed: string[];
}

/**
 * `rackboot build --keep N`: keep the N newest builds (by the time their
 * manifest records) and always the current one of every channel, remove
 * the rest. Builds in `pinned` (profiles' boot.build) are kept too: their
 * hosts would not boot without them.
 *
 * A build is first renamed out of `builds/` and only then deleted, so the
 * server never sees half of one: a request either finds the whole build or
 * none. Transfers already running keep reading the files they opened (the
 * kernel frees them when the last reader closes), so a machine in the middle
 * of a download finishes it with the old content.
 */
export async function pruneBuilds(out: string, keep: number, log: Logger, pinned: ReadonlySet<string> = new Set()): Promise<PruneResult> {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`--keep ${keep}: want a whole number of builds, at least 1`);
  const buildsDir = join(out, 'builds');
  const links = [join(out, 'current'), ...(await readdir(join(out, 'channels')).catch(() => [] as string[])).map((name) => join(out, 'channels', name))];
  const current = (await Promise.all(links.map((link) => realpath(link).then(basename, () => undefined)))).filter((id) => id !== undefined);
  const builds: Array<{ id: string; created: string }> = [];
  for (const id of await readdir(buildsDir).catch(() => [] as string[])) {
    if (id.startsWith('.')) continue;
    const manifest = await readFile(join(buildsDir, id, 'manifest.json'), 'utf8').then(
      (text) => JSON.parse(text) as { created?: unknown },
      () => undefined,
    );
    // A folder without a readable manifest was never a published build; it is left alone.
    if (manifest === undefined || typeof manifest.created !== 'string') continue;
    builds.push({ id, created: manifest.created });
  }
  builds.sort((a, b) => (a.created === b.created ? (a.id < b.id ? 1 : -1) : a.created < b.created ? 1 : -1));
  const kept = new Set(builds.slice(0, keep).map((build) => build.id));
  for (const id of current) kept.add(id);
  for (const id of pinned) kept.add(id);
  const removed: string[] = [];
  for (const build of builds) {
    if (kept.has(build.id)) continue;
    const doomed = join(buildsDir, `.removing-${build.id}-${randomBytes(4).toString('hex')}`);
    await rename(join(buildsDir, build.id), doomed);
    await rm(doomed, { recursive: true, force: true });
    removed.push(build.id);
  }
  log.info({ kept: [...kept], removed }, removed.length === 0 ? 'builds: nothing to prune' : 'builds: old builds removed');
  return { kept: builds.filter((build) => kept.has(build.id)).map((build) => build.id), removed };
}
