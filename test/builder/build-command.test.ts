import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AptClient } from '../../builder/apt.js';
import { defaultCacheDir, packageRoot as repoRootOf, resolveKernel } from '../../builder/build.js';
import { builderRecipe } from '../../builder/recipe.js';
import { parseManifest, type Manifest } from '../../server/assets/manifest.js';
import { silentLogger } from '../../server/log.js';
import { createTestMirror } from '../support/apt-mirror.js';
import { openCheckoutView, type CheckoutView } from '../support/as-user.js';
import { assertRoot, Netns } from '../support/netns.js';
import { runCommand, type Finished } from '../support/run.js';

/**
 * `rackboot build` as a person runs it: the real CLI, real Debian packages
 * (through the shared download cache), real builds of the tiny variant.
 * Progress and the summary on a pseudo-terminal (script(1)) and off one;
 * then every way a build is expected to fail, each of which must end with
 * one line naming the step and leave the last good build current.
 */

const cli = fileURLToPath(new URL('../../server/cli.js', import.meta.url));
/** An older Xen than bookworm-security's, still offered by bookworm's main archive. */
const OLDER_XEN = '4.17.5+72-g01140da4e8-1';

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> => runCommand(cmd, args, { env });

/** `rackboot ...` as nobody (uid 65534), through a view of the checkout nobody can reach whatever its parent folders (see support/as-user.ts). */
async function runAsNobody(cliArgs: string[], env: NodeJS.ProcessEnv = {}): Promise<Finished> {
  const view: CheckoutView = await openCheckoutView();
  try {
    const { command, args } = view.command('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'node', cli, ...cliArgs]);
    return await run(command, args, env);
  } finally {
    await view.remove();
  }
}

const lastLine = (text: string): string => text.trimEnd().split('\n').pop()!;

async function manifestOf(out: string): Promise<Manifest> {
  return parseManifest(JSON.parse(await readFile(join(out, 'current', 'manifest.json'), 'utf8')));
}

/** After a failed build: current still names the good build, and no other folder (partial or finished) is left. */
async function assertUntouched(out: string, goodId: string, others: string[] = []): Promise<void> {
  assert.equal(await readlink(join(out, 'current')), `builds/${goodId}`);
  assert.deepEqual(await readdir(join(out, 'builds')), [goodId], 'no partial build folder is left');
  assert.deepEqual((await readdir(out)).sort(), ['builds', 'current', ...others].sort());
}

function assertOneFailureLine(result: Finished, line: RegExp): void {
  assert.equal(result.code, 1, `exit code (stderr: ${result.stderr})`);
  assert.match(lastLine(result.stderr), line);
  assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(result.stderr.split('\n').filter((l) => l.startsWith('rackboot build:')).length, 1, 'one line of its own');
}

let scratch: string;
let goodOut: string;
let good: Manifest;
let terminal: Finished;

before(async () => {
  assertRoot();
  scratch = await mkdtemp(join(tmpdir(), 'rackboot-build-cli-'));
  goodOut = join(scratch, 'assets');
  // script(1) runs the build on a pseudo-terminal: stdout and stderr both arrive on its stdout.
  terminal = await run('script', ['-qfec', `node ${cli} build --out ${goodOut} --variant tiny --no-iso`, '/dev/null'], { COLUMNS: '100' });
  assert.equal(terminal.code, 0, terminal.stdout);
  good = await manifestOf(goodOut);
});

after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test('on a terminal: live progress bars, then the summary with shortened sha256', () => {
  const screen = terminal.stdout;
  assert.match(screen, /\x1b\[\d*A\x1b\[J/, 'lines are redrawn in place');
  assert.match(screen, /fetch packages\s+\[[#.]+\]\s+\d+%\s+[\d.]+ MiB \/ [\d.]+ MiB/, 'a bar in bytes for the packages');
  assert.match(screen, /unpack\s+\[[#.]+\]\s+\d+%\s+\d \/ 4 items/, 'a bar in items for the unpacking');
  assert.match(screen, /initrd\s+\[#+\]\s+100%\s+[\d.]+ MiB \/ [\d.]+ MiB/, 'a bar for the initrd compression');
  assert.match(screen, /kernel modules\s+[\d.]+ MiB\s+\d+\.\d s/, 'the kernel package read so far, in bytes');
  for (const step of ['fetch packages', 'unpack', 'kernel modules', 'initrd', 'guest', 'publish']) {
    assert.match(screen, new RegExp(`build: step "${step}" done in \\d+\\.\\d s`), step);
  }
  assert.doesNotMatch(screen, /"level":/, 'no JSON log lines between the bars');
  for (const file of good.files) {
    assert.match(
      screen,
      new RegExp(`^${file.name.replace(/[.+]/g, '\\$&')}\\s+[\\d.]+ (B|KiB|MiB)\\s+${file.sha256.slice(0, 16)}\\s+\\d+\\.\\d s\\r?$`, 'm'),
      file.name,
    );
    assert.ok(!screen.includes(file.sha256), `${file.name}: the full sha256 does not fit a terminal line`);
  }
  assert.match(screen, new RegExp(`^${good.files.length} parts, [\\d.]+ MiB, built in \\d+\\.\\d s`, 'm'));
});

test('off a terminal, with a settings file and switches over it: plain step lines, full sha256, the pinned Xen is the one built', async () => {
  const out = join(scratch, 'pinned');
  const config = join(scratch, 'pinned.yaml');
  await writeFile(
    config,
    `variant: tiny\nversions:\n  xen: ${OLDER_XEN}\nparts:\n  memtest: false\n  guest: true\niso:\n  sourceDateEpoch: 1600000000\n  volumeLabel: RB_FILE\n`,
  );
  // The switches win over the file.
  const result = await run('node', [
    cli,
    'build',
    '--out',
    out,
    '--config',
    config,
    '--no-guest',
    '--volume-label',
    'RB_SWITCH',
    '--source-date-epoch',
    '1700000000',
  ]);
  assert.equal(result.code, 0, result.stderr);
  const manifest = await manifestOf(out);
  const byName = new Map(manifest.files.map((f) => [f.name, f]));
  assert.equal(byName.get('xen')!.version, OLDER_XEN, 'the pin is the version downloaded');
  assert.equal(byName.get('xen.efi')!.version, OLDER_XEN);
  assert.equal(manifest.variant, 'tiny');
  assert.equal(manifest.recipe, await builderRecipe(repoRootOf()), 'the manifest records the recipe of the sources that made it');
  assert.deepEqual(
    manifest.files.map((f) => f.name),
    ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'undionly.kpxe', 'ipxe.efi', 'snponly.efi', 'rackboot.iso'],
    'parts.memtest off in the file, --no-guest over the file',
  );
  // ECMA-119 8.4: the primary volume descriptor (sector 16) holds the volume identifier at 40 and the
  // root directory record at 156, whose recording date (9.1.5, at +18) is years since 1900, month, day,
  // hour, minute, second, zone: every file date is the epoch.
  const pvd = (await readFile(join(out, 'current', 'rackboot.iso'))).subarray(16 * 2048, 17 * 2048);
  assert.equal(pvd.toString('latin1', 1, 6), 'CD001');
  assert.equal(pvd.toString('latin1', 40, 72).trimEnd(), 'RB_SWITCH', '--volume-label over iso.volumeLabel');
  assert.deepEqual([...pvd.subarray(156 + 18, 156 + 24)], [123, 11, 14, 22, 13, 20], 'iso.sourceDateEpoch 1700000000 is 2023-11-14 22:13:20 UTC');
  const lines = result.stderr.split('\n');
  assert.doesNotMatch(result.stderr, /\x1b/, 'no escape codes off a terminal');
  for (const step of ['fetch packages', 'unpack', 'kernel modules', 'initrd', 'iso', 'publish']) {
    assert.equal(lines.filter((l) => l === `build: step "${step}" started`).length, 1, step);
    assert.equal(lines.filter((l) => new RegExp(`^build: step "${step}" done in \\d+\\.\\d s`).test(l)).length, 1, step);
  }
  assert.ok(!lines.some((l) => /step "(rootfs|guest)"/.test(l)), 'steps the settings leave out do not appear');
  for (const file of manifest.files) {
    assert.ok(
      lines.some((l) => l.startsWith(`${file.name} `) && l.includes(file.sha256)),
      `${file.name} with its full sha256 in the summary`,
    );
  }
  // The log's "build done" line carries the same parts, full sha256 and time each.
  const done = result.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; parts?: Array<{ name: string; size: number; sha256: string; ms: number }> })
    .find((l) => l.msg.startsWith('build done'));
  assert.ok(done?.parts);
  assert.deepEqual(
    done.parts.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    manifest.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
  );
  assert.ok(done.parts.every((p) => Number.isInteger(p.ms) && p.ms >= 0));
});

test("--channel: the channel's settings over the file's, the build becomes the channel's current one and the default channel's stays", async () => {
  const out = join(scratch, 'channels');
  await mkdir(join(out, 'builds'), { recursive: true });
  // The default channel's build, copied from the good one (hard links: the same bytes).
  const goodDir = join(goodOut, 'builds', good.id);
  await mkdir(join(out, 'builds', good.id));
  for (const name of await readdir(goodDir)) await link(join(goodDir, name), join(out, 'builds', good.id, name));
  execFileSync('ln', ['-s', `builds/${good.id}`, join(out, 'current')]);
  const config = join(scratch, 'channels.yaml');
  await writeFile(
    config,
    `variant: tiny\nparts:\n  iso: false\nchannels:\n  testing:\n    versions:\n      xen: ${OLDER_XEN}\n    parts:\n      memtest: false\n`,
  );
  const unknown = await run('node', [cli, 'build', '--out', out, '--config', config, '--channel', 'nightly']);
  assert.equal(unknown.code, 2, unknown.stderr);
  assert.equal(lastLine(unknown.stderr), `rackboot build: --channel nightly: no channel of that name in ${config} (it has testing)`);
  assert.deepEqual(await readdir(join(out, 'builds')), [good.id], 'nothing built for a channel the file does not have');

  const result = await run('node', [cli, 'build', '--out', out, '--config', config, '--channel', 'testing']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await readlink(join(out, 'current')), `builds/${good.id}`, "the default channel's current build is untouched");
  const target = await readlink(join(out, 'channels', 'testing'));
  assert.match(target, /^\.\.\/builds\/\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{8}$/);
  const manifest = parseManifest(JSON.parse(await readFile(join(out, 'channels', 'testing', 'manifest.json'), 'utf8')));
  assert.equal(manifest.channel, 'testing');
  assert.equal(manifest.files.find((f) => f.name === 'xen')!.version, OLDER_XEN, "the channel's pin is the Xen built");
  assert.ok(!manifest.files.some((f) => f.name.startsWith('memtest')), "the channel's parts: no memtest");
  assert.equal(good.channel, undefined, 'a build without --channel records none');
  const started = result.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; channel?: string })
    .find((l) => l.msg === 'build started');
  assert.equal(started?.channel, 'testing');
});

/** A folder of its own whose current build is the good one (its files linked). */
async function withGoodCurrent(name: string): Promise<string> {
  const out = join(scratch, name);
  await mkdir(join(out, 'builds', good.id), { recursive: true });
  const goodDir = join(goodOut, 'builds', good.id);
  for (const file of await readdir(goodDir)) await link(join(goodDir, file), join(out, 'builds', good.id, file));
  execFileSync('ln', ['-s', `builds/${good.id}`, join(out, 'current')]);
  return out;
}

test('--if-changed: nothing changed makes no build; a new pin makes one that records what changed; the same again makes none', async () => {
  const out = await withGoodCurrent('if-changed');
  const ifChanged = (extra: string[] = []) => run('node', [cli, 'build', '--out', out, '--variant', 'tiny', '--no-iso', '--if-changed', ...extra]);

  const same = await ifChanged();
  assert.equal(same.code, 0, same.stderr);
  assert.equal(lastLine(same.stderr), `rackboot build: nothing changed since ${good.id}, the current build; no build made`);
  assert.deepEqual(await readdir(join(out, 'builds')), [good.id]);

  const xen = good.files.find((file) => file.name === 'xen')!;
  const pinned = await ifChanged(['--xen-version', OLDER_XEN]);
  assert.equal(pinned.code, 0, pinned.stderr);
  assert.ok(
    pinned.stderr.includes(`rackboot build: ${good.id}, the current build, is out of date:\n  ${xen.package}: ${xen.version} -> ${OLDER_XEN}\n`),
    pinned.stderr,
  );
  const made = await manifestOf(out);
  assert.notEqual(made.id, good.id);
  assert.deepEqual(made.changes, { since: good.id, packages: [{ package: xen.package, from: xen.version, to: OLDER_XEN }], reasons: [] });

  const again = await ifChanged(['--xen-version', OLDER_XEN]);
  assert.equal(lastLine(again.stderr), `rackboot build: nothing changed since ${made.id}, the current build; no build made`);
  const parts = await ifChanged(['--xen-version', OLDER_XEN, '--no-memtest']);
  assert.equal(parts.code, 0, parts.stderr);
  assert.deepEqual((await manifestOf(out)).changes?.reasons, ['drops memtest86+x64.bin']);
  assert.equal((await readdir(join(out, 'builds'))).length, 3, 'one build per change, none when nothing changed');
});

test('--if-changed with a package mirror the test controls: a newer busybox-static published there makes exactly one build, which records it; nothing new makes none', async () => {
  const out = await withGoodCurrent('if-changed-mirror');
  const mirror = await createTestMirror(join(scratch, 'apt-mirror'));
  const ifChanged = () => run('node', [cli, 'build', '--out', out, '--variant', 'tiny', '--no-iso', '--if-changed'], { APT_CONFIG: mirror.aptConfig });
  const builds = async () => (await readdir(join(out, 'builds'))).length;

  const unchanged = await ifChanged();
  assert.equal(unchanged.code, 0, unchanged.stderr);
  assert.equal(lastLine(unchanged.stderr), `rackboot build: nothing changed since ${good.id}, the current build; no build made`);
  assert.equal(await builds(), 1);

  // A "security update": the same busybox-static as a newer version, published only in the test's mirror.
  const initrd = (manifest: Manifest) => manifest.files.find((file) => file.name === 'initrd.gz')!;
  const old = initrd(good).contains!.find((ref) => ref.package === 'busybox-static')!.version;
  const newer = `${old}+rbtest1`;
  const apt = new AptClient({ cacheDir: defaultCacheDir(), log: silentLogger() });
  const [debFile] = await apt.resolveAll([`busybox-static=${old}`]);
  await mirror.publishAs((await apt.fetch(debFile!)).path, newer);
  const published = await ifChanged();
  assert.equal(published.code, 0, published.stderr);
  assert.ok(
    published.stderr.includes(`rackboot build: ${good.id}, the current build, is out of date:\n  busybox-static: ${old} -> ${newer}\n`),
    published.stderr,
  );
  const made = await manifestOf(out);
  assert.notEqual(made.id, good.id);
  assert.deepEqual(made.changes, { since: good.id, packages: [{ package: 'busybox-static', from: old, to: newer }], reasons: [] });
  assert.deepEqual(
    initrd(made).contains!.find((ref) => ref.package === 'busybox-static'),
    { package: 'busybox-static', version: newer },
    "the new build's initrd holds the published version",
  );
  assert.equal(await builds(), 2, 'exactly one new build');

  const again = await ifChanged();
  assert.equal(again.code, 0, again.stderr);
  assert.equal(lastLine(again.stderr), `rackboot build: nothing changed since ${made.id}, the current build; no build made`);
  assert.equal(await builds(), 2);
});

test('a pinned kernel: the meta package at that version names the kernel package, asked for at the same version', async () => {
  const apt = new AptClient({ cacheDir: join(scratch, 'apt'), log: silentLogger() });
  const newest = await resolveKernel(apt, '');
  assert.match(newest.kernelPackage, /^linux-image-6\.1\.0-\d+-amd64$/);
  assert.equal(newest.kernelSpec, newest.kernelPackage, 'unpinned: the candidate');
  // Every version of linux-image-amd64 the sources offer; the oldest is the one a pin would hold back to.
  const versions = execFileSync('apt-cache', ['madison', 'linux-image-amd64'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('|')[1]!.trim());
  const oldest = versions[versions.length - 1]!;
  const pinned = await resolveKernel(apt, oldest);
  assert.equal(pinned.kernelSpec, `${pinned.kernelPackage}=${oldest}`);
  const [file] = await apt.resolveAll([pinned.kernelSpec]);
  assert.equal(file!.version, oldest, 'the .deb apt would fetch is the pinned version');
  assert.equal(file!.package, pinned.kernelPackage);
});

test('a pinned version the mirror does not have: the fetch step fails naming it, the current build stays', async () => {
  const result = await run('node', [cli, 'build', '--out', goodOut, '--variant', 'tiny', '--no-iso', '--xen-version', '9.9']);
  assertOneFailureLine(result, /^rackboot build: step "fetch packages" failed: package xen-hypervisor-4\.17-amd64=9\.9 not found in bookworm$/);
  await assertUntouched(goodOut, good.id);
});

test('no network (a namespace with loopback only, empty download cache): the fetch step fails naming the mirror, and --if-changed fails at apt-get update', async () => {
  const ns = Netns.create('rbt-build');
  try {
    const cache = join(scratch, 'empty-cache');
    const result = await run('ip', ['netns', 'exec', ns.name, 'node', cli, 'build', '--out', goodOut, '--cache', cache, '--variant', 'tiny', '--no-iso']);
    assertOneFailureLine(result, /^rackboot build: step "fetch packages" failed: cannot reach the apt mirror: .+ \(fetching http:\/\/\S+\.deb\)$/);
    await assertUntouched(goodOut, good.id);
    // --if-changed refreshes apt's lists first: a mirror it cannot reach is a failure, not "nothing changed" from old lists.
    const mirror = await createTestMirror(join(scratch, 'apt-offline'));
    const ifChanged = await run('ip', ['netns', 'exec', ns.name, 'node', cli, 'build', '--out', goodOut, '--variant', 'tiny', '--no-iso', '--if-changed'], {
      APT_CONFIG: mirror.aptConfig,
    });
    assertOneFailureLine(ifChanged, /^rackboot build: step "apt-get update" failed: .*(Temporary failure resolving|Could not resolve|unreachable)/);
    await assertUntouched(goodOut, good.id);
  } finally {
    ns.delete();
  }
});

test('not root, for the Debian variant (debootstrap and mksquashfs need it): the rootfs step says so before any download', async () => {
  const result = await runAsNobody(['build', '--out', goodOut, '--variant', 'debian']);
  assertOneFailureLine(
    result,
    /^rackboot build: step "rootfs" failed: the debian variant needs root \(debootstrap, and mksquashfs reading every file of the tree\), and this is uid 65534: run "rackboot build" as root, or use --variant tiny$/,
  );
  await assertUntouched(goodOut, good.id);
});

test('the tiny variant needs no root: as nobody, with a download cache of its own, it builds', async () => {
  const home = join(scratch, 'nobody');
  const debs = join(home, 'rackboot', 'debs');
  await mkdir(debs, { recursive: true });
  // The debs the builds above fetched, hard-linked when the cache shares a file system with the scratch folder.
  const shared = join(defaultCacheDir(), 'debs');
  for (const name of await readdir(shared)) {
    if (name.endsWith('.deb')) await link(join(shared, name), join(debs, name)).catch(() => copyFile(join(shared, name), join(debs, name)));
  }
  const out = join(home, 'assets');
  // Only the folders change hands: the linked files stay root's (and readable), so the shared cache is left as it was.
  execFileSync('chown', ['65534:65534', home, join(home, 'rackboot'), debs]);
  execFileSync('chmod', ['755', scratch]);
  const result = await runAsNobody(['build', '--out', out, '--variant', 'tiny', '--no-iso'], { XDG_CACHE_HOME: home });
  assert.equal(result.code, 0, result.stderr);
  const manifest = await manifestOf(out);
  assert.equal(manifest.variant, 'tiny');
  assert.equal((await stat(join(out, 'builds', manifest.id, 'initrd.gz'))).uid, 65534, 'written by nobody');
});

test('a full disk: the step writing the build fails with "no space left", the build before stays current', async () => {
  const disk = join(scratch, 'disk');
  await mkdir(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'rackboot-test', disk]);
  try {
    const out = join(disk, 'assets');
    const first = await run('node', [cli, 'build', '--out', out, '--variant', 'tiny', '--no-iso']);
    assert.equal(first.code, 0, first.stderr);
    const before = await manifestOf(out);
    // Leave 3 MiB: less than vmlinuz alone.
    const free = await statfs(disk);
    await writeFile(join(disk, 'filler'), Buffer.alloc(Number(free.bavail) * Number(free.bsize) - 3 * 1024 * 1024));
    const result = await run('node', [cli, 'build', '--out', out, '--variant', 'tiny', '--no-iso']);
    assertOneFailureLine(result, /^rackboot build: step "(unpack|kernel modules)" failed: no space left on device/);
    await assertUntouched(out, before.id);
  } finally {
    execFileSync('umount', [disk]);
  }
});
