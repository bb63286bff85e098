import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseThreadStatus, readThreadCredentials } from '../../server/privileges.js';
import { cliPath, ensureTestBuild } from '../support/build.js';
import { bootMachine, httpPort, serverAddress, startRack, type Rack } from '../support/boot.js';
import { runCommand } from '../support/run.js';
import { openCheckoutView, type CheckoutView } from '../support/as-user.js';

/**
 * A server with no root after start that still does everything a start
 * brings: `rackboot serve --user nobody` on the test rack. Its process and
 * every thread hold uid and gid 65534 and no capability; then, as nobody, it
 * takes a profile edit through the admin API, makes a per-host image under
 * <assets>/host-images, serves a new build that `rackboot build` (as root)
 * made current, and network-boots a QEMU machine (BIOS, iPXE) on that build
 * with the edited profile to the ready line, writing its lease and timeline.
 */

const nobody = 65534;
const mac = '52:54:00:5a:0e:01';
const base = `http://${serverAddress}:${httpPort}`;
const profile = (hostname: string) =>
  [
    `mac: ${mac}`,
    `hostname: ${hostname}`,
    'network:',
    '  mode: static',
    '  address: 198.18.0.71/24',
    'boot:',
    '  menuTimeout: 0',
    '  kernelArgs: "rackboot.poweroff=1"',
    'domains: []',
    '',
  ].join('\n');

let scratch: string;
let assets: string;
let rack: Rack;
let token: string;
let view: CheckoutView | undefined;

before(async () => {
  const testBuild = await ensureTestBuild();
  scratch = await mkdtemp(path.join(tmpdir(), 'rackboot-noroot-'));
  await chmod(scratch, 0o755);
  // An assets folder of the test's own (hard links to the test build), so a new build can be made current in it.
  assets = path.join(scratch, 'assets');
  execFileSync('cp', ['-al', testBuild, assets]);
  // The server runs through a view of the checkout nobody can reach, whatever the checkout's parent folders (support/as-user.ts).
  view = await openCheckoutView();
  rack = await startRack({ 'node01.yaml': profile('noroot-before') }, { assets, openWork: true, serveArgs: ['--user', 'nobody'], launch: view.command });
  token = (await readFile(path.join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
});

after(async () => {
  await rack?.close();
  await view?.remove();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

function curl(args: string[]): string {
  return rack.ns.exec('curl', ['--silent', '--show-error', '--fail', '-H', `Authorization: Bearer ${token}`, ...args]);
}

/** /proc/<pid>/status and every thread's: nobody, no capability. */
async function assertNoRoot(when: string): Promise<void> {
  const main = parseThreadStatus(rack.pid, await readFile(`/proc/${rack.pid}/status`, 'utf8'));
  assert.match(await readFile(`/proc/${rack.pid}/cmdline`, 'utf8'), /serve/, 'the pid is the server');
  const threads = readThreadCredentials(rack.pid);
  assert.ok(threads.length > 1);
  for (const thread of [main, ...threads]) {
    const what = `${when}: thread ${thread.tid}`;
    assert.deepEqual(thread.uids, [nobody, nobody, nobody, nobody], `${what} Uid`);
    assert.deepEqual(thread.gids, [nobody, nobody, nobody, nobody], `${what} Gid`);
    assert.equal(thread.effective, 0n, `${what} CapEff`);
    assert.equal(thread.permitted, 0n, `${what} CapPrm`);
    assert.equal(thread.ambient, 0n, `${what} CapAmb`);
  }
}

test('serve --user nobody: no root, no capability, and still edits, builds, images and boots', { timeout: 600_000 }, async () => {
  await assertNoRoot('after start');

  // A profile edit through the admin API, written by nobody, 0600.
  const saved = JSON.parse(
    curl(['-X', 'PUT', '-H', 'Content-Type: application/yaml', '--data-binary', profile('noroot-after'), `${base}/api/profiles/node01`]),
  ) as {
    profile: { hostname: string };
  };
  assert.equal(saved.profile.hostname, 'noroot-after');
  const written = await stat(path.join(rack.profiles, 'node01.yaml'));
  assert.equal(written.uid, nobody);
  assert.equal(written.mode & 0o777, 0o600);

  // A per-host image, cached under <assets>/host-images by nobody.
  const image = path.join(rack.work, 'image.iso');
  curl(['-o', image, `${base}/hosts/${mac}/rackboot.iso`]);
  assert.ok((await stat(image)).size > 1024 * 1024, 'an image came back');
  const hostImages = path.join(assets, 'host-images');
  const cached = await readdir(path.join(hostImages, mac.replaceAll(':', '-')));
  assert.equal(cached.filter((name) => name.endsWith('.iso')).length, 1, `one cached image: ${cached.join(', ')}`);
  assert.equal(
    (
      await stat(
        path.join(
          hostImages,
          mac.replaceAll(':', '-'),
          cached.find((name) => name.endsWith('.iso'))!,
        ),
      )
    ).uid,
    nobody,
  );

  // rackboot build, as root, makes a new build current; the server (nobody) serves it.
  const before = (await readlink(path.join(assets, 'current'))).replace(/^builds\//, '');
  const built = await runCommand(process.execPath, [cliPath, 'build', '--out', assets, '--variant', 'tiny', '--no-iso'], {
    timeoutMs: 300_000,
    what: 'rackboot build',
  });
  assert.equal(built.code, 0, built.stderr);
  const current = (await readlink(path.join(assets, 'current'))).replace(/^builds\//, '');
  assert.notEqual(current, before, 'a new build is current');
  const builds = JSON.parse(curl([`${base}/api/builds`])) as Array<{ id: string; current: boolean }>;
  assert.equal(builds.find((build) => build.current)?.id, current, 'the server sees the new build as current');
  const script = curl([`${base}/hosts/${mac}/boot.ipxe?platform=pcbios`]);
  assert.match(script, new RegExp(`noroot-after \\(${mac}\\) from .*, build ${current}`), 'the boot script names the edited profile and the new build');

  // A machine boots on the new build with the edited profile; its lease and timeline are written by nobody.
  const result = await bootMachine(rack, 'bios', mac);
  process.stderr.write(`BIOS boot under serve --user nobody to ready: ${result.seconds.toFixed(1)} s\n`);
  assert.equal(result.hostname, 'noroot-after');
  assert.equal(result.ip, '198.18.0.71/24');
  // BIOS scripts name a build by the digest its id ends with (/b/<digest>/).
  const digest = /-([0-9a-f]{8})$/.exec(current)?.[1];
  assert.ok(
    rack
      .events()
      .some(
        (event) =>
          typeof event.path === 'string' && (event.path.includes(`/builds/${current}/`) || (digest !== undefined && event.path.includes(`/b/${digest}/`))),
      ),
    'the machine fetched parts of the new build',
  );
  const leases = JSON.parse(curl([`${base}/api/leases`])) as Array<{ mac: string; address: string }>;
  assert.ok(
    leases.some((lease) => lease.mac === mac && lease.address === '198.18.0.71'),
    `lease written: ${JSON.stringify(leases)}`,
  );
  const host = JSON.parse(curl([`${base}/api/hosts/${mac}`])) as { stage: string; timeline: unknown[] };
  assert.equal(host.stage, 'ready', `timeline written: ${JSON.stringify(host).slice(0, 400)}`);

  await assertNoRoot('after the boot');
});
