import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { packageRoot } from '../../builder/recipe.js';
import { Netns } from '../support/netns.js';

/**
 * The Debian runtime's vif hotplug script (builder/runtime/vif-rackboot),
 * run as libxl runs it, on real interfaces in a namespace of the test's
 * own: a bridge xenbr0, and a veth end standing for the vif netback makes.
 * xenstore is a folder here (xenstored runs only on Xen): xenstore-read and
 * xenstore-write are two lines of sh over it, first on the script's PATH.
 * The script under Xen is proved by the Debian network boot
 * (test/builder/debian.test.ts), whose guests get their addresses through it.
 */

const script = join(packageRoot(), 'builder', 'runtime', 'vif-rackboot');
const backend = '/local/domain/0/backend/vif/7/0';
let ns: Netns;
let work: string;
let store: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'rackboot-vif-'));
  store = join(work, 'store');
  const bin = join(work, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'xenstore-read'), '#!/bin/sh\ncat "$XENSTORE_DIR$1" 2>/dev/null || { echo "couldn\'t read path $1" >&2; exit 1; }\n');
  await writeFile(
    join(bin, 'xenstore-write'),
    '#!/bin/sh\nwhile [ $# -ge 2 ]; do mkdir -p "$XENSTORE_DIR$(dirname "$1")" && printf %s "$2" >"$XENSTORE_DIR$1" || exit 1; shift 2; done\n',
  );
  await chmod(join(bin, 'xenstore-read'), 0o755);
  await chmod(join(bin, 'xenstore-write'), 0o755);
  ns = Netns.create('rbvif');
  ns.ip('link', 'add', 'xenbr0', 'type', 'bridge');
  ns.ip('link', 'set', 'xenbr0', 'mtu', '1400', 'up');
});

after(async () => {
  ns?.delete();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Fresh xenstore entries for the backend, and a fresh "vif7.0" (a veth end) down and on no bridge. */
async function freshVif(entries: Record<string, string>): Promise<void> {
  await rm(store, { recursive: true, force: true });
  await mkdir(join(store, backend), { recursive: true });
  for (const [key, value] of Object.entries(entries)) await writeFile(join(store, backend, key), value);
  for (const name of ['vif7.0', 'guest0']) spawnSync('ip', ['-n', ns.name, 'link', 'del', name]);
  ns.ip('link', 'add', 'vif7.0', 'type', 'veth', 'peer', 'name', 'vif7.0-peer');
}

/** Run the script as libxl does: `vif-rackboot ACTION type_if=vif`, vif and XENBUS_PATH in the environment. */
function hotplug(action: string): { status: number | null; stderr: string } {
  const result = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      ns.name,
      'env',
      '-i',
      `PATH=${join(work, 'bin')}`,
      `XENSTORE_DIR=${store}`,
      `XENBUS_PATH=${backend}`,
      'vif=vif7.0',
      script,
      action,
      'type_if=vif',
    ],
    { encoding: 'utf8' },
  );
  return { status: result.status, stderr: result.stderr };
}

async function stored(key: string): Promise<string | undefined> {
  return readFile(join(store, backend, key), 'utf8').catch(() => undefined);
}

function link(name: string): { master?: string; mtu: number; flags: string[] } {
  return (JSON.parse(ns.ip('-j', 'link', 'show', 'dev', name)) as Array<{ master?: string; mtu: number; flags: string[] }>)[0]!;
}

test('online: the vif joins the bridge xenstore names, takes its MTU, comes up, and netback is told "connected"', async () => {
  await freshVif({ bridge: 'xenbr0', mac: '00:16:3e:00:00:01' });
  const result = hotplug('online');
  assert.equal(result.status, 0, result.stderr);
  const vif = link('vif7.0');
  assert.equal(vif.master, 'xenbr0');
  assert.equal(vif.mtu, 1400);
  assert.ok(vif.flags.includes('UP'), JSON.stringify(vif.flags));
  assert.equal(await stored('hotplug-status'), 'connected');
  assert.equal(await stored('hotplug-error'), undefined);
});

test('online with a vifname: the interface is renamed first; offline takes it off the bridge and down', async () => {
  await freshVif({ bridge: 'xenbr0', vifname: 'guest0', mtu: '1300' });
  assert.equal(hotplug('online').status, 0);
  const vif = link('guest0');
  assert.equal(vif.master, 'xenbr0');
  assert.equal(vif.mtu, 1300);
  assert.equal(await stored('hotplug-status'), 'connected');

  // libxl gives offline netback's name (vif7.0) too; the script finds the interface by its vifname.
  assert.equal(hotplug('offline').status, 0);
  const off = link('guest0');
  assert.equal(off.master, undefined);
  assert.ok(!off.flags.includes('UP'), JSON.stringify(off.flags));
});

test('online to a bridge that does not exist: exit 1, hotplug-status "error" and a hotplug-error naming the bridge, for libxl to print', async () => {
  await freshVif({ bridge: 'xenbr9' });
  const result = hotplug('online');
  assert.equal(result.status, 1);
  assert.equal(await stored('hotplug-status'), 'error');
  assert.equal(await stored('hotplug-error'), 'vif-rackboot online vif7.0: no bridge xenbr9');
  assert.equal(link('vif7.0').master, undefined);
});

test('offline of a vif netback has already removed succeeds; an unknown action fails and names it', async () => {
  await freshVif({ bridge: 'xenbr0' });
  ns.ip('link', 'del', 'vif7.0');
  assert.equal(hotplug('offline').status, 0);
  assert.equal(hotplug('add').status, 0, 'add and remove are for tap interfaces; nothing to do for a PV vif');
  const unknown = hotplug('frobnicate');
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /'frobnicate' is not online, offline, add or remove/);
});
