import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConsoleWatcher, assertQemu, prepareOvmfVars, readyLinePattern, spawnQemu, type Firmware } from '../../server/demo/qemu.js';
import { watchOutput } from './failure-report.js';
import { Netns } from './netns.js';
import { cliPath, ensureTestBuild } from './build.js';
import { startSiteDhcp, type SiteDhcp } from './site-dhcp.js';

export const serverAddress = '198.18.0.1';
export const poolStart = '198.18.0.100';
export const poolEnd = '198.18.0.150';
export const httpPort = 8080;

export interface Rack {
  ns: Netns;
  work: string;
  profiles: string;
  server: ConsoleWatcher;
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
}

/**
 * A one-wire test rack: a namespace with tap0 at 198.18.0.1/24, a profiles
 * folder with the given files, and `rackboot serve` (the real CLI) on it.
 */
export async function startRack(profileFiles: Record<string, string>, options: RackOptions = {}): Promise<Rack> {
  const assets = options.assets ?? (await ensureTestBuild());
  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-e2e-'));
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
  } else {
    ns.addTap('tap0', `${serverAddress}/24`);
    dhcpArgs = ['--interface', 'tap0', '--pool', `${poolStart}-${poolEnd}`];
  }
  const child = ns.spawn(process.execPath, [
    cliPath, 'serve',
    ...dhcpArgs, '--address', serverAddress,
    '--profiles', profiles, '--assets', assets, '--state', path.join(work, 'state'),
    '--http-port', String(httpPort),
    ...(options.serveArgs ?? []),
  ], { env: { ...process.env, RACKBOOT_LOG_LEVEL: 'debug' } });
  const server = new ConsoleWatcher(child);
  const unwatch = watchOutput('rackboot serve log', () => server.transcript, { lines: 150, shared: true });
  await server.waitFor(/rackboot is serving/, 30_000, 'rackboot serve to start');
  return {
    ns,
    work,
    profiles,
    server,
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
      ns.delete();
      await rm(work, { recursive: true, force: true });
    },
  };
}

export interface BootResult {
  hostname: string;
  ip: string;
  mac: string;
  seconds: number;
  console: string;
}

/**
 * Network-boot one QEMU machine on the rack and wait for the runtime's ready
 * line; the profile is expected to power the machine off after it.
 */
export async function bootMachine(rack: Rack, firmware: Firmware, mac: string, timeoutMs = 300_000): Promise<BootResult> {
  await assertQemu(firmware);
  const started = Date.now();
  const qemu = spawnQemu(rack.ns.name, {
    firmware,
    mac,
    tap: 'tap0',
    ...(firmware === 'bios' ? {} : { ovmfVars: await prepareOvmfVars(rack.work) }),
  });
  const console = new ConsoleWatcher(qemu);
  watchOutput(`QEMU console of ${mac} (${firmware})`, () => console.transcript);
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
