import assert from 'node:assert/strict';
import { cp, mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { cloneLayout, parseLayout, readLayout } from '../server/folder-layout.js';
import { repoRoot } from './support/build.js';
import { runCommand, runRackboot } from './support/run.js';

test('parseLayout: absolute profiles, assets and state; every mistake names the file and the key', () => {
  const layout = { profiles: '/etc/rackboot/profiles', assets: '/var/lib/rackboot/boot-assets', state: '/var/lib/rackboot' };
  assert.deepEqual(parseLayout(JSON.stringify(layout), 'layout.json'), layout);
  assert.throws(() => parseLayout('{', 'layout.json'), /^Error: layout\.json: not JSON/);
  assert.throws(() => parseLayout('[]', 'layout.json'), /^Error: layout\.json: want an object/);
  assert.throws(
    () => parseLayout(JSON.stringify({ ...layout, state: 'state' }), 'layout.json'),
    /^Error: layout\.json: state: want an absolute folder, not "state"$/,
  );
  assert.throws(
    () => parseLayout(JSON.stringify({ profiles: '/p', assets: '/a' }), 'layout.json'),
    /^Error: layout\.json: state: want an absolute folder, not undefined$/,
  );
  assert.throws(() => parseLayout(JSON.stringify({ ...layout, assests: '/a' }), 'layout.json'), /^Error: layout\.json: unknown key assests/);
  assert.deepEqual(readLayout('/nonexistent/layout.json'), cloneLayout);
});

test('a clone uses relative folders; the same code with dist/layout.json beside it uses the folders it names', async () => {
  // The clone: no layout file, so the defaults are relative to where rackboot runs.
  const clone = await runRackboot(['serve', '--help']);
  assert.equal(clone.code, 0, clone.stderr);
  assert.match(clone.stdout, /--profiles .*\[default: "profiles"\]/);
  assert.match(clone.stdout, /--assets .*\[default: "boot-assets"\]/);
  assert.match(clone.stdout, /--state .*\[default: "state"\]/);

  // An installation: the code as the package lays it out, with its layout file.
  const root = await mkdtemp(path.join(tmpdir(), 'rackboot-layout-'));
  try {
    await mkdir(path.join(root, 'dist'));
    for (const part of ['dist/server', 'dist/builder', 'builder', 'package.json'])
      await cp(path.join(repoRoot, part), path.join(root, part), { recursive: true });
    await symlink(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
    const folders = { profiles: path.join(root, 'etc/profiles'), assets: path.join(root, 'lib/boot-assets'), state: path.join(root, 'lib/state') };
    await writeFile(path.join(root, 'dist/layout.json'), JSON.stringify(folders));
    const cli = path.join(root, 'dist/server/cli.js');
    const help = await runCommand(process.execPath, [cli, 'serve', '--help'], { cwd: tmpdir() });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`--profiles .*\\[default: "${folders.profiles}"\\]`));
    assert.match(help.stdout, new RegExp(`--assets .*\\[default: "${folders.assets}"\\]`));
    assert.match(help.stdout, new RegExp(`--state .*\\[default: "${folders.state}"\\]`));
    // The other commands take the same folders: profiles validate reads the installed profile folder.
    await mkdir(folders.profiles, { recursive: true });
    await writeFile(path.join(folders.profiles, 'default.yaml'), 'hostname: "node-{mac}"\n');
    const validate = await runCommand(process.execPath, [cli, 'profiles', 'validate'], { cwd: tmpdir() });
    assert.equal(validate.code, 0, validate.stderr);
    assert.match(validate.stdout, /1 profile/);
    // A broken layout file stops every command with its name.
    await writeFile(path.join(root, 'dist/layout.json'), JSON.stringify({ ...folders, state: 'state' }));
    const broken = await runCommand(process.execPath, [cli, 'serve', '--help'], { cwd: tmpdir() });
    assert.notEqual(broken.code, 0);
    assert.match(broken.stderr, new RegExp(`${path.join(root, 'dist/layout.json')}: state: want an absolute folder`));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
