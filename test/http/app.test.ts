import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { AssetStore, switchCurrent as switchChannel } from '../../server/assets/builds.js';
import { writeTestBuild } from '../support/assets.js';
import { MemoryEventStore } from '../../server/events/store.js';
import { createHttpApp } from '../../server/http/app.js';
import { pino } from 'pino';
import { deriveDomainMac } from '../../server/profiles/domain.js';
import type { Profile } from '../../server/profiles/profile.js';
import { makeProfile } from '../support/profiles.js';

let dir: string;
let server: Server;
let base: string;
const files: Record<string, Buffer> = {};
const profiles = new Map<string, Profile>();
let defaultProfile: Profile | undefined;
const events = new MemoryEventStore();
/** The host the address of iPXE's reports in these tests belongs to (ipxeReports.senderOf). */
let ipxeSender: string | undefined;
const ipxeLines: Array<{ mac: string; text: string }> = [];
let clock = Date.parse('2026-11-26T02:00:00.000Z');
/** A key made with ssh-keygen (test/fixtures/ssh-public-keys.txt). */
const sshKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGlkc/VLZAO/Wa+NXrNh7Hd4k4QcdyIL1kKnAu8qDRUD test-ked25519@rackboot';
const problems = new Map<string, string[]>();
/** The app's log lines. */
const logLines: Array<Record<string, unknown>> = [];

async function writeBuild(id: string, content: Record<string, Buffer>): Promise<void> {
  await writeTestBuild(dir, id, content);
}

async function switchCurrent(id: string): Promise<void> {
  await symlink(path.join('builds', id), path.join(dir, 'current.tmp'));
  await rename(path.join(dir, 'current.tmp'), path.join(dir, 'current'));
}

before(async () => {
  // Below a dot-folder on purpose, like ~/.cache or test/.work.
  dir = path.join(await mkdtemp(path.join(tmpdir(), 'rackboot-http-')), '.assets');
  const names = ['xen', 'xen.efi', 'vmlinuz', 'initrd.gz', 'ipxe.efi', 'undionly.kpxe', 'guest.initrd.gz', 'memtest86+x64.bin', 'memtest86+x64.efi'];
  for (const name of names) files[name] = randomBytes(1000 + name.length * 997);
  await writeBuild('b1', files);
  await switchCurrent('b1');
  profiles.set('52:54:00:12:34:56', makeProfile());
  profiles.set(
    '52:54:00:12:34:57',
    makeProfile({
      mac: '52:54:00:12:34:57',
      hostname: 'node02',
      source: 'profiles/node02.yaml',
      boot: { entry: 'testing', xenArgs: 'dom0_mem=512M', kernelArgs: 'rackboot.poweroff=1', menuTimeout: 0 },
      sshAuthorizedKeys: [sshKey, `${sshKey.split(' ').slice(0, 2).join(' ')} o'brien@desk`],
      aptUpdate: true,
      domains: [
        {
          name: 'web',
          memory: 256,
          vcpus: 2,
          kernel: 'vmlinuz',
          ramdisk: 'guest.initrd.gz',
          extraArgs: 'quiet web.title="a \\ b"',
          bridge: 'xenbr0',
          mac: '02:00:00:00:00:07',
          autostart: true,
          restart: true,
          image: 'busybox',
        },
        {
          name: 'spare',
          memory: 128,
          vcpus: 1,
          kernel: 'vmlinuz',
          ramdisk: 'guest.initrd.gz',
          extraArgs: '',
          bridge: 'br1',
          autostart: false,
          restart: false,
          image: 'busybox',
        },
        {
          name: 'other',
          memory: 128,
          vcpus: 1,
          kernel: 'vmlinuz-other',
          ramdisk: 'guest.initrd.gz',
          extraArgs: '',
          bridge: 'xenbr0',
          autostart: true,
          restart: false,
          image: 'busybox',
        },
      ],
    }),
  );
  const app = createHttpApp({
    assets: new AssetStore(dir),
    lookupProfile: (mac) => profiles.get(mac) ?? (defaultProfile && !problems.has(mac) ? { ...defaultProfile } : undefined),
    profileProblems: (mac) => problems.get(mac) ?? [],
    endpoints: { address: '198.18.0.1', httpPort: 8080 },
    log: pino({ level: 'info', base: undefined, timestamp: false }, { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) }),
    events,
    now: () => clock,
    ipxeReports: {
      // 127.0.0.1 is node01's address here; any other sender is no host's.
      senderOf: async (address) => (address === '127.0.0.1' ? ipxeSender : undefined),
      log: (mac, text) => ipxeLines.push({ mac, text }),
    },
  });
  server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(path.dirname(dir), { recursive: true, force: true });
});

async function get(url: string, init?: RequestInit): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(base + url, init);
  return { status: response.status, body: await response.text(), headers: response.headers };
}

test('GET /boot.ipxe chains to the per-host script with the MAC and platform', async () => {
  const { status, body } = await get('/boot.ipxe');
  assert.equal(status, 200);
  assert.equal(
    body,
    [
      '#!ipxe',
      '# rackboot: hand this machine over to its own boot script',
      'set rbstep boot-script && chain http://198.18.0.1:8080/hosts/${mac:hexhyp}/boot.ipxe?platform=${platform} || goto retry',
      ':retry',
      'echo rackboot: could not load the boot script for ${mac} (at ${rbstep}: iPXE error ${errno}); asking DHCP again in 10 seconds',
      'imgfetch --name rbreport http://198.18.0.1:8080/hosts/${mac:hexhyp}/ipxe-failed/${rbstep}/${errno} && imgfree rbreport || echo rackboot: the failure could not be reported',
      'sleep 10',
      'dhcp || goto retry',
      'isset ${filename} && chain ${filename} || chain http://198.18.0.1:8080/boot.ipxe || goto retry',
      '',
    ].join('\n'),
  );
});

const staticArgs =
  'rackboot.server=http://198.18.0.1:8080 rackboot.mac=52:54:00:12:34:56 rackboot.hostname=node01 rackboot.net=static rackboot.ip=198.18.0.50/24 rackboot.gw=198.18.0.1 rackboot.dns=198.18.0.1';

test('BIOS host script: the boot menu, each entry as XenCD had it, multiboot Xen with dom0 kernel and initrd as modules', async () => {
  const { status, body } = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=pcbios');
  assert.equal(status, 200);
  assert.equal(
    body,
    [
      '#!ipxe',
      '# rackboot: node01 (52:54:00:12:34:56) from profiles/node01.yaml, build b1, entry standard',
      "# rackboot: build b1: the default channel's current build",
      'menu rackboot: node01 (52:54:00:12:34:56), build b1',
      'item standard Xen with the rackboot runtime',
      'item testing Xen with the rackboot runtime, verbose (testing)',
      'item guest Demo guest on bare metal (no Xen)',
      'item memtest Memory test (memtest86+)',
      'choose --timeout 5000 --default standard entry || goto standard',
      'goto ${entry}',
      '',
      ':standard',
      'echo rackboot: booting node01 (52:54:00:12:34:56): Xen with the rackboot runtime',
      'imgfree',
      'set rbstep xen && kernel http://198.18.0.1:8080/builds/b1/xen console=com1,vga com1=115200,8n1 dom0_mem=512M || goto failed',
      `set rbstep vmlinuz && module http://198.18.0.1:8080/builds/b1/vmlinuz console=tty0 console=hvc0 swiotlb=8192 quiet ${staticArgs} || goto failed`,
      'set rbstep initrd.gz && module http://198.18.0.1:8080/builds/b1/initrd.gz || goto failed',
      'set rbstep boot && boot || goto failed',
      '',
      ':testing',
      'echo rackboot: booting node01 (52:54:00:12:34:56): Xen with the rackboot runtime, verbose (testing)',
      'imgfree',
      'set rbstep xen && kernel http://198.18.0.1:8080/builds/b1/xen console=com1,vga com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=512M || goto failed',
      `set rbstep vmlinuz && module http://198.18.0.1:8080/builds/b1/vmlinuz console=tty0 console=hvc0 swiotlb=8192 ignore_loglevel ${staticArgs} || goto failed`,
      'set rbstep initrd.gz && module http://198.18.0.1:8080/builds/b1/initrd.gz || goto failed',
      'set rbstep boot && boot || goto failed',
      '',
      ':guest',
      'echo rackboot: booting node01 (52:54:00:12:34:56): Demo guest on bare metal (no Xen)',
      'imgfree',
      'set rbstep vmlinuz && kernel http://198.18.0.1:8080/builds/b1/vmlinuz console=tty0 console=ttyS0,115200n8 rackboot.server=http://198.18.0.1:8080 ' +
        'rackboot.parent=52:54:00:12:34:56 rackboot.domain=bare-metal || goto failed',
      'set rbstep guest.initrd.gz && initrd http://198.18.0.1:8080/builds/b1/guest.initrd.gz || goto failed',
      'set rbstep boot && boot || goto failed',
      '',
      ':memtest',
      'echo rackboot: booting node01 (52:54:00:12:34:56): Memory test (memtest86+)',
      'imgfree',
      'set rbstep memtest86+x64.bin && kernel http://198.18.0.1:8080/builds/b1/memtest86+x64.bin || goto failed',
      'set rbstep boot && boot || goto failed',
      '',
      ':failed',
      'echo rackboot: node01 (52:54:00:12:34:56) did not boot (at ${rbstep}: iPXE error ${errno}); asking DHCP again in 10 seconds',
      'imgfetch --name rbreport http://198.18.0.1:8080/hosts/${mac:hexhyp}/ipxe-failed/${rbstep}/${errno} && imgfree rbreport || echo rackboot: the failure could not be reported',
      'sleep 10',
      'dhcp || goto failed',
      'isset ${filename} && chain ${filename} || chain http://198.18.0.1:8080/boot.ipxe || goto failed',
      '',
    ].join('\n'),
  );
});

test("menuTimeout 0: no menu, straight to the profile's entry; notes for guests that cannot start", async () => {
  const { body } = await get('/hosts/52-54-00-12-34-57/boot.ipxe?platform=pcbios');
  const head = body.split('\n\n')[0];
  assert.equal(
    head,
    [
      '#!ipxe',
      '# rackboot: node02 (52:54:00:12:34:57) from profiles/node02.yaml, build b1, entry testing',
      "# rackboot: build b1: the default channel's current build",
      'echo rackboot: domain other not started: build has no vmlinuz-other',
      'goto testing',
    ].join('\n'),
  );
  assert.ok(!body.includes('\nmenu ') && !body.includes('\nchoose '));
  assert.match(
    body,
    /\n:testing\n.*\nimgfree\nset rbstep xen && kernel \S+\/xen console=com1,vga com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=512M \|\| goto failed\n/,
  );
});

test('EFI host script: xen.efi with a xen.cfg per Xen entry, memtest86+ as an EFI program', async () => {
  const script = await get('/hosts/52:54:00:12:34:56/boot.ipxe?platform=efi');
  const sections = script.body.split('\n\n');
  assert.equal(
    sections[1],
    [
      ':standard',
      'echo rackboot: booting node01 (52:54:00:12:34:56): Xen with the rackboot runtime',
      'imgfree',
      'set rbstep xen.cfg && imgfetch http://198.18.0.1:8080/hosts/52-54-00-12-34-56/builds/b1/standard/xen.cfg || goto failed',
      'set rbstep vmlinuz && imgfetch http://198.18.0.1:8080/builds/b1/vmlinuz || goto failed',
      'set rbstep initrd.gz && imgfetch http://198.18.0.1:8080/builds/b1/initrd.gz || goto failed',
      'set rbstep xen.efi && chain http://198.18.0.1:8080/builds/b1/xen.efi -cfg=xen.cfg || goto failed',
    ].join('\n'),
  );
  assert.match(sections[2]!, /imgfetch http:\/\/198\.18\.0\.1:8080\/hosts\/52-54-00-12-34-56\/builds\/b1\/testing\/xen\.cfg \|\| goto failed\n/);
  // Linux's EFI stub loads the initrd iPXE fetched by its image name.
  assert.match(sections[3]!, /console=ttyS0,115200n8 initrd=guest\.initrd\.gz rackboot\.server=/);
  assert.match(sections[4]!, /\nset rbstep memtest86\+x64\.efi && kernel http:\/\/198\.18\.0\.1:8080\/builds\/b1\/memtest86\+x64\.efi \|\| goto failed\n/);

  const config = await get('/hosts/52-54-00-12-34-56/builds/b1/xen.cfg');
  assert.equal(config.status, 200);
  assert.equal(
    config.body,
    [
      '[global]',
      'default=rackboot',
      '',
      '[rackboot]',
      'options=console=com1,vga com1=115200,8n1 dom0_mem=512M',
      `kernel=vmlinuz console=tty0 console=hvc0 swiotlb=8192 quiet ${staticArgs}`,
      'ramdisk=initrd.gz',
      '',
    ].join('\n'),
  );
  assert.equal((await get('/hosts/52-54-00-12-34-56/builds/b1/standard/xen.cfg')).body, config.body);
  const testing = await get('/hosts/52-54-00-12-34-56/builds/b1/testing/xen.cfg');
  assert.match(testing.body, /^options=console=com1,vga com1=115200,8n1 loglvl=all guest_loglvl=all dom0_mem=512M$/m);
  assert.match(testing.body, /^kernel=vmlinuz console=tty0 console=hvc0 swiotlb=8192 ignore_loglevel rackboot\.server=/m);
  assert.equal((await get('/hosts/52-54-00-12-34-56/builds/nope/xen.cfg')).status, 404);
  const memtest = await get('/hosts/52-54-00-12-34-56/builds/b1/memtest/xen.cfg');
  assert.equal(memtest.status, 404);
  assert.equal(memtest.body, 'rackboot: no Xen boot entry "memtest" (want standard or testing)\n');
});

test('runtime.env carries the hash, shell-quoted', async () => {
  const { status, body } = await get('/hosts/52-54-00-12-34-56/runtime.env');
  assert.equal(status, 200);
  assert.equal(
    body,
    [
      '# rackboot runtime settings',
      "RACKBOOT_HOSTNAME='node01'",
      "RACKBOOT_ROOT_HASH='$6$salt$abc'\\''def'",
      "RACKBOOT_SSH='1'",
      "RACKBOOT_TIMEZONE='Etc/UTC'",
      "RACKBOOT_PROFILE='profiles/node01.yaml'",
      "RACKBOOT_BUILD='b1'",
      "RACKBOOT_APT_UPDATE='0'",
      "RACKBOOT_DOMAINS=''",
      "RACKBOOT_GUEST_PARTS=''",
      '',
    ].join('\n'),
  );
});

test('runtime.env: keys, apt update, the guests to start and the parts they need', async () => {
  const { status, body } = await get('/hosts/52-54-00-12-34-57/runtime.env');
  assert.equal(status, 200);
  const lines = body.split('\n');
  assert.equal(lines[1], '# domain other not started: build has no vmlinuz-other');
  assert.ok(
    body.includes(`RACKBOOT_SSH_KEYS='${sshKey}\n${sshKey.split(' ').slice(0, 2).join(' ')} o'\\''brien@desk'\n`),
    'one key a line, quoted for the shell',
  );
  assert.ok(body.endsWith(["RACKBOOT_APT_UPDATE='1'", "RACKBOOT_DOMAINS='web'", "RACKBOOT_GUEST_PARTS='vmlinuz guest.initrd.gz'", ''].join('\n')));
  // What a POSIX shell makes of it.
  const values = execFileSync('sh', ['-c', 'eval "$1"; printf "%s\\0" "$RACKBOOT_SSH_KEYS" "$RACKBOOT_DOMAINS"', 'sh', body], { encoding: 'utf8' }).split('\0');
  assert.equal(values[0], `${sshKey}\n${sshKey.split(' ').slice(0, 2).join(' ')} o'brien@desk`);
  assert.equal(values[1], 'web');
});

test('domain configurations: xl syntax, a stable guest MAC, restart setting; 404 naming the domains there are', async () => {
  const web = await get('/hosts/52-54-00-12-34-57/domains/web.cfg');
  assert.equal(web.status, 200);
  assert.equal(
    web.body,
    [
      '# rackboot: domain web of node02 (52:54:00:12:34:57) from profiles/node02.yaml',
      'name = "web"',
      'type = "pv"',
      'memory = 256',
      'vcpus = 2',
      'kernel = "/run/rackboot/parts/vmlinuz"',
      'ramdisk = "/run/rackboot/parts/guest.initrd.gz"',
      'extra = "console=hvc0 loglevel=5 rackboot.server=http://198.18.0.1:8080 rackboot.parent=52:54:00:12:34:57 rackboot.domain=web quiet web.title=\\"a \\\\ b\\""',
      "vif = [ 'mac=02:00:00:00:00:07,bridge=xenbr0' ]",
      'on_poweroff = "restart"',
      'on_reboot = "restart"',
      'on_crash = "restart"',
      '',
    ].join('\n'),
  );
  // Not started at boot, but its configuration is there for `xl create`.
  const spare = await get('/hosts/52:54:00:12:34:57/domains/spare.cfg');
  assert.equal(spare.status, 200);
  const mac = deriveDomainMac('52:54:00:12:34:57', 'spare', new Set(['52:54:00:12:34:57', '02:00:00:00:00:07']));
  assert.match(spare.body, new RegExp(`^vif = \\[ 'mac=${mac},bridge=br1' \\]$`, 'm'));
  assert.match(spare.body, /^on_poweroff = "destroy"\non_reboot = "restart"\non_crash = "destroy"$/m);
  assert.equal((await get('/hosts/52-54-00-12-34-57/domains/spare.cfg')).body, spare.body, 'the same MAC every time');

  const unknown = await get('/hosts/52-54-00-12-34-57/domains/db.cfg');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body, 'rackboot: no domain "db" in profiles/node02.yaml for 52:54:00:12:34:57 (it has web, spare, other)\n');
  const none = await get('/hosts/52-54-00-12-34-56/domains/web.cfg');
  assert.equal(none.status, 404);
  assert.equal(none.body, 'rackboot: no domain "web" in profiles/node01.yaml for 52:54:00:12:34:56 (it has none)\n');
  assert.equal((await get('/hosts/52-54-00-12-34-57/domains/web')).status, 404);
  assert.equal((await get('/hosts/aa-bb-cc-dd-ee-ff/domains/web.cfg')).status, 404);
});

async function post(url: string, body: string, type?: string): Promise<{ status: number; body: string }> {
  const response = await fetch(base + url, { method: 'POST', body, headers: type ? { 'Content-Type': type } : {} });
  return { status: response.status, body: await response.text() };
}

test('POST /hosts/<mac>/events: form or JSON, 204, then in GET /hosts/<mac>/events', async () => {
  const form = 'application/x-www-form-urlencoded';
  assert.equal((await post('/hosts/52-54-00-12-34-57/events', 'stage=booted', form)).status, 204);
  clock += 1500;
  const guest = await post(
    '/hosts/52:54:00:12:34:57/events',
    'stage=guest-ready&domain=web&detail=ip%3D198.18.0.120%2F24%20mac%3D02%3A00%3A00%3A00%3A00%3A07',
    form,
  );
  assert.equal(guest.status, 204);
  assert.equal(guest.body, '');
  clock += 500;
  const json = await post('/hosts/525400123457/events', JSON.stringify({ stage: 'ready', detail: 'domains=1' }), 'application/json; charset=utf-8');
  assert.equal(json.status, 204);

  const list = await get('/hosts/52-54-00-12-34-57/events');
  assert.equal(list.status, 200);
  assert.match(list.headers.get('content-type') ?? '', /^application\/json/);
  const listed = JSON.parse(list.body) as Array<Record<string, unknown>>;
  assert.deepEqual(
    listed.map(({ id: _id, ...rest }) => rest),
    [
      { time: '2026-11-26T02:00:00.000Z', mac: '52:54:00:12:34:57', source: 'runtime', stage: 'booted' },
      {
        time: '2026-11-26T02:00:01.500Z',
        mac: '52:54:00:12:34:57',
        source: 'guest',
        stage: 'guest-ready',
        domain: 'web',
        detail: 'ip=198.18.0.120/24 mac=02:00:00:00:00:07',
      },
      { time: '2026-11-26T02:00:02.000Z', mac: '52:54:00:12:34:57', source: 'runtime', stage: 'ready', detail: 'domains=1' },
    ],
  );
  assert.deepEqual(
    events.latestByHost().map((event) => [event.mac, event.stage]),
    [['52:54:00:12:34:57', 'ready']],
  );
  assert.deepEqual(JSON.parse((await get('/hosts/52-54-00-00-00-99/events')).body), []);
});

test("POST /hosts/<mac>/events: a report's retry (same report id) is answered 204 and kept once; a new id, another host or 15 min later is a new report", async () => {
  const form = 'application/x-www-form-urlencoded';
  const mac = '52:54:00:12:34:59';
  const id = '8b0c2a6e-3f41-4c59-9a57-1d2e3f405162';
  const guestReady = `stage=guest-ready&domain=web&detail=ip%3D198.18.0.121%2F24&report=${id}`;
  const stages = (host: string): string[] => events.listByHost(host).map((event) => `${event.stage} ${event.detail ?? ''}`);
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = await post(`/hosts/${mac}/events`, guestReady, form);
    assert.equal(answer.status, 204, answer.body);
    clock += 5000;
  }
  assert.deepEqual(stages(mac), ['guest-ready ip=198.18.0.121/24'], 'taken once');
  const repeats = logLines.filter((line) => line.event === 'host-event-repeated');
  assert.equal(repeats.length, 2);
  assert.deepEqual(
    { mac: repeats[0]!.mac, stage: repeats[0]!.stage, domain: repeats[0]!.domain, report: repeats[0]!.report },
    { mac, stage: 'guest-ready', domain: 'web', report: id },
  );
  // JSON carries the id too; another id is another report.
  const json = await post(`/hosts/${mac}/events`, JSON.stringify({ stage: 'guest-ready', domain: 'web', detail: 'second', report: 'b-2' }), 'application/json');
  assert.equal(json.status, 204);
  assert.equal((await post(`/hosts/${mac}/events`, 'stage=guest-ready&domain=web&detail=second&report=b-2', form)).status, 204);
  // The same id from another host is that host's report; without an id every report is kept.
  assert.equal((await post('/hosts/52:54:00:12:34:5a/events', guestReady, form)).status, 204);
  assert.equal((await post(`/hosts/${mac}/events`, 'stage=booted', form)).status, 204);
  assert.equal((await post(`/hosts/${mac}/events`, 'stage=booted', form)).status, 204);
  // 15 minutes after it was taken, an id is forgotten: a host that reboots gets new ids anyway.
  clock += 15 * 60_000;
  assert.equal((await post(`/hosts/${mac}/events`, guestReady, form)).status, 204);
  assert.deepEqual(stages(mac), ['guest-ready ip=198.18.0.121/24', 'guest-ready second', 'booted ', 'booted ', 'guest-ready ip=198.18.0.121/24']);
  assert.deepEqual(stages('52:54:00:12:34:5a'), ['guest-ready ip=198.18.0.121/24']);
  // A bad id is refused, naming the field, and nothing is stored.
  for (const bad of ['a%20b', 'x'.repeat(65), 'r%2F1']) {
    const answer = await post(`/hosts/${mac}/events`, `stage=booted&report=${bad}`, form);
    assert.equal(answer.status, 400);
    assert.equal(answer.body, 'rackboot: report: want 1 to 64 letters, digits, dots, dashes or underscores (a UUID)\n');
  }
  assert.equal(events.listByHost(mac).length, 5);
});

test('POST /hosts/<mac>/events: 400 (413 for a body too large) naming the field, nothing stored', async () => {
  const form = 'application/x-www-form-urlencoded';
  const before = events.listByHost('52:54:00:12:34:58').length;
  const rows: Array<[string, string, string | undefined, string, number?]> = [
    ['/hosts/not-a-mac/events', 'stage=booted', form, 'rackboot: mac: "not-a-mac" is not a MAC address\n'],
    ['/hosts/52-54-00-12-34-58/events', 'stage=exploding', form, /^rackboot: stage: "exploding" is not a stage; want one of booted, /.source],
    ['/hosts/52-54-00-12-34-58/events', '', form, /^rackboot: stage: missing; want one of /.source],
    ['/hosts/52-54-00-12-34-58/events', 'stage=domain-started', form, 'rackboot: domain: missing; stage domain-started is about one domain\n'],
    ['/hosts/52-54-00-12-34-58/events', 'stage=ready&stage=failed', form, 'rackboot: stage: want text, got a list (the field was given twice?)\n'],
    ['/hosts/52-54-00-12-34-58/events', 'stage=ready&host=x', form, 'rackboot: host: unknown field; known fields: stage, detail, domain, report\n'],
    ['/hosts/52-54-00-12-34-58/events', '{"stage": "ready"', 'application/json', /^rackboot: body: not valid JSON/.source],
    ['/hosts/52-54-00-12-34-58/events', '"ready"', 'application/json', /^rackboot: body: want form fields or a JSON object/.source],
    [
      '/hosts/52-54-00-12-34-58/events',
      'stage=ready',
      'text/plain',
      'rackboot: body: want application/x-www-form-urlencoded or application/json, got "text/plain"\n',
    ],
    ['/hosts/52-54-00-12-34-58/events', `stage=failed&detail=${'x'.repeat(20_000)}`, form, 'rackboot: body: larger than 16kb\n', 413],
  ];
  for (const [url, body, type, want, status = 400] of rows) {
    const answer = await post(url, body, type);
    assert.equal(answer.status, status, `${url} ${body.slice(0, 40)}`);
    if (want.endsWith('\n')) assert.equal(answer.body, want);
    else assert.match(answer.body, new RegExp(want));
  }
  assert.equal(events.listByHost('52:54:00:12:34:58').length, before);
  assert.equal((await get('/hosts/nope/events')).status, 400);
});

test('unknown MAC: a clear no-profile script, then the default profile once there is one', async () => {
  const none = await get('/hosts/aa-bb-cc-dd-ee-ff/boot.ipxe?platform=pcbios');
  assert.equal(none.status, 200);
  assert.equal(
    none.body,
    [
      '#!ipxe',
      'echo rackboot: no profile matches aa:bb:cc:dd:ee:ff and there is no default profile',
      'echo rackboot: add a profile with "mac: aa:bb:cc:dd:ee:ff" (or a default.yaml) on the server; retrying in 30 seconds',
      'sleep 30',
      'chain http://198.18.0.1:8080/boot.ipxe',
      '',
    ].join('\n'),
  );
  assert.equal((await get('/hosts/aa-bb-cc-dd-ee-ff/runtime.env')).status, 404);
  defaultProfile = makeProfile({ mac: null, hostname: 'node-{mac}', network: { mode: 'dhcp' }, source: 'profiles/default.yaml' });
  try {
    const boot = await get('/hosts/aa-bb-cc-dd-ee-ff/boot.ipxe?platform=pcbios');
    assert.match(boot.body, /rackboot\.hostname=node-aabbccddeeff rackboot\.net=dhcp \|\| goto failed\n/);
  } finally {
    defaultProfile = undefined;
  }
});

test('a broken own profile: its errors on the console, no default boot', async () => {
  problems.set('aa:bb:cc:dd:ee:01', ['profiles/node9.yaml:2:11: hostname: "x_y" contains "_"', 'profiles/node9.yaml:3:1: ${evil}']);
  defaultProfile = makeProfile({ mac: null, hostname: 'node-{mac}', network: { mode: 'dhcp' }, source: 'profiles/default.yaml' });
  try {
    const { status, body } = await get('/hosts/aa-bb-cc-dd-ee-01/boot.ipxe?platform=pcbios');
    assert.equal(status, 200);
    assert.equal(
      body,
      [
        '#!ipxe',
        'echo rackboot: the profile for aa:bb:cc:dd:ee:01 has errors; fix it on the server (retrying in 30 seconds):',
        'echo profiles/node9.yaml:2:11: hostname: "x_y" contains "_"',
        'echo profiles/node9.yaml:3:1: $ {evil}',
        'sleep 30',
        'chain http://198.18.0.1:8080/boot.ipxe',
        '',
      ].join('\n'),
    );
    assert.equal((await get('/hosts/aa-bb-cc-dd-ee-01/runtime.env')).status, 404);
  } finally {
    problems.clear();
    defaultProfile = undefined;
  }
});

test('bad requests name what is wrong', async () => {
  const mac = await get('/hosts/not-a-mac/boot.ipxe');
  assert.equal(mac.status, 400);
  assert.equal(mac.body, 'rackboot: "not-a-mac" is not a MAC address\n');
  const platform = await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=arm');
  assert.equal(platform.status, 400);
  assert.match(platform.body, /unknown platform "arm"/);
  const missing = await get('/nothing.bin');
  assert.equal(missing.status, 404);
  assert.equal(missing.body, 'rackboot: no file "nothing.bin" in the current build\n');
  assert.equal((await get('/builds/b1/..%2fmanifest.json')).status, 404);
  assert.equal((await get('/manifest.json')).status, 404, 'only files named in the manifest are served');
});

test('boot files: exact bytes, Content-Length, HEAD and Range', async () => {
  for (const [name, data] of Object.entries(files)) {
    const response = await fetch(`${base}/${name}`);
    assert.equal(response.status, 200, name);
    assert.equal(response.headers.get('content-length'), String(data.length), name);
    assert.deepEqual(Buffer.from(await response.arrayBuffer()), data, name);
  }
  const head = await fetch(`${base}/builds/b1/ipxe.efi`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(files['ipxe.efi']!.length));
  const range = await fetch(`${base}/xen`, { headers: { Range: 'bytes=10-19' } });
  assert.equal(range.status, 206);
  assert.deepEqual(Buffer.from(await range.arrayBuffer()), files.xen!.subarray(10, 20));
});

test('a new build is served at once; pinned URLs keep the old one', async () => {
  const newer = { ...files, xen: randomBytes(4321) };
  await writeBuild('b2', newer);
  await switchCurrent('b2');
  const current = await fetch(`${base}/xen`);
  assert.deepEqual(Buffer.from(await current.arrayBuffer()), newer.xen);
  const pinned = await fetch(`${base}/builds/b1/xen`);
  assert.deepEqual(Buffer.from(await pinned.arrayBuffer()), files.xen);
  assert.match((await get('/hosts/52-54-00-12-34-56/boot.ipxe')).body, /builds\/b2\/xen /);
});

test("a profile's boot.channel or boot.build chooses its build; a channel or pin with no build is said on the console", async () => {
  const testing = { ...files, xen: randomBytes(2345) };
  await writeBuild('c1', testing);
  await switchChannel(dir, 'c1', 'testing');
  const boot = (extra: Partial<Profile['boot']>) => ({ ...makeProfile().boot, ...extra });
  const cases = [
    { mac: '52:54:00:12:34:60', file: 'node60.yaml', boot: boot({ channel: 'testing' }) },
    { mac: '52:54:00:12:34:61', file: 'node61.yaml', boot: boot({ build: 'b1' }) },
    { mac: '52:54:00:12:34:62', file: 'node62.yaml', boot: boot({ channel: 'nightly' }) },
    { mac: '52:54:00:12:34:63', file: 'node63.yaml', boot: boot({ build: 'gone' }) },
  ];
  for (const item of cases) profiles.set(item.mac, makeProfile({ mac: item.mac, source: `profiles/${item.file}`, boot: item.boot }));
  try {
    const onChannel = await get('/hosts/52-54-00-12-34-60/boot.ipxe?platform=pcbios');
    assert.match(onChannel.body, /^# rackboot: build c1: channel testing's current build \(boot\.channel in node60\.yaml\)$/m);
    // The build the script pins serves its own files: the channel's Xen.
    const efi = await get('/hosts/52-54-00-12-34-60/boot.ipxe?platform=efi');
    assert.match(efi.body, /builds\/c1\/xen\.efi/);
    const pinned = await get('/hosts/52-54-00-12-34-61/boot.ipxe?platform=efi');
    assert.match(pinned.body, /^# rackboot: build b1: pinned by boot\.build in node61\.yaml$/m);
    assert.match(pinned.body, /builds\/b1\/xen\.efi/);
    assert.equal(
      (await get('/hosts/52-54-00-12-34-62/boot.ipxe?platform=pcbios')).body,
      [
        '#!ipxe',
        'echo rackboot: channel nightly (boot.channel in node62.yaml) has no build yet (run "rackboot build --channel nightly"); retrying in 30 seconds',
        'sleep 30',
        'chain http://198.18.0.1:8080/boot.ipxe',
        '',
      ].join('\n'),
    );
    assert.match(
      (await get('/hosts/52-54-00-12-34-63/boot.ipxe?platform=pcbios')).body,
      /^echo rackboot: build gone, pinned by boot\.build in node63\.yaml, is not in the server's builds \(pruned, or made on another server\); change or remove the pin; retrying in 30 seconds$/m,
    );
    // Without a channel of its own a host keeps the default channel's current build.
    assert.match((await get('/hosts/52-54-00-12-34-56/boot.ipxe?platform=efi')).body, /^# rackboot: build b[12]: the default channel's current build$/m);
  } finally {
    for (const item of cases) profiles.delete(item.mac);
  }
});

test("iPXE's failure report: from the host's own address it is a failed event and a line in its log; a bad step or errno is 400; from anyone else 403", async () => {
  ipxeSender = '52:54:00:12:34:56';
  const before = events.listByHost('52:54:00:12:34:56', { limit: 1000 }).length;
  const reported = await get('/hosts/52-54-00-12-34-56/ipxe-failed/initrd.gz/0x3d12608e');
  assert.equal(reported.status, 200, reported.body);
  const timeline = events.listByHost('52:54:00:12:34:56', { limit: 1000 });
  assert.equal(timeline.length, before + 1);
  const failed = timeline.at(-1)!;
  assert.deepEqual(
    [failed.source, failed.stage, failed.detail],
    ['http', 'failed', 'iPXE failed at initrd.gz: iPXE error 0x3d12608e (https://ipxe.org/err/3d12608e)'],
  );
  assert.deepEqual(ipxeLines.at(-1), { mac: '52:54:00:12:34:56', text: 'iPXE failed at initrd.gz: iPXE error 0x3d12608e (https://ipxe.org/err/3d12608e)' });

  const badErrno = await get('/hosts/52-54-00-12-34-56/ipxe-failed/initrd.gz/0xnothex');
  assert.equal(badErrno.status, 400);
  assert.match(badErrno.body, /^rackboot: errno: want iPXE's \$\{errno\}/);
  assert.equal((await get('/hosts/52-54-00-12-34-56/ipxe-failed/..%2Fetc/0x1')).status, 400);

  // Another host's address (or a stranger's) cannot write into this host's timeline.
  ipxeSender = '52:54:00:12:34:57';
  const forged = await get('/hosts/52-54-00-12-34-56/ipxe-failed/xen/0x1');
  assert.equal(forged.status, 403);
  assert.match(forged.body, /taken only from that host: 127\.0\.0\.1 is 52:54:00:12:34:57/);
  ipxeSender = undefined;
  assert.equal((await get('/hosts/52-54-00-12-34-56/ipxe-failed/xen/0x1')).status, 403);
  assert.equal(events.listByHost('52:54:00:12:34:56', { limit: 1000 }).length, before + 1, 'nothing refused was kept');
  assert.equal(ipxeLines.length, 1);
});
