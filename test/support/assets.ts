import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Build } from '../../server/assets/builds.js';
import { MANIFEST_NAME, type BuildFileName, type Manifest, type ManifestFile } from '../../server/assets/manifest.js';

/** A manifest entry for `name` holding `data`, from a made-up package. */
export function manifestFile(name: string, data: Buffer): ManifestFile {
  return { name: name as BuildFileName, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), package: 'test', version: '1' };
}

/**
 * A build folder as `rackboot build` leaves it, with only the parts a test
 * names (the server serves what a build has): ASSETS/builds/<id>/ with the
 * parts and manifest.json. Returns the manifest.
 */
export async function writeTestBuild(
  assets: string,
  id: string,
  parts: Record<string, Buffer>,
  created = '2026-11-25T18:00:00Z',
  channel?: string,
): Promise<Manifest> {
  const dir = path.join(assets, 'builds', id);
  await mkdir(dir, { recursive: true });
  const manifest: Manifest = { id, created, release: 'bookworm', variant: 'tiny', ...(channel === undefined ? {} : { channel }), files: [] };
  for (const [name, data] of Object.entries(parts)) {
    await writeFile(path.join(dir, name), data);
    manifest.files.push(manifestFile(name, data));
  }
  await writeFile(path.join(dir, MANIFEST_NAME), JSON.stringify(manifest));
  return manifest;
}

/** A Build held in memory only, for code that reads a manifest's file list. */
export function memoryBuild(id: string, names: string[]): Build {
  return {
    id,
    dir: '/nonexistent',
    manifest: {
      id,
      created: '',
      release: 'bookworm',
      variant: 'tiny',
      files: names.map((name) => ({ ...manifestFile(name, Buffer.alloc(1)), size: 1, sha256: '' })),
    },
  };
}
