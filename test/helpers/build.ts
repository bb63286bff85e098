import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../server/log.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/test/helpers -> repository root */
export const repoRoot = path.resolve(here, '../../..');
export const cliPath = path.join(repoRoot, 'dist/server/cli.js');
export const testAssets = path.join(repoRoot, 'test/.work/boot-assets');

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else out.push(full);
  }
  return out.sort();
}

/** A fingerprint of the builder's code: a changed builder means a new test build. */
async function builderFingerprint(): Promise<string> {
  const hash = createHash('sha256');
  for (const dir of [path.join(repoRoot, 'dist/builder'), path.join(repoRoot, 'builder')]) {
    for (const file of await filesUnder(dir)) {
      if (file.endsWith('.map')) continue;
      hash.update(file).update(await readFile(file));
    }
  }
  return hash.digest('hex');
}

async function lock(dir: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      await mkdir(dir);
      return () => rm(dir, { recursive: true, force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = Date.now() - (await stat(dir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 30 * 60_000) await rm(dir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`waited too long for ${dir}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/**
 * The boot parts the end-to-end tests boot: built once per builder version
 * with the real builder (real Debian packages, shared download cache) and
 * reused by every test process; a lock keeps parallel test files from
 * building twice.
 */
export async function ensureTestBuild(): Promise<string> {
  await mkdir(path.dirname(testAssets), { recursive: true });
  const release = await lock(`${testAssets}.lock`);
  try {
    const fingerprint = await builderFingerprint();
    const stampFile = path.join(testAssets, '.builder-fingerprint');
    const stamp = await readFile(stampFile, 'utf8').catch(() => '');
    const hasCurrent = await stat(path.join(testAssets, 'current/manifest.json')).then(() => true, () => false);
    if (stamp !== fingerprint || !hasCurrent) {
      const { build } = await import('../../builder/build.js');
      await build({ out: testAssets, variant: 'tiny', log: createLogger({ level: 'warn', pretty: false }) });
      await writeFile(stampFile, fingerprint);
    }
    return testAssets;
  } finally {
    await release();
  }
}
