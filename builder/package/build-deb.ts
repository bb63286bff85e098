import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { chmod, copyFile, cp, lstat, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FolderLayout } from '../../server/folder-layout.js';
import { serveOptions } from '../../server/serve-options.js';
import { renderSampleConfig } from './sample-config.js';

/**
 * `npm run package`: rackboot_<version>_amd64.deb, made with dpkg-deb from
 * the built tree. The package carries the Node.js 20 that builds it (Debian
 * 12's nodejs is 18) at /usr/lib/rackboot/node, with the production modules
 * (the native addon and better-sqlite3 as built for that Node), and depends
 * on the shared libraries those binaries need, as dpkg-shlibdeps finds them
 * in Debian's own packages.
 */

/** Where the installed package keeps its folders: the defaults an installed rackboot uses (server/folder-layout.ts). */
export const installedLayout: FolderLayout = {
  profiles: '/etc/rackboot/profiles',
  assets: '/var/lib/rackboot/boot-assets',
  state: '/var/lib/rackboot',
};

const libDir = '/usr/lib/rackboot';

/** The Node.js major version rackboot is built for and carries. */
export const nodeMajor = 20;

/** Build tools and the package each comes in, for the message when one is missing. */
const tools: Record<string, string> = { 'dpkg-deb': 'dpkg', 'dpkg-shlibdeps': 'dpkg-dev', strip: 'binutils' };

export interface PackageOptions {
  /** The repository root, built (npm install, tsc). */
  root: string;
  /** Folder for the .deb (made afresh; its root/ subfolder is the staged tree). */
  out: string;
  /** The node binary to carry (default: the one running this). */
  node?: string;
}

export interface BuiltPackage {
  file: string;
  version: string;
  bytes: number;
  installedKiB: number;
  depends: string;
}

function fail(message: string): never {
  throw new Error(message);
}

function which(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const candidate = path.join(dir, tool);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Files and folders under `dir`, depth first. */
async function walk(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    found.push(full);
    if (entry.isDirectory()) found.push(...(await walk(full)));
  }
  return found;
}

/** The newest version in a Debian changelog (its first line: "rackboot (0.1.0) unstable; ..."). */
export function changelogVersion(text: string, file: string): string {
  const match = /^rackboot \(([^)]+)\)/.exec(text);
  if (!match) fail(`${file}: the first line is not "rackboot (VERSION) ..."`);
  return match[1]!;
}

/** The production modules (npm ls --omit=dev), as folders relative to the root. */
function productionModules(root: string): string[] {
  const listed = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return listed
    .split('\n')
    .filter(Boolean)
    .map((line) => path.relative(root, line))
    .filter((rel) => rel !== '' && rel.startsWith('node_modules'));
}

/**
 * What a module ships that nothing loads at run time: its tests and
 * benchmarks, its documents (Markdown, HTML), type declarations, source maps
 * and the dotfiles of its repository (lint and ignore files). Licenses stay.
 * Every dependency is imported from the staged tree afterwards, so a file
 * left out that a module needs stops the build.
 */
export function devOnly(relative: string): boolean {
  if (relative === '') return false;
  const parts = relative.split(path.sep);
  const name = parts[parts.length - 1]!;
  if (/^licen[cs]e/i.test(name)) return false;
  if (parts.some((part) => /^(tests?|benchmarks?|\.github)$/.test(part) || part.startsWith('.'))) return true;
  return /\.(md|markdown|html|d\.ts|d\.mts|d\.cts|map)$/i.test(name);
}

export async function buildPackage(options: PackageOptions): Promise<BuiltPackage> {
  const { root, out } = options;
  const node = options.node ?? process.execPath;
  const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  if (!nodeVersion.startsWith(`v${nodeMajor}.`)) {
    fail(
      `${node} is Node.js ${nodeVersion}: the package carries the Node that builds it, and rackboot wants Node.js ${nodeMajor}; run "npm install" and "npm run package" with Node.js ${nodeMajor}`,
    );
  }
  for (const [tool, pkg] of Object.entries(tools)) if (!which(tool)) fail(`${tool} is missing: install ${pkg} (builder/install-deps.sh --test does)`);
  const cli = path.join(root, 'dist/server/cli.js');
  if (!existsSync(cli)) fail(`${cli} is missing: run "npx tsc -p ." first (npm run package does)`);
  const addons = {
    native: path.join(root, 'server/native/build/Release/rackboot_native.node'),
    sqlite: path.join(root, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
  };
  for (const addon of Object.values(addons)) {
    if (!existsSync(addon)) fail(`${addon} is missing: run "npm install" with Node.js ${nodeMajor}`);
    try {
      execFileSync(node, ['-e', `process.dlopen({ exports: {} }, ${JSON.stringify(addon)})`], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      fail(
        `${addon} does not load in ${node} (${nodeVersion}): rebuild it with "npm rebuild" under Node.js ${nodeMajor} (${
          String((error as { stderr?: Buffer }).stderr ?? error)
            .trim()
            .split('\n')[0]
        })`,
      );
    }
  }
  const packageJson = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string; description: string };
  const version = packageJson.version;
  const changelogFile = path.join(root, 'builder/package/changelog');
  const changelog = await readFile(changelogFile, 'utf8');
  const logged = changelogVersion(changelog, changelogFile);
  if (logged !== version) fail(`${changelogFile}: its newest entry is ${logged}, package.json says ${version}: add an entry for ${version}`);

  await rm(out, { recursive: true, force: true });
  const stage = path.join(out, 'root');
  const at = (target: string) => path.join(stage, target);
  const lib = at(libDir);
  await mkdir(lib, { recursive: true });

  // Node, stripped of its symbols as Debian strips binaries; it must still run.
  await copyFile(node, path.join(lib, 'node'));
  execFileSync('strip', ['--strip-unneeded', '--remove-section=.comment', '--remove-section=.note', path.join(lib, 'node')]);
  const strippedVersion = execFileSync(path.join(lib, 'node'), ['--version'], { encoding: 'utf8' }).trim();
  if (strippedVersion !== nodeVersion) fail(`the stripped copy of ${node} says ${strippedVersion}, not ${nodeVersion}`);

  // The code: the compiled server and builder, the builder's sources (its
  // recipe hash and `rackboot build` read them), package.json.
  await copyFile(path.join(root, 'package.json'), path.join(lib, 'package.json'));
  const noMaps = (source: string) => !source.endsWith('.map');
  for (const part of ['dist/server', 'dist/builder']) await cp(path.join(root, part), path.join(lib, part), { recursive: true, filter: noMaps });
  await cp(path.join(root, 'builder'), path.join(lib, 'builder'), { recursive: true });
  await writeFile(path.join(lib, 'dist/layout.json'), `${JSON.stringify(installedLayout, null, 2)}\n`);

  // Production modules only, each as a folder of its own (nested ones are listed too).
  for (const rel of productionModules(root)) {
    const from = path.join(root, rel);
    const to = path.join(lib, rel);
    await mkdir(path.dirname(to), { recursive: true });
    if (rel === 'node_modules/rackboot-native') {
      // A link to server/native in the clone: the package holds the built addon and its package.json.
      await mkdir(path.join(to, 'build/Release'), { recursive: true });
      await copyFile(path.join(from, 'package.json'), path.join(to, 'package.json'));
      await copyFile(addons.native, path.join(to, 'build/Release/rackboot_native.node'));
      continue;
    }
    const skip = new Set([path.join(from, 'node_modules')]);
    // better-sqlite3: the addon only, not SQLite's sources and the objects it was built from.
    if (rel === 'node_modules/better-sqlite3') for (const name of ['deps', 'src', 'build', 'binding.gyp']) skip.add(path.join(from, name));
    await cp(from, to, { recursive: true, dereference: true, filter: (source) => !skip.has(source) && !devOnly(path.relative(from, source)) });
  }
  await mkdir(path.join(lib, 'node_modules/better-sqlite3/build/Release'), { recursive: true });
  await copyFile(addons.sqlite, path.join(lib, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'));
  execFileSync('strip', [
    '--strip-unneeded',
    path.join(lib, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
    path.join(lib, 'node_modules/rackboot-native/build/Release/rackboot_native.node'),
  ]);

  // Every dependency loads from the staged tree with the staged Node.
  const dependencies = Object.keys(
    (JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies,
  );
  try {
    const load = [
      "import { createRequire } from 'node:module';",
      "const require = createRequire(process.cwd() + '/');",
      `for (const name of ${JSON.stringify(dependencies)}) {`,
      '  try { require(name); } catch (error) { if (["ERR_REQUIRE_ESM", "ERR_PACKAGE_PATH_NOT_EXPORTED"].includes(error.code)) await import(name); else throw error; }',
      '}',
      // better-sqlite3 loads its addon at the first database.
      "new (require('better-sqlite3'))(':memory:').close();",
    ].join('\n');
    execFileSync(path.join(lib, 'node'), ['--input-type=module', '-e', load], { cwd: lib, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    fail(
      `a module does not load from the staged package (${lib}): ${String((error as { stderr?: Buffer }).stderr ?? error)
        .trim()
        .split('\n')
        .slice(0, 6)
        .join(' ')}`,
    );
  }

  const put = async (target: string, content: string | Buffer, mode = 0o644) => {
    await mkdir(path.dirname(at(target)), { recursive: true });
    await writeFile(at(target), content);
    await chmod(at(target), mode);
  };
  const packaging = (name: string) => readFile(path.join(root, 'builder', 'package', name));
  await put('/usr/bin/rackboot', await packaging('rackboot.sh'), 0o755);
  await put('/lib/systemd/system/rackboot.service', await packaging('rackboot.service'));
  // The nightly build of a channel, made only when a package changed: systemctl enable --now rackboot-rebuild@testing.timer
  await put('/lib/systemd/system/rackboot-rebuild@.service', await packaging('rackboot-rebuild@.service'));
  await put('/lib/systemd/system/rackboot-rebuild@.timer', await packaging('rackboot-rebuild@.timer'));
  await put('/etc/rackboot/build.yaml', await readFile(path.join(root, 'builder/build.yaml')));
  await put('/usr/lib/sysusers.d/rackboot.conf', await packaging('rackboot.sysusers'));
  await put('/etc/rackboot/rackboot.yaml', renderSampleConfig(serveOptions, installedLayout));
  await put('/etc/rackboot/profiles/default.yaml', await readFile(path.join(root, 'profiles/default.yaml')));

  // The man page and the completion, from the staged code itself: its help shows the installed folders.
  const staged = (args: string[]) =>
    execFileSync(path.join(lib, 'node'), [path.join(lib, 'dist/server/cli.js'), ...args], { cwd: out, stdio: ['ignore', 'pipe', 'pipe'] });
  await put('/usr/share/man/man8/rackboot.8.gz', gzipSync(staged(['manpage']), { level: 9 }));
  await put('/usr/share/bash-completion/completions/rackboot', staged(['completion']));

  const nodeLicense = ['share/doc/nodejs/LICENSE', 'share/doc/node/LICENSE', 'LICENSE']
    .map((rel) => path.resolve(node, '../..', rel))
    .find((file) => existsSync(file));
  if (nodeLicense === undefined)
    fail(
      `cannot find the license of ${node} (looked in ${path.resolve(node, '../..')}/share/doc/nodejs/LICENSE and beside it): the package must carry it with the binary`,
    );
  await put('/usr/share/doc/rackboot/copyright', await packaging('copyright'));
  await put('/usr/share/doc/rackboot/LICENSE.node', await readFile(nodeLicense));
  // A native package (no Debian revision): its changelog is changelog.gz.
  await put('/usr/share/doc/rackboot/changelog.gz', gzipSync(changelog, { level: 9 }));
  await put('/usr/share/lintian/overrides/rackboot', await packaging('lintian-overrides'));

  // Modes as Debian wants them: folders 0755, files 0644, executables 0755; no write bit for others.
  for (const file of await walk(stage)) {
    const info = await lstat(file);
    if (info.isSymbolicLink()) continue;
    await chmod(file, info.isDirectory() || (info.mode & 0o111) !== 0 ? 0o755 : 0o644);
  }
  // In the modules only scripts (a #! line) are programs; shared objects are not.
  for (const file of await walk(path.join(lib, 'node_modules'))) {
    if (!(await lstat(file)).isFile()) continue;
    const script = (await readFile(file)).subarray(0, 2).toString('latin1') === '#!';
    await chmod(file, script ? 0o755 : 0o644);
  }
  await chmod(path.join(lib, 'dist/server/cli.js'), 0o755);

  const depends = shlibDepends(out, [
    path.join(lib, 'node'),
    path.join(lib, 'node_modules/rackboot-native/build/Release/rackboot_native.node'),
    path.join(lib, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'),
  ]);

  const files = (await walk(stage)).filter((file) => !file.startsWith(path.join(stage, 'DEBIAN')));
  let installedBytes = 0;
  const sums: string[] = [];
  for (const file of files) {
    const info = await lstat(file);
    installedBytes += info.isDirectory() ? 4096 : info.size;
    if (info.isFile() && !file.startsWith(at('/etc/')))
      sums.push(
        `${createHash('md5')
          .update(await readFile(file))
          .digest('hex')}  ${path.relative(stage, file)}`,
      );
  }
  const installedKiB = Math.ceil(installedBytes / 1024);
  const control = [
    'Package: rackboot',
    `Version: ${version}`,
    'Architecture: amd64',
    `Maintainer: ${process.env.DEBFULLNAME && process.env.DEBEMAIL ? `${process.env.DEBFULLNAME} <${process.env.DEBEMAIL}>` : 'rackboot maintainers <rackboot@invalid>'}`,
    `Installed-Size: ${installedKiB}`,
    // systemd-sysusers makes the rackboot user (postinst), as dh_installsysusers does;
    // procps has /bin/kill, which the unit's ExecReload sends SIGHUP with.
    `Depends: ${depends}, procps, systemd | systemd-standalone-sysusers | systemd-sysusers`,
    // How the server power-cycles hosts through their BMCs (bmc: in a profile; server/bmc/ipmi.ts).
    'Recommends: ipmitool',
    // What `rackboot build` takes the boot parts and the CD image with (builder/install-deps.sh).
    'Suggests: debootstrap, squashfs-tools, cpio, xz-utils, xorriso, mtools, grub-common, grub-pc-bin, grub-efi-amd64-bin',
    'Section: net',
    'Priority: optional',
    `Description: network-boot provisioning server for Xen hosts`,
    ' rackboot answers DHCP, TFTP and HTTP on one interface and boots every',
    ' machine into the Xen hypervisor with a Linux dom0 that runs from RAM,',
    ' with its own profile: hostname, address, root password hash, ssh,',
    ' timezone, Xen and kernel arguments, guests.',
    ' .',
    ' The package carries the Node.js 20 runtime rackboot runs on, and runs',
    ' "rackboot serve" as the systemd service rackboot.service.',
    '',
  ].join('\n');
  const debian = at('/DEBIAN');
  await mkdir(debian, { mode: 0o755 });
  await writeFile(path.join(debian, 'control'), control);
  await writeFile(path.join(debian, 'conffiles'), '/etc/rackboot/rackboot.yaml\n/etc/rackboot/build.yaml\n/etc/rackboot/profiles/default.yaml\n');
  await writeFile(path.join(debian, 'md5sums'), `${sums.sort((a, b) => a.slice(34).localeCompare(b.slice(34))).join('\n')}\n`);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    await copyFile(path.join(root, 'builder', 'package', script), path.join(debian, script));
    await chmod(path.join(debian, script), 0o755);
  }
  for (const name of ['control', 'conffiles', 'md5sums']) await chmod(path.join(debian, name), 0o644);

  const file = path.join(out, `rackboot_${version}_amd64.deb`);
  // gzip: what lintian accepts, and 4 s where xz takes 30 (37 MB against 25).
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', stage, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  await rm(stage, { recursive: true, force: true });
  return { file, version, bytes: (await stat(file)).size, installedKiB, depends };
}

/** The Depends line for these binaries (dpkg-shlibdeps, in a scratch folder holding the debian/control it wants). */
function shlibDepends(out: string, binaries: string[]): string {
  const scratch = path.join(out, 'shlibdeps');
  mkdirSync(path.join(scratch, 'debian'), { recursive: true });
  writeFileSync(path.join(scratch, 'debian/control'), 'Source: rackboot\n\nPackage: rackboot\nArchitecture: amd64\n');
  const output = execFileSync('dpkg-shlibdeps', ['-O', '--warnings=0', ...binaries], { cwd: scratch, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  rmSync(scratch, { recursive: true, force: true });
  const match = /^shlibs:Depends=(.+)$/m.exec(output);
  if (!match) fail(`dpkg-shlibdeps gave no dependencies for ${binaries.join(', ')}: ${output}`);
  return match[1]!.trim();
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  // dist/builder/package/build-deb.js -> the repository root
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const started = Date.now();
  try {
    const built = await buildPackage({ root, out: path.join(root, 'dist-package') });
    process.stdout.write(
      `${path.relative(process.cwd(), built.file)}: ${(built.bytes / 1048576).toFixed(1)} MiB (${(built.installedKiB / 1024).toFixed(0)} MiB installed), Depends: ${built.depends}; ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  } catch (error) {
    process.stderr.write(`npm run package: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
