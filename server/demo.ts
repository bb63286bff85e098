import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { builderRecipe, packageRoot } from '../builder/recipe.js';
import { AssetStore } from './assets/builds.js';
import { Netns } from './demo/netns.js';
import { ConsoleWatcher, assertQemu, prepareOvmfVars, readyLinePattern, spawnQemu, type Firmware } from './demo/qemu.js';
import { openNamespaceWindow, type NamespaceWindow } from './demo/window.js';
import type { Logger } from './log.js';

export interface DemoOptions {
  assets: string;
  profiles: string;
  firmware: Firmware;
  mac: string;
  keep: boolean;
  log: Logger;
}

const cliPath = fileURLToPath(new URL('./cli.js', import.meta.url));

/**
 * `rackboot demo`: the whole product on one machine without touching its
 * network. Builds the boot parts if there are none, makes a private network
 * namespace with a tap device on 198.18.0.0/24 (addresses reserved for
 * benchmarking, RFC 2544), runs `rackboot serve` there, and network-boots a
 * QEMU machine whose serial console is shown here until the runtime prints
 * its ready line. Nothing is sent on the host's own interfaces.
 */
export async function demo(options: DemoOptions): Promise<number> {
  const { log } = options;
  await assertQemu(options.firmware);
  const assets = new AssetStore(options.assets);
  // A build made by another version of the builder may hold a runtime that
  // no longer fits the profiles this server hands out (a larger dom0, a
  // renamed boot-line option), so the demo builds again (from the package
  // cache, about half a minute) rather than boot something that half works.
  const recipe = await builderRecipe(packageRoot());
  const existing = await assets.current();
  if (existing?.manifest.recipe !== recipe) {
    if (existing)
      log.info({ out: assets.dir, build: existing.id }, 'demo: the current build was made by another version of the builder, building the boot parts again');
    else log.info({ out: assets.dir }, 'demo: no build yet, building the boot parts from Debian packages');
    const { build } = await import('../builder/build.js');
    await build({ out: options.assets, log });
  }
  const build = await assets.current();
  if (!build) throw new Error(`no build in ${assets.dir} after building`);

  const work = await mkdtemp(path.join(tmpdir(), 'rackboot-demo-'));
  const ns = Netns.create('rackboot-demo');
  const cleanup = async () => {
    ns.delete();
    await rm(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  try {
    ns.addTap('tap0', '198.18.0.1/24');
    const server = ns.spawn(
      process.execPath,
      [
        cliPath,
        'serve',
        '--interface',
        'tap0',
        '--address',
        '198.18.0.1',
        '--pool',
        '198.18.0.100-198.18.0.199',
        '--profiles',
        path.resolve(options.profiles),
        '--assets',
        assets.dir,
        '--state',
        path.join(work, 'state'),
        '--http-port',
        '80',
        // The demo's own settings: not the host's /etc/rackboot/rackboot.yaml; and a quick stop once its machine is gone.
        '--config',
        '/dev/null',
        '--drain-seconds',
        '1',
      ],
      { env: { ...process.env, RACKBOOT_LOG_LEVEL: 'info' } },
    );
    const serverLog = new ConsoleWatcher(server, (chunk) => {
      for (const line of chunk.split('\n').filter(Boolean)) process.stderr.write(`  server | ${summariseLogLine(line)}\n`);
    });
    await serverLog.waitFor(/rackboot is serving/, 20_000, 'the server to start');
    // Where to watch the boot live: the status page and the machine's own page, through loopback.
    let window: NamespaceWindow | undefined;
    try {
      window = await openNamespaceWindow(ns, { host: '198.18.0.1', port: 80 }, path.join(work, 'status.sock'));
      const state = path.join(work, 'state');
      process.stdout.write(
        `demo: watch the boot live at ${window.url}/status/hosts/${options.mac} (the whole rack: ${window.url}/status;\n` +
          `      its log needs the admin token in ${state}/admin.token), or on this terminal:\n` +
          `      ip netns exec ${ns.name} ${process.execPath} ${cliPath} logs ${options.mac} --follow --server 198.18.0.1 --state ${state}\n`,
      );
    } catch (error) {
      log.warn({ err: error }, 'demo: no window onto the status page; the serial console below still shows the boot');
    }

    log.info(
      { firmware: options.firmware, mac: options.mac, build: build.id },
      'demo: booting a QEMU machine over the network (software emulation: about a minute)',
    );
    const started = Date.now();
    const qemu = spawnQemu(ns.name, {
      firmware: options.firmware,
      mac: options.mac,
      tap: 'tap0',
      // XenCD's recommended size: the default profile's dom0 and two guests fit (builder/README.md).
      memoryMiB: 512,
      ...(options.firmware === 'bios' ? {} : { ovmfVars: await prepareOvmfVars(work) }),
    });
    const console = new ConsoleWatcher(qemu, (chunk) => process.stdout.write(chunk));
    const ready = await console.waitFor(readyLinePattern, 600_000, 'the runtime ready line');
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      `\n\ndemo: ${ready.groups?.hostname} (${ready.groups?.mac}) is ready at ${ready.groups?.ip} after ${seconds} s: ` +
        `DHCP, iPXE, Xen, dom0 and the rackboot runtime all came from this server.\n`,
    );
    if (options.keep) {
      process.stdout.write('demo: the machine keeps running; press Ctrl-C to stop it.\n');
      await new Promise((resolve) => qemu.once('exit', resolve));
    }
    qemu.kill('SIGKILL');
    await window?.close();
    server.kill('SIGTERM');
    return 0;
  } finally {
    await cleanup();
  }
}

/** The server's JSON log lines, shortened for a person watching the demo. */
function summariseLogLine(line: string): string {
  try {
    const entry = JSON.parse(line) as Record<string, unknown>;
    const { level: _level, time: _time, msg, ...rest } = entry;
    const details = Object.entries(rest)
      .filter(([, value]) => value !== undefined && typeof value !== 'object')
      .map(([key, value]) => `${key}=${String(value)}`)
      .join(' ');
    return `${String(msg)} ${details}`;
  } catch {
    return line;
  }
}
