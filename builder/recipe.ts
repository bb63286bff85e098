import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

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

/**
 * The recipe of a build: one sha256 over everything in the source tree that
 * shapes the parts besides the Debian packages, namely the builder's own code,
 * its default settings (builder/build.yaml) and the runtime's scripts
 * (builder/runtime/). A build records it in its manifest, so `demo` and
 * `serve` can tell a build made by an older rackboot, whose runtime may not
 * fit the server's profiles any more (a new dom0 size, a renamed boot-line
 * option), from one that matches the code they run.
 */
export async function builderRecipe(packageRoot: string): Promise<string> {
  const builder = join(packageRoot, 'builder');
  const runtime = join(builder, 'runtime');
  const sources = (await readdir(builder)).filter((name) => name.endsWith('.ts') || name === 'build.yaml').map((name) => join('builder', name));
  // Every file under builder/runtime, its folders too (debian-guest/).
  const scripts = (await readdir(runtime, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join('builder', 'runtime', relative(runtime, join(entry.parentPath ?? entry.path, entry.name))));
  const hash = createHash('sha256');
  for (const file of [...sources, ...scripts].sort()) {
    const digest = createHash('sha256')
      .update(await readFile(join(packageRoot, file)))
      .digest('hex');
    hash.update(`${file} ${digest}\n`);
  }
  return hash.digest('hex');
}
