import type { ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConsoleWatcher, assertQemu, prepareOvmfVars, readyLinePattern, spawnQemu, type Firmware, type QemuMachineOptions } from '../../server/demo/qemu.js';
import { watchOutput } from './failure-report.js';
import { until } from './until.js';
import { Netns } from './netns.js';
import { cliPath, ensureTestBuild } from './build.js';
import { bridgeTap, startSiteDhcp, type SiteDhcp } from './site-dhcp.js';

export const serverAddress = '198.18.0.1';
export const poolStart = '198.18.0.100';
export const poolEnd = '198.18.0.150';
export const httpPort = 8080;

export interface Rack {
  ns: Netns;
  work: string;
  profiles: string;
  server: ConsoleWatcher;
  /** The server's process id (ip netns exec execs it). */
  pid: number;
  /** Server log lines parsed from JSON. */
  events(): Array<Record<string, unknown>>;
  /** With dhcp 'proxy': the site's DHCP server (dnsmasq) that hands out the addresses. */
  site?: SiteDhcp;
  close(): Promise<void>;
}

export interface RackOptions {
  /**
   * 'full' (default): rackboot is the wire's DHCP server, on tap0.
   * 'proxy': dnsmasq gives addresses (startSiteDhcp) and `rackboot serve
   * --dhcp proxy` answers boot on the bridge that holds tap0.
   */
  dhcp?: 'full' | 'proxy';
  /** More `rackboot serve` arguments, e.g. `--tftp-server`. */
  serveArgs?: string[];
  /** The assets folder to serve (default: the tiny test build, ensureTestBuild). */
  assets?: string;
  /**
   * Full mode only: rackboot serves on a bridge br0 that holds tap0, so that
   * addClient can put more hosts (namespaces) on the same wire.
   */
  bridge?: boolean;
  /** Open the work folder (profiles, state) to other users, for a server started with --user. */
  openWork?: boolean;
  /** Wrap the server's command line, e.g. to run it through a CheckoutView (support/as-user.ts). */
  launch?: (command: string, args: string[]) => { command: string; args: string[] };
}

/**
 * A one-wire test rack: a namespace with tap0 at 198.18.0.1/24, a profiles
 * folder with the given files, and `rackboot serve` (the real CLI) on it.
 */
export async function startRack(profileFiles: Record<string, string>, options: RackOptions = {}): Promise<Rack> {
  const assets = options.assets ?? (await ensureTestBuild());
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-e2e-'));
  if (options.openWork) await chmod(work, 0o755);
  const profiles = path.join(work, 'profiles');
  await import('node:fs/promises').then((fs) => fs.mkdir(profiles));
  for (const [name, text] of Object.entries(profileFiles)) await writeFile(path.join(profiles, name), text);
  const ns = Netns.create('rbe2e');
  let site: (SiteDhcp & { bridge: string }) | undefined;
  let dhcpArgs: string[];
  if (options.dhcp === 'proxy') {
    ns.ip('tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
    try {
      site = await startSiteDhcp(ns, `${serverAddress}/24`);
    } catch (error) {
      ns.delete();
      throw error;
    }
    dhcpArgs = ['--interface', site.bridge, '--dhcp', 'proxy'];
  } else if (options.bridge) {
    ns.ip('tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
    bridgeTap(ns, `${serverAddress}/24`);
    dhcpArgs = ['--interface', 'br0', '--pool', `${poolStart}-${poolEnd}`];
  } else {
    ns.addTap('tap0', `${serverAddress}/24`);
    dhcpArgs = ['--interface', 'tap0', '--pool', `${poolStart}-${poolEnd}`];
  }
  const launch = options.launch ?? ((command: string, args: string[]) => ({ command, args }));
  const serve = launch(process.execPath, [
    cliPath,
    'serve',
    ...dhcpArgs,
    '--address',
    serverAddress,
    '--profiles',
    profiles,
    '--assets',
    assets,
    '--state',
    path.join(work, 'state'),
    '--http-port',
    String(httpPort),
    // A test's machines are gone when it stops the server: do not wait long for their downloads.
    ...(options.serveArgs?.includes('--drain-seconds') ? [] : ['--drain-seconds', '2']),
    // The test's settings only, never the host's /etc/rackboot/rackboot.yaml.
    ...(options.serveArgs?.includes('--config') ? [] : ['--config', '/dev/null']),
    ...(options.serveArgs ?? []),
  ]);
  const child = ns.spawn(serve.command, serve.args, { env: { ...process.env, RACKBOOT_LOG_LEVEL: 'debug' } });
  const server = new ConsoleWatcher(child);
  const unwatch = watchOutput('rackboot serve log', () => server.transcript, { lines: 150, shared: true });
  await server.waitFor(/rackboot is serving/, 30_000, 'rackboot serve to start');
  return {
    ns,
    work,
    profiles,
    server,
    pid: child.pid!,
    events: () =>
      server.transcript
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    ...(site ? { site } : {}),
    close: async () => {
      unwatch();
      child.kill('SIGTERM');
      await site?.close();
      // The hosts addClient put on this rack's wire go with it, whether or not their test closed them.
      for (const client of clientsOnWire.get(ns) ?? []) client.close();
      ns.delete();
      await rm(work, { recursive: true, force: true });
    },
  };
}

/** A host on the rack's wire (a namespace), as addClient made it. */
export interface RackClient {
  ns: Netns;
  mac: string;
  /** eth0's address, once dhcp() or setAddress() gave it one. */
  address?: string;
  /** A DHCP exchange with rackboot (busybox udhcpc) as this MAC; eth0 takes the address. */
  dhcp(): string;
  /** Put an address on eth0 without asking anyone (what a stranger may do). */
  setAddress(cidr: string): void;
  close(): void;
}

let clients = 0;
/** The clients addClient put on each rack's wire, by the rack's namespace: closing the rack closes them. */
const clientsOnWire = new WeakMap<Netns, RackClient[]>();

/**
 * Another host on the wire of a rack started with `bridge: true`: a
 * namespace whose eth0 (with MAC `mac`) is a veth on br0.
 */
export async function addClient(rack: Rack, mac: string): Promise<RackClient> {
  const ns = Netns.create('rbcli');
  const device = `cli${clients++}`;
  try {
    rack.ns.linkTo(ns, { device }, { device: 'eth0', mac });
    rack.ns.ip('link', 'set', device, 'master', 'br0');
    const script = path.join(rack.work, `udhcpc-${device}.sh`);
    await writeFile(
      script,
      '#!/bin/sh\n[ "$1" = bound ] || [ "$1" = renew ] || exit 0\nip addr flush dev "$interface"\nip addr add "$ip/$subnet" dev "$interface"\necho "BOUND $ip"\n',
      { mode: 0o755 },
    );
    // The server learns who holds an address from ARP (its neighbour table
    // is part of the proof a boot token needs): forget the server's MAC and
    // ask again, so the server hears of this host's address at once.
    const announce = () => {
      ns.ip('neigh', 'flush', 'dev', 'eth0');
      ns.exec('busybox', ['ping', '-c', '1', '-W', '2', serverAddress]);
    };
    const client: RackClient = {
      ns,
      mac,
      dhcp: () => {
        const out = ns.exec('busybox', ['udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', script]);
        const address = /BOUND (\S+)/.exec(out)?.[1];
        assert.ok(address, `udhcpc as ${mac} got no address: ${out}`);
        client.address = address;
        announce();
        return address;
      },
      setAddress: (cidr) => {
        ns.ip('addr', 'flush', 'dev', 'eth0');
        ns.ip('addr', 'add', cidr, 'dev', 'eth0');
        client.address = cidr.split('/')[0]!;
        announce();
      },
      // Deleting a namespace twice does nothing: the rack may close this client again.
      close: () => ns.delete(),
    };
    clientsOnWire.set(rack.ns, [...(clientsOnWire.get(rack.ns) ?? []), client]);
    return client;
  } catch (error) {
    ns.delete();
    throw error;
  }
}

export interface BootResult {
  hostname: string;
  ip: string;
  mac: string;
  seconds: number;
  console: string;
}

/** What a test machine has beside its firmware and MAC: memory, disks and CPUs (QEMU's defaults otherwise). */
export type Machine = Pick<QemuMachineOptions, 'memoryMiB' | 'disks' | 'cpus'>;

/**
 * A QEMU machine on the rack's tap0, its console watched and in the test's
 * failure report.
 */
export async function startMachine(
  rack: Rack,
  firmware: Firmware,
  mac: string,
  machine: Machine = {},
): Promise<{ qemu: ChildProcess; console: ConsoleWatcher }> {
  await assertQemu(firmware);
  const qemu = spawnQemu(rack.ns.name, {
    firmware,
    mac,
    tap: 'tap0',
    ...machine,
    ...(firmware === 'bios' ? {} : { ovmfVars: await prepareOvmfVars(rack.work) }),
  });
  const console = new ConsoleWatcher(qemu);
  watchOutput(`QEMU console of ${mac} (${firmware})`, () => console.transcript);
  return { qemu, console };
}

/**
 * Network-boot one QEMU machine on the rack and wait for the runtime's ready
 * line; the profile is expected to power the machine off after it.
 */
export async function bootMachine(rack: Rack, firmware: Firmware, mac: string, timeoutMs = 300_000, disks?: QemuMachineOptions['disks']): Promise<BootResult> {
  const started = Date.now();
  const { qemu, console } = await startMachine(rack, firmware, mac, disks === undefined ? {} : { disks });
  try {
    const ready = await console.waitFor(readyLinePattern, timeoutMs, `the ready line from ${mac}`);
    const seconds = (Date.now() - started) / 1000;
    // rackboot.poweroff=1: the runtime powers off right after the line.
    await new Promise<void>((resolve, reject) => {
      if (console.exitCode !== undefined) return resolve();
      const timer = setTimeout(() => reject(new Error(`QEMU for ${mac} did not power off after the ready line`)), 60_000);
      qemu.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    assert.ok(ready.groups);
    return { hostname: ready.groups.hostname!, ip: ready.groups.ip!, mac: ready.groups.mac!, seconds, console: console.transcript };
  } finally {
    qemu.kill('SIGKILL');
  }
}

/** Runs `command` as root on a machine of the rack over ssh with `keyFile` (no host key checks: every boot makes new keys); its output. */
export function sshAsRoot(rack: Rack, keyFile: string, address: string, command: string): string {
  return rack.ns.exec('ssh', [
    '-i',
    keyFile,
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=60',
    '-o',
    'LogLevel=ERROR',
    `root@${address}`,
    command,
  ]);
}

/** Writes a profile of the rack anew and waits until the server has read it again (no restart). */
export async function rewriteProfile(rack: Rack, mac: string, file: string, text: string): Promise<void> {
  const loaded = () => rack.events().filter((e) => e.msg === 'profile loaded' && e.mac === mac).length;
  const before = loaded();
  await writeFile(path.join(rack.work, 'profiles', file), text);
  await until(
    'the server reading the profile again',
    30_000,
    () => (loaded() > before ? true : undefined),
    () => 'the profile change was not read',
  );
}

/** A reset: the machine's QEMU is killed (its RAM is gone, its disks stay) and started again with the same disks. */
export async function resetMachine(rack: Rack, qemu: ChildProcess, mac: string, machine: Machine): Promise<{ qemu: ChildProcess; console: ConsoleWatcher }> {
  qemu.kill('SIGKILL');
  if (qemu.exitCode === null && qemu.signalCode === null) await new Promise((resolve) => qemu.once('exit', resolve));
  return startMachine(rack, 'bios', mac, machine);
}
