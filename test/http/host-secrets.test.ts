import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AssetStore, switchCurrent } from '../../server/assets/builds.js';
import { writeTestBuild } from '../support/assets.js';
import { HostTokens } from '../../server/tokens/host-token.js';
import type { TokenGrant } from '../../server/tokens/grant.js';
import { BootLedger } from '../../server/tokens/use.js';
import { createHttpApp } from '../../server/http/app.js';
import { MemoryEventStore } from '../../server/events/store.js';
import { pino } from 'pino';
import { makeProfile } from '../support/profiles.js';
import { domainDefaults } from '../../server/profiles/domain.js';

const mac = '52:54:00:12:34:56';
const guestHash = '$6$guestsalt$DbGuestHashNotTheHosts';
const guestKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlkc/VLZAO/Wa+NXrNh7Hd4k4QcdyIL1kKnAu8qDRUD db-admin@desk';
const tokens = new HostTokens(randomBytes(32));
/** What the proof says of the requester (token-grant.ts is tested on its own; here the HTTP side). */
let proven: TokenGrant = { kind: 'grant' };
const alarms: Array<{ mac: string; detail: string }> = [];
/** Added to the server's clock for the token checks. */
let clockOffset = 0;
const logLines: string[] = [];
const events = new MemoryEventStore();
let dir: string;
let server: Server;
let base: string;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rackboot-secrets-'));
  await writeTestBuild(
    dir,
    'b1',
    Object.fromEntries(['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'guest.initrd.gz', 'debian-guest.squashfs'].map((name) => [name, Buffer.from(name)])),
  );
  await symlink(path.join('builds', 'b1'), path.join(dir, 'current'));
  const profile = makeProfile({
    mac,
    domains: [
      { name: 'web', memory: 128, vcpus: 1, kernel: 'vmlinuz', ramdisk: 'guest.initrd.gz', extraArgs: '', bridge: 'xenbr0', autostart: true, restart: false },
      {
        name: 'db',
        ...domainDefaults,
        memory: 256,
        image: 'debian',
        root: 'ram',
        firstBoot: {
          hostname: 'db-one',
          network: { mode: 'static', address: '198.18.0.61', prefixLength: 24, gateway: '198.18.0.1', dns: ['198.18.0.1'] },
          rootPasswordHash: guestHash,
          sshAuthorizedKeys: [guestKey],
        },
      },
    ],
  } as never);
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  const app = createHttpApp({
    assets: new AssetStore(dir),
    lookupProfile: (wanted) => (wanted === mac ? profile : { ...profile, mac: wanted, hostname: 'other' }),
    profileProblems: () => [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log,
    events,
    secrets: {
      tokens,
      ledger: new BootLedger(),
      prove: async () => proven,
      alarm: (host, detail) => void alarms.push({ mac: host, detail }),
      now: () => Date.now() + clockOffset,
    },
  });
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

const get = async (url: string, token?: string) => {
  const response = await fetch(base + url, { headers: token === undefined ? {} : { 'x-rackboot-token': token } });
  return { status: response.status, body: await response.text() };
};
const post = async (url: string, body: string, token?: string) => {
  const response = await fetch(base + url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(token === undefined ? {} : { 'x-rackboot-token': token }) },
  });
  return { status: response.status, body: await response.text() };
};
const tokenIn = (body: string) => /rackboot\.token=(b\.\S+)/.exec(body)?.[1];

test('a proven requester gets a fresh boot token in its script; runtime.env goes out once, with the token in a header only', async () => {
  proven = { kind: 'grant' };
  const script = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios');
  const token = tokenIn(script.body);
  assert.ok(token, script.body);
  const claims = tokens.read(mac, token);
  assert.equal(claims?.kind, 'boot');
  assert.equal((claims as { address: string }).address, '127.0.0.1', 'bound to the address it was handed to');
  const xenCfg = await get('/hosts/52-54-00-12-34-56/builds/b1/xen.cfg');
  const efiToken = /rackboot\.token=(b\.\S+)/.exec(xenCfg.body)?.[1];
  assert.ok(efiToken && efiToken !== token, 'each boot script or xen.cfg mints its own token');
  const newest = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;

  // In the URL, a token counts for nothing (and is kept out of the log).
  assert.equal((await get(`/hosts/52-54-00-12-34-56/runtime.env?token=${newest}`)).status, 403);
  const env = await get('/hosts/52-54-00-12-34-56/runtime.env', newest);
  assert.equal(env.status, 200);
  assert.match(env.body, /^RACKBOOT_ROOT_HASH=/m);
  const cfg = await get('/hosts/52-54-00-12-34-56/domains/web.cfg', newest);
  assert.equal(cfg.status, 200);
  assert.match(cfg.body, /rackboot\.token=g\.\S+/, 'the guest gets its own token');
  assert.equal(alarms.length, 0);

  // The runtime's retry of a fetch whose answer it missed is served; later, the token is spent.
  assert.equal((await get('/hosts/52-54-00-12-34-56/runtime.env', newest)).status, 200);
  clockOffset = 3 * 60 * 1000;
  const again = await get('/hosts/52-54-00-12-34-56/runtime.env', newest);
  clockOffset = 0;
  assert.equal(again.status, 403);
  assert.match(again.body, /fetched its runtime\.env already/);
  assert.deepEqual(
    alarms.map((alarm) => alarm.mac),
    [mac],
  );
  assert.match(alarms[0]!.detail, /asked for again with one boot's token/);
  // The older tokens belong to boots that a newer script replaced: showing one is the sign of two boots at once.
  assert.equal((await get('/hosts/52-54-00-12-34-56/domains/web.cfg', token)).status, 403);
  assert.match(alarms.at(-1)!.detail, /two boots of 52:54:00:12:34:56 at once/);
  alarms.length = 0;

  const logged = logLines.join('\n');
  for (const secret of [token, efiToken, newest]) assert.ok(!logged.includes(secret), 'no token in the log');
  assert.match(logged, /runtime\.env\?token=\(not logged\)/);
});

test('an unproven requester gets its boot script without a token, and a console note saying why', async () => {
  proven = { kind: 'withhold', reason: "the server's neighbour table has 02:00:00:00:0b:ad for 127.0.0.1, not 52:54:00:12:34:56" };
  const script = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios');
  assert.equal(script.status, 200);
  assert.equal(tokenIn(script.body), undefined);
  assert.doesNotMatch(script.body, /rackboot\.token=/);
  assert.match(script.body, /echo rackboot: no boot token for 52:54:00:12:34:56: the server's neighbour table has 02:00:00:00:0b:ad/);
  assert.doesNotMatch((await get('/hosts/52-54-00-12-34-56/builds/b1/xen.cfg')).body, /rackboot\.token=/);
  proven = { kind: 'grant' };
});

test('without its token anyone gets 403 for the secrets, naming what was refused and why; the secrets stay out of the answer', async () => {
  proven = { kind: 'grant' };
  const otherToken = tokenIn((await get('/hosts/52-54-00-12-34-57/boot.ipxe?platform=pcbios')).body)!;
  for (const [url, token] of [
    ['/hosts/52-54-00-12-34-56/runtime.env', undefined],
    ['/hosts/52-54-00-12-34-56/runtime.env', otherToken],
    ['/hosts/52-54-00-12-34-56/runtime.env', 'forged'],
    ['/hosts/52-54-00-12-34-56/domains/web.cfg', undefined],
    ['/hosts/52-54-00-12-34-56/domains/web.cfg', otherToken],
  ] as const) {
    const refused = await get(url, token);
    assert.equal(refused.status, 403, url);
    assert.match(refused.body, /is served only to that host, with its token/);
    assert.doesNotMatch(refused.body, /\$6\$/);
  }
  assert.equal(alarms.length, 0, 'a missing or foreign token is a refusal, not an alarm');
  assert.equal((await get('/hosts/52-54-00-12-34-57/runtime.env', otherToken)).status, 200, 'the other host has its own');
});

test('reports about a host are taken only with its token; a guest token reports guest-ready for its own guest', async () => {
  proven = { kind: 'grant' };
  const token = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', 'stage=ready')).status, 403);
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', 'stage=ready', 'forged')).status, 403);
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', 'stage=booted', token)).status, 204);
  const cfg = await get('/hosts/52-54-00-12-34-56/domains/web.cfg', token);
  const guest = /rackboot\.token=(g\.\S+?)[ "]/.exec(cfg.body)?.[1];
  assert.ok(guest, cfg.body);
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', 'stage=guest-ready&domain=web&detail=ip%3D198.18.0.150', guest)).status, 204);
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', 'stage=guest-ready&domain=db', guest)).status, 403, 'not its guest');
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', 'stage=ready&domain=web', guest)).status, 403, 'a guest does not speak for its host');
  const timeline = (await (await fetch(`${base}/hosts/52-54-00-12-34-56/events`)).json()) as Array<{ stage: string }>;
  assert.deepEqual(
    timeline.map((event) => event.stage),
    ['booted', 'guest-ready'],
  );
});

test("a Debian guest's first-boot settings go only to that guest, with its own token; its config names the image and its root, never the hash", async () => {
  proven = { kind: 'grant' };
  const token = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;
  const cfg = await get('/hosts/52-54-00-12-34-56/domains/db.cfg', token);
  assert.equal(cfg.status, 200, cfg.body);
  assert.match(cfg.body, /rackboot\.image=builds\/b1\/debian-guest\.squashfs rackboot\.root=ram rackboot\.ip=198\.18\.0\.61\/24 rackboot\.gw=198\.18\.0\.1/);
  assert.match(cfg.body, /^memory = 256$/m);
  assert.doesNotMatch(cfg.body, /\$6\$|ssh-ed25519/, 'the hash and keys are not on the guest kernel command line');
  const dbToken = /rackboot\.token=(g\.\S+?)[ "]/.exec(cfg.body)?.[1];
  const webToken = /rackboot\.token=(g\.\S+?)[ "]/.exec((await get('/hosts/52-54-00-12-34-56/domains/web.cfg', token)).body)?.[1];
  assert.ok(dbToken && webToken);

  const logStart = logLines.length;
  const settings = await fetch(`${base}/hosts/52-54-00-12-34-56/domains/db/first-boot`, { headers: { 'x-rackboot-token': dbToken } });
  assert.equal(settings.status, 200);
  assert.equal(settings.headers.get('cache-control'), 'no-store');
  const body = await settings.text();
  for (const line of [
    "RACKBOOT_GUEST_HOSTNAME='db-one'",
    "RACKBOOT_GUEST_NET='static'",
    "RACKBOOT_GUEST_IP='198.18.0.61/24'",
    "RACKBOOT_GUEST_GW='198.18.0.1'",
    "RACKBOOT_GUEST_DNS='198.18.0.1'",
    `RACKBOOT_GUEST_ROOT_HASH='${guestHash}'`,
    `RACKBOOT_GUEST_SSH_KEYS='${guestKey}'`,
  ]) {
    assert.ok(body.split('\n').includes(line), `${line} in\n${body}`);
  }
  assert.ok(!logLines.slice(logStart).some((line) => line.includes(guestHash) || line.includes(dbToken)), 'neither the hash nor the token is logged');

  for (const [who, presented, reason] of [
    ['no token', undefined, /no token/],
    ['a forged token', 'g.forged', /not 52:54:00:12:34:56's/],
    ["the host's boot token", token, /go to the guest itself/],
    ["another guest's token", webToken, /not 52:54:00:12:34:56's/],
  ] as const) {
    const refused = await get('/hosts/52-54-00-12-34-56/domains/db/first-boot', presented);
    assert.equal(refused.status, 403, who);
    assert.match(refused.body, /first-boot settings of 52:54:00:12:34:56's domain db are served only to that guest, with its token/, who);
    assert.match(refused.body, reason, who);
    assert.doesNotMatch(refused.body, /\$6\$/, who);
  }
  const busybox = await get('/hosts/52-54-00-12-34-56/domains/web/first-boot', webToken);
  assert.equal(busybox.status, 404);
  assert.match(busybox.body, /domain web of 52:54:00:12:34:56 is no Debian guest/);

  // The guest says when its image could not be had; its token speaks for it alone.
  const failed = 'stage=guest-failed&domain=db&detail=disk%20xvda%20holds%20data';
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', failed, dbToken)).status, 204);
  assert.equal((await post('/hosts/52-54-00-12-34-56/events', 'stage=guest-failed&domain=web', dbToken)).status, 403);
  const timeline = (await (await fetch(`${base}/hosts/52-54-00-12-34-56/events`)).json()) as Array<{ stage: string; source: string; domain?: string }>;
  assert.ok(timeline.some((event) => event.stage === 'guest-failed' && event.source === 'guest' && event.domain === 'db'));
});

test('a storage report is taken only from the host, with its token; a malformed one is refused by line and the last good one stays', async () => {
  proven = { kind: 'grant' };
  const token = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;
  const report = 'disk name=vda size=1073741824 serial=rb-data-1 transport=virtio ids=virtio-rb-data-1\n';
  const refused = await post('/hosts/52-54-00-12-34-56/storage', report);
  assert.equal(refused.status, 403);
  assert.match(refused.body, /taken only from that host, with its token: no token/);
  assert.equal((await post('/hosts/52-54-00-12-34-56/storage', report, 'forged')).status, 403);
  assert.equal(events.hostReport(mac, 'storage'), undefined, 'nothing kept from a refused report');

  assert.equal((await post('/hosts/52-54-00-12-34-56/storage', report, token)).status, 204);
  const kept = events.hostReport(mac, 'storage')!;
  assert.deepEqual(JSON.parse(kept.body), {
    disks: [
      {
        name: 'vda',
        sizeBytes: 1073741824,
        serial: 'rb-data-1',
        transport: 'virtio',
        removable: false,
        readOnly: false,
        ids: ['virtio-rb-data-1'],
        partitions: [],
      },
    ],
    volumeGroups: [],
  });
  assert.ok(logLines.some((line) => line.includes('"event":"host-storage"') && line.includes('1 disk (1.0 GiB)')));

  const broken = await post('/hosts/52-54-00-12-34-56/storage', `${report}part name=vdb1 disk=vdb size=1\n`, token);
  assert.equal(broken.status, 400);
  assert.equal(broken.body, 'rackboot: storage report line 2: disk: vdb is not reported before it\n');
  const huge = await post('/hosts/52-54-00-12-34-56/storage', `disk name=vda size=1 model=${'a'.repeat(70_000)}`, token);
  assert.equal(huge.status, 413);
  assert.equal(events.hostReport(mac, 'storage')!.body, kept.body, 'the last good report stays');
  assert.deepEqual(
    events.listByHost(mac).filter((event) => event.stage === 'storage'),
    [],
    'a report is no timeline event',
  );
});

test("the guests' network counters are taken only from the host, with its token, and refused by line when malformed", async () => {
  proven = { kind: 'grant' };
  const token = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;
  const report = [
    'vif domain=web1 mac=02:16:3e:00:00:01 bridge=xenbr0 sent-bytes=2048 sent-packets=12 received-bytes=4096 received-packets=20',
    'vif domain=lab1 mac=02:16:3e:00:00:02 bridge=lab0 sent-bytes=1180 sent-packets=4 received-bytes=0 received-packets=0',
    '',
  ].join('\n');
  assert.equal((await post('/hosts/52-54-00-12-34-56/network', report)).status, 403);
  assert.equal((await post('/hosts/52-54-00-12-34-56/network', report, 'forged')).status, 403);
  assert.equal(events.hostReport(mac, 'network'), undefined, 'nothing kept from a refused report');
  assert.equal((await post('/hosts/52-54-00-12-34-56/network', report, token)).status, 204);
  assert.deepEqual(JSON.parse(events.hostReport(mac, 'network')!.body), [
    { domain: 'web1', mac: '02:16:3e:00:00:01', bridge: 'xenbr0', sentBytes: 2048, sentPackets: 12, receivedBytes: 4096, receivedPackets: 20 },
    { domain: 'lab1', mac: '02:16:3e:00:00:02', bridge: 'lab0', sentBytes: 1180, sentPackets: 4, receivedBytes: 0, receivedPackets: 0 },
  ]);
  assert.ok(logLines.some((line) => line.includes('"event":"host-network"') && line.includes('2 guest interfaces, 3.2 KiB sent, 4.0 KiB received')));
  const broken = await post('/hosts/52-54-00-12-34-56/network', `${report}vif domain=x mac=nope bridge=b\n`, token);
  assert.equal(broken.status, 400);
  assert.equal(broken.body, 'rackboot: guest network report line 3: mac: "nope" is not a MAC\n');
  assert.equal(JSON.parse(events.hostReport(mac, 'network')!.body).length, 2, 'the last good report stays');
});

test('the heartbeat: a running boot shows its token every 30 s; once another boot of the MAC got a script, the old one raises the two-boots alarm', async () => {
  proven = { kind: 'grant' };
  alarms.length = 0;
  const first = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;
  assert.equal((await post('/hosts/52-54-00-12-34-56/alive', '', first)).status, 204);
  assert.equal((await post('/hosts/52-54-00-12-34-56/alive', '')).status, 403);
  assert.equal(alarms.length, 0);
  // Another machine boots as the MAC (and, as far as the server can tell, from the same address).
  const second = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;
  assert.equal((await post('/hosts/52-54-00-12-34-56/alive', '', first)).status, 403);
  assert.equal(alarms.length, 1);
  assert.match(
    alarms[0]!.detail,
    /two boots of 52:54:00:12:34:56 at once\? the boot token of an earlier boot was shown from 127\.0\.0\.1 after a newer boot script went to 127\.0\.0\.1/,
  );
  assert.equal((await post('/hosts/52-54-00-12-34-56/alive', '', second)).status, 204);
  const timeline = (await (await fetch(`${base}/hosts/52-54-00-12-34-56/events`)).json()) as Array<{ stage: string }>;
  assert.ok(!timeline.some((event) => event.stage === 'alive'), 'heartbeats are not written to the timeline');
  alarms.length = 0;
});

test("runtime.env comes from the build the boot's script was handed, even after the current build moved on; a new boot gets the new one", async () => {
  proven = { kind: 'grant' };
  const token = tokenIn((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios')).body)!;
  await writeTestBuild(
    dir,
    'b2',
    Object.fromEntries(['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'guest.initrd.gz', 'debian-guest.squashfs'].map((name) => [name, Buffer.from(`${name} 2`)])),
  );
  await switchCurrent(dir, 'b2');
  try {
    const env = await get('/hosts/52-54-00-12-34-56/runtime.env', token);
    assert.equal(env.status, 200, env.body);
    assert.match(env.body, /^RACKBOOT_BUILD='?b1'?$/m, 'the booted build, not the current one');
    const next = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios');
    assert.match(next.body, /^# rackboot: build b2: the default channel's current build$/m);
    assert.match((await get('/hosts/52-54-00-12-34-56/runtime.env', tokenIn(next.body)!)).body, /^RACKBOOT_BUILD='?b2'?$/m);
  } finally {
    await switchCurrent(dir, 'b1');
  }
});
