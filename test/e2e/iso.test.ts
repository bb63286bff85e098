import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { assertQemu, emulatedCpu, ovmfCode, prepareOvmfVars, readyLinePattern } from '../../server/demo/qemu.js';
import { isoSanbootUrl } from '../../server/http/downloads.js';
import { HostTokens } from '../../server/tokens/host-token.js';
import { ConsoleMachine } from '../builder/qemu.js';
import { cliPath, ensureTestBuild } from '../support/build.js';
import { watchOutput } from '../support/failure-report.js';
import { assertRoot, Netns } from '../support/netns.js';
import { unpackedProgram } from '../support/unpacked.js';

/**
 * The CD/USB image booted for real in QEMU (TCG): the build's rackboot.iso
 * as a CD on BIOS (SeaBIOS) and on UEFI (OVMF) and as a USB stick on UEFI,
 * GRUB's default entry through Xen to the runtime's ready line; and a
 * per-host image (`rackboot build --host`) as a USB stick on BIOS, whose boot line sets a static address and a
 * hostname that the ready line must show. No server runs: the runtime says
 * it could not fetch runtime.env and goes on. Needs root and QEMU; fails
 * without them.
 */

const DEADLINE_MS = 240_000;
const MAC = '52:54:00:15:0a:77';
let assets: string;
let work: string;

before(async () => {
  assertRoot();
  await assertQemu('efi');
  assets = await ensureTestBuild();
  work = await mkdtemp(path.join(tmpdir(), 'rackboot-iso-e2e-'));
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const machineArgs = ['-accel', 'tcg', '-cpu', emulatedCpu, '-m', '1024', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot'];

async function bootToReady(ns: Netns, args: string[]): Promise<{ machine: ConsoleMachine; ready: RegExpExecArray }> {
  const machine = new ConsoleMachine(ns, [...machineArgs, ...args], DEADLINE_MS);
  try {
    const ready = await machine.waitFor(readyLinePattern, DEADLINE_MS);
    return { machine, ready };
  } catch (error) {
    machine.kill();
    throw error;
  }
}

/** OVMF's code and a fresh copy of its variables, as QEMU flash drives. */
async function ovmfDrives(): Promise<string[]> {
  const vars = await prepareOvmfVars(work);
  return ['-drive', `if=pflash,format=raw,readonly=on,file=${ovmfCode}`, '-drive', `if=pflash,format=raw,file=${vars}`];
}

test('BIOS: the image boots as a CD through GRUB and Xen to the ready line', { timeout: 300_000 }, async () => {
  const ns = Netns.create('rbiso');
  try {
    const { machine } = await bootToReady(ns, ['-cdrom', path.join(assets, 'current/rackboot.iso'), '-boot', 'd', '-nic', 'none']);
    machine.kill();
    assert.match(machine.output, /Booting `Xen with the rackboot runtime \[[0-9a-f]{8}\]'/, 'GRUB booted the default (standard) entry');
    assert.match(machine.output, /\(XEN\) Bootloader: GRUB /);
    assert.match(machine.output, /\(XEN\) Command line: console=com1,vga com1=115200,8n1\r/);
    process.stdout.write(`# BIOS CD: ready after ${machine.elapsed().toFixed(1)} s\n`);
  } finally {
    ns.delete();
  }
});

test('UEFI: the image boots as a CD on OVMF; GRUB starts Xen with multiboot2 (EFI boot services kept)', { timeout: 300_000 }, async () => {
  const ns = Netns.create('rbiso');
  try {
    const { machine } = await bootToReady(ns, [...(await ovmfDrives()), '-cdrom', path.join(assets, 'current/rackboot.iso'), '-boot', 'd', '-nic', 'none']);
    machine.kill();
    assert.match(machine.output, /UEFI QEMU DVD-ROM/, 'OVMF booted from the CD');
    assert.match(machine.output, /\(XEN\) Bootloader: GRUB /);
    assert.match(machine.output, /\(XEN\) EFI RAM map:/, 'Xen came up as an EFI application through multiboot2');
    process.stdout.write(`# UEFI CD: ready after ${machine.elapsed().toFixed(1)} s\n`);
  } finally {
    ns.delete();
  }
});

test('UEFI: the same image written to a USB stick boots on OVMF from its GPT EFI partition', { timeout: 300_000 }, async () => {
  const ns = Netns.create('rbiso');
  try {
    const { machine } = await bootToReady(ns, [
      ...(await ovmfDrives()),
      '-drive',
      `if=none,id=stick,format=raw,readonly=on,file=${path.join(assets, 'current/rackboot.iso')}`,
      '-device',
      'qemu-xhci',
      '-device',
      'usb-storage,drive=stick,bootindex=0',
      '-nic',
      'none',
    ]);
    machine.kill();
    assert.match(machine.output, /BdsDxe: starting Boot\d+ "UEFI QEMU QEMU USB HARDDRIVE [^"]*" from \S*\/USB\(/, 'OVMF booted the USB disk');
    assert.doesNotMatch(machine.output, /DVD-ROM/, 'no CD drive: the stick is a disk');
    assert.match(machine.output, /\(XEN\) Bootloader: GRUB /);
    assert.match(machine.output, /\(XEN\) EFI RAM map:/, 'Xen came up as an EFI application');
    process.stdout.write(`# UEFI USB stick: ready after ${machine.elapsed().toFixed(1)} s\n`);
  } finally {
    ns.delete();
  }
});

test('a per-host image (rackboot build --host) boots as a USB stick with its static address and hostname on the ready line', { timeout: 300_000 }, async () => {
  const profiles = path.join(work, 'profiles');
  await import('node:fs/promises').then((fs) => fs.mkdir(profiles, { recursive: true }));
  await writeFile(
    path.join(profiles, 'iso-node.yaml'),
    [
      `mac: ${MAC.toUpperCase()}`,
      'hostname: iso-node',
      'network:',
      '  mode: static',
      '  address: 198.18.0.77/24',
      '  gateway: 198.18.0.1',
      '  dns: [198.18.0.1]',
      'boot:',
      '  kernelArgs: "rackboot.poweroff=1"',
      '',
    ].join('\n'),
  );
  const image = path.join(work, 'iso-node.iso');
  // The server's token key, as serve makes it in its state folder on first start.
  await mkdir(path.join(work, 'state'), { recursive: true, mode: 0o700 });
  await writeFile(path.join(work, 'state', 'host-token.key'), `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  await promisify(execFile)(process.execPath, [
    cliPath,
    'build',
    '--out',
    assets,
    '--host',
    MAC,
    '--profiles',
    profiles,
    '--address',
    '198.18.0.1',
    '--http-port',
    '8080',
    '--iso-file',
    image,
    '--state',
    path.join(work, 'state'),
  ]);
  // The boot line's token is signed with the state folder's key, which a
  // server on that folder checks before it hands out the host's secrets.
  const key = (await readFile(path.join(work, 'state', 'host-token.key'), 'utf8')).trim();
  const tokens = [...(await readFile(image)).toString('latin1').matchAll(/rackboot\.token=(i\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((match) => match[1]!);
  assert.ok(tokens.length > 0, 'the image carries an image token');
  assert.ok(
    tokens.every((token) => new HostTokens(Buffer.from(key)).read(MAC, token)?.kind === 'image'),
    "signed with the state folder's key, for this MAC",
  );
  const ns = Netns.create('rbiso');
  try {
    ns.addTap('tap0', '198.18.0.1/24');
    const { machine, ready } = await bootToReady(ns, [
      '-drive',
      `if=none,id=stick,format=raw,readonly=on,file=${image}`,
      '-device',
      'qemu-xhci',
      '-device',
      'usb-storage,drive=stick,bootindex=0',
      '-netdev',
      'tap,id=n0,ifname=tap0,script=no,downscript=no',
      '-device',
      `e1000,netdev=n0,mac=${MAC}`,
    ]);
    assert.equal(ready.groups!.hostname, 'iso-node');
    assert.equal(ready.groups!.ip, '198.18.0.77/24');
    assert.equal(ready.groups!.mac, MAC);
    assert.match(machine.output, /runtime\.env not fetched from http:\/\/198\.18\.0\.1:8080\/hosts\/52:54:00:15:0a:77\/runtime\.env/);
    assert.match(machine.output, /Booting `Xen with the rackboot runtime \[[0-9a-f]{8} iso-node\]'/);
    const exit = await machine.exited; // rackboot.poweroff=1 from the profile's kernelArgs
    assert.equal(exit.signal, null, 'the runtime powered the machine off');
    process.stdout.write(`# per-host USB stick: ready after ${machine.elapsed().toFixed(1)} s\n`);
  } finally {
    ns.delete();
  }
});

test("BIOS: iPXE's sanboot boots the build's image over HTTP (the iPXE menu's entry), reading it with Range requests", { timeout: 300_000 }, async () => {
  const lkrn = unpackedProgram('ipxe', 'boot/ipxe.lkrn');
  const build = path.basename(await realpath(path.join(assets, 'current')));
  const url = isoSanbootUrl({ address: '198.18.0.1', httpPort: 8080 }, build);
  const script = path.join(work, 'sanboot.ipxe');
  // A static address: no DHCP server on this wire, only the image's HTTP server.
  await writeFile(script, ['#!ipxe', 'set net0/ip 198.18.0.2', 'set net0/netmask 255.255.255.0', 'ifopen net0', `sanboot ${url}`, ''].join('\n'));
  const ns = Netns.create('rbiso');
  const server = { lines: [] as Array<Record<string, unknown>> };
  try {
    ns.addTap('tap0', '198.18.0.1/24');
    const child = ns.spawn(
      process.execPath,
      [fileURLToPath(new URL('../support/bench/http-server.js', import.meta.url)), assets, '198.18.0.1', '8080', '256', 'log'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const lines = createInterface({ input: child.stdout! });
    const listening = new Promise<void>((resolve) => lines.once('line', () => resolve()));
    lines.on('line', (line) => server.lines.push(JSON.parse(line) as Record<string, unknown>));
    watchOutput('HTTP server log', () => server.lines.map((line) => JSON.stringify(line)).join('\n'), { lines: 60 });
    await listening;
    try {
      // ipxe.lkrn runs the script it is given as an initrd (Linux boot protocol).
      const { machine, ready } = await bootToReady(ns, [
        '-kernel',
        lkrn,
        '-initrd',
        script,
        '-netdev',
        'tap,id=n0,ifname=tap0,script=no,downscript=no',
        '-device',
        `e1000,netdev=n0,mac=52:54:00:15:0c:01`,
      ]);
      machine.kill();
      assert.equal(ready.groups!.mac, '52:54:00:15:0c:01');
      assert.match(machine.output, /Booting `Xen with the rackboot runtime \[[0-9a-f]{8}\]'/);
      const image = server.lines.filter((l) => l.path === `/builds/${build}/rackboot.iso`);
      assert.ok(
        image.some((l) => l.status === 206),
        `iPXE read the image by ranges: ${JSON.stringify(image.slice(0, 3))}`,
      );
      assert.ok(
        image.every((l) => l.status === 200 || l.status === 206),
        'no request of the image failed',
      );
      process.stdout.write(`# sanboot over HTTP: ready after ${machine.elapsed().toFixed(1)} s, ${image.length} requests for the image\n`);
    } finally {
      child.kill('SIGTERM');
    }
  } finally {
    ns.delete();
  }
});
