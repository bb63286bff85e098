import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { loadOrCreateAdminToken } from '../../server/admin/token.js';
import { AssetStore, switchCurrent } from '../../server/assets/builds.js';
import { MemoryEventStore } from '../../server/events/store.js';
import { createHttpApp } from '../../server/http/app.js';
import { domainDefaults } from '../../server/profiles/domain.js';
import type { Profile } from '../../server/profiles/profile.js';
import { ProfileDirectory } from '../../server/profiles/store.js';
import { readRolloutBuilds } from '../../server/rollouts/in-use.js';
import { Rollouts } from '../../server/rollouts/rollouts.js';
import { MemoryRolloutStore } from '../../server/rollouts/store.js';
import { HostTokens } from '../../server/tokens/host-token.js';
import { BootLedger } from '../../server/tokens/use.js';
import { writeTestBuild } from '../support/assets.js';
import { makeProfile } from '../support/profiles.js';
import { runCommand } from '../support/run.js';
import { until } from '../support/until.js';

/**
 * A rollout driven through the admin API, with hosts played over HTTP as
 * their firmware and runtime would: each fetches its boot script (with a
 * boot token, proven to be its MAC) and reports ready with that token. The
 * decisions (which build each script names) and the waves, the failure
 * and the rollback are what a rack would see.
 */

const macs = ['52:54:00:00:10:01', '52:54:00:00:10:02', '52:54:00:00:10:03'];
const [h1, h2, h3] = macs as [string, string, string];
const profiles = new Map<string, Profile>();
let dir: string;
let server: Server;
let base: string;
let secret: string;
let rollouts: Rollouts;
let clock = Date.parse('2026-12-06T08:00:00Z');
const logLines: string[] = [];

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rackboot-rollouts-http-'));
  const parts = ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'guest.initrd.gz'];
  for (const id of ['b-old', 'b-new', 'b-newer'])
    await writeTestBuild(path.join(dir, 'assets'), id, Object.fromEntries(parts.map((name) => [name, Buffer.from(`${name} ${id}`)])));
  await switchCurrent(path.join(dir, 'assets'), 'b-old', 'stable');
  await switchCurrent(path.join(dir, 'assets'), 'b-old');
  for (const mac of macs) {
    const domain = { name: 'web', ...domainDefaults };
    profiles.set(
      mac,
      makeProfile({
        mac,
        hostname: `n${mac.slice(-1)}`,
        source: `profiles/n${mac.slice(-1)}.yaml`,
        domains: [domain],
        boot: { ...makeProfile().boot, channel: 'stable' },
      }),
    );
  }
  // The same hosts as profile files, for `rackboot whatif`.
  await mkdir(path.join(dir, 'profiles'));
  for (const mac of macs)
    await writeFile(path.join(dir, 'profiles', `n${mac.slice(-1)}.yaml`), `mac: "${mac}"\nhostname: n${mac.slice(-1)}\nboot:\n  channel: stable\n`);
  await mkdir(path.join(dir, 'state'));
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const assets = new AssetStore(path.join(dir, 'assets'));
  rollouts = await Rollouts.open(
    new MemoryRolloutStore(),
    assets,
    {
      members: (channel) => (channel === 'stable' ? [...profiles.keys()] : []),
      wantDomains: (mac) => profiles.get(mac)?.domains.length ?? 0,
      mayReboot: (mac) => profiles.get(mac)?.boot.allowReboot !== false,
    },
    log,
    { now: () => clock, refreshMs: 3_600_000, state: path.join(dir, 'state') },
  );
  const token = await loadOrCreateAdminToken(path.join(dir, 'state'));
  secret = (await readFile(token.file, 'utf8')).trim();
  const app = createHttpApp({
    assets,
    lookupProfile: (mac) => profiles.get(mac),
    profileProblems: () => [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log,
    events: new MemoryEventStore(),
    secrets: {
      tokens: new HostTokens(randomBytes(32)),
      ledger: new BootLedger(),
      prove: async () => ({ kind: 'grant' }),
      alarm: () => undefined,
      now: () => clock,
    },
    rollouts,
    admin: { token, profiles: await ProfileDirectory.open(path.join(dir, 'no-profiles-here'), log).catch(() => undefined as never), assets, log, rollouts },
  });
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  rollouts?.close();
  await new Promise((resolve) => server?.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

async function api(method: string, url: string, json?: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}/api/${url}`, {
    method,
    headers: { authorization: `Bearer ${secret}`, ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  return { status: response.status, body: await response.json() };
}

/** A host's boot: its script (which build, why) and the token its runtime reports with. */
async function boot(mac: string): Promise<{ build: string; why: string; token: string }> {
  const body = await (await fetch(`${base}/hosts/${mac.replaceAll(':', '-')}/boot.ipxe?platform=pcbios`)).text();
  const line = /^# rackboot: build (\S+): (.*)$/m.exec(body);
  assert.ok(line, body);
  return { build: line[1]!, why: line[2]!, token: /rackboot\.token=(b\.\S+)/.exec(body)![1]! };
}

async function ready(mac: string, token: string, build: string, domains: number): Promise<void> {
  const response = await fetch(`${base}/hosts/${mac}/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-rackboot-token': token },
    body: new URLSearchParams({
      stage: 'ready',
      detail: `hostname=x ip=198.18.0.50/24 mac=${mac} domains=${domains} build=${build} xen=4.17.5 kernel=6.1.0-28-amd64`,
    }).toString(),
  });
  assert.equal(response.status, 204, await response.text());
}

const cli = fileURLToPath(new URL('../../server/cli.js', import.meta.url));

/** `rackboot whatif MAC` on the same profiles and builds, asking this server for its rollouts or not. */
async function whatif(mac: string, askServer: boolean): Promise<{ build: string; buildFrom: string; rolloutsFrom: string }> {
  const args = [cli, 'whatif', mac, '--profiles', path.join(dir, 'profiles'), '--assets', path.join(dir, 'assets'), '--state', path.join(dir, 'state')];
  const done = await runCommand('node', askServer ? [...args, '--server', base] : args, { env: { RACKBOOT_SERVER: '', RACKBOOT_TOKEN: '' } });
  assert.equal(done.code, 0, done.stderr);
  return JSON.parse(done.stdout);
}

const stages = async () =>
  Object.fromEntries(((await api('GET', 'rollouts')).body[0].hosts as Array<{ mac: string; stage: string }>).map((host) => [host.mac, host.stage]));
const waitFor = (what: string, check: (seen: Record<string, string>) => boolean) =>
  until(
    what,
    5000,
    async () => {
      const seen = await stages();
      return check(seen) ? seen : undefined;
    },
    () => logLines.slice(-10).join(''),
  );

test('a rollout moves the first host, widens when it is healthy, stops at a host short of its domains and sends it back; abort sends everyone back', async () => {
  assert.equal((await api('POST', 'rollouts', { channel: 'stable', build: 'b-nope' })).status, 404);
  assert.match((await api('POST', 'rollouts', { channel: 'stable', build: 'b-new', first: 'half' })).body.error, /--first half: want a number of hosts/);
  const started = await api('POST', 'rollouts', { channel: 'stable', build: 'b-new', first: '1', deadline: '10m' });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  assert.deepEqual(
    started.body.hosts.map((host: { stage: string }) => host.stage),
    ['moved', 'waiting', 'waiting'],
  );
  assert.equal((await api('POST', 'rollouts', { channel: 'stable', build: 'b-newer' })).status, 409, 'one rollout per channel at a time');
  assert.equal(
    (await api('PUT', 'builds/current', { id: 'b-newer', channel: 'stable' })).status,
    409,
    "no switching a channel's current build under a rollout",
  );

  // The builds it hands out, where "rackboot build --keep" looks so as not to prune them.
  assert.deepEqual((await readRolloutBuilds(path.join(dir, 'state'))).active, [{ channel: 'stable', build: 'b-new', previous: 'b-old', state: 'running' }]);

  const first = await boot(h1);
  assert.equal(first.build, 'b-new');
  assert.match(first.why, /^rollout of b-new on channel stable: moved /);
  const second = await boot(h2);
  assert.deepEqual([second.build, second.why], ['b-old', 'rollout of b-new on channel stable: not moved yet, on the previous build']);
  // whatif, asking the server, says what the boot scripts say; not asking it, the channel's current build, and that it did not ask.
  const asked = await whatif(h1, true);
  assert.deepEqual([asked.build, asked.buildFrom, asked.rolloutsFrom], ['b-new', first.why, `the server at ${base}`]);
  const waiting = await whatif(h2, true);
  assert.deepEqual([waiting.build, waiting.buildFrom], ['b-old', second.why]);
  const notAsked = await whatif(h1, false);
  assert.deepEqual([notAsked.build, notAsked.buildFrom], ['b-old', "channel stable's current build (boot.channel in n1.yaml)"]);
  assert.match(notAsked.rolloutsFrom, /^not asked \(no --server\)/);
  await waitFor('h1 booting', (seen) => seen[h1] === 'booting');

  // A ready report with another build does not count; one with the new build and every domain does, and the next wave moves.
  await ready(h1, first.token, 'b-old', 1);
  assert.equal((await stages())[h1], 'booting');
  await ready(h1, first.token, 'b-new', 1);
  await waitFor('h1 healthy and h2 moved', (seen) => seen[h1] === 'healthy' && seen[h2] === 'moved' && seen[h3] === 'waiting');

  const moved = await boot(h2);
  assert.equal(moved.build, 'b-new');
  await ready(h2, moved.token, 'b-new', 0);
  const failed = await waitFor('h2 failed', (seen) => seen[h2] === 'failed');
  assert.equal(failed[h3], 'waiting');
  const status = (await api('GET', 'rollouts')).body[0];
  assert.equal(status.state, 'failed');
  assert.equal(status.reason, `${h2}: reported ready with 0 of the 1 domains its profile starts`);
  assert.ok(logLines.some((line) => line.includes('rollout failed: the failed host and those not moved boot b-old again')));
  assert.deepEqual((await boot(h2)).build, 'b-old', 'the failed host goes back');
  assert.deepEqual((await boot(h3)).build, 'b-old', 'a host not moved stays');
  assert.deepEqual((await boot(h1)).build, 'b-new', 'a healthy host keeps the new build');
  assert.equal((await api('POST', 'rollouts/stable/pause')).status, 409);

  const aborted = await api('POST', 'rollouts/stable/abort');
  assert.equal(aborted.body.state, 'aborted');
  assert.deepEqual((await readRolloutBuilds(path.join(dir, 'state'))).active, [], 'an aborted rollout uses no build');
  // Aborted, the rollout decides nothing more: the channel's current build (still the previous one) does.
  const back = await boot(h1);
  assert.deepEqual([back.build, back.why], ['b-old', "channel stable's current build (boot.channel in n1.yaml)"]);
  assert.equal((await api('POST', 'rollouts/nightly/abort')).status, 404);
});

test('a moved host that boots and never reports fails at its deadline; a rollout with every host healthy makes its build the channel current', async () => {
  const started = await api('POST', 'rollouts', { channel: 'stable', build: 'b-new', first: '100%', deadline: '90s' });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const quiet = await boot(h3);
  assert.equal(quiet.build, 'b-new');
  await waitFor('h3 booting', (seen) => seen[h3] === 'booting');
  clock += 91_000;
  await rollouts.tick();
  assert.equal((await api('GET', 'rollouts')).body[0].reason, `${h3}: no ready report with b-new within 90 s of its boot script`);
  assert.equal((await api('POST', 'rollouts/stable/abort')).status, 200);

  assert.equal((await api('POST', 'rollouts', { channel: 'stable', build: 'b-new', first: '100%' })).status, 201);
  for (const mac of macs) {
    const booted = await boot(mac);
    assert.equal(booted.build, 'b-new');
    await waitFor(`${mac} booting`, (seen) => seen[mac] === 'booting');
    await ready(mac, booted.token, 'b-new', 1);
  }
  const context = () => logLines.slice(-10).join('');
  await until('the rollout done', 5000, async () => ((await api('GET', 'rollouts')).body[0].state === 'done' ? true : undefined), context);
  await until(
    'b-new current on stable',
    5000,
    async () => ((await new AssetStore(path.join(dir, 'assets')).current('stable'))?.id === 'b-new' ? true : undefined),
    context,
  );
  assert.equal((await new AssetStore(path.join(dir, 'assets')).current())?.id, 'b-old', "the default channel's current build is untouched");
  const after = await boot(h2);
  assert.deepEqual([after.build, after.why], ['b-new', "channel stable's current build (boot.channel in n2.yaml)"]);
});

test("--reboot: a moved host's heartbeat answers reboot, one host at a time; a host whose profile forbids it is never asked", async () => {
  await switchCurrent(path.join(dir, 'assets'), 'b-old', 'stable');
  profiles.set(h3, { ...profiles.get(h3)!, boot: { ...profiles.get(h3)!.boot, allowReboot: false } });
  const alive = async (mac: string, token: string) => {
    const response = await fetch(`${base}/hosts/${mac}/alive`, { method: 'POST', headers: { 'x-rackboot-token': token } });
    return { status: response.status, body: await response.text() };
  };
  try {
    // Every host runs the old build.
    const running = new Map<string, string>();
    for (const mac of macs) {
      const booted = await boot(mac);
      assert.equal(booted.build, 'b-old');
      running.set(mac, booted.token);
    }
    assert.equal((await api('POST', 'rollouts', { channel: 'stable', build: 'b-newer', first: '100%', reboot: 'yes' })).status, 400);
    const started = await api('POST', 'rollouts', { channel: 'stable', build: 'b-newer', first: '100%', reboot: true, deadline: '10m' });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    assert.deepEqual(await alive(h1, running.get(h1)!), { status: 200, body: 'reboot\n' });
    await until(
      'h1 asked',
      5000,
      async () => ((await api('GET', 'rollouts')).body[0].moved[0].rebootAskedAt !== undefined ? true : undefined),
      () => '',
    );
    assert.equal((await alive(h2, running.get(h2)!)).status, 204, 'one host at a time');
    // h1 reboots onto the new build and is healthy: h2 is asked next; h3 never is.
    const renewed = await boot(h1);
    assert.equal(renewed.build, 'b-newer');
    assert.equal((await alive(h1, renewed.token)).status, 204, 'on the new build: nothing to ask');
    await waitFor('h1 booting', (seen) => seen[h1] === 'booting');
    await ready(h1, renewed.token, 'b-newer', 1);
    await waitFor('h1 healthy', (seen) => seen[h1] === 'healthy');
    assert.deepEqual(await alive(h2, running.get(h2)!), { status: 200, body: 'reboot\n' });
    assert.equal((await alive(h3, running.get(h3)!)).status, 204, 'boot.allowReboot: false');
    assert.ok(logLines.some((line) => line.includes('rollout: asked the host to reboot') && line.includes(h2)));
  } finally {
    await api('POST', 'rollouts/stable/abort');
  }
});
