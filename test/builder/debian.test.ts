import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import { build, kernelVersionOf, type BuildResult } from '../../builder/build.js';
import { decodeCpio, type CpioEntry } from '../../builder/cpio.js';
import { DEBIAN_RUNTIME_MODULES, GUEST_MODULES } from '../../builder/initrd.js';
import { parseManifest } from '../../builder/manifest.js';
import { moduleNameOf } from '../../builder/modules.js';
import { silentLogger } from '../../server/log.js';
import { assertRoot, Netns, run } from '../helpers/netns.js';
import { ConsoleMachine, serveInNamespace, xenBootArgs, type HttpRoute, type SeenRequest } from './qemu.js';

/**
 * The Debian runtime (`rackboot build --variant debian`): two real builds
 * from the same cached debootstrap tree, their contents, and boots of Xen
 * with the runtime under QEMU (TCG), straight from the build folder, on a
 * tap in a namespace of the test's own. A small HTTP server there plays the
 * rackboot server's part of the contract: runtime.env, the domain configs,
 * the guest parts and the events endpoint; busybox udhcpd gives the guests
 * their addresses over dom0's xenbr0. Needs root, debootstrap, QEMU and
 * ssh; without them the test fails.
 */

const MAC = '52:54:00:12:34:56';
const DOM0_IP = '198.18.0.50';
const PORT = 8080;
const SERVER = `http://198.18.0.1:${PORT}`;
// openssl passwd -6 -salt rackboottest 'correct horse'
const ROOT_HASH = '$6$rackboottest$R3I6dZFiAb60PrrUAAtXOMq7uhRrLSm.wvav/fW7uy9vr6fdYQ.pt1/wT0EiPcmrfkJXw5Jcg4yf7oJuDAcI40';
const QEMU_DEADLINE_MS = 600_000;
const READY = /rackboot-runtime: ready hostname=(\S+) ip=(\S+) mac=(\S+) domains=(\d+)\r*\n/;

let out: string;
let first: BuildResult;
let second: BuildResult;

before(async () => {
  assertRoot();
  run('debootstrap', ['--version']);
  run('qemu-system-x86_64', ['--version']);
  run('ssh', ['-V']); // openssh-client, with ssh-keygen
  run('sh', ['-c', 'command -v mksquashfs && command -v unsquashfs']); // squashfs-tools
  out = await mkdtemp(join(tmpdir(), 'rackboot-debian-'));
  first = await build({ out, variant: 'debian', log: silentLogger() }); // shares the download and debootstrap caches
  second = await build({ out, variant: 'debian', log: silentLogger() });
  const initrd = second.manifest.files.find((f) => f.name === 'initrd.gz')!;
  process.stdout.write(
    `# debian build: first ${(first.durationMs / 1000).toFixed(1)} s, second ${(second.durationMs / 1000).toFixed(1)} s; ` +
      `initrd.gz ${(initrd.size / 1e6).toFixed(1)} MB (XenCD: 70 MB before compression)\n`,
  );
});

after(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

async function members(result: BuildResult, name: string): Promise<Map<string, CpioEntry>> {
  return new Map(decodeCpio(gunzipSync(await readFile(join(result.dir, name)))).map((e) => [e.path, e]));
}

test('the Debian runtime is reproducible: two builds from the cached tree make the same initrd.gz', () => {
  const a = first.manifest.files.find((f) => f.name === 'initrd.gz')!;
  const b = second.manifest.files.find((f) => f.name === 'initrd.gz')!;
  assert.equal(a.sha256, b.sha256);
  assert.equal(first.manifest.files.find((f) => f.name === 'guest.initrd.gz')!.sha256, second.manifest.files.find((f) => f.name === 'guest.initrd.gz')!.sha256);
});

test('the manifest records the variant, the runtime\'s Debian packages, the guest image and memtest', async () => {
  const manifest = parseManifest(JSON.parse(await readFile(join(second.dir, 'manifest.json'), 'utf8')));
  assert.equal(manifest.variant, 'debian');
  const names = manifest.files.map((f) => f.name);
  for (const part of ['guest.initrd.gz', 'memtest86+x64.bin', 'memtest86+x64.efi']) assert.ok(names.includes(part as never), part);
  const initrd = manifest.files.find((f) => f.name === 'initrd.gz')!;
  const contained = new Map(initrd.contains!.map((c) => [c.package, c.version]));
  for (const pkg of ['xen-utils-4.17', 'openssh-server', 'iproute2', 'bridge-utils', 'busybox-static', 'tzdata', 'base-files']) assert.ok(contained.has(pkg), pkg);
  // The toolstack comes from the same sources as the hypervisor, security updates included.
  const hypervisor = manifest.files.find((f) => f.name === 'xen')!;
  assert.equal(contained.get('xen-utils-4.17'), hypervisor.version, 'xl matches the hypervisor it drives');
  assert.ok(initrd.size < 70_000_000, `initrd.gz is ${initrd.size} bytes`);
});

/** The Debian tree inside the runtime: path -> "mode uid/gid" from unsquashfs's long listing. */
async function rootImageListing(result: BuildResult): Promise<Map<string, string>> {
  const initrd = await members(result, 'initrd.gz');
  const image = initrd.get('rootfs.squashfs');
  assert.ok(image?.type === 'file', 'initrd.gz holds rootfs.squashfs');
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-squash-list-'));
  try {
    await writeFile(join(dir, 'root.squashfs'), image.data);
    const listing = execFileSync('unsquashfs', ['-lln', '-d', 'R', join(dir, 'root.squashfs')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const entries = new Map<string, string>();
    for (const line of listing.split('\n')) {
      const m = /^(\S+) (\d+\/\d+) .* R\/?(.*?)(?: -> .*)?$/.exec(line);
      if (m && m[3] !== '') entries.set(m[3]!, `${m[1]} ${m[2]}`);
    }
    return entries;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the Debian runtime: a busybox first stage and a squashfs holding xl, sshd, zoneinfo and the dom0 modules, without docs, man pages, locales, apt lists or host keys', async () => {
  const initrd = await members(second, 'initrd.gz');
  const init = initrd.get('init');
  assert.ok(init?.type === 'file' && init.mode === 0o755 && Buffer.from(init.data).toString().includes('switch_root /newroot /init'));
  assert.equal(initrd.get('bin/busybox')?.type, 'file');

  const entries = await rootImageListing(second);
  const paths = [...entries.keys()];
  assert.ok(paths.length > 3000, `${paths.length} paths in the root image`);
  for (const path of ['init', 'usr/lib/xen-4.17/bin/xl', 'usr/lib/xen-4.17/bin/xenconsoled', 'usr/lib/xen-4.17/bin/xen-init-dom0', 'usr/sbin/sshd', 'usr/bin/ssh-keygen', 'usr/bin/ip', 'usr/sbin/brctl', 'usr/bin/busybox', 'usr/bin/apt-get', 'usr/share/zoneinfo/Europe/Berlin', 'etc/xen/scripts/vif-bridge', 'usr/share/udhcpc/default.script']) {
    assert.match(entries.get(path) ?? 'absent', /^-/, `${path} is a file`);
  }
  for (const prefix of ['usr/share/doc/', 'usr/share/man/', 'usr/share/locale/', 'usr/share/info/', 'var/lib/apt/lists/', 'var/cache/apt/']) {
    assert.deepEqual(paths.filter((p) => p.startsWith(prefix)), [], `nothing under ${prefix}`);
  }
  assert.deepEqual(paths.filter((p) => p.endsWith('.pyc')), []);
  assert.deepEqual(paths.filter((p) => /^etc\/ssh\/ssh_host_/.test(p)), [], 'host keys are made at boot, not shared by every host');
  assert.deepEqual(paths.filter((p) => p.startsWith('dev/')), []);
  assert.match(entries.get('etc/shadow')!, / 0\/42$/, 'owners survive: /etc/shadow belongs to group shadow');

  const kver = kernelVersionOf(second.manifest.files.find((f) => f.name === 'vmlinuz')!.package);
  const shipped = new Set(paths.filter((p) => p.startsWith(`usr/lib/modules/${kver}/`) && p.endsWith('.ko')).map(moduleNameOf));
  for (const wanted of DEBIAN_RUNTIME_MODULES) assert.ok(shipped.has(moduleNameOf(wanted)), `${wanted} is shipped`);
  for (const backend of ['xen_netback', 'xen_blkback', 'xen_gntdev', 'xen_evtchn', 'xenfs', 'bridge']) assert.ok(shipped.has(backend), backend);
});

test('the guest image: busybox, xen-netfront and the guest /init', async () => {
  const entries = await members(second, 'guest.initrd.gz');
  const kver = kernelVersionOf(second.manifest.files.find((f) => f.name === 'vmlinuz')!.package);
  assert.ok(entries.get('init')?.type === 'file');
  assert.ok(Buffer.from((entries.get('init') as { data: Uint8Array }).data).toString().includes('stage=guest-ready'));
  assert.equal(entries.get('bin/busybox')?.type, 'file');
  const shipped = [...entries.keys()].filter((p) => p.startsWith(`lib/modules/${kver}/`) && p.endsWith('.ko')).map(moduleNameOf);
  for (const wanted of GUEST_MODULES) assert.ok(shipped.includes(moduleNameOf(wanted)), wanted);
  const size = second.manifest.files.find((f) => f.name === 'guest.initrd.gz')!.size;
  assert.ok(size < 3_000_000, `guest.initrd.gz is ${size} bytes`);
});

type Request = SeenRequest;

const serve = (ns: Netns, routes: Record<string, HttpRoute>) => serveInNamespace(ns, PORT, routes);

/** The events posted so far, as form fields. */
function events(requests: Request[]): Array<Record<string, string>> {
  return requests.filter((r) => r.method === 'POST').map((r) => Object.fromEntries(new URLSearchParams(r.body)));
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined, context: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s\n${context()}`);
    await delay(500);
  }
}

/** runtime.env as the server writes it: KEY='value', a ' written '\''. */
function runtimeEnv(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key}='${value.replaceAll("'", "'\\''")}'\n`)
    .join('');
}

function domainConfig(name: string, mac: string): string {
  return [
    `name = "${name}"`,
    // The Debian kernel needs about 58 MiB for its own image before it runs; with 80 it dies at boot.
    'memory = 96',
    'vcpus = 1',
    'kernel = "/run/rackboot/parts/vmlinuz"',
    'ramdisk = "/run/rackboot/parts/guest.initrd.gz"',
    `extra = "console=hvc0 rackboot.server=${SERVER} rackboot.parent=${MAC} rackboot.domain=${name}"`,
    `vif = [ 'mac=${mac},bridge=xenbr0' ]`,
    'on_poweroff = "destroy"',
    'on_crash = "restart"',
    '',
  ].join('\n');
}

const dom0Args = [`rackboot.server=${SERVER}`, `rackboot.mac=${MAC}`, 'rackboot.net=static', `rackboot.ip=${DOM0_IP}/24`, 'rackboot.gw=198.18.0.1', 'rackboot.dns=198.18.0.1'].join(' ');

function startUdhcpd(ns: Netns, work: string): void {
  const config = join(work, 'udhcpd.conf');
  execFileSync('sh', ['-c', `: > ${join(work, 'udhcpd.leases')}`]);
  execFileSync('sh', [
    '-c',
    `printf '%s\\n' 'start 198.18.0.100' 'end 198.18.0.110' 'interface tap0' 'lease_file ${join(work, 'udhcpd.leases')}' 'pidfile ${join(work, 'udhcpd.pid')}' 'option subnet 255.255.255.0' 'option router 198.18.0.1' 'option lease 3600' > ${config}`,
  ]);
  ns.spawn('busybox', ['udhcpd', '-f', config]);
}

// dom0 needs about 368 MiB: xl holds the guest kernel's unpacked image
// (about 84 MiB) while it builds a domain, and at 296 MiB it is OOM-killed;
// each guest needs 96. So two guests take a 640 MiB machine.
test('Xen + the Debian runtime in 640 MiB: two guests started and reporting, root logs in over ssh with a key', { timeout: 900_000 }, async () => {
  const ns = Netns.create('rbdeb');
  const work = await mkdtemp(join(tmpdir(), 'rackboot-debian-boot-'));
  let machine: ConsoleMachine | undefined;
  try {
    ns.addTap('tap0', '198.18.0.1/24');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rackboot-test', '-f', join(work, 'id')]);
    const publicKey = (await readFile(join(work, 'id.pub'), 'utf8')).trim();
    startUdhcpd(ns, work);
    const requests = await serve(ns, {
      [`/hosts/${MAC}/runtime.env`]: {
        text: runtimeEnv({
          RACKBOOT_HOSTNAME: 'xen01',
          RACKBOOT_ROOT_HASH: ROOT_HASH,
          RACKBOOT_SSH: '1',
          RACKBOOT_SSH_KEYS: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl someone's other key\n${publicKey}`,
          RACKBOOT_TIMEZONE: 'Europe/Berlin',
          RACKBOOT_APT_UPDATE: '0',
          RACKBOOT_PROFILE: 'xen01.yaml',
          RACKBOOT_BUILD: second.id,
          RACKBOOT_DOMAINS: 'demo1 demo2',
          RACKBOOT_GUEST_PARTS: 'vmlinuz guest.initrd.gz',
        }),
      },
      [`/hosts/${MAC}/domains/demo1.cfg`]: { text: domainConfig('demo1', '52:54:00:aa:00:01') },
      [`/hosts/${MAC}/domains/demo2.cfg`]: { text: domainConfig('demo2', '52:54:00:aa:00:02') },
      [`/builds/${second.id}/vmlinuz`]: { file: join(second.dir, 'vmlinuz') },
      [`/builds/${second.id}/guest.initrd.gz`]: { file: join(second.dir, 'guest.initrd.gz') },
    });
    machine = new ConsoleMachine(ns, xenBootArgs(second.dir, dom0Args, MAC, { memoryMiB: 640, xenArgs: 'dom0_mem=368M,max:368M' }), QEMU_DEADLINE_MS);
    const ready = await machine.waitFor(READY, QEMU_DEADLINE_MS);
    const readySeconds = machine.elapsed();
    assert.equal(ready[1], 'xen01');
    assert.equal(ready[2], `${DOM0_IP}/24`);
    assert.equal(ready[3], MAC);
    assert.equal(ready[4], '2', `both domains started; console:\n${machine.tail()}`);

    const guests = await until(
      'both guests reporting guest-ready',
      300_000,
      () => {
        const ready = events(requests).filter((e) => e.stage === 'guest-ready');
        return ready.length >= 2 ? ready : undefined;
      },
      () => `events: ${JSON.stringify(events(requests))}\nconsole:\n${machine!.tail()}`,
    );
    const guestSeconds = machine.elapsed();
    assert.deepEqual(guests.map((g) => g.domain).sort(), ['demo1', 'demo2']);
    for (const g of guests) assert.match(g.detail!, /^ip=198\.18\.0\.1(0\d|10)\/24 mac=52:54:00:aa:00:0[12]$/, g.detail);
    const stages = events(requests).map((e) => `${e.stage}${e.domain ? `:${e.domain}` : ''}`);
    assert.deepEqual(
      stages.filter((s) => !s.startsWith('guest-ready')),
      ['booted', 'configured', 'domain-started:demo1', 'domain-started:demo2', 'ready'],
      `events in order; console:\n${machine.tail()}`,
    );
    assert.deepEqual(
      requests.filter((r) => r.method === 'GET').map((r) => r.url),
      [`/hosts/${MAC}/runtime.env`, `/builds/${second.id}/vmlinuz`, `/builds/${second.id}/guest.initrd.gz`, `/hosts/${MAC}/domains/demo1.cfg`, `/hosts/${MAC}/domains/demo2.cfg`],
    );
    assert.ok(!machine.output.includes(ROOT_HASH), 'the root hash never reaches the console');

    const ssh = (command: string): string =>
      ns.exec('ssh', ['-i', join(work, 'id'), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=20', '-o', 'LogLevel=ERROR', `root@${DOM0_IP}`, command]);
    const list = ssh('xl list');
    assert.match(list, /^Domain-0 +0 /m);
    assert.match(list, /^demo1 +\d+ +9[56] /m);
    assert.match(list, /^demo2 +\d+ +9[56] /m);
    const facts = ssh(
      'echo tz=$(readlink /etc/localtime) keys=$(grep -c ^ssh-ed25519 /root/.ssh/authorized_keys)' +
        ' bridge=$(cat /sys/class/net/eth0/master/uevent | sed -n s/INTERFACE=//p) vifs=$(ls /sys/class/net/xenbr0/brif | tr "\\n" ,) root=$(df -k / | awk "NR==2 {print \\$1 \\":\\" \\$2}")',
    );
    assert.match(facts, /tz=\/usr\/share\/zoneinfo\/Europe\/Berlin /);
    assert.match(facts, /keys=2 /);
    assert.match(facts, /bridge=xenbr0 /);
    assert.match(facts, /vifs=eth0,vif\d+\.0,vif\d+\.0,/);
    const rootKb = Number(/root=\S+:(\d+)/.exec(facts)?.[1]);
    assert.ok(rootKb > 0 && rootKb < 368 * 1024, `the root tmpfs is size-limited below dom0's memory: ${facts}`);
    assert.equal(ssh(`grep -c '^root:${ROOT_HASH.replaceAll('$', '\\$')}:' /etc/shadow`).trim(), '1', 'the root hash is in /etc/shadow');
    // sshd is restarted when it dies.
    // The listener is the oldest sshd; killed a moment after this session has ended.
    ssh('nohup sh -c "sleep 1; pkill -o -x sshd" >/dev/null 2>&1 &');
    await machine.waitFor(/sshd exited with \d+; restarting/, 30_000);
    await until('sshd back', 60_000, () => { try { return ssh('echo back').trim() === 'back' ? true : undefined; } catch { return undefined; } }, () => machine!.tail());
    process.stdout.write(`# debian boot (-m 640, dom0_mem=368M): ready line after ${readySeconds.toFixed(1)} s, both guests ready after ${guestSeconds.toFixed(1)} s\n`);
  } finally {
    machine?.kill();
    ns.delete();
    await rm(work, { recursive: true, force: true });
  }
});

// 512 MiB is the smallest machine that boots this runtime (dom0 alone): with
// 384, Xen panics ("Not enough RAM for domain 0 allocation") for
// dom0_mem=320M, 256M and 192M.
for (const memoryMiB of [512]) {
  test(`Xen + the Debian runtime in ${memoryMiB} MiB with RACKBOOT_SSH=0: nothing listens on port 22; a failed apt-get update and a bad timezone are reported and the boot goes on`, { timeout: 900_000 }, async () => {
    const ns = Netns.create('rbdeb');
    let machine: ConsoleMachine | undefined;
    try {
      ns.addTap('tap0', '198.18.0.1/24');
      const requests = await serve(ns, {
        [`/hosts/${MAC}/runtime.env`]: {
          text: runtimeEnv({ RACKBOOT_HOSTNAME: 'xen02', RACKBOOT_SSH: '0', RACKBOOT_APT_UPDATE: '1', RACKBOOT_TIMEZONE: 'Mars/Olympus', RACKBOOT_DOMAINS: '', RACKBOOT_BUILD: second.id }),
        },
      });
      const dom0 = 368;
      machine = new ConsoleMachine(ns, xenBootArgs(second.dir, dom0Args, MAC, { memoryMiB, xenArgs: `dom0_mem=${dom0}M,max:${dom0}M` }), QEMU_DEADLINE_MS);
      const ready = await machine.waitFor(READY, QEMU_DEADLINE_MS);
      const readySeconds = machine.elapsed();
      assert.equal(ready[1], 'xen02');
      assert.equal(ready[4], '0');
      // The ready event is posted just after the ready line.
      await until('the ready event', 60_000, () => (events(requests).some((e) => e.stage === 'ready') ? true : undefined), () => JSON.stringify(events(requests)));
      const failed = events(requests).filter((e) => e.stage === 'setting-failed').map((e) => e.detail!);
      assert.ok(failed.some((d) => d.startsWith('timezone: ')), JSON.stringify(failed));
      assert.ok(failed.some((d) => d.startsWith('apt-update: ')), JSON.stringify(failed));
      assert.match(machine.output, /rackboot-runtime: setting timezone failed: no zoneinfo for 'Mars\/Olympus'/);
      assert.deepEqual(events(requests).map((e) => e.stage).filter((s) => s !== 'setting-failed'), ['booted', 'configured', 'ready']);
      // The host answers (a refusal comes back), and nothing listens on 22.
      ns.exec('busybox', ['ping', '-c', '1', '-W', '5', DOM0_IP]);
      assert.throws(() => ns.exec('bash', ['-c', `exec 3<>/dev/tcp/${DOM0_IP}/22`]), /Connection refused/);
      assert.doesNotMatch(machine.output, /sshd/);
      process.stdout.write(`# debian boot (-m ${memoryMiB}, dom0_mem=${dom0}M, no domains): ready line after ${readySeconds.toFixed(1)} s\n`);
    } finally {
      machine?.kill();
      ns.delete();
    }
  });
}
