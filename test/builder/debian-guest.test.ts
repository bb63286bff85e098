import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { build, type BuildResult } from '../../builder/build.js';
import { DEFAULT_BUILD_SETTINGS } from '../../builder/config.js';
import { readyLinePattern } from '../../server/demo/qemu.js';
import { silentLogger } from '../../server/log.js';
import { resetMachine, rewriteProfile, sshAsRoot, startMachine, startRack, type Rack } from '../support/boot.js';
import { assertRoot, run } from '../support/netns.js';
import { until } from '../support/until.js';

/**
 * The Debian guest image (`rackboot build --debian-guest`): what the build
 * makes, and a QEMU machine (TCG) that network-boots Xen and the Debian
 * runtime from `rackboot serve` with three Debian guests: deb1 installs the
 * image on a new volume of a blank disk and boots it, deb2 runs it from
 * RAM, and deb3, whose disk holds a filesystem of its own, is refused and
 * the disk left as it was. The machine is reset and deb1 boots from its
 * disk again. Needs root, debootstrap, QEMU and ssh; without them the test
 * fails.
 */

const MAC = '52:54:00:12:34:58';
// openssl passwd -6 -salt rackboottest 'correct horse'
const ROOT_HASH = '$6$rackboottest$R3I6dZFiAb60PrrUAAtXOMq7uhRrLSm.wvav/fW7uy9vr6fdYQ.pt1/wT0EiPcmrfkJXw5Jcg4yf7oJuDAcI40';
/** dom0's 256 MiB, Debian guests of 256, 256 and 192, and Xen's own. */
const MACHINE_MIB = 1088;
const MiB = 1024 * 1024;

let out: string;
let first: BuildResult;
let second: BuildResult;

before(async () => {
  assertRoot();
  run('debootstrap', ['--version']);
  run('qemu-system-x86_64', ['--version']);
  run('ssh', ['-V']);
  run('sh', ['-c', 'command -v mksquashfs && command -v unsquashfs']);
  out = await mkdtemp(join(tmpdir(), 'rackboot-debian-guest-'));
  const settings = { ...DEFAULT_BUILD_SETTINGS, parts: { memtest: false, guest: true, debianGuest: true, iso: false } };
  first = await build({ out, variant: 'debian', settings, log: silentLogger() });
  second = await build({ out, variant: 'debian', settings, log: silentLogger() });
  const image = second.manifest.files.find((f) => f.name === 'debian-guest.squashfs');
  process.stdout.write(
    `# debian guest build: first ${(first.durationMs / 1000).toFixed(1)} s, second ${(second.durationMs / 1000).toFixed(1)} s; debian-guest.squashfs ${((image?.size ?? 0) / 1e6).toFixed(1)} MB\n`,
  );
});

after(async () => {
  if (out) await rm(out, { recursive: true, force: true });
});

test('the Debian guest image: systemd as init, sshd making its own host keys, the report unit enabled, no docs; the same bytes from the cached tree', async () => {
  const sums = [first, second].map((result) => result.manifest.files.find((f) => f.name === 'debian-guest.squashfs')?.sha256);
  assert.ok(sums[0] !== undefined && sums[0] === sums[1], `debian-guest.squashfs ${JSON.stringify(sums)}`);
  const image = second.manifest.files.find((f) => f.name === 'debian-guest.squashfs')!;
  const contained = new Map(image.contains!.map((c) => [c.package, c.version]));
  for (const pkg of ['systemd-sysv', 'udev', 'ifupdown', 'isc-dhcp-client', 'openssh-server', 'wget', 'e2fsprogs']) assert.ok(contained.has(pkg), pkg);
  assert.ok(image.size < 60_000_000, `debian-guest.squashfs is ${image.size} bytes`);
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
  assert.ok(paths.has('usr/sbin/mkfs.ext4'), "the first stage makes the root's filesystem with the image's own mkfs.ext4");
  const leftIn = [...paths.keys()].filter((path) => /^usr\/share\/(doc|man|locale)\/.|^etc\/ssh\/ssh_host_|^var\/lib\/apt\/lists\/./.test(path));
  assert.deepEqual(leftIn, [], 'no docs, man pages, locales, host keys or apt lists');
});

test(
  'Debian guests: one installs the image on its blank volume and boots it again after a reset, one runs it from RAM, one whose disk holds data is refused; first-boot settings reach each, and ssh logs in with their key',
  { timeout: 1_800_000 },
  async () => {
    const work = await mkdtemp(join(tmpdir(), 'rackboot-debian-guests-'));
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
      rack = await startRack(
        {
          'xen03.yaml': [
            `mac: ${MAC}`,
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
            '  - name: deb1',
            '    image: debian',
            '    disks:',
            '      - volume: vg0/deb1',
            '        size: 512M',
            '    firstBoot:',
            '      hostname: deb-one',
            `      rootPasswordHash: "${ROOT_HASH}"`,
            `      sshAuthorizedKeys: ["${publicKey}"]`,
            '  - name: deb2',
            '    image: debian',
            '    firstBoot:',
            `      sshAuthorizedKeys: ["${publicKey}"]`,
            '  - name: deb3',
            '    image: debian',
            '    memory: 192',
            '    disks:',
            '      - disk: serial:rb-data',
            '',
          ].join('\n'),
        },
        { assets: out, bridge: true },
      );
      const hostEvents = (): Array<Record<string, unknown>> => rack!.events().filter((e) => e.event === 'host-event' && e.mac === MAC);
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

      let booting = await startMachine(rack, 'bios', MAC, MACHINE_MIB, disks);
      qemu = booting.qemu;
      let machine = booting.console;
      const ready = await machine.waitFor(readyLinePattern, 900_000, 'the ready line');
      dom0Address = ready.groups!.ip!.split('/')[0]!;
      assert.equal(ready.groups!.domains, '3', machine.transcript.slice(-6000));
      const started = await until(
        'three domain-started events',
        120_000,
        () => {
          const names = hostEvents()
            .filter((e) => e.stage === 'domain-started')
            .map((e) => e.domain);
          return names.length >= 3 ? names : undefined;
        },
        guestEvents,
      );
      assert.deepEqual(started, ['deb1', 'deb2', 'deb3'], 'each domain started under its own name (deb3 on a whole disk too)');
      const deb1 = await until('deb1 reporting from the image it installed', 600_000, () => reports('deb1')[0], guestEvents);
      assert.match(deb1, /^ip=198\.18\.0\.\d+\/24 mac=\S+ image=debian-12 root=xvda:installed hostname=deb-one$/, deb1);
      const deb2 = await until('deb2 reporting from the image in RAM', 600_000, () => reports('deb2')[0], guestEvents);
      assert.match(deb2, /^ip=198\.18\.0\.\d+\/24 mac=\S+ image=debian-12 root=ram hostname=deb2$/, deb2);
      const deb3 = await until('deb3 saying why it did not boot the image', 300_000, () => reports('deb3', 'guest-failed')[0], guestEvents);
      assert.equal(deb3, 'disk xvda holds a filesystem that is no rackboot Debian guest; left untouched');

      // Root logs in with the key of the first-boot settings; hostname, hash and root are as the profile says, under systemd.
      const deb1Address = /^ip=([\d.]+)\//.exec(deb1)![1]!;
      const deb2Address = /^ip=([\d.]+)\//.exec(deb2)![1]!;
      const [deb1Hostname, deb1Hash, deb1Root, deb1Init, deb1MachineId] = ssh(
        deb1Address,
        'hostname; grep "^root:" /etc/shadow | cut -d: -f2; findmnt -n -o SOURCE,FSTYPE /; cat /proc/1/comm; cat /etc/machine-id',
      )
        .trim()
        .split('\n');
      assert.deepEqual([deb1Hostname, deb1Hash, deb1Root, deb1Init], ['deb-one', ROOT_HASH, '/dev/xvda ext4', 'systemd']);
      const [deb2Hostname, deb2Hash, deb2Root, deb2MachineId] = ssh(
        deb2Address,
        'hostname; grep "^root:" /etc/shadow | cut -d: -f2; findmnt -n -o FSTYPE /; cat /etc/machine-id',
      )
        .trim()
        .split('\n');
      assert.deepEqual([deb2Hostname, deb2Hash, deb2Root], ['deb2', '*', 'overlay']);
      assert.match(deb1MachineId ?? '', /^[0-9a-f]{32}$/);
      assert.notEqual(deb1MachineId, deb2MachineId, 'each guest has a machine id of its own');
      for (const [name, address] of [
        ['deb1', deb1Address],
        ['deb2', deb2Address],
      ] as const) {
        process.stdout.write(
          `# ${name}: ${ssh(address, 'systemd-analyze time 2>&1 | head -n 1; systemctl is-system-running 2>&1').trim().replace(/\n/g, '; ')}\n`,
        );
      }
      ssh(deb1Address, 'echo kept-across-the-reset > /root/note && sync');
      assert.ok(!machine.transcript.includes(ROOT_HASH), "the guest's root hash never reaches dom0's console");
      assert.ok(!JSON.stringify(rack.events()).includes(ROOT_HASH), "the guest's root hash is not in the server's log");

      // The second boot starts deb1 alone (the profile is read again without a restart).
      const profileText = await readFile(join(rack.work, 'profiles', 'xen03.yaml'), 'utf8');
      const deb1Only = profileText.slice(0, profileText.indexOf('  - name: deb2'));
      assert.ok(deb1Only.includes('name: deb1') && !deb1Only.includes('deb2'), deb1Only);
      await rewriteProfile(rack, MAC, 'xen03.yaml', deb1Only);
      booting = await resetMachine(rack, qemu, MAC, MACHINE_MIB, disks);
      qemu = booting.qemu;
      machine = booting.console;
      const again = await machine.waitFor(readyLinePattern, 900_000, 'the ready line after the reset');
      dom0Address = again.groups!.ip!.split('/')[0]!;
      assert.equal(again.groups!.domains, '1', machine.transcript.slice(-6000));
      const deb1Again = await until('deb1 reporting after the reset', 600_000, () => reports('deb1')[1], guestEvents);
      assert.match(deb1Again, / root=xvda:kept hostname=deb-one$/, deb1Again);
      const deb1AddressAgain = /^ip=([\d.]+)\//.exec(deb1Again)![1]!;
      assert.deepEqual(
        ssh(deb1AddressAgain, 'cat /root/note /etc/machine-id').trim().split('\n'),
        ['kept-across-the-reset', deb1MachineId],
        'deb1 booted its own disk again, with the machine id it was installed with',
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
