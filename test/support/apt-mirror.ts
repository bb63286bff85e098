import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A package mirror the test controls, beside the machine's own sources: a
 * flat repository in a folder (`deb [trusted=yes] file:FOLDER ./`, its
 * index made by dpkg-scanpackages) and an apt configuration of its own
 * (APT_CONFIG) whose lists and cache are the test's, so the machine's apt
 * state is never touched. The machine's sources stay in it, their lists
 * copied over, so everything else resolves as it does for the machine.
 */
export interface TestMirror {
  /** The file to name in APT_CONFIG. */
  aptConfig: string;
  /** Put `deb` into the mirror as version `version` of its package (the same files, another version) and index it again. */
  publishAs(deb: string, version: string): Promise<void>;
}

export async function createTestMirror(dir: string): Promise<TestMirror> {
  const mirror = join(dir, 'mirror');
  const lists = join(dir, 'lists');
  const parts = join(dir, 'sources.list.d');
  for (const folder of [mirror, join(lists, 'partial'), join(dir, 'cache', 'archives', 'partial'), parts]) await mkdir(folder, { recursive: true });
  const sourceList = join(dir, 'sources.list');
  await copyIfThere('/etc/apt/sources.list', sourceList, '');
  for (const name of await readdir('/etc/apt/sources.list.d').catch(() => [])) {
    if (/\.(list|sources)$/.test(name)) await copyFile(join('/etc/apt/sources.list.d', name), join(parts, name));
  }
  await writeFile(join(parts, 'rackboot-test-mirror.list'), `deb [trusted=yes] file:${mirror} ./\n`);
  for (const name of await readdir('/var/lib/apt/lists')) {
    const from = join('/var/lib/apt/lists', name);
    if (name !== 'lock' && (await stat(from)).isFile()) await copyFile(from, join(lists, name));
  }
  const aptConfig = join(dir, 'apt.conf');
  await writeFile(
    aptConfig,
    [
      `Dir::Etc::SourceList "${sourceList}";`,
      `Dir::Etc::SourceParts "${parts}";`,
      `Dir::State::Lists "${lists}/";`,
      `Dir::Cache "${join(dir, 'cache')}/";`,
      '',
    ].join('\n'),
  );
  const index = () => {
    const packages = execFileSync('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], { cwd: mirror, stdio: ['ignore', 'pipe', 'ignore'] });
    return writeFile(join(mirror, 'Packages.gz'), execFileSync('gzip', ['-9n'], { input: packages }));
  };
  await index();
  return {
    aptConfig,
    async publishAs(deb, version) {
      const tree = await mkdtemp(join(dir, 'repack-'));
      try {
        execFileSync('dpkg-deb', ['-R', deb, tree]);
        const control = join(tree, 'DEBIAN', 'control');
        await writeFile(control, (await readFile(control, 'utf8')).replace(/^Version: .*$/m, `Version: ${version}`));
        const name = /^Package: (\S+)$/m.exec(await readFile(control, 'utf8'))![1]!;
        execFileSync('dpkg-deb', ['-Zgzip', '-b', tree, join(mirror, `${name}_${version.replace(/^\d+:/, '')}_amd64.deb`)], { stdio: 'ignore' });
      } finally {
        await rm(tree, { recursive: true, force: true });
      }
      await index();
    },
  };
}

async function copyIfThere(from: string, to: string, otherwise: string): Promise<void> {
  try {
    await copyFile(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await writeFile(to, otherwise);
  }
}
