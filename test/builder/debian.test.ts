import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { before, test } from 'node:test';
import { kernelVersionOf, type BuildResult } from '../../builder/build.js';
import { debianTestAssets, freshDebianTestBuilds } from '../support/debian-build.js';
import { decodeCpio, type CpioEntry } from '../../builder/cpio.js';
import { kernelElfOf } from '../../builder/bzimage.js';
import { DEBIAN_ON_DEMAND_MODULES, DEBIAN_RUNTIME_MODULES, GUEST_KERNEL_DIR, GUEST_MODULES, VIF_SCRIPT } from '../../builder/initrd.js';
import { parseManifest } from '../../server/assets/manifest.js';
import { moduleNameOf } from '../../builder/modules.js';
import { packageRoot } from '../../builder/recipe.js';
import { baseKernelArgs } from '../../server/core/resolve.js';
import { readyLinePattern } from '../../server/demo/qemu.js';
import { maxLogLinesPerAnswer } from '../../server/http/admin.js';
import { profileDefaults } from '../../server/profiles/parse.js';
import {
  addClient,
  httpPort,
  resetMachine,
  rewriteProfile,
  serverAddress,
  sshAsRoot,
  startMachine,
  startRack,
  type Rack,
  type RackClient,
} from '../support/boot.js';
import { cliPath } from '../support/build.js';
import { launchBrowser } from '../support/browser.js';
import { until } from '../support/until.js';
import { assertRoot, Netns, run } from '../support/netns.js';
import { ConsoleMachine, serveInNamespace, testBootToken, xenBootArgs, type HttpRoute, type SeenRequest } from './qemu.js';

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
/**
 * The ready line of a Debian boot on one emulated CPU: 140 s on a quiet
 * machine, 297 s and 595 s in two CI runs beside the other QEMU tests, and
 * past 600 s in a third (dom0's vCPU starved: RCU stalls, a soft lockup).
 */
const QEMU_DEADLINE_MS = 1_200_000;
/**
 * The network-booted Debian machines have two CPUs: Xen runs dom0's
 * backends, its storage scan and xl beside the guests' boots instead of
 * between them, and QEMU runs each CPU on a host thread of its own.
 */
const DEBIAN_MACHINE_CPUS = 2;
const READY = /rackboot-runtime: ready hostname=(\S+) ip=(\S+) mac=(\S+) domains=(\d+)\r*\n/;

/** The shared Debian builds' folder: what the racks of these tests serve. */
const out = debianTestAssets;
let first: BuildResult;
let second: BuildResult;

before(async () => {
  assertRoot();
  run('debootstrap', ['--version']);
  run('qemu-system-x86_64', ['--version']);
  run('ssh', ['-V']); // openssh-client, with ssh-keygen
  run('sh', ['-c', 'command -v mksquashfs && command -v unsquashfs']); // squashfs-tools
  // Both from the same cached debootstrap tree, with the Debian guest image, which the last test boots; kept for the tests that only boot the runtime.
  [first, second] = await freshDebianTestBuilds();
  const initrd = second.manifest.files.find((f) => f.name === 'initrd.gz')!;
  process.stdout.write(
    `# debian build: first ${(first.durationMs / 1000).toFixed(1)} s, second ${(second.durationMs / 1000).toFixed(1)} s; ` +
      `initrd.gz ${(initrd.size / 1e6).toFixed(1)} MB (XenCD: 70 MB before compression)\n`,
  );
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

test("the manifest records the variant, the runtime's Debian packages, the guest image and memtest", async () => {
  const manifest = parseManifest(JSON.parse(await readFile(join(second.dir, 'manifest.json'), 'utf8')));
  assert.equal(manifest.variant, 'debian');
  const names = manifest.files.map((f) => f.name);
  for (const part of ['guest.initrd.gz', 'memtest86+x64.bin', 'memtest86+x64.efi']) assert.ok(names.includes(part as never), part);
  const initrd = manifest.files.find((f) => f.name === 'initrd.gz')!;
  const contained = new Map(initrd.contains!.map((c) => [c.package, c.version]));
  for (const pkg of ['xen-utils-4.17', 'openssh-server', 'iproute2', 'bridge-utils', 'busybox-static', 'tzdata', 'base-files'])
    assert.ok(contained.has(pkg), pkg);
  // The toolstack comes from the same sources as the hypervisor, security updates included.
  const hypervisor = manifest.files.find((f) => f.name === 'xen')!;
  assert.equal(contained.get('xen-utils-4.17'), hypervisor.version, 'xl matches the hypervisor it drives');
  assert.ok(initrd.size < 70_000_000, `initrd.gz is ${initrd.size} bytes`);
  // The extra package (build settings' packages): installed after the runtime's own, with its size; less needs nothing more.
  assert.equal(manifest.extraPackages?.length, 1, JSON.stringify(manifest.extraPackages));
  const [less] = manifest.extraPackages!;
  assert.equal(less!.package, 'less');
  assert.equal(less!.version, contained.get('less'));
  assert.equal(less!.dependency, undefined);
  assert.ok(less!.installedKiB > 100 && less!.installedKiB < 10_000, `less installs ${less!.installedKiB} KiB`);
  assert.equal((await rootImageListing(second)).get('usr/bin/less'), '-rwxr-xr-x 0/0', 'the extra package is in the runtime');
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

/** One file of the Debian tree inside the runtime, read with unsquashfs. */
async function rootImageFile(result: BuildResult, path: string): Promise<Buffer> {
  const image = (await members(result, 'initrd.gz')).get('rootfs.squashfs');
  assert.ok(image?.type === 'file', 'initrd.gz holds rootfs.squashfs');
  const dir = await mkdtemp(join(tmpdir(), 'rackboot-squash-cat-'));
  try {
    await writeFile(join(dir, 'root.squashfs'), image.data);
    return execFileSync('unsquashfs', ['-cat', join(dir, 'root.squashfs'), path], { maxBuffer: 256 * 1024 * 1024 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("the Debian runtime carries the guest kernel unpacked: the ELF of this build's vmlinuz and that vmlinuz's sha256", async () => {
  const vmlinuz = second.manifest.files.find((f) => f.name === 'vmlinuz')!;
  assert.equal((await rootImageFile(second, `${GUEST_KERNEL_DIR}/vmlinuz.sha256`)).toString(), `${vmlinuz.sha256}\n`);
  const elf = await rootImageFile(second, `${GUEST_KERNEL_DIR}/vmlinux`);
  assert.deepEqual(elf, await kernelElfOf(await readFile(join(second.dir, 'vmlinuz'))));
});

test("xl in the Debian runtime sets up guests' vifs with rackboot's hotplug script", async () => {
  assert.match((await rootImageFile(second, 'etc/xen/xl.conf')).toString(), /^vif\.default\.script="vif-rackboot"$/m);
  const script = await rootImageFile(second, VIF_SCRIPT);
  assert.deepEqual(script, await readFile(join(packageRoot(), 'builder', 'runtime', 'vif-rackboot')));
  assert.match((await rootImageListing(second)).get(VIF_SCRIPT)!, /^-rwxr-xr-x 0\/0$/);
});

test('the Debian runtime: a busybox first stage and a squashfs holding xl, sshd, zoneinfo and the dom0 modules, without docs, man pages, locales, apt lists or host keys', async () => {
  const initrd = await members(second, 'initrd.gz');
  const init = initrd.get('init');
  assert.ok(init?.type === 'file' && init.mode === 0o755 && Buffer.from(init.data).toString().includes('switch_root /newroot /init'));
  assert.equal(initrd.get('bin/busybox')?.type, 'file');

  const entries = await rootImageListing(second);
  const paths = [...entries.keys()];
  assert.ok(paths.length > 3000, `${paths.length} paths in the root image`);
  for (const path of [
    'init',
    'usr/lib/xen-4.17/bin/xl',
    'usr/lib/xen-4.17/bin/xenconsoled',
    'usr/lib/xen-4.17/bin/xen-init-dom0',
    'usr/sbin/sshd',
    'usr/bin/ssh-keygen',
    'usr/bin/ip',
    'usr/sbin/brctl',
    'usr/bin/busybox',
    'usr/bin/apt-get',
    'usr/share/zoneinfo/Europe/Berlin',
    'etc/xen/scripts/vif-bridge',
    VIF_SCRIPT,
    'usr/share/udhcpc/default.script',
  ]) {
    assert.match(entries.get(path) ?? 'absent', /^-/, `${path} is a file`);
  }
  for (const prefix of ['usr/share/doc/', 'usr/share/man/', 'usr/share/locale/', 'usr/share/info/', 'var/lib/apt/lists/', 'var/cache/apt/']) {
    assert.deepEqual(
      paths.filter((p) => p.startsWith(prefix)),
      [],
      `nothing under ${prefix}`,
    );
  }
  assert.deepEqual(
    paths.filter((p) => p.endsWith('.pyc')),
    [],
  );
  assert.deepEqual(
    paths.filter((p) => /^etc\/ssh\/ssh_host_/.test(p)),
    [],
    'host keys are made at boot, not shared by every host',
  );
  assert.deepEqual(
    paths.filter((p) => p.startsWith('dev/')),
    [],
  );
  assert.match(entries.get('etc/shadow')!, / 0\/42$/, 'owners survive: /etc/shadow belongs to group shadow');

  const kver = kernelVersionOf(second.manifest.files.find((f) => f.name === 'vmlinuz')!.package);
  const shipped = new Set(paths.filter((p) => p.startsWith(`usr/lib/modules/${kver}/`) && p.endsWith('.ko')).map(moduleNameOf));
  for (const wanted of DEBIAN_RUNTIME_MODULES) assert.ok(shipped.has(moduleNameOf(wanted)), `${wanted} is shipped`);
  // Shipped for the profiles that need them, loaded only then: none is in the boot's load order.
  const atBoot = new Set((await rootImageFile(second, 'etc/rackboot/modules')).toString().split('\n').filter(Boolean).map(moduleNameOf));
  for (const wanted of DEBIAN_RUNTIME_MODULES) assert.ok(atBoot.has(moduleNameOf(wanted)), `${wanted} is loaded at boot`);
  for (const wanted of DEBIAN_ON_DEMAND_MODULES) {
    assert.ok(shipped.has(moduleNameOf(wanted)), `${wanted} is shipped`);
    assert.ok(!atBoot.has(moduleNameOf(wanted)), `${wanted} is not loaded at boot`);
  }
  for (const backend of ['xen_netback', 'xen_blkback', 'xen_gntdev', 'xen_evtchn', 'xenfs', 'bridge']) assert.ok(shipped.has(backend), backend);
});

test('the Debian guest image: systemd as init, sshd making its own host keys, the report unit enabled, no docs; the same bytes from the cached tree', async () => {
  const sums = [first, second].map((result) => result.manifest.files.find((f) => f.name === 'debian-guest.squashfs')?.sha256);
  assert.ok(sums[0] !== undefined && sums[0] === sums[1], `debian-guest.squashfs ${JSON.stringify(sums)}`);
  const image = second.manifest.files.find((f) => f.name === 'debian-guest.squashfs')!;
  const contained = new Map(image.contains!.map((c) => [c.package, c.version]));
  for (const pkg of ['systemd-sysv', 'udev', 'ifupdown', 'isc-dhcp-client', 'openssh-server', 'wget', 'e2fsprogs']) assert.ok(contained.has(pkg), pkg);
  assert.ok(image.size < 60_000_000, `debian-guest.squashfs is ${image.size} bytes`);
  assert.match(
    execFileSync('unsquashfs', ['-s', join(second.dir, 'debian-guest.squashfs')], { encoding: 'utf8' }),
    /Compression zstd/,
    'zstd: it unpacks fast on a guest CPU',
  );
  const listing = execFileSync('unsquashfs', ['-lln', '-d', 'R', join(second.dir, 'debian-guest.squashfs')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const paths = new Map<string, string>();
  for (const line of listing.split('\n')) {
    const m = /^(\S+) \S+ .* R\/?(.*?)(?: -> (.*))?$/.exec(line);
    if (m && m[2] !== '') paths.set(m[2]!, m[3] ?? m[1]!);
  }
  assert.equal(paths.get('usr/sbin/init'), '/lib/systemd/systemd');
  assert.equal(paths.get('etc/systemd/system/multi-user.target.wants/rackboot-guest.service'), '/etc/systemd/system/rackboot-guest.service');
  assert.equal(paths.get('usr/lib/rackboot/rackboot-guest'), '-rwxr-xr-x');
  assert.ok(paths.has('etc/systemd/system/ssh.service.d/rackboot-host-keys.conf'));
  assert.equal(paths.get('etc/systemd/network/99-default.link'), '/dev/null', 'eth0 keeps its name');
  assert.equal(paths.get('etc/systemd/system/getty-static.service'), '/dev/null');
  assert.equal(paths.get('etc/systemd/system/e2scrub_reap.service'), '/dev/null', 'no e2scrub job in a guest without LVM');
  assert.match(
    execFileSync('unsquashfs', ['-cat', join(second.dir, 'debian-guest.squashfs'), 'etc/systemd/system.conf.d/rackboot-show-status.conf'], {
      encoding: 'utf8',
    }),
    /^\[Manager\]\nShowStatus=error$/m,
    "the console shows failed units only, not systemd's running jobs",
  );
  assert.ok(paths.has('usr/sbin/mkfs.ext4'), "the first stage makes the root's filesystem with the image's own mkfs.ext4");
  const leftIn = [...paths.keys()].filter((path) => /^usr\/share\/(doc|man|locale)\/.|^etc\/ssh\/ssh_host_|^var\/lib\/apt\/lists\/./.test(path));
  assert.deepEqual(leftIn, [], 'no docs, man pages, locales, host keys or apt lists');
});

test('the guest image: busybox, xen-netfront and the guest /init', async () => {
  const entries = await members(second, 'guest.initrd.gz');
  const kver = kernelVersionOf(second.manifest.files.find((f) => f.name === 'vmlinuz')!.package);
  assert.ok(entries.get('init')?.type === 'file');
  assert.equal(
    Buffer.from((entries.get('init') as { data: Uint8Array }).data).toString(),
    await readFile(join(packageRoot(), 'builder', 'runtime', 'guest-init'), 'utf8'),
    "the guest's /init is builder/runtime/guest-init as it is",
  );
  assert.equal(entries.get('bin/busybox')?.type, 'file');
  const shipped = [...entries.keys()].filter((p) => p.startsWith(`lib/modules/${kver}/`) && p.endsWith('.ko')).map(moduleNameOf);
  for (const wanted of GUEST_MODULES) assert.ok(shipped.includes(moduleNameOf(wanted)), wanted);
  // Only the network card's module at every boot; blkfront and ext4 when the guest has disks, squashfs, loop and overlay for an image too.
  const list = (path: string) =>
    Buffer.from((entries.get(path) as { data: Uint8Array }).data)
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(moduleNameOf);
  assert.deepEqual(list('etc/rackboot/modules'), ['xen_netfront']);
  for (const wanted of ['xen_blkfront', 'crc32c_generic', 'ext4', 'squashfs', 'loop', 'overlay'])
    assert.ok(list('etc/rackboot/modules.disks').includes(wanted), `${wanted} is loaded for disks`);
  const size = second.manifest.files.find((f) => f.name === 'guest.initrd.gz')!.size;
  assert.ok(size < 3_000_000, `guest.initrd.gz is ${size} bytes`);
});

type Request = SeenRequest;

const serve = (ns: Netns, routes: Record<string, HttpRoute>) => serveInNamespace(ns, PORT, routes);

/** The events posted so far, as form fields. */
function events(requests: Request[]): Array<Record<string, string>> {
  return requests.filter((r) => r.method === 'POST' && r.url.endsWith('/events')).map((r) => Object.fromEntries(new URLSearchParams(r.body)));
}

/** runtime.env as the server writes it: KEY='value', a ' written '\''. */
function runtimeEnv(values: Record<string, string>): string {
  return Object.entries(values)
    .map(([key, value]) => `${key}='${value.replaceAll("'", "'\\''")}'\n`)
    .join('');
}

const dom0Args = [
  `rackboot.server=${SERVER}`,
  `rackboot.mac=${MAC}`,
  'rackboot.net=static',
  `rackboot.ip=${DOM0_IP}/24`,
  'rackboot.gw=198.18.0.1',
  'rackboot.dns=198.18.0.1',
  `rackboot.token=${testBootToken}`,
].join(' ');

// The product in 512 MiB, XenCD's recommended size: the default dom0_mem
// (256M,max:256M, profileDefaults), the default guest memory (96 MiB each)
// and Xen's own 8 MiB leave about 50 MiB free. What made it fit (it took
// 640 before): xl maps the guest kernel's ELF from the root image instead
// of unpacking the vmlinuz into dom0's heap (97 MB resident at its peak,
// OOM-killed in a 296 MiB dom0), and swiotlb=8192 on dom0's line (16 MiB
// of bounce buffers instead of 64). 448 MiB boots both guests too with
// dom0_mem=232M; 384 cannot: dom0 needs at least 183 MiB for Xen's builder
// (an aligned 128 MiB block for the kernel's address space plus the 54 MB
// initrd) and more for the kernel's initramfs tmpfs (half its memory at
// boot must hold the initrd: 208 MiB fails), and two guests take 194.
// 448 MiB (its profile setting dom0_mem=232M) is the smallest that has
// worked, but at its edge: dom0 keeps 2-3 MiB free (and under a loaded
// host Xen's vif-bridge hotplug script, which the runtime has since
// replaced with its own, once ran past libxl's timeout). So the test boots
// the product's 512 MiB; to try 448,
// add { memoryMiB: 448, dom0MiB: 232, xenArgs: 'dom0_mem=232M,max:232M' }.
const machines: Array<{ memoryMiB: number; dom0MiB: number; xenArgs: string | undefined }> = [{ memoryMiB: 512, dom0MiB: 256, xenArgs: undefined }];

// RACKBOOT_DEBIAN_BOOT_RUNS=N boots each machine N times from the same two
// builds, to see that the boot holds on a loaded host (default 1).
const bootRuns = Number(process.env.RACKBOOT_DEBIAN_BOOT_RUNS ?? '1');
if (!Number.isInteger(bootRuns) || bootRuns < 1)
  throw new Error(`RACKBOOT_DEBIAN_BOOT_RUNS=${process.env.RACKBOOT_DEBIAN_BOOT_RUNS}: want a whole number of runs, 1 or more`);

for (const { memoryMiB, dom0MiB, xenArgs } of machines)
  for (let run = 1; run <= bootRuns; run++) {
    const runName = bootRuns > 1 ? ` (run ${run} of ${bootRuns})` : '';
    test(
      `rackboot serve network-boots Xen + the Debian runtime in ${memoryMiB} MiB (BIOS, iPXE): two guests start and report, root logs in over ssh with a key, the host's log has its kernel, Xen and guests${runName}`,
      { timeout: 1_800_000 },
      async (t) => {
        const work = await mkdtemp(join(tmpdir(), 'rackboot-debian-boot-'));
        let rack: Rack | undefined;
        let qemu: ChildProcess | undefined;
        try {
          execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rackboot-test', '-f', join(work, 'id')]);
          const publicKey = (await readFile(join(work, 'id.pub'), 'utf8')).trim();
          rack = await startRack(
            {
              'xen01.yaml': [
                `mac: ${MAC}`,
                'hostname: xen01',
                'network:',
                '  mode: static',
                `  address: ${DOM0_IP}/24`,
                '  gateway: 198.18.0.1',
                '  dns: [198.18.0.1]',
                `rootPasswordHash: "${ROOT_HASH}"`,
                'ssh: true',
                'sshAuthorizedKeys:',
                `  - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl someone's other key"`,
                `  - "${publicKey}"`,
                'timezone: Europe/Berlin',
                'boot:',
                '  menuTimeout: 0',
                ...(xenArgs ? [`  xenArgs: "${xenArgs}"`] : []),
                // Otherwise dom0_mem, and the guests' memory always, are the product's defaults.
                'domains:',
                '  - name: demo1',
                '    restart: true',
                '  - name: demo2',
                '',
              ].join('\n'),
            },
            { assets: out },
          );
          const started = Date.now();
          const seconds = (): number => (Date.now() - started) / 1000;
          const booting = await startMachine(rack, 'bios', MAC, { memoryMiB, cpus: DEBIAN_MACHINE_CPUS });
          qemu = booting.qemu;
          const machine = booting.console;
          const ready = await machine.waitFor(readyLinePattern, QEMU_DEADLINE_MS, 'the ready line');
          const readySeconds = seconds();
          assert.equal(ready.groups!.hostname, 'xen01');
          assert.equal(ready.groups!.ip, `${DOM0_IP}/24`);
          assert.equal(ready.groups!.mac, MAC);
          assert.equal(ready.groups!.domains, '2', `both domains started; console:\n${machine.transcript.slice(-6000)}`);
          assert.match(machine.transcript, /Xen version 4\.17/);
          assert.match(machine.transcript, /rackboot-runtime: guest part vmlinuz: the root image's own, unpacked/);

          // What the server saw: its own log, one line per protocol event.
          const hostEvents = (): Array<Record<string, unknown>> => rack!.events().filter((e) => e.event === 'host-event' && e.mac === MAC);
          const guests = await until(
            'both guests reporting guest-ready to the server',
            300_000,
            () => {
              // One report per guest: a guest whose first report's answer came late may send it again.
              const reported = [
                ...new Map(
                  hostEvents()
                    .filter((e) => e.stage === 'guest-ready')
                    .map((e) => [String(e.domain), e]),
                ).values(),
              ];
              return reported.length >= 2 ? reported : undefined;
            },
            () => `events: ${JSON.stringify(hostEvents())}\nconsole:\n${machine.transcript.slice(-6000)}`,
          );
          const guestSeconds = seconds();
          assert.deepEqual(guests.map((g) => g.domain).sort(), ['demo1', 'demo2']);
          // The guests took addresses from rackboot's pool over dom0's xenbr0.
          for (const g of guests) assert.match(String(g.detail), /^ip=198\.18\.0\.1([0-4]\d|50)\/24 mac=[0-9a-f]{2}(:[0-9a-f]{2}){5}$/, String(g.detail));
          assert.notEqual(guests[0]!.detail, guests[1]!.detail, 'each guest has an address and a MAC of its own');
          // An xl create that failed and was tried again (a slow host, not a test
          // artifact) is no failure: the guest's start says how many attempts it took.
          // dom0 posts its ready event after printing the ready line; on a loaded host the guests' reports can arrive first.
          await until(
            "dom0's ready event at the server",
            120_000,
            () => (hostEvents().some((e) => e.stage === 'ready') ? true : undefined),
            () => `events: ${JSON.stringify(hostEvents())}\nconsole:\n${machine.transcript.slice(-3000)}`,
          );
          const retried = hostEvents().filter((e) => e.stage === 'domain-started' && / after \d+ attempts$/.test(String(e.detail)));
          const stages = hostEvents().map((e) => `${String(e.stage)}${e.domain ? `:${String(e.domain)}` : ''}`);
          assert.deepEqual(
            stages.filter((s) => !s.startsWith('guest-ready')),
            ['booted', 'configured', 'domain-started:demo1', 'domain-started:demo2', 'ready'],
            `events in order; console:\n${machine.transcript.slice(-6000)}`,
          );
          // The ready report names the build it runs and the Xen and dom0 kernel versions (the host table's Build column).
          const readyDetail = String(hostEvents().find((e) => e.stage === 'ready')!.detail);
          assert.match(readyDetail, new RegExp(` build=${second.id.replaceAll('.', '\\.')} xen=4\\.17\\S* kernel=6\\.1\\.\\S+-amd64$`), readyDetail);
          // The server keeps them: its events store (GET /hosts/<mac>/events) and
          // the host's timeline as `rackboot hosts` shows it.
          const stored = JSON.parse(rack.ns.exec('curl', ['-sSf', `http://${serverAddress}:${httpPort}/hosts/${MAC}/events`])) as Array<{
            source: string;
            stage: string;
            domain?: string;
          }>;
          assert.deepEqual([...new Set(stored.filter((e) => e.stage === 'guest-ready').map((e) => `${e.source}:${e.domain}`))].sort(), [
            'guest:demo1',
            'guest:demo2',
          ]);
          assert.deepEqual(
            stored.filter((e) => e.stage === 'domain-started').map((e) => `${e.source}:${e.domain}`),
            ['runtime:demo1', 'runtime:demo2'],
          );
          const hosts = JSON.parse(
            rack.ns.exec(process.execPath, [
              cliPath,
              'hosts',
              '--server',
              `http://${serverAddress}:${httpPort}`,
              '--state',
              join(rack.work, 'state'),
              '--json',
            ]),
          ) as Array<{ mac: string; hostname: string | null; stage: string; lastBootSeconds: number | null }>;
          const host = hosts.find((h) => h.mac === MAC);
          assert.equal(host?.hostname, 'xen01', JSON.stringify(hosts));
          assert.equal(host.stage, 'ready', 'guest reports leave the host at ready');
          assert.ok(host.lastBootSeconds !== null && host.lastBootSeconds > 0, JSON.stringify(host));
          // dom0 took its settings, both domain configs and the guest initrd from the server.
          const fromDom0 = rack
            .events()
            .filter((e) => e.event === 'http' && String(e.remote).replace(/^::ffff:/, '') === DOM0_IP)
            .map((e) => `${String(e.method)} ${String(e.path).replace(/\?.*$/, '')}`);
          for (const request of [
            `GET /hosts/${MAC}/runtime.env`,
            `GET /hosts/${MAC}/domains/demo1.cfg`,
            `GET /hosts/${MAC}/domains/demo2.cfg`,
            `GET /builds/${second.id}/guest.initrd.gz`,
          ]) {
            assert.ok(fromDom0.includes(request), `${request} in ${JSON.stringify(fromDom0)}`);
          }
          assert.ok(!machine.transcript.includes(ROOT_HASH), 'the root hash never reaches the console');

          const ssh = (command: string): string => sshAsRoot(rack!, join(work, 'id'), DOM0_IP, command);
          // Under TCG on a busy host, a dom0 that has just started two guests may take a while to answer.
          await until(
            'ssh to dom0',
            180_000,
            () => {
              try {
                return ssh('true') === '' ? true : undefined;
              } catch {
                return undefined;
              }
            },
            () => machine.transcript.slice(-3000),
          );
          // The guest kernel was not downloaded: xl mapped the ELF in dom0's root image.
          assert.equal(ssh('readlink /run/rackboot/parts/vmlinuz').trim(), `/${GUEST_KERNEL_DIR}/vmlinux`);
          // The guests' vifs were set up by rackboot's hotplug script (xl.conf's vif.default.script), not Xen's vif-bridge.
          assert.equal(
            ssh('for d in $(xl domid demo1) $(xl domid demo2); do xenstore-read /local/domain/0/backend/vif/$d/0/script; done').trim(),
            '/etc/xen/scripts/vif-rackboot\n/etc/xen/scripts/vif-rackboot',
          );
          const list = ssh('xl list');
          assert.match(list, new RegExp(`^Domain-0 +0 +${dom0MiB} `, 'm'));
          assert.match(list, /^demo1 +\d+ +9[56] /m);
          assert.match(list, /^demo2 +\d+ +9[56] /m);
          assert.match(ssh('xl sched-credit2 -d Domain-0'), /^Domain-0 +0 +512\b/m, "dom0's scheduler weight is twice a guest's");
          const memory = ssh("xl info | sed -n 's/^free_memory *: //p'; free -m | awk '/^Mem:/ {print $2, $4, $7}'").trim().split(/\s+/).map(Number);
          const [xenFree, dom0Total, dom0Free, dom0Available] = memory as [number, number, number, number];
          assert.ok(xenFree >= 0 && dom0Available > 0, `xl info free_memory ${xenFree} MiB, dom0 available ${dom0Available} MiB`);
          const facts = ssh(
            'echo tz=$(readlink /etc/localtime) keys=$(grep -c ^ssh-ed25519 /root/.ssh/authorized_keys)' +
              ' bridge=$(cat /sys/class/net/eth0/master/uevent | sed -n s/INTERFACE=//p) vifs=$(ls /sys/class/net/xenbr0/brif | tr "\\n" ,) root=$(df -k / | awk "NR==2 {print \\$1 \\":\\" \\$2}")',
          );
          assert.match(facts, /tz=\/usr\/share\/zoneinfo\/Europe\/Berlin /);
          assert.match(facts, /keys=2 /);
          assert.match(facts, /bridge=xenbr0 /);
          assert.match(facts, /vifs=eth0,vif\d+\.0,vif\d+\.0,/);
          const rootKb = Number(/root=\S+:(\d+)/.exec(facts)?.[1]);
          assert.ok(rootKb > 0 && rootKb <= (dom0MiB * 1024) / 2, `the root tmpfs is limited to half of dom0's memory: ${facts}`);
          assert.equal(ssh(`grep -c '^root:${ROOT_HASH.replaceAll('$', '\\$')}:' /etc/shadow`).trim(), '1', 'the root hash is in /etc/shadow');

          // The host's logs at the server (rackboot logs): the runtime's lines
          // and the kernel's (syslogd, klogd), Xen's log and each guest's
          // console (xenconsoled's files, forwarded by dom0).
          // Every line of the boot: the CLI prints the newest 1000 unless told, and
          // a slow boot's guests can push Xen's early lines out of those.
          type LogLine = { boot: number; source: string; app: string | null; text: string };
          const hostLogs = (): LogLine[] => {
            const lines = rack!.ns
              .exec(process.execPath, [
                cliPath,
                'logs',
                MAC,
                '--json',
                '--limit',
                String(maxLogLinesPerAnswer),
                '--server',
                `http://${serverAddress}:${httpPort}`,
                '--state',
                join(rack!.work, 'state'),
              ])
              .split('\n')
              .filter(Boolean)
              .map((line) => JSON.parse(line) as LogLine);
            assert.ok(lines.length < maxLogLinesPerAnswer, `the host's log holds ${lines.length} lines or more: the check would see only the newest`);
            return lines;
          };
          const syslogCounts = () =>
            rack!.ns
              .exec('curl', ['-sSf', `http://${serverAddress}:${httpPort}/metrics`])
              .split('\n')
              .filter((line) => line.startsWith('rackboot_syslog'))
              .join('\n');
          const apps = ['rackboot-runtime', 'kernel', 'xen', 'guest-demo1', 'guest-demo2'];
          const logLines = await until(
            "the runtime's, the kernel's, Xen's and both guests' lines in the host's log",
            120_000,
            () => {
              const lines = hostLogs();
              const seen = new Set(lines.map((line) => line.app));
              // Each guest's console ends with its ready line (after its getty's prompt, on the same line).
              const guestsReady = ['demo1', 'demo2'].every((guest) =>
                lines.some((line) => line.app === `guest-${guest}` && line.text.includes(`rackboot-guest: ready domain=${guest} `)),
              );
              return apps.every((app) => seen.has(app)) && guestsReady ? lines : undefined;
            },
            () => `${syslogCounts()}\napps: ${JSON.stringify([...new Set(hostLogs().map((line) => line.app))])}`,
          );
          const byApp = (app: string) => logLines.filter((line) => line.app === app).map((line) => line.text);
          assert.ok(
            byApp('rackboot-runtime').some((text) => text.startsWith('ready hostname=xen01 ')),
            byApp('rackboot-runtime').join('\n'),
          );
          assert.ok(byApp('kernel').length > 20, `kernel lines: ${byApp('kernel').length}`);
          assert.ok(
            byApp('xen').some((text) => text.startsWith('(XEN) ')),
            byApp('xen').slice(0, 20).join('\n'),
          );
          // The kernels print their command lines, boot tokens and all: the store keeps none of them.
          assert.ok(
            logLines.some((line) => line.text.includes('rackboot.token=(not kept)')),
            'a command line, its token left out',
          );
          assert.doesNotMatch(JSON.stringify(logLines), /rackboot\.token=(?!\(not kept\))|\b[bgi]\.[A-Za-z0-9_-]{12}\.[A-Za-z0-9_.-]{22,}/);
          assert.ok(!JSON.stringify(logLines).includes(ROOT_HASH), "the root hash is in no line of the host's log");
          t.diagnostic(
            `host log: ${logLines.length} lines (${apps.map((app) => `${app} ${byApp(app).length}`).join(', ')}); ${syslogCounts().replaceAll('\n', ', ')}`,
          );
          // The same log on the host's page, in a browser: Xen's lines and a guest's console among them.
          const browser = await launchBrowser({ netns: rack.ns.name, workDir: work });
          try {
            const page = await browser.newPage();
            await page.goto(`http://${serverAddress}:${httpPort}/status/hosts/${MAC}`);
            await page.fill('#token', (await readFile(join(rack.work, 'state', 'admin.token'), 'utf8')).trim());
            await page.click('#token-form button');
            for (const app of ['xen', 'guest-demo1', 'kernel', 'rackboot-runtime'])
              await page
                .locator('#log-lines .line .app', { hasText: `${app}:` })
                .first()
                .waitFor({ timeout: 30_000 });
            await page.fill('#log-search', 'rackboot-guest: ready');
            assert.equal(await page.locator('#log-lines .line:visible').count(), 2, "each guest's ready line, found by the search");
            await page.fill('#log-search', '');
            const artifacts = join(packageRoot(), 'test', '.work', 'artifacts');
            await mkdir(artifacts, { recursive: true });
            await page.setViewportSize({ width: 1280, height: 1000 });
            await page.screenshot({ path: join(artifacts, 'host-page-debian.png'), fullPage: true });
          } finally {
            await browser.close();
          }
          // sshd is restarted when it dies.
          // The listener is the oldest sshd; killed a moment after this session has ended.
          ssh('nohup sh -c "sleep 1; pkill -o -x sshd" >/dev/null 2>&1 &');
          await machine.waitFor(/sshd exited with \d+; restarting/, 30_000);
          await until(
            'sshd back',
            60_000,
            () => {
              try {
                return ssh('echo back').trim() === 'back' ? true : undefined;
              } catch {
                return undefined;
              }
            },
            () => machine.transcript.slice(-3000),
          );
          // Both guests destroyed: demo1 (restart: true) is created again and
          // reports again; demo2 (the default, restart: false) stays gone.
          ssh('xl destroy demo1; xl destroy demo2');
          await machine.waitFor(/rackboot-runtime: domain demo1 was gone; restarted/, 60_000, 'the watcher restarting demo1');
          await until(
            'demo1 reporting guest-ready again',
            180_000,
            () => (hostEvents().filter((e) => e.stage === 'guest-ready' && e.domain === 'demo1').length >= 2 ? true : undefined),
            () => `events: ${JSON.stringify(hostEvents())}\nconsole:\n${machine.transcript.slice(-3000)}`,
          );
          const after = ssh('xl list');
          assert.match(after, /^demo1 +\d+ /m);
          assert.doesNotMatch(after, /^demo2 /m, 'demo2 asked for no restart');
          // dom0's report of the restart and the guest's own report race: on a loaded host the guest's may land first.
          await until(
            "dom0's report of demo1's restart",
            60_000,
            () => (hostEvents().some((e) => e.stage === 'domain-started' && e.domain === 'demo1' && e.detail === 'restarted') ? true : undefined),
            () => `events: ${JSON.stringify(hostEvents())}\nconsole:\n${machine.transcript.slice(-3000)}`,
          );
          const initrd = second.manifest.files.find((f) => f.name === 'initrd.gz')!;
          process.stdout.write(
            `# debian network boot${runName} (-m ${memoryMiB}, ${xenArgs ?? 'defaults'}): ready line after ${readySeconds.toFixed(1)} s, both guests ready after ${guestSeconds.toFixed(1)} s; ` +
              `xl create tried again ${retried.length} time(s)${retried.map((e) => ` [${String(e.domain)}: ${String(e.detail)}]`).join('')}; ` +
              `initrd.gz ${(initrd.size / 1e6).toFixed(1)} MB; Xen free ${xenFree} MiB; dom0 ${dom0Total} MiB, free ${dom0Free}, available ${dom0Available}\n`,
          );
        } finally {
          qemu?.kill('SIGKILL');
          await rack?.close();
          await rm(work, { recursive: true, force: true });
        }
      },
    );
  }

const SAN_IP = '198.18.0.9';
const CHAP_SECRET = 's3cret-chap-pass';
/** tgtd's control socket number (/run/tgtd/socket.N): its own, beside any tgtd of the machine's. */
const TGT_CONTROL = '73';
/** dom0's 256 MiB, six guests of 96 and Xen's own. */
const STORAGE_MACHINE_MIB = 928;
/**
 * Six guests and a storage scan on one emulated CPU: on a busy CI machine
 * neither 600 s, 900 s nor 1500 s has always been enough for the ready line
 * (dom0 printed soft lockups and RCU stalls: its vCPU waiting for a host
 * CPU, while three other emulated machines ran beside it).
 */
const STORAGE_DEADLINE_MS = 2_400_000;

/**
 * Guests' disks on the host's own storage, across a reset: the machine has a
 * blank virtio disk and a SATA disk holding ext4, and its profile asks for a
 * volume group on each with initialize: true. The blank one becomes vg0 and
 * web1 gets a new volume of it, makes a filesystem and counts its boot; the
 * disk with data is refused and left as it was, and web2, whose volume
 * group that was, is not started and the report says why. The machine is
 * then reset (killed: a RAM-only dom0 forgets everything) and boots again:
 * vg0 is found, the volume kept, and web1 counts its second boot on it.
 */
test(
  'storage: a volume group made on a blank disk, a guest volume that keeps its files across a reset, a disk with data refused and untouched, domains found on a labelled filesystem, a guest on an iSCSI LUN with CHAP, guests on a private bridge, a routed one and a VLAN',
  { timeout: 5_400_000 },
  async () => {
    const work = await mkdtemp(join(tmpdir(), 'rackboot-debian-storage-'));
    let rack: Rack | undefined;
    let qemu: ChildProcess | undefined;
    let san: RackClient | undefined;
    let tgtd: ChildProcess | undefined;
    let capture: ChildProcess | undefined;
    // Seconds from the test's start to each step, for the log (never asserted).
    const testStart = Date.now();
    const steps: string[] = [];
    const step = (what: string): void => void steps.push(`${what} ${((Date.now() - testStart) / 1000).toFixed(1)} s`);
    try {
      const MiB = 1024 * 1024;
      const blank = join(work, 'blank.img');
      const data = join(work, 'data.img');
      execFileSync('truncate', ['-s', `${256 * MiB}`, blank]);
      execFileSync('truncate', ['-s', `${64 * MiB}`, data]);
      execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'keepme', data]);
      const dataBefore = execFileSync('sha256sum', [data], { encoding: 'utf8' }).split(' ')[0];
      // A filesystem labelled rackboot-domains: found1's xl config, and one named like a domain of the profile.
      const configs = join(work, 'configs');
      await mkdir(join(configs, 'domains'), { recursive: true });
      const foundConfig = (name: string): string =>
        [
          `name = "${name}"`,
          'type = "pv"',
          'memory = 96',
          'kernel = "/run/rackboot/parts/vmlinuz"',
          'ramdisk = "/run/rackboot/parts/guest.initrd.gz"',
          `extra = "console=hvc0 loglevel=5 rackboot.server=http://${serverAddress}:${httpPort} rackboot.parent=${MAC} rackboot.domain=${name}"`,
          "vif = [ 'bridge=xenbr0' ]",
          '',
        ].join('\n');
      await writeFile(join(configs, 'domains', 'found1.cfg'), foundConfig('found1'));
      await writeFile(join(configs, 'web1.cfg'), foundConfig('web1'));
      // An empty filesystem labelled guests, for web1's second disk: a file on it.
      const guestFiles = join(work, 'guests.img');
      execFileSync('truncate', ['-s', `${64 * MiB}`, guestFiles]);
      execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'guests', guestFiles]);
      const found = join(work, 'found.img');
      execFileSync('truncate', ['-s', `${32 * MiB}`, found]);
      execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'rackboot-domains', '-d', configs, found]);
      const disks = [
        { file: blank, serial: 'rb-blank', bus: 'virtio' as const },
        { file: data, serial: 'rb-data', bus: 'sata' as const },
        { file: found, serial: 'rb-found', bus: 'virtio' as const },
        { file: guestFiles, serial: 'rb-guests', bus: 'virtio' as const },
      ];
      rack = await startRack(
        {
          'xen01.yaml': [
            `mac: ${MAC}`,
            'hostname: xen01',
            'network:',
            '  mode: static',
            `  address: ${DOM0_IP}/24`,
            '  gateway: 198.18.0.1',
            'boot:',
            '  menuTimeout: 0',
            'storage:',
            '  volumeGroups:',
            '    - name: vg0',
            '      disks: [serial:rb-blank]',
            '      initialize: true',
            '    - name: keep',
            '      disks: [/dev/disk/by-id/ata-QEMU_HARDDISK_rb-data]',
            '      initialize: true',
            '  iscsi:',
            '    - name: san1',
            `      portal: ${SAN_IP}`,
            '      target: iqn.2026-12.test.rackboot:store1',
            '      chapUser: xen01',
            `      chapSecret: "${CHAP_SECRET}"`,
            '    - name: bad',
            `      portal: ${SAN_IP}:3260`,
            '      target: iqn.2026-12.test.rackboot:store2',
            '      chapUser: xen01',
            '      chapSecret: "not-the-right-one"',
            'domains:',
            '  - name: web1',
            '    disks:',
            '      - volume: vg0/web1',
            '        size: 64M',
            '      - file: images/web1.img',
            '        filesystem: label:guests',
            '        size: 16M',
            '  - name: web2',
            '    disks:',
            '      - volume: keep/web2',
            '        size: 16M',
            '  - name: db1',
            '    disks:',
            '      - iscsi: san1',
            '        lun: 1',
            '  - name: db2',
            '    disks:',
            '      - iscsi: bad',
            '        lun: 1',
            // Networks: lab1 on a bridge of the host's own with no way out, tag1 on VLAN 42 of the rack.
            '  - name: lab1',
            '    network:',
            '      bridge: lab0',
            '      private: true',
            '  - name: tag1',
            '    network:',
            '      bridge: vlan42',
            '      vlan: 42',
            // out1 on a private bridge that dom0 routes, to the server's address only.
            '  - name: out1',
            '    network:',
            '      bridge: nat0',
            '      private: true',
            '      subnet: 198.19.7.0/24',
            `      allow: [${serverAddress}]`,
            '',
          ].join('\n'),
        },
        { assets: out, bridge: true },
      );
      // The iSCSI target, in a namespace of its own on the rack's wire: Debian's tgt, with CHAP on both targets.
      san = await addClient(rack, '02:00:00:00:5a:01');
      san.setAddress(`${SAN_IP}/24`);
      tgtd = san.ns.spawn('tgtd', ['-f', '-C', TGT_CONTROL]);
      const tgtadm = (...args: string[]): string => san!.ns.exec('tgtadm', ['-C', TGT_CONTROL, '--lld', 'iscsi', ...args]);
      await until(
        'tgtd answering',
        20_000,
        () => {
          try {
            tgtadm('--op', 'show', '--mode', 'sys');
            return true;
          } catch {
            return undefined;
          }
        },
        () => 'tgtd did not answer on its control socket',
      );
      for (const [tid, name, size] of [
        ['1', 'store1', 64],
        ['2', 'store2', 16],
      ] as const) {
        const backing = join(work, `${name}.img`);
        execFileSync('truncate', ['-s', `${size * MiB}`, backing]);
        tgtadm('--op', 'new', '--mode', 'target', '--tid', tid, '-T', `iqn.2026-12.test.rackboot:${name}`);
        tgtadm('--op', 'new', '--mode', 'logicalunit', '--tid', tid, '--lun', '1', '-b', backing);
        tgtadm('--op', 'bind', '--mode', 'target', '--tid', tid, '-I', 'ALL');
      }
      tgtadm('--op', 'new', '--mode', 'account', '--user', 'xen01', '--password', CHAP_SECRET);
      for (const tid of ['1', '2']) tgtadm('--op', 'bind', '--mode', 'account', '--tid', tid, '--user', 'xen01');
      const hostEvents = (): Array<Record<string, unknown>> => rack!.events().filter((e) => e.event === 'host-event' && e.mac === MAC);
      const reports = (domain: string): string[] =>
        hostEvents()
          .filter((e) => e.stage === 'guest-ready' && e.domain === domain)
          .map((e) => String(e.detail));
      const web1Reports = (): string[] => reports('web1');

      // The machine's wire, for frames tagged with VLAN 42 (tag1's).
      const tagged: string[] = [];
      capture = rack.ns.spawn('tcpdump', ['-i', 'tap0', '-n', '-e', '-l', 'vlan 42']);
      capture.stdout!.setEncoding('utf8').on('data', (chunk: string) => tagged.push(chunk));

      // First boot: vg0 made, keep refused, web1 on a new volume, web2 not started.
      let booting = await startMachine(rack, 'bios', MAC, { memoryMiB: STORAGE_MACHINE_MIB, disks, cpus: DEBIAN_MACHINE_CPUS });
      qemu = booting.qemu;
      let machine = booting.console;
      step('power-on');
      const ready = await machine.waitFor(readyLinePattern, STORAGE_DEADLINE_MS, 'the ready line');
      step('ready');
      assert.equal(ready.groups!.domains, '6', `web1, db1, lab1, tag1, out1 and found1; console:\n${machine.transcript.slice(-6000)}`);
      assert.match(machine.transcript, /rackboot-runtime: network: bridge lab0 made \(private\)/);
      assert.match(machine.transcript, /rackboot-runtime: network: bridge vlan42 made \(vlan 42\)/);
      assert.match(machine.transcript, /rackboot-runtime: storage: volume group vg0 created on \/dev\/vd[a-z]/);
      assert.match(machine.transcript, /rackboot-runtime: domain web1: volume vg0\/web1 created \(64 MiB\)/);
      const refusal = hostEvents().find((e) => e.stage === 'setting-failed' && String(e.detail).startsWith('storage: volume group keep'));
      assert.equal(
        refusal?.detail,
        'storage: volume group keep not created: disk /dev/disk/by-id/ata-QEMU_HARDDISK_rb-data holds ext4 (label keepme); a disk that holds anything is never written',
        JSON.stringify(hostEvents()),
      );
      const web2 = hostEvents().find((e) => e.stage === 'domain-failed' && e.domain === 'web2');
      assert.equal(
        web2?.detail,
        'disk xvda (volume keep/web2): volume group keep is not there: it was not created: disk /dev/disk/by-id/ata-QEMU_HARDDISK_rb-data holds ext4 (label keepme)',
      );
      const first = await until(
        'web1 reporting from its new volume',
        300_000,
        () => web1Reports()[0],
        () => machine.transcript.slice(-6000),
      );
      step('web1 reported');
      assert.match(first, / disks=xvda:new-filesystem:boot1,xvdb:new-filesystem:boot1$/, first);
      assert.match(machine.transcript, /rackboot-runtime: domain web1: file images\/web1\.img on label:guests created \(16 MiB\)/);
      // iSCSI: db1 on LUN 1 of san1 (CHAP), db2 not started: its target refused the secret.
      assert.match(
        machine.transcript,
        /rackboot-runtime: storage: iSCSI session san1 logged in to iqn\.2026-12\.test\.rackboot:store1 at 198\.18\.0\.9:3260 \(sd[a-z]\)/,
      );
      const badLogin = hostEvents().find((e) => e.stage === 'setting-failed' && String(e.detail).startsWith('storage: iSCSI session bad'));
      assert.match(
        String(badLogin?.detail),
        /^storage: iSCSI session bad: login to iqn\.2026-12\.test\.rackboot:store2 at 198\.18\.0\.9:3260 failed: .*authorization failure$/,
        JSON.stringify(hostEvents()),
      );
      assert.match(
        String(hostEvents().find((e) => e.stage === 'domain-failed' && e.domain === 'db2')?.detail),
        /^disk xvda \(iSCSI bad LUN 1\): login to iqn\.2026-12\.test\.rackboot:store2 at 198\.18\.0\.9:3260 failed: .*authorization failure$/,
      );
      const db1First = await until(
        'db1 reporting from its LUN',
        300_000,
        () => reports('db1')[0],
        () => machine.transcript.slice(-6000),
      );
      step('db1 reported');
      assert.match(db1First, / disks=xvda:new-filesystem:boot1$/, db1First);
      // Networks, by dom0's counters (POST /hosts/MAC/network, every minute): lab1 and tag1 sent
      // (their DHCP requests); rackboot heard web1's, never lab1's (no way out of lab0) nor
      // tag1's (tagged with VLAN 42 on the wire, where rackboot serves untagged).
      const adminToken = (await readFile(join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
      const adminGet = (path: string): unknown =>
        JSON.parse(rack!.ns.exec('curl', ['-sSf', '-H', `Authorization: Bearer ${adminToken}`, `http://${serverAddress}:${httpPort}/api/${path}`]));
      type Vif = { domain: string; mac: string; bridge: string; sentPackets: number; receivedPackets: number };
      const counters = await until(
        'the guest network report showing lab1 and tag1 sending',
        240_000,
        () => {
          const report = (adminGet(`hosts/${MAC}`) as { guestNetwork: { interfaces: Vif[] } | null }).guestNetwork;
          const vifs = new Map((report?.interfaces ?? []).map((vif) => [vif.domain, vif]));
          return ['web1', 'lab1', 'tag1', 'out1'].every((domain) => (vifs.get(domain)?.sentPackets ?? 0) > 0) ? vifs : undefined;
        },
        () => machine.transcript.slice(-3000),
      );
      step('guest network counters');
      assert.equal(counters.get('web1')!.bridge, 'xenbr0');
      assert.equal(counters.get('lab1')!.bridge, 'lab0');
      assert.equal(counters.get('tag1')!.bridge, 'vlan42');
      const heardFrom = new Set(rack.events().map((e) => String(e.mac ?? '')));
      assert.ok(heardFrom.has(counters.get('web1')!.mac), "rackboot heard web1's DHCP");
      assert.ok(!heardFrom.has(counters.get('lab1')!.mac), 'nothing of lab1 reached rackboot');
      assert.ok(!heardFrom.has(counters.get('tag1')!.mac), 'nothing of tag1 reached rackboot untagged');
      assert.ok(!heardFrom.has(counters.get('out1')!.mac), "out1's DHCP stayed on nat0 (dom0 answered it)");
      assert.equal(counters.get('out1')!.bridge, 'nat0');
      assert.deepEqual(reports('lab1'), [], 'lab1 never reported');
      // out1 reached the server through dom0 (NAT), with an address of nat0's from dom0's DHCP.
      assert.match(
        machine.transcript,
        /rackboot-runtime: network: bridge nat0 routed: 198\.19\.7\.1 is dom0's, its guests get 198\.19\.7\.100 to 198\.19\.7\.200 and reach 198\.18\.0\.1\/32 only/,
      );
      const out1 = await until(
        'out1 reporting through dom0',
        240_000,
        () => reports('out1')[0],
        () => machine.transcript.slice(-3000),
      );
      step('out1 reported');
      assert.match(out1, /^ip=198\.19\.7\.(1\d\d|200)\/24 /, out1);
      assert.match(tagged.join(''), new RegExp(`${counters.get('tag1')!.mac}.*vlan 42`), 'tag1 is on VLAN 42 of the wire');
      // The CHAP secret went to the host alone: never on its console or in the server's log.
      assert.ok(!machine.transcript.includes(CHAP_SECRET), 'the CHAP secret on the console');
      assert.ok(!JSON.stringify(rack.events()).includes(CHAP_SECRET), "the CHAP secret in the server's log");
      // The storage report, after the volumes were made: vg0 with web1 in it, keep nowhere.
      const token = (await readFile(join(rack.work, 'state', 'admin.token'), 'utf8')).trim();
      const host = JSON.parse(
        rack.ns.exec('curl', ['-sSf', '-H', `Authorization: Bearer ${token}`, `http://${serverAddress}:${httpPort}/api/hosts/${MAC}`]),
      ) as {
        storageReport: {
          disks: Array<{ transport: string; sizeBytes: number }>;
          volumeGroups: Array<{ name: string; logicalVolumes: Array<{ name: string; sizeBytes: number }> }>;
        };
      };
      assert.deepEqual(
        host.storageReport.volumeGroups.map((vg) => ({ name: vg.name, volumes: vg.logicalVolumes.map((v) => `${v.name} ${v.sizeBytes}`) })),
        [{ name: 'vg0', volumes: [`web1 ${64 * MiB}`] }],
      );
      assert.deepEqual(
        host.storageReport.disks.filter((disk) => disk.transport === 'iscsi').map((disk) => disk.sizeBytes),
        [64 * MiB],
        "the LUN of san1 is one of the host's disks",
      );

      // For the second boot, the guests it checks: the profile loses lab1, tag1 and out1 (read again without a restart).
      const profileText = await readFile(join(rack.work, 'profiles', 'xen01.yaml'), 'utf8');
      const dropped = profileText.replace(/  - name: (lab1|tag1|out1)\n(    .*\n)*/g, '');
      assert.ok(!/lab1|tag1|out1/.test(dropped) && dropped.includes('name: db1'), dropped);
      await rewriteProfile(rack, MAC, 'xen01.yaml', dropped);

      // Reset: the RAM-only dom0 loses everything; the disks stay. The second
      // boot's reports are the ones after those counted now.
      const firstBootReports = { web1: web1Reports().length, db1: reports('db1').length };
      booting = await resetMachine(rack, qemu, MAC, { memoryMiB: STORAGE_MACHINE_MIB, disks, cpus: DEBIAN_MACHINE_CPUS });
      qemu = booting.qemu;
      machine = booting.console;
      step('reset');
      const again = await machine.waitFor(readyLinePattern, STORAGE_DEADLINE_MS, 'the ready line after the reset');
      step('ready again');
      assert.equal(again.groups!.domains, '3', `web1, db1 and found1; console:\n${machine.transcript.slice(-6000)}`);
      assert.match(machine.transcript, /rackboot-runtime: storage: volume group vg0 found on \/dev\/vd[a-z]/);
      assert.doesNotMatch(
        machine.transcript,
        /volume vg0\/web1 created|file images\/web1\.img on label:guests created/,
        'the volume and the file are kept, not made again',
      );
      const second = await until(
        'web1 reporting after the reset',
        300_000,
        () => web1Reports()[firstBootReports.web1],
        () => machine.transcript.slice(-6000),
      );
      step('web1 reported again');
      assert.match(second, / disks=xvda:boot2,xvdb:boot2$/, 'the same volume and disk file, with the files of the first boot');
      const db1Second = await until(
        'db1 reporting after the reset',
        300_000,
        () => reports('db1')[firstBootReports.db1],
        () => machine.transcript.slice(-6000),
      );
      step('db1 reported again');
      assert.match(db1Second, / disks=xvda:boot2$/, 'the same LUN, with the file of the first boot');
      qemu.kill('SIGKILL');
      await new Promise((resolve) => qemu!.once('exit', resolve));
      qemu = undefined;
      assert.equal(execFileSync('sha256sum', [data], { encoding: 'utf8' }).split(' ')[0], dataBefore, 'the disk with data was never written');
    } finally {
      process.stdout.write(`# storage: ${steps.join(', ')}\n`);
      qemu?.kill('SIGKILL');
      capture?.kill('SIGKILL');
      tgtd?.kill('SIGKILL');
      san?.close();
      await rack?.close();
      await rm(work, { recursive: true, force: true });
    }
  },
);

// Straight from the build folder (QEMU loads Xen and the modules), with the
// command lines the server gives by default (Xen's dom0_mem, dom0's swiotlb).
for (const memoryMiB of [512]) {
  test(
    `Xen + the Debian runtime in ${memoryMiB} MiB with RACKBOOT_SSH=0: nothing listens on port 22; a failed apt-get update and a bad timezone are reported and the boot goes on`,
    { timeout: 1_500_000 },
    async () => {
      const ns = Netns.create('rbdeb');
      let machine: ConsoleMachine | undefined;
      try {
        ns.addTap('tap0', '198.18.0.1/24');
        const requests = await serve(ns, {
          [`/hosts/${MAC}/runtime.env`]: {
            text: runtimeEnv({
              RACKBOOT_HOSTNAME: 'xen02',
              RACKBOOT_SSH: '0',
              RACKBOOT_APT_UPDATE: '1',
              RACKBOOT_TIMEZONE: 'Mars/Olympus',
              RACKBOOT_DOMAINS: '',
              RACKBOOT_BUILD: second.id,
            }),
          },
        });
        const dom0Line = [...baseKernelArgs.filter((arg) => !arg.startsWith('console=')), dom0Args].join(' ');
        machine = new ConsoleMachine(
          ns,
          xenBootArgs(second.dir, dom0Line, MAC, { memoryMiB, xenArgs: profileDefaults.boot.xenArgs, cpus: DEBIAN_MACHINE_CPUS }),
          QEMU_DEADLINE_MS,
        );
        const ready = await machine.waitFor(READY, QEMU_DEADLINE_MS);
        const readySeconds = machine.elapsed();
        assert.equal(ready[1], 'xen02');
        assert.equal(ready[4], '0');
        // The ready event is posted just after the ready line.
        await until(
          'the ready event',
          60_000,
          () => (events(requests).some((e) => e.stage === 'ready') ? true : undefined),
          () => JSON.stringify(events(requests)),
        );
        const failed = events(requests)
          .filter((e) => e.stage === 'setting-failed')
          .map((e) => e.detail!);
        assert.ok(
          failed.some((d) => d.startsWith('timezone: ')),
          JSON.stringify(failed),
        );
        assert.ok(
          failed.some((d) => d.startsWith('apt-update: ')),
          JSON.stringify(failed),
        );
        assert.match(machine.output, /rackboot-runtime: setting timezone failed: no zoneinfo for 'Mars\/Olympus'/);
        assert.deepEqual(
          events(requests)
            .map((e) => e.stage)
            .filter((s) => s !== 'setting-failed'),
          ['booted', 'configured', 'ready'],
        );
        // The host answers (a refusal comes back), and nothing listens on 22.
        ns.exec('busybox', ['ping', '-c', '1', '-W', '5', DOM0_IP]);
        assert.throws(() => ns.exec('bash', ['-c', `exec 3<>/dev/tcp/${DOM0_IP}/22`]), /Connection refused/);
        assert.doesNotMatch(machine.output, /sshd/);
        process.stdout.write(`# debian boot (-m ${memoryMiB}, ${profileDefaults.boot.xenArgs}, no domains): ready line after ${readySeconds.toFixed(1)} s\n`);
      } finally {
        machine?.kill();
        ns.delete();
      }
    },
  );
}

/**
 * Debian guests (the build's debian-guest.squashfs) on a QEMU machine that
 * network-boots Xen and the Debian runtime from `rackboot serve`. deb1
 * installs the image on a new volume of a blank disk and boots it; deb3,
 * whose disk holds a filesystem of its own, is refused and the disk left as
 * it was; deb2 runs the image from RAM with a static address. deb1 then
 * reboots itself: Xen starts it again with the same kernel and initrd,
 * which find the image installed and boot it from the disk. (That a
 * machine reset keeps the volumes is the storage test's: a second boot of
 * dom0 here would add minutes and nothing the guest sees.)
 */
const GUEST_MAC = '52:54:00:12:34:58';
/** deb2's static address (its first-boot settings), outside the rack's pool. */
const DEB2_ADDRESS = '198.18.0.170';
/** dom0's 256 MiB, Debian guests of 256, 256 and 192, and Xen's own. */
const GUEST_MACHINE_MIB = 1088;

test(
  'Debian guests: one installs the image on its blank volume and boots it again from there after a reboot, one whose disk holds data is refused, one runs it from RAM; first-boot settings reach each, and ssh logs in with their key',
  { timeout: 1_800_000 },
  async () => {
    const testStart = Date.now();
    const work = await mkdtemp(join(tmpdir(), 'rackboot-debian-guests-'));
    const MiB = 1024 * 1024;
    let rack: Rack | undefined;
    let qemu: ChildProcess | undefined;
    try {
      const blank = join(work, 'blank.img');
      const data = join(work, 'data.img');
      execFileSync('truncate', ['-s', `${1024 * MiB}`, blank]);
      execFileSync('truncate', ['-s', `${64 * MiB}`, data]);
      execFileSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'keepme', data]);
      const dataBefore = execFileSync('sha256sum', [data], { encoding: 'utf8' }).split(' ')[0];
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rackboot-test', '-f', join(work, 'id')]);
      const publicKey = (await readFile(join(work, 'id.pub'), 'utf8')).trim();
      const disks = [
        { file: blank, serial: 'rb-blank', bus: 'virtio' as const },
        { file: data, serial: 'rb-data', bus: 'virtio' as const },
      ];
      const domains: Record<string, string[]> = {
        deb1: [
          '  - name: deb1',
          '    image: debian',
          '    disks:',
          '      - volume: vg0/deb1',
          '        size: 512M',
          '    firstBoot:',
          '      hostname: deb-one',
          `      rootPasswordHash: "${ROOT_HASH}"`,
          `      sshAuthorizedKeys: ["${publicKey}"]`,
        ],
        deb2: [
          '  - name: deb2',
          '    image: debian',
          '    firstBoot:',
          `      network: { mode: static, address: ${DEB2_ADDRESS}/24, gateway: 198.18.0.1, dns: [198.18.0.1] }`,
          `      sshAuthorizedKeys: ["${publicKey}"]`,
        ],
        deb3: ['  - name: deb3', '    image: debian', '    memory: 192', '    disks:', '      - disk: serial:rb-data'],
      };
      const profile = (names: string[]): string =>
        [
          `mac: ${GUEST_MAC}`,
          'hostname: xen03',
          // dom0 takes the key too: a failure shows the guests' consoles (xenconsoled keeps them there).
          'ssh: true',
          `sshAuthorizedKeys: ["${publicKey}"]`,
          'boot:',
          '  menuTimeout: 0',
          'storage:',
          '  volumeGroups:',
          '    - name: vg0',
          '      disks: [serial:rb-blank]',
          '      initialize: true',
          'domains:',
          ...names.flatMap((name) => domains[name]!),
          '',
        ].join('\n');
      rack = await startRack(
        {
          'xen03.yaml': profile(['deb1', 'deb2', 'deb3']),
        },
        { assets: out, bridge: true },
      );
      const hostEvents = (): Array<Record<string, unknown>> => rack!.events().filter((e) => e.event === 'host-event' && e.mac === GUEST_MAC);
      const reports = (domain: string, stage = 'guest-ready'): string[] =>
        hostEvents()
          .filter((e) => e.stage === stage && e.domain === domain)
          .map((e) => String(e.detail));
      let dom0Address = '';
      const guestEvents = (): string => {
        const events = JSON.stringify(hostEvents().filter((e) => String(e.domain ?? '').startsWith('deb')));
        let consoles: string;
        try {
          consoles = ssh(dom0Address, 'for f in /var/log/xen/console/guest-*.log; do echo "== $f"; grep -av "Job \\|A start job" "$f" | tail -n 60; done');
        } catch (error) {
          consoles = `(the guests' consoles were not read from dom0: ${String(error)})`;
        }
        return `${events}\n${consoles}`;
      };
      const ssh = (address: string, command: string): string => sshAsRoot(rack!, join(work, 'id'), address, command);

      // For the log only: is-system-running exits non-zero while the guest is still starting, which is no failure here.
      // The slowest units and the chain that held the boot say where a guest's boot time goes.
      const timing = (name: string, address: string): void => {
        process.stdout.write(
          `# ${name}: ${ssh(address, 'systemd-analyze time 2>&1 | head -n 1; systemctl is-system-running 2>&1; true').trim().replace(/\n/g, '; ')}\n`,
        );
        const chain = ssh(address, 'systemd-analyze blame 2>&1 | head -n 8; systemd-analyze critical-chain --no-pager 2>&1 | tail -n +3; true');
        process.stdout.write(`# ${name}: ${chain.trim().replace(/\s+/g, ' ')}\n`);
      };

      // deb1 installs the image on its new volume, deb2 runs it from RAM, deb3's disk is refused.
      const booting = await startMachine(rack, 'bios', GUEST_MAC, { memoryMiB: GUEST_MACHINE_MIB, disks, cpus: DEBIAN_MACHINE_CPUS });
      qemu = booting.qemu;
      const machine = booting.console;
      const ready = await machine.waitFor(readyLinePattern, 900_000, 'the ready line');
      dom0Address = ready.groups!.ip!.split('/')[0]!;
      assert.equal(ready.groups!.domains, '3', machine.transcript.slice(-6000));
      const started = await until(
        '3 domain-started events',
        120_000,
        () => {
          const names = hostEvents()
            .filter((e) => e.stage === 'domain-started')
            .map((e) => String(e.domain));
          return names.length >= 3 ? names : undefined;
        },
        guestEvents,
      );
      assert.deepEqual(started, ['deb1', 'deb2', 'deb3'], 'each domain started under its own name (deb3 on a whole disk too)');
      const deb3 = await until('deb3 saying why it did not boot the image', 600_000, () => reports('deb3', 'guest-failed')[0], guestEvents);
      assert.equal(deb3, 'disk xvda holds a filesystem that is no rackboot Debian guest; left untouched');
      const deb1 = await until('deb1 reporting from the image it installed', 600_000, () => reports('deb1')[0], guestEvents);
      assert.match(deb1, /^ip=198\.18\.0\.\d+\/24 mac=\S+ image=debian-12 root=xvda:installed hostname=deb-one$/, deb1);
      const deb2 = await until('deb2 reporting from the image in RAM', 600_000, () => reports('deb2')[0], guestEvents);
      assert.match(deb2, new RegExp(`^ip=${DEB2_ADDRESS.replace(/\./g, '\\.')}/24 mac=\\S+ image=debian-12 root=ram hostname=deb2$`), deb2);
      const firstSeconds = (Date.now() - testStart) / 1000;

      // Root logs in with the key of the first-boot settings; hostname, hash and root are as the profile says, under systemd.
      const deb1Address = /^ip=([\d.]+)\//.exec(deb1)![1]!;
      const [deb1Hostname, deb1Hash, deb1Root, deb1Init, deb1MachineId] = ssh(
        deb1Address,
        'hostname; grep "^root:" /etc/shadow | cut -d: -f2; findmnt -n -o SOURCE,FSTYPE /; cat /proc/1/comm; cat /etc/machine-id',
      )
        .trim()
        .split('\n');
      assert.deepEqual([deb1Hostname, deb1Hash, deb1Root, deb1Init], ['deb-one', ROOT_HASH, '/dev/xvda ext4', 'systemd']);
      assert.match(deb1MachineId ?? '', /^[0-9a-f]{32}$/);
      timing('deb1', deb1Address);
      assert.ok(!machine.transcript.includes(ROOT_HASH), "the guest's root hash never reaches dom0's console");

      const deb2Address = /^ip=([\d.]+)\//.exec(deb2)![1]!;
      const [deb2Hostname, deb2Hash, deb2Root, deb2MachineId, ...rest] = ssh(
        deb2Address,
        'hostname; grep "^root:" /etc/shadow | cut -d: -f2; findmnt -n -o FSTYPE /; cat /etc/machine-id; ip -4 route show default; grep ^nameserver /etc/resolv.conf',
      )
        .trim()
        .split('\n');
      assert.deepEqual([deb2Hostname, deb2Hash, deb2Root], ['deb2', '*', 'overlay']);
      assert.match(rest[0] ?? '', /^default via 198\.18\.0\.1 dev eth0\b/, "deb2's gateway from its first-boot settings");
      assert.equal(rest[1], 'nameserver 198.18.0.1', "deb2's DNS server from its first-boot settings");
      assert.notEqual(deb1MachineId, deb2MachineId, 'each guest has a machine id of its own');
      timing('deb2', deb2Address);

      // deb1 reboots itself (on_reboot "restart"): the same kernel and initrd find the image on the volume and boot it.
      ssh(deb1Address, 'echo kept-across-the-reboot > /root/note && sync && (nohup sh -c "sleep 1; systemctl reboot" >/dev/null 2>&1 &)');
      const rebootAt = Date.now();
      const deb1Again = await until('deb1 reporting after its reboot', 600_000, () => reports('deb1')[1], guestEvents);
      assert.match(deb1Again, / root=xvda:kept hostname=deb-one$/, deb1Again);
      const rebootSeconds = (Date.now() - rebootAt) / 1000;
      const deb1AddressAgain = /^ip=([\d.]+)\//.exec(deb1Again)![1]!;
      assert.deepEqual(
        ssh(deb1AddressAgain, 'cat /root/note /etc/machine-id').trim().split('\n'),
        ['kept-across-the-reboot', deb1MachineId],
        'deb1 booted its own disk again, with the machine id it was installed with',
      );
      timing('deb1 from its disk', deb1AddressAgain);
      assert.ok(!JSON.stringify(rack.events()).includes(ROOT_HASH), "the guest's root hash is not in the server's log");
      process.stdout.write(
        `# Debian guests: power-on to the reports of deb1 and deb2 ${firstSeconds.toFixed(1)} s, deb1's reboot to its report ${rebootSeconds.toFixed(1)} s\n`,
      );
      qemu.kill('SIGKILL');
      await new Promise((resolve) => qemu!.once('exit', resolve));
      qemu = undefined;
      assert.equal(execFileSync('sha256sum', [data], { encoding: 'utf8' }).split(' ')[0], dataBefore, "deb3's disk was never written");
    } finally {
      qemu?.kill('SIGKILL');
      await rack?.close();
      await rm(work, { recursive: true, force: true });
    }
  },
);
